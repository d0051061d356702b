"""Strategies that propose the candidates to score, chosen by `config.search.strategy`."""

from __future__ import annotations

from typing import Any, Callable

import jax


def random_archs(space, seed: int, num_candidates: int) -> list[Any]:
  """The paper's strategy: `num_candidates` distinct cells drawn uniformly from the space.

  Deterministic in the seed, so a resumed search proposes the same candidates in the same
  order. Stops early when the space has fewer cells than asked for.
  """
  wanted = min(num_candidates, space.size)
  archs: dict[Any, None] = {}
  key = jax.random.key(seed)
  while len(archs) < wanted:
    key, draw = jax.random.split(key)
    for arch in space.decode_batch(space.sample_masks(draw, max(wanted - len(archs), 64))):
      if len(archs) < wanted:
        archs.setdefault(arch)
  return list(archs)


def all_archs(space, seed: int, num_candidates: int) -> list[Any]:
  """Every cell of the space, in its enumeration order (`check` caps the space's size)."""
  del seed, num_candidates
  return list(space.enumerate())


STRATEGIES: dict[str, Callable[[Any, int, int], list[Any]]] = {
    'random': random_archs,
    'all': all_archs,
}


def get_strategy(name: str) -> Callable[[Any, int, int], list[Any]]:
  if name not in STRATEGIES:
    raise ValueError(f"config.search.strategy: unknown {name!r}; known: {', '.join(STRATEGIES)}")
  return STRATEGIES[name]


def check(section, space) -> None:
  """ValueError naming the field when config.search's strategy cannot work in `space`."""
  get_strategy(section.strategy)
  # num_candidates bounds the work either way: 'all' must not start enumerating billions.
  if section.strategy == 'all' and space.size > section.num_candidates:
    raise ValueError(
        f"config.search.strategy='all' scores all {space.size:,} cells of space "
        f'{space.name}, more than config.search.num_candidates='
        f'{section.num_candidates}; raise it or use the random strategy'
    )
