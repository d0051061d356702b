"""TFDS-style split strings ('train[:90%]+test') resolved to index ranges."""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

# 'base' or 'base[lo:hi]'; a bound is an int or a percent (which may have decimals, as in TFDS).
_BOUND = r'\s*(-?\d+(?:(?:\.\d+)?%)?)?\s*'
_PIECE_RE = re.compile(rf'\s*(\w[\w-]*)(?:\[{_BOUND}:{_BOUND}\])?\s*')


@dataclasses.dataclass(frozen=True)
class Segment:
  """Examples [start, stop) of base split `base`."""

  base: str
  start: int
  stop: int

  def __len__(self) -> int:
    return self.stop - self.start


def _to_absolute(bound: str | None, size: int, default: int) -> int:
  if bound is None:
    return default
  if bound.endswith('%'):
    if abs(percent := float(bound[:-1])) > 100:
      raise IndexError(f'{percent:g}% is outside [-100%, 100%]')
    value = int(round(percent * size / 100))  # TFDS's 'closest' rounding.
  elif abs(value := int(bound)) > size:
    raise IndexError(f'{value} is outside a split of {size} examples')
  return value + size if value < 0 else value


def resolve(spec: str, field: str, base_size: Callable[[str], int]) -> list[Segment]:
  """Parses `spec` and resolves it against the base splits' sizes.

  Args:
    spec: e.g. 'train', 'train[:45000]', 'train[-10%:]', 'train[:10]+test'.
    field: the config field the spec came from, for error messages.
    base_size: number of examples of a base split; raises KeyError (with a
      message) for an unknown one.

  Returns:
    One segment per '+'-separated piece, in order.

  Raises:
    ValueError: naming `field`, when the spec is malformed, refers to an
      unknown base split, slices out of range, or selects no examples.
  """
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(f'{field}: cannot parse {spec!r}')
  segments = []
  for piece in spec.split('+'):
    match = _PIECE_RE.fullmatch(piece)
    # '10%:20' is ambiguous (TFDS would guess): both bounds in the same unit or one open.
    if not match or (match[2] and match[3] and match[2].endswith('%') != match[3].endswith('%')):
      raise ValueError(f'{field}: cannot parse {spec!r}')
    base, lo, hi = match.groups()
    try:
      size = base_size(base)
    except KeyError as e:
      raise ValueError(
          f'{field}: unknown split {base!r} in {spec!r}; {e.args[0] if e.args else ""}'
      ) from None
    try:
      start, stop = _to_absolute(lo, size, 0), _to_absolute(hi, size, size)
    except IndexError as e:
      raise ValueError(f'{field}: {spec!r}: {e}') from None
    segments.append(Segment(base, start, max(start, stop)))
  if not sum(map(len, segments)):
    raise ValueError(f'{field}: {spec!r} selects no examples')
  return segments
