"""TFDS-style split strings ('train[:90%]+test') resolved to index ranges."""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

_PIECE_RE = re.compile(r'^(?P<base>\w[\w-]*)(?:\[(?P<select>[^\]]*)\])?$')
_BOUND_RE = re.compile(r'^(?P<value>-?\d+(?:\.\d+)?)(?P<pct>%)?$')

_Bound = tuple[float | None, bool]  # (value or None if open, is percent).


@dataclasses.dataclass(frozen=True)
class Segment:
  """Examples [start, stop) of base split `base`."""
  base: str
  start: int
  stop: int

  def __len__(self) -> int:
    return self.stop - self.start


def _parse_bound(text: str) -> _Bound:
  """Parses one side of 'a:b'; ValueError if malformed."""
  text = text.strip()
  if not text:
    return None, False
  match = _BOUND_RE.match(text)
  if not match:
    raise ValueError(text)
  pct = bool(match['pct'])
  if not pct and '.' in match['value']:
    raise ValueError(text)  # Like TFDS: fractions only make sense as percents.
  return (float(match['value']) if pct else int(match['value'])), pct


def _to_absolute(value: float | None, pct: bool, size: int,
                 default: int) -> int:
  if value is None:
    return default
  if pct:
    if abs(value) > 100:
      raise IndexError(f'{value:g}% is outside [-100%, 100%]')
    value = int(round(value * size / 100))  # TFDS's 'closest' rounding.
  elif abs(value) > size:
    raise IndexError(f'{value} is outside a split of {size} examples')
  return value + size if value < 0 else value


def _parse_piece(piece: str) -> tuple[str, _Bound, _Bound]:
  """'train[a:b]' -> ('train', lower bound, upper bound); ValueError if bad."""
  match = _PIECE_RE.match(piece.strip())
  if not match:
    raise ValueError(piece)
  if match['select'] is None:
    return match['base'], (None, False), (None, False)
  bounds = match['select'].split(':')
  if len(bounds) != 2:
    raise ValueError(piece)
  lo, hi = map(_parse_bound, bounds)
  if lo[0] is not None and hi[0] is not None and lo[1] != hi[1]:
    raise ValueError(piece)  # '10%:20' is ambiguous; TFDS would guess.
  return match['base'], lo, hi


def resolve(spec: str, field: str,
            base_size: Callable[[str], int]) -> list[Segment]:
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
    try:
      base, lo, hi = _parse_piece(piece)
    except ValueError:
      raise ValueError(f'{field}: cannot parse {spec!r}') from None
    try:
      size = base_size(base)
    except KeyError as e:
      raise ValueError(f'{field}: unknown split {base!r} in {spec!r}; '
                       f'{e.args[0] if e.args else ""}') from None
    try:
      start = _to_absolute(*lo, size, 0)
      stop = _to_absolute(*hi, size, size)
    except IndexError as e:
      raise ValueError(f'{field}: {spec!r}: {e}') from None
    segments.append(Segment(base, start, max(start, stop)))
  if not sum(map(len, segments)):
    raise ValueError(f'{field}: {spec!r} selects no examples')
  return segments
