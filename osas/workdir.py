"""The workdir: paths, small JSON files written atomically by process 0, the saved config."""

from __future__ import annotations

import json
from typing import Any

from etils import epath
import jax
import ml_collections

# Changing these changes parameter shapes or the data, so a workdir's results would mix.
SHAPE_FIELDS = (
    'space',
    'model',
    'data.source',
    'data.name',
    'data.image_size',
    'supernet.weights',  # Shared or SMASH's generated: different parameters.
    'hypernet',  # Its size, where supernet.weights = 'hypernet'.
)
# Saved configs from before a field existed: it had this value.
DEFAULTS = {'supernet.weights': 'shared'}
# Fields within them that choose how, not what, is computed (depthwise_impl: its old name;
# dtype: the activations' precision, so a supernet trained in bfloat16 can be searched in
# float32 on a CPU).
HOW_FIELDS = ('model.kernels', 'model.depthwise_impl', 'model.dtype')


def path(workdir: str, *parts: str) -> str:
  return str(epath.Path(workdir).joinpath(*parts))


def read_json(workdir: str, *parts: str) -> Any:
  """The parsed file `workdir`/`parts`; None when it is missing or empty.

  Raises ValueError naming the file when it is not valid JSON.
  """
  file = epath.Path(path(workdir, *parts))
  if not file.exists():
    return None
  text = file.read_text()
  if not text.strip():
    return None
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'{file}: not valid JSON ({e})') from None


def write_atomic(file: str | epath.Path, data: str | bytes) -> None:
  """Writes through a temporary file and a replace, so a kill never leaves half a file."""
  file = epath.Path(file)
  file.parent.mkdir(parents=True, exist_ok=True)
  tmp = file.parent / (file.name + '.tmp')
  tmp.write_bytes(data.encode() if isinstance(data, str) else data)  # UTF-8 whatever the locale.
  tmp.replace(file)  # Unlike rename, replaces an existing file on every backend.


def write_json(workdir: str, *parts: str, obj: Any = None) -> None:
  """Writes `obj` to `workdir`/`parts` atomically, on process 0 only."""
  if jax.process_index() == 0:
    write_atomic(path(workdir, *parts), json.dumps(obj, indent=2, sort_keys=True) + '\n')


def _get(tree: dict[str, Any], dotted: str) -> Any:
  for key in dotted.split('.'):
    if not isinstance(tree, dict) or key not in tree:
      return None
    tree = tree[key]
  return tree


def _shapes(tree: dict[str, Any], dotted: str) -> Any:
  """The field `dotted` of `tree` without the HOW_FIELDS inside it."""
  value = _get(tree, dotted)
  if dotted == 'hypernet' and _shapes(tree, 'supernet.weights') != 'hypernet':
    return None  # Unused by shared weights.
  if value is None:
    return DEFAULTS.get(dotted)
  if not isinstance(value, dict):
    return value
  inside = [f[len(dotted) + 1 :] for f in HOW_FIELDS if f.startswith(dotted + '.')]
  return {k: v for k, v in value.items() if k not in inside}


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Writes DIR/config.json; refuses a config whose shapes differ from the saved one."""
  new = json.loads(config.to_json_best_effort())
  old = read_json(workdir, 'config.json')
  if old is not None:
    for field in SHAPE_FIELDS:
      if _shapes(old, field) != _shapes(new, field):
        raise ValueError(
            f'config.{field} differs from {path(workdir, "config.json")} '
            f'({json.dumps(_shapes(old, field))} there, {json.dumps(_shapes(new, field))} now); '
            'use a new --workdir'
        )
  write_json(workdir, 'config.json', obj=new)
