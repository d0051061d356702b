"""Strategy 'controller': the candidates ENAS's trained controller proposes, in one round.

`config.search.controller_draw` = 'most_probable': the most probable distinct cells, by
beam search over the policy's decisions (most probable first); 'sampled': distinct cells
drawn from the policy, in the order drawn (ENAS's final search samples and scores). Either
way only cells within config.search.max_params / max_flops are kept.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import numpy as np

from osas.controller import reinforce
from osas.search.sampling import DRAWS_PER_CELL
from osas.space.decisions import Decisions

DRAWS = ('most_probable', 'sampled')
# Beam widths tried grow x2 up to this many times num_candidates while limits reject cells.
MAX_WIDTH_FACTOR = 16


def most_probable(policy, params, space, count: int, admits=None) -> list[Any]:
  """The `count` most probable admitted cells (beam search; fewer if the space runs out)."""
  decisions = Decisions(space)
  wanted = min(count, space.size)
  width = wanted
  while True:
    beam = functools.partial(reinforce.most_probable, policy=policy, width=width)
    choices, log_prob = jax.jit(beam)(params)
    finite = np.isfinite(np.asarray(log_prob))
    archs = decisions.archs(np.asarray(choices)[finite])
    kept = [a for a in archs if admits is None or admits(a)]
    if len(kept) >= wanted or width >= space.size or width >= MAX_WIDTH_FACTOR * wanted:
      return kept[:wanted]
    width *= 2


def sampled(policy, params, space, count: int, seed: int, admits=None) -> list[Any]:
  """`count` distinct admitted cells drawn from the policy, as sampling.random_archs does."""
  decisions = Decisions(space)
  wanted = min(count, space.size)
  archs: dict[Any, None] = {}
  key, draws, budget = jax.random.key(seed), 0, DRAWS_PER_CELL * max(wanted, 64)
  n = max(wanted, 64)  # One batch size: one compile.
  sample = jax.jit(functools.partial(reinforce.sample, policy=policy, n=n))
  while len(archs) < wanted and draws < budget:
    key, draw = jax.random.split(key)
    for arch in decisions.archs(np.asarray(sample(params, draw))):
      if len(archs) < wanted and (admits is None or admits(arch)):
        archs.setdefault(arch)
    draws += n
  return list(archs)


def draw(
    how: str, policy, params, space, count: int, seed: int, admits: Callable[[Any], bool] | None
) -> list[Any]:
  """`count` cells of the controller by config.search.controller_draw `how`."""
  if how == 'most_probable':
    return most_probable(policy, params, space, count, admits)
  return sampled(policy, params, space, count, seed, admits)


def check(config) -> None:
  """ValueError naming the field when strategy 'controller' cannot work."""
  reinforce.check(config.controller)  # A search-only run restores the controller it names.
  if config.search.controller_draw not in DRAWS:
    raise ValueError(
        f'config.search.controller_draw={config.search.controller_draw!r}: expected one of '
        f"{', '.join(DRAWS)}"
    )
  if config.supernet.sampler != 'controller':
    raise ValueError(
        "config.search.strategy='controller' needs a controller trained with the supernet: "
        f"config.supernet.sampler='controller', not {config.supernet.sampler!r}"
    )
