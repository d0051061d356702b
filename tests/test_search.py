"""Tests of the search stage: evaluator, KL score, strategy, results file, selection, resume."""

import functools
import json
import math
import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import helpers
from osas import main
from osas import parallel
from osas import space as space_lib
from osas import workdir as workdir_lib
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models.cost import cost
from osas.models.initialize import init_variables
from osas.search import memory
from osas.search import results
from osas.search import selection
from osas.search import stage as search_stage
from osas.search import strategies
from osas.search.evaluator import Evaluator
from osas.search.evaluator import symmetrized_kl
from osas.space import SearchSpace

# Every op of the paper's, in 2 blocks: a quarter of the 4-block cell's trace and compile.
SPACE = SearchSpace(num_blocks=2)
SPEC = ModelSpec(num_classes=4, filters=2, num_stacks=1, cells_per_stack=1, kernels='native')


@functools.lru_cache(maxsize=None)
def _setup():
  images = jax.random.normal(jax.random.key(0), (16, 4, 4, 1))
  labels = jnp.arange(16) % 4
  params = init_variables(
      Supernet(SPACE, SPEC),
      jax.random.key(1),
      images[:8],
      jax.tree.map(lambda x: x[None], SPACE.all_on()),
  )['params']
  return params, images, labels


class EvaluatorTest(parameterized.TestCase):

  def test_one_compile_for_three_chunks_and_equal_to_a_loop(self):
    params, images, labels = _setup()
    evaluator = Evaluator(
        SPACE, SPEC, parallel.make_mesh(), mode='vmap', chunk_size=4, ghost_batch_size=8
    )
    masks = SPACE.sample_masks(jax.random.key(2), 11)  # 3 chunks, the last one short.
    batches = [(images[:8], labels[:8]), (images[8:], labels[8:])]
    scores = [
        evaluator.score(params, batches, jax.tree.map(lambda x: x[i : i + 4], masks))
        for i in (0, 4, 8)
    ]
    self.assertEqual(evaluator.compilations(), 1)
    accuracy = np.concatenate([s['accuracy'] for s in scores])
    loss = np.concatenate([s['loss'] for s in scores])
    self.assertLen(accuracy, 11)
    model = Supernet(SPACE, SPEC)
    apply = jax.jit(lambda mask: model.apply({'params': params}, images, mask, num_ghosts=2))
    for n in range(11):
      logits = apply(jax.tree.map(lambda x: x[n], masks))
      log_p = jax.nn.log_softmax(logits)
      self.assertAlmostEqual(accuracy[n], float(jnp.mean(jnp.argmax(logits, -1) == labels)))
      expected = -float(jnp.mean(log_p[jnp.arange(16), labels]))
      self.assertAlmostEqual(loss[n], expected, delta=1e-5 * expected)

  def test_skip_mode_scores_equal_vmap_mode(self):
    params, images, labels = _setup()
    masks = SPACE.sample_masks(jax.random.key(3), 4)
    reference_images = images[:8]
    out = {}
    for mode in ('vmap', 'skip'):
      evaluator = Evaluator(
          SPACE, SPEC, parallel.make_mesh(), mode=mode, chunk_size=4, ghost_batch_size=8
      )
      reference = evaluator.reference(params, reference_images)
      out[mode] = evaluator.score(params, [(images, labels)], masks, (reference_images, reference))
    for key in ('accuracy', 'loss', 'kl'):
      np.testing.assert_allclose(out['skip'][key], out['vmap'][key], rtol=1e-5, atol=1e-7)

  def test_memory_estimate_grows_with_the_vmapped_chunk(self):
    params, images, labels = _setup()
    need = {
        m: Evaluator(
            SPACE, SPEC, parallel.make_mesh(), mode='vmap', chunk_size=m, ghost_batch_size=8
        ).memory_bytes(params, (images, labels))
        for m in (1, 4)
    }
    self.assertGreater(need[1], sum(x.nbytes for x in jax.tree.leaves(params)))
    self.assertGreater(need[4], need[1])  # Activations of every candidate at once.

  def test_symmetrized_kl_by_hand(self):
    p, q = np.log([[0.5, 0.5]]), np.log([[0.9, 0.1]])
    # KL(p||q) = .5 ln(.5/.9) + .5 ln(.5/.1); KL(q||p) = .9 ln(.9/.5) + .1 ln(.1/.5).
    expected = (
        0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5) + 0.9 * math.log(1.8) + 0.1 * math.log(0.2)
    )
    self.assertAlmostEqual(float(symmetrized_kl(p, q)), expected, places=6)
    self.assertAlmostEqual(float(symmetrized_kl(q, q)), 0.0, places=7)

  def test_chunk_must_split_over_devices(self):
    with self.assertRaisesRegex(ValueError, 'config.search.chunk_size=0'):
      Evaluator(SPACE, SPEC, parallel.make_mesh(), mode='vmap', chunk_size=0, ghost_batch_size=8)


