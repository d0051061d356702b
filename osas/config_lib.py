"""Helpers for config files: importing a sibling config, parsing config argument strings."""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType
from typing import Any


def sibling(config_file: str, name: str) -> ModuleType:
  """Imports configs/NAME.py next to `config_file`, from any working directory."""
  path = os.path.join(os.path.dirname(os.path.abspath(config_file)), f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'osas_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def parse_arg(arg: str | None, **defaults: Any) -> dict[str, Any]:
  """'filters=64,steps=100' -> values typed like `defaults`; unknown keys are an error."""
  values = dict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, text = item.partition('=')
    key = key.strip()
    if not sep or key not in defaults:
      raise ValueError(f"config argument {item!r}: expected KEY=VALUE with KEY in "
                       f"{', '.join(defaults)}")
    kind = type(defaults[key])
    try:
      values[key] = (text.strip().lower() in ('1', 'true', 'yes')) if kind is bool else kind(text)
    except ValueError:
      raise ValueError(f'config argument {key}={text!r}: not a {kind.__name__}') from None
  return values
