"""The one-shot model: every candidate path exists; masks choose them per ghost batch."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models.network import ModelSpec, Network
from osas.space import Masks


class Supernet(nn.Module):
  """`apply(variables, images [B,H,W,C], masks)` -> logits [B, num_classes].

  `masks` carry a leading ghost axis G (inputs [G, num_blocks, max_inputs], ops
  [G, num_blocks, num_ops]); B must be a multiple of G, the batch is split into G
  consecutive ghost batches, and ghost g uses mask g in every cell. Batch norm uses
  each ghost batch's own statistics, in training and evaluation alike. Masks without
  the ghost axis are shared by all `num_ghosts` ghost batches; with
  `execution='skip'` such a shared mask lets each path run under a `lax.cond`, so
  a candidate costs only what it uses. `masks=None` runs every path ungated (the
  reference that benchmarks compare masked execution against).
  """
  space: Any
  spec: ModelSpec
  execution: str = 'mask'  # 'mask' | 'skip'

  @nn.compact
  def __call__(self, images: jax.Array, masks: Masks | None, num_ghosts: int | None = None):
    per_ghost = masks is not None and masks.inputs.ndim == 3
    if per_ghost:
      num_ghosts = masks.inputs.shape[0]
      if num_ghosts != masks.ops.shape[0]:
        raise ValueError(f'masks disagree on the ghost axis: {masks.inputs.shape} vs '
                         f'{masks.ops.shape}')
    num_ghosts = num_ghosts or 1
    batch = images.shape[0]
    if batch % num_ghosts:
      raise ValueError(f'batch of {batch} images does not split into {num_ghosts} ghost batches')
    x = jnp.asarray(images).reshape(num_ghosts, batch // num_ghosts, *images.shape[1:])
    logits = Network(self.space, self.spec, ghost=True, execution=self.execution,
                     name='net')(x, masks)
    return logits.reshape(batch, -1)