class StrategyAndResultsTest(parameterized.TestCase):

  def test_random_is_distinct_deterministic_and_capped(self):
    a = strategies.random_archs(SPACE, 0, 300)
    self.assertLen(set(a), 300)
    self.assertEqual(a, strategies.random_archs(SPACE, 0, 300))
    self.assertNotEqual(a, strategies.random_archs(SPACE, 1, 300))
    small = SearchSpace(num_blocks=1, ops=('a', 'b'), max_ops=1)  # 3 inputs x 2 ops = 6.
    self.assertLen(strategies.random_archs(small, 0, 50), 6)

  def test_truncated_last_line_is_repaired_only_when_asked(self):
    path = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    record = dict(arch='a', accuracy=0.5, loss=1.0, kl=None, params=3, flops=4)
    results.append(path, [record, {**record, 'arch': 'b'}])
    with open(path, 'a') as f:
      f.write('{"arch": "c", "accu')
    with self.assertRaisesRegex(ValueError, 'the last line is truncated'):
      results.read(path)
    self.assertEqual([r['arch'] for r in results.read(path, repair=True)], ['a', 'b'])
    self.assertEqual([r['arch'] for r in results.read(path)], ['a', 'b'])

  @parameterized.parameters(True, False)
  def test_append_and_repair_on_local_and_object_store_paths(self, local):
    path = os.path.join(self.create_tempdir().full_path, 'search', 'c.jsonl')
    record = dict(arch='a', accuracy=0.5, loss=1.0, kl=None, params=3, flops=4)
    with mock.patch.object(results, '_is_local', return_value=local):
      results.append(path, [record])
      results.append(path, [{**record, 'arch': 'b'}, {**record, 'arch': 'c'}])
      with open(path, 'a') as f:
        f.write('{"arch": "d", "accu')
      self.assertEqual([r['arch'] for r in results.read(path, repair=True)], ['a', 'b', 'c'])
    with open(path) as f:
      self.assertEqual([json.loads(line)['arch'] for line in f], ['a', 'b', 'c'])

  def test_malformed_line_names_file_and_line(self):
    path = os.path.join(self.create_tempdir().full_path, 'c.jsonl')
    with open(path, 'w') as f:
      f.write('{"arch": "a", "accuracy": 1, "loss": 1, "kl": null, "params": 1, "flops": 1}\n\n')
    with self.assertRaisesRegex(ValueError, 'c.jsonl, line 2: not a candidate record'):
      results.read(path, repair=True)


def _section(top_n, top_sample, small_percentile, small_n, random_n, all_on, buckets, per_bucket):
  """config.select with these fields."""
  return ml_collections.ConfigDict(
      dict(
          top_n=top_n,
          top_sample=top_sample,
          small_percentile=small_percentile,
          small_n=small_n,
          random_n=random_n,
          include_all_on=all_on,
          buckets=buckets,
          per_bucket=per_bucket,
      )
  )


