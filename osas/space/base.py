"""What every search space provides, what every space's Arch shares, and the space registry.

A space is pure data: strings, masks, sampling, enumeration, size (see `Space`). Its
networks, cost and weight usage live in `osas.models`, keyed by the space's name. A
space registers itself by name with `register_space`; `config.space.name` picks one
and `config.space.<name>` holds its parameters.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, ClassVar, Iterator, Protocol, Sequence

import jax
import numpy as np


class Space(Protocol):
  """The interface of a search space (the two built-in ones: bender2018, nasbench201).

  Masks are a pytree of boolean arrays; one cell's masks (`encode`, `all_on`) have no
  leading axes, and every leaf of a batch of them has the same leading axes.
  """

  name: str

  @property
  def size(self) -> int:
    """Number of distinct cells, computed from the space's parameters."""

  def parse(self, text: str, strict: bool = True) -> Any:
    """The Arch of a string; ValueError naming the broken rule."""

  def from_json(self, data: dict[str, Any]) -> Any:
    """The Arch of `arch.to_json()` (the 'space' key already checked)."""

  def canonical(self, arch: Any, strict: bool = True) -> Any:
    """`arch` validated, in canonical form."""

  def isomorphism_key(self, arch: Any) -> str:
    """The same string for cells that compute the same function (SpaceBase: the arch's)."""

  def encode(self, arch: Any) -> Any:
    """One cell's masks."""

  def decode(self, masks: Any) -> Any:
    """The Arch of one cell's masks; ValueError when they are not a cell of the space."""

  def encode_batch(self, archs: Sequence[Any]) -> Any:
    """Masks of several archs along a new leading axis."""

  def decode_batch(self, masks: Any) -> list[Any]:
    """Archs of masks with one leading axis."""

  def sample_masks(self, key: jax.Array, n: int) -> Any:
    """`n` cells drawn uniformly, as masks [n, ...]; jittable."""

  def drop_masks(self, key: jax.Array, num_ghosts: int, *, ramp, rate, base=None) -> Any:
    """Path dropout: `base` (default all on) with paths dropped, masks [num_ghosts, ...]."""

  def decisions(self) -> Sequence[Any]:
    """The cell as independent categorical choices (osas.space.decisions.Decision)."""

  def all_on(self) -> Any:
    """One cell's masks with every path on: the whole one-shot model."""

  def all_on_arch(self) -> Any | None:
    """A stand-alone arch with every path (None where the space has no such arch)."""

  def enumerate(self) -> Iterator[Any]:
    """Every cell, in a fixed order."""


class ArchBase:
  """Shared by the Arch classes of all spaces: string form, a short id, the constructors.

  Subclasses are frozen dataclasses with a `space_name` field and `to_string`/`to_json`.
  """

  SPACE: ClassVar[str] = ''  # The space `from_string` and `from_json` use by default.
  space_name: str

  def to_string(self) -> str:
    raise NotImplementedError

  def __str__(self) -> str:
    return self.to_string()

  @property
  def id(self) -> str:
    """A short stable name for directories: a hash of the canonical string."""
    text = f'{self.space_name}/{self.to_string()}'
    return hashlib.sha1(text.encode()).hexdigest()[:12]

  @classmethod
  def from_string(cls, text: str, space: Space | None = None) -> Any:
    return (space or get_space(cls.SPACE)).parse(text)

  @classmethod
  def from_json(cls, data: dict[str, Any] | str, space: Space | None = None) -> Any:
    """The Arch of a JSON object (or its text); its 'space' key picks the space."""
    if isinstance(data, str):
      data = json.loads(data)
    if not isinstance(data, dict):
      raise ValueError(f'malformed arch JSON {data!r}: expected an object')
    space = space or get_space(data.get('space', cls.SPACE))
    if data.get('space', space.name) != space.name:
      raise ValueError(f"arch JSON is for space {data['space']!r}, not {space.name!r}")
    return space.from_json(data)


class SpaceBase:
  """What every space gets from its one-cell `encode`/`decode`."""

  @property
  def num_ops(self) -> int:
    return len(self.ops)

  def _check(self, checks: Sequence[tuple[bool, str]]) -> None:
    """Raises ValueError, naming the space's config section, at the first failed check."""
    for ok, message in checks:
      if not ok:
        raise ValueError(f'config.space.{self.name}: {message}')

  def isomorphism_key(self, arch: Any) -> str:
    """The same string for cells that compute the same function; here each cell its own."""
    return arch.to_string()

  def encode_batch(self, archs: Sequence[Any]) -> Any:
    """Stacks the masks of several archs along a new leading axis."""
    return jax.tree.map(lambda *leaves: np.stack(leaves), *[self.encode(a) for a in archs])

  def decode_batch(self, masks: Any) -> list[Any]:
    """Decodes masks with one leading axis into a list of archs."""
    masks = jax.tree.map(np.asarray, masks)
    count = jax.tree.leaves(masks)[0].shape[0]
    return [self.decode(jax.tree.map(lambda x, n=n: x[n], masks)) for n in range(count)]


_SPACES: dict[str, Callable[..., Space]] = {}


def register_space(name: str, factory: Callable[..., Space]) -> None:
  """Makes a space available to `get_space` and to `config.space.name`."""
  _SPACES[name] = factory


def get_space(name: str = 'bender2018', **params) -> Space:
  """A registered search space built with `params` (its section of `config.space`)."""
  if name not in _SPACES:
    raise ValueError(f"config.space.name: unknown space {name!r}; known: {', '.join(_SPACES)}")
  return _SPACES[name](**params)


def from_config(section) -> Space:
  """The space named by `config.space.name`, built with `config.space.<name>`'s fields.

  Each space's parameters sit in their own subsection, so switching `name` never hands
  one space another's parameters.
  """
  name = section.name
  for key in dict(section):
    if key != 'name' and key not in _SPACES:
      raise ValueError(
          f"config.space.{key}: not a registered space ({', '.join(_SPACES)}); "
          "a space's parameters go in config.space.<space name>"
      )
  params = {
      k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(section.get(name) or {}).items()
  }
  try:
    return get_space(name, **params)
  except TypeError as e:
    raise ValueError(f'config.space.{name}: {e}') from None
