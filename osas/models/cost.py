"""Analytic parameter count and FLOPs of a stand-alone model (fast enough per candidate).

`cost` finds the space's own count (`cost` in osas/models/<space>.py), built from the
pieces here.

FLOPs are counted as NAS papers count them: multiply-adds of the convolutions and the
classifier for one image; pooling, batch norm, ReLU and sums are not counted.
Parameters are the trainable ones (BN running averages excluded). Tests check both
against the real model's variables and a hand count.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from osas.models import registry


class Cost(NamedTuple):
  params: int
  flops: int


def add(*costs: Cost) -> Cost:
  return Cost(sum(c.params for c in costs), sum(c.flops for c in costs))


def conv(k: int, cin: int, cout: int, pixels: int, bn: int = 0) -> Cost:
  """A bias-free k x k convolution, plus `bn` channels of batch norm (2 parameters each)."""
  return Cost(k * k * cin * cout + 2 * bn, pixels * k * k * cin * cout)


def stem(
    spec, width: int, height: int, image_width: int, channels: int
) -> tuple[Cost, tuple[int, int]]:
  """The stem's cost and the (height, width) the cells see."""
  if spec.stem == 'cifar':
    return conv(3, channels, width, height * image_width, bn=width), (height, image_width)
  half = math.ceil(height / 2), math.ceil(image_width / 2)
  quarter = math.ceil(half[0] / 2), math.ceil(half[1] / 2)
  total = add(
      conv(3, channels, width // 2, half[0] * half[1], bn=width // 2),
      conv(3, width // 2, width, quarter[0] * quarter[1], bn=width),
  )
  return total, quarter


def stack(cell: Cost, spec) -> Cost:
  """`spec.cells_per_stack` copies of a cell."""
  return Cost(cell.params * spec.cells_per_stack, cell.flops * spec.cells_per_stack)


def head(width: int, spec) -> Cost:
  """BN of the last features and the classifier (with bias)."""
  return Cost(2 * width + width * spec.num_classes + spec.num_classes, width * spec.num_classes)


def cost(space, spec, arch: Any, image_shape: tuple[int, int, int]) -> Cost:
  """Parameters and FLOPs of `Standalone(arch, space, spec)` on images of `image_shape`."""
  return registry.of(space).cost(space, spec, arch, image_shape)
