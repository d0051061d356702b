"""The report's statistics: Table 1 by group, rank correlations, the best architectures."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence
import warnings

import numpy as np
from scipy import stats

from osas.search.results import is_number
from osas.search.selection import TOP_BY

# The paper's groups first, in Table 1's order; then any other group; then the buckets.
CORE_GROUPS = ('one_shot_top', 'one_shot_small', 'random', 'all_on')
ALL_RETRAINED = 'all retrained'
MIN_PAIRS = 3  # Fewer pairs give a rank correlation of +-1 or undefined: no evidence.
_BUCKET = re.compile(r'bucket_(\d+)')
_LABELS = {
    'one_shot_top': 'One-Shot Top',
    'one_shot_small': 'One-Shot Small',
    'random': 'Random',
    'all_on': 'All-On',
    ALL_RETRAINED: 'All retrained',
}


def bucket_index(name: str) -> int | None:
  """K of a group named bucket_K, else None."""
  bucket = _BUCKET.fullmatch(name)
  return int(bucket.group(1)) if bucket else None


def _group_order(name: str, position: int) -> tuple[int, int]:
  if name in CORE_GROUPS:
    return (0, CORE_GROUPS.index(name))
  bucket = bucket_index(name)
  return (1, position) if bucket is None else (2, bucket)


def group_label(name: str) -> str:
  """The paper's name of a group ('One-Shot Top'), 'Bucket K', 'Top by X', or the name."""
  bucket = bucket_index(name)
  if name.startswith(TOP_BY):
    return f'Top by {name[len(TOP_BY):]}'
  return _LABELS.get(name) or (name if bucket is None else f'Bucket {bucket}')


def order_groups(groups: dict[str, list[str]]) -> dict[str, list[str]]:
  """The groups in Table 1's order: the paper's, others in file order, buckets by number."""
  names = sorted(enumerate(groups), key=lambda item: _group_order(item[1], item[0]))
  return {name: groups[name] for _, name in names}


def mean_std(values: Iterable[Any]) -> dict[str, Any]:
  """Count, mean and sample std (ddof=1, null below 2) of the finite numbers in `values`."""
  x = np.array([v for v in values if is_number(v)], np.float64)
  return {
      'n': int(x.size),
      'mean': float(x.mean()) if x.size else None,
      'std': float(x.std(ddof=1)) if x.size > 1 else None,
  }


def _row(
    name: str,
    archs: Sequence[str],
    one_shot: dict[str, float],
    retrained: dict[str, dict[str, Any]],
    accuracy_key: str,
) -> dict[str, Any]:
  done = [retrained[a] for a in archs if a in retrained]
  return {
      'group': name,
      'selected': len(archs),
      'retrained': len(done),
      'params': mean_std(r.get('params') for r in done),
      'standalone_accuracy': mean_std(r.get(accuracy_key) for r in done),
      'one_shot_accuracy': mean_std(one_shot.get(a) for a in archs),
  }


def group_table(
    groups: dict[str, list[str]],
    candidates: Sequence[dict[str, Any]],
    results: Sequence[dict[str, Any]],
    accuracy_key: str,
) -> list[dict[str, Any]]:
  """Table 1: a row per group (in `order_groups` order), then one for every arch.

  Params and stand-alone accuracy describe the group's retrained archs; one-shot
  accuracy its selected archs that were scored (so it is there before any retraining).
  The last row covers every selected or retrained arch (archs named in config.retrain.archs
  included) once.
  """
  one_shot = {c['arch']: c['accuracy'] for c in candidates}
  retrained = {r['arch']: r for r in results}
  groups = order_groups(groups)
  rows = [_row(name, archs, one_shot, retrained, accuracy_key) for name, archs in groups.items()]
  everything = dict.fromkeys(a for archs in groups.values() for a in archs)
  everything.update(dict.fromkeys(retrained))
  rows.append(_row(ALL_RETRAINED, list(everything), one_shot, retrained, accuracy_key))
  return rows


def _finite_or_none(value: float) -> float | None:
  return float(value) if np.isfinite(value) else None


