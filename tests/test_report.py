"""Tests of the report stage: loading, Table 1, rank correlations, figures, missing inputs."""

import itertools
import json
import math
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections

from osas.report import default_report_config
from osas.report import ground_truth
from osas.report import loading
from osas.report import stage
from osas.report import tables

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
FIGURES = ('one_shot_vs_standalone.png', 'score_histogram.png', 'kl_vs_accuracy.png')
# Five candidates: a is best one-shot, KL falls as accuracy rises (the label-free score).
CANDIDATES = [
    {'arch': 'a', 'accuracy': 0.80, 'loss': 0.6, 'kl': 0.01, 'params': 1000, 'flops': 10},
    {'arch': 'b', 'accuracy': 0.70, 'loss': 0.9, 'kl': 0.10, 'params': 3000, 'flops': 30},
    {'arch': 'c', 'accuracy': 0.60, 'loss': 1.1, 'kl': 0.50, 'params': 2000, 'flops': 20},
    {'arch': 'd', 'accuracy': 0.50, 'loss': 1.4, 'kl': 1.00, 'params': 4000, 'flops': 40},
    {'arch': 'e', 'accuracy': 0.40, 'loss': 1.8, 'kl': 2.00, 'params': 5000, 'flops': 50},
]
GROUPS = {'random': ['c', 'd'], 'bucket_1': ['a'], 'one_shot_top': ['a', 'b'],
          'bucket_0': ['e']}
# Stand-alone accuracies in the one-shot order except b and c swapped; 'x' was never scored.
RESULTS = {'a': (0.95, 1000), 'b': (0.91, 3000), 'c': (0.93, 2000), 'd': (0.89, 4000),
           'e': (0.88, 5000), 'x': (0.97, 9000)}


def config(**fields):
  section = default_report_config()
  section.update(fields)
  return ml_collections.ConfigDict({'report': section,
                                    'retrain': {'eval_splits': ('valid', 'test')}})


class WorkdirTestCase(parameterized.TestCase):
  """Writes a workdir by hand and runs the report on it; no tests of its own."""

  def workdir(self, candidates=CANDIDATES, groups=GROUPS, results=RESULTS):
    """A workdir by hand; None leaves the file out."""
    root = self.create_tempdir().full_path
    os.makedirs(os.path.join(root, 'search'))
    if candidates is not None:
      with open(os.path.join(root, 'search', 'candidates.jsonl'), 'w') as f:
        f.writelines(json.dumps(c) + '\n' for c in candidates)
    if groups is not None:
      with open(os.path.join(root, 'search', 'selection.json'), 'w') as f:
        json.dump({'groups': groups, 'num_scored': 5}, f)
    for arch, (accuracy, params) in (results or {}).items():
      os.makedirs(os.path.join(root, 'retrain', f'id_{arch}'))
      with open(os.path.join(root, 'retrain', f'id_{arch}', 'result.json'), 'w') as f:
        json.dump({'arch': arch, 'arch_id': f'id_{arch}', 'params': params, 'flops': 1,
                   'filters': 16, 'steps': 10, 'test_accuracy': accuracy,
                   'wall_time_s': 1.0}, f)
    return root

  def run_report(self, root, **fields):
    stage.run(config(**fields), root, mesh=None)
    with open(os.path.join(root, 'report', 'summary.json')) as f:
      summary = json.load(f)
    with open(os.path.join(root, 'report', 'summary.md')) as f:
      return summary, f.read()


