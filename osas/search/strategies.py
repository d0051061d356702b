"""Strategies that propose the candidates to score, chosen by `config.search.strategy`.

A strategy proposes candidates round by round and is shown each round's scores before it
proposes the next: 'random' and 'all' know theirs up front (one round), 'evolution'
breeds each generation from the scores of the ones before.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from absl import logging

from osas.search import controller_draw
from osas.search import evolution
from osas.search import limits as limits_lib
from osas.search.sampling import random_archs

__all__ = ['random_archs', 'all_archs', 'Strategy', 'build', 'check', 'get_strategy']


class Strategy(Protocol):

  def propose(self) -> list[Any]:
    """The next round's candidates (valid, distinct, within the limits); [] when done."""

  def observe(self, records: list[dict[str, Any]]) -> None:
    """The candidates.jsonl records of the round `propose` gave, in its order."""

  def state(self) -> dict[str, Any] | None:
    """What DIR/search/<strategy>.json holds after each round; None: nothing to save."""


class OneRound:
  """A strategy whose candidates are known up front: one round, then done."""

  def __init__(self, candidates: list[Any]):
    self._candidates = candidates

  def propose(self) -> list[Any]:
    candidates, self._candidates = self._candidates, []
    return candidates

  def observe(self, records: list[dict[str, Any]]) -> None:
    del records  # Nothing here depends on the scores.

  def state(self) -> None:
    return None


def all_archs(space, seed: int, num_candidates: int) -> list[Any]:
  """Every cell of the space, in its enumeration order (`check` caps the space's size)."""
  del seed, num_candidates
  return list(space.enumerate())


def _one_round(draw: Callable[..., list[Any]], what: str) -> Callable[..., OneRound]:
  """The strategy of `draw(space, seed, section, admits, controller)`: one round in the limits."""

  def build_one_round(
      space, seed: int, section, limits: limits_lib.Limits, controller=None
  ) -> OneRound:
    admits = limits.admits if limits.active else None
    candidates = draw(space, seed, section, admits, controller)
    if limits.active and not candidates:
      raise limits.nothing_admitted(what)
    if limits.active and len(candidates) < min(section.num_candidates, space.size):
      logging.warning(
          'search: the limits %s admit %d candidates, fewer than config.search.num_candidates',
          limits.to_json(),
          len(candidates),
      )
    return OneRound(candidates)

  return build_one_round


def _random(space, seed: int, section, admits, controller) -> list[Any]:
  del controller
  return random_archs(space, seed, section.num_candidates, admits)


def _all_within(space, seed: int, section, admits, controller) -> list[Any]:
  del controller
  cells = all_archs(space, seed, section.num_candidates)
  return [a for a in cells if admits is None or admits(a)]


def _from_controller(space, seed: int, section, admits, controller) -> list[Any]:
  """The trained controller's cells; `controller` is (policy, params)."""
  if controller is None:
    raise ValueError(
        "config.search.strategy='controller': the supernet checkpoint holds no controller "
        "(train it with config.supernet.sampler='controller')"
    )
  policy, params = controller
  how = section.controller_draw
  return controller_draw.draw(how, policy, params, space, section.num_candidates, seed, admits)


STRATEGIES: dict[str, Callable[..., Strategy]] = {
    'random': _one_round(_random, 'the random cells drawn'),
    'all': _one_round(_all_within, 'the cells of the space'),
    'evolution': evolution.Evolution,
    'controller': _one_round(_from_controller, "the controller's cells"),
}


def get_strategy(name: str) -> Callable[..., Strategy]:
  """The factory `(space, seed, config.search, limits, controller) -> Strategy` of a name."""
  if name not in STRATEGIES:
    raise ValueError(f"config.search.strategy: unknown {name!r}; known: {', '.join(STRATEGIES)}")
  return STRATEGIES[name]


def build(space, seed: int, section, limits: limits_lib.Limits, controller=None) -> Strategy:
  """The strategy config.search.strategy names, proposing cells within `limits`.

  `controller`: (policy, params) of the controller trained with the supernet, or None.
  """
  return get_strategy(section.strategy)(space, seed, section, limits, controller)


def check(section, space) -> None:
  """ValueError naming the field when config.search's strategy cannot work in `space`."""
  get_strategy(section.strategy)
  limits_lib.check(section)
  # num_candidates bounds the work either way: 'all' must not start enumerating billions.
  if section.strategy == 'all' and space.size > section.num_candidates:
    raise ValueError(
        f"config.search.strategy='all' scores all {space.size:,} cells of space "
        f'{space.name}, more than config.search.num_candidates='
        f'{section.num_candidates}; raise it or use the random strategy'
    )
  if section.strategy == 'evolution':
    evolution.check(section.evolution)
