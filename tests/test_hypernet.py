"""SMASH's generated weights: dependence on the cell, gradients, scoring.

The whole tiny pipeline with them, stopped and resumed, is in test_controller (with ENAS).
"""

import dataclasses
import functools
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import optax

import helpers
from osas import data
from osas import models
from osas import parallel
from osas import samplers
from osas import space as space_lib
from osas import stages
from osas import workdir as workdir_lib
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models import hypernet
from osas.models.initialize import init_variables
from osas.search.evaluator import Evaluator
from osas.train import common
from osas.train import supernet as supernet_train

NB201 = space_lib.get_space('nasbench201')
SPEC = ModelSpec(num_classes=10, filters=4, num_stacks=1, cells_per_stack=1, kernels='native')
HYPER = hypernet.HypernetSpec(width=4)
# Two cells with nor_conv_3x3 on edge (0, 1); they differ on every other edge.
CELL_A = '|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|'
CELL_B = '|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|'


@functools.lru_cache(maxsize=None)
def _setup():
  space = NB201
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
    # Stand-alone weights come from a cell's generated ones, never from the shared ones.
    with self.assertRaisesRegex(ValueError, 'SMASH parameters'):
      models.params_from_supernet(params, NB201.parse(CELL_A))
    standalone = models.params_from_supernet(a, NB201.parse(CELL_A))
    self.assertIs(_kernel(standalone, (0, 1)), _kernel(a, (0, 1)))
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

  @parameterized.parameters(('mask', 'native'), ('skip', 'cpu'))
  def test_each_ghost_batch_runs_with_its_own_cells_weights(self, execution, kernels):
    # 'cpu': the custom-gradient kernels, batched over ghost batches' own kernels.
    space, model, params, images, _ = _setup()
    spec = dataclasses.replace(SPEC, kernels=kernels)
    masks = space.sample_masks(jax.random.key(5), 2)
    logits = model.clone(execution=execution, spec=spec).apply({'params': params}, images, masks)
    for g in range(2):
      mask = jax.tree.map(lambda m: m[g], masks)
      weights = model.weights_of(params, mask)
      direct = Supernet(space, spec).apply({'params': weights}, images[8 * g : 8 * g + 8], mask)
      np.testing.assert_allclose(logits[8 * g : 8 * g + 8], direct, rtol=1e-5, atol=1e-5)

  def test_training_step_equals_hand_written_update(self):
    # Skip execution with the CPU kernels (per-ghost weights one ghost batch after
    # another, inside shard_map), BN affine frozen, weight decay on the supernet only.
    space, model, params, images, labels = _setup()
    spec = dataclasses.replace(SPEC, kernels='cpu')
    model = model.clone(execution='skip', spec=spec)
    section = helpers.tiny(
        'space=nasbench201,smash=true',
        **{'supernet.bn_affine': False, 'supernet.weight_decay': 0.01},
    ).supernet
    tx = common.optimizer(section, 'config.supernet')
    state = supernet_train.SupernetState(
        step=jnp.array(1), params=params, opt_state=tx.init(params), key=jax.random.key(7)
    )
    sampler = samplers.get_sampler('uniform_cell')
    step = functools.partial(
        supernet_train.train_step,
        model=model,
        tx=tx,
        sampler=sampler,
        section=section,
        masks_sharding=parallel.data_sharding(parallel.make_mesh()),
    )
    new, _ = jax.jit(step)(state, {'image': images, 'label': labels})

    masks = sampler(jax.random.fold_in(state.key, 1), space, 2, 0.25, section)
    masked = model.clone(execution='mask')

    def loss_fn(p):
      logits = masked.apply({'params': p}, images, masks)
      ce = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), labels])
      l2 = 0.0
      for path, leaf in jax.tree_util.tree_flatten_with_path(p['net'])[0]:
        names = ('net',) + common.path_names(path)
        if common.is_weight(names):
          l2 += models.of(space).usage_fraction(space, names, masks) * jnp.sum(leaf**2)
      return ce + 0.005 * l2

    def frozen(path, g):
      return jnp.zeros_like(g) if supernet_train.is_bn_affine(common.path_names(path)) else g

    grads = jax.tree_util.tree_map_with_path(frozen, jax.grad(loss_fn)(params))
    updates, _ = tx.update(grads, tx.init(params), params)
    expected = optax.apply_updates(params, updates)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # The hypernetwork's embedding, biases included, learns; BN scales and shifts do not.
    moved = lambda t: float(jnp.max(jnp.abs(t[0] - t[1])))
    for name in ('embed_0', 'embed_1'):
      for leaf in ('kernel', 'bias'):
        pair = (new.params['hypernet'][name][leaf], params['hypernet'][name][leaf])
        self.assertGreater(moved(pair), 0, (name, leaf))
    for path, a in jax.tree_util.tree_flatten_with_path(new.params)[0]:
      if supernet_train.is_bn_affine(common.path_names(path)):
        b = functools.reduce(lambda t, k: t[k.key], path, params)
        np.testing.assert_array_equal(a, b)

  @parameterized.parameters('vmap', 'skip')
  def test_evaluator_scores_equal_a_forward_with_the_generated_weights(self, mode):
    _, _, params, images, labels = _setup()
    masks = NB201.sample_masks(jax.random.key(6), 3)
    mesh = parallel.make_mesh()
    evaluator = Evaluator(
        NB201, SPEC, mesh, mode=mode, chunk_size=4, ghost_batch_size=8, hypernet=HYPER
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

  def test_memory_estimate_counts_each_candidates_generated_kernels(self):
    _, _, params, images, labels = _setup()
    shared = {k: v for k, v in params.items() if k != 'hypernet'}
    need = lambda hyper, p, m: Evaluator(
        NB201,
        SPEC,
        parallel.make_mesh(),
        mode='vmap',
        chunk_size=m,
        ghost_batch_size=8,
        hypernet=hyper,
    ).memory_bytes(p, (images, labels))
    # 4 more candidates in a vmapped chunk: their activations, and with a hypernetwork
    # their own kernels too (the supernet's: 13 kernels, 4 x 4 x 9 or 4 x 4 or 3 x 4 x 9).
    kernel_bytes = 4 * sum(
        np.prod(x.shape)
        for p, x in jax.tree_util.tree_flatten_with_path(shared)[0]
        if hypernet.is_generated(common.path_names(p), x.shape)
    )
    extra_shared = need(None, shared, 8) - need(None, shared, 4)
    extra_hyper = need(HYPER, params, 8) - need(HYPER, params, 4)
    self.assertGreaterEqual(extra_hyper - extra_shared, 4 * kernel_bytes)

  @parameterized.parameters(
      ('supernet.weights', 'smash', r"config\.supernet\.weights='smash'"),
      ('hypernet.width', 0, r'config\.hypernet\.width=0 must be positive'),
      ('hypernet.depth', 2, r'config\.hypernet: unknown field depth'),
      ('hypernet.kernels', '3x3', r"config\.hypernet\.kernels='3x3'"),
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


class WorkdirTest(absltest.TestCase):

  def test_a_workdir_keeps_the_weights_it_was_trained_with(self):
    workdir = self.create_tempdir().full_path
    workdir_lib.save_config(helpers.tiny(), workdir)
    with self.assertRaisesRegex(ValueError, r'config\.supernet\.weights differs from'):
      workdir_lib.save_config(helpers.tiny('smash=true'), workdir)
    # Saved before the field existed: shared weights, accepted as such.
    saved = workdir_lib.read_json(workdir, 'config.json')
    del saved['supernet']['weights'], saved['hypernet']
    workdir_lib.write_json(workdir, 'config.json', obj=saved)
    workdir_lib.save_config(helpers.tiny(), workdir)
    # A supernet/ copied in from a shared-weight run is refused, not misread.
    workdir_lib.write_json(workdir, 'supernet', 'done.json', obj={'num_steps': 4})
    self.assertEqual(supernet_train.check_done(helpers.tiny(), workdir), {'num_steps': 4})
    with self.assertRaisesRegex(ValueError, r"trained with 'shared' weights"):
      supernet_train.check_done(helpers.tiny('smash=true'), workdir)


if __name__ == '__main__':
  absltest.main()
