"""Tests of strategy 'evolution' and the cost limits of every strategy, with a cheap fake scorer."""

import hashlib
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from configs import default
import helpers
from osas import parallel
from osas.models import ModelSpec
from osas.models.cost import cost
from osas.search import evolution
from osas.search import limits as limits_lib
from osas.search import results
from osas.search import stage as search_stage
from osas.search import strategies
from osas.space import SearchSpace
from osas.space.nasbench201 import NasBench201Space

BENDER = SearchSpace(num_blocks=2, max_ops=1)  # 1,029 cells.
NB201 = NasBench201Space(num_nodes=3)  # 125 cells.
SPEC = ModelSpec(num_classes=4, filters=4, num_stacks=1, cells_per_stack=1)


def cost_of(space):
  return lambda arch: cost(space, SPEC, arch, (8, 8, 1))


def set_fields(config, **fields):
  """`config` with its dotted fields set, whatever their type ('search.evolution.top_k')."""
  for dotted, value in fields.items():
    *path, field = dotted.split('.')
    node = config
    for name in path:
      node = node[name]
    with node.ignore_type():
      node[field] = value
  return config


def section(**fields):
  """The tiny config's config.search: a small evolution, `fields` changed (dotted, in it)."""
  small = {
      'strategy': 'evolution',
      'evolution.population': 6,
      'evolution.iterations': 4,
      'evolution.top_k': 3,
  }
  return set_fields(helpers.tiny().search, **{**small, **fields})


def fake_record(arch):
  """A record with a score that is a fixed hash of the arch: deterministic, arbitrary."""
  text = arch.to_string()
  accuracy = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 16**8
  return dict(arch=text, accuracy=accuracy, loss=1 - accuracy, kl=None, params=1, flops=1)


def run_evolution(space, sec, path, limits=limits_lib.Limits(), fail_after=None, seed=0):
  """Runs the stage's rounds with `fake_record` scores saved to `path`, as the stage does.

  `fail_after`: raise (a kill) when generation `fail_after` is about to be scored.
  Returns the strategy and its saved states.
  """
  known = {r['arch']: r for r in results.read(path, repair=True)}
  strategy = strategies.build(space, seed, sec, limits)
  states = []

  def score(todo):
    if len(strategy.generations) == fail_after:
      raise KeyboardInterrupt
    records = [fake_record(a) for a in todo]
    results.append(path, records)
    return records

  search_stage.run_rounds(strategy, known, score, states.append)
  return strategy, states


class OperatorsTest(parameterized.TestCase):

  @parameterized.parameters((BENDER,), (NB201,))
  def test_children_are_valid_cells_made_of_their_parents_genes(self, space):
    rng = np.random.default_rng(0)
    masks = jax.tree.map(np.asarray, space.sample_masks(jax.random.key(0), 60))
    archs = space.decode_batch(masks)
    rows = lambda arch: [tuple(map(tuple, leaf)) for leaf in jax.tree.leaves(space.encode(arch))]
    for a, b, donor in zip(archs[:20], archs[20:40], archs[40:]):
      for child, other in (
          (evolution.crossover(space, a, b, rng), b),
          (evolution.mutate(space, a, space.encode(donor), 0.5, rng), donor),
      ):
        self.assertEqual(space.canonical(child), child)  # A valid cell, canonical.
        self.assertEqual(space.decode(space.encode(child)), child)
        for leaf, leaf_a, leaf_b in zip(rows(child), rows(a), rows(other)):
          for gene, gene_a, gene_b in zip(leaf, leaf_a, leaf_b):
            self.assertIn(gene, (gene_a, gene_b))
    a, donor = space.encode(archs[0]), space.encode(archs[1])
    self.assertEqual(evolution.mix(space, a, donor, 0.0, rng), archs[0])
    self.assertEqual(evolution.mix(space, a, donor, 1.0, rng), archs[1])

  def test_a_child_outside_the_space_is_none(self):
    a = BENDER.encode(BENDER.decode_batch(BENDER.sample_masks(jax.random.key(0), 1))[0])
    empty = jax.tree.map(np.zeros_like, a)  # No input, no op: no cell.
    self.assertIsNone(evolution.mix(BENDER, a, empty, 1.0, np.random.default_rng(0)))


