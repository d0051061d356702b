"""The macro skeleton every space's network shares: ModelSpec, stems, cell stacks, head."""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models import kernels
from osas.models.norm import BatchNorm
from osas.models.ops import Conv
from osas.models.ops import ReLU
from osas.models.ops import conv_init

# Mixed precision for accelerators: bfloat16 activations halve their memory and traffic
# and run on the matrix units; weights stay float32 and are cast where they are used.
DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """Macro-architecture hyper-parameters (the config's `model` section)."""

  num_classes: int
  filters: int = 16  # F: width of a block's ops in the first stack; doubles per stack.
  num_stacks: int = 3
  cells_per_stack: int = 2
  stem: str = 'cifar'  # A key of STEMS.
  kernels: str = 'auto'  # 'auto' | 'cpu' | 'native' convs and pools (kernels.resolve_impl).
  dtype: str = 'float32'  # Activations' dtype (DTYPES); params, BN statistics and logits: float32.

  def __post_init__(self):
    for field in ('num_classes', 'filters', 'num_stacks', 'cells_per_stack'):
      if getattr(self, field) <= 0:
        raise ValueError(f'config.model.{field} must be positive, got {getattr(self, field)}')
    if self.stem not in STEMS:
      raise ValueError(f"config.model.stem: unknown {self.stem!r}; known: {', '.join(STEMS)}")
    kernels.resolve_impl(self.kernels)
    if self.dtype not in DTYPES:
      raise ValueError(f"config.model.dtype: unknown {self.dtype!r}; known: {', '.join(DTYPES)}")

  @classmethod
  def from_config(cls, model_config, num_classes: int) -> ModelSpec:
    fields = {f.name for f in dataclasses.fields(cls)} - {'num_classes'}
    return cls(
        num_classes=num_classes, **{k: v for k, v in dict(model_config).items() if k in fields}
    )

  def stack_filters(self, stack: int) -> int:
    return self.filters * 2**stack

  def activations(self, images: jax.Array) -> jax.Array:
    """Images in the activations' dtype: every layer after them computes in it."""
    return images.astype(DTYPES[self.dtype])


class CifarStem(nn.Module):
  """A 3x3 convolution and BN at full resolution."""

  features: int
  ghost: bool
  train: bool
  impl: str = 'auto'  # config.model.kernels.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = Conv(self.features, (3, 3), impl=self.impl, name='conv')(x)
    return BatchNorm(not self.ghost, name='bn')(x, self.train)


class ImageNetStem(nn.Module):
  """Two stride-2 3x3 convolutions: 224x224 images enter the cells at 56x56."""

  features: int
  ghost: bool
  train: bool
  impl: str = 'auto'  # Unused: XLA's strided convolutions, once per image, on any backend.

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    conv = functools.partial(
        nn.Conv, kernel_size=(3, 3), strides=2, use_bias=False, kernel_init=conv_init, dtype=x.dtype
    )
    x = conv(self.features // 2, name='conv_0')(x)
    x = ReLU()(BatchNorm(not self.ghost, name='bn_0')(x, self.train))
    x = conv(self.features, name='conv_1')(x)
    return BatchNorm(not self.ghost, name='bn_1')(x, self.train)


STEMS: dict[str, type[nn.Module]] = {'cifar': CifarStem, 'imagenet': ImageNetStem}


def stack(cell: type[nn.Module], length: int):
  """`length` cells of one shape under `nn.scan`: compile time does not grow with it.

  The cell is called as `cell(...)(carry, masks)` and returns `(carry, None)`; every
  cell gets the same masks.
  """
  return nn.scan(
      cell,
      variable_axes={'params': 0, 'batch_stats': 0, 'intermediates': 0},
      split_rngs={'params': True},
      in_axes=nn.broadcast,
      length=length,
  )


def head(x: jax.Array, num_classes: int, ghost: bool, train: bool) -> jax.Array:
  """BN-ReLU, global average pooling, classifier (as 'head_bn' and 'classifier' of the caller).

  The pooled features and the logits are float32 whatever the activations' dtype.
  """
  y = ReLU()(BatchNorm(not ghost, name='head_bn')(x, train))
  pooled = jnp.mean(y.astype(jnp.float32), axis=(-3, -2))
  return nn.Dense(num_classes, name='classifier')(pooled)
