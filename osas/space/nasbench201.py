"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020): archs, masks, sampling.

A cell is a DAG of `num_nodes` nodes: node 0 is the cell's input, node j the sum
over i < j of op(i, j)(node i), and the last node the cell's output. Every edge
carries exactly one op of the space's ops (the benchmark's five: `none` gives zeros,
`skip_connect` is the identity, `nor_conv_1x1` and `nor_conv_3x3` are ReLU-Conv-BN,
`avg_pool_3x3` a stride-1 3x3 average pool over real pixels only), so the space has
len(ops) ** (num_nodes (num_nodes - 1) / 2) cells: 5^6 = 15,625 in the benchmark.

String form: the benchmark's own, so results can be looked up in its tables::

    cell  := node ("+" node)*       one part for each node 1, 2, ..., num_nodes - 1
    node  := "|" (edge "|")+         node j's incoming edges, one from each i < j
    edge  := op "~" i                node j reads node i through op

for example (one string, broken here after the '+')::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+
    |skip_connect~0|nor_conv_3x3~1|skip_connect~2|

Every node lists one edge from each earlier node; parsing accepts any order and
whitespace and returns the canonical form (edges in order of i).

Mask form: ``EdgeMasks(ops [num_edges, num_ops])`` booleans, edges in the order
(0->1), (0->2), (1->2), (0->3), (1->3), (2->3), ...; a cell is one-hot per edge, the
one-shot model turns any subset on (path dropout drops each of an edge's ops).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any, ClassVar, Iterator, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from osas import path_dropout
from osas.space.base import ArchBase
from osas.space.base import SpaceBase
from osas.space.base import register_space
from osas.space.decisions import Decision

NB201_OPS = ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')


class EdgeMasks(NamedTuple):
  """Boolean op masks of one or more cells (leading axes allowed); a JAX pytree."""

  ops: Any  # [..., num_edges, num_ops]


@dataclasses.dataclass(frozen=True)
class Arch(ArchBase):
  """A NAS-Bench-201 cell: `nodes[j - 1][i]` is the op of the edge from node i to node j."""

  SPACE: ClassVar[str] = 'nasbench201'
  nodes: tuple[tuple[str, ...], ...]
  space_name: str = 'nasbench201'

  @property
  def ops(self) -> tuple[str, ...]:
    """The op of every edge, in edge order (0->1, 0->2, 1->2, 0->3, ...)."""
    return tuple(itertools.chain.from_iterable(self.nodes))

  def to_string(self) -> str:
    return '+'.join('|' + ''.join(f'{op}~{i}|' for i, op in enumerate(node)) for node in self.nodes)

  def to_json(self) -> dict[str, Any]:
    return {'space': self.space_name, 'nodes': [list(node) for node in self.nodes]}


@dataclasses.dataclass(frozen=True)
class NasBench201Space(SpaceBase):
  """The benchmark's cell space, built from its parameters (defaults: the benchmark's)."""

  num_nodes: int = 4
  ops: tuple[str, ...] = NB201_OPS
  name: str = 'nasbench201'

  def __post_init__(self):
    unknown = [o for o in self.ops if o not in NB201_OPS]
    self._check(
        [
            (self.num_nodes >= 2, f'num_nodes={self.num_nodes} must be >= 2'),
            (len(self.ops) >= 1, 'ops must name at least one op'),
            (len(set(self.ops)) == len(self.ops), f'ops has duplicates: {self.ops}'),
            (not unknown, f"unknown ops {unknown} (known: {', '.join(NB201_OPS)})"),
        ]
    )

  # -- shape of the space --------------------------------------------------

  @functools.cached_property
  def edges(self) -> tuple[tuple[int, int], ...]:
    """(i, j) of every edge i -> j, in edge order: by target node, then source node."""
    return tuple((i, j) for j in range(1, self.num_nodes) for i in range(j))

  @property
  def num_edges(self) -> int:
    return len(self.edges)

  @property
  def size(self) -> int:
    """Number of distinct cells: one op per edge."""
    return self.num_ops**self.num_edges

  # -- architectures ----------------------------------------------------------

  def _cell(self, ops) -> Arch:
    """The Arch of the edge ops in edge order."""
    ops = iter(ops)
    return Arch(
        tuple(tuple(next(ops) for _ in range(j)) for j in range(1, self.num_nodes)), self.name
    )

  def canonical(self, arch: Arch, strict: bool = True) -> Arch:
    """Validates `arch` (`strict` is for interface parity: every cell here is strict)."""
    del strict
    if len(arch.nodes) != self.num_nodes - 1:
      raise ValueError(
          f'cell has {len(arch.nodes) + 1} nodes, space {self.name} has ' f'{self.num_nodes}'
      )
    for j, node in enumerate(arch.nodes, 1):
      if len(node) != j:
        raise ValueError(
            f'node {j} has {len(node)} incoming edges, needs one from each of ' f'nodes 0..{j - 1}'
        )
      for op in node:
        if op not in self.ops:
          raise ValueError(f"node {j}: unknown op {op!r} (known: {', '.join(self.ops)})")
    return Arch(tuple(tuple(node) for node in arch.nodes), self.name)

  def _parse_node(self, j: int, part: str) -> tuple[str, ...]:
    """The ops of node j's edges from nodes 0..j-1, from its '|op~i|...|' part."""
    part = part.strip()
    if len(part) < 2 or part[0] != '|' or part[-1] != '|':
      raise ValueError(
          f"node {j}: malformed {part!r}, expected '|op~i|op~i|' such as " f"'|nor_conv_3x3~0|'"
      )
    sources = {}
    for token in part[1:-1].split('|'):
      op, sep, source = token.strip().partition('~')
      try:
        if not sep:
          raise ValueError
        i = int(source)
      except ValueError:
        raise ValueError(
            f'node {j}: malformed edge {token.strip()!r}, expected OP~I such '
            f"as 'nor_conv_3x3~0'"
        ) from None
      if not 0 <= i < j:
        raise ValueError(f'node {j} reads node {i}, only nodes 0..{j - 1} exist before it')
      if i in sources:
        raise ValueError(f'node {j} lists node {i} twice')
      sources[i] = op.strip()
    missing = [i for i in range(j) if i not in sources]
    if missing:
      raise ValueError(
          f'node {j} has no edge from node {missing[0]} (every node reads '
          "every earlier one; 'none' for no op)"
      )
    return tuple(sources[i] for i in range(j))

  def parse(self, text: str, strict: bool = True) -> Arch:
    """Parses the benchmark's string form (see the module docstring) into a valid `Arch`."""
    if not isinstance(text, str) or not text.strip():
      raise ValueError(f'empty or non-string arch: {text!r}')
    parts = text.strip().split('+')
    if len(parts) != self.num_nodes - 1:
      raise ValueError(
          f'cell has {len(parts) + 1} nodes (input and {len(parts)} parts '
          f"joined by '+'), space {self.name} has {self.num_nodes}"
      )
    nodes = tuple(self._parse_node(j, part) for j, part in enumerate(parts, 1))
    return self.canonical(Arch(nodes, self.name), strict)

  def from_json(self, data: dict[str, Any]) -> Arch:
    try:
      nodes = tuple(tuple(node) for node in data['nodes'])
    except (KeyError, TypeError) as e:
      raise ValueError(
          f'malformed arch JSON {data!r}: needs "nodes", lists of op names ' f'({e})'
      ) from None
    return self.canonical(Arch(nodes, self.name))

  def encode(self, arch: Arch) -> EdgeMasks:
    """The [num_edges, num_ops] one-hot op mask of `arch`."""
    arch = self.canonical(arch)
    ops = np.zeros((self.num_edges, self.num_ops), bool)
    ops[np.arange(self.num_edges), [self.ops.index(o) for o in arch.ops]] = True
    return EdgeMasks(ops)

  def decode(self, masks: EdgeMasks) -> Arch:
    """The `Arch` of one cell's masks; ValueError unless each edge has exactly one op on."""
    ops = np.asarray(masks.ops, bool)
    if ops.shape != (self.num_edges, self.num_ops):
      raise ValueError(
          f'masks of shape {ops.shape}; expected {(self.num_edges, self.num_ops)}'
          ' (decode one cell at a time: use decode_batch for more)'
      )
    for e, row in enumerate(ops):
      if row.sum() != 1:
        i, j = self.edges[e]
        raise ValueError(f'edge {i}->{j} has {row.sum()} ops on; a cell has exactly one')
    return self._cell(self.ops[k] for k in ops.argmax(-1))

  def decisions(self) -> list[Decision]:
    """One choice per edge: its op (ENAS's controller draws them in edge order)."""
    options = np.eye(self.num_ops, dtype=bool)
    return [Decision(f'edge {i}->{j}', 0, e, options, True) for e, (i, j) in enumerate(self.edges)]

  def all_on(self) -> EdgeMasks:
    """Every op of every edge on: the whole one-shot model."""
    return EdgeMasks(np.ones((self.num_edges, self.num_ops), bool))

  def all_on_arch(self) -> None:
    """None: a cell has one op per edge, so no stand-alone arch has every path."""
    return None

  def sample_masks(self, key: jax.Array, n: int) -> EdgeMasks:
    """`n` cells drawn uniformly (one op per edge, uniformly) as masks [n, ...]; jittable."""
    which = jax.random.randint(key, (n, self.num_edges), 0, self.num_ops)
    return EdgeMasks(jax.nn.one_hot(which, self.num_ops, dtype=jnp.bool_))

  def isomorphism_key(self, arch: Arch) -> str:
    """The same string for cells that compute the same function.

    The benchmark's own `Structure.to_unique_str(consider_zero=True)` (Dong & Yang 2020),
    which finds 6,466 distinct cells among the 15,625.

    A node is the sorted sum of its incoming terms: '#' (zero) for `none` or a zero input,
    the input itself for `skip_connect`, '(input)@op' for any other op.
    """
    nodes = ['0']
    for node in self.canonical(arch).nodes:
      terms = []
      for i, op in enumerate(node):
        if op == 'none' or nodes[i] == '#':
          terms.append('#')
        else:
          terms.append(nodes[i] if op == 'skip_connect' else f'({nodes[i]})@{op}')
      nodes.append('+'.join(sorted(terms)))
    return nodes[-1]

  @functools.cached_property
  def _classes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell's op indices [size, num_edges] grouped by class.

    With each class's first row and its size.
    """
    keys, rows = [], []
    for arch in self.enumerate():
      keys.append(self.isomorphism_key(arch))
      rows.append([self.ops.index(op) for op in arch.ops])
    order = np.argsort(np.array(keys), kind='stable')
    _, first, counts = np.unique(np.array(keys)[order], return_index=True, return_counts=True)
    return np.array(rows)[order], first, counts

  @property
  def num_classes(self) -> int:
    """Number of distinct cells (isomorphism classes)."""
    return len(self._classes[1])

  def sample_classes(self, key: jax.Array, n: int) -> EdgeMasks:
    """`n` cells as masks [n, ...]: a class drawn uniformly, then a uniform cell of it.

    Jittable. Cells of small classes are drawn as often as those of large ones.
    """
    rows, first, counts = self._classes
    k_class, k_member = jax.random.split(key)
    which = jax.random.randint(k_class, (n,), 0, len(first))
    member = jnp.asarray(first)[which] + jax.random.randint(
        k_member, (n,), 0, jnp.asarray(counts)[which]
    )
    return EdgeMasks(jax.nn.one_hot(jnp.asarray(rows)[member], self.num_ops, dtype=jnp.bool_))

  def enumerate(self) -> Iterator[Arch]:
    """Every cell: edge ops in `itertools.product` order over the space's op order."""
    for ops in itertools.product(self.ops, repeat=self.num_edges):
      yield self._cell(ops)

  # -- training ---------------------------------------------------------------

  def drop_masks(
      self, key: jax.Array, num_ghosts: int, *, ramp, rate, base: EdgeMasks | None = None
  ) -> EdgeMasks:
    """Path dropout: each of an edge's k real ops drops independently.

    'none' is no path: it adds zeros either way, so it stays off and k leaves it out; an
    edge then loses all its real ops with probability `rate` at the end of the ramp.
    """
    base = self.all_on() if base is None else base
    real = np.array([op != 'none' for op in self.ops])
    p = path_dropout.probability(ramp, rate, max(int(real.sum()), 1))
    return EdgeMasks(path_dropout.keep(key, jnp.asarray(base.ops) & real, p, num_ghosts))


register_space('nasbench201', NasBench201Space)