class EvolutionTest(parameterized.TestCase):

  def test_defaults_are_single_path_one_shots(self):
    options = default.get_config().search.evolution
    self.assertEqual(
        (options.population, options.iterations, options.top_k),
        (50, 20, 10),
    )
    self.assertEqual((options.mutation_prob, options.crossover), (0.1, 0.5))

  @parameterized.parameters(('accuracy', [3, 4, 1]), ('loss', [0, 2, 4]))
  def test_parents_are_the_top_k_so_far_by_hand(self, rank_by, best):
    sec = section(rank_by=rank_by)
    strategy = strategies.build(NB201, 0, sec, limits_lib.Limits())
    archs = strategy.propose()
    # Accuracy: 3 > 4 = 1 > ... (a tie goes to fewer params: 4); loss: 0 < 2 < 4 = 1 < ...
    accuracy = [0.1, 0.8, 0.2, 0.9, 0.8, 0.3]
    loss = [0.1, 0.5, 0.2, 0.9, 0.5, 0.7]
    strategy.observe(
        [
            dict(fake_record(a), accuracy=accuracy[i], loss=loss[i], params=10 - i)
            for i, a in enumerate(archs)
        ]
    )
    self.assertEqual(strategy.parents(), [archs[i] for i in best])
    self.assertEqual(strategy.state()['top_k'], [archs[i].to_string() for i in best])

  @parameterized.parameters((BENDER,), (NB201,))
  def test_generations_are_new_distinct_and_deterministic_in_the_seed(self, space):
    path = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    strategy, states = run_evolution(space, section(), path)
    history = strategy.generations
    self.assertLen(history, 4)
    self.assertEqual([len(g) for g in history], [6] * 4)
    flat = [a for g in history for a in g]
    self.assertLen(set(flat), 24)  # Nothing proposed twice: no cell scored twice.
    self.assertEqual([r['arch'] for r in results.read(path)], flat)
    self.assertEqual([s['generations_done'] for s in states], [1, 2, 3, 4])
    self.assertEqual(states[-1]['history'], history)
    again = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    self.assertEqual(run_evolution(space, section(), again)[0].generations, history)
    other = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    self.assertNotEqual(run_evolution(space, section(), other, seed=1)[0].generations, history)

  def test_mutants_differ_from_a_parent_in_few_genes(self):
    # No crossover, mutation_prob 0.1 of 8 genes: a child is a parent with a few genes
    # redrawn (random cells differ from each in about 8), unless random cells filled in.
    space = SearchSpace()
    sec = section(**{'evolution.crossover': 0.0})
    strategy = strategies.build(space, 0, sec, limits_lib.Limits())
    strategy.observe([fake_record(a) for a in strategy.propose()])
    rows = lambda x: x.reshape(-1, x.shape[-1])
    genes = lambda arch: [tuple(r) for x in jax.tree.leaves(space.encode(arch)) for r in rows(x)]
    parents = [genes(p) for p in strategy.parents()]
    for child in map(genes, strategy.propose()):
      differing = min(sum(a != b for a, b in zip(child, p)) for p in parents)
      self.assertBetween(differing, 1, 3)

  def test_an_exhausted_space_ends_the_search(self):
    tiny = NasBench201Space(num_nodes=2, ops=('none', 'skip_connect', 'nor_conv_1x1'))  # 3 cells.
    path = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    strategy, _ = run_evolution(tiny, section(), path)
    self.assertEqual([len(g) for g in strategy.generations], [3])

  @parameterized.parameters(1, 2)
  def test_resume_after_a_kill_between_generations_equals_uninterrupted(self, killed_after):
    whole = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    strategy, states = run_evolution(BENDER, section(), whole)
    killed = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    with self.assertRaises(KeyboardInterrupt):
      run_evolution(BENDER, section(), killed, fail_after=killed_after)
    self.assertLen(results.read(killed), 6 * killed_after)
    resumed, resumed_states = run_evolution(BENDER, section(), killed)
    self.assertEqual(resumed.generations, strategy.generations)
    self.assertEqual(resumed_states[-1], states[-1])
    with open(whole) as f, open(killed) as g:
      self.assertEqual(f.read(), g.read())


