"""Reading the selection and retrain outputs of a workdir (candidates: osas.search.results)."""

from __future__ import annotations

from typing import Any

from etils import epath

from osas.search.results import fraction_problem
from osas.workdir import read_json


def load_selection(path: str | epath.Path) -> dict[str, list[str]]:
  """The groups of a selection.json, in file order, each without repeats; {} when missing."""
  data = read_json(path)
  if data is None:
    return {}
  groups = data.get('groups') if isinstance(data, dict) else None
  if not isinstance(groups, dict) or not all(
      isinstance(archs, list) and all(isinstance(a, str) for a in archs)
      for archs in groups.values()
  ):
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
    problem = fraction_problem(result, accuracy_key, required=False)
    if problem:
      raise ValueError(f'{path}: {problem}')
    results.append(result)
  return results
