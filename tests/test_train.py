"""Unit tests of the training pieces: usage-weighted L2, schedules, the supernet step."""

import functools
import math
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import helpers
from osas import checkpoints
from osas import main
from osas import parallel
from osas import samplers
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models.bender2018 import usage_fraction
from osas.models.initialize import init_variables
from osas.space import Masks
from osas.space import SearchSpace
from osas.train import common
from osas.train import supernet as supernet_train


def _section(**overrides):
  fields = dict(
      learning_rate=0.1,
      batch_size=8,
      lr_reference_batch_size=4,
      num_steps=10,
      lr_schedule='cosine',
      warmup_steps=0,
      momentum=0.9,
      nesterov=True,
      ghost_batch_size=4,
      path_dropout_rate=0.5,
      weight_decay=0.01,
      sampler='path_dropout',
      bn_affine=True,
      ema_decay=0.0,
  )
  fields.update(overrides)
  return ml_collections.ConfigDict(fields)


# The step tests' cell: 2 blocks of 3 ops trace and compile in a third of the paper's time.
SMALL_SPACE = SearchSpace(num_blocks=2, ops=('identity', 'sep3x3', 'max_pool'))


class UsageTest(absltest.TestCase):

  def test_usage_fraction_by_hand(self):
    space = SearchSpace()
    inputs = np.zeros((4, 4, 5), bool)
    ops = np.zeros((4, 4, 7), bool)
    inputs[:3, 2, 1] = True  # Block 2 reads input 1 in ghosts 0, 1, 2.
    ops[:, 2, 3] = True  # sep7x7 of block 2 on in all ghosts, but ghost 3's node is empty.
    masks = Masks(jnp.asarray(inputs), jnp.asarray(ops))
    path = ('net', 'stack_0', 'block_2', 'input_1', 'conv', 'kernel')
    self.assertAlmostEqual(float(usage_fraction(space, path, masks)), 0.75)
    path = ('net', 'stack_0', 'block_2', 'op_sep7x7', 'pointwise_0', 'kernel')
    self.assertAlmostEqual(float(usage_fraction(space, path, masks)), 0.75)
    path = ('net', 'stack_0', 'block_2', 'op_sep3x3', 'pointwise_0', 'kernel')
    self.assertAlmostEqual(float(usage_fraction(space, path, masks)), 0.0)
    self.assertEqual(usage_fraction(space, ('net', 'stem', 'conv', 'kernel'), masks), 1.0)

  def test_l2_weights_kernels_only(self):
    params = {
        'a': {'kernel': jnp.full((2, 2), 2.0), 'bias': jnp.ones(3)},
        'b': {'depthwise_0': jnp.ones((3,)), 'scale': jnp.ones(4)},
    }
    self.assertAlmostEqual(float(common.l2(params)), 16.0 + 3.0)
    weighted = common.l2(params, lambda path: 0.5 if path[0] == 'a' else 1.0)
    self.assertAlmostEqual(float(weighted), 8.0 + 3.0)


class ScheduleTest(parameterized.TestCase):

  def test_cosine_scaled_with_batch(self):
    schedule = common.learning_rate(_section(), 'config.x')
    peak = 0.1 * 8 / 4
    for step in (0, 3, 10):
      self.assertAlmostEqual(
          float(schedule(step)), peak * 0.5 * (1 + math.cos(math.pi * step / 10)), places=6
      )

  def test_warmup_then_linear(self):
    schedule = common.learning_rate(
        _section(lr_schedule='linear', warmup_steps=2, batch_size=4), 'config.x'
    )
    self.assertAlmostEqual(float(schedule(1)), 0.05, places=6)
    self.assertAlmostEqual(float(schedule(2)), 0.1, places=6)
    self.assertAlmostEqual(float(schedule(6)), 0.05, places=6)

  def test_unknown_schedule_names_field(self):
    with self.assertRaisesRegex(ValueError, "config.x.lr_schedule: unknown 'step'"):
      common.learning_rate(_section(lr_schedule='step'), 'config.x')


