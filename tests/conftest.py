"""Test-wide settings: fast XLA compiles for tiny shapes, absl flags parsed for absltest."""

from absl import flags
import jax

# Tests run tiny shapes where compile time dominates; optimised code is not needed.
jax.config.update('jax_disable_most_optimizations', True)

# pytest does not parse absl flags, which absltest's create_tempdir reads.
if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()
