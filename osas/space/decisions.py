"""A space's cell as a sequence of independent categorical choices (ENAS's controller draws them).

Each `Decision` picks one row of one mask leaf from a table of the rows it may take: which
inputs a block reads, which ops it applies (bender2018), which op an edge carries
(nasbench201). Every combination of choices is a cell of the space, and every cell is
exactly one combination, so a policy over choices is a policy over cells.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class Decision(NamedTuple):
  """Row `row` of mask leaf `leaf` (leaves in `jax.tree.leaves` order) is one of `options`."""

  name: str  # For logs: 'block 0 inputs', 'edge 0->1'.
  leaf: int
  row: int
  options: np.ndarray  # [K, width] bool, K >= 1 distinct rows.
  is_op: bool  # Which ops (True) or which inputs (False): ENAS squashes the two differently.


class Decisions:
  """Maps choice indices [..., D] to a space's masks and back, D = len(space.decisions())."""

  def __init__(self, space):
    self.space = space
    self.items: tuple[Decision, ...] = tuple(space.decisions())
    template = space.all_on()
    self._shapes = [np.shape(x) for x in jax.tree.leaves(template)]
    self._treedef = jax.tree.structure(template)
    rows: dict[tuple[int, int], int] = {}
    for d, item in enumerate(self.items):
      options = np.asarray(item.options)
      if (
          (item.leaf, item.row) in rows
          or item.leaf >= len(self._shapes)
          or options.ndim != 2
          or options.shape[-1] != self._shapes[item.leaf][-1]
          or len(np.unique(options, axis=0)) != len(options)
      ):
        raise ValueError(
            f'space {space.name}: decision {item.name!r} is not one row of distinct options '
            'of its own'
        )
      rows[(item.leaf, item.row)] = d
    counts = [int(np.prod(shape[:-1])) for shape in self._shapes]
    if set(rows) != {(leaf, r) for leaf, count in enumerate(counts) for r in range(count)}:
      raise ValueError(f'space {space.name}: decisions do not cover each mask row once')
    # Per leaf: its decisions in row order, and their option tables stacked with offsets.
    self._leaf_decisions, self._tables, self._offsets = [], [], []
    for leaf, count in enumerate(counts):
      order = [rows[(leaf, r)] for r in range(count)]
      tables = [np.asarray(self.items[d].options, bool) for d in order]
      self._leaf_decisions.append(np.array(order))
      self._tables.append(np.concatenate(tables))
      self._offsets.append(np.cumsum([0] + [len(t) for t in tables[:-1]]))

  @property
  def num_options(self) -> tuple[int, ...]:
    """K of each decision, in order."""
    return tuple(len(d.options) for d in self.items)

  @property
  def is_op(self) -> tuple[bool, ...]:
    """Whether each decision picks ops (else inputs)."""
    return tuple(bool(d.is_op) for d in self.items)

  def __len__(self) -> int:
    return len(self.items)

  def to_masks(self, choices: Any) -> Any:
    """The masks [..., *cell] of choice indices [..., D]; jittable."""
    choices = jnp.asarray(choices)
    leaves = []
    for order, table, offsets, shape in zip(
        self._leaf_decisions, self._tables, self._offsets, self._shapes
    ):
      rows = jnp.asarray(table)[jnp.asarray(offsets) + choices[..., order]]
      leaves.append(rows.reshape(*choices.shape[:-1], *shape))
    return jax.tree.unflatten(self._treedef, leaves)

  def of_masks(self, masks: Any) -> np.ndarray:
    """The choice indices [D] of one cell's masks; ValueError when a row is not an option."""
    leaves = [np.asarray(x, bool).reshape(-1, x.shape[-1]) for x in jax.tree.leaves(masks)]
    out = np.empty(len(self.items), np.int32)
    for d, item in enumerate(self.items):
      hits = np.flatnonzero((item.options == leaves[item.leaf][item.row]).all(-1))
      if len(hits) != 1:
        raise ValueError(f'{item.name}: the row {leaves[item.leaf][item.row]} is not one option')
      out[d] = hits[0]
    return out

  def of_archs(self, archs: Sequence[Any]) -> np.ndarray:
    """The choice indices [N, D] of archs."""
    return np.stack([self.of_masks(self.space.encode(a)) for a in archs]).astype(np.int32)

  def archs(self, choices: Any) -> list[Any]:
    """The archs of choice indices [N, D]."""
    return self.space.decode_batch(jax.tree.map(np.asarray, self.to_masks(np.asarray(choices))))
