"""Every score and baseline against true accuracies: which ranking predicts them best.

Each row ranks the same candidates by one score (one-shot accuracy, loss, KL, a zero-cost
score, config.search.rank_by's aggregate) or by a baseline computed from the architecture
alone (stand-alone parameters, FLOPs, NAS-Bench-201's 3x3-conv count, a random order),
and gives Kendall tau-b and Spearman rho with 95% bootstrap intervals (candidates
resampled with replacement, seeded), tau within the true top 10%, precision@k, and the
true accuracy of the top-1 and of the top-10 mean beside the best there is.
"""

from __future__ import annotations

from typing import Any, Sequence
import warnings

import numpy as np
from scipy import stats

from osas.search import ranking
from osas.search import results as results_lib

KS = (10, 50, 100)  # Precision@k for each k below the number of candidates.
TOP = 10
MIN_POINTS = 3  # Fewer give a correlation of +-1 or undefined: no evidence.


def precision_at_k(true_in_order: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
  """For each k <= n: the share of the ranking's top-k that is in the true top-k.

  A true accuracy at least the k-th best counts as in the top-k (ties at that value all
  count, so no tie-break decides).
  """
  true_in_order = np.asarray(true_in_order, np.float64)
  best_first = np.sort(true_in_order)[::-1]
  return {
      str(k): float(np.mean(true_in_order[:k] >= best_first[k - 1]))
      for k in ks
      if k <= len(true_in_order)
  }


def _tau_rho(score: np.ndarray, true: np.ndarray) -> tuple[float, float]:
  with warnings.catch_warnings():  # A constant input: NaN, reported as null.
    warnings.simplefilter('ignore')
    return (
        float(stats.kendalltau(score, true).statistic),
        float(stats.spearmanr(score, true).statistic),
    )


def _nan_to_none(x: float) -> float | None:
  return None if x is None or not np.isfinite(x) else float(x)


def row(
    name: str,
    kind: str,
    score: np.ndarray,
    true: np.ndarray,
    order: Sequence[int],
    rng: np.random.Generator,
    bootstrap: int,
) -> dict[str, Any]:
  """The statistics of one ranking: `score` larger is better, `order` best first."""
  tau, rho = _tau_rho(score, true)
  out = {
      'name': name,
      'kind': kind,
      'n': len(true),
      'kendall_tau_b': _nan_to_none(tau),
      'spearman': _nan_to_none(rho),
      'tau_ci95': None,
      'rho_ci95': None,
  }
  if bootstrap:
    draws = [
        _tau_rho(score[i], true[i]) for i in rng.integers(0, len(true), (bootstrap, len(true)))
    ]
    with warnings.catch_warnings():  # All NaN (a constant score): no interval.
      warnings.simplefilter('ignore')
      low, high = np.nanpercentile(np.array(draws, np.float64), [2.5, 97.5], axis=0)
    out['tau_ci95'] = [_nan_to_none(low[0]), _nan_to_none(high[0])]
    out['rho_ci95'] = [_nan_to_none(low[1]), _nan_to_none(high[1])]
  best = true >= np.quantile(true, 0.9)
  out['tau_top10pct'] = (
      _nan_to_none(_tau_rho(score[best], true[best])[0]) if best.sum() >= MIN_POINTS else None
  )
  ordered = true[np.asarray(order)]
  out['precision_at_k'] = precision_at_k(ordered)
  out['top1'] = float(ordered[0])
  out['top10_mean'] = float(ordered[:TOP].mean())
  return out


def baselines(
    records: Sequence[dict[str, Any]], space_name: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
  """Rankings from the architecture alone (larger first)."""
  out = {f: ranking.values(records, f) for f in ('params', 'flops')}
  if space_name == 'nasbench201':
    out['nor_conv_3x3 count'] = np.array(
        [r['arch'].count('nor_conv_3x3') for r in records], np.float64
    )
  out['random'] = rng.permutation(len(records)).astype(np.float64)
  return out


def table(
    records: Sequence[dict[str, Any]],
    true: Sequence[float],
    *,
    rank_by: str,
    space_name: str,
    seed: int,
    bootstrap: int,
    also: Sequence[str] = (),
    top_k: int = 0,
) -> dict[str, Any]:
  """Rows for every score present in `records`, rank_by, the aggregates `also` and the baselines.

  `true[i]` is the true accuracy of `records[i]`; `also` (config.report.also_rank_by)
  holds rank_by strings compared beside the one selection used. With `top_k`
  (config.select.top_n), each row also gives the share of its top-k that rank_by's top-k
  holds: how much the One-Shot Top pool would change if selection ranked by that row.
  """
  true = np.asarray(true, np.float64)
  if len(true) < MIN_POINTS:
    return {'n': len(true), 'rows': [], 'optimum': _nan_to_none(true.max()) if len(true) else None}
  rng = np.random.default_rng(seed)
  rows, orders = [], {}

  def add(name, kind, score):
    keyed = [{'arch': r['arch'], 'params': r.get('params')} for r in records]
    order = sorted(
        range(len(records)), key=lambda i: (-score[i], keyed[i]['params'] or 0, keyed[i]['arch'])
    )
    rows.append(row(name, kind, score, true, order, rng, bootstrap))
    orders[name] = order

  has = lambda field: any(results_lib.is_number(r.get(field)) for r in records)
  for field in ranking.DIRECTION:
    if field not in ('params', 'flops') and has(field):
      add(field, 'score', ranking.values(records, field))
  if len(ranking.parse(rank_by)) > 1 and all(map(has, ranking.parse(rank_by))):
    add(rank_by, 'rank_by', ranking.scores(records, rank_by))
  for other in dict.fromkeys(also):  # Once each, after the one selection used.
    if other not in orders and all(map(has, ranking.parse(other))):
      add(other, 'also', ranking.scores(records, other))
  for name, score in baselines(records, space_name, rng).items():
    add(name, 'baseline', score)
  k = min(top_k, len(true))
  if k and rank_by in orders:
    pool = set(orders[rank_by][:k])
    for r in rows:
      r['top_shared'] = len(pool.intersection(orders[r['name']][:k])) / k
  params = next((r for r in rows if r['name'] == 'params'), None)
  for r in rows:
    if params and r['kendall_tau_b'] is not None and params['kendall_tau_b'] is not None:
      r['beats_params'] = bool(
          r['tau_ci95'][0] > params['kendall_tau_b']
          if r['tau_ci95'] and r['tau_ci95'][0] is not None
          else r['kendall_tau_b'] > params['kendall_tau_b']
      )
  return {
      'n': len(true),
      'rank_by': rank_by,
      'top_k': k if k and rank_by in orders else None,
      'bootstrap': bootstrap,
      'optimum': float(true.max()),
      'rows': rows,
  }


def top_pools(
    records: Sequence[dict[str, Any]], rank_by: str, others: Sequence[str], k: int
) -> dict[str, Any]:
  """For every score in `records` and each of `others`: how much of its top-k rank_by's holds.

  Over all scored candidates, the pool One-Shot Top is drawn from.
  """
  has = lambda field: any(results_lib.is_number(r.get(field)) for r in records)
  names = [*(f for f in ranking.DIRECTION if has(f)), rank_by, *others]
  names = [n for n in dict.fromkeys(names) if all(map(has, ranking.parse(n)))]
  return {
      'rank_by': rank_by,
      'k': min(k, len(records)),
      'n': len(records),
      'shared': {n: ranking.top_overlap(records, rank_by, n, k) for n in names},
  }


def render_pools(pools: dict[str, Any]) -> list[str]:
  """Markdown lines: `top_pools`'s shares as a table."""
  return [
      f"The top {pools['k']} of the {pools['n']} scored candidates by each ranking: the share "
      f"that the top {pools['k']} by config.search.rank_by (`{pools['rank_by']}`) also holds "
      '(1.00: selecting by that ranking would draw One-Shot Top from the same pool).',
      '',
      '| ranking | share of the top pool |',
      '| --- | ---: |',
      *(f'| {name} | {share:.2f} |' for name, share in pools['shared'].items()),
  ]


def render(result: dict[str, Any], what: str) -> list[str]:
  """Markdown lines: the table of `table`'s result; `what` names the true accuracy."""
  if not result['rows']:
    return [f'Fewer than {MIN_POINTS} candidates with {what}: no ranking table.']
  pct = lambda v: '–' if v is None else f'{100 * v:.2f}'
  num = lambda v: '–' if v is None else f'{v:.3f}'
  ci = lambda c: '' if not c or None in c else f' [{c[0]:.3f}, {c[1]:.3f}]'
  k = '50' if any('50' in r['precision_at_k'] for r in result['rows']) else '10'
  top_k = result.get('top_k')
  shared = f' top-{top_k} shared with rank_by |' if top_k else ''
  lines = [
      f"{result['n']} candidates ranked against {what} (best {pct(result['optimum'])}%); "
      f"tau-b and rho with 95% bootstrap intervals ({result['bootstrap']} resamples); "
      "'beats params': the interval's lower end is above the parameter count's tau; "
      f"config.search.rank_by = `{result['rank_by']}`.",
      '',
      f'| ranking | kind | Kendall tau-b | Spearman rho | tau, true top 10% | '
      f'precision@{k} | top-1 % | top-10 mean % | beats params |{shared}',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |' + (' --- |' if top_k else ''),
  ]
  for r in result['rows']:
    beats = {True: 'yes', False: 'no'}.get(r.get('beats_params'), '–')
    lines.append(
        f"| {r['name']} | {r['kind']} | {num(r['kendall_tau_b'])}{ci(r['tau_ci95'])} | "
        f"{num(r['spearman'])}{ci(r['rho_ci95'])} | {num(r['tau_top10pct'])} | "
        f"{num(r['precision_at_k'].get(k))} | {pct(r['top1'])} | "
        f"{pct(r['top10_mean'])} | {beats if r['name'] != 'params' else '–'} |"
        + (f" {r['top_shared']:.2f} |" if top_k else '')
    )
  return lines
