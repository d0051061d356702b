"""Test-wide settings: fast XLA compiles for tiny shapes, absl flags parsed for absltest."""

import os
import tempfile

from absl import flags
import jax

# Tests run tiny shapes where compile time dominates; optimised code is not needed.
jax.config.update('jax_disable_most_optimizations', True)
# Tests compile the same programs in several places, in both pytest-xdist workers and in
# subprocesses: one cache per test run shares them (the workers share the run's id).
_RUN = os.environ.get('PYTEST_XDIST_TESTRUNUID')
if _RUN:
  _CACHE = os.path.join(tempfile.gettempdir(), f'osas_test_xla_cache_{_RUN}')
  os.makedirs(_CACHE, exist_ok=True)
else:
  _CACHE = tempfile.mkdtemp(prefix='osas_test_xla_cache_')
jax.config.update('jax_compilation_cache_dir', _CACHE)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', _CACHE)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', 'true')

# pytest does not parse absl flags, which absltest's create_tempdir reads.
if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()
