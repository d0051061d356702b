"""Batch norm with optional running averages; without them it is ghost batch norm."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class BatchNorm(nn.Module):
  """Normalises over every axis but the last (with running averages) or over the batch.

  With `track_running_stats=False` it always uses the statistics of the batch it is
  given and holds no running averages: this is the one-shot model's ghost batch norm,
  in training and evaluation alike. Its input is [..., B, H, W, C] (or [..., B, C]),
  and each index of the leading axes is a separate ghost batch with its own statistics
  over (B, H, W). With running averages it is ordinary batch norm (stand-alone). A
  search may recalibrate ghost batch norm: then it normalises by given statistics.
  """

  track_running_stats: bool = True
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    # Statistics and the normalisation in float32 (at least), output in x's dtype: with
    # bfloat16 activations the mean of a square over a batch loses too much otherwise.
    out_dtype, x = x.dtype, x.astype(jnp.promote_types(x.dtype, jnp.float32))
    features = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (features,))
    bias = self.param('bias', nn.initializers.zeros, (features,))
    axes = tuple(range(x.ndim - 1))
    if not self.track_running_stats:
      axes = axes[-3:] if x.ndim >= 4 else axes[-1:]
    if self.track_running_stats:
      ra_mean = self.variable('batch_stats', 'mean', jnp.zeros, (features,))
      ra_var = self.variable('batch_stats', 'var', jnp.ones, (features,))
    # A search's BN recalibration (osas.search.evaluator): with batch_stats mutable, ghost BN
    # stores its statistics averaged over the ghost batches; given them, it normalises by them.
    ghost = not self.track_running_stats and not self.is_initializing()
    recalibrating = ghost and self.is_mutable_collection('batch_stats')
    if self.track_running_stats and not train:
      mean, var = ra_mean.value, ra_var.value
    elif ghost and not recalibrating and self.has_variable('batch_stats', 'mean'):
      mean, var = self.get_variable('batch_stats', 'mean'), self.get_variable('batch_stats', 'var')
    else:
      mean = jnp.mean(x, axes, keepdims=True)
      var = jnp.mean(jnp.square(x - mean), axes, keepdims=True)  # Two-pass: exact for tiny ghosts.
      if self.track_running_stats and not self.is_initializing():
        ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean.reshape(-1)
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var.reshape(-1)
      if recalibrating:
        self.put_variable('batch_stats', 'mean', mean.reshape(-1, features).mean(0))
        self.put_variable('batch_stats', 'var', var.reshape(-1, features).mean(0))
    return ((x - mean) * (scale * jax.lax.rsqrt(var + self.epsilon)) + bias).astype(out_dtype)
