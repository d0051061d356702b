"""The nasbench201 space's networks (the benchmark's skeleton around its cells), cost, usage.

stem (3x3 conv, BN) -> stacks of identical cells with a residual reduction block
(the benchmark's ResNet basic block, stride 2) between stacks -> BN-ReLU, global
average pooling, classifier, as in NAS-Bench-201's TinyNetwork (N cells per stack
there is `cells_per_stack` here; C = `filters`, doubled per stack).

With `arch=None` every op of every edge exists (the one-shot model) and masks
select them; with an `Arch` only its ops exist. Parameters are named
`stack_s/edge_I_J/op_NAME` for the op on the edge from node I to node J in both, so
a stand-alone model's parameters are a subset of the supernet's. `none` has no
module: it contributes zeros.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models import cost as cost_lib
from osas.models import kernels
from osas.models import ops
from osas.models import registry
from osas.models import skeleton
from osas.models.gates import gate
from osas.models.ops import Conv
from osas.models.ops import ReLUConvBN
from osas.models.skeleton import ModelSpec
from osas.space.nasbench201 import Arch
from osas.space.nasbench201 import EdgeMasks
from osas.space.nasbench201 import NasBench201Space

_KERNEL = {'nor_conv_1x1': 1, 'nor_conv_3x3': 3}  # The other ops have no weights.

OPS = {
    'skip_connect': ops.Identity,
    'nor_conv_1x1': functools.partial(ReLUConvBN, kernel_size=1),
    'nor_conv_3x3': functools.partial(ReLUConvBN, kernel_size=3),
    'avg_pool_3x3': ops.AvgPool,  # Stride 1, averages real pixels only (count_include_pad=False).
}


class Edge(nn.Module):
  """The ops of the edge from one node to another, summed (each gated by its mask bit)."""

  space: Any
  ops: tuple[str, ...]  # The ops that exist on this edge, 'none' left out.
  channels: int
  ghost: bool
  train: bool
  execution: str = 'mask'  # 'mask': multiply by the mask; 'skip': lax.cond per op.
  impl: str = 'auto'  # config.model.kernels.

  @nn.compact
  def __call__(self, x: jax.Array, op_mask=None) -> jax.Array:
    out = 0.0
    for name in self.ops:
      bit = None if op_mask is None else op_mask[..., self.space.ops.index(name)]
      op = OPS[name](channels=self.channels, ghost=self.ghost, impl=self.impl, name=f'op_{name}')
      out = out + gate(self, bit, op, lambda mdl, x: mdl(x, self.train), x, x.shape, self.execution)
    return out


class Cell(nn.Module):
  """Node 0 is the input, node j the sum of its incoming edges; the last node is the output."""

  space: Any
  channels: int
  ghost: bool
  train: bool
  arch: Arch | None = None
  execution: str = 'mask'
  impl: str = 'auto'  # config.model.kernels.

  @nn.compact
  def __call__(self, x: jax.Array, masks: EdgeMasks | None):
    nodes = [x]
    for e, (i, j) in enumerate(self.space.edges):
      if i == 0:  # The first edge into node j: start its sum.
        nodes.append(jnp.zeros_like(x))
      names = self.space.ops if self.arch is None else (self.arch.nodes[j - 1][i],)
      names = tuple(name for name in names if name != 'none')
      if names:
        nodes[j] = nodes[j] + Edge(
            self.space,
            names,
            self.channels,
            self.ghost,
            self.train,
            self.execution,
            self.impl,
            name=f'edge_{i}_{j}',
        )(nodes[i], None if masks is None else masks.ops[..., e, :])
    return nodes[-1], None


class ResidualReduction(nn.Module):
  """The benchmark's reduction: ReLU-Conv3x3/2-BN, ReLU-Conv3x3-BN, plus AvgPool2x2-Conv1x1."""

  features: int
  ghost: bool
  train: bool
  impl: str = 'auto'  # config.model.kernels.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(ReLUConvBN, self.features, self.ghost, impl=self.impl)
    y = conv(strides=2, name='conv_a')(x, self.train)
    y = conv(name='conv_b')(y, self.train)
    return Conv(self.features, impl=self.impl, name='shortcut')(kernels.avg_pool2x2(x)) + y


