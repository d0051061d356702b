"""Tests of the report stage: loading, Table 1, rank correlations, figures, missing inputs."""

import json
import math
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections

from osas.report import loading
from osas.report import stage
from osas.report import tables
from report_helpers import CANDIDATES
from report_helpers import FIGURES
from report_helpers import GROUPS
from report_helpers import PNG_MAGIC
from report_helpers import RESULTS
from report_helpers import WorkdirTestCase
from report_helpers import config


class ReportTest(WorkdirTestCase):

  def test_group_table_by_hand(self):
    results = [
        {'arch': a, 'params': p, 'test_accuracy': acc}
        for a, (acc, p) in RESULTS.items()
        if a != 'd'
    ]
    rows = {r['group']: r for r in tables.group_table(GROUPS, CANDIDATES, results, 'test_accuracy')}
    self.assertEqual(
        list(rows), ['one_shot_top', 'random', 'bucket_0', 'bucket_1', tables.ALL_RETRAINED]
    )
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
    self.assertAlmostEqual(
        everything['standalone_accuracy']['mean'], (0.95 + 0.91 + 0.93 + 0.88 + 0.97) / 5
    )
    self.assertEqual(everything['one_shot_accuracy']['n'], 5)

  def test_order_groups(self):
    names = [
        'bucket_10',
        'bucket_2',
        'random',
        'custom',
        'all_on',
        'one_shot_small',
        'one_shot_top',
    ]
    self.assertEqual(
        list(tables.order_groups(dict.fromkeys(names, []))),
        ['one_shot_top', 'one_shot_small', 'random', 'all_on', 'custom', 'bucket_2', 'bucket_10'],
    )

  @parameterized.named_parameters(
      ('monotone', [1, 2, 3, 4], [0.1, 0.5, 0.7, 0.9], 1.0, 1.0),
      ('reversed', [1, 2, 3, 4], [4, 3, 2, 1], -1.0, -1.0),
      # d = (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8; 2 of 10 pairs
      # discordant: tau = (8 - 2) / 10 = 0.6.
      ('by_hand', [1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 0.8, 0.6),
      # Pairs with a missing or non-finite side are dropped, leaving the by-hand case.
      ('missing_dropped', [1, 2, None, 3, 4, 5, float('nan')], [2, 1, 7, 4, 3, 5, 1], 0.8, 0.6),
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
    self.assertEqual(
        summary['best_retrained'],
        {
            'arch': 'x',
            'arch_id': 'id_x',
            'params': 9000,
            'flops': 1,
            'accuracy': 0.97,
            'one_shot_accuracy': None,
        },
    )
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

  def test_top_by_groups_and_pools(self):
    root = self.workdir(groups={**GROUPS, 'top_by:params': ['e']})
    cfg = config()
    cfg.select.top_n, cfg.select.top_by = 2, ('params',)
    summary, md = self.run_report(root, cfg)
    self.assertIn('| Top by params | 1 / 1 | 5.0K | 88.00 | 40.00 |', md)
    # Top-2 by accuracy (rank_by): {a, b}; loss and KL agree; params and flops pick {e, d}.
    self.assertEqual(
        summary['top_pools'],
        {
            'rank_by': 'accuracy',
            'k': 2,
            'n': 5,
            'shared': {'accuracy': 1.0, 'loss': 1.0, 'kl': 1.0, 'params': 0.0, 'flops': 0.0},
        },
    )
    self.assertIn('| kl | 1.00 |', md)
    # Among a few retrained archs a top-k share says nothing of the pool: no column.
    self.assertIsNone(summary['rankings']['top_k'])

  def test_limits_and_the_cost_of_the_selection(self):
    root = self.workdir()
    with open(os.path.join(root, 'search', 'selection.json'), 'w') as f:
      json.dump({'groups': GROUPS, 'limits': {'max_params': 5000, 'max_flops': None}}, f)
    summary, md = self.run_report(root, figures=False)
    self.assertEqual(summary['selected_cost'], {'n': 5, 'params': [1000, 5000], 'flops': [10, 50]})
    self.assertIn('params at most 5.0K, FLOPs no limit', md)
    self.assertIn('The 5 selected archs that were scored: params 1.0K to 5.0K, FLOPs 10 to 50', md)
    _, md = self.run_report(self.workdir(), figures=False)  # No limits recorded: none.
    self.assertIn('params no limit, FLOPs no limit', md)

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
    self.assertEqual(
        sorted(os.listdir(os.path.join(root, 'report'))), ['summary.json', 'summary.md']
    )

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
      # No newline at the end: what a kill during a write leaves.
      ('truncated', '{"arch": "t", "accur', 'the last line is truncated'),
      ('not_json', '{"arch": "t", "accur}\n', 'not valid JSON'),
      ('not_object', '[1, 2]\n', 'not a JSON object'),
      ('percent', '{"arch": "t", "accuracy": 93.0}\n', 'fraction'),
      ('no_accuracy', '{"arch": "t", "kl": 0.1}\n', "missing 'accuracy'"),
      ('no_loss', '{"arch": "t", "accuracy": 0.5, "kl": 0.1}\n', "missing 'loss'"),
      (
          'bad_kl',
          '{"arch": "t", "accuracy": 0.5, "loss": 1, "kl": "low", "params": 1, ' '"flops": 1}\n',
          "'kl'",
      ),
      (
          'bad_params',
          '{"arch": "t", "accuracy": 0.5, "loss": 1, "kl": 1, "params": 1.5, ' '"flops": 1}\n',
          "'params' must be an integer",
      ),
  )
  def test_malformed_candidates_line(self, line, problem):
    root = self.workdir(results=None)
    path = os.path.join(root, 'search', 'candidates.jsonl')
    with open(path, 'a') as f:
      f.write(line)  # Line 6, after the five good ones.
    with self.assertRaisesRegex(ValueError, f'candidates.jsonl, line 6: .*{problem}'):
      stage.run(config(), root, mesh=None)
    self.assertFalse(os.path.exists(os.path.join(root, 'report')))

  def test_later_candidates_line_wins(self):
    root = self.workdir(results=None)
    with open(os.path.join(root, 'search', 'candidates.jsonl'), 'a') as f:
      f.write(json.dumps({**CANDIDATES[4], 'accuracy': 0.9}) + '\n')
    summary, _ = self.run_report(root, figures=False)
    self.assertEqual(summary['counts']['candidates_scored'], 5)
    self.assertEqual(summary['best_candidate']['arch'], 'e')

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
      ({'also_rank_by': ('naswot*acc',)}, r"config.report.also_rank_by=.*unknown score 'acc'"),
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

  def test_check_rejects_top_by(self):
    bad = config()
    with bad.unlocked():
      bad.select = ml_collections.ConfigDict({'top_n': 5, 'top_by': ('naswot', 'acc')})
    with self.assertRaisesRegex(ValueError, r"config.select.top_by='acc'.*unknown score 'acc'"):
      stage.check(bad, mesh=None)

  def test_check_needs_the_section(self):
    with self.assertRaisesRegex(ValueError, 'config.report is missing'):
      stage.check(ml_collections.ConfigDict({'seed': 0}), mesh=None)


# True accuracies (percent) of four of the five CANDIDATES ('e' is not in the table) and of
# 'z', which was never scored. One-shot order a > b > c > d, true order b > a > d > c.


if __name__ == '__main__':
  absltest.main()
