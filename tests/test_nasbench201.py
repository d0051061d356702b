"""Tests of the nasbench201 space: strings, masks, path dropout, models, cost, a tiny run."""

import collections
import functools
import math
import os
import shutil

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import helpers
from osas import main
from osas import models
from osas import samplers
from osas import space as space_lib
from osas import workdir as workdir_lib
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models import cost as cost_lib
from osas.models.initialize import variable_shapes
from osas.search import results
from osas.search import strategies
from osas.space import nasbench201
from osas.space.nasbench201 import NasBench201Space

EXAMPLE = (
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+'
    '|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
)
SPACE = space_lib.get_space('nasbench201')
TINY = NasBench201Space(num_nodes=3, ops=('none', 'skip_connect', 'nor_conv_1x1'))  # 27 cells.
SPEC = ModelSpec(num_classes=5, filters=4, num_stacks=2, cells_per_stack=1)
GHOSTS = 2  # Of 4 images each (helpers.supernet).


class SpaceTest(parameterized.TestCase):

  def test_size_is_computed(self):
    self.assertEqual(SPACE.size, 15625)
    self.assertEqual(NasBench201Space(num_nodes=5).size, 5**10)
    self.assertEqual(TINY.size, 27)
    self.assertEqual(SPACE.edges, ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)))

  def test_example_round_trips_exactly(self):
    arch = SPACE.parse(EXAMPLE)
    self.assertEqual(arch.to_string(), EXAMPLE)
    self.assertEqual(arch.nodes[2], ('skip_connect', 'nor_conv_3x3', 'skip_connect'))
    self.assertEqual(arch.ops[3:], arch.nodes[2])
    self.assertEqual(nasbench201.Arch.from_string(EXAMPLE), arch)
    self.assertEqual(space_lib.Arch.from_json(arch.to_json()), arch)  # 'space' picks nb201.
    self.assertEqual(SPACE.decode(SPACE.encode(arch)), arch)
    np.testing.assert_array_equal(SPACE.encode(arch).ops[2], [0, 0, 0, 0, 1])

  def test_parse_canonicalises_edge_order_and_spaces(self):
    messy = (
        ' |nor_conv_3x3~0| + | avg_pool_3x3~1|nor_conv_3x3~0 |+'
        '|nor_conv_3x3~1|skip_connect~2|skip_connect~0|'
    )
    self.assertEqual(SPACE.parse(messy).to_string(), EXAMPLE)

  def test_every_cell_of_a_tiny_space_round_trips(self):
    archs = list(TINY.enumerate())
    self.assertLen(archs, TINY.size)
    self.assertLen({a.to_string() for a in archs}, TINY.size)
    for arch in archs:
      self.assertEqual(TINY.parse(arch.to_string()), arch)
      self.assertEqual(nasbench201.Arch.from_json(arch.to_json(), TINY), arch)
      self.assertEqual(TINY.decode(TINY.encode(arch)), arch)
    self.assertEqual(strategies.all_archs(TINY, 0, 27), archs)

  @parameterized.parameters(
      ('|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|', "node 1: unknown op 'conv_5x5'"),
      ('|none~0|+|none~0|none~1|', 'cell has 3 nodes'),
      ('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|', 'cell has 5 nodes'),
      (
          '|none~0|+|none~0|none~3|+|none~0|none~1|none~2|',
          'node 2 reads node 3, only nodes 0..1 exist',
      ),
      (
          '|none~0|+|none~0|none~1|+|none~0|none~1|none~7|',
          'node 3 reads node 7, only nodes 0..2 exist',
      ),
      ('|none~0|+|none~0|+|none~0|none~1|none~2|', 'node 2 has no edge from node 1'),
      ('|none~0|+|none~0|none~0|+|none~0|none~1|none~2|', 'node 2 lists node 0 twice'),
      ('|none~0|+|none~0|none|+|none~0|none~1|none~2|', "node 2: malformed edge 'none'"),
      ('none~0+|none~0|none~1|+|none~0|none~1|none~2|', 'node 1: malformed'),
      ('', 'empty'),
  )
  def test_malformed_strings_name_the_problem(self, text, message):
    with self.assertRaisesRegex(ValueError, message):
      SPACE.parse(text)

  def test_decode_needs_one_op_per_edge(self):
    ops = SPACE.encode(SPACE.parse(EXAMPLE)).ops.copy()
    ops[4, 0] = True
    with self.assertRaisesRegex(ValueError, 'edge 1->3 has 2 ops on'):
      SPACE.decode(nasbench201.EdgeMasks(ops))

  def test_uniform_single_path_samples(self):
    n = 20000
    masks = np.asarray(jax.jit(TINY.sample_masks, static_argnums=1)(jax.random.key(0), n).ops)
    np.testing.assert_array_equal(masks.sum(-1), 1)  # One op per edge: a single path.
    counts = collections.Counter(map(str, TINY.decode_batch(nasbench201.EdgeMasks(masks))))
    self.assertLen(counts, 27)
    expected = n / 27
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    self.assertLess(chi2, 26 + 4 * math.sqrt(2 * 26))  # dof 26, 4 standard deviations.

  def test_registry_and_config(self):
    self.assertEqual(space_lib.get_space('nasbench201'), NasBench201Space())
    self.assertIsNone(SPACE.all_on_arch())
    section = ml_collections.ConfigDict(
        dict(
            name='nasbench201',
            bender2018=dict(num_blocks=2),
            nasbench201=dict(num_nodes=3, ops=['none', 'skip_connect', 'nor_conv_1x1']),
        )
    )
    self.assertEqual(space_lib.from_config(section), TINY)
    section.name = 'bender2018'
    self.assertEqual(space_lib.from_config(section).num_blocks, 2)
    with self.assertRaisesRegex(ValueError, 'config.space.num_blocks: not a registered space'):
      space_lib.from_config(ml_collections.ConfigDict(dict(name='bender2018', num_blocks=2)))
    with self.assertRaisesRegex(ValueError, r"config.space.nasbench201: unknown ops \['sep3x3'\]"):
      NasBench201Space(ops=('none', 'sep3x3'))

  def test_all_strategy_is_capped_by_num_candidates(self):
    section = ml_collections.ConfigDict(dict(strategy='all', num_candidates=15625))
    strategies.check(section, SPACE)
    with self.assertRaisesRegex(ValueError, "strategy='all' scores all 6,002,115,840 cells"):
      strategies.check(section, space_lib.get_space('bender2018'))


