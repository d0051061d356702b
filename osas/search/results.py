"""DIR/search/candidates.jsonl: scored candidates, appended and flushed chunk by chunk."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from absl import logging
from etils import epath
import jax

from osas.search import zero_cost

FIELDS = ('arch', 'accuracy', 'loss', 'kl', 'params', 'flops')
# Scores written when config.search.zero_cost asks for them.
OPTIONAL = zero_cost.SCORES
# With config.search.per_class: the cell whose scores an isomorphic cell shares.
SAME_AS = 'same_as'
# With config.search.bn='recalibrate': how the scores' BN statistics were obtained.
BN_FIELDS = ('bn', 'recalibration_images')


def is_number(value: Any) -> bool:
  """A finite int or float (JSON's true/false are not numbers here)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fraction_problem(record: dict[str, Any], key: str, required: bool) -> str | None:
  """Why `record[key]` is not a fraction in [0, 1], or None when it is (or may be absent)."""
  if key not in record:
    return f'missing {key!r}' if required else None
  value = record[key]
  if not is_number(value) or not 0 <= value <= 1:
    return f'{key!r} must be a fraction in [0, 1], not {value!r}'
  return None


def _problem(record: Any) -> str | None:
  """Why a parsed line is not a candidate record, or None when it is one."""
  if not isinstance(record, dict):
    return 'not a JSON object'
  if not isinstance(record.get('arch'), str) or not record['arch']:
    return "'arch' must be a non-empty string"
  problem = fraction_problem(record, 'accuracy', required=True)
  if problem:
    return problem
  missing = [k for k in FIELDS if k not in record]
  if missing:
    return f"missing {', '.join(map(repr, missing))}"
  # A loss or KL that overflowed (inf/NaN) is kept; the report leaves it out of statistics.
  for key in ('loss', 'kl', *(k for k in OPTIONAL if k in record)):
    value = record[key]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
      return f'{key!r} must be a number or null, not {value!r}'
  if SAME_AS in record and not isinstance(record[SAME_AS], str):
    return f'{SAME_AS!r} must be an arch string, not {record[SAME_AS]!r}'
  for key in ('params', 'flops'):
    value = record[key]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
      return f'{key!r} must be an integer, not {value!r}'
  return None


def read(path: str, repair: bool = False) -> list[dict[str, Any]]:
  """The records of a candidates file, one per arch (a later line wins); [] when missing.

  A final line without its newline is what a kill during a write leaves: with `repair`
  it is cut off (its candidates get scored again), otherwise it is an error. Any other
  malformed line is an error naming the file and line; nothing guesses what it meant.
  """
  file = epath.Path(path)
  if not file.exists():
    return []
  content = file.read_bytes()
  complete = content.rfind(b'\n') + 1
  lines = content[:complete].decode().splitlines()
  if complete < len(content):
    if not repair:
      raise ValueError(
          f'{path}, line {len(lines) + 1}: the last line is truncated (an '
          'interrupted write); the search stage drops it when it resumes'
      )
    logging.warning('%s: dropping a truncated last line (an interrupted write)', path)
    if jax.process_index() == 0:
      if _is_local(path):
        with open(path, 'r+b') as f:
          f.truncate(complete)
      else:
        file.write_bytes(content[:complete])
  by_arch = {}
  for number, line in enumerate(lines, 1):
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      record, problem = None, f'not valid JSON ({e})'
    else:
      problem = _problem(record)
    if problem:
      raise ValueError(
          f'{path}, line {number}: not a candidate record ({problem}); '
          'fix or remove the line, or use a new --workdir'
      )
    by_arch[record['arch']] = record
  return list(by_arch.values())


def append(path: str, records: list[dict[str, Any]]) -> None:
  """Appends whole lines, flushed and synced (process 0 only).

  Object stores (gs://) cannot append: there the file is rewritten whole, which they
  replace atomically, so a kill leaves the old or the new content, never half a line.
  """
  if jax.process_index() != 0 or not records:
    return
  file = epath.Path(path)
  file.parent.mkdir(parents=True, exist_ok=True)
  keys = FIELDS + OPTIONAL + (SAME_AS,) + BN_FIELDS
  text = ''.join(json.dumps({k: r[k] for k in keys if k in r}) + '\n' for r in records)
  if not _is_local(path):
    file.write_text((file.read_text() if file.exists() else '') + text)
    return
  with open(path, 'a') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


def _is_local(path: str) -> bool:
  return '://' not in str(path)