class SelectionTest(absltest.TestCase):

  def test_groups_by_hand(self):
    records = [dict(arch=f'a{i}', accuracy=i / 100, params=1000 - i) for i in range(100)]
    section = _section(20, 4, 90, 2, 5, True, 4, 2)
    groups = selection.select(records, section, 0, 'ALL')
    top = [int(a[1:]) for a in groups['one_shot_top']]
    self.assertLen(top, 4)  # One from each stratum of five ranks among the best 20.
    for stratum, value in enumerate(sorted(top, reverse=True)):
      self.assertBetween(value, 99 - 5 * stratum - 4, 99 - 5 * stratum)
    self.assertEqual(groups['one_shot_small'], ['a99', 'a98'])  # Largest i = fewest params.
    self.assertLen(set(groups['random']), 5)
    self.assertEqual(groups['all_on'], ['ALL'])
    for b in range(4):  # Buckets of width 0.2475: [0, 24], [25, 49], [50, 74], [75, 99].
      for arch in groups[f'bucket_{b}']:
        self.assertEqual(min(int(arch[1:]) // 25, 3), b)

  def test_rank_by_turns_the_groups_around(self):
    # loss = -accuracy order reversed: ranked by loss the best are the low-accuracy ones;
    # a missing naswot ranks last whatever its accuracy.
    records = [
        dict(arch=f'a{i}', accuracy=i / 100, loss=i / 10, naswot=float(i), params=5)
        for i in range(100)
    ]
    records[0]['naswot'] = None
    section = _section(10, 10, 95, 10, 0, False, 0, 0)
    by_loss = selection.select(records, section, 0, None, 'loss')
    self.assertCountEqual(by_loss['one_shot_top'], [f'a{i}' for i in range(10)])
    self.assertCountEqual(by_loss['one_shot_small'], [f'a{i}' for i in range(5)])
    by_mean = selection.select(records, section, 0, None, 'naswot+accuracy')
    self.assertCountEqual(by_mean['one_shot_top'], [f'a{i}' for i in range(90, 100)])
    self.assertNotIn('a0', by_mean['one_shot_small'])

  def test_top_by_adds_a_group_and_changes_no_other(self):
    # naswot runs against accuracy: its top 10 are the 10 lowest accuracies.
    records = [
        dict(arch=f'a{i}', accuracy=i / 100, naswot=float(-i), params=1000 - i) for i in range(100)
    ]
    section = _section(10, 3, 90, 2, 4, False, 3, 2)
    plain = selection.select(records, section, 0, None)
    section.top_by = ('naswot', 'accuracy')
    both = selection.select(records, section, 0, None)
    self.assertEqual({k: v for k, v in both.items() if not k.startswith('top_by:')}, plain)
    self.assertEqual(list(both)[-2:], ['top_by:naswot', 'top_by:accuracy'])
    self.assertLen(both['top_by:naswot'], 3)
    self.assertContainsSubset(both['top_by:naswot'], [f'a{i}' for i in range(10)])
    self.assertContainsSubset(both['top_by:accuracy'], [f'a{i}' for i in range(90, 100)])


class SearchCheckTest(parameterized.TestCase):

  @parameterized.parameters(
      ('rank_by', 'synflow*flops', "config.search.rank_by='synflow\\*flops' needs 'synflow'"),
      ('top_by', ('loss', 'kl'), "config.select.top_by='kl' needs the KL score"),
      ('top_by', ('los',), "config.select.top_by='los': unknown score 'los'"),
  )
  def test_rankings_need_their_scores(self, field, value, message):
    config = helpers.tiny()
    config.search.kl_examples = 0
    (config.search if field == 'rank_by' else config.select)[field] = value
    with self.assertRaisesRegex(ValueError, message):
      search_stage.check(config, parallel.make_mesh(1))


class SearchStageTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # Its own directory: test workers running in parallel (pytest -n) never share it.
    os.makedirs(absltest.get_default_test_tmpdir(), exist_ok=True)
    cls.root = tempfile.mkdtemp(prefix='search_stage_', dir=absltest.get_default_test_tmpdir())
    cls.trained = os.path.join(cls.root, 'trained')
    main.run(helpers.tiny(stages=('train_supernet',)), cls.trained)

  def _copy(self, name):
    path = os.path.join(self.root, name)
    shutil.copytree(self.trained, path)
    return path

  def test_resume_after_kill_gives_the_same_file(self):
    config = helpers.tiny(stages=('search',))
    whole = self._copy('whole')
    main.run(config, whole)
    path = os.path.join(whole, 'search', 'candidates.jsonl')
    with open(path) as f:
      lines = f.readlines()
    self.assertLen(lines, 6)
    self.assertLen({json.loads(l)['arch'] for l in lines}, 6)
    selected = workdir_lib.read_json(whole, 'search', 'selection.json')
    self.assertEqual(set(selected['groups']), {'one_shot_top', 'one_shot_small'})
    # A kill can leave any prefix of whole lines plus part of the next line.
    for cut in (0, 3, 4):
      killed = self._copy(f'killed_{cut}')
      os.makedirs(os.path.join(killed, 'search'), exist_ok=True)
      with open(os.path.join(killed, 'search', 'candidates.jsonl'), 'w') as f:
        f.writelines(lines[:cut])
        f.write(lines[cut][:17])
      main.run(config, killed)
      with open(os.path.join(killed, 'search', 'candidates.jsonl')) as f:
        self.assertEqual(f.readlines(), lines, cut)

  def test_evolution_within_a_limit_saves_each_generation(self):
    config = helpers.tiny(stages=('search',), **{'search.strategy': 'evolution'})
    for field, value in dict(population=4, iterations=2, top_k=2).items():
      config.search.evolution[field] = value
    # Stand-alone models at config.retrain.filters on the digits' 8x8x1 images, 10 classes.
    spec = ModelSpec.from_config({**config.model, 'filters': config.retrain.filters}, 10)
    space = space_lib.from_config(config.space)
    params = lambda arch: cost(space, spec, arch, (8, 8, 1)).params
    drawn = strategies.random_archs(space, 1, 64)
    config.search.max_params = int(np.median([params(a) for a in drawn]))
    workdir = self._copy('evolution')
    main.run(config, workdir)
    records = results.read(os.path.join(workdir, 'search', 'candidates.jsonl'))
    state = workdir_lib.read_json(workdir, 'search', 'evolution.json')
    self.assertEqual(state['generations_done'], 2)
    self.assertEqual([r['arch'] for r in records], [a for g in state['history'] for a in g])
    self.assertLen({r['arch'] for r in records}, 8)
    for record in records:
      self.assertLessEqual(record['params'], config.search.max_params)
      self.assertEqual(record['params'], params(space.parse(record['arch'])))
    selected = workdir_lib.read_json(workdir, 'search', 'selection.json')
    limits = {'max_params': config.search.max_params, 'max_flops': None}
    self.assertEqual(selected['limits'], limits)
    # Resumed with every generation scored: nothing is scored again, nothing changes.
    before = helpers.snapshot(os.path.join(workdir, 'search'))
    main.run(config, workdir)
    self.assertEqual(helpers.snapshot(os.path.join(workdir, 'search')), before)

  def test_search_before_training_is_refused(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(ValueError, 'has not finished training'):
      main.run(helpers.tiny(stages=('search',)), workdir)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'search')))

  def test_unreadable_checkpoint_is_refused(self):
    broken = self._copy('broken')
    shutil.rmtree(os.path.join(broken, 'supernet', 'checkpoints'))
    os.makedirs(os.path.join(broken, 'supernet', 'checkpoints', '4'))
    with self.assertRaisesRegex(ValueError, 'search: '):
      main.run(helpers.tiny(stages=('search',)), broken)

  @parameterized.parameters(
      ('search.num_candidates', 0, 'num_candidates=0'),
      ('search.chunk_size', -4, 'chunk_size=-4'),
      ('search.kl_examples', 5, 'kl_examples=5'),
      ('search.checkpoint_step', -1, 'checkpoint_step=-1'),
  )
  def test_bad_search_config(self, field, value, message):
    with self.assertRaisesRegex(ValueError, message):
      main.run(helpers.tiny(stages=('search',), **{field: value}), self.create_tempdir().full_path)

  def test_validation_smaller_than_a_batch_is_refused(self):
    workdir = self._copy('small_valid')
    big = helpers.tiny(stages=('search',), **{'search.batch_size': 1024})
    with self.assertRaisesRegex(
        ValueError, r'no complete evaluation batch: .* ' r'config.search.batch_size=1024'
    ):
      main.run(big, workdir)
    self.assertFalse(os.path.exists(os.path.join(workdir, 'search', 'candidates.jsonl')))

  def test_chunk_larger_than_memory_is_refused_and_nothing_lost(self):
    workdir = self._copy('memory')
    main.run(helpers.tiny(stages=('search',)), workdir)
    results_dirs = [os.path.join(workdir, d) for d in ('search', 'supernet')]
    before = [helpers.snapshot(d) for d in results_dirs]
    more = helpers.tiny(stages=('search',), **{'search.num_candidates': 10})
    with mock.patch.object(memory, 'device_limit_bytes', return_value=1024):
      with self.assertRaisesRegex(ValueError, r'config.search.chunk_size=4 .* needs about'):
        main.run(more, workdir)
    self.assertEqual([helpers.snapshot(d) for d in results_dirs], before)


