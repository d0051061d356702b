"""Reading the search and retrain outputs of a workdir; writing report files atomically."""

from __future__ import annotations

import json
import math
from typing import Any

from etils import epath


def is_number(value: Any) -> bool:
  """A finite int or float (JSON's true/false are not numbers here)."""
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def _fraction_problem(record: dict[str, Any], key: str, required: bool) -> str | None:
  if key not in record:
    return f'missing {key!r}' if required else None
  value = record[key]
  if not is_number(value) or not 0 <= value <= 1:
    return f'{key!r} must be a fraction in [0, 1], not {value!r}'
  return None


def _candidate_problem(record: Any) -> str | None:
  """Why a parsed line is not a candidate record, or None when it is one."""
  if not isinstance(record, dict):
    return 'not a JSON object'
  if not isinstance(record.get('arch'), str) or not record['arch']:
    return "'arch' must be a non-empty string"
  problem = _fraction_problem(record, 'accuracy', required=True)
  if problem:
    return problem
  # A KL that overflowed (inf/NaN) is kept as a record and left out of the statistics.
  kl = record.get('kl')
  if kl is not None and (isinstance(kl, bool) or not isinstance(kl, (int, float))):
    return f"'kl' must be a number or null, not {kl!r}"
  for key in ('params', 'flops'):
    value = record.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
      return f'{key!r} must be an integer, not {value!r}'
  return None


def load_candidates(path: str | epath.Path) -> list[dict[str, Any]]:
  """The records of a candidates.jsonl, one per arch (a later line wins); [] when missing.

  Raises ValueError naming the file and line of a malformed line, a truncated last line
  (an interrupted write) included: the report never guesses what such a line meant.
  """
  path = epath.Path(path)
  if not path.exists():
    return []
  by_arch = {}
  for number, line in enumerate(path.read_text().splitlines(), 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}, line {number}: not valid JSON ({e})') from None
    problem = _candidate_problem(record)
    if problem:
      raise ValueError(f'{path}, line {number}: not a candidate record ({problem})')
    by_arch[record['arch']] = record
  return list(by_arch.values())


def read_json(path: str | epath.Path) -> Any:
  """The parsed file; None when it is missing or empty; ValueError naming it when malformed."""
  path = epath.Path(path)
  if not path.exists():
    return None
  text = path.read_text()
  if not text.strip():
    return None
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}: not valid JSON ({e})') from None


def load_selection(path: str | epath.Path) -> dict[str, list[str]]:
  """The groups of a selection.json, in file order, each without repeats; {} when missing."""
  data = read_json(path)
  if data is None:
    return {}
  groups = data.get('groups') if isinstance(data, dict) else None
  if not isinstance(groups, dict) or not all(
      isinstance(archs, list) and all(isinstance(a, str) for a in archs)
      for archs in groups.values()):
    raise ValueError(f'{path}: expected {{"groups": {{name: [arch string, ...], ...}}}}')
  return {name: list(dict.fromkeys(archs)) for name, archs in groups.items()}


def load_results(retrain_dir: str | epath.Path, accuracy_key: str) -> list[dict[str, Any]]:
  """The result.json of every retrained arch under `retrain_dir`, sorted by directory.

  A result without `accuracy_key` is kept (it still counts as retrained); one whose
  `arch` or accuracy is malformed raises ValueError naming the file.
  """
  retrain_dir = epath.Path(retrain_dir)
  if not retrain_dir.exists():
    return []
  results = []
  for path in sorted(retrain_dir.glob('*/result.json')):
    result = read_json(path)
    if result is None:
      continue  # An empty file: nothing finished there.
    if not isinstance(result, dict) or not isinstance(result.get('arch'), str):
      raise ValueError(f"{path}: expected a JSON object with an 'arch' string")
    problem = _fraction_problem(result, accuracy_key, required=False)
    if problem:
      raise ValueError(f'{path}: {problem}')
    results.append(result)
  return results


def write_atomic(path: epath.Path, data: str | bytes) -> None:
  """Writes through a temporary file and a rename, so a kill never leaves half a file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.parent / (path.name + '.tmp')
  if isinstance(data, bytes):
    tmp.write_bytes(data)
  else:
    tmp.write_text(data)
  tmp.replace(path)  # Unlike rename, replaces an existing file on every backend.
