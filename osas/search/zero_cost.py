"""Zero-cost scores at initialisation: synflow, NASWOT, jacob_cov, snip, grad_norm and MeCo.

Each is computed from one batch on an untrained network, as its paper defines it, from a
function `apply(params, images) -> logits` (batch norm on the batch's own statistics,
as the reference implementations run it in training mode). On the supernet a
candidate's mask zeroes its unused paths exactly, so their weights get zero gradients
and contribute nothing; NASWOT and MeCo weigh each ReLU by whether its path is used.
Every score then equals that of the candidate's stand-alone model with the same weights
(tested). Larger is better for all six.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from osas.models.norm import BatchNorm
from osas.train import common

SCORES = ('synflow', 'naswot', 'jacob_cov', 'snip', 'grad_norm', 'meco')
Apply = Callable[[Any, jax.Array], jax.Array]  # (params, images) -> logits


def _weights(tree: Any) -> list[tuple[tuple[str, ...], jax.Array]]:
  """(path, leaf) of every convolution and dense kernel: the layers the papers sum over."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [(common.path_names(p), x) for p, x in leaves if common.is_weight(common.path_names(p))]


def _layers(path: tuple[str, ...], leaf: jax.Array) -> jax.Array:
  """The leaf as [layers, ...]: cells under `nn.scan` stack their kernels on axis 0."""
  return leaf if any(p.startswith('stack_') for p in path) else leaf[None]


def loss_grads(apply: Apply, params, images, labels) -> Any:
  """Gradients of the batch's mean cross-entropy: what grad_norm and snip are made of."""
  return jax.grad(lambda p: common.cross_entropy(apply(p, images), labels))(params)


def grad_norm(grads) -> jax.Array:
  """Sum over layers of the L2 norm of the loss gradient of the layer's weights.

  Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.
  """
  total = jnp.zeros((), jnp.float32)
  for path, g in _weights(grads):
    g = _layers(path, g)
    total += jnp.sum(jnp.sqrt(jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=-1)))
  return total


def snip(params, grads) -> jax.Array:
  """Sum of |dL/dw * w| over all weights: connection sensitivity.

  Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR
  2019, summed over the network as in Abdelfattah et al. 2021.
  """
  weights = dict(_weights(params))
  return sum(jnp.sum(jnp.abs(g * weights[path])) for path, g in _weights(grads))


def _no_norm(next_fn, args, kwargs, context):
  """Skips batch norm: synflow is defined on the network without it."""
  if isinstance(context.module, BatchNorm) and context.method_name == '__call__':
    return args[0]
  return next_fn(*args, **kwargs)


def synflow(apply: Apply, params, image_shape: tuple[int, ...]) -> jax.Array:
  """Log of the sum of w * dR/dw over the weights: synaptic flow.

  Every parameter is made positive, R is the logits' sum for an all-ones image, and batch
  norm is left out.

  Tanaka et al., "Pruning neural networks without any data by iteratively conserving
  synaptic flow", NeurIPS 2020; as a NAS score, Abdelfattah et al. 2021 (who also drop BN).
  Returned as log(synflow): the product over layers overflows float32 in deep networks.
  """
  ones = jnp.ones((1, *image_shape), jnp.float32)

  def total(p):
    with nn.intercept_methods(_no_norm):
      return jnp.sum(apply(p, ones))

  positive = jax.tree.map(jnp.abs, params)
  grads = jax.grad(total)(positive)
  weights = dict(_weights(positive))
  value = sum(jnp.sum(g * weights[path]) for path, g in _weights(grads))
  return jnp.log(value)


def jacob_cov(apply: Apply, params, images) -> jax.Array:
  """-sum(log(v + k) + 1 / (v + k)) over the eigenvalues v of the Jacobians' correlations.

  The Jacobians are the per-example input gradients of the summed logits; k = 1e-5.

  Mellor et al., "Neural Architecture Search without Training" (arXiv v1, 2020), as
  implemented by Abdelfattah et al. 2021.
  """
  jacobians = jax.grad(lambda x: jnp.sum(apply(params, x)))(images)
  flat = jacobians.reshape(images.shape[0], -1)
  flat = flat - flat.mean(-1, keepdims=True)
  flat = flat / jnp.sqrt(jnp.sum(jnp.square(flat), -1, keepdims=True))
  v = jnp.linalg.eigvalsh(jnp.matmul(flat, flat.T, precision=jax.lax.Precision.HIGHEST))
  k = 1e-5
  return -jnp.sum(jnp.log(v + k) + 1.0 / (v + k))


def naswot(intermediates: Any, weight_fn: Callable[[tuple[str, ...]], Any]) -> jax.Array:
  """log|K|, K the sum over ReLUs of their code kernels (osas.models.ops.ReLU).

  Each ReLU is weighted by weight_fn(path): 1 where its path is used, 0 where it is dropped.

  Mellor et al., "Neural Architecture Search without Training", ICML 2021.
  """
  kernel = 0.0
  for path, k in _sown(intermediates, 'naswot'):
    kernel = kernel + weight_fn(path) * k.reshape(-1, *k.shape[-2:]).sum(0)
  return jnp.linalg.slogdet(kernel)[1]


def meco(intermediates: Any, weight_fn: Callable[[tuple[str, ...]], Any]) -> jax.Array:
  """Sum over ReLUs of the smallest eigenvalue of their input channels' correlation.

  On the first example of the batch (osas.models.ops.min_channel_correlation), each ReLU
  weighted by weight_fn(path) as in `naswot`. Two departures from the reference code:
  it hooks every module's output, here the feature maps are those entering each ReLU
  (in pre-activation cells, ReLU-conv-BN, every node's and the stem's outputs, once per
  op that reads them); and it runs one image, so batch norm sees that image's statistics,
  here the zero-cost batch's (config.search.zero_cost_batch_size).

  Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
  Eigenvalue of Correlation", NeurIPS 2023.
  """
  total = jnp.zeros((), jnp.float32)
  for path, v in _sown(intermediates, 'meco'):
    total += weight_fn(path) * jnp.sum(v)  # Cells under nn.scan: one value per cell.
  return total


def _sown(intermediates: Any, name: str) -> list[tuple[tuple[str, ...], jax.Array]]:
  """(path, value) of every value the ReLUs sowed under `name` (the key before sow's index)."""
  leaves = jax.tree_util.tree_flatten_with_path(intermediates)[0]
  paths = ((common.path_names(p), v) for p, v in leaves)
  return [(path, v) for path, v in paths if len(path) > 1 and path[-2] == name]


def scores(
    names, apply: Apply, kernels: Callable[[Any, jax.Array], Any], weight_fn, params, images, labels
) -> dict[str, jax.Array]:
  """The scores in `names` of one network.

  `kernels(params, images)` gives the 'intermediates' its ReLUs sow, `weight_fn(path)`
  whether each ReLU's path is used.
  """
  out = {}
  if 'grad_norm' in names or 'snip' in names:
    grads = loss_grads(apply, params, images, labels)
    if 'grad_norm' in names:
      out['grad_norm'] = grad_norm(grads)
    if 'snip' in names:
      out['snip'] = snip(params, grads)
  if 'synflow' in names:
    out['synflow'] = synflow(apply, params, images.shape[1:])
  if 'jacob_cov' in names:
    out['jacob_cov'] = jacob_cov(apply, params, images)
  if 'naswot' in names or 'meco' in names:
    sown = kernels(params, images)
    for name, fn in (('naswot', naswot), ('meco', meco)):
      if name in names:
        out[name] = fn(sown, weight_fn)
  return out