class IsomorphismTest(absltest.TestCase):

  def test_the_benchmarks_6466_distinct_cells(self):
    self.assertEqual(SPACE.num_classes, 6466)

  def test_keys_by_hand(self):
    key = SPACE.isomorphism_key
    # A skip is its input; none is '#'; two cells that differ only in a dead end agree.
    self.assertEqual(
        key(
            SPACE.parse(
                '|skip_connect~0|+|none~0|nor_conv_3x3~1|+' '|none~0|none~1|skip_connect~2|'
            )
        ),
        '#+#+#+(0)@nor_conv_3x3',
    )  # node 2 = '#+(0)@nor_conv_3x3', skipped in.
    a = SPACE.parse('|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|')
    b = SPACE.parse('|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|')
    self.assertEqual(key(a), key(b))  # Node 1 feeds nothing that reaches the output.
    c = SPACE.parse('|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|')
    self.assertNotEqual(key(a), key(c))

  def test_uniform_class_sampler_draws_classes_evenly(self):
    masks = samplers.get_sampler('uniform_class', SPACE)(jax.random.key(0), SPACE, 60000, 1.0, None)
    keys = collections.Counter(SPACE.isomorphism_key(a) for a in SPACE.decode_batch(masks))
    self.assertGreater(len(keys), 6000)  # 60,000 draws of 6,466: nearly all seen.
    counts = np.array(list(keys.values()))
    # Uniform over classes: ~9.3 draws each, Poisson spread; uniform over the 15,625
    # strings would give the largest classes hundreds.
    self.assertLess(counts.max(), 40)
    self.assertAlmostEqual(counts.mean(), 60000 / len(keys), delta=0.5)

  def test_uniform_class_needs_classes(self):
    with self.assertRaisesRegex(ValueError, "sampler='uniform_class'.*bender2018"):
      samplers.get_sampler('uniform_class', space_lib.get_space('bender2018'))