class ReportTest(WorkdirTestCase):

  def test_group_table_by_hand(self):
    results = [{'arch': a, 'params': p, 'test_accuracy': acc} for a, (acc, p) in
               RESULTS.items() if a != 'd']
    rows = {r['group']: r for r in tables.group_table(GROUPS, CANDIDATES, results,
                                                      'test_accuracy')}
    self.assertEqual(list(rows), ['one_shot_top', 'random', 'bucket_0', 'bucket_1',
                                  tables.ALL_RETRAINED])
    top = rows['one_shot_top']
    self.assertEqual((top['retrained'], top['selected']), (2, 2))
    # Sample std of two values: |x1 - x2| / sqrt(2).
    self.assertAlmostEqual(top['standalone_accuracy']['mean'], 0.93)
    self.assertAlmostEqual(top['standalone_accuracy']['std'], 0.04 / math.sqrt(2))
    self.assertAlmostEqual(top['params']['mean'], 2000)
    self.assertAlmostEqual(top['params']['std'], 2000 / math.sqrt(2))
    self.assertAlmostEqual(top['one_shot_accuracy']['mean'], 0.75)
    # d is selected but not retrained: one stand-alone value (no std), two one-shot ones.
    random = rows['random']
    self.assertEqual((random['retrained'], random['selected']), (1, 2))
    self.assertEqual(random['standalone_accuracy'], {'n': 1, 'mean': 0.93, 'std': None})
    self.assertAlmostEqual(random['one_shot_accuracy']['mean'], 0.55)
    # Every selected or retrained arch once: a-e selected, x retrained by name only.
    everything = rows[tables.ALL_RETRAINED]
    self.assertEqual((everything['retrained'], everything['selected']), (5, 6))
    self.assertAlmostEqual(everything['standalone_accuracy']['mean'],
                           (0.95 + 0.91 + 0.93 + 0.88 + 0.97) / 5)
    self.assertEqual(everything['one_shot_accuracy']['n'], 5)

  def test_order_groups(self):
    names = ['bucket_10', 'bucket_2', 'random', 'custom', 'all_on', 'one_shot_small',
             'one_shot_top']
    self.assertEqual(list(tables.order_groups(dict.fromkeys(names, []))),
                     ['one_shot_top', 'one_shot_small', 'random', 'all_on', 'custom',
                      'bucket_2', 'bucket_10'])

  @parameterized.named_parameters(
      ('monotone', [1, 2, 3, 4], [0.1, 0.5, 0.7, 0.9], 1.0, 1.0),
      ('reversed', [1, 2, 3, 4], [4, 3, 2, 1], -1.0, -1.0),
      # d = (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8; 2 of 10 pairs
      # discordant: tau = (8 - 2) / 10 = 0.6.
      ('by_hand', [1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 0.8, 0.6),
      # Pairs with a missing or non-finite side are dropped, leaving the by-hand case.
      ('missing_dropped', [1, 2, None, 3, 4, 5, float('nan')],
       [2, 1, 7, 4, 3, 5, 1], 0.8, 0.6),
  )
  def test_rank_correlation(self, x, y, rho, tau):
    corr = tables.rank_correlation(x, y)
    self.assertAlmostEqual(corr['spearman'], rho)
    self.assertAlmostEqual(corr['kendall'], tau)
    self.assertEqual(corr['n'], 5 if len(x) > 4 else 4)
    self.assertIsNone(corr['reason'])

  @parameterized.named_parameters(
      ('too_few', [1, 2], [1, 2], 'fewer than 3 pairs (n=2)'),
      ('none_left', [None, 1, 2, 3], [1, None, None, None], 'fewer than 3 pairs (n=0)'),
      ('constant', [1, 2, 3], [0.5, 0.5, 0.5], 'constant'),
  )
  def test_rank_correlation_undefined(self, x, y, reason):
    corr = tables.rank_correlation(x, y)
    self.assertIsNone(corr['spearman'])
    self.assertIsNone(corr['kendall_p'])
    self.assertIn(reason, corr['reason'])

  def test_full_report(self):
    root = self.workdir()
    summary, md = self.run_report(root)
    self.assertEqual(summary['counts']['candidates_scored'], 5)
    self.assertEqual(summary['counts']['retrained'], 6)
    self.assertEqual(summary['counts']['retrained_with_one_shot'], 5)
    corrs = summary['correlations']
    # One-shot order a>b>c>d>e, stand-alone a>c>b>d>e: one swap in 5, as by hand.
    self.assertAlmostEqual(corrs['one_shot_vs_standalone']['spearman'], 0.9)
    self.assertAlmostEqual(corrs['one_shot_vs_standalone']['kendall'], 0.8)
    self.assertEqual(corrs['one_shot_vs_standalone']['n'], 5)  # x has no one-shot score.
    # Lower KL, higher accuracy: the sign the paper's Figure 6 shows.
    self.assertAlmostEqual(corrs['kl_vs_one_shot']['spearman'], -1.0)
    self.assertLess(corrs['kl_vs_standalone']['spearman'], 0)
    self.assertEqual(summary['best_candidate']['arch'], 'a')
    self.assertEqual(summary['best_retrained'],
                     {'arch': 'x', 'arch_id': 'id_x', 'params': 9000, 'flops': 1,
                      'accuracy': 0.97, 'one_shot_accuracy': None})
    self.assertEqual([row['group'] for row in summary['table']][0], 'one_shot_top')
    self.assertEqual(summary['figures'], {'written': list(FIGURES), 'skipped': {}})
    for name in FIGURES:
      with open(os.path.join(root, 'report', name), 'rb') as f:
        content = f.read()
      self.assertTrue(content.startswith(PNG_MAGIC), name)
      self.assertGreater(len(content), 10_000, name)
      self.assertIn(f']({name})', md)
    self.assertIn('| One-Shot Top | 2 / 2 | 2.0K ± 1.4K | 93.00 ± 2.83 | 75.00 ± 7.07 |', md)
    self.assertIn('Best retrained by stand-alone test_accuracy: `x`', md)
    self.assertFalse([f for f in os.listdir(os.path.join(root, 'report')) if '.tmp' in f])

  def test_nothing_retrained(self):
    root = self.workdir(results=None)
    summary, md = self.run_report(root, figures=False)
    rows = summary['table']
    self.assertEqual([r['retrained'] for r in rows], [0] * len(rows))
    self.assertEqual(rows[0]['standalone_accuracy'], {'n': 0, 'mean': None, 'std': None})
    corr = summary['correlations']['one_shot_vs_standalone']
    self.assertEqual((corr['spearman'], corr['reason']), (None, 'fewer than 3 pairs (n=0)'))
    self.assertIsNotNone(summary['correlations']['kl_vs_one_shot']['spearman'])
    self.assertIsNone(summary['best_retrained'])
    self.assertIn('no retrained archs', md)
    self.assertIn('5 of 5 selected archs are not retrained yet', md)
    self.assertIn('config.report.figures=False', md)
    self.assertEqual(sorted(os.listdir(os.path.join(root, 'report'))),
                     ['summary.json', 'summary.md'])

  def test_empty_workdir(self):
    root = self.workdir(candidates=None, groups=None, results=None)
    summary, md = self.run_report(root)
    self.assertEqual(summary['counts']['candidates_scored'], 0)
    self.assertEqual([r['group'] for r in summary['table']], [tables.ALL_RETRAINED])
    self.assertEqual(summary['figures']['written'], [])
    self.assertEqual(set(summary['figures']['skipped']), set(FIGURES))
    for text in ('no scored candidates', 'no groups', 'no retrained archs'):
      self.assertIn(text, md)

  def test_no_kl_scores(self):
    candidates = [{**c, 'kl': None} for c in CANDIDATES]
    summary, md = self.run_report(self.workdir(candidates=candidates, results=None))
    self.assertIn('no candidate has a KL score', summary['figures']['skipped'][FIGURES[2]])
    self.assertEqual(summary['figures']['written'], [FIGURES[1]])
    self.assertIsNone(summary['correlations']['kl_vs_one_shot']['spearman'])
    self.assertIn('no KL scores', md)

  @parameterized.named_parameters(
      ('truncated', '{"arch": "t", "accur', 'not valid JSON'),
      ('not_object', '[1, 2]', 'not a JSON object'),
      ('percent', '{"arch": "t", "accuracy": 93.0}', 'fraction'),
      ('no_accuracy', '{"arch": "t", "kl": 0.1}', "missing 'accuracy'"),
      ('bad_kl', '{"arch": "t", "accuracy": 0.5, "kl": "low"}', "'kl'"),
  )
  def test_malformed_candidates_line(self, line, problem):
    root = self.workdir(results=None)
    path = os.path.join(root, 'search', 'candidates.jsonl')
    with open(path, 'a') as f:
      f.write(line)  # Line 6, after the five good ones.
    with self.assertRaisesRegex(ValueError, f'candidates.jsonl, line 6: .*{problem}'):
      stage.run(config(), root, mesh=None)
    self.assertFalse(os.path.exists(os.path.join(root, 'report')))

  @parameterized.parameters(('search', 'selection.json'), ('retrain/id_a', 'result.json'))
  def test_malformed_json(self, folder, name):
    root = self.workdir()
    with open(os.path.join(root, folder, name), 'w') as f:
      f.write('{"groups": ')
    with self.assertRaisesRegex(ValueError, f'{name}: not valid JSON'):
      stage.run(config(), root, mesh=None)

  def test_load_selection_rejects_wrong_shape(self):
    path = os.path.join(self.create_tempdir().full_path, 'selection.json')
    with open(path, 'w') as f:
      json.dump({'groups': {'random': 'a'}}, f)
    with self.assertRaisesRegex(ValueError, 'selection.json: expected'):
      loading.load_selection(path)

  def test_only_process_zero_writes(self):
    root = self.workdir()
    with mock.patch.object(jax, 'process_index', return_value=1):
      stage.run(config(), root, mesh=None)
    self.assertFalse(os.path.exists(os.path.join(root, 'report')))

  def test_check_accepts_defaults(self):
    stage.check(config(), mesh=None)
    stage.check(config(accuracy_key='valid_accuracy', figures=False), mesh=None)

  @parameterized.parameters(
      ({'figures': 'yes'}, 'config.report.figures'),
      ({'accuracy_key': 3}, 'config.report.accuracy_key'),
      ({'accuracy_key': 'test accuracy'}, 'config.report.accuracy_key'),
      ({'accuracy_key': 'train_accuracy'}, 'config.report.accuracy_key.*eval_splits'),
      ({'dpi': 0}, 'config.report.dpi'),
      ({'dpi': True}, 'config.report.dpi'),
      ({'ground_truth': 3}, 'config.report.ground_truth=3'),
      ({'ground_truth': ' '}, 'config.report.ground_truth'),
      ({'ground_truth_arch_column': 1}, 'config.report.ground_truth_arch_column'),
      ({'ground_truth_accuracy_column': ''}, 'config.report.ground_truth_accuracy_column'),
  )
  def test_check_rejects(self, fields, message):
    bad = config()
    with bad.unlocked():
      bad.report = ml_collections.ConfigDict({**bad.report.to_dict(), **fields})
    with self.assertRaisesRegex(ValueError, message):
      stage.check(bad, mesh=None)

  def test_check_needs_the_section(self):
    with self.assertRaisesRegex(ValueError, 'config.report is missing'):
      stage.check(ml_collections.ConfigDict({'seed': 0}), mesh=None)


# True accuracies (percent) of four of the five CANDIDATES ('e' is not in the table) and of
# 'z', which was never scored. One-shot order a > b > c > d, true order b > a > d > c.
TRUTH = {'a': 93.0, 'b': 94.0, 'c': 91.0, 'd': 92.0, 'z': 95.0}


class GroundTruthTest(WorkdirTestCase):

  def table(self, rows=None, header='index,arch,test_acc_200ep'):
    """A ground-truth CSV in a temporary directory: `rows` as lines, else TRUTH."""
    if rows is None:
      rows = [f' {i},{arch} ,{acc}' for i, (arch, acc) in enumerate(TRUTH.items())]
    path = os.path.join(self.create_tempdir().full_path, 'truth.csv')
    with open(path, 'w') as f:
      f.write('\n'.join([header, *rows]) + '\n')
    return path

  def report(self, path, candidates=CANDIDATES, **fields):
    root = self.workdir(candidates=candidates, results=None)
    return self.run_report(root, ground_truth=path, **fields) + (root,)

  def test_statistics_by_hand(self):
    summary, md, root = self.report(self.table())
    truth = summary['ground_truth']
    self.assertEqual((truth['table_size'], truth['scored'], truth['joined'], truth['missing'],
                      truth['missing_examples']), (5, 5, 4, 1, ['e']))
    self.assertIn('the CSV holds percent', truth['units'])
    # Pairs (a,b) and (c,d) are discordant, 4 of 6 concordant: tau = 2 / 6. Rank
    # differences (1, 1, 1, 1): rho = 1 - 6 * 4 / (4 * 15) = 0.6.
    self.assertAlmostEqual(truth['correlation']['kendall'], 1 / 3)
    self.assertAlmostEqual(truth['correlation']['spearman'], 0.6)
    self.assertEqual(truth['precision_at_k'], {})  # k = 10 needs 10 joined.
    self.assertEqual(truth['one_shot_top1'], {'arch': 'a', 'one_shot_accuracy': 0.8,
                                              'accuracy': 0.93, 'rank': 2})
    # Fewer than 10 joined: the top-k and the random picks are all four.
    self.assertEqual(truth['one_shot_top']['k'], 4)
    self.assertAlmostEqual(truth['one_shot_top']['mean'], 0.925)
    self.assertAlmostEqual(truth['one_shot_top']['best'], 0.94)
    self.assertAlmostEqual(truth['random']['mean'], 0.925)
    self.assertAlmostEqual(truth['random']['expected_best'], 0.94)
    self.assertEqual(truth['optimum_joined'], {'arch': 'b', 'accuracy': 0.94})
    self.assertEqual(truth['optimum_table'], {'arch': 'z', 'accuracy': 0.95})
    self.assertIn('1 of 5 scored candidates are not in', md)
    self.assertIn('| One-shot top-1 `a` | 93.00 (rank 2 of 4) |', md)
    self.assertIn('| Optimum of the table `z` | 95.00 |', md)
    self.assertIn('ground_truth.png', summary['figures']['written'])
    with open(os.path.join(root, 'report', 'ground_truth.png'), 'rb') as f:
      self.assertTrue(f.read().startswith(PNG_MAGIC))
    self.assertIn('](ground_truth.png)', md)

  def test_twenty_candidates(self):
    # One-shot accuracy rises with i, so the one-shot top-10 is i = 10..19; the true
    # accuracy 90% - |i - 9.5|% puts i = 5..14 in the true top-10 (ties 9/10, 8/11, ...).
    candidates = [{'arch': f'x{i:02}', 'accuracy': 0.5 + i / 100, 'kl': None}
                  for i in range(20)]
    rows = [f'x{i:02},{(90 - abs(i - 9.5)) / 100}' for i in range(20)]  # As fractions.
    summary, _, _ = self.report(self.table(rows, 'arch,test_acc_200ep'), candidates,
                                figures=False)
    truth = summary['ground_truth']
    self.assertEqual(truth['units'], 'fraction, as in the CSV')
    self.assertEqual(truth['precision_at_k'], {'10': 0.5})  # i = 10..14 of 10..19.
    self.assertEqual(truth['one_shot_top1']['arch'], 'x19')
    self.assertAlmostEqual(truth['one_shot_top1']['accuracy'], 0.805)
    # |i - 9.5| for i = 10..19 is 0.5..9.5, mean 5: 85.0 %.
    self.assertAlmostEqual(truth['one_shot_top']['mean'], 0.85)
    self.assertAlmostEqual(truth['one_shot_top']['best'], 0.895)
    self.assertAlmostEqual(truth['random']['mean'], 0.85)
    self.assertIn('ground_truth.png', summary['figures']['skipped'])

  def test_ties_go_to_fewer_params_then_arch(self):
    candidates = [{'arch': arch, 'accuracy': 0.5, 'params': params}
                  for arch, params in (('d', 10), ('c', 20), ('b', 10))]
    table = ground_truth.Table('t.csv', 'acc', {'b': 0.1, 'c': 0.2, 'd': 0.3}, False)
    joined = ground_truth.join(candidates, table)
    self.assertEqual([arch for arch, _, _ in joined], ['b', 'd', 'c'])

  @parameterized.named_parameters(
      ('all_distinct', [0.93, 0.94, 0.91, 0.92], [1], 0.0),
      ('two_of_three', [0.93, 0.94, 0.91, 0.92], [3], 2 / 3),
      # A tie at the k-th best value: both tied archs count as in the true top-2.
      ('tie_at_boundary', [0.90, 0.80, 0.80, 0.95], [2], 0.5),
      ('tie_inside', [0.80, 0.80, 0.95, 0.70], [2], 1.0),
  )
  def test_precision_at_k(self, true, ks, precision):
    self.assertEqual(ground_truth.precision_at_k(true, ks), {str(ks[0]): precision})

  @parameterized.named_parameters(
      # Pairs of 4: max 2 once, 3 twice, 4 three times: (2 + 6 + 12) / 6.
      ('two_of_four', [4, 1, 3, 2], 2, 20 / 6),
      ('one_is_the_mean', [4, 1, 3, 2], 1, 2.5),
      ('more_draws_than_values', [4, 1, 3, 2], 10, 4),
      # Triples of 1, 2, 2, 5: max 5 in 3 of 4, max 2 in 1: (15 + 2) / 4.
      ('ties', [2, 5, 1, 2], 3, 17 / 4),
  )
  def test_expected_best(self, values, draws, expected):
    self.assertAlmostEqual(ground_truth.expected_best(values, draws), expected)

  def test_expected_best_matches_enumeration(self):
    values = [0.3, 0.9, 0.5, 0.5, 0.1, 0.7, 0.2, 0.8, 0.6]
    subsets = list(itertools.combinations(values, 4))
    self.assertAlmostEqual(ground_truth.expected_best(values, 4),
                           sum(map(max, subsets)) / len(subsets))

  @parameterized.named_parameters(
      ('arch_column', {'ground_truth_arch_column': 'cell'}, "no column 'cell'"),
      ('accuracy_column', {'ground_truth_accuracy_column': 'acc'}, "no column 'acc'"),
  )
  def test_missing_column(self, fields, message):
    path = self.table()
    with self.assertRaisesRegex(ValueError, f'truth.csv: {message} .*_column'):
      stage.check(config(ground_truth=path, **fields), mesh=None)
    root = self.workdir(results=None)
    with self.assertRaisesRegex(ValueError, f'truth.csv: {message}'):
      stage.run(config(ground_truth=path, **fields), root, mesh=None)

  def test_missing_file(self):
    path = os.path.join(self.create_tempdir().full_path, 'nowhere.csv')
    with self.assertRaisesRegex(ValueError,
                                "config.report.ground_truth='.*nowhere.csv': no such file"):
      stage.check(config(ground_truth=path), mesh=None)
    with self.assertRaisesRegex(ValueError, 'nowhere.csv'):
      stage.run(config(ground_truth=path), self.workdir(), mesh=None)

  @parameterized.named_parameters(
      ('text', 'a,high', ", line 2: 'test_acc_200ep' is 'high', not an accuracy"),
      ('empty', 'a,', ", line 2: 'test_acc_200ep' is '', not an accuracy"),
      ('nan', 'a,nan', ', line 2: .* not an accuracy'),
      ('above_100', 'a,130', ', line 2: .* not an accuracy'),
      ('no_arch', ' ,93', ", line 2: empty 'arch'"),
      ('twice', 'q,93', ", line 3: 'q' is listed again"),
      ('no_candidate', 'p,93', ': none of the 5 scored candidates'),
  )
  def test_bad_table(self, row, message):
    path = self.table([row, 'q,94'], 'arch,test_acc_200ep')  # q is no candidate.
    stage.check(config(ground_truth=path), mesh=None)  # Only the header is read there.
    with self.assertRaisesRegex(ValueError, f'truth.csv{message}'):
      stage.run(config(ground_truth=path), self.workdir(), mesh=None)

  def test_nothing_scored(self):
    root = self.workdir(candidates=None, results=None)
    summary, _ = self.run_report(root, ground_truth=self.table())
    self.assertIsNone(summary['ground_truth'])
    self.assertEqual(summary['figures']['skipped']['ground_truth.png'], 'no scored candidates')

  def test_off_by_default(self):
    summary, md = self.run_report(self.workdir(), figures=False)
    self.assertIsNone(summary['ground_truth'])
    self.assertNotIn('ground_truth.png', summary['figures']['skipped'])
    self.assertNotIn('Ground truth', md)


if __name__ == '__main__':
  absltest.main()
