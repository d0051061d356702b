"""Shared by the end-to-end tests: the tiny config with overrides, workdir snapshots."""

import os

from osas import config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, 'configs', 'tiny.py')


def tiny(arg=None, **overrides):
  """configs/tiny.py with dotted-field overrides: tiny(**{'model.filters': 4})."""
  config = config_lib.sibling(TINY, 'tiny').get_config(arg)
  for dotted, value in overrides.items():
    section, _, field = dotted.rpartition('.')
    (config[section] if section else config)[field] = value
  return config


def snapshot(directory):
  """Every file under `directory` with its bytes."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, directory)] = f.read()
  return out