class LimitsTest(parameterized.TestCase):

  @parameterized.product(strategy=('random', 'all', 'evolution'), field=('max_params', 'max_flops'))
  def test_every_proposed_candidate_is_within_the_limits(self, strategy, field):
    space = NB201
    costs = [cost_of(space)(a) for a in space.enumerate()]
    index = 0 if field == 'max_params' else 1
    bound = int(np.median([c[index] for c in costs]))
    sec = section(strategy=strategy, num_candidates=125, **{field: bound})
    limits = limits_lib.Limits.from_config(sec, cost_of(space))
    built = strategies.build(space, 0, sec, limits)
    proposed = []
    while candidates := built.propose():
      proposed += candidates
      built.observe([fake_record(a) for a in candidates])
    within = sum(c[index] <= bound for c in costs)
    self.assertNotEmpty(proposed)
    self.assertTrue(all(cost_of(space)(a)[index] <= bound for a in proposed))
    if strategy != 'evolution':  # 'random' asked for all 125: it finds every admitted one.
      self.assertLen(proposed, within)

  @parameterized.parameters('random', 'all', 'evolution')
  def test_limits_that_admit_nothing_are_one_line_naming_them(self, strategy):
    sec = section(strategy=strategy, num_candidates=125, max_params=10, max_flops=0)
    limits = limits_lib.Limits.from_config(sec, cost_of(NB201))
    with self.assertRaisesRegex(
        ValueError, r'^search: config.search.max_params=10 admit none of the [^\n]*$'
    ):
      strategies.build(NB201, 0, sec, limits).propose()

  def test_records_outside_the_limits_are_not_admitted(self):
    limits = limits_lib.Limits(max_params=10, max_flops=None)
    self.assertTrue(limits.admits_record({'params': 10, 'flops': 99}))
    self.assertFalse(limits.admits_record({'params': 11, 'flops': 1}))
    self.assertFalse(limits.admits_record({'params': None, 'flops': 1}))
    self.assertTrue(limits_lib.Limits().admits_record({'params': None, 'flops': None}))


class CheckTest(parameterized.TestCase):

  @parameterized.parameters(
      ('search.max_params', -1, r'config.search.max_params=-1 must be an integer >= 0'),
      ('search.max_flops', 2.5, r'config.search.max_flops=2.5 must be an integer'),
      ('search.evolution.population', 0, r'config.search.evolution.population=0 must be'),
      ('search.evolution.top_k', -2, r'config.search.evolution.top_k=-2 must be'),
      ('search.evolution.mutation_prob', 0.0, r'evolution.mutation_prob=0.0 must be in \(0, 1\]'),
      ('search.evolution.crossover', 1.5, r'evolution.crossover=1.5 must be in \[0, 1\]'),
      ('search.strategy', 'evolve', r"config.search.strategy: unknown 'evolve'"),
  )
  def test_bad_fields_are_named(self, field, value, message):
    config = set_fields(helpers.tiny(), **{'search.strategy': 'evolution', field: value})
    with self.assertRaisesRegex(ValueError, message):
      search_stage.check(config, parallel.make_mesh(1))

  def test_the_tiny_evolution_config_passes(self):
    config = set_fields(helpers.tiny(), **{'search.strategy': 'evolution'})
    search_stage.check(config, parallel.make_mesh(1))
    strategies.check(ml_collections.ConfigDict(dict(strategy='random', num_candidates=1)), BENDER)


if __name__ == '__main__':
  absltest.main()