class PathDropoutTest(absltest.TestCase):

  def test_each_op_of_each_edge_drops_with_its_probability(self):
    ramp, rate, n = 0.8, 0.3, 40000
    ops = np.asarray(SPACE.drop_masks(jax.random.key(0), n, ramp=ramp, rate=rate).ops)
    self.assertEqual(ops.shape, (n, 6, 5))
    np.testing.assert_array_equal(ops[..., 0], False)  # 'none' is no path: never on.
    p = ramp * rate ** (1 / 4)  # k = 4 real ops per edge.
    se = math.sqrt(p * (1 - p) / n)
    dropped = 1 - ops[..., 1:].mean(0)
    self.assertLess(float(np.abs(dropped - p).max()), 4 * se, dropped)
    # At ramp 1 all four real ops of an edge drop together with probability rate.
    ops = np.asarray(SPACE.drop_masks(jax.random.key(1), n, ramp=1.0, rate=rate).ops)
    whole = (~ops).all(-1).mean(0)
    self.assertLess(float(np.abs(whole - rate).max()), 4 * math.sqrt(rate * (1 - rate) / n), whole)


_supernet = functools.partial(helpers.supernet, SPACE, SPEC)
_apply = functools.partial(helpers.jit_apply, SPACE, SPEC)


# 'none' edges, a node with no input (node 1) feeding convs, every op once at least.
ARCHS = (
    EXAMPLE,
    '|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|' 'nor_conv_1x1~2|',
)


class ModelTest(absltest.TestCase):

  def test_standalone_with_supernet_weights_gives_same_logits(self):
    _, variables, images = _supernet()
    for arch in map(SPACE.parse, ARCHS):
      logits = _apply()(variables, images, helpers.tile(SPACE.encode(arch), GHOSTS))
      expected = helpers.standalone_logits(SPACE, SPEC, variables['params'], arch, images, GHOSTS)
      self.assertLess(helpers.rel_err(logits, expected), 1e-5, str(arch))

  def test_inactive_ops_get_exactly_zero_gradient(self):
    arch = SPACE.parse(EXAMPLE)  # Every node reads the input: every active op learns.
    grads = helpers.arch_grads(SPACE, SPEC, arch)
    checked = 0
    for s in range(SPEC.num_stacks):
      for name, edge in grads['net'][f'stack_{s}'].items():
        i, j = map(int, name.split('_')[1:])
        for op, sub in edge.items():
          norms = [float(jnp.abs(x).max()) for x in jax.tree.leaves(sub)]
          if op == f'op_{arch.nodes[j - 1][i]}':
            self.assertGreater(min(norms), 0.0, f'stack {s} {name} {op}')
          else:
            self.assertEqual(max(norms), 0.0, f'stack {s} {name} {op}')
          checked += 1
    self.assertEqual(checked, 2 * 6 * 2)  # Two stacks, six edges, two ops with weights.

  def test_cpu_and_native_kernels_agree(self):
    small = NasBench201Space(num_nodes=3)  # Every op on 3 edges: half the 6-edge cell's compile.
    helpers.assert_kernels_agree(self, small, SPEC, small.sample_masks(jax.random.key(7), 2))

  def test_skip_execution_equals_masked(self):
    helpers.assert_skip_equals_masked(self, SPACE, SPEC, [SPACE.encode(SPACE.parse(ARCHS[1]))])

  def test_bad_ghost_axes_are_refused(self):
    net, variables, images = _supernet()
    with self.assertRaisesRegex(ValueError, 'does not split into 3 ghost batches'):
      net.apply(variables, images, helpers.tile(SPACE.all_on(), 3))
    with self.assertRaisesRegex(ValueError, r'got \(2, 2, 6, 5\) for cells of \(6, 5\)'):
      net.apply(
          variables,
          images,
          helpers.tile(SPACE.all_on(), 2)._replace(ops=jnp.ones((2, 2, 6, 5), bool)),
      )

  def test_usage_fraction_by_hand(self):
    ops = np.zeros((4, 6, 5), bool)
    ops[:3, 4, 3] = True  # nor_conv_3x3 on edge 1->3 in ghosts 0, 1, 2.
    masks = nasbench201.EdgeMasks(jnp.asarray(ops))
    path = ('net', 'stack_1', 'edge_1_3', 'op_nor_conv_3x3', 'conv', 'kernel')
    usage = models.of(SPACE).usage_fraction
    self.assertAlmostEqual(float(usage(SPACE, path, masks)), 0.75)
    path = ('net', 'stack_1', 'edge_1_3', 'op_nor_conv_1x1', 'conv', 'kernel')
    self.assertAlmostEqual(float(usage(SPACE, path, masks)), 0.0)
    self.assertEqual(usage(SPACE, ('net', 'reduce_1', 'conv_a', 'kernel'), masks), 1.0)


