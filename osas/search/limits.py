"""config.search.max_params / max_flops: the stand-alone cost a candidate may have."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

FIELDS = ('max_params', 'max_flops')


@dataclasses.dataclass(frozen=True)
class Limits:
  """Upper bounds on the stand-alone model at config.retrain.filters; 0 or None: no bound.

  `cost_of(arch)` gives (params, flops), the analytic count of osas.models.cost; it is
  called only while a bound is set.
  """

  max_params: int | None = None
  max_flops: int | None = None
  cost_of: Callable[[Any], tuple[int, int]] | None = None

  @classmethod
  def from_config(cls, section, cost_of: Callable[[Any], tuple[int, int]]) -> Limits:
    return cls(section.get('max_params') or None, section.get('max_flops') or None, cost_of)

  @property
  def active(self) -> bool:
    return bool(self.max_params or self.max_flops)

  def admits_cost(self, params: int | None, flops: int | None) -> bool:
    """Whether a cost is within the bounds (an unknown cost is not, under a bound)."""
    return all(
        not bound or (value is not None and value <= bound)
        for bound, value in ((self.max_params, params), (self.max_flops, flops))
    )

  def admits(self, arch: Any) -> bool:
    return not self.active or self.admits_cost(*self.cost_of(arch))

  def admits_record(self, record: dict[str, Any]) -> bool:
    """Whether a candidates.jsonl record's params and flops are within the bounds."""
    return not self.active or self.admits_cost(record.get('params'), record.get('flops'))

  def to_json(self) -> dict[str, int | None]:
    return {'max_params': self.max_params, 'max_flops': self.max_flops}

  def nothing_admitted(self, tried: str) -> ValueError:
    """The one-line error when no candidate is within the bounds."""
    bounds = ' and '.join(
        f'config.search.{field}={value:,}' for field, value in self.to_json().items() if value
    )
    return ValueError(
        f'search: {bounds} admit none of {tried} (stand-alone models at '
        'config.retrain.filters); raise the limit or set it to 0 (none)'
    )


def check(section) -> None:
  """ValueError naming the field unless each limit is None or an integer >= 0."""
  for field in FIELDS:
    value = section.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
      raise ValueError(f'config.search.{field}={value!r} must be an integer >= 0 (0: no limit)')
