"""DIR/search/candidates.jsonl: scored candidates, appended and flushed chunk by chunk."""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
import jax

FIELDS = ('arch', 'accuracy', 'loss', 'kl', 'params', 'flops')


def read(path: str, repair: bool = False) -> list[dict[str, Any]]:
  """The records of a candidates file ([] when it does not exist).

  A final line without its newline is what a kill during a write leaves: with `repair`
  it is cut off (its candidates get scored again), otherwise it is an error like any
  malformed line, which names the file and line and is never "repaired".
  """
  if not os.path.exists(path):
    return []
  with open(path, 'rb') as f:
    content = f.read()
  complete = content.rfind(b'\n') + 1
  if complete < len(content):
    if not repair:
      raise ValueError(f'{path}: the last line is truncated')
    logging.warning('%s: dropping a truncated last line (an interrupted write)', path)
    if jax.process_index() == 0:
      with open(path, 'r+b') as f:
        f.truncate(complete)
  records = []
  for number, line in enumerate(content[:complete].decode().splitlines(), 1):
    try:
      record = json.loads(line)
      missing = [k for k in FIELDS if k not in record]
      if missing:
        raise ValueError(f'missing {", ".join(missing)}')
    except ValueError as e:
      raise ValueError(f'{path}, line {number}: not a candidate record ({e}); '
                       'fix or remove the line, or use a new --workdir') from None
    records.append(record)
  return records


def append(path: str, records: list[dict[str, Any]]) -> None:
  """Appends whole lines in one write, flushed and synced (process 0 only)."""
  if jax.process_index() != 0 or not records:
    return
  os.makedirs(os.path.dirname(path), exist_ok=True)
  text = ''.join(json.dumps({k: r[k] for k in FIELDS}) + '\n' for r in records)
  with open(path, 'a') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
