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


def _uniform_class(key, space, num_ghosts, ramp, section) -> Any:
  """One cell per ghost batch, its isomorphism class drawn uniformly.

  On nasbench201 each of the 6,466 distinct cells comes as often, whatever the number of
  strings that name it.
  """
  return space.sample_classes(key, num_ghosts)


SAMPLERS: dict[str, Sampler] = {
    'path_dropout': _path_dropout,
    'uniform_cell': _uniform_cell,
    'uniform_class': _uniform_class,
}


# Samplers that switch most paths off: 'skip' execution computes only the rest.
SPARSE = frozenset({'uniform_cell', 'uniform_class'})


def get_sampler(name: str, space=None) -> Sampler:
  """The sampler `name`.

  ValueError naming config.supernet.sampler when it is unknown or `space` cannot draw it.
  """
  if name not in SAMPLERS:
    raise ValueError(f"config.supernet.sampler: unknown {name!r}; known: {', '.join(SAMPLERS)}")
  if name == 'uniform_class' and space is not None and not hasattr(space, 'sample_classes'):
    raise ValueError(
        f"config.supernet.sampler='uniform_class': space {space.name} has no "
        'isomorphism classes (nasbench201 has)'
    )
  return SAMPLERS[name]
