"""The candidate ops of the spaces' cells as small linen modules; bender2018's by name."""

from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models import kernels
from osas.models.norm import BatchNorm

# He initialisation suits the ReLU that precedes every convolution.
conv_init = nn.initializers.variance_scaling(2.0, 'fan_in', 'truncated_normal')


class ReLU(nn.Module):
  """max(x, 0); with 'intermediates' mutable it also sows what two zero-cost scores sum.

  'naswot': for the binary codes c [N, units] of the N examples of a batch (Mellor et al.,
  "Neural Architecture Search without Training", ICML 2021) the kernel
  c c^T + (1 - c)(1 - c)^T: units minus the Hamming distance. 'meco': the smallest
  eigenvalue of the Pearson correlation between the channels of the first example's
  feature map (Jiang et al., NeurIPS 2023). Summed over the network's ReLUs they give the
  NASWOT and MeCo scores (osas.search.zero_cost). x is [..., H, W, C]: every leading
  index is one example.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.is_mutable_collection('intermediates'):
      codes = (x > 0).reshape(-1, math.prod(x.shape[-3:])).astype(jnp.float32)
      self.sow('intermediates', 'naswot', codes @ codes.T + (1 - codes) @ (1 - codes).T)
      self.sow('intermediates', 'meco', min_channel_correlation(x))
    return nn.relu(x)


def min_channel_correlation(x: jax.Array) -> jax.Array:
  """Smallest eigenvalue of the channels' Pearson correlation over the first example's pixels.

  A channel constant over the pixels has no correlation: its row and column are 0, as the
  MeCo reference code sets the NaNs of torch.corrcoef.
  """
  first = x.reshape(-1, *x.shape[-3:])[0].astype(jnp.float32)
  features = first.reshape(-1, first.shape[-1])  # [pixels, channels]
  centred = features - features.mean(0)
  norm = jnp.sqrt(jnp.sum(jnp.square(centred), 0))
  safe = jnp.where(norm > 0, norm, 1.0)
  unit = jnp.where(norm > 0, centred / safe, 0.0)
  # Full float32 products on accelerators too: the smallest eigenvalue is sensitive to them.
  return jnp.linalg.eigvalsh(jnp.matmul(unit.T, unit, precision=jax.lax.Precision.HIGHEST))[0]


class Conv(nn.Module):
  """A bias-free convolution on kernels.conv2d, with nn.Conv's `kernel` parameter.

  Stride 1 is nn.Conv's 'SAME'; stride s pads k // 2 on every side. Kernel sizes must be
  odd; kernels.conv2d says why this beats nn.Conv on XLA:CPU.
  """

  features: int
  kernel_size: tuple[int, int] = (1, 1)
  strides: int = 1  # Above 1: padding k // 2 on every side (kernels.conv2d).
  impl: str = 'auto'  # config.model.kernels (kernels.resolve_impl).

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', conv_init, (*self.kernel_size, x.shape[-1], self.features))
    # Float32 weights, cast to the activations' dtype (mixed precision: ModelSpec.dtype).
    return kernels.conv2d(x, kernel.astype(x.dtype), self.strides, self.impl)


class Op(nn.Module):
  """An op on `channels`-wide features; `ghost` selects batch norm without running stats."""

  channels: int
  ghost: bool = True
  impl: str = 'auto'  # config.model.kernels (kernels.resolve_impl).

  def norm_relu(self, x: jax.Array, train: bool, name: str = 'bn') -> jax.Array:
    return ReLU()(BatchNorm(track_running_stats=not self.ghost, name=name)(x, train))

  def conv(self, x: jax.Array, kernel_size: tuple[int, int], name: str) -> jax.Array:
    return Conv(self.channels, kernel_size, impl=self.impl, name=name)(x)


class Identity(Op):

  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    return x


class MaxPool(Op):

  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    return kernels.max_pool3x3(x, self.impl)


class AvgPool(Op):

  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    return kernels.avg_pool3x3(x)


class SepConvPair(Op):
  """Two BN-ReLU-depthwise(k x k)-pointwise(1 x 1) units, as in the paper."""

  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    k = self.kernel_size
    for unit in range(2):
      x = self.norm_relu(x, train, name=f'bn_{unit}')
      depthwise = self.param(f'depthwise_{unit}', conv_init, (k, k, self.channels))
      x = kernels.depthwise_conv(x, depthwise.astype(x.dtype), self.impl)
      x = self.conv(x, (1, 1), name=f'pointwise_{unit}')
    return x


class Conv1x7x7x1(Op):
  """BN-ReLU, then a 1x7 and a 7x1 convolution."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = self.norm_relu(x, train)
    return self.conv(self.conv(x, (1, 7), name='conv_1x7'), (7, 1), name='conv_7x1')


class ReLUConvBN(Op):
  """ReLU, a k x k convolution, BN: NAS-Bench-201's conv op (its order, not BN-ReLU-Conv).

  Stride 2 pads k // 2 on every side as the benchmark's PyTorch model does, so output
  pixel (y, x) is centred on input pixel (2y, 2x).
  """

  kernel_size: int = 3
  strides: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    k = self.kernel_size
    x = Conv(self.channels, (k, k), self.strides, self.impl, name='conv')(ReLU()(x))
    return BatchNorm(track_running_stats=not self.ghost, name='bn')(x, train)


def _sep(kernel_size: int) -> Callable[..., Op]:
  return lambda **kw: SepConvPair(kernel_size=kernel_size, **kw)


OPS: dict[str, Callable[..., Op]] = {
    'identity': Identity,
    'sep3x3': _sep(3),
    'sep5x5': _sep(5),
    'sep7x7': _sep(7),
    'conv1x7_7x1': Conv1x7x7x1,
    'max_pool': MaxPool,
    'avg_pool': AvgPool,
}


def make_op(op: str, **kwargs) -> Op:
  """The op module registered under the name `op` (see OPS); kwargs are Op's fields."""
  if op not in OPS:
    raise ValueError(f"unknown op {op!r}; known: {', '.join(OPS)}")
  return OPS[op](**kwargs)
