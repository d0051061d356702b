"""The stand-alone model of one architecture, and its weights taken from a supernet."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from osas.models import registry
from osas.models.skeleton import ModelSpec


class Standalone(nn.Module):
  """Only the active paths of `arch` exist; ordinary BN with running averages.

  `apply(variables, images, train=...)`; in training pass `mutable=['batch_stats']`.
  The network is the space's (osas.models.registry).
  """

  arch: Any
  space: Any
  spec: ModelSpec

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    network = registry.of(self.space).network
    return network(self.space, self.spec, arch=self.arch, ghost=False, name='net')(
        images, None, train
    )


def params_from_supernet(supernet_params: Any, arch: Any) -> Any:
  """The supernet's weights of `arch`'s active paths, shaped for `Standalone`."""
  if 'hypernet' in supernet_params:  # Its shared kernels alone would be the wrong weights.
    raise ValueError(
        "params_from_supernet: these are SMASH parameters; take the cell's generated "
        'weights first: HyperSupernet.weights_of(params, space.encode(arch))'
    )
  return registry.of(arch.space_name).params_from_supernet(supernet_params, arch)
