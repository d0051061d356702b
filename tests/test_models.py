"""Tests that the supernet and stand-alone models compute what the design says."""

import dataclasses
import functools
import re

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from osas import space as space_lib
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models import Supernet
from osas.models import cost as cost_lib
from osas.models import params_from_supernet
from osas.models.bender2018 import ChoiceBlock
from osas.models.initialize import init_variables
from osas.models.initialize import variable_shapes
from osas.space import Arch
from osas.space import SearchSpace

# Every op of the paper's in 2 blocks (a quarter of the 4-block cell's trace and compile);
# FULL, the paper's 4 blocks, where a test is about the whole cell.
SPACE = SearchSpace(num_blocks=2)
FULL = SearchSpace()
# Native depthwise convs compile faster; tests/test_kernels.py checks the shifted ones equal them.
SPEC = ModelSpec(num_classes=5, filters=4, num_stacks=2, cells_per_stack=1, kernels='native')
GHOSTS, PER_GHOST = 2, 4


_supernet = functools.partial(helpers.supernet, SPACE, SPEC)
_apply = functools.partial(helpers.jit_apply, SPACE, SPEC)


class SupernetTest(parameterized.TestCase):

  def test_no_running_averages(self):
    _, variables, _ = _supernet()
    self.assertEqual(set(variables), {'params'})

  def test_standalone_with_supernet_weights_gives_same_logits(self):
    net, variables, images = helpers.supernet(FULL, SPEC)
    apply = helpers.jit_apply(FULL, SPEC)
    # Between them, every op and every candidate input of the paper's 4-block cell.
    archs = [
        FULL.parse('0:sep3x3+max_pool | 1,2:sep5x5+identity | 0,3:sep7x7 | 1,2,4:conv1x7_7x1'),
        FULL.parse('1:avg_pool | 0,1:identity+sep3x3 | 1,2:max_pool+avg_pool | 0,3,4:sep5x5'),
    ] + FULL.decode_batch(FULL.sample_masks(jax.random.key(2), 1))
    for arch in archs:
      logits = apply(variables, images, helpers.tile(FULL.encode(arch), GHOSTS))
      expected = helpers.standalone_logits(FULL, SPEC, variables['params'], arch, images, GHOSTS)
      self.assertLess(helpers.rel_err(logits, expected), 1e-5, str(arch))

  def test_standalone_has_only_active_parts(self):
    arch = Arch.from_string('0:identity | 0,2:sep3x3 | 1:max_pool+avg_pool | 3:conv1x7_7x1')
    _, variables, _ = helpers.supernet(FULL, SPEC)
    params = params_from_supernet(variables['params'], arch)
    block = params['net']['stack_0']['block_1']
    self.assertEqual(set(block), {'input_0', 'input_2', 'op_sep3x3'})
    self.assertEqual(set(params['net']['stack_1']['block_3']), {'input_3', 'op_conv1x7_7x1'})
    model = Standalone(arch, FULL, SPEC)
    shapes = variable_shapes(model, jnp.zeros((1, 8, 8, 3)))
    self.assertEqual(jax.tree.structure(shapes['params']), jax.tree.structure(params))

  def test_each_ghost_uses_its_own_mask(self):
    net, variables, images = _supernet()
    masks = SPACE.sample_masks(jax.random.key(3), GHOSTS)
    logits = _apply()(variables, images, masks)
    for g in range(GHOSTS):
      one = jax.tree.map(lambda a: a[g : g + 1], masks)
      alone = _apply()(variables, images[g * PER_GHOST : (g + 1) * PER_GHOST], one)
      self.assertLess(helpers.rel_err(logits[g * PER_GHOST : (g + 1) * PER_GHOST], alone), 1e-5)

  def test_ghosts_do_not_see_each_other(self):
    net, variables, images = _supernet()
    masks = helpers.tile(SPACE.all_on(), GHOSTS)
    noise = jax.random.normal(jax.random.key(9), images[PER_GHOST:].shape)
    changed = images.at[PER_GHOST:].add(noise)
    a = _apply()(variables, images, masks)
    b = _apply()(variables, changed, masks)
    np.testing.assert_array_equal(a[:PER_GHOST], b[:PER_GHOST])
    self.assertGreater(float(jnp.abs(a[PER_GHOST:] - b[PER_GHOST:]).max()), 1e-3)

  def test_inactive_paths_get_exactly_zero_gradient(self):
    arch = SPACE.decode(jax.tree.map(lambda a: a[0], SPACE.sample_masks(jax.random.key(4), 1)))
    grads = helpers.arch_grads(SPACE, SPEC, arch)
    checked = 0
    for s in range(SPEC.num_stacks):
      for i, block in enumerate(arch.blocks):
        tree = grads['net'][f'stack_{s}'][f'block_{i}']
        for name, sub in tree.items():
          kind, _, what = name.partition('_')
          active = (int(what) in block.inputs) if kind == 'input' else (what in block.ops)
          norms = [float(jnp.abs(x).max()) for x in jax.tree.leaves(sub)]
          if active:
            self.assertGreater(min(norms), 0.0, f'stack {s} block {i} {name}')
          else:
            self.assertEqual(max(norms), 0.0, f'stack {s} block {i} {name}')
          checked += 1
    self.assertGreater(checked, 20)

  def test_node_with_all_inputs_dropped_gives_zeros(self):
    block = ChoiceBlock(SPACE, 1, 4, ghost=True, train=True)
    x = [jax.random.normal(jax.random.key(i), (4, 8, 8, 16)) for i in range(3)]
    on = jnp.ones((5,), bool)
    variables = init_variables(block, jax.random.key(0), x, on, jnp.ones((7,), bool))
    out = block.apply(variables, x, jnp.zeros((5,), bool), jnp.ones((7,), bool))
    np.testing.assert_array_equal(out, 0.0)
    out = block.apply(variables, x, on, jnp.zeros((7,), bool))  # All ops dropped.
    np.testing.assert_array_equal(out, 0.0)

  def test_vmap_over_64_masks_compiles_once_and_equals_separate_calls(self):
    net, variables, images = _supernet()
    ghost = images[:PER_GHOST]
    score = jax.jit(jax.vmap(lambda m: net.apply(variables, ghost, m, num_ghosts=1)))
    single = jax.jit(lambda m: net.apply(variables, ghost, m, num_ghosts=1))
    first = SPACE.sample_masks(jax.random.key(5), 64)
    batched = score(first)
    score(SPACE.sample_masks(jax.random.key(6), 64))
    self.assertEqual(score._cache_size(), 1)
    for n in range(64):
      one = single(jax.tree.map(lambda a: a[n], first))
      self.assertLess(helpers.rel_err(batched[n], one), 1e-5, n)

  def test_skip_execution_equals_masked(self):
    masks = SPACE.sample_masks(jax.random.key(7), 3)
    helpers.assert_skip_equals_masked(
        self, SPACE, SPEC, [jax.tree.map(lambda a, n=n: a[n], masks) for n in range(3)]
    )

  def test_batch_must_split_into_ghosts(self):
    net, variables, images = _supernet()
    with self.assertRaisesRegex(ValueError, 'does not split into 3 ghost batches'):
      net.apply(variables, images, helpers.tile(SPACE.all_on(), 3))


