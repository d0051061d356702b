"""Compares finished NAS-Bench-201 searches (configs/compare_cpu.py) in one markdown table.

    PYTHONPATH=. python benchmarks/compare_search.py DIR [DIR ...] \
      [--csv=../shared/data/nasbench201/nb201_cifar10.csv --column=test_acc_200ep]

One row per workdir: its sampler, strategy, batch norm and weights (shared, or SMASH's
hypernet; from DIR/config.json), the true accuracy (the table's column) of its one-shot
top-1 and the mean of its top-10 under the FLOP limit; beside them the baseline, the same
scored cells ranked by their FLOPs (the size count that one-shot scores must beat); the
Kendall tau-b with the true accuracy over those cells of one-shot accuracy, of FLOPs and
of stand-alone parameters, each with its 95% bootstrap interval (cells resampled,
`--bootstrap` draws, `--seed`; osas.report.rankings); the best the table holds under the
limit; and the search's cost: wall time of the search stage (DIR/search/timing.json) and
candidates scored.
"""

import argparse
import json
import os
from typing import Any

import ml_collections
import numpy as np

from osas import space as space_lib
from osas.models import ModelSpec
from osas.models.cost import cost
from osas.report import ground_truth
from osas.report import rankings
from osas.search import results

TOP = 10
HEADER = (
    '| sampler | strategy | bn | weights | max FLOPs | top-1 true % | top-10 mean true % '
    '| by FLOPs: top-1 / top-10 mean % | tau one-shot [95%] | tau FLOPs [95%] | tau params [95%] '
    '| table best under the limit % | search wall min | scored |\n'
    '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
)


def _read(workdir: str, *parts: str) -> Any:
  path = os.path.join(workdir, *parts)
  if not os.path.exists(path):
    raise ValueError(f'{path}: missing; is {workdir} a finished search?')
  with open(path) as f:
    return json.load(f)


def best_under_limit(config: dict[str, Any], table: ground_truth.Table, image_size: int) -> float:
  """The highest true accuracy of the table's cells whose FLOPs are within the limit."""
  space = space_lib.from_config(ml_collections.ConfigDict(config['space']))
  spec = ModelSpec.from_config({**config['model'], 'filters': config['retrain']['filters']}, 10)
  limit = config['search'].get('max_flops') or None
  shape = (image_size, image_size, 3)
  return max(
      value
      for arch, value in table.accuracy.items()
      if limit is None or cost(space, spec, space.parse(arch), shape)[1] <= limit
  )


def top_mean(scored: list[tuple[float, float]], k: int) -> float:
  """Mean value of the top k (score, value) pairs by score, ties broken at random (expected).

  Cells often share a FLOP count: a tie is worth its members' mean, not whichever member
  another ordering happens to put first.
  """
  groups: dict[float, list[float]] = {}
  for score, value in scored:
    groups.setdefault(score, []).append(value)
  k = min(k, len(scored))
  total, left = 0.0, k
  for score in sorted(groups, reverse=True):
    values = groups[score]
    take = min(left, len(values))
    total += take * sum(values) / len(values)
    left -= take
    if not left:
      break
  return total / k


def _tau(score: list[float], true: list[float], rng: np.random.Generator, bootstrap: int) -> str:
  """Kendall's tau-b and its 95% bootstrap interval; 'n/a' where undefined (all tied)."""
  score, true = np.asarray(score, np.float64), np.asarray(true, np.float64)
  if len(true) < 2:
    return 'n/a'
  stats = rankings.row('', '', score, true, range(len(true)), rng, bootstrap)
  tau, ci = stats['kendall_tau_b'], stats['tau_ci95']
  if tau is None:
    return 'n/a'
  return f'{tau:.2f}' + (f' [{ci[0]:.2f}, {ci[1]:.2f}]' if ci and None not in ci else '')


def row(
    workdir: str, table: ground_truth.Table, image_size: int, bootstrap: int = 0, seed: int = 0
) -> str:
  """The markdown row of one finished search (tau intervals from `bootstrap` draws)."""
  config = _read(workdir, 'config.json')
  search = config['search']
  records = results.read(os.path.join(workdir, 'search', 'candidates.jsonl'))
  limit = search.get('max_flops') or None
  admitted = [r for r in records if limit is None or (r['flops'] or 0) <= limit]
  joined = ground_truth.join(admitted, table)  # One-shot accuracy order (rank_by accuracy).
  if not joined:
    raise ValueError(f'{workdir}: no scored candidate within the limit is in {table.path}')
  true = [t for _, _, t in joined]
  flops = {r['arch']: r['flops'] or 0 for r in admitted}
  params = {r['arch']: r['params'] or 0 for r in admitted}
  by_flops = [(flops[a], t) for a, _, t in joined]
  rng = np.random.default_rng(seed)
  tau = lambda score: _tau(score, true, rng, bootstrap)
  timing = _read(workdir, 'search', 'timing.json')
  cells = [
      config['supernet']['sampler'],
      search['strategy'],
      search.get('bn', 'ghost'),
      config['supernet'].get('weights', 'shared'),
      f'{limit:,}' if limit else 'none',
      f'{100 * true[0]:.2f}',
      f'{100 * sum(true[:TOP]) / len(true[:TOP]):.2f}',
      f'{100 * top_mean(by_flops, 1):.2f} / {100 * top_mean(by_flops, TOP):.2f}',
      tau([s for _, s, _ in joined]),
      tau([f for f, _ in by_flops]),
      tau([params[a] for a, _, _ in joined]),
      f'{100 * best_under_limit(config, table, image_size):.2f}',
      f"{timing['wall_s'] / 60:.1f}",
      str(len(records)),
  ]
  return '| ' + ' | '.join(cells) + ' |'


def table_text(
    workdirs: list[str],
    csv: str,
    column: str,
    image_size: int = 32,
    bootstrap: int = 0,
    seed: int = 0,
) -> str:
  table = ground_truth.load_table(csv, 'arch', column)
  rows = (row(w, table, image_size, bootstrap, seed) for w in workdirs)
  return '\n'.join([HEADER, *rows])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('workdirs', nargs='+')
  parser.add_argument('--csv', default='../shared/data/nasbench201/nb201_cifar10.csv')
  parser.add_argument('--column', default='test_acc_200ep')
  parser.add_argument('--image_size', type=int, default=32)  # CIFAR-10's.
  parser.add_argument('--bootstrap', type=int, default=1000)  # Resamples per tau interval.
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  print(
      table_text(args.workdirs, args.csv, args.column, args.image_size, args.bootstrap, args.seed)
  )


if __name__ == '__main__':
  main()
