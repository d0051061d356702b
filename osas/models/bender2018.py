"""The bender2018 space's networks (supernet and stand-alone), cost and weight usage.

stem -> stacks of identical cells (reduction steps between stacks) -> BN-ReLU,
global average pooling, classifier. Cells of one stack have identical shapes and
run under `nn.scan`, so compile time does not grow with the number of cells.

With `arch=None` every candidate input and op of every block exists (the one-shot
model) and masks select them; with an `Arch` only its inputs and ops exist. Both
name parameters the same way (`stack_s/block_i/input_j`, `.../op_NAME`), so a
stand-alone model's parameters are a subset of the supernet's.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models import cost as cost_lib
from osas.models import kernels
from osas.models import registry
from osas.models import skeleton
from osas.models.gates import gate
from osas.models.gates import per_ghost
from osas.models.norm import BatchNorm
from osas.models.ops import Conv
from osas.models.ops import ReLU
from osas.models.ops import make_op
from osas.models.skeleton import ModelSpec
from osas.space.bender2018 import Arch
from osas.space.bender2018 import Block
from osas.space.bender2018 import Masks
from osas.space.bender2018 import SearchSpace

_SEP_KERNEL = {'sep3x3': 3, 'sep5x5': 5, 'sep7x7': 7}


class ChoiceBlock(nn.Module):
  """Block `index` of a cell: project the chosen inputs, sum the chosen ops.

  The paper concatenates the chosen inputs and applies BN-ReLU-Conv1x1; since batch
  norm and ReLU act per channel, that equals the sum over chosen inputs of a
  BN-ReLU-Conv1x1 per input, which is how it is computed here: each input's weights
  stand alone, and a dropped input is left out (skip) or multiplied by zero (mask).
  """

  space: Any
  index: int
  channels: int
  ghost: bool
  train: bool
  impl: str = 'auto'
  block: Block | None = None  # Stand-alone: only these inputs and ops exist.
  execution: str = 'mask'  # 'mask': multiply by the mask; 'skip': lax.cond per path.

  @nn.compact
  def __call__(self, candidates: list[jax.Array], input_mask=None, op_mask=None) -> jax.Array:
    num_inputs = self.space.num_candidate_inputs(self.index)
    inputs = range(num_inputs) if self.block is None else self.block.inputs
    ops = self.space.ops if self.block is None else self.block.ops
    shape = candidates[0].shape[:-1] + (self.channels,)

    h = 0.0
    for j in inputs:
      bit = None if input_mask is None else input_mask[..., j]
      unit = Projection(self.channels, self.ghost, self.train, self.impl, name=f'input_{j}')
      h = h + gate(self, bit, unit, lambda mdl, x: mdl(x), candidates[j], shape, self.execution)
    out = 0.0
    for name in ops:
      bit = None if op_mask is None else op_mask[..., self.space.ops.index(name)]
      op = make_op(
          name, channels=self.channels, ghost=self.ghost, impl=self.impl, name=f'op_{name}'
      )
      out = out + gate(self, bit, op, lambda mdl, x: mdl(x, self.train), h, shape, self.execution)
    if input_mask is not None:
      # A node whose inputs all dropped gives zeros (its ops would see BN of zeros).
      node_on = jnp.any(input_mask[..., :num_inputs], axis=-1)
      out = out * per_ghost(node_on, out.ndim).astype(h.dtype)
    return out


class Projection(nn.Module):
  """BN-ReLU-Conv1x1 of one input of a choice block."""

  channels: int
  ghost: bool
  train: bool
  impl: str = 'auto'  # config.model.kernels.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ReLU()(BatchNorm(not self.ghost, name='bn')(x, self.train))
    return Conv(self.channels, impl=self.impl, name='conv')(x)


class Cell(nn.Module):
  """A cell: its blocks read the two previous cells and earlier blocks; output = concat."""

  space: Any
  channels: int
  ghost: bool
  train: bool
  impl: str = 'auto'
  arch: Arch | None = None
  execution: str = 'mask'

  @nn.compact
  def __call__(self, carry: tuple[jax.Array, jax.Array], masks: Masks | None):
    states = list(carry)
    for i in range(self.space.num_blocks):
      states.append(
          ChoiceBlock(
              self.space,
              i,
              self.channels,
              self.ghost,
              self.train,
              self.impl,
              block=None if self.arch is None else self.arch.blocks[i],
              execution=self.execution,
              name=f'block_{i}',
          )(
              states,
              None if masks is None else masks.inputs[..., i, :],
              None if masks is None else masks.ops[..., i, :],
          )
      )
    return (carry[1], jnp.concatenate(states[self.space.num_cell_inputs :], axis=-1)), None


class Reduction(nn.Module):
  """Fixed reduction between stacks: each carried state gets BN-ReLU-AvgPool2x2-Conv1x1."""

  features: int
  ghost: bool
  train: bool
  impl: str = 'auto'  # config.model.kernels.

  @nn.compact
  def __call__(self, carry: tuple[jax.Array, jax.Array]):
    out = []
    for name, x in zip(('a', 'b'), carry):
      x = ReLU()(BatchNorm(not self.ghost, name=f'bn_{name}')(x, self.train))
      x = kernels.avg_pool2x2(x)
      out.append(Conv(self.features, impl=self.impl, name=f'conv_{name}')(x))
    return tuple(out)


class Network(nn.Module):
  """The whole network: images [..., B, H, W, C] -> logits [..., B, num_classes].

  With `ghost=True` (the supernet) leading axes index ghost batches, each normalised
  with its own statistics and gated by its own masks (leading axes of `masks`, or none:
  shared); one network over [G, B/G, ...] beats `nn.vmap` over ghosts on CPU, whose
  per-ghost kernel gradients run as G small reductions instead of one.
  """

  space: Any
  spec: ModelSpec
  arch: Arch | None = None
  ghost: bool = True
  execution: str = 'mask'

  @nn.compact
  def __call__(self, x: jax.Array, masks: Masks | None = None, train: bool = True):
    spec, width = self.spec, self.space.num_blocks  # A cell outputs num_blocks * filters.
    stem = skeleton.STEMS[spec.stem]
    x = stem(width * spec.filters, self.ghost, train, spec.kernels, name='stem')(
        spec.activations(x)
    )
    carry = (x, x)
    for s in range(spec.num_stacks):
      channels = spec.stack_filters(s)
      if s:
        carry = Reduction(width * channels, self.ghost, train, spec.kernels, name=f'reduce_{s}')(
            carry
        )
      cells = skeleton.stack(Cell, spec.cells_per_stack)
      carry, _ = cells(
          self.space,
          channels,
          self.ghost,
          train,
          spec.kernels,
          self.arch,
          self.execution,
          name=f'stack_{s}',
      )(carry, masks)
    return skeleton.head(carry[1], spec.num_classes, self.ghost, train)


def params_from_supernet(supernet_params: Any, arch: Arch) -> Any:
  """The supernet's weights of `arch`'s active inputs and ops, shaped for its stand-alone."""

  def prune(tree, block=None):
    if not isinstance(tree, dict):
      return tree
    out = {}
    for name, sub in tree.items():
      if name.startswith('block_'):
        out[name] = prune(sub, arch.blocks[int(name[len('block_') :])])
      elif block is not None and name.startswith('input_'):
        if int(name[len('input_') :]) in block.inputs:
          out[name] = sub
      elif block is not None and name.startswith('op_'):
        if name[len('op_') :] in block.ops:
          out[name] = sub
      else:
        out[name] = prune(sub, block)
    return out

  return prune(supernet_params)


def usage_fraction(space: SearchSpace, path: tuple[str, ...], masks: Masks) -> jax.Array | float:
  """Fraction of ghost batches whose mask uses the parameter at `path` (1 outside blocks).

  Inputs of block i are used when their bit is on; an op when its bit is on and the
  block has at least one input (a node without inputs outputs zeros).
  """
  for n, name in enumerate(path[:-1]):
    if not name.startswith('block_'):
      continue
    block, part = int(name[len('block_') :]), path[n + 1]
    if part.startswith('input_'):
      return jnp.mean(masks.inputs[:, block, int(part[len('input_') :])])
    if part.startswith('op_'):
      node_on = jnp.any(masks.inputs[:, block], axis=-1)
      op_on = masks.ops[:, block, space.ops.index(part[len('op_') :])]
      return jnp.mean(op_on & node_on)
  return 1.0


def _op_cost(op: str, channels: int, pixels: int) -> cost_lib.Cost:
  c = channels
  if op in _SEP_KERNEL:  # Two units of BN, depthwise k x k, pointwise 1 x 1.
    k = _SEP_KERNEL[op]
    return cost_lib.Cost(2 * (2 * c + k * k * c + c * c), 2 * pixels * (k * k * c + c * c))
  if op == 'conv1x7_7x1':  # BN, then 1x7 and 7x1 convolutions.
    return cost_lib.Cost(2 * c + 14 * c * c, 14 * pixels * c * c)
  if op in ('identity', 'max_pool', 'avg_pool'):
    return cost_lib.Cost(0, 0)
  raise ValueError(f'no cost model for op {op!r}')


def cost(space, spec, arch: Any, image_shape: tuple[int, int, int]) -> cost_lib.Cost:
  """Parameters and FLOPs of the stand-alone model of `arch` (see osas.models.cost)."""
  height, width, channels = image_shape
  cell_width = space.num_blocks * spec.filters
  total, (height, width) = cost_lib.stem(spec, cell_width, height, width, channels)
  for s in range(spec.num_stacks):
    c = spec.stack_filters(s)
    if s:
      height, width = height // 2, width // 2
      reduce = cost_lib.conv(1, cell_width, space.num_blocks * c, height * width, bn=cell_width)
      total = cost_lib.add(total, reduce, reduce)
    cell_width = space.num_blocks * c
    pixels = height * width
    cell = []
    for block in arch.blocks:
      for j in block.inputs:
        w = cell_width if j < space.num_cell_inputs else c
        cell.append(cost_lib.conv(1, w, c, pixels, bn=w))
      cell.extend(_op_cost(op, c, pixels) for op in block.ops)
    total = cost_lib.add(total, cost_lib.stack(cost_lib.add(*cell), spec))
  return cost_lib.add(total, cost_lib.head(cell_width, spec))


registry.register_models(
    'bender2018', registry.SpaceModels(Network, cost, params_from_supernet, usage_fraction)
)
