"""Ground truth: one-shot scores against a CSV of known accuracies (e.g. NAS-Bench-201)."""

from __future__ import annotations

import csv
import dataclasses
import math
from typing import Any, Sequence

from etils import epath
import numpy as np

from osas.report import rankings
from osas.report import tables

TOP = 10  # One-shot top-10 against 10 random picks: the same retraining budget.
TIE_BREAK = 'one-shot ties: fewer params first, then the arch string'
_FIELD = 'config.report.ground_truth'

# (arch, one-shot accuracy, true accuracy) of a scored candidate found in the table.
Joined = tuple[str, float, float]


@dataclasses.dataclass(frozen=True)
class Table:
  """The true accuracy of each arch of a ground-truth CSV, as a fraction."""

  path: str
  accuracy_column: str
  accuracy: dict[str, float]  # Stripped arch string -> fraction in [0, 1].
  percent: bool  # The CSV held percent (some value above 1); `accuracy` is divided by 100.


def _existing(path: str | epath.Path) -> epath.Path:
  path = epath.Path(path)
  if not path.exists() or path.is_dir():
    raise ValueError(f'{_FIELD}={str(path)!r}: no such file')
  return path


def _columns(
    path: epath.Path, header: Sequence[str], arch_column: str, accuracy_column: str
) -> tuple[int, int]:
  """The positions of both columns in `header`; ValueError naming a missing one."""
  header = [name.strip() for name in header]
  for column, kind in ((arch_column, 'arch'), (accuracy_column, 'accuracy')):
    if column not in header:
      raise ValueError(
          f'{path}: no column {column!r} ({_FIELD}_{kind}_column); '
          f"it has {', '.join(map(repr, header)) or 'no header'}"
      )
  return header.index(arch_column), header.index(accuracy_column)


def _read_text(path: epath.Path, first_line_only: bool = False) -> str:
  try:
    if first_line_only:
      with path.open('r') as f:
        text = f.readline()
    else:
      text = path.read_text()
  except UnicodeDecodeError:  # A ValueError too, but one that names no file.
    raise ValueError(f'{path}: not a UTF-8 text file ({_FIELD})') from None
  return text.lstrip('\ufeff')  # A byte-order mark (spreadsheet exports) is no column name.


def check_table(path: str, arch_column: str, accuracy_column: str) -> None:
  """Before any stage runs: the CSV exists and has both columns (reads its first line)."""
  path = _existing(path)
  header = next(csv.reader([_read_text(path, first_line_only=True)]), [])
  _columns(path, header, arch_column, accuracy_column)


def load_table(path: str, arch_column: str, accuracy_column: str) -> Table:
  """Reads the CSV, refusing a bad one with the file (and line) named.

  ValueError for a missing column, an empty arch, an accuracy that is not a number in
  [0, 100], or an arch listed twice with two values.

  Accuracies are taken as percent when any is above 1, else as fractions.
  """
  path = _existing(path)
  reader = csv.reader(_read_text(path).splitlines())
  arch_at, accuracy_at = _columns(path, next(reader, []), arch_column, accuracy_column)
  values = {}
  for row in reader:
    if not ''.join(row).strip():
      continue  # A blank line, e.g. at the end.
    where = f'{path}, line {reader.line_num}'
    arch, text = (row[i].strip() if i < len(row) else '' for i in (arch_at, accuracy_at))
    try:
      value = float(text)
    except ValueError:
      value = math.nan
    if not arch:
      raise ValueError(f'{where}: empty {arch_column!r}')
    if not 0 <= value <= 100:  # NaN fails too.
      raise ValueError(
          f'{where}: {accuracy_column!r} is {text!r}, not an accuracy '
          '(a number in [0, 1], or percent in [0, 100])'
      )
    if values.setdefault(arch, value) != value:
      raise ValueError(f'{where}: {arch!r} is listed again with another {accuracy_column!r}')
  percent = any(v > 1 for v in values.values())
  scale = 100.0 if percent else 1.0
  # Rounded: 93.09 / 100 should read 0.9309 in summary.json, not 0.9309000000000001.
  return Table(
      str(path), accuracy_column, {a: round(v / scale, 12) for a, v in values.items()}, percent
  )


