"""Strategies that propose the candidates to score, chosen by `config.search.strategy`."""

from __future__ import annotations

from typing import Callable

import jax

from osas.space import Arch


def random_archs(space, seed: int, num_candidates: int) -> list[Arch]:
  """The paper's strategy: `num_candidates` distinct cells drawn uniformly from the space.

  Deterministic in the seed, so a resumed search proposes the same candidates in the same
  order. Stops early when the space has fewer cells than asked for.
  """
  wanted = min(num_candidates, space.size)
  archs: dict[Arch, None] = {}
  key = jax.random.key(seed)
  while len(archs) < wanted:
    key, draw = jax.random.split(key)
    for arch in space.decode_batch(space.sample_masks(draw, max(wanted - len(archs), 64))):
      if len(archs) < wanted:
        archs.setdefault(arch)
  return list(archs)


STRATEGIES: dict[str, Callable[[object, int, int], list[Arch]]] = {'random': random_archs}


def get_strategy(name: str) -> Callable[[object, int, int], list[Arch]]:
  if name not in STRATEGIES:
    raise ValueError(f"config.search.strategy: unknown {name!r}; known: {', '.join(STRATEGIES)}")
  return STRATEGIES[name]
