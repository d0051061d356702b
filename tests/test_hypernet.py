"""SMASH's generated weights: dependence on the cell, gradients, scoring, the pipeline."""

import functools
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from osas import data
from osas import main
from osas import parallel
from osas import preemption
from osas import space as space_lib
from osas import stages
from osas import workdir as workdir_lib
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models import hypernet
from osas.models.initialize import init_variables
from osas.search import results
from osas.search.evaluator import Evaluator

NB201 = space_lib.get_space('nasbench201')
SPEC = ModelSpec(num_classes=10, filters=4, num_stacks=1, cells_per_stack=1, kernels='native')
HYPER = hypernet.HypernetSpec(width=4)
# Two cells with nor_conv_3x3 on edge (0, 1); they differ on every other edge.
CELL_A = '|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|'
CELL_B = '|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|'


@functools.lru_cache(maxsize=None)
def _setup(space_name='nasbench201'):
  space = space_lib.get_space(space_name)
  model = hypernet.HyperSupernet(space, SPEC, HYPER)
  images = jax.random.normal(jax.random.key(0), (16, 8, 8, 3))
  labels = jax.random.randint(jax.random.key(1), (16,), 0, 10)
  masks = space.sample_masks(jax.random.key(2), 2)
  variables = init_variables(model, jax.random.key(3), images, masks)
  return space, model, variables['params'], images, labels


def _masks(arch_string):
  return NB201.encode(NB201.parse(arch_string))


def _kernel(weights, edge):
  """The nor_conv_3x3 kernel of `edge` (i, j) in the supernet's parameters."""
  (path,) = [
      p
      for p, _ in jax.tree_util.tree_flatten_with_path(weights)[0]
      if f'edge_{edge[0]}_{edge[1]}' in str(p)
      and 'op_nor_conv_3x3' in str(p)
      and 'kernel' in str(p)
  ]
  return functools.reduce(lambda t, k: t[k.key], path, weights)


