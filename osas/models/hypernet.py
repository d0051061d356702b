"""SMASH's weights (Brock et al., ICLR 2018): convolution kernels generated from the cell.

`config.supernet.weights = 'hypernet'` swaps the one-shot model's shared convolution
kernels for ones a hypernetwork computes from the candidate's encoding (its masks,
flattened), so every architecture gets its own weights: SMASH's "weights as a function
of the architecture", trained end to end on random architectures with the ordinary loss
and scored by validation accuracy with the generated weights.

The hypernetwork: an embedding of the encoding (a tanh layer and a linear one, scaled to
unit RMS) and one linear head per generated kernel, whose output is added to the kernel
stored in the supernet's own parameters (the head's bias). Every dense convolution
kernel is generated (`config.hypernet.kernels = 'dense'`: the 1x1s and the k x k ones,
most of the weights), or the 1x1s only (`'pointwise'`, SMASH's own choice); depthwise
kernels, batch norm and the classifier stay shared, learned freely as SMASH learns what
it does not generate. The heads' outputs are multiplied by each kernel's He standard
deviation (times `scale`), so at initialisation a generated kernel is the shared one plus
a deviation of the same size, and the hypernetwork keeps the usual initialisers
(osas.models.initialize). As in SMASH's reference code the hypernetwork gets no weight
decay (osas.train.supernet), which would pull every cell's kernels to the shared ones.

Where SMASH writes the architecture into a memory-bank tensor read by a convolutional
hypernetwork (a DenseNet) that outputs the whole kernels, here the encoding is the
space's masks (which inputs, which ops: what every registered space has) and a kernel is
a shared part plus a cell-dependent one of rank `width`: the hypernetwork has `width`
times as many parameters as the kernels it generates.

`HyperSupernet` is called like `Supernet` (init, apply, clone; the same masks with or
without a ghost axis): with a ghost axis each ghost batch runs with its own generated
weights (vmapped, or one after another for 'skip' execution), in the same compiled step.
Its parameters are the supernet's ('net') plus 'hypernet'.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models.initialize import core_shape
from osas.models.skeleton import ModelSpec
from osas.models.supernet import Supernet
from osas.models.supernet import ghost_axis

WEIGHTS = ('shared', 'hypernet')
# Which convolution kernels [k, k, in, out] are generated: every dense one (most of the
# weights), or only the 1x1s (SMASH's choice: its k x k convolutions are learned freely).
GENERATED = {
    'dense': lambda core: True,
    'pointwise': lambda core: core[:2] == (1, 1),
}


@dataclasses.dataclass(frozen=True)
class HypernetSpec:
  """The hypernetwork's size (the config's `hypernet` section)."""

  width: int = 16  # Units of the embedding, and rank of each kernel's generated part.
  scale: float = 1.0  # Generated part's initial RMS, in units of the kernel's He std.
  kernels: str = 'dense'  # Which are generated: a key of GENERATED.

  def __post_init__(self):
    if self.kernels not in GENERATED:
      raise ValueError(
          f'config.hypernet.kernels={self.kernels!r}: expected one of {", ".join(GENERATED)}'
      )
    if self.width <= 0:
      raise ValueError(f'config.hypernet.width={self.width} must be positive')
    if self.scale <= 0:
      raise ValueError(f'config.hypernet.scale={self.scale} must be positive')


def from_config(config) -> HypernetSpec | None:
  """The hypernetwork of config.supernet.weights = 'hypernet'; None for 'shared' weights."""
  weights = config.supernet.get('weights', 'shared')
  if weights not in WEIGHTS:
    raise ValueError(f'config.supernet.weights={weights!r}: expected one of {", ".join(WEIGHTS)}')
  if weights == 'shared':
    return None
  fields = dict(config.hypernet)
  known = {f.name for f in dataclasses.fields(HypernetSpec)}
  for name in fields:
    if name not in known:
      raise ValueError(f'config.hypernet: unknown field {name}; known: {", ".join(sorted(known))}')
  return HypernetSpec(**fields)


def encode(space: Any, masks: Any) -> jax.Array:
  """A cell's masks as one float vector [D], or [G, D] for masks with a ghost axis."""
  ghosts = ghost_axis(space, masks)
  lead = () if ghosts is None else (ghosts,)
  flat = [jnp.reshape(m, lead + (-1,)).astype(jnp.float32) for m in jax.tree.leaves(masks)]
  return jnp.concatenate(flat, axis=-1)


def is_generated(path: tuple[str, ...], shape: tuple[int, ...], kernels: str = 'dense') -> bool:
  """Whether the parameter at `path` is a kernel that `kernels` (GENERATED) generates."""
  core = core_shape(path, shape)
  return path[-1] == 'kernel' and len(core) == 4 and GENERATED[kernels](core)


def _he_std(path: tuple[str, ...], shape: tuple[int, ...]) -> float:
  return math.sqrt(2.0 / math.prod(core_shape(path, shape)[:-1]))


def _names(path) -> tuple[str, ...]:
  return tuple(p.key for p in path)


