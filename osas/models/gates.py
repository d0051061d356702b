"""Gating a path of a cell by its mask bit: multiplied (mask) or skipped (lax.cond)."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def per_ghost(bit: jax.Array, ndim: int) -> jax.Array:
  """A scalar bit, or bits [G] of ghost batches, broadcastable against [G, B, H, W, C]."""
  return bit.reshape(bit.shape + (1,) * (ndim - bit.ndim))


def gate(
    parent: nn.Module,
    bit,
    module: nn.Module,
    fn: Callable[[nn.Module, jax.Array], jax.Array],
    x: jax.Array,
    out_shape,
    execution: str,
) -> jax.Array:
  """fn(module, x) where bit is on, exact zeros where it is off (bit: None, scalar or [G]).

  `execution='mask'` multiplies by the bit; 'skip' runs fn under a `lax.cond` on a
  scalar bit, so an unused path costs nothing. `parent` is the module calling.
  """
  if bit is None:
    return fn(module, x)
  if execution == 'skip' and not parent.is_initializing():
    if bit.ndim:  # One bit per ghost batch: no branch to skip, but keep exact zeros.
      return jnp.where(per_ghost(bit, len(out_shape)), fn(module, x), 0)
    # full_like, not zeros: inside shard_map the branches must vary over the same axes.
    zeros = lambda mdl, x: jax.lax.full_like(x, 0, shape=out_shape)
    return nn.cond(bit, fn, zeros, module, x)
  return fn(module, x) * per_ghost(bit, len(out_shape)).astype(x.dtype)