class SupernetStepTest(absltest.TestCase):

  def test_step_equals_hand_written_update(self):
    space = SMALL_SPACE
    section = _section()
    model = Supernet(
        space,
        ModelSpec(num_classes=3, filters=2, num_stacks=1, cells_per_stack=1, kernels='native'),
    )
    images = jax.random.normal(jax.random.key(0), (8, 4, 4, 1))
    labels = jnp.array([0, 1, 2, 0, 1, 2, 0, 1])
    params = init_variables(
        model, jax.random.key(1), images, jax.tree.map(lambda x: x[None], space.all_on())
    )['params']
    tx = common.optimizer(section, 'config.supernet')
    state = supernet_train.SupernetState(
        step=jnp.array(3), params=params, opt_state=tx.init(params), key=jax.random.key(5)
    )
    mesh = parallel.make_mesh()
    step = jax.jit(
        functools.partial(
            supernet_train.train_step,
            model=model,
            tx=tx,
            sampler=samplers.get_sampler('path_dropout'),
            section=section,
            masks_sharding=parallel.data_sharding(mesh),
        )
    )
    new_state, metrics = step(state, {'image': images, 'label': labels})

    # By hand: the masks of step 3 (ramp 0.3), the loss with usage-weighted L2, SGD.
    masks = samplers.get_sampler('path_dropout')(
        jax.random.fold_in(state.key, 3), space, 2, 0.3, section
    )

    def loss_fn(p):
      logits = model.apply({'params': p}, images, masks)
      ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      l2 = 0.0
      for path, leaf in jax.tree_util.tree_flatten_with_path(p)[0]:
        names = common.path_names(path)
        if common.is_weight(names):
          l2 += usage_fraction(space, names, masks) * jnp.sum(leaf**2)
      return ce + 0.005 * l2, ce

    grads, ce = jax.grad(loss_fn, has_aux=True)(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    expected = optax.apply_updates(params, updates)
    self.assertEqual(int(new_state.step), 4)
    self.assertAlmostEqual(float(metrics.compute()['loss']), float(ce), places=5)
    for a, b in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(expected)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    moved = [
        float(jnp.abs(a - b).max())
        for a, b in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(params))
    ]
    self.assertGreater(max(moved), 0.0)


class SkipExecutionTest(parameterized.TestCase):
  """config.supernet.execution='skip' (ghost batches one by one, paths under lax.cond)."""

  def test_skip_step_equals_mask_step(self):
    # bender2018 with uniform_cell: test_multidevice (skip on 8 devices == mask on 1).
    config = helpers.tiny(
        'space=nasbench201',
        **{
            'supernet.sampler': 'uniform_class',
            'supernet.ghost_batch_size': 4,
            'model.kernels': 'cpu',  # Custom-gradient kernels inside shard_map.
        },
    )
    mesh = parallel.make_mesh()
    out = {}
    for execution in ('mask', 'skip'):
      config.supernet.execution = execution
      parts = supernet_train.build(config, mesh)
      state = supernet_train.init_state(parts, config, mesh)
      rng = np.random.default_rng(0)
      batch = {
          'image': rng.normal(size=(16,) + parts['train'].image_shape).astype(np.float32),
          'label': rng.integers(0, 3, 16).astype(np.int32),
      }
      state, metrics = parts['step'](state, parallel.global_batch(batch, mesh))
      out[execution] = (state.params, float(metrics.compute()['loss']))
    self.assertAlmostEqual(out['skip'][1], out['mask'][1], places=5)
    for a, b in zip(jax.tree.leaves(out['skip'][0]), jax.tree.leaves(out['mask'][0])):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

  def test_auto_skips_on_cpu_for_sparse_samplers_only(self):
    resolve = supernet_train.resolve_execution
    self.assertEqual(resolve('auto', 'uniform_class'), 'skip')
    self.assertEqual(resolve('auto', 'path_dropout'), 'mask')
    self.assertEqual(resolve('mask', 'uniform_cell'), 'mask')
    with mock.patch.object(jax, 'default_backend', return_value='tpu'):
      self.assertEqual(resolve('auto', 'uniform_class'), 'mask')

  def test_unknown_execution_names_the_field(self):
    config = helpers.tiny(**{'supernet.execution': 'cond'})
    with self.assertRaisesRegex(ValueError, "config.supernet.execution='cond'"):
      supernet_train.check(config, parallel.make_mesh())


