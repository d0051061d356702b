"""Fast variable initialisation: shapes from `jax.eval_shape`, values in one random draw.

`Module.init` runs the whole forward pass and one compiled initialiser per parameter;
for the supernet that takes about a minute on a CPU. Here tracing gives the shapes in
seconds and one truncated-normal draw, cut and scaled per parameter, gives the values:
convolution kernels (4-D, and 3-D depthwise) He-normal, dense kernels LeCun-normal
(both truncated at 2 sigma, as `nn.initializers.variance_scaling` draws them, fan-in
over every axis but the output one and the `nn.scan` stack axis), BN scale and
variance 1, biases and means 0. tests/test_initialize.py calls the modules' own
initialisers (ops.conv_init, nn.Dense's, BatchNorm's) for every variable of both spaces'
networks and checks that these rules give the same distribution.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import numpy as np

# The standard deviation of a unit normal truncated to [-2, 2] (flax uses the same).
_TRUNCATED_STD = 0.87962566103423978
_CONSTANTS = {
    ('params', 'scale'): 1.0,
    ('params', 'bias'): 0.0,
    ('batch_stats', 'mean'): 0.0,
    ('batch_stats', 'var'): 1.0,
}


def core_shape(path: tuple[str, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
  """A parameter's shape without the leading layer axis that nn.scan's stacks add."""
  return shape[1:] if any(p.startswith('stack_') for p in path) else shape


def kernel_std(path: tuple[str, ...], shape: tuple[int, ...]) -> float:
  """The initial standard deviation of a kernel, or ValueError for unknown parameters."""
  name = path[-1]
  core = core_shape(path, shape)
  if name == 'kernel' and len(core) == 2:
    return math.sqrt(1.0 / core[0]) / _TRUNCATED_STD
  if (name == 'kernel' and len(core) == 4) or (name.startswith('depthwise_') and len(core) == 3):
    return math.sqrt(2.0 / math.prod(core[:-1])) / _TRUNCATED_STD
  raise ValueError(
      f"no initialiser for params/{'/'.join(path)} of shape {shape}; "
      'add it to osas.models.initialize'
  )


def variable_shapes(module: nn.Module, *args, **kwargs) -> dict[str, Any]:
  """`jax.ShapeDtypeStruct`s of `module`'s variables for the given example inputs."""
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))


def init_variables(module: nn.Module, key: jax.Array, *args, **kwargs) -> dict[str, Any]:
  """Variables of `module` for the given example inputs, without running its forward."""
  shapes = variable_shapes(module, *args, **kwargs)
  flat, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  plan, total = [], 0
  for path, leaf in flat:
    collection, *names = tuple(p.key for p in path)
    names = tuple(names)
    if (collection, names[-1]) in _CONSTANTS:
      plan.append((None, _CONSTANTS[collection, names[-1]]))
    elif collection == 'params':
      plan.append((total, kernel_std(names, leaf.shape)))
      total += math.prod(leaf.shape)
    else:
      raise ValueError(f"no initialiser for {collection}/{'/'.join(names)}")
  draws = np.asarray(jax.random.truncated_normal(key, -2.0, 2.0, (max(total, 1),)))
  leaves = []
  for (offset, value), (_, leaf) in zip(plan, flat):
    size = math.prod(leaf.shape)
    if offset is None:
      array = np.full(leaf.shape, value, leaf.dtype)
    else:
      array = (draws[offset : offset + size] * value).reshape(leaf.shape).astype(leaf.dtype)
    leaves.append(jax.numpy.asarray(array))
  return jax.tree.unflatten(treedef, leaves)
