"""Training-time mask samplers of the one-shot model, chosen by `config.supernet.sampler`."""

from __future__ import annotations

from typing import Any, Callable

# sampler(key, space, num_ghosts, ramp, section) -> the space's masks, leading ghost axis.
Sampler = Callable[..., Any]


def _path_dropout(key, space, num_ghosts, ramp, section) -> Any:
  return space.drop_masks(key, num_ghosts, ramp=ramp, rate=section.path_dropout_rate)


def _uniform_cell(key, space, num_ghosts, ramp, section) -> Any:
  """One uniformly sampled cell per ghost batch (no ramp).

  Where a cell uses one op per edge (nasbench201) this is Single Path One-Shot's
  uniform single-path sampling.
  """
  return space.sample_masks(key, num_ghosts)


SAMPLERS: dict[str, Sampler] = {'path_dropout': _path_dropout, 'uniform_cell': _uniform_cell}


def get_sampler(name: str) -> Sampler:
  if name not in SAMPLERS:
    raise ValueError(f"config.supernet.sampler: unknown {name!r}; known: {', '.join(SAMPLERS)}")
  return SAMPLERS[name]
