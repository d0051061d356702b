"""Tests of the ground-truth report: joining a table of true accuracies, ranks, picks."""

import itertools
import os

from absl.testing import absltest
from absl.testing import parameterized

from osas.report import ground_truth
from osas.report import rankings
from osas.report import stage
from report_helpers import CANDIDATES
from report_helpers import PNG_MAGIC
from report_helpers import WorkdirTestCase
from report_helpers import config

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
    self.assertEqual(
        (
            truth['table_size'],
            truth['scored'],
            truth['joined'],
            truth['missing'],
            truth['missing_examples'],
        ),
        (5, 5, 4, 1, ['e']),
    )
    self.assertIn('the CSV holds percent', truth['units'])
    # Pairs (a,b) and (c,d) are discordant, 4 of 6 concordant: tau = 2 / 6. Rank
    # differences (1, 1, 1, 1): rho = 1 - 6 * 4 / (4 * 15) = 0.6.
    self.assertAlmostEqual(truth['correlation']['kendall'], 1 / 3)
    self.assertAlmostEqual(truth['correlation']['spearman'], 0.6)
    self.assertEqual(truth['precision_at_k'], {})  # k = 10 needs 10 joined.
    self.assertEqual(
        truth['one_shot_top1'], {'arch': 'a', 'one_shot_accuracy': 0.8, 'accuracy': 0.93, 'rank': 2}
    )
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
    candidates = [
        {
            'arch': f'x{i:02}',
            'accuracy': 0.5 + i / 100,
            'loss': 1.0,
            'kl': None,
            'params': 1,
            'flops': 1,
        }
        for i in range(20)
    ]
    rows = [f'x{i:02},{(90 - abs(i - 9.5)) / 100}' for i in range(20)]  # As fractions.
    summary, _, _ = self.report(self.table(rows, 'arch,test_acc_200ep'), candidates, figures=False)
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
    candidates = [
        {'arch': arch, 'accuracy': 0.5, 'params': params}
        for arch, params in (('d', 10), ('c', 20), ('b', 10))
    ]
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
    self.assertEqual(rankings.precision_at_k(true, ks), {str(ks[0]): precision})

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
    self.assertAlmostEqual(
        ground_truth.expected_best(values, 4), sum(map(max, subsets)) / len(subsets)
    )

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
    with self.assertRaisesRegex(
        ValueError, "config.report.ground_truth='.*nowhere.csv': no such file"
    ):
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
