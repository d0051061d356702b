"""Which scored candidates to retrain: the paper's groups plus score buckets.

Candidates are ranked by config.search.rank_by (osas.search.ranking): one-shot accuracy,
the paper's score, unless another is chosen. config.select.top_by adds a One-Shot Top
group per other ranking ('top_by:RANK_BY'), to retrain what another score would pick.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from osas.search import ranking

TOP_BY = 'top_by:'  # Group name prefix of config.select.top_by's groups.


def _pick(rng: np.random.Generator, items: list, n: int) -> list:
  if len(items) <= n:
    return list(items)
  return [items[i] for i in sorted(rng.choice(len(items), n, replace=False))]


def one_shot_top(records, scores, rng, top_n: int, sample: int) -> list[str]:
  """A stratified sample of `sample` from the `top_n` best: one from each rank stratum."""
  order = sorted(range(len(records)), key=lambda i: (-scores[i], records[i]['arch']))
  ranked = [records[i] for i in order[:top_n]]
  strata = np.array_split(np.arange(len(ranked)), min(sample, len(ranked)))
  return [ranked[int(rng.choice(s))]['arch'] for s in strata if len(s)]


def one_shot_small(records, scores, percentile: float, n: int) -> list[str]:
  """The `n` smallest (by parameters) of the candidates at or above the score percentile."""
  threshold = np.percentile(scores, percentile)
  good = [r for r, s in zip(records, scores) if s >= threshold]
  return [r['arch'] for r in sorted(good, key=lambda r: (r['params'], r['arch']))[:n]]


def buckets(records, scores, rng, num_buckets: int, per_bucket: int) -> dict[str, list[str]]:
  """`per_bucket` random candidates from each of `num_buckets` equal-width score ranges."""
  finite = scores[np.isfinite(scores)]
  scores = np.clip(scores, finite.min() if finite.size else 0.0, None)  # Missing: lowest.
  edges = np.linspace(scores.min(), scores.max(), num_buckets + 1)
  which = np.clip(np.searchsorted(edges, scores, side='right') - 1, 0, num_buckets - 1)
  return {
      f'bucket_{b}': _pick(rng, [r['arch'] for r, w in zip(records, which) if w == b], per_bucket)
      for b in range(num_buckets)
  }


def select(
    records: list[dict[str, Any]], section, seed: int, all_on: str | None, rank_by: str = 'accuracy'
) -> dict[str, list[str]]:
  """The named groups of arch strings to retrain (config.select), ranked by `rank_by`."""
  if not records:
    raise ValueError('search: no scored candidates to select from')
  rng = np.random.default_rng(seed)
  scores = ranking.scores(records, rank_by)
  groups = {
      'one_shot_top': one_shot_top(records, scores, rng, section.top_n, section.top_sample),
      'one_shot_small': one_shot_small(records, scores, section.small_percentile, section.small_n),
      'random': _pick(rng, [r['arch'] for r in records], section.random_n),
  }
  if section.include_all_on and all_on is not None:
    groups['all_on'] = [all_on]
  if section.buckets:
    groups.update(buckets(records, scores, rng, section.buckets, section.per_bucket))
  for i, other in enumerate(dict.fromkeys(section.get('top_by', ()))):
    # Its own generator: adding a top_by group leaves every other group as it was.
    groups[TOP_BY + other] = one_shot_top(
        records,
        ranking.scores(records, other),
        np.random.default_rng([seed, i + 1]),
        section.top_n,
        section.top_sample,
    )
  return {name: archs for name, archs in groups.items() if archs}
