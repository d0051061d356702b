"""benchmarks/compare_search.py on hand-written workdirs and a hand-written table."""

import json
import os
import re

from absl.testing import absltest

from benchmarks import compare_search
from configs import compare_cpu
from osas.search import results

# Cells with their true accuracy %; the limit below admits the first three only.
CELLS = {
    '|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|': 80.0,
    '|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|': 60.0,
    '|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|': 70.0,
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|'
    'nor_conv_3x3~2|': 95.0,
}
PARAMS = dict(zip(CELLS, (10, 1, 1, 100)))  # Stand-alone parameters, as the search records them.


def _workdir(root, name, arg, one_shot, wall_s):
  """A finished search as the pipeline leaves it: config, candidates, timing."""
  workdir = os.path.join(root, name)
  os.makedirs(os.path.join(workdir, 'search'))
  config = compare_cpu.get_config(arg)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort())
  records = [
      dict(arch=a, accuracy=s, loss=1.0, kl=None, params=PARAMS[a], flops=f)
      for a, (s, f) in zip(CELLS, one_shot)
  ]
  results.append(os.path.join(workdir, 'search', 'candidates.jsonl'), records)
  with open(os.path.join(workdir, 'search', 'timing.json'), 'w') as f:
    json.dump({'wall_s': wall_s, 'num_scored': len(records)}, f)
  return workdir


class CompareSearchTest(absltest.TestCase):

  def test_one_row_per_search_within_its_limit(self):
    root = self.create_tempdir().full_path
    csv = os.path.join(root, 'table.csv')
    with open(csv, 'w') as f:
      f.write('arch,test_acc_200ep\n' + ''.join(f'{a},{v}\n' for a, v in CELLS.items()))
    big = compare_cpu.MEDIAN_FLOPS + 1  # Its one-shot score is the best: left out.
    small = compare_cpu.MEDIAN_FLOPS
    dirs = [
        _workdir(root, 'a', '', [(0.5, small - 2), (0.4, small), (0.3, small - 1), (0.9, big)], 90),
        _workdir(
            root,
            'b',
            'sampler=uniform_class,strategy=evolution,bn=recalibrate,weights=hypernet',
            [(0.2, small), (0.6, small)],
            600,
        ),
    ]
    # The table's best under the limit: from the cells' FLOPs at the study's width; the
    # baseline ranks the admitted scored cells by their records' FLOPs, most first, a tie
    # worth its mean (b: 80 and 60 at the same FLOPs). Tau by hand: a's one-shot order
    # 80, 60, 70 has 2 of 3 pairs concordant (1/3); its FLOPs order all 3 discordant;
    # params 10, 1, 1: 2 concordant, 1 tied in params: tau-b = 2 / sqrt(3 * 2) = 0.82. b's
    # FLOPs are all tied (tau-b undefined); its params order the two concordantly (1).
    lines = compare_search.table_text(dirs, csv, 'test_acc_200ep').splitlines()
    self.assertLen(lines, 4)
    self.assertEqual(
        lines[2],
        '| path_dropout | random | ghost | shared | 15,647,360 | 80.00 | 70.00 | 60.00 / 70.00 '
        '| 0.33 | -1.00 | 0.82 | 80.00 | 1.5 | 4 |',
    )
    self.assertEqual(
        lines[3],
        '| uniform_class | evolution | recalibrate | hypernet | 15,647,360 | 60.00 | 70.00 '
        '| 70.00 / 70.00 | -1.00 | n/a | 1.00 | 80.00 | 10.0 | 2 |',
    )
    # With bootstrap resamples each tau gets its 95% interval, the same for the same seed.
    text = compare_search.table_text(dirs, csv, 'test_acc_200ep', bootstrap=200, seed=3)
    self.assertEqual(
        text, compare_search.table_text(dirs, csv, 'test_acc_200ep', bootstrap=200, seed=3)
    )
    tau, low, high = re.search(
        r'\| (-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\] \|', text.splitlines()[2]
    ).groups()
    self.assertEqual(tau, '0.33')
    self.assertLessEqual(float(low), 0.33)
    self.assertGreaterEqual(float(high), 0.33)
    self.assertLess(float(low), float(high))


if __name__ == '__main__':
  absltest.main()
