"""The pipeline's stages by name: each reads what the previous one wrote in the workdir.

A stage is a module with `check(config, mesh)`, which raises ValueError naming the
field at fault before anything is written, and `run(config, workdir, mesh)`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# In pipeline order: a run executes the stages of config.stages in this order.
STAGES: dict[str, str] = {
    'train_supernet': 'osas.train.supernet',
    'search': 'osas.search.stage',
    'retrain': 'osas.train.standalone',
    'report': 'osas.report.stage',
}


def get(names) -> list[tuple[str, ModuleType]]:
  """The stages to run, in pipeline order; ValueError naming an unknown one."""
  names = [names] if isinstance(names, str) else list(names)
  for name in names:
    if name not in STAGES:
      raise ValueError(f"config.stages: unknown stage {name!r}; known: {', '.join(STAGES)}")
  return [(name, importlib.import_module(STAGES[name])) for name in STAGES if name in names]
