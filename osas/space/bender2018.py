"""The search space of Bender et al. (2018): architectures, masks, sampling.

A cell has `num_blocks` choice blocks. Block i reads any non-empty subset of its
`num_cell_inputs + i` candidate inputs: index 0 is the output of the cell two back,
index 1 the previous cell's output (as in the paper, the two previous cells), and
index 2 + j the output of block j of the same cell. The chosen inputs are
concatenated and projected by a 1x1 convolution; then 1 to 2 of the space's ops
are applied and summed.

String form (canonical, one line, round-trips exactly)::

    cell   := block (" | " block)*              one block per choice block, in order
    block  := inputs ":" ops
    inputs := index ("," index)*                ascending input indices (see above)
    ops    := name ("+" name)*                  op names, in the space's op order

for example ``0,1:sep3x3+max_pool | 2:identity | 0,3:sep5x5 | 1,4:sep7x7+avg_pool``.
Parsing accepts any whitespace and any order and returns the canonical form.

Mask form: fixed-shape booleans ``Masks(inputs [num_blocks, max_inputs],
ops [num_blocks, num_ops])``, where entries past block i's ``num_cell_inputs + i``
inputs are padding and always False. Masks may carry leading batch axes.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import Any, ClassVar, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from osas import path_dropout
from osas.space.base import ArchBase
from osas.space.base import SpaceBase
from osas.space.base import register_space
from osas.space.decisions import Decision

BENDER2018_OPS = ('identity', 'sep3x3', 'sep5x5', 'sep7x7', 'conv1x7_7x1', 'max_pool', 'avg_pool')


class Masks(NamedTuple):
  """Boolean masks of one or more cells (leading axes allowed); a JAX pytree."""

  inputs: Any  # [..., num_blocks, max_inputs]
  ops: Any  # [..., num_blocks, num_ops]


@dataclasses.dataclass(frozen=True)
class Block:
  """One choice block: the indices of the inputs it reads and the names of its ops."""

  inputs: tuple[int, ...]
  ops: tuple[str, ...]

  def to_string(self) -> str:
    return ','.join(map(str, self.inputs)) + ':' + '+'.join(self.ops)


@dataclasses.dataclass(frozen=True)
class Arch(ArchBase):
  """An immutable, hashable cell architecture of a `SearchSpace`."""

  SPACE: ClassVar[str] = 'bender2018'
  blocks: tuple[Block, ...]
  space_name: str = 'bender2018'

  def to_string(self) -> str:
    return ' | '.join(b.to_string() for b in self.blocks)

  def to_json(self) -> dict[str, Any]:
    return {
        'space': self.space_name,
        'blocks': [{'inputs': list(b.inputs), 'ops': list(b.ops)} for b in self.blocks],
    }


def _subsets(n: int, sizes: range) -> list[tuple[int, ...]]:
  return [c for k in sizes for c in itertools.combinations(range(n), k)]


def _rows(subsets: Sequence[tuple[int, ...]], width: int) -> np.ndarray:
  rows = np.zeros((len(subsets), width), bool)
  for r, subset in enumerate(subsets):
    rows[r, list(subset)] = True
  return rows


@dataclasses.dataclass(frozen=True)
class SearchSpace(SpaceBase):
  """The paper's cell space, built from its parameters (defaults: the paper's)."""

  num_blocks: int = 4
  num_cell_inputs: int = 2
  ops: tuple[str, ...] = BENDER2018_OPS
  min_ops: int = 1
  max_ops: int = 2
  min_inputs: int = 1
  max_inputs_per_block: int | None = None  # None: any number, up to all candidates.
  name: str = 'bender2018'

  def __post_init__(self):
    self._check(
        [
            (self.num_blocks >= 1, 'num_blocks must be >= 1'),
            (self.num_cell_inputs >= 1, 'num_cell_inputs must be >= 1'),
            (len(self.ops) >= 1, 'ops must name at least one op'),
            (len(set(self.ops)) == len(self.ops), f'ops has duplicates: {self.ops}'),
            (
                1 <= self.min_ops <= self.max_ops <= len(self.ops),
                f'need 1 <= min_ops <= max_ops <= {len(self.ops)}',
            ),
            (
                1 <= self.min_inputs <= self.num_cell_inputs,
                f'need 1 <= min_inputs <= num_cell_inputs ({self.num_cell_inputs})',
            ),
            (
                self.max_inputs_per_block is None or self.max_inputs_per_block >= self.min_inputs,
                'max_inputs_per_block must be >= min_inputs',
            ),
        ]
    )

  # -- shape of the space --------------------------------------------------

  @property
  def max_inputs(self) -> int:
    return self.num_cell_inputs + self.num_blocks - 1

  def num_candidate_inputs(self, block: int) -> int:
    return self.num_cell_inputs + block

  def _input_sizes(self, block: int) -> range:
    k = self.num_candidate_inputs(block)
    top = k if self.max_inputs_per_block is None else min(k, self.max_inputs_per_block)
    return range(self.min_inputs, top + 1)

  def _op_sizes(self) -> range:
    return range(self.min_ops, self.max_ops + 1)

  @property
  def size(self) -> int:
    """Number of distinct cells, from the combinatorics of the parameters."""
    op_choices = sum(math.comb(self.num_ops, m) for m in self._op_sizes())
    total = op_choices**self.num_blocks
    for i in range(self.num_blocks):
      k = self.num_candidate_inputs(i)
      total *= sum(math.comb(k, m) for m in self._input_sizes(i))
    return total

  @functools.cached_property
  def valid_inputs(self) -> np.ndarray:
    """[num_blocks, max_inputs] bool: which input slots exist (the rest is padding)."""
    j = np.arange(self.max_inputs)[None, :]
    return j < (self.num_cell_inputs + np.arange(self.num_blocks))[:, None]

  @functools.cached_property
  def _tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All allowed input subsets (all blocks, concatenated) and op subsets, as rows."""
    per_block = [
        _rows(_subsets(self.num_candidate_inputs(i), self._input_sizes(i)), self.max_inputs)
        for i in range(self.num_blocks)
    ]
    counts = np.array([len(t) for t in per_block])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    op_rows = _rows(_subsets(self.num_ops, self._op_sizes()), self.num_ops)
    return np.concatenate(per_block), offsets, counts, op_rows

  # -- architectures ----------------------------------------------------------

  def canonical(self, arch: Arch, strict: bool = True) -> Arch:
    """Validates `arch` and returns it with inputs sorted and ops in space order.

    `strict=False` waives the limits on how many inputs and ops a block has (the
    All-On baseline of the paper has every op), not the rest.
    """
    if len(arch.blocks) != self.num_blocks:
      raise ValueError(
          f'cell has {len(arch.blocks)} blocks, ' f'space {self.name} has {self.num_blocks}'
      )
    blocks = []
    for i, block in enumerate(arch.blocks):
      k = self.num_candidate_inputs(i)
      for j in block.inputs:
        if not isinstance(j, (int, np.integer)) or not 0 <= j < k:
          raise ValueError(f'block {i} reads input {j}, only 0..{k - 1} exist')
      for name in block.ops:
        if name not in self.ops:
          raise ValueError(f"block {i}: unknown op {name!r} (known: {', '.join(self.ops)})")
      for what, items in (('input', block.inputs), ('op', block.ops)):
        repeated = sorted({x for x in items if list(items).count(x) > 1})
        if repeated:
          raise ValueError(f'block {i} lists {what} {repeated[0]!r} twice')
      sizes = self._input_sizes(i) if strict else range(1, k + 1)
      if len(block.inputs) not in sizes:
        raise ValueError(
            f'block {i} has {len(block.inputs)} inputs, '
            f'{sizes.start} to {sizes.stop - 1} allowed'
        )
      if (
          not (self.min_ops if strict else 1)
          <= len(block.ops)
          <= (self.max_ops if strict else self.num_ops)
      ):
        limit = (
            f'at most {self.max_ops}'
            if len(block.ops) > self.max_ops
            else f'at least {self.min_ops}'
        )
        raise ValueError(f'block {i} has {len(block.ops)} ops, {limit} allowed')
      blocks.append(
          Block(
              tuple(sorted(int(j) for j in block.inputs)),
              tuple(sorted(block.ops, key=self.ops.index)),
          )
      )
    return Arch(tuple(blocks), self.name)

  def from_json(self, data: dict[str, Any]) -> Arch:
    try:
      blocks = [Block(tuple(b['inputs']), tuple(b['ops'])) for b in data['blocks']]
    except (KeyError, TypeError) as e:
      raise ValueError(
          f'malformed arch JSON {data!r}: needs blocks with ' f'"inputs" and "ops" ({e})'
      ) from None
    return self.canonical(Arch(tuple(blocks), self.name))

  def parse(self, text: str, strict: bool = True) -> Arch:
    """Parses the string form (see the module docstring) into a valid `Arch`."""
    if not isinstance(text, str) or not text.strip():
      raise ValueError(f'empty or non-string arch: {text!r}')
    blocks = []
    for i, part in enumerate(text.split('|')):
      inputs, sep, ops = part.partition(':')
      try:
        if not sep:
          raise ValueError
        parsed_inputs = tuple(int(j) for j in inputs.split(','))
      except ValueError:
        raise ValueError(
            f'block {i}: malformed {part.strip()!r}, expected '
            f"INPUTS:OPS such as '0,1:sep3x3+max_pool'"
        ) from None
      blocks.append(Block(parsed_inputs, tuple(o.strip() for o in ops.split('+'))))
    return self.canonical(Arch(tuple(blocks), self.name), strict)

  def encode(self, arch: Arch) -> Masks:
    """The [num_blocks, max_inputs] and [num_blocks, num_ops] boolean masks of `arch`."""
    arch = self.canonical(arch)
    inputs = np.zeros((self.num_blocks, self.max_inputs), bool)
    ops = np.zeros((self.num_blocks, self.num_ops), bool)
    for i, block in enumerate(arch.blocks):
      inputs[i, list(block.inputs)] = True
      ops[i, [self.ops.index(o) for o in block.ops]] = True
    return Masks(inputs, ops)

  def decode(self, masks: Masks) -> Arch:
    """The `Arch` of one cell's masks; raises ValueError when they are not a valid cell."""
    inputs, ops = np.asarray(masks.inputs, bool), np.asarray(masks.ops, bool)
    want = ((self.num_blocks, self.max_inputs), (self.num_blocks, self.num_ops))
    if (inputs.shape, ops.shape) != want:
      raise ValueError(
          f'masks of shapes {inputs.shape}, {ops.shape}; expected {want}'
          ' (decode one cell at a time: use decode_batch for more)'
      )
    if (inputs & ~self.valid_inputs).any():
      i, j = np.argwhere(inputs & ~self.valid_inputs)[0]
      raise ValueError(
          f'block {i} reads input {j}, only ' f'0..{self.num_candidate_inputs(i) - 1} exist'
      )
    blocks = tuple(
        Block(
            tuple(int(j) for j in np.flatnonzero(inputs[i])),
            tuple(self.ops[o] for o in np.flatnonzero(ops[i])),
        )
        for i in range(self.num_blocks)
    )
    return self.canonical(Arch(blocks, self.name))

  def decisions(self) -> list[Decision]:
    """Per block, in order: the subset of inputs it reads, then the subset of ops it applies.

    As ENAS's controller builds a cell: each node's inputs, then its ops; a subset is one
    choice among the allowed ones (up to 31 input subsets, 28 op subsets by default).
    """
    input_rows, offsets, counts, op_rows = self._tables
    out = []
    for i in range(self.num_blocks):
      rows = input_rows[offsets[i] : offsets[i] + counts[i]]
      out += [
          Decision(f'block {i} inputs', 0, i, rows, False),
          Decision(f'block {i} ops', 1, i, op_rows, True),
      ]
    return out

  def all_on_arch(self) -> Arch:
    """Every input and every op in every block: the paper's All-On stand-alone baseline.

    Usually outside the space (more ops than `max_ops`); parse it with `strict=False`.
    """
    return Arch(
        tuple(
            Block(tuple(range(self.num_candidate_inputs(i))), self.ops)
            for i in range(self.num_blocks)
        ),
        self.name,
    )

  def all_on(self) -> Masks:
    """Masks with every input and every op on: the whole one-shot model."""
    return Masks(self.valid_inputs.copy(), np.ones((self.num_blocks, self.num_ops), bool))

  def sample_masks(self, key: jax.Array, n: int) -> Masks:
    """Draws `n` cells uniformly from the space as masks [n, ...]; jittable, no Python loop."""
    input_rows, offsets, counts, op_rows = self._tables
    k_in, k_ops = jax.random.split(key)
    which_inputs = jnp.asarray(offsets) + jax.random.randint(
        k_in, (n, self.num_blocks), 0, jnp.asarray(counts)
    )
    which_ops = jax.random.randint(k_ops, (n, self.num_blocks), 0, op_rows.shape[0])
    return Masks(jnp.asarray(input_rows)[which_inputs], jnp.asarray(op_rows)[which_ops])

  def enumerate(self) -> Iterator[Arch]:
    """Every cell of the space, in a fixed order (only sensible for small spaces)."""
    input_rows, offsets, counts, op_rows = self._tables
    choices = []
    for i in range(self.num_blocks):
      rows = input_rows[offsets[i] : offsets[i] + counts[i]]
      choices.append(
          [
              (tuple(np.flatnonzero(r).tolist()), tuple(self.ops[o] for o in np.flatnonzero(op)))
              for r in rows
              for op in op_rows
          ]
      )
    for combo in itertools.product(*choices):
      yield Arch(tuple(Block(inp, ops) for inp, ops in combo), self.name)

  # -- training ---------------------------------------------------------------

  def drop_masks(
      self, key: jax.Array, num_ghosts: int, *, ramp, rate, base: Masks | None = None
  ) -> Masks:
    """Path dropout: block i's inputs drop with k = num_cell_inputs + i, its ops with num_ops."""
    base = self.all_on() if base is None else base
    k_inputs = self.num_cell_inputs + np.arange(self.num_blocks)
    p_inputs = path_dropout.probability(ramp, rate, k_inputs)[:, None]
    p_ops = path_dropout.probability(ramp, rate, self.num_ops)
    k_in, k_ops = jax.random.split(key)
    return Masks(
        path_dropout.keep(k_in, jnp.asarray(base.inputs) & self.valid_inputs, p_inputs, num_ghosts),
        path_dropout.keep(k_ops, jnp.asarray(base.ops), p_ops, num_ghosts),
    )


register_space('bender2018', SearchSpace)
