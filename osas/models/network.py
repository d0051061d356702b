"""The network skeleton shared by the supernet and stand-alone models.

stem -> stacks of identical cells (reduction steps between stacks) -> BN-ReLU,
global average pooling, classifier. Cells of one stack have identical shapes and
run under `nn.scan`, so compile time does not grow with the number of cells.

With `arch=None` every candidate input and op of every block exists (the one-shot
model) and masks select them; with an `Arch` only its inputs and ops exist. Both
name parameters the same way (`stack_s/block_i/input_j`, `.../op_NAME`), so a
stand-alone model's parameters are a subset of the supernet's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models import kernels
from osas.models.norm import BatchNorm
from osas.models.ops import Conv, Op, conv_init, make_op
from osas.space import Arch, Block, Masks


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """Macro-architecture hyper-parameters (the config's `model` section)."""
  num_classes: int
  filters: int = 16  # F: width of a block's ops in the first stack; doubles per stack.
  num_stacks: int = 3
  cells_per_stack: int = 2
  stem: str = 'cifar'  # A key of STEMS.
  depthwise_impl: str = 'auto'  # 'auto' | 'shifted' | 'native' (kernels.resolve_impl).

  def __post_init__(self):
    for field in ('num_classes', 'filters', 'num_stacks', 'cells_per_stack'):
      if getattr(self, field) <= 0:
        raise ValueError(f'config.model.{field} must be positive, got {getattr(self, field)}')
    if self.stem not in STEMS:
      raise ValueError(f"config.model.stem: unknown {self.stem!r}; known: {', '.join(STEMS)}")
    kernels.resolve_impl(self.depthwise_impl)

  @classmethod
  def from_config(cls, model_config, num_classes: int) -> ModelSpec:
    fields = {f.name for f in dataclasses.fields(cls)} - {'num_classes'}
    return cls(num_classes=num_classes,
               **{k: v for k, v in dict(model_config).items() if k in fields})

  def stack_filters(self, stack: int) -> int:
    return self.filters * 2 ** stack


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

  def _gate(self, bit, module: nn.Module, fn: Callable[[nn.Module, jax.Array], jax.Array],
            x: jax.Array, out_shape) -> jax.Array:
    """fn(module, x) where bit is on, exact zeros where it is off (bit: scalar or [G])."""
    if bit is None:
      return fn(module, x)
    if self.execution == 'skip' and not self.is_initializing():
      if bit.ndim:  # One bit per ghost batch: no branch to skip, but keep exact zeros.
        return jnp.where(_per_ghost(bit, len(out_shape)), fn(module, x), 0)
      zeros = lambda mdl, x: jnp.zeros(out_shape, x.dtype)
      return nn.cond(bit, fn, zeros, module, x)
    return fn(module, x) * _per_ghost(bit, len(out_shape)).astype(x.dtype)

  @nn.compact
  def __call__(self, candidates: list[jax.Array], input_mask=None, op_mask=None) -> jax.Array:
    num_inputs = self.space.num_candidate_inputs(self.index)
    inputs = range(num_inputs) if self.block is None else self.block.inputs
    ops = self.space.ops if self.block is None else self.block.ops
    shape = candidates[0].shape[:-1] + (self.channels,)

    h = 0.0
    for j in inputs:
      bit = None if input_mask is None else input_mask[..., j]
      unit = Projection(self.channels, self.ghost, self.train, name=f'input_{j}')
      h = h + self._gate(bit, unit, lambda mdl, x: mdl(x), candidates[j], shape)
    out = 0.0
    for name in ops:
      bit = None if op_mask is None else op_mask[..., self.space.ops.index(name)]
      op = make_op(name, channels=self.channels, ghost=self.ghost, impl=self.impl,
                   name=f'op_{name}')
      out = out + self._gate(bit, op, lambda mdl, x: mdl(x, self.train), h, shape)
    if input_mask is not None:
      # A node whose inputs all dropped gives zeros (its ops would see BN of zeros).
      node_on = jnp.any(input_mask[..., :num_inputs], axis=-1)
      out = out * _per_ghost(node_on, out.ndim).astype(h.dtype)
    return out


def _per_ghost(bit: jax.Array, ndim: int) -> jax.Array:
  """A scalar bit, or bits [G] of ghost batches, broadcastable against [G, B, H, W, C]."""
  return bit.reshape(bit.shape + (1,) * (ndim - bit.ndim))


class Projection(nn.Module):
  """BN-ReLU-Conv1x1 of one input of a choice block."""
  channels: int
  ghost: bool
  train: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.relu(BatchNorm(not self.ghost, name='bn')(x, self.train))
    return Conv(self.channels, name='conv')(x)


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
      states.append(ChoiceBlock(
          self.space, i, self.channels, self.ghost, self.train, self.impl,
          block=None if self.arch is None else self.arch.blocks[i],
          execution=self.execution, name=f'block_{i}')(
              states, None if masks is None else masks.inputs[..., i, :],
              None if masks is None else masks.ops[..., i, :]))
    return (carry[1], jnp.concatenate(states[self.space.num_cell_inputs:], axis=-1)), None


class Reduction(nn.Module):
  """Fixed reduction between stacks: each carried state gets BN-ReLU-AvgPool2x2-Conv1x1."""
  features: int
  ghost: bool
  train: bool

  @nn.compact
  def __call__(self, carry: tuple[jax.Array, jax.Array]):
    out = []
    for name, x in zip(('a', 'b'), carry):
      x = nn.relu(BatchNorm(not self.ghost, name=f'bn_{name}')(x, self.train))
      x = kernels.avg_pool2x2(x)
      out.append(Conv(self.features, name=f'conv_{name}')(x))
    return tuple(out)


class CifarStem(nn.Module):
  """A 3x3 convolution and BN at full resolution."""
  features: int
  ghost: bool
  train: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = Conv(self.features, (3, 3), name='conv')(x)
    return BatchNorm(not self.ghost, name='bn')(x, self.train)


class ImageNetStem(nn.Module):
  """Two stride-2 3x3 convolutions: 224x224 images enter the cells at 56x56."""
  features: int
  ghost: bool
  train: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features // 2, (3, 3), 2, use_bias=False, kernel_init=conv_init,
                name='conv_0')(x)
    x = nn.relu(BatchNorm(not self.ghost, name='bn_0')(x, self.train))
    x = nn.Conv(self.features, (3, 3), 2, use_bias=False, kernel_init=conv_init,
                name='conv_1')(x)
    return BatchNorm(not self.ghost, name='bn_1')(x, self.train)


STEMS: dict[str, type[nn.Module]] = {'cifar': CifarStem, 'imagenet': ImageNetStem}


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
    x = STEMS[spec.stem](width * spec.filters, self.ghost, train, name='stem')(x)
    carry = (x, x)
    for s in range(spec.num_stacks):
      channels = spec.stack_filters(s)
      if s:
        carry = Reduction(width * channels, self.ghost, train, name=f'reduce_{s}')(carry)
      cells = nn.scan(Cell, variable_axes={'params': 0, 'batch_stats': 0},
                      split_rngs={'params': True}, in_axes=nn.broadcast,
                      length=spec.cells_per_stack)
      carry, _ = cells(self.space, channels, self.ghost, train, spec.depthwise_impl,
                       self.arch, self.execution, name=f'stack_{s}')(carry, masks)
    y = nn.relu(BatchNorm(not self.ghost, name='head_bn')(carry[1], train))
    return nn.Dense(spec.num_classes, name='classifier')(jnp.mean(y, axis=(-3, -2)))
