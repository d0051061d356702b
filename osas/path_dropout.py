"""Path dropout (Bender et al. 2018, section 3.2): per-ghost-batch random masks.

Each incoming path of a node is dropped independently with probability
``p = ramp * rate ** (1 / k)``: k is the node's number of candidate paths (the
``num_cell_inputs + i`` inputs of block i, or the ``num_ops`` ops of a block), so
that at ``ramp = 1`` all k paths of a node drop together with probability ``rate``
whatever k is. A node whose paths all drop outputs zeros. ``ramp`` grows linearly
from 0 at the start of training to 1 at the end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from osas.space import Masks


def drop_probabilities(space, ramp, rate) -> tuple[jax.Array, jax.Array]:
  """Drop probability of each input slot [num_blocks, 1] and of each op (scalar)."""
  k_inputs = space.num_cell_inputs + jnp.arange(space.num_blocks, dtype=jnp.float32)
  p_inputs = ramp * rate ** (1.0 / k_inputs)
  p_ops = ramp * rate ** (1.0 / space.num_ops)
  return p_inputs[:, None], jnp.asarray(p_ops)


def sample(key: jax.Array, space, num_ghosts: int, *, ramp, rate,
           base: Masks | None = None) -> Masks:
  """Masks [num_ghosts, ...]: `base` (default all on) with paths dropped at random.

  Jittable; `ramp` and `rate` may be traced scalars. Each ghost batch draws its own
  mask; every cell of the network then uses its ghost's mask.
  """
  if base is None:
    base = space.all_on()
  p_inputs, p_ops = drop_probabilities(space, ramp, rate)
  k_in, k_ops = jax.random.split(key)
  # A path survives when u >= p, so it drops with probability exactly p (u in [0, 1)).
  keep_inputs = jax.random.uniform(
      k_in, (num_ghosts, space.num_blocks, space.max_inputs)) >= p_inputs
  keep_ops = jax.random.uniform(k_ops, (num_ghosts, space.num_blocks, space.num_ops)) >= p_ops
  return Masks(keep_inputs & jnp.asarray(base.inputs) & jnp.asarray(space.valid_inputs),
               keep_ops & jnp.asarray(base.ops))
