"""Parses the argument string of a config file: `configs/NAME.py:filters=64,steps=100`."""

from __future__ import annotations

from typing import Any

_BOOLS = {'true': True, '1': True, 'yes': True, 'false': False, '0': False, 'no': False}


def parse_arg(arg: str | None, **defaults: Any) -> dict[str, Any]:
  """'filters=64,steps=100' -> values typed like `defaults`; ValueError naming a bad item."""
  values = dict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, text = item.partition('=')
    key, text = key.strip(), text.strip()
    if not sep or key not in defaults:
      known = ', '.join(defaults)
      raise ValueError(f'config argument {item!r}: expected KEY=VALUE with KEY in {known}')
    kind = type(defaults[key])
    if kind is bool:
      if text.lower() not in _BOOLS:
        raise ValueError(f'config argument {key}={text!r}: not a bool (true/false)')
      values[key] = _BOOLS[text.lower()]
      continue
    try:
      values[key] = kind(text)
    except ValueError:
      article = 'an' if kind.__name__[0] in 'aeiou' else 'a'
      raise ValueError(f'config argument {key}={text!r}: not {article} {kind.__name__}') from None
  return values
