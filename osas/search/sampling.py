"""Distinct cells drawn uniformly from a space, optionally within limits and not seen before."""

from __future__ import annotations

from typing import Any, Callable, Collection

import jax

# Random draws per wanted cell (at least 64 cells) before giving up on finding more: bounds
# the work when limits or earlier generations leave few cells to find.
DRAWS_PER_CELL = 20


def random_archs(
    space,
    seed: int,
    num_candidates: int,
    admits: Callable[[Any], bool] | None = None,
    exclude: Collection[Any] = (),
) -> list[Any]:
  """`num_candidates` distinct cells drawn uniformly, those `admits` accepts, none in `exclude`.

  Deterministic in the seed, so a resumed search proposes the same candidates in the same
  order. Stops early when the space has fewer cells than asked for, or after
  DRAWS_PER_CELL draws per wanted cell.
  """
  wanted = min(num_candidates, space.size)
  archs: dict[Any, None] = {}
  key = jax.random.key(seed)
  draws, budget = 0, DRAWS_PER_CELL * max(wanted, 64)
  while len(archs) < wanted and draws < budget:
    key, draw = jax.random.split(key)
    count = max(wanted - len(archs), 64)
    for arch in space.decode_batch(space.sample_masks(draw, count)):
      if len(archs) < wanted and arch not in exclude and (admits is None or admits(arch)):
        archs.setdefault(arch)
    draws += count
  return list(archs)
