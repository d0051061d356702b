"""config.search.bn='recalibrate': each candidate's BN statistics from training images."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from osas import parallel
from osas import space as space_lib
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models import Supernet
from osas.models import params_from_supernet
from osas.models.initialize import init_variables
from osas.search import recalibration
from osas.search import stage as search_stage
from osas.search.evaluator import Evaluator
from osas.space import SearchSpace

# Two stacks in nasbench201: its residual reductions' BN layers too.
SPECS = {
    name: ModelSpec(num_classes=3, filters=2, num_stacks=n, cells_per_stack=1, kernels='native')
    for name, n in (('nasbench201', 2), ('bender2018', 1))
}
GHOST = 4  # Ghost batch size; recalibration runs 16 images as 2 batches of 2 ghost batches.
ARCHS = {
    # `none` edges, a skip connection and both convolutions: only some BN layers exist.
    'nasbench201': (
        '|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|',
        '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|',
    ),
    'bender2018': ('0,1:sep3x3+conv1x7_7x1 | 0,2:identity+sep3x3', '1:max_pool | 0,1,2:sep3x3'),
}
# Two blocks of four ops: bender2018's kinds of BN layers (inputs' projections, ops with
# one and two), compiled in seconds.
SPACES = {
    'nasbench201': space_lib.get_space('nasbench201'),
    'bender2018': SearchSpace(num_blocks=2, ops=('identity', 'sep3x3', 'conv1x7_7x1', 'max_pool')),
}


@functools.lru_cache(maxsize=None)
def _setup(space_name):
  """Supernet weights (BN scales and shifts perturbed), images, labels and two archs."""
  space, spec = SPACES[space_name], SPECS[space_name]
  images = jax.random.normal(jax.random.key(0), (24, 8, 8, 3))
  variables = init_variables(
      Supernet(space, spec), jax.random.key(1), images[:GHOST], helpers.tile(space.all_on(), 1)
  )
  # Non-trivial scales and shifts, so a later layer's statistics depend on earlier ones.
  leaves, tree = jax.tree.flatten(variables['params'])
  keys = jax.random.split(jax.random.key(2), len(leaves))
  params = tree.unflatten([x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
  archs = [space.parse(a) for a in ARCHS[space_name]]
  return space, spec, params, images[:16], images[16:], jnp.arange(8) % 3, archs


@functools.lru_cache(maxsize=None)
def _recalibrated(space_name, mode):
  """Each arch's statistics as recalibration computes them, in the stand-alone's layout."""
  space, spec, params, train, _, _, archs = _setup(space_name)
  evaluator = Evaluator(
      space, spec, parallel.make_mesh(), mode=mode, chunk_size=2, ghost_batch_size=GHOST
  )
  padded, _ = evaluator.pad(space.encode_batch(archs))
  stats = evaluator.recalibrate(params, train, 2 * GHOST, padded)
  return evaluator, [
      params_from_supernet(jax.tree.map(lambda s: s[i], stats), a) for i, a in enumerate(archs)
  ]


def _standalone_statistics(space, spec, params, arch, images):
  """Every BN layer's batch mean and variance, averaged over the ghost batches of `images`.

  A train-mode step from zero running averages leaves (1 - momentum) x the batch's
  statistics in them: dividing it out gives the statistics themselves.
  """
  model = Standalone(arch, space, spec)
  mine = params_from_supernet(params, arch)
  zeros = jax.tree.map(jnp.zeros_like, init_variables(model, jax.random.key(0), images[:1]))
  step = jax.jit(
      lambda x: model.apply(
          {'params': mine, 'batch_stats': zeros['batch_stats']},
          x,
          train=True,
          mutable=['batch_stats'],
      )[1]['batch_stats']
  )
  per_ghost = [step(ghost) for ghost in jnp.split(images, len(images) // GHOST)]
  return jax.tree.map(lambda *s: jnp.mean(jnp.stack(s), 0) / (1 - 0.9), *per_ghost)


class RecalibrateTest(parameterized.TestCase):

  @parameterized.parameters(
      ('nasbench201', 'vmap'), ('nasbench201', 'skip'), ('bender2018', 'vmap')
  )
  def test_statistics_are_the_standalone_models_batch_statistics(self, space_name, mode):
    space, spec, params, train, _, _, archs = _setup(space_name)
    _, stats = _recalibrated(space_name, mode)
    for arch, got in zip(archs, stats):
      expected = _standalone_statistics(space, spec, params, arch, train)
      self.assertEqual(jax.tree.structure(got), jax.tree.structure(expected))
      for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)

  def test_scores_are_the_standalone_models_in_eval_mode_in_both_modes(self):
    space, spec, params, train, valid, labels, archs = _setup('nasbench201')
    out = {}
    for mode in ('vmap', 'skip'):
      evaluator, stats = _recalibrated('nasbench201', mode)
      out[mode] = evaluator.score(
          params,
          [(valid, labels)],
          space.encode_batch(archs),
          recalibration=(train, 2 * GHOST),
      )
      self.assertEqual(evaluator.compilations(), 2)  # Recalibration and scoring, once each.
    for key in ('accuracy', 'loss'):
      np.testing.assert_allclose(out['skip'][key], out['vmap'][key], rtol=1e-5)
    for i, (arch, arch_stats) in enumerate(zip(archs, stats)):
      variables = {'params': params_from_supernet(params, arch), 'batch_stats': arch_stats}
      logits = jax.jit(Standalone(arch, space, spec).apply, static_argnames='train')(
          variables, valid, train=False
      )
      log_p = jax.nn.log_softmax(logits)
      self.assertAlmostEqual(
          out['vmap']['accuracy'][i], float(jnp.mean(jnp.argmax(logits, -1) == labels))
      )
      expected = -float(jnp.mean(log_p[jnp.arange(len(labels)), labels]))
      self.assertAlmostEqual(out['vmap']['loss'][i], expected, delta=1e-5 * expected)

  def test_ghost_batch_norm_holds_no_statistics(self):
    space, spec, _, train, _, _, _ = _setup('nasbench201')
    mask = helpers.tile(space.all_on(), 1)
    variables = init_variables(Supernet(space, spec), jax.random.key(1), train[:GHOST], mask)
    self.assertEqual(set(variables), {'params'})  # Checkpoints and training are as before.

  @parameterized.parameters(
      ({'bn': 'recal'}, r"^config.search.bn: unknown 'recal'; known: ghost, recalibrate$"),
      ({'recalibration_images': 0}, r'^config.search.recalibration_images=0 must be a positive'),
      ({'recalibration_images': True}, r'^config.search.recalibration_images=True must be'),
      ({'recalibration_images': 24}, r'^config.search.recalibration_images=24 must be a mult'),
  )
  def test_bad_fields_are_refused_naming_them(self, fields, message):
    config = helpers.tiny(**{'search.bn': 'recalibrate'})
    for field, value in fields.items():
      config.search[field] = value
    with self.assertRaisesRegex(ValueError, message):
      search_stage.check(config, parallel.make_mesh())

  def test_records_say_how_they_were_scored_and_do_not_mix(self):
    config = helpers.tiny(**{'search.bn': 'recalibrate', 'search.recalibration_images': 32})
    search_stage.check(config, parallel.make_mesh())
    fields = recalibration.record_fields(config.search)
    self.assertEqual(fields, {'bn': 'recalibrate', 'recalibration_images': 32})
    self.assertEqual(recalibration.record_fields(helpers.tiny().search), {})  # As before.
    ghost, recalibrated = {'arch': 'a'}, {'arch': 'b', **fields}
    recalibration.check_records([recalibrated], config.search, 'c.jsonl')
    recalibration.check_records([ghost], helpers.tiny().search, 'c.jsonl')
    with self.assertRaisesRegex(ValueError, r"^config.search.bn: c.jsonl holds 1 .*'ghost'"):
      recalibration.check_records([ghost, recalibrated], config.search, 'c.jsonl')
    config.search.recalibration_images = 64
    with self.assertRaisesRegex(ValueError, r'holds 1 candidates scored with .*32'):
      recalibration.check_records([recalibrated], config.search, 'c.jsonl')


if __name__ == '__main__':
  absltest.main()
