"""Shared pieces of the report tests: a hand-written workdir and the report run on it."""

import json
import os

from absl.testing import parameterized

from configs import default
from osas.report import stage

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
GROUPS = {'random': ['c', 'd'], 'bucket_1': ['a'], 'one_shot_top': ['a', 'b'], 'bucket_0': ['e']}
# Stand-alone accuracies in the one-shot order except b and c swapped; 'x' was never scored.
RESULTS = {
    'a': (0.95, 1000),
    'b': (0.91, 3000),
    'c': (0.93, 2000),
    'd': (0.89, 4000),
    'e': (0.88, 5000),
    'x': (0.97, 9000),
}


def config(**fields):
  """configs/default.py with config.report's `fields` changed."""
  config = default.get_config()
  config.report.update(fields)
  return config


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
        json.dump(
            {
                'arch': arch,
                'arch_id': f'id_{arch}',
                'params': params,
                'flops': 1,
                'filters': 16,
                'steps': 10,
                'test_accuracy': accuracy,
                'wall_time_s': 1.0,
            },
            f,
        )
    return root

  def run_report(self, root, cfg=None, **fields):
    """The report on `root` with `cfg`, else configs/default.py with config.report's `fields`."""
    stage.run(cfg or config(**fields), root, mesh=None)
    with open(os.path.join(root, 'report', 'summary.json')) as f:
      summary = json.load(f)
    with open(os.path.join(root, 'report', 'summary.md')) as f:
      return summary, f.read()