class GeneratedWeightsTest(parameterized.TestCase):

  def test_only_dense_conv_kernels_are_generated_and_they_depend_on_the_cell(self):
    _, model, params, _, _ = _setup()
    a, b = model.weights_of(params, _masks(CELL_A)), model.weights_of(params, _masks(CELL_B))
    shared = {k: v for k, v in params.items() if k != 'hypernet'}
    flat = lambda t: jax.tree_util.tree_flatten_with_path(t)[0]
    generated = 0
    for (path, x), (_, y), (_, s) in zip(flat(a), flat(b), flat(shared)):
      names = tuple(k.key for k in path)
      if hypernet.is_generated(names, x.shape):
        generated += 1
        self.assertGreater(float(jnp.max(jnp.abs(x - y))), 0, names)
        self.assertGreater(float(jnp.max(jnp.abs(x - s))), 0, names)
      else:  # Batch norm and the classifier: the shared values, untouched.
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, s)
    # Per cell: 6 edges x (1x1 + 3x3); the stem; the classifier is dense, not a conv.
    self.assertEqual(generated, 13)
    # A path both cells use still gets weights of its own in each.
    self.assertGreater(float(jnp.max(jnp.abs(_kernel(a, (0, 1)) - _kernel(b, (0, 1))))), 0)

  @parameterized.parameters(('nasbench201', 1), ('bender2018', 2))
  def test_generated_part_starts_at_the_kernels_he_scale(self, space_name, cells):
    space = space_lib.get_space(space_name)
    spec = ModelSpec(num_classes=10, filters=4, num_stacks=1, cells_per_stack=cells)
    model = hypernet.HyperSupernet(space, spec, HYPER)
    images = np.zeros((8, 8, 8, 3), np.float32)
    params = init_variables(model, jax.random.key(4), images, helpers.tile(space.all_on(), 1))
    net, kernels, index = model.generated(params['params'], space.all_on())
    leaves = jax.tree.leaves(net)
    self.assertLen(kernels, len(index))
    for i, kernel in zip(index, kernels):
      delta = kernel - leaves[i]
      # One cell's [k, k, in, out] (a stack of cells has one per layer in front).
      fan_in = np.prod(kernel.shape[-4:-1])
      # RMS of a random linear head on a unit-RMS embedding: He's std times scale (1).
      ratio = float(jnp.sqrt(jnp.mean(delta**2))) / np.sqrt(2.0 / fan_in)
      self.assertBetween(ratio, 0.5, 2.0)

  def test_every_hypernet_parameter_receives_a_gradient(self):
    _, model, params, images, labels = _setup()

    def loss(p):
      logits = model.apply({'params': p}, images, helpers.tile(NB201.all_on(), 2))
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), labels])

    grads = jax.grad(loss)(params)['hypernet']
    for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
      self.assertGreater(float(jnp.max(jnp.abs(g))), 0, jax.tree_util.keystr(path))

  @parameterized.parameters(
      ('nasbench201', 'mask'), ('nasbench201', 'skip'), ('bender2018', 'mask')
  )
  def test_each_ghost_batch_runs_with_its_own_cells_weights(self, space_name, execution):
    space, model, params, images, _ = _setup(space_name)
    masks = space.sample_masks(jax.random.key(5), 2)
    logits = model.clone(execution=execution).apply({'params': params}, images, masks)
    for g in range(2):
      mask = jax.tree.map(lambda m: m[g], masks)
      weights = model.weights_of(params, mask)
      direct = Supernet(space, SPEC).apply({'params': weights}, images[8 * g : 8 * g + 8], mask)
      np.testing.assert_allclose(logits[8 * g : 8 * g + 8], direct, rtol=1e-5, atol=1e-5)

  def test_evaluator_scores_equal_a_forward_with_the_generated_weights(self):
    _, _, params, images, labels = _setup()
    masks = NB201.sample_masks(jax.random.key(6), 3)
    mesh = parallel.make_mesh()
    evaluator = Evaluator(
        NB201, SPEC, mesh, mode='vmap', chunk_size=4, ghost_batch_size=8, hypernet=HYPER
    )
    scores = evaluator.score(params, [(images, labels)], masks)
    for n in range(3):
      mask = jax.tree.map(lambda x: x[n], masks)
      weights = evaluator.model.weights_of(params, mask)
      logits = Supernet(NB201, SPEC).apply({'params': weights}, images, mask, num_ghosts=2)
      log_p = jax.nn.log_softmax(logits)
      self.assertAlmostEqual(
          scores['accuracy'][n], float(jnp.mean(jnp.argmax(logits, -1) == labels))
      )
      self.assertAlmostEqual(
          scores['loss'][n], -float(jnp.mean(log_p[jnp.arange(16), labels])), places=5
      )
    # Each candidate of a vmapped chunk holds its own kernels: the estimate counts them.
    shared_params = {k: v for k, v in params.items() if k != 'hypernet'}
    need = lambda hyper, p: Evaluator(
        NB201, SPEC, mesh, mode='vmap', chunk_size=4, ghost_batch_size=8, hypernet=hyper
    ).memory_bytes(p, (images, labels))
    self.assertGreater(need(HYPER, params), need(None, shared_params))

  @parameterized.parameters(
      ('supernet.weights', 'smash', r"config\.supernet\.weights='smash'"),
      ('hypernet.width', 0, r'config\.hypernet\.width=0 must be positive'),
      ('hypernet.depth', 2, r'config\.hypernet: unknown field depth'),
  )
  def test_bad_field_is_named(self, field, value, message):
    config = helpers.tiny('smash=true')
    with config.unlocked():
      section, _, name = field.rpartition('.')
      config[section][name] = value
    mesh = parallel.make_mesh(1)
    with mock.patch.object(data, 'get_split'), self.assertRaisesRegex(ValueError, message):
      for _, stage in stages.get(config.stages):
        stage.check(config, mesh)


class PipelineTest(absltest.TestCase):

  def test_smash_runs_every_stage_and_a_stopped_run_resumes_to_the_same_weights(self):
    from osas.search import stage as search_stage  # pylint: disable=g-import-not-at-top
    from test_preemption import _stop_at_poll  # pylint: disable=g-import-not-at-top

    config = lambda **overrides: helpers.tiny('space=nasbench201,smash=true', **overrides)
    mesh = parallel.make_mesh(1)
    reference = self.create_tempdir().full_path
    main.run(config(stages=('train_supernet',)), reference)
    workdir = self.create_tempdir().full_path
    with _stop_at_poll(3), self.assertRaises(preemption.Preempted):
      main.run(config(), workdir)
    main.run(config(), workdir)  # Resumes after step 3, then searches, retrains, reports.
    weights = lambda w: search_stage._supernet_params(config(), w, mesh)[0]
    expected = weights(reference)
    self.assertIn('hypernet', expected)
    for a, b in zip(jax.tree.leaves(weights(workdir)), jax.tree.leaves(expected)):
      np.testing.assert_array_equal(a, b)

    # Candidates scored with their generated weights; the report covers them.
    records = results.read(os.path.join(workdir, 'search', 'candidates.jsonl'))
    self.assertLen(records, 6)
    summary = workdir_lib.read_json(workdir, 'report', 'summary.json')
    self.assertEqual(summary['counts']['candidates_scored'], 6)


if __name__ == '__main__':
  absltest.main()