class CostTest(absltest.TestCase):

  def test_params_match_real_model(self):
    spec = ModelSpec(num_classes=7, filters=4, num_stacks=3, cells_per_stack=2)
    for text in ARCHS:
      arch = SPACE.parse(text)
      shapes = variable_shapes(Standalone(arch, SPACE, spec), jnp.zeros((1, 16, 16, 3)))
      real = sum(x.size for x in jax.tree.leaves(shapes['params']))
      self.assertEqual(cost_lib.cost(SPACE, spec, arch, (16, 16, 3)).params, real, text)

  def test_benchmark_sizes(self):
    # NAS-Bench-201's CIFAR-10 networks (C = 16, N = 5) range from 0.0733 M parameters and
    # 7.78 MFLOPs (every edge none) to 1.5315 M and 220.12 MFLOPs (every edge a 3x3 conv).
    spec = ModelSpec(num_classes=10, filters=16, num_stacks=3, cells_per_stack=5)
    smallest = SPACE.parse('|none~0|+|none~0|none~1|+|none~0|none~1|none~2|')
    largest = SPACE.parse(
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+'
        '|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    )
    self.assertEqual(cost_lib.cost(SPACE, spec, smallest, (32, 32, 3)), (73306, 7783040))
    self.assertEqual(cost_lib.cost(SPACE, spec, largest, (32, 32, 3)), (1531546, 220119680))


class PipelineTest(absltest.TestCase):

  # The whole tiny pipeline in this space, but retraining, runs with ENAS's controller and
  # SMASH's weights: test_controller.PipelineTest.

  def test_retrain_trains_the_cell_and_records_its_stand_alone_size(self):
    workdir = self.create_tempdir().full_path
    config = helpers.tiny('space=nasbench201', stages=('retrain',))
    main.run(config, workdir)
    space = space_lib.get_space('nasbench201')
    arch = space.parse(config.retrain.archs[0])
    result = workdir_lib.read_json(workdir, 'retrain', arch.id, 'result.json')
    self.assertEqual(result['arch'], arch.to_string())
    self.assertEqual(result['steps'], config.retrain.num_steps)
    spec = ModelSpec(num_classes=10, filters=2, num_stacks=1, cells_per_stack=1)
    self.assertEqual(result['params'], cost_lib.cost(space, spec, arch, (8, 8, 1)).params)
    shapes = variable_shapes(Standalone(arch, space, spec), jnp.zeros((1, 8, 8, 1)))
    self.assertEqual(result['params'], sum(x.size for x in jax.tree.leaves(shapes['params'])))

  def test_per_class_scores_each_distinct_cell_once(self):
    # 27 cells of a 3-node space with ops none/skip/1x1, in fewer isomorphism classes.
    small = dict(num_nodes=3, ops=['none', 'skip_connect', 'nor_conv_1x1'])
    space = NasBench201Space(**small)
    keys = {space.isomorphism_key(a) for a in space.enumerate()}
    overrides = {
        'space.nasbench201': small,
        'search.strategy': 'all',
        'search.num_candidates': 27,
        'search.zero_cost': ('naswot',),
    }
    trained = self.create_tempdir().full_path
    main.run(helpers.tiny('space=nasbench201', stages=('train_supernet',), **overrides), trained)
    found = {}
    for per_class in (True, False):
      workdir = os.path.join(self.create_tempdir().full_path, 'w')
      shutil.copytree(trained, workdir)
      config = helpers.tiny(
          'space=nasbench201', stages=('search',), **overrides, **{'search.per_class': per_class}
      )
      main.run(config, workdir)
      found[per_class] = {
          r['arch']: r for r in results.read(os.path.join(workdir, 'search', 'candidates.jsonl'))
      }
    by_class, by_cell = found[True], found[False]
    self.assertLen(by_class, 27)
    scored = [r for r in by_class.values() if results.SAME_AS not in r]
    self.assertLen(scored, len(keys))
    self.assertLess(len(keys), 27)
    for record in by_class.values():
      first = by_class[record.get(results.SAME_AS, record['arch'])]
      key = space.isomorphism_key(space.parse(record['arch']))
      self.assertEqual(space.isomorphism_key(space.parse(first['arch'])), key)
      for field in ('accuracy', 'loss', 'naswot'):
        self.assertEqual(record[field], first[field])
    for record in scored:  # Scored alone, each class's first cell gets the same scores.
      for field in ('accuracy', 'loss', 'naswot'):
        self.assertAlmostEqual(record[field], by_cell[record['arch']][field], places=4)


if __name__ == '__main__':
  absltest.main()