def rank_correlation(x: Sequence[Any], y: Sequence[Any]) -> dict[str, Any]:
  """Spearman's rho and Kendall's tau (tau-b) with p-values over the finite pairs.

  The statistics are null, with the reason, when they are undefined.
  """
  pairs = [(a, b) for a, b in zip(x, y) if is_number(a) and is_number(b)]
  out = {
      'n': len(pairs),
      'spearman': None,
      'spearman_p': None,
      'kendall': None,
      'kendall_p': None,
      'reason': None,
  }
  if len(pairs) < MIN_PAIRS:
    out['reason'] = f'fewer than {MIN_PAIRS} pairs (n={len(pairs)})'
    return out
  a, b = np.array(pairs, np.float64).T
  if np.ptp(a) == 0 or np.ptp(b) == 0:
    out['reason'] = 'one side is constant, so ranks do not vary'
    return out
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # Ties and small n warn; the values stay well defined.
    rho, rho_p = stats.spearmanr(a, b)
    tau, tau_p = stats.kendalltau(a, b)
  out.update(
      spearman=_finite_or_none(rho),
      spearman_p=_finite_or_none(rho_p),
      kendall=_finite_or_none(tau),
      kendall_p=_finite_or_none(tau_p),
  )
  return out


def correlations(
    candidates: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]], accuracy_key: str
) -> dict[str, dict[str, Any]]:
  """The paper's rank correlations: one-shot vs stand-alone (Figure 5), KL vs both (Fig. 6)."""
  by_arch = {c['arch']: c for c in candidates}
  scored = [(by_arch[r['arch']], r) for r in results if r['arch'] in by_arch]
  return {
      'one_shot_vs_standalone': {
          'x': 'one-shot accuracy',
          'y': f'stand-alone {accuracy_key}',
          **rank_correlation(
              [c['accuracy'] for c, _ in scored], [r.get(accuracy_key) for _, r in scored]
          ),
      },
      'kl_vs_one_shot': {
          'x': 'KL score',
          'y': 'one-shot accuracy',
          **rank_correlation(
              [c.get('kl') for c in candidates], [c['accuracy'] for c in candidates]
          ),
      },
      'kl_vs_standalone': {
          'x': 'KL score',
          'y': f'stand-alone {accuracy_key}',
          **rank_correlation(
              [c.get('kl') for c, _ in scored], [r.get(accuracy_key) for _, r in scored]
          ),
      },
  }


def one_shot_rank(candidate: dict[str, Any]) -> tuple[float, int, str]:
  """Sort key of the one-shot ranking: higher accuracy first.

  Ties go to the smaller model, then the arch string, so every reader of the ranking picks
  the same top-k.
  """
  return (-candidate['accuracy'], candidate.get('params') or 0, candidate['arch'])


def best_candidate(candidates: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
  """The first by `one_shot_rank`."""
  if not candidates:
    return None
  best = min(candidates, key=one_shot_rank)
  return {
      'arch': best['arch'],
      'accuracy': best['accuracy'],
      'params': best.get('params'),
      'flops': best.get('flops'),
      'kl': best['kl'] if is_number(best.get('kl')) else None,
  }


def best_retrained(
    results: Sequence[dict[str, Any]], accuracy_key: str, candidates: Sequence[dict[str, Any]] = ()
) -> dict[str, Any] | None:
  """The best retrained arch by stand-alone accuracy, with its one-shot accuracy if scored."""
  finished = [r for r in results if is_number(r.get(accuracy_key))]
  if not finished:
    return None
  best = min(finished, key=lambda r: (-r[accuracy_key], r.get('params') or 0, r['arch']))
  one_shot = {c['arch']: c['accuracy'] for c in candidates}
  return {
      'arch': best['arch'],
      'arch_id': best.get('arch_id'),
      'params': best.get('params'),
      'flops': best.get('flops'),
      'accuracy': best[accuracy_key],
      'one_shot_accuracy': one_shot.get(best['arch']),
  }


def selected_cost(
    groups: dict[str, list[str]], candidates: Sequence[dict[str, Any]]
) -> dict[str, Any]:
  """[smallest, largest] stand-alone params and FLOPs of the selected archs that were scored."""
  by_arch = {c['arch']: c for c in candidates}
  chosen = [by_arch[a] for a in {a for archs in groups.values() for a in archs} if a in by_arch]
  cost: dict[str, Any] = {'n': len(chosen)}
  for key in ('params', 'flops'):
    values = [c[key] for c in chosen if is_number(c.get(key))]
    cost[key] = [min(values), max(values)] if values else None
  return cost
