"""The stand-alone model of one architecture, and its weights taken from a supernet."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from osas.models.skeleton import ModelSpec


class Standalone(nn.Module):
  """Only the active paths of `arch` exist; ordinary BN with running averages.

  `apply(variables, images, train=...)`; in training pass `mutable=['batch_stats']`.
  The network is the space's (`space.network`).
  """
  arch: Any
  space: Any
  spec: ModelSpec

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.space.network(self.spec, arch=self.arch, ghost=False, name='net')(
        images, None, train)


def params_from_supernet(supernet_params: Any, arch: Any, space: Any = None) -> Any:
  """The supernet's weights of `arch`'s active paths, shaped for `Standalone`.

  `space` defaults to the registered space `arch` names, with its default parameters
  (which paths an arch has does not depend on them).
  """
  # Here, not at the top: the spaces import the models.
  from osas import space as space_lib  # pylint: disable=g-import-not-at-top
  space = space or space_lib.get_space(arch.space_name)
  return space.params_from_supernet(supernet_params, arch)