class StateLayoutTest(absltest.TestCase):

  def test_checkpoint_layout_is_that_of_earlier_workdirs(self):
    # Orbax restores only into the tree a checkpoint was written with: a new field here
    # would make every supernet trained before it unreadable (ENAS's controller lives in
    # a subclass, used only with sampler 'controller').
    fields = lambda cls: tuple(cls.__dataclass_fields__)
    base = ('step', 'params', 'opt_state', 'key', 'batch_stats', 'ema_params')
    self.assertEqual(fields(supernet_train.SupernetState), base)
    self.assertEqual(fields(supernet_train.ControllerSupernetState), base + ('controller',))


class SupernetOptionsTest(absltest.TestCase):
  """config.supernet.bn_affine and ema_decay, one step against hand computation."""

  def _step(self, section, ema):
    space = SMALL_SPACE
    model = Supernet(
        space,
        ModelSpec(num_classes=3, filters=2, num_stacks=1, cells_per_stack=1, kernels='native'),
    )
    images = jax.random.normal(jax.random.key(0), (8, 4, 4, 1))
    params = init_variables(
        model, jax.random.key(1), images, jax.tree.map(lambda x: x[None], space.all_on())
    )['params']
    # Non-trivial BN affine parameters, so that "unchanged" is not "still at init".
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.5 if supernet_train.is_bn_affine(common.path_names(p)) else x, params
    )
    tx = common.optimizer(section, 'config.supernet')
    state = supernet_train.SupernetState(
        step=jnp.array(3),
        params=params,
        opt_state=tx.init(params),
        key=jax.random.key(5),
        ema_params=params if ema else None,
    )
    step = functools.partial(
        supernet_train.train_step,
        model=model,
        tx=tx,
        sampler=samplers.get_sampler('path_dropout'),
        section=section,
        masks_sharding=parallel.data_sharding(parallel.make_mesh()),
    )
    new, _ = jax.jit(step)(state, {'image': images, 'label': jnp.arange(8) % 3})
    return params, new

  def test_bn_affine_off_and_ema_in_one_step(self):
    # One compile for both switches: the default path is test_step_equals_hand_written_update.
    params, new = self._step(_section(bn_affine=False, ema_decay=0.9), ema=True)
    moved = {}
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(new.params)
    ):
      moved[common.path_names(path)] = float(jnp.abs(a - b).max())
    frozen = {p: m for p, m in moved.items() if supernet_train.is_bn_affine(p)}
    self.assertNotEmpty(frozen)
    self.assertEqual(set(frozen.values()), {0.0})  # Scale and shift: no gradient.
    self.assertGreater(moved[('net', 'classifier', 'bias')], 0.0)
    self.assertGreater(moved[('net', 'classifier', 'kernel')], 0.0)
    decay = min(0.9, (1 + 4) / (10 + 4))  # After the step, t = 4.
    for e, p0, p1 in zip(
        jax.tree.leaves(new.ema_params), jax.tree.leaves(params), jax.tree.leaves(new.params)
    ):
      np.testing.assert_allclose(e, decay * p0 + (1 - decay) * p1, rtol=1e-5, atol=1e-7)
    self.assertIs(supernet_train.weights(new), new.ema_params)

  def test_training_with_ema_keeps_a_separate_lagging_copy(self):
    # The step donates its state: EMA weights sharing the params' buffers cannot be donated.
    workdir = self.create_tempdir().full_path
    config = helpers.tiny(stages=('train_supernet',), **{'supernet.ema_decay': 0.9})
    main.run(config, workdir)
    mesh = parallel.make_mesh()
    parts = supernet_train.build(config, mesh)
    checkpointer = checkpoints.Checkpointer(os.path.join(workdir, 'supernet', 'checkpoints'))
    state, step = checkpointer.restore_latest(supernet_train.init_state(parts, config, mesh))
    checkpointer.close()
    self.assertEqual(step, config.supernet.num_steps)
    gaps = [
        float(jnp.abs(e - p).max())
        for e, p in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(state.params))
    ]
    self.assertGreater(max(gaps), 0.0)
    self.assertIs(supernet_train.weights(state), state.ema_params)


if __name__ == '__main__':
  absltest.main()
