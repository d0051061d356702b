"""Training-time mask samplers of the one-shot model, chosen by `config.supernet.sampler`."""

from __future__ import annotations

import functools
from typing import Any, Callable

from osas.controller import policy as policy_lib
from osas.controller import reinforce
from osas.space.decisions import Decisions

# sampler(key, space, num_ghosts, ramp, section, state) -> the space's masks, leading ghost
# axis; `section` is config.supernet, `state` the training state (the controller's policy).
Sampler = Callable[..., Any]


def _path_dropout(key, space, num_ghosts, ramp, section, state=None) -> Any:
  del state
  return space.drop_masks(key, num_ghosts, ramp=ramp, rate=section.path_dropout_rate)


def _uniform_cell(key, space, num_ghosts, ramp, section, state=None) -> Any:
  """One uniformly sampled cell per ghost batch (no ramp).

  Where a cell uses one op per edge (nasbench201) this is Single Path One-Shot's
  uniform single-path sampling.
  """
  del ramp, section, state
  return space.sample_masks(key, num_ghosts)


def _uniform_class(key, space, num_ghosts, ramp, section, state=None) -> Any:
  """One cell per ghost batch, its isomorphism class drawn uniformly.

  On nasbench201 each of the 6,466 distinct cells comes as often, whatever the number of
  strings that name it.
  """
  del ramp, section, state
  return space.sample_classes(key, num_ghosts)


def _controller(key, space, num_ghosts, ramp, section, state, *, policy, decisions) -> Any:
  """One cell per ghost batch drawn from ENAS's controller (the state's current policy)."""
  del space, ramp, section
  choices = reinforce.sample(state.controller.params, key, policy=policy, n=num_ghosts)
  return decisions.to_masks(choices)


SAMPLERS: dict[str, Sampler] = {
    'path_dropout': _path_dropout,
    'uniform_cell': _uniform_cell,
    'uniform_class': _uniform_class,
    'controller': _controller,
}


# Samplers that switch most paths off: 'skip' execution computes only the rest.
SPARSE = frozenset({'uniform_cell', 'uniform_class', 'controller'})


def get_sampler(name: str, space=None, controller_section=None) -> Sampler:
  """The sampler `name`; 'controller' needs the space and config.controller.

  ValueError naming config.supernet.sampler when it is unknown or `space` cannot draw it.
  """
  if name not in SAMPLERS:
    raise ValueError(f"config.supernet.sampler: unknown {name!r}; known: {', '.join(SAMPLERS)}")
  if name == 'uniform_class' and space is not None and not hasattr(space, 'sample_classes'):
    raise ValueError(
        f"config.supernet.sampler='uniform_class': space {space.name} has no "
        'isomorphism classes (nasbench201 has)'
    )
  if name == 'controller':
    if space is None or controller_section is None:
      raise ValueError("config.supernet.sampler='controller' needs the space and config.controller")
    return functools.partial(
        _controller,
        policy=policy_lib.from_config(space, controller_section),
        decisions=Decisions(space),
    )
  return SAMPLERS[name]
