"""The stand-alone model of one architecture, and its weights taken from a supernet."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from osas.models.network import ModelSpec, Network
from osas.space import Arch


class Standalone(nn.Module):
  """Only the active inputs and ops of `arch` exist; ordinary BN with running averages.

  `apply(variables, images, train=...)`; in training pass `mutable=['batch_stats']`.
  """
  arch: Arch
  space: Any
  spec: ModelSpec

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    return Network(self.space, self.spec, arch=self.arch, ghost=False, name='net')(
        images, None, train)


def params_from_supernet(supernet_params: Any, arch: Arch) -> Any:
  """The supernet's weights of `arch`'s active inputs and ops, shaped for `Standalone`."""

  def prune(tree, block=None):
    if not isinstance(tree, dict):
      return tree
    out = {}
    for name, sub in tree.items():
      if name.startswith('block_'):
        out[name] = prune(sub, arch.blocks[int(name[len('block_'):])])
      elif block is not None and name.startswith('input_'):
        if int(name[len('input_'):]) in block.inputs:
          out[name] = sub
      elif block is not None and name.startswith('op_'):
        if name[len('op_'):] in block.ops:
          out[name] = sub
      else:
        out[name] = prune(sub, block)
    return out

  return prune(supernet_params)