class MixedPrecisionTest(parameterized.TestCase):
  """config.model.dtype='bfloat16': bfloat16 convolutions, float32 params, statistics, logits."""

  @parameterized.parameters('bender2018', 'nasbench201')
  def test_bfloat16_activations_float32_params_stats_and_logits(self, name):
    space = SPACE if name == 'bender2018' else space_lib.get_space(name)
    spec = SPEC if name == 'bender2018' else dataclasses.replace(SPEC, filters=2)
    _, variables, images = helpers.supernet(space, spec)
    masks = helpers.tile(
        space.encode(space.decode_batch(space.sample_masks(jax.random.key(4), 1))[0]), GHOSTS
    )
    logits = {}
    for dtype in ('float32', 'bfloat16'):
      net = Supernet(space, dataclasses.replace(spec, dtype=dtype))
      forward = lambda p, net=net: net.apply({'params': p}, images, masks, num_ghosts=GHOSTS)
      logits[dtype] = jax.jit(forward)(variables['params'])
    self.assertEqual(logits['bfloat16'].dtype, jnp.float32)
    self.assertLess(helpers.rel_err(logits['bfloat16'], logits['float32']), 0.05)
    # Traced, not compiled: the gradients reach the float32 params as float32.
    loss = lambda p: jnp.mean(jax.nn.log_softmax(forward(p))[:, 0])
    grads = jax.eval_shape(jax.grad(loss), variables['params'])
    self.assertEqual({g.dtype for g in jax.tree.leaves(grads)}, {jnp.dtype(jnp.float32)})
    jaxpr = str(jax.make_jaxpr(forward)(variables['params']))  # The bfloat16 one.
    # Every convolution and matmul of the bfloat16 forward is bfloat16 but the classifier.
    products = re.findall(r':(\w+)\[[^\]]*\] = (?:dot_general|conv_general_dilated)', jaxpr)
    self.assertEqual(products.count('f32'), 1, jaxpr)
    self.assertGreater(products.count('bf16'), 3)

  def test_standalone_running_averages_stay_float32(self):
    spec = dataclasses.replace(SPEC, dtype='bfloat16')
    arch = SPACE.decode_batch(SPACE.sample_masks(jax.random.key(5), 1))[0]
    model = Standalone(arch, SPACE, spec)
    images = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
    variables = init_variables(model, jax.random.key(1), images[:1])
    apply = jax.jit(
        lambda v: (
            model.apply(v, images, train=True, mutable=['batch_stats'])[1],
            model.apply(v, images, train=False),
        )
    )
    updated, logits = apply(variables)
    self.assertEqual({x.dtype for x in jax.tree.leaves(updated)}, {jnp.dtype(jnp.float32)})
    self.assertEqual(logits.dtype, jnp.float32)

  def test_unknown_dtype_names_the_field(self):
    with self.assertRaisesRegex(ValueError, 'config.model.dtype'):
      dataclasses.replace(SPEC, dtype='float16')


