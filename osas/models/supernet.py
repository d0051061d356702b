"""The one-shot model: every candidate path exists; masks choose them per ghost batch."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from osas.models import registry
from osas.models.skeleton import ModelSpec


def ghost_axis(space, masks: Any) -> int | None:
  """The size of the masks' leading ghost axis, or None for one cell's masks (shared).

  One cell's masks have the leaves of `space.all_on()`; a batch has one more axis.
  """
  cell = jax.tree.leaves(space.all_on())
  leading = {
      tuple(m.shape[: np.ndim(m) - np.ndim(c)]) for m, c in zip(jax.tree.leaves(masks), cell)
  }
  if len(leading) != 1 or len(next(iter(leading))) > 1:
    shapes = ', '.join(str(np.shape(m)) for m in jax.tree.leaves(masks))
    raise ValueError(
        f'masks need the same leading ghost axis (or none) on every leaf: '
        f"got {shapes} for cells of {', '.join(str(np.shape(c)) for c in cell)}"
    )
  (lead,) = leading
  return lead[0] if lead else None


class Supernet(nn.Module):
  """`apply(variables, images [B,H,W,C], masks)` -> logits [B, num_classes].

  `masks` carry a leading ghost axis G (each leaf [G, ...] of one cell's masks, e.g.
  bender2018's inputs [G, num_blocks, max_inputs] and ops [G, num_blocks, num_ops]);
  B must be a multiple of G, the batch is split into G consecutive ghost batches, and
  ghost g uses mask g in every cell. Batch norm uses each ghost batch's own
  statistics, in training and evaluation alike. Masks without the ghost axis are
  shared by all `num_ghosts` ghost batches; with `execution='skip'` such a shared mask
  lets each path run under a `lax.cond`, so a candidate costs only what it uses. With
  'skip' and a ghost axis, the ghost batches run one after another (a scan), each path
  under a `lax.cond` on that ghost's bit: a single-path sampler's step then computes
  one op per edge instead of all of them.
  `masks=None` runs every path ungated (the reference that benchmarks compare masked
  execution against). The network is the space's (osas.models.registry).
  """

  space: Any
  spec: ModelSpec
  execution: str = 'mask'  # 'mask' | 'skip'

  @nn.compact
  def __call__(self, images: jax.Array, masks: Any, num_ghosts: int | None = None):
    per_ghost = None if masks is None else ghost_axis(self.space, masks)
    num_ghosts = per_ghost or num_ghosts
    num_ghosts = num_ghosts or 1
    batch = images.shape[0]
    if batch % num_ghosts:
      raise ValueError(f'batch of {batch} images does not split into {num_ghosts} ghost batches')
    x = jnp.asarray(images).reshape(num_ghosts, batch // num_ghosts, *images.shape[1:])
    network = registry.of(self.space).network(
        self.space, self.spec, ghost=True, execution=self.execution, name='net'
    )
    if self.execution == 'skip' and per_ghost is not None and not self.is_initializing():
      # The same parameters ('net/...') for every ghost batch; their gradients add up.
      one_ghost = lambda net, carry, xs: (carry, net(xs[0][None], xs[1])[0])
      scan = nn.scan(one_ghost, variable_broadcast='params', split_rngs={'params': False})
      _, logits = scan(network, None, (x, masks))
    else:
      logits = network(x, masks)
    return logits.reshape(batch, -1)
