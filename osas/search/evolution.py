"""Strategy 'evolution': the evolutionary search of Single Path One-Shot (Guo et al., ECCV 2020).

Generation 0 is drawn at random; every later one is bred from the top_k candidates scored
so far (by config.search.rank_by): a share `crossover` of it by crossover of two parents,
the rest by mutation of one. A gene is one row of a cell's masks: a block's inputs or its
ops (bender2018), an edge's op (nasbench201), so both work in any space whose rows are
chosen independently. Crossover takes each gene from either parent with equal chance;
mutation redraws each gene with probability `mutation_prob` (from a random cell of the
space, which may give the old value back, as in SPOS). A child must be a valid cell,
within config.search.max_params / max_flops, and new: no cell is scored twice. Where a
bounded number of tries finds too few, random new cells fill the generation.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from osas.search import ranking
from osas.search.sampling import random_archs

# Tries per wanted child of each kind before random cells fill the generation (SPOS: 10).
TRIES = 10


def check(section) -> None:
  """ValueError naming the field when config.search.evolution cannot work."""
  fields = ('population', 'iterations', 'top_k')
  for field in fields:
    value = section[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ValueError(f'config.search.evolution.{field}={value!r} must be a positive integer')
  if not 0 < section.mutation_prob <= 1:
    raise ValueError(
        f'config.search.evolution.mutation_prob={section.mutation_prob} must be in (0, 1]'
    )
  if not 0 <= section.crossover <= 1:
    raise ValueError(f'config.search.evolution.crossover={section.crossover} must be in [0, 1]')


def mix(space, a: Any, b: Any, prob: float, rng: np.random.Generator) -> Any | None:
  """The cell of masks `a` with each gene (row) taken from masks `b` with probability `prob`.

  None when the result is not a cell of the space (a space whose rows constrain each other).
  """
  leaves, tree = jax.tree.flatten(a)
  out = []
  for x, y in zip(leaves, jax.tree.leaves(b)):
    rows = np.asarray(x).reshape(-1, np.shape(x)[-1])
    take = rng.random(rows.shape[0]) < prob
    out.append(np.where(take[:, None], np.asarray(y).reshape(rows.shape), rows).reshape(x.shape))
  try:
    return space.decode(jax.tree.unflatten(tree, out))
  except ValueError:
    return None


def crossover(space, a: Any, b: Any, rng: np.random.Generator) -> Any | None:
  """Each gene from parent `a` or parent `b`, with equal chance."""
  return mix(space, space.encode(a), space.encode(b), 0.5, rng)


def mutate(space, parent: Any, donor: Any, prob: float, rng: np.random.Generator) -> Any | None:
  """`parent` with each gene replaced, with probability `prob`, by that of masks `donor`."""
  return mix(space, space.encode(parent), donor, prob, rng)


class Evolution:
  """Proposes one generation per round; `observe` hands it the generation's scores.

  Deterministic in the seed and the scores: a resumed search replays the finished
  generations from the scores saved in candidates.jsonl and proposes what an
  uninterrupted one would.
  """

  def __init__(self, space, seed: int, section, limits, controller=None):
    del controller  # Evolution breeds from scores alone.
    self.space, self.seed, self.limits = space, seed, limits
    self.options, self.rank_by = section.evolution, section.rank_by
    self.generations: list[list[str]] = []
    self.records: dict[str, dict[str, Any]] = {}  # Of every cell scored, by arch string.
    self.visited: dict[Any, None] = {}  # Every cell proposed, in order.

  def parents(self) -> list[Any]:
    """The top_k cells scored so far, best first, ranked among all of them."""
    records = list(self.records.values())
    best = ranking.order(records, self.rank_by)[: self.options.top_k]
    return [self.space.parse(records[i]['arch']) for i in best]

  def propose(self) -> list[Any]:
    """The next generation; [] after config.search.evolution.iterations generations."""
    generation = len(self.generations)
    if generation >= self.options.iterations:
      return []
    children = self._children(np.random.default_rng([self.seed, generation]), generation)
    if not children and not generation and self.limits.active:
      raise self.limits.nothing_admitted('the random cells drawn for generation 0')
    self.visited.update(dict.fromkeys(children))
    return children

  def observe(self, records: list[dict[str, Any]]) -> None:
    """The scores of the generation `propose` gave, in its order."""
    self.generations.append([r['arch'] for r in records])
    self.records.update((r['arch'], r) for r in records)

  def state(self) -> dict[str, Any]:
    """What DIR/search/evolution.json holds after each generation."""
    return {
        'generations_done': len(self.generations),
        'population': self.generations[-1] if self.generations else [],
        'top_k': [a.to_string() for a in self.parents()],
        'history': self.generations,
        'rank_by': self.rank_by,
        'options': dict(self.options),
    }

  def _children(self, rng: np.random.Generator, generation: int) -> list[Any]:
    wanted = self.options.population
    children: dict[Any, None] = {}
    parents = self.parents() if generation else []
    if parents:
      crossed = round(wanted * self.options.crossover)
      mutated = wanted - crossed
      draws = self.space.sample_masks(jax.random.key(rng.integers(2**31)), max(TRIES * mutated, 1))
      donors = jax.tree.map(np.asarray, draws)

      def cross(_):
        a, b = rng.choice(len(parents), 2, replace=False) if len(parents) > 1 else (0, 0)
        return crossover(self.space, parents[a], parents[b], rng)

      def mutant(t):
        donor = jax.tree.map(lambda x: x[t], donors)
        parent = parents[rng.integers(len(parents))]
        return mutate(self.space, parent, donor, self.options.mutation_prob, rng)

      self._breed(children, crossed, cross)
      self._breed(children, mutated, mutant)
    fill = random_archs(
        self.space,
        int(rng.integers(2**31)),
        wanted - len(children),
        self.limits.admits if self.limits.active else None,
        exclude={**self.visited, **children},
    )
    return [*children, *fill]

  def _breed(self, children: dict[Any, None], count: int, make) -> None:
    """Adds up to `count` new, valid, admitted cells of `make(try)` to `children`."""
    wanted = len(children) + count
    for t in range(TRIES * count):
      if len(children) >= wanted:
        return
      child = make(t)
      if (
          child is not None
          and child not in children
          and child not in self.visited
          and self.limits.admits(child)
      ):
        children[child] = None
