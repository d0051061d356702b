"""Training-time mask samplers of the one-shot model, chosen by `config.supernet.sampler`."""

from __future__ import annotations

from typing import Callable

import jax

from osas import path_dropout
from osas.space import Masks

# sampler(key, space, num_ghosts, ramp, section) -> Masks with a leading ghost axis.
Sampler = Callable[..., Masks]


def _path_dropout(key, space, num_ghosts, ramp, section) -> Masks:
  return path_dropout.sample(key, space, num_ghosts, ramp=ramp, rate=section.path_dropout_rate)


def _uniform_cell(key, space, num_ghosts, ramp, section) -> Masks:
  """One uniformly sampled cell per ghost batch (no ramp)."""
  return space.sample_masks(key, num_ghosts)


SAMPLERS: dict[str, Sampler] = {'path_dropout': _path_dropout, 'uniform_cell': _uniform_cell}


def get_sampler(name: str) -> Sampler:
  if name not in SAMPLERS:
    raise ValueError(f"config.supernet.sampler: unknown {name!r}; known: {', '.join(SAMPLERS)}")
  return SAMPLERS[name]