class CostTest(parameterized.TestCase):

  def test_hand_count(self):
    space = SearchSpace(num_blocks=2, ops=('identity', 'sep3x3', 'max_pool'))
    spec = ModelSpec(num_classes=3, filters=2, num_stacks=2, cells_per_stack=1)
    arch = space.parse('0:sep3x3 | 1,2:identity+max_pool')
    # Stem: 3x3 conv 3->4 channels (cell width = 2 blocks * F) + BN(4), on 4x4 images.
    stem = (9 * 3 * 4 + 8, 16 * 9 * 3 * 4)
    # Stack 0 (C=2, 16 px): block 0 input 0: BN(4) + 1x1 conv 4->2; sep3x3 on 2 channels:
    # 2 x (BN(2) + 9*2 depthwise + 2*2 pointwise). Block 1: input 1 (4 wide) and
    # input 2 (block 0's output, 2 wide); identity and max pool have no weights.
    cell0 = (8 + 8 + 2 * (4 + 18 + 4) + 8 + 8 + 4 + 4, 16 * (8 + 2 * (18 + 4) + 8 + 4))
    # Reduction to 2x2 (4 px), twice: BN(4) + 1x1 conv 4 -> 8.
    reduce = (2 * (8 + 32), 2 * 4 * 32)
    # Stack 1 (C=4, cell width 8): input 0: BN(8) + 8*4; sep3x3: 2 x (BN(4)+36+16).
    cell1 = (16 + 32 + 2 * (8 + 36 + 16) + 16 + 32 + 8 + 16, 4 * (32 + 2 * (36 + 16) + 32 + 16))
    head = (16 + 8 * 3 + 3, 8 * 3)
    parts = (stem, cell0, reduce, cell1, head)
    expected = cost_lib.Cost(sum(p for p, _ in parts), sum(f for _, f in parts))
    self.assertEqual(cost_lib.cost(space, spec, arch, (4, 4, 3)), expected)
    model = Standalone(arch, space, spec)
    variables = init_variables(model, jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
    self.assertEqual(sum(x.size for x in jax.tree.leaves(variables['params'])), expected.params)

  @parameterized.parameters(('cifar', (8, 8, 3), 1), ('imagenet', (16, 16, 3), 2))
  def test_params_match_real_model(self, stem, shape, cells):
    spec = ModelSpec(num_classes=7, filters=2, num_stacks=2, cells_per_stack=cells, stem=stem)
    for arch in SPACE.decode_batch(SPACE.sample_masks(jax.random.key(8), 2)):
      model = Standalone(arch, SPACE, spec)
      variables = variable_shapes(model, jnp.zeros((1,) + shape))
      real = sum(x.size for x in jax.tree.leaves(variables['params']))
      self.assertEqual(cost_lib.cost(SPACE, spec, arch, shape).params, real)


class InitTest(absltest.TestCase):

  def test_he_normal_scale(self):
    model = Standalone(
        Arch.from_string('0:sep3x3 | 0:sep3x3 | 0:sep3x3 | 0:sep3x3'),
        FULL,
        ModelSpec(num_classes=10, filters=32, num_stacks=1, cells_per_stack=1),
    )
    variables = init_variables(model, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    block = variables['params']['net']['stack_0']['block_0']
    kernel = block['op_sep3x3']['pointwise_0']['kernel']  # [1, 1, 1, 32, 32], fan-in 32.
    self.assertAlmostEqual(float(jnp.std(kernel)), (2 / 32) ** 0.5, delta=0.02)
    np.testing.assert_array_equal(block['input_0']['bn']['scale'], 1.0)
    np.testing.assert_array_equal(variables['batch_stats']['net']['head_bn']['var'], 1.0)


if __name__ == '__main__':
  absltest.main()
