"""Which share of a step's ghost batches used each supernet parameter (for L2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from osas.space import Masks


def usage_fraction(path: tuple[str, ...], masks: Masks, space) -> jax.Array | float:
  """Fraction of ghost batches whose mask uses the parameter at `path` (1 outside blocks).

  Inputs of block i are used when their bit is on; an op when its bit is on and the
  block has at least one input (a node without inputs outputs zeros).
  """
  for n, name in enumerate(path[:-1]):
    if not name.startswith('block_'):
      continue
    block, part = int(name[len('block_'):]), path[n + 1]
    if part.startswith('input_'):
      return jnp.mean(masks.inputs[:, block, int(part[len('input_'):])])
    if part.startswith('op_'):
      node_on = jnp.any(masks.inputs[:, block], axis=-1)
      op_on = masks.ops[:, block, space.ops.index(part[len('op_'):])]
      return jnp.mean(op_on & node_on)
  return 1.0
