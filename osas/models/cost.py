"""Analytic parameter count and FLOPs of a stand-alone model (fast enough per candidate).

`cost` asks the arch's space (`space.cost`), which calls its function here.

FLOPs are counted as NAS papers count them: multiply-adds of the convolutions and the
classifier for one image; pooling, batch norm, ReLU and sums are not counted.
Parameters are the trainable ones (BN running averages excluded). Tests check both
against the real model's variables and a hand count.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

_SEP_KERNEL = {'sep3x3': 3, 'sep5x5': 5, 'sep7x7': 7}
_NB201_KERNEL = {'nor_conv_1x1': 1, 'nor_conv_3x3': 3}  # Its other ops have no weights.


class Cost(NamedTuple):
  params: int
  flops: int


def _op_cost(op: str, channels: int, pixels: int) -> Cost:
  c = channels
  if op in _SEP_KERNEL:  # Two units of BN, depthwise k x k, pointwise 1 x 1.
    k = _SEP_KERNEL[op]
    return Cost(2 * (2 * c + k * k * c + c * c), 2 * pixels * (k * k * c + c * c))
  if op == 'conv1x7_7x1':  # BN, then 1x7 and 7x1 convolutions.
    return Cost(2 * c + 14 * c * c, 14 * pixels * c * c)
  if op in ('identity', 'max_pool', 'avg_pool'):
    return Cost(0, 0)
  raise ValueError(f'no cost model for op {op!r}')


def _add(*costs: Cost) -> Cost:
  return Cost(sum(c.params for c in costs), sum(c.flops for c in costs))


def _conv(k: int, cin: int, cout: int, pixels: int, bn: int = 0) -> Cost:
  """A bias-free k x k convolution, plus `bn` channels of batch norm (2 parameters each)."""
  return Cost(k * k * cin * cout + 2 * bn, pixels * k * k * cin * cout)


def _stem(spec, width: int, height: int, image_width: int,
          channels: int) -> tuple[Cost, tuple[int, int]]:
  """The stem's cost and the (height, width) the cells see."""
  if spec.stem == 'cifar':
    return _conv(3, channels, width, height * image_width, bn=width), (height, image_width)
  half = math.ceil(height / 2), math.ceil(image_width / 2)
  quarter = math.ceil(half[0] / 2), math.ceil(half[1] / 2)
  cost = _add(_conv(3, channels, width // 2, half[0] * half[1], bn=width // 2),
              _conv(3, width // 2, width, quarter[0] * quarter[1], bn=width))
  return cost, quarter


def _stack(cell: Cost, spec) -> Cost:
  """`spec.cells_per_stack` copies of a cell."""
  return Cost(cell.params * spec.cells_per_stack, cell.flops * spec.cells_per_stack)


def _head(width: int, spec) -> Cost:
  """BN of the last features and the classifier (with bias)."""
  return Cost(2 * width + width * spec.num_classes + spec.num_classes,
              width * spec.num_classes)


def cost(space, spec, arch: Any, image_shape: tuple[int, int, int]) -> Cost:
  """Parameters and FLOPs of `Standalone(arch, space, spec)` on images of `image_shape`."""
  return space.cost(spec, arch, image_shape)


def bender2018(space, spec, arch: Any, image_shape: tuple[int, int, int]) -> Cost:
  """`cost` in the bender2018 space."""
  height, width, channels = image_shape
  cell_width = space.num_blocks * spec.filters
  total, (height, width) = _stem(spec, cell_width, height, width, channels)
  for s in range(spec.num_stacks):
    c = spec.stack_filters(s)
    if s:
      height, width = height // 2, width // 2
      reduce = _conv(1, cell_width, space.num_blocks * c, height * width, bn=cell_width)
      total = _add(total, reduce, reduce)
    cell_width = space.num_blocks * c
    pixels = height * width
    cell = []
    for block in arch.blocks:
      for j in block.inputs:
        w = cell_width if j < space.num_cell_inputs else c
        cell.append(_conv(1, w, c, pixels, bn=w))
      cell.extend(_op_cost(op, c, pixels) for op in block.ops)
    total = _add(total, _stack(_add(*cell), spec))
  return _add(total, _head(cell_width, spec))


def nasbench201(space, spec, arch: Any, image_shape: tuple[int, int, int]) -> Cost:
  """`cost` in the nasbench201 space: ReLU-Conv-BN ops, residual reduction blocks."""
  del space  # An arch's edges say it all.
  height, width, channels = image_shape
  total, (height, width) = _stem(spec, spec.filters, height, width, channels)
  c = spec.filters
  for s in range(spec.num_stacks):
    c_in, c = c, spec.stack_filters(s)
    if s:  # conv_a (3x3, stride 2), conv_b (3x3), shortcut (avg pool, 1x1 conv, no BN).
      height, width = height // 2, width // 2
      pixels = height * width
      total = _add(total, _conv(3, c_in, c, pixels, bn=c), _conv(3, c, c, pixels, bn=c),
                   _conv(1, c_in, c, pixels))
    cell = [_conv(_NB201_KERNEL[op], c, c, height * width, bn=c)
            for op in arch.ops if op in _NB201_KERNEL]
    total = _add(total, _stack(_add(*cell), spec))
  return _add(total, _head(c, spec))
