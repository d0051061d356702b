"""config.search.rank_by and the report's ranking table, against hand computations."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from scipy import stats

from osas.report import rankings
from osas.search import ranking

RECORDS = [  # Hand-made: larger naswot and smaller loss are better.
    {'arch': 'a', 'accuracy': 0.5, 'loss': 1.0, 'naswot': 3.0, 'params': 30, 'flops': 300},
    {'arch': 'b', 'accuracy': 0.7, 'loss': 0.5, 'naswot': 1.0, 'params': 10, 'flops': 100},
    {'arch': 'c', 'accuracy': 0.7, 'loss': 2.0, 'naswot': float('nan'), 'params': 20, 'flops': 200},
    {'arch': 'd', 'accuracy': 0.1, 'loss': 3.0, 'naswot': 2.0, 'params': 40, 'flops': 400},
]


class RankByTest(parameterized.TestCase):

  def test_parse(self):
    self.assertEqual(ranking.parse('accuracy'), {'accuracy': 1.0})
    self.assertEqual(
        ranking.parse(' naswot + synflow:2 + flops '), {'naswot': 1.0, 'synflow': 2.0, 'flops': 1.0}
    )

  @parameterized.parameters(
      'acc', 'naswot+naswot', 'naswot:0', 'naswot:x', 'loss:-1', '', 'naswot*loss+flops'
  )
  def test_parse_refuses_naming_the_field(self, text):
    with self.assertRaisesRegex(ValueError, 'config.search.rank_by'):
      ranking.parse(text)

  def test_one_score_turned_so_larger_is_better_nan_last(self):
    np.testing.assert_array_equal(ranking.scores(RECORDS, 'loss'), [-1.0, -0.5, -2.0, -3.0])
    np.testing.assert_array_equal(ranking.scores(RECORDS, 'naswot'), [3.0, 1.0, -np.inf, 2.0])

  def test_mean_rank_by_hand(self):
    # Ranks (1 = worst): naswot a 4, b 2, c 1, d 3; loss a 3, b 4, c 2, d 1; weights 2:1.
    want = np.array([2 * 4 + 3, 2 * 2 + 4, 2 * 1 + 2, 2 * 3 + 1]) / (3 * 4)
    np.testing.assert_allclose(ranking.scores(RECORDS, 'naswot:2+loss'), want)

  def test_geometric_mean_rank_by_hand(self):
    # The same ranks as fractions of 4: (r_naswot^2 * r_loss)^(1/3).
    want = (np.array([4, 2, 1, 3]) ** 2 * np.array([3, 4, 2, 1]) / 4**3) ** (1 / 3)
    np.testing.assert_allclose(ranking.scores(RECORDS, 'naswot:2*loss'), want)
    self.assertEqual(ranking.parse('naswot * loss'), {'naswot': 1.0, 'loss': 1.0})
    # Equal mean ranks (2.5), but one poor rank pulls x and w below the balanced y and z.
    ranks = {'x': (4, 1), 'y': (2, 3), 'z': (3, 2), 'w': (1, 4)}
    records = [{'arch': k, 'snip': a, 'synflow': b, 'params': 1} for k, (a, b) in ranks.items()]
    np.testing.assert_allclose(ranking.scores(records, 'snip+synflow'), [2.5 / 4] * 4)
    self.assertEqual(
        [records[i]['arch'] for i in ranking.order(records, 'snip*synflow')], ['y', 'z', 'w', 'x']
    )

  def test_order_breaks_ties_by_smaller_model(self):
    self.assertEqual(ranking.order(RECORDS, 'accuracy'), [1, 2, 0, 3])  # b, c tie: b smaller.


class RankingTableTest(absltest.TestCase):

  def test_statistics_by_hand(self):
    true = [0.90, 0.70, 0.60, 0.95]  # Best to worst: d, a, b, c.
    result = rankings.table(
        RECORDS, true, rank_by='naswot+loss', space_name='bender2018', seed=0, bootstrap=50
    )
    rows = {r['name']: r for r in result['rows']}
    self.assertEqual(result['optimum'], 0.95)
    self.assertEqual(
        list(rows), ['accuracy', 'loss', 'naswot', 'naswot+loss', 'params', 'flops', 'random']
    )
    # params orders d, a, c, b: concordant pairs 5, discordant 1 -> tau = 4/6.
    self.assertAlmostEqual(rows['params']['kendall_tau_b'], 4 / 6)
    self.assertAlmostEqual(rows['params']['spearman'], 0.8)
    self.assertEqual(rows['params']['top1'], 0.95)
    self.assertAlmostEqual(rows['params']['top10_mean'], np.mean(true))
    # naswot orders a, d, b, c (c's NaN last): one discordant pair of six.
    self.assertAlmostEqual(rows['naswot']['kendall_tau_b'], 4 / 6)
    self.assertEqual(rows['naswot']['top1'], 0.90)
    # loss orders b, a, c, d: 2 concordant, 4 discordant.
    self.assertAlmostEqual(rows['loss']['kendall_tau_b'], -2 / 6)
    self.assertFalse(rows['loss']['beats_params'])
    low, high = rows['loss']['tau_ci95']
    self.assertLessEqual(low, high)
    self.assertEqual(rows['random']['kind'], 'baseline')

  def test_also_rank_by_rows(self):
    true = [0.90, 0.70, 0.60, 0.95]
    also = rankings.table(
        RECORDS,
        true,
        rank_by='naswot+loss',
        space_name='bender2018',
        seed=0,
        bootstrap=0,
        also=('naswot*loss', 'naswot+loss', 'synflow*loss', 'naswot*loss'),
    )
    # Once each; not the rank_by row again, nor one whose scores no record has.
    self.assertEqual([r['name'] for r in also['rows'] if r['kind'] == 'also'], ['naswot*loss'])
    # Nor a rank_by row whose scores no record has (it would rank by all-equal placeholders).
    missing = rankings.table(
        RECORDS, true, rank_by='synflow*loss', space_name='bender2018', seed=0, bootstrap=0
    )
    self.assertNotIn('rank_by', [r['kind'] for r in missing['rows']])
    want = ranking.scores(RECORDS, 'naswot*loss')
    self.assertAlmostEqual(
        next(r for r in also['rows'] if r['kind'] == 'also')['kendall_tau_b'],
        stats.kendalltau(want, true).statistic,
    )

  def test_top_shared_with_rank_by(self):
    true = [0.90, 0.70, 0.60, 0.95]
    # Top-2 by naswot+loss (mean ranks a 3.5, b 3, d 2, c 1.5): {a, b}; by loss {b, a},
    # params {d, a}, accuracy {b, c} (b and c tie: the smaller b first).
    shared = rankings.table(
        RECORDS, true, rank_by='naswot+loss', space_name='bender2018', seed=0, bootstrap=0, top_k=2
    )
    self.assertEqual(shared['top_k'], 2)
    got = {r['name']: r['top_shared'] for r in shared['rows']}
    self.assertEqual(
        {k: got[k] for k in ('naswot+loss', 'loss', 'params', 'accuracy')},
        {'naswot+loss': 1.0, 'loss': 1.0, 'params': 0.5, 'accuracy': 0.5},
    )
    self.assertIn('top-2 shared with rank_by', '\n'.join(rankings.render(shared, 'true')))

  def test_top_pools_over_all_candidates(self):
    # Top-2: by accuracy {b, c} (a tie, both 0.7), by loss {b, a}, naswot {a, d},
    # params {d, a}, flops {d, a}, naswot*loss (geometric ranks a 12, b 8, d 3, c 2) {a, b}.
    pools = rankings.top_pools(RECORDS, 'accuracy', ('naswot*loss', 'synflow', 'loss'), 2)
    self.assertEqual((pools['k'], pools['n']), (2, 4))
    self.assertEqual(
        pools['shared'],
        {
            'accuracy': 1.0,
            'loss': 0.5,
            'naswot': 0.0,
            'params': 0.0,
            'flops': 0.0,
            'naswot*loss': 0.5,
        },
    )  # synflow: no record has it, so no row.
    self.assertEqual(ranking.top_overlap(RECORDS, 'loss', 'naswot*loss', 9), 1.0)  # k <= n.
    self.assertIsNone(ranking.top_overlap([], 'loss', 'naswot', 2))
    self.assertIn('| naswot*loss | 0.50 |', rankings.render_pools(pools))

  def test_precision_at_k_counts_ties_as_top(self):
    self.assertEqual(rankings.precision_at_k([0.9, 0.5, 0.9, 0.1], ks=(2,)), {'2': 0.5})
    self.assertEqual(rankings.precision_at_k([0.5, 0.5, 0.9], ks=(2,)), {'2': 1.0})

  def test_nasbench201_conv_count_baseline(self):
    records = [
        {'arch': '|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|', 'params': 1},
        {'arch': '|none~0|+|nor_conv_3x3~0|none~1|', 'params': 1},
        {'arch': '|none~0|+|none~0|none~1|', 'params': 1},
    ]
    got = rankings.baselines(records, 'nasbench201', np.random.default_rng(0))
    np.testing.assert_array_equal(got['nor_conv_3x3 count'], [2, 1, 0])


if __name__ == '__main__':
  absltest.main()