class Network(nn.Module):
  """The whole network: images [..., B, H, W, C] -> logits [..., B, num_classes].

  With `ghost=True` (the supernet) leading axes index ghost batches, each normalised
  with its own statistics and gated by its own masks (leading axes of `masks`, or
  none: shared by all).
  """

  space: Any
  spec: ModelSpec
  arch: Arch | None = None
  ghost: bool = True
  execution: str = 'mask'

  @nn.compact
  def __call__(self, x: jax.Array, masks: EdgeMasks | None = None, train: bool = True):
    spec = self.spec
    x = skeleton.STEMS[spec.stem](spec.filters, self.ghost, train, spec.kernels, name='stem')(
        spec.activations(x)
    )
    for s in range(spec.num_stacks):
      channels = spec.stack_filters(s)
      if s:
        x = ResidualReduction(channels, self.ghost, train, spec.kernels, name=f'reduce_{s}')(x)
      cells = skeleton.stack(Cell, spec.cells_per_stack)
      x, _ = cells(
          self.space,
          channels,
          self.ghost,
          train,
          self.arch,
          self.execution,
          spec.kernels,
          name=f'stack_{s}',
      )(x, masks)
    return skeleton.head(x, spec.num_classes, self.ghost, train)


def _edge(name: str) -> tuple[int, int] | None:
  """(i, j) of a parameter scope named 'edge_I_J', else None."""
  parts = name.split('_')
  if len(parts) == 3 and parts[0] == 'edge':
    return int(parts[1]), int(parts[2])
  return None


def params_from_supernet(supernet_params: Any, arch: Arch) -> Any:
  """The supernet's weights of `arch`'s ops, shaped for its stand-alone model.

  Ops without weights (and `none`) leave no parameters, so scopes that end up empty go.
  """

  def prune(tree):
    out = {}
    for name, sub in tree.items():
      edge = _edge(name)
      if edge is not None:
        i, j = edge
        sub = {k: v for k, v in sub.items() if k == f'op_{arch.nodes[j - 1][i]}'}
      elif isinstance(sub, dict):
        sub = prune(sub)
      if not isinstance(sub, dict) or sub:
        out[name] = sub
    return out

  return prune(supernet_params)


def usage_fraction(
    space: NasBench201Space, path: tuple[str, ...], masks: EdgeMasks
) -> jax.Array | float:
  """Fraction of ghost batches whose mask has the op at `path` on (1 outside the cells)."""
  for n, name in enumerate(path[:-1]):
    edge = _edge(name)
    if edge is not None and path[n + 1].startswith('op_'):
      op = space.ops.index(path[n + 1][len('op_') :])
      return jnp.mean(masks.ops[:, space.edges.index(edge), op])
  return 1.0


def cost(space, spec, arch: Any, image_shape: tuple[int, int, int]) -> cost_lib.Cost:
  """Parameters and FLOPs of the stand-alone model of `arch` (see osas.models.cost)."""
  del space  # An arch's edges say it all.
  height, width, channels = image_shape
  total, (height, width) = cost_lib.stem(spec, spec.filters, height, width, channels)
  c = spec.filters
  for s in range(spec.num_stacks):
    c_in, c = c, spec.stack_filters(s)
    if s:  # conv_a (3x3, stride 2), conv_b (3x3), shortcut (avg pool, 1x1 conv, no BN).
      height, width = height // 2, width // 2
      pixels = height * width
      total = cost_lib.add(
          total,
          cost_lib.conv(3, c_in, c, pixels, bn=c),
          cost_lib.conv(3, c, c, pixels, bn=c),
          cost_lib.conv(1, c_in, c, pixels),
      )
    cell = [
        cost_lib.conv(_KERNEL[op], c, c, height * width, bn=c) for op in arch.ops if op in _KERNEL
    ]
    total = cost_lib.add(total, cost_lib.stack(cost_lib.add(*cell), spec))
  return cost_lib.add(total, cost_lib.head(c, spec))


registry.register_models(
    'nasbench201', registry.SpaceModels(Network, cost, params_from_supernet, usage_fraction)
)
