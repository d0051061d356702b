"""config.search.rank_by: the score candidates are ranked by, alone or as a mean of ranks.

`rank_by` names one field of a candidate record ('accuracy', 'loss', 'kl', a zero-cost
score, or the baselines 'params' and 'flops'), or several joined by '+', each with an
optional weight after ':' ('naswot+synflow+flops', 'naswot:2+synflow:1'): then the score
is the weighted mean of each field's rank among the candidates (AZ-NAS-style rank
aggregation). Larger scores are better; fields where smaller is better (loss, kl) are
turned around first, and a missing or non-finite value ranks last.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

# +1: larger is better; -1: smaller is better.
DIRECTION = {
    'accuracy': 1,
    'loss': -1,
    'kl': -1,
    'synflow': 1,
    'naswot': 1,
    'jacob_cov': 1,
    'snip': 1,
    'grad_norm': 1,
    'params': 1,
    'flops': 1,
}
_FIELD = 'config.search.rank_by'


def parse(rank_by: str) -> dict[str, float]:
  """{field: weight} of a rank_by string; ValueError naming config.search.rank_by."""
  weights = {}
  for part in str(rank_by).split('+'):
    name, sep, weight = part.strip().partition(':')
    if name not in DIRECTION:
      raise ValueError(
          f'{_FIELD}={rank_by!r}: unknown score {name!r}; known: ' f"{', '.join(DIRECTION)}"
      )
    try:
      value = float(weight) if sep else 1.0
    except ValueError:
      value = math.nan
    if not value > 0 or not math.isfinite(value) or name in weights:
      raise ValueError(
          f'{_FIELD}={rank_by!r}: {part.strip()!r} must name a score once, '
          'with a positive weight'
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
  total = np.zeros(len(records))
  for field, weight in weights.items():
    total += weight * stats.rankdata(values(records, field))  # Ties share their mean rank.
  return total / (sum(weights.values()) * max(len(records), 1))


def order(records: Sequence[dict[str, Any]], rank_by: str) -> list[int]:
  """Indices of `records`, best first; ties go to the smaller model, then the arch string."""
  s = scores(records, rank_by)
  return sorted(
      range(len(records)), key=lambda i: (-s[i], records[i].get('params') or 0, records[i]['arch'])
  )
