"""Each space's networks, cost and weight usage, found by the space's name.

Spaces are pure data (osas.space); what turns a space into a network lives here, one
entry per space: `register_models(name, SpaceModels(...))` beside the space's module in
osas/models/, and `of(space)` to look it up.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple


class SpaceModels(NamedTuple):
  """What the models need to know about one space."""

  # (space, spec, arch=None, ghost=True, execution='mask', name=None) -> a linen module
  # called as (images [..., B, H, W, C], masks, train) -> logits [..., B, classes].
  # arch=None: every path exists (the supernet) and masks gate them; an Arch: only its
  # paths exist (stand-alone). ghost: BN per leading index without running averages.
  network: Callable[..., Any]
  cost: Callable[..., Any]  # (space, spec, arch, image_shape) -> osas.models.cost.Cost
  params_from_supernet: Callable[[Any, Any], Any]  # (supernet params, arch) -> its params
  usage_fraction: Callable[..., Any]  # (space, param path, masks [G, ...]) -> fraction


_MODELS: dict[str, SpaceModels] = {}


def register_models(space_name: str, models: SpaceModels) -> None:
  """Makes `of` find `models` for the space registered as `space_name`."""
  _MODELS[space_name] = models


def of(space: Any) -> SpaceModels:
  """The models of a space (or of the space with that name)."""
  name = space if isinstance(space, str) else space.name
  if name not in _MODELS:
    raise ValueError(
        f"config.space.name: no models registered for space {name!r}; known: "
        f"{', '.join(_MODELS)} (osas.models.registry.register_models)"
    )
  return _MODELS[name]