class ChunkSizeTest(absltest.TestCase):

  def test_the_largest_chunk_that_fits_by_hand(self):
    # Per device: 1000 fixed + 100 per candidate, so at m candidates over 2 devices
    # 1000 + 50 m; half of 10,000 leaves room for m = 80.
    need = lambda m: 1000 + 50 * m
    self.assertEqual(memory.fitting_chunk_size(need, 10_000, 2, candidates=1000), 80)
    self.assertEqual(memory.fitting_chunk_size(need, 10_000, 2, candidates=31), 32)
    self.assertEqual(memory.fitting_chunk_size(need, 10**9, 2, candidates=1000), 128)
    self.assertEqual(memory.fitting_chunk_size(need, 1_000, 2, candidates=1000), 2)
    self.assertEqual(memory.fitting_chunk_size(lambda m: 10, 100, 4, candidates=1000), 256)

  def test_check_names_the_fields(self):
    memory.check(2**30, 2**30, chunk_size=8, batch_size=64)
    with self.assertRaisesRegex(
        ValueError,
        r'chunk_size=8 with config.search.batch_size=64 '
        r'needs about 1.00 GiB .* than the 0.50 GiB',
    ):
      memory.check(2**30, 2**29, chunk_size=8, batch_size=64)


if __name__ == '__main__':
  absltest.main()
