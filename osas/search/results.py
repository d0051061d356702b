"""DIR/search/candidates.jsonl: scored candidates, appended and flushed chunk by chunk."""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
from etils import epath
import jax

FIELDS = ('arch', 'accuracy', 'loss', 'kl', 'params', 'flops')


def read(path: str, repair: bool = False) -> list[dict[str, Any]]:
  """The records of a candidates file ([] when it does not exist).

  A final line without its newline is what a kill during a write leaves: with `repair`
  it is cut off (its candidates get scored again), otherwise it is an error like any
  malformed line, which names the file and line and is never "repaired".
  """
  file = epath.Path(path)
  if not file.exists():
    return []
  content = file.read_bytes()
  complete = content.rfind(b'\n') + 1
  if complete < len(content):
    if not repair:
      raise ValueError(f'{path}: the last line is truncated')
    logging.warning('%s: dropping a truncated last line (an interrupted write)', path)
    if jax.process_index() == 0:
      if _is_local(path):
        with open(path, 'r+b') as f:
          f.truncate(complete)
      else:
        file.write_bytes(content[:complete])
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
  """Appends whole lines, flushed and synced (process 0 only).

  Object stores (gs://) cannot append: there the file is rewritten whole, which they
  replace atomically, so a kill leaves the old or the new content, never half a line.
  """
  if jax.process_index() != 0 or not records:
    return
  file = epath.Path(path)
  file.parent.mkdir(parents=True, exist_ok=True)
  text = ''.join(json.dumps({k: r[k] for k in FIELDS}) + '\n' for r in records)
  if not _is_local(path):
    file.write_text((file.read_text() if file.exists() else '') + text)
    return
  with open(path, 'a') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())


def _is_local(path: str) -> bool:
  return '://' not in str(path)
