"""Path dropout (Bender et al. 2018, section 3.2): per-ghost-batch random masks.

Each incoming path of a node is dropped independently with probability
``p = ramp * rate ** (1 / k)``: k is the node's number of candidate paths (which
paths make up a node is the space's to say: `space.drop_masks`), so that at
``ramp = 1`` all k paths of a node drop together with probability ``rate`` whatever
k is. A dropped path contributes zeros. ``ramp`` grows linearly from 0 at the start
of training to 1 at the end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def probability(ramp, rate, k) -> jax.Array:
  """Drop probability of each of a node's `k` paths (k may be an array of node sizes)."""
  return ramp * rate ** (1.0 / jnp.asarray(k, jnp.float32))


def keep(key: jax.Array, base, p, num_ghosts: int) -> jax.Array:
  """[num_ghosts, *base.shape] bools: `base`'s paths, each dropped with probability `p`.

  `p` broadcasts against `base`. A path survives when u >= p, so it drops with
  probability exactly p (u in [0, 1)).
  """
  base = jnp.asarray(base)
  return (jax.random.uniform(key, (num_ghosts,) + base.shape) >= p) & base