def join(candidates: Sequence[dict[str, Any]], table: Table) -> list[Joined]:
  """The scored candidates that are in the table, in `tables.one_shot_rank` order.

  Strings match exactly after stripping whitespace. ValueError when there are candidates
  but none is in the table (a different search space or string format, most likely).
  """
  joined = [
      (c['arch'], c['accuracy'], table.accuracy[c['arch'].strip()])
      for c in sorted(candidates, key=tables.one_shot_rank)
      if c['arch'].strip() in table.accuracy
  ]
  if candidates and not joined:
    raise ValueError(
        f'{table.path}: none of the {len(candidates)} scored candidates is in its '
        f"arch column (e.g. {candidates[0]['arch']!r}); is it the search "
        f"space's table? ({_FIELD})"
    )
  return joined


def expected_best(values: Sequence[float], draws: int) -> float:
  """The exact expected maximum of `draws` picks without replacement (all, when fewer).

  Sorted ascending, the i-th value (from 0) is the maximum of C(i, draws - 1) of the
  C(n, draws) equally likely subsets; ties do not change the sum.
  """
  ordered = sorted(values)
  draws = min(draws, len(ordered))
  subsets = math.comb(len(ordered), draws)
  # Python divides the exact big integers, so the weights are right even for n = 20,000.
  return float(sum(v * (math.comb(i, draws - 1) / subsets) for i, v in enumerate(ordered)))


def _best(archs: Sequence[str], true: Sequence[float]) -> dict[str, Any]:
  at = int(np.argmax(true))  # The first of equals: the better one-shot rank, or file order.
  return {'arch': archs[at], 'accuracy': float(true[at])}


def summarize(
    candidates: Sequence[dict[str, Any]], joined: Sequence[Joined], table: Table, **ranking_options
) -> dict[str, Any]:
  """summary.json's 'ground_truth' object; accuracies as fractions. `joined` is not empty.

  `ranking_options` (rank_by, space_name, seed, bootstrap) go to `rankings.table`, which
  ranks the joined candidates by every score and baseline.
  """
  archs, one_shot, true = zip(*joined)
  found = [c for c in candidates if c['arch'].strip() in table.accuracy]
  top = min(TOP, len(joined))
  scored = {c['arch'].strip() for c in candidates}
  return {
      'file': table.path,
      'accuracy_column': table.accuracy_column,
      'units': (
          'fraction (the CSV holds percent: divided by 100)'
          if table.percent
          else 'fraction, as in the CSV'
      ),
      'table_size': len(table.accuracy),
      'scored': len(candidates),
      'joined': len(joined),
      'missing': len(candidates) - len(joined),
      'missing_examples': sorted(scored - table.accuracy.keys())[:3],
      'tie_break': TIE_BREAK,
      'correlation': {
          'x': 'one-shot accuracy',
          'y': f'true {table.accuracy_column}',
          **tables.rank_correlation(one_shot, true),
      },
      'precision_at_k': rankings.precision_at_k(true),
      'one_shot_top1': {
          'arch': archs[0],
          'one_shot_accuracy': one_shot[0],
          'accuracy': true[0],
          'rank': 1 + sum(t > true[0] for t in true),
      },
      'one_shot_top': {
          'k': top,
          'mean': float(np.mean(true[:top])),
          'best': float(max(true[:top])),
      },
      'random': {
          'mean': float(np.mean(true)),
          'draws': top,
          'expected_best': expected_best(true, top),
      },
      'optimum_joined': _best(archs, true),
      'optimum_table': _best(list(table.accuracy), list(table.accuracy.values())),
      'rankings': rankings.table(
          found, [table.accuracy[c['arch'].strip()] for c in found], **ranking_options
      ),
  }


def evaluate(
    candidates: Sequence[dict[str, Any]],
    path: str,
    arch_column: str,
    accuracy_column: str,
    **ranking_options,
) -> tuple[dict[str, Any] | None, list[Joined]]:
  """The 'ground_truth' object (None when nothing is scored) and the joined points.

  Reads the table first, so that a bad one fails even before anything is scored.
  """
  table = load_table(path, arch_column, accuracy_column)
  joined = join(candidates, table)
  return (summarize(candidates, joined, table, **ranking_options) if joined else None), joined
