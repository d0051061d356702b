"""config.search.rank_by: the score candidates are ranked by, alone or as an aggregate of ranks.

`rank_by` names one field of a candidate record ('accuracy', 'loss', 'kl', a zero-cost
score, or the baselines 'params' and 'flops'), or several, each with an optional weight
after ':'. Joined by '+' ('naswot+synflow+flops', 'naswot:2+synflow:1') the score is the
weighted mean of each field's rank among the candidates; joined by '*'
('naswot*synflow*jacob_cov*flops') it is their weighted geometric mean, the sum of log
ranks of AZ-NAS (Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network
Architecture Search", CVPR 2024): a candidate must rank well by every field, since one
poor rank pulls it far down. Larger scores are better; fields where smaller is better
(loss, kl) are turned around first, and a missing or non-finite value ranks last.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

from osas.search import zero_cost

# +1: larger is better; -1: smaller is better.
DIRECTION = {
    'accuracy': 1,
    'loss': -1,
    'kl': -1,
    **dict.fromkeys(zero_cost.SCORES, 1),  # Larger is better for every zero-cost score.
    'params': 1,
    'flops': 1,
}
_FIELD = 'config.search.rank_by'


def _joiner(rank_by: str, field: str = _FIELD) -> str:
  """'*' for a geometric mean of ranks, '+' otherwise; ValueError when both are used."""
  if '*' in str(rank_by) and '+' in str(rank_by):
    raise ValueError(f"{field}={rank_by!r}: join the scores with '+' or with '*', not both")
  return '*' if '*' in str(rank_by) else '+'


def parse(rank_by: str, field: str = _FIELD) -> dict[str, float]:
  """{score: weight} of a rank_by string; ValueError naming `field` (the config field)."""
  weights = {}
  for part in str(rank_by).split(_joiner(rank_by, field)):
    name, sep, weight = part.strip().partition(':')
    if name not in DIRECTION:
      raise ValueError(
          f'{field}={rank_by!r}: unknown score {name!r}; known: ' f"{', '.join(DIRECTION)}"
      )
    try:
      value = float(weight) if sep else 1.0
    except ValueError:
      value = math.nan
    if not value > 0 or not math.isfinite(value) or name in weights:
      raise ValueError(
          f'{field}={rank_by!r}: {part.strip()!r} must name a score once, ' 'with a positive weight'
      )
    weights[name] = value
  return weights


def values(records: Sequence[dict[str, Any]], field: str) -> np.ndarray:
  """The field of every record, larger is better; missing or non-finite values are -inf."""
  x = np.array([r.get(field) if r.get(field) is not None else np.nan for r in records], np.float64)
  x = DIRECTION[field] * x
  return np.where(np.isfinite(x), x, -np.inf)


def scores(records: Sequence[dict[str, Any]], rank_by: str) -> np.ndarray:
  """The ranking score of every record (larger is better)."""
  weights = parse(rank_by)
  if len(weights) == 1:
    return values(records, next(iter(weights)))
  geometric = _joiner(rank_by) == '*'
  total = np.zeros(len(records))
  for field, weight in weights.items():
    # Ranks as fractions in (0, 1], the best 1; ties share their mean rank.
    rank = stats.rankdata(values(records, field)) / max(len(records), 1)
    total += weight * (np.log(rank) if geometric else rank)
  total /= sum(weights.values())
  return np.exp(total) if geometric else total


def order(records: Sequence[dict[str, Any]], rank_by: str) -> list[int]:
  """Indices of `records`, best first; ties go to the smaller model, then the arch string."""
  s = scores(records, rank_by)
  return sorted(
      range(len(records)), key=lambda i: (-s[i], records[i].get('params') or 0, records[i]['arch'])
  )


def top_overlap(
    records: Sequence[dict[str, Any]], rank_by: str, other: str, k: int
) -> float | None:
  """The share of `other`'s top-k that `rank_by`'s top-k holds; None without candidates.

  How much the One-Shot Top pool (config.select.top_n) would change if selection ranked
  by `other` instead.
  """
  k = min(k, len(records))
  if k <= 0:
    return None
  return len(set(order(records, rank_by)[:k]).intersection(order(records, other)[:k])) / k