class Hypernet(nn.Module):
  """Encoding [..., D] -> the generated part of each kernel [..., *shape], in order."""

  shapes: tuple[tuple[int, ...], ...]
  multipliers: tuple[float, ...]  # Each kernel's He std times HypernetSpec.scale.
  width: int

  @nn.compact
  def __call__(self, code: jax.Array) -> list[jax.Array]:
    # tanh, not ReLU: a small embedding of ReLUs can die on a cell, leaving it no weights
    # of its own.
    h = nn.Dense(self.width, name='embed_1')(jnp.tanh(nn.Dense(self.width, name='embed_0')(code)))
    # Unit RMS: the heads' output scale is fixed by `multipliers`, whatever the encoding.
    h = h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + 1e-6)
    lead = code.shape[:-1]
    return [
        m * nn.Dense(math.prod(s), use_bias=False, name=f'head_{i}')(h).reshape(lead + s)
        for i, (s, m) in enumerate(zip(self.shapes, self.multipliers))
    ]


@dataclasses.dataclass(frozen=True)
class HyperSupernet:
  """The one-shot model with SMASH's generated kernels; used as `Supernet` is."""

  space: Any
  spec: ModelSpec
  hypernet: HypernetSpec
  execution: str = 'mask'  # As Supernet's.

  def clone(self, **updates) -> HyperSupernet:
    return dataclasses.replace(self, **updates)

  @property
  def base(self) -> Supernet:
    return Supernet(self.space, self.spec, self.execution)

  def _hypernet(self, net_params: Any) -> tuple[Hypernet, list[int]]:
    """The hypernetwork for these supernet parameters, and its kernels' leaf indices."""
    flat = jax.tree_util.tree_flatten_with_path(net_params)[0]
    index, shapes, multipliers = [], [], []
    for i, (path, leaf) in enumerate(flat):
      names, shape = _names(path), tuple(leaf.shape)
      if is_generated(names, shape, self.hypernet.kernels):
        index.append(i)
        shapes.append(shape)
        multipliers.append(_he_std(names, shape) * self.hypernet.scale)
    module = Hypernet(tuple(shapes), tuple(multipliers), self.hypernet.width)
    return module, index

  def init(self, rng: jax.Array, images: jax.Array, masks: Any, num_ghosts=None) -> dict:
    net_key, hyper_key = jax.random.split(rng)
    variables = self.base.init(net_key, images, masks, num_ghosts)
    hypernet, _ = self._hypernet(variables['params'])
    code = encode(self.space, self.space.all_on() if masks is None else masks)
    params = {**variables['params'], 'hypernet': hypernet.init(hyper_key, code)['params']}
    return {**variables, 'params': params}

  def generated(self, params: Any, masks: Any) -> tuple[Any, list[jax.Array], list[int]]:
    """(the supernet's parameters, generated kernels, their leaf indices) for `masks`.

    Masks with a ghost axis G give kernels [G, *shape]; the supernet's parameters are
    the shared ones (without 'hypernet'), the generated kernels not yet in them.
    """
    net = {k: v for k, v in params.items() if k != 'hypernet'}
    hypernet, index = self._hypernet(net)
    deltas = hypernet.apply({'params': params['hypernet']}, encode(self.space, masks))
    leaves = jax.tree.leaves(net)
    return net, [leaves[i] + d for i, d in zip(index, deltas)], index

  def weights_of(self, params: Any, masks: Any) -> Any:
    """The supernet's parameters with one cell's generated kernels in place (no ghost axis)."""
    net, kernels, index = self.generated(params, masks)
    return _with(net, kernels, index)

  def apply(self, variables, images, masks, num_ghosts=None, **kwargs):
    """Supernet.apply with generated kernels (each ghost batch its own, given a ghost axis)."""
    params = variables['params']
    others = {k: v for k, v in variables.items() if k != 'params'}
    code_masks = self.space.all_on() if masks is None else masks
    net, kernels, index = self.generated(params, code_masks)
    per_ghost = None if masks is None else ghost_axis(self.space, masks)
    if per_ghost is None:
      return self.base.apply(
          {'params': _with(net, kernels, index), **others}, images, masks, num_ghosts, **kwargs
      )
    if others or kwargs:
      raise ValueError('per-ghost generated weights: no collections besides params, no kwargs')
    if images.shape[0] % per_ghost:
      raise ValueError(
          f'batch of {images.shape[0]} images does not split into {per_ghost} ghost batches'
      )
    x = images.reshape(per_ghost, images.shape[0] // per_ghost, *images.shape[1:])

    def one(args):
      ghost_kernels, ghost_images, ghost_masks = args
      weights = _with(net, ghost_kernels, index)
      return self.base.apply({'params': weights}, ghost_images, ghost_masks, num_ghosts=1)

    # 'skip' keeps its lax.conds only outside vmap: one ghost batch after another.
    run = jax.vmap(one) if self.execution != 'skip' else lambda a: jax.lax.map(one, a)
    logits = run((kernels, x, masks))
    return logits.reshape(images.shape[0], -1)


def _with(net: Any, kernels: list[jax.Array], index: list[int]) -> Any:
  leaves, treedef = jax.tree.flatten(net)
  for i, kernel in zip(index, kernels):
    leaves[i] = kernel
  return jax.tree.unflatten(treedef, leaves)


def make_supernet(
    space: Any, spec: ModelSpec, execution: str = 'mask', hypernet: HypernetSpec | None = None
):
  """The one-shot model: shared weights (Supernet), or SMASH's generated ones."""
  if hypernet is None:
    return Supernet(space, spec, execution=execution)
  return HyperSupernet(space, spec, hypernet, execution=execution)
