"""Scores candidate masks with the one-shot model's shared weights, one compile for any number.

Two ways to run a chunk of M candidates on a batch, both inside one compiled program:
`vmap` batches the masked forward pass over the M masks (every op runs, masked); `skip`
maps over the candidates one after another (`lax.map`) and runs each path under a
`lax.cond` on its mask bit, so a candidate costs about its own stand-alone FLOPs. On
several devices the chunk is split across them (`shard_map` over the data axis) and
every device sees the whole batch. Batch norm uses ghost-batch statistics, as in training,
or each candidate's own, recalibrated on training images first (Single Path One-Shot's).
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import numpy as np

from osas import models
from osas import parallel
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models.hypernet import HypernetSpec
from osas.models.hypernet import make_supernet
from osas.search import memory
from osas.search import zero_cost

MODES = ('vmap', 'skip')
NO_BATCH = (
    'no complete evaluation batch: the validation split is smaller than ' 'config.search.batch_size'
)
# Measured in benchmarks/evaluator.py: on XLA's CPU backend skipping unused ops wins;
# accelerators run the wide vmapped batch faster than a sequence of small programs.
PLATFORM_MODE = {'cpu': 'skip'}


def resolve_mode(mode: str) -> str:
  if mode == 'auto':
    return PLATFORM_MODE.get(jax.default_backend(), 'vmap')
  if mode not in MODES:
    raise ValueError(f"config.search.evaluator: unknown {mode!r}; known: auto, {', '.join(MODES)}")
  return mode


def _log_probs(model: Supernet, params, images, mask, num_ghosts: int, stats=None) -> jax.Array:
  """`stats`: the candidate's recalibrated BN statistics; None: ghost-batch statistics."""
  variables = {'params': params} if stats is None else {'params': params, 'batch_stats': stats}
  return jax.nn.log_softmax(model.apply(variables, images, mask, num_ghosts=num_ghosts))


def _per_candidate(fn, mode: str, masks: Any) -> Any:
  """fn(mask) for every mask of the chunk: vectorised, or one after another."""
  return jax.vmap(fn)(masks) if mode == 'vmap' else jax.lax.map(fn, masks)


def _accuracy_and_loss(
    params, images, labels, masks, *, model, mode, num_ghosts, recalibrated=False
):
  """Per candidate: correct predictions and summed cross-entropy on the batch.

  With `recalibrated`, `masks` is (masks, their BN statistics from `_recalibrate`).
  """

  def one(candidate):
    mask, stats = candidate if recalibrated else (candidate, None)
    log_probs = _log_probs(model, params, images, mask, num_ghosts, stats)
    picked = jnp.take_along_axis(log_probs, labels[:, None], axis=-1)[:, 0]
    return jnp.sum(jnp.argmax(log_probs, -1) == labels), -jnp.sum(picked)

  return _per_candidate(one, mode, masks)


def _recalibrate(params, images, template, masks, *, model, mode, num_ghosts, ghost_batch_size):
  """Per candidate: every BN layer's mean and variance on `images`, for scoring with.

  The images go through in batches of num_ghosts ghost batches, in train mode: each ghost
  batch normalised by its own statistics, as the supernet was trained, so each layer sees
  what training showed it. A layer's statistics are its ghost batches' means and (biased)
  variances averaged (equal sizes): what SPOS's recalibration, PyTorch's cumulative
  running averages, computes (but for its n/(n-1) on variances); not pooled over all
  images at once, so memory stays one batch's however many images recalibrate.
  `template` holds zeros in their shapes (lax.cond's branches must write the same ones).
  """
  batches = images.reshape(-1, num_ghosts * ghost_batch_size, *images.shape[1:])

  def one(mask):
    def add(total, batch):
      variables = {'params': params, 'batch_stats': template}
      _, state = model.apply(variables, batch, mask, num_ghosts=num_ghosts, mutable=['batch_stats'])
      return jax.tree.map(jnp.add, total, state['batch_stats']), None

    total, _ = jax.lax.scan(add, template, batches)
    return jax.tree.map(lambda t: t / len(batches), total)

  return _per_candidate(one, mode, masks)


def symmetrized_kl(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
  """KL(p||q) + KL(q||p) = sum (p - q)(log p - log q), averaged over the leading axis."""
  return jnp.mean(jnp.sum((jnp.exp(log_p) - jnp.exp(log_q)) * (log_p - log_q), -1))


def _kl(params, images, reference, masks, *, model, mode, num_ghosts):
  """Per candidate: the symmetrized KL divergence to the reference's predictions."""
  one = lambda mask: symmetrized_kl(_log_probs(model, params, images, mask, num_ghosts), reference)
  return _per_candidate(one, mode, masks)


def _zero_cost(params, images, labels, masks, *, model, mode, num_ghosts, names, masked):
  """Per candidate: the zero-cost scores `names` on a freshly initialised supernet.

  Batch norm normalises the whole batch (one ghost batch), as the scores' papers do.
  NASWOT's ReLU codes come from `masked`, the supernet with masked execution: a path
  skipped under `lax.cond` could not hand them out.
  """
  del num_ghosts
  usage = models.of(model.space).usage_fraction

  def one(mask):
    apply = lambda p, x: model.apply({'params': p}, x, mask, num_ghosts=1)
    kernels = lambda p, x: masked.apply(
        {'params': p}, x, mask, num_ghosts=1, mutable=['intermediates']
    )[1]['intermediates']
    weight = lambda path: usage(model.space, path, jax.tree.map(lambda m: m[None], mask))
    return zero_cost.scores(names, apply, kernels, weight, params, images, labels)

  return _per_candidate(one, mode, masks)


class Evaluator:
  """Compiled scoring functions for one model, mesh, chunk size and batch shape."""

  def __init__(
      self,
      space,
      spec: ModelSpec,
      mesh,
      *,
      mode: str,
      chunk_size: int,
      ghost_batch_size: int,
      zero_cost_names=(),
      hypernet: HypernetSpec | None = None,
  ):
    self.space, self.mesh, self.mode = space, mesh, resolve_mode(mode)
    self.chunk_size, self.ghost_batch_size = chunk_size, ghost_batch_size
    devices = mesh.devices.size
    if chunk_size <= 0 or chunk_size % devices:
      raise ValueError(
          f'config.search.chunk_size={chunk_size} must be a positive multiple '
          f'of the {devices} devices'
      )
    execution = 'skip' if self.mode == 'skip' else 'mask'
    # Zero-cost scores judge the untrained shared supernet, whatever weights were trained.
    self.shared_model = Supernet(space, spec, execution=execution)
    self.model = make_supernet(space, spec, execution, hypernet)
    self.zero_cost_names = tuple(zero_cost_names)
    self._compiled = {}
    self._template = None  # Zeros shaped like every BN layer's statistics, once needed.

  def _function(self, name: str, fn, num_args: int, num_ghosts: int, **static):
    """Fn jitted with the chunk split over devices and everything else replicated.

    `static` are fn's further keyword arguments (`model` by default self.model), fixed for
    the program `name`.
    """
    key = (name, num_ghosts)
    if key not in self._compiled:
      static.setdefault('model', self.model)
      body = functools.partial(fn, mode=self.mode, num_ghosts=num_ghosts, **static)
      sharded = jax.shard_map(
          body,
          mesh=self.mesh,
          in_specs=(P(),) * num_args + (P(parallel.DATA),),
          out_specs=P(parallel.DATA),
          check_vma=False,
      )
      self._compiled[key] = jax.jit(sharded)
    return self._compiled[key]

  def _zero_cost_function(self):
    masked = self.shared_model.clone(execution='mask')
    return self._function(
        'zero_cost',
        _zero_cost,
        3,
        1,
        model=self.shared_model,
        names=self.zero_cost_names,
        masked=masked,
    )

  def _accuracy_function(self, batch_size: int, recalibrated: bool):
    if not recalibrated:
      return self._function('accuracy', _accuracy_and_loss, 3, self._ghosts(batch_size))
    return self._function(
        'accuracy_recalibrated',
        _accuracy_and_loss,
        3,
        self._ghosts(batch_size),
        recalibrated=True,
    )

  def _recalibrate_function(self, batch_size: int):
    return self._function(
        'recalibrate',
        _recalibrate,
        3,
        self._ghosts(batch_size),
        ghost_batch_size=self.ghost_batch_size,
    )

  def stats_template(self, params, image_shape) -> Any:
    """Zeros shaped like the BN statistics that recalibration writes (every layer's)."""
    if self._template is None:
      masked = self.model.clone(execution='mask')  # Every layer runs.
      images = jax.ShapeDtypeStruct((self.ghost_batch_size, *image_shape), jnp.float32)
      apply = lambda p, x: masked.apply(
          {'params': p}, x, self.space.all_on(), mutable=['batch_stats']
      )[1]['batch_stats']
      shapes = jax.eval_shape(apply, params, images)
      zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
      self._template = parallel.put(zeros, parallel.replicated(self.mesh))
    return self._template

  def recalibrate(self, params, images, batch_size: int, padded) -> Any:
    """The BN statistics of each candidate of a padded chunk on `images`, in batches.

    `images` [N * batch_size, H, W, C]; the statistics stay on the devices, split like
    the chunk, for `score` to use.
    """
    if len(images) % batch_size:
      raise ValueError(f'{len(images)} recalibration images are not batches of {batch_size}')
    template = self.stats_template(params, images.shape[1:])
    return self._recalibrate_function(batch_size)(params, images, template, padded)

  def _ghosts(self, batch_size: int) -> int:
    if batch_size % self.ghost_batch_size:
      raise ValueError(
          f'a batch of {batch_size} does not split into ghost batches of '
          f'{self.ghost_batch_size}'
      )
    return batch_size // self.ghost_batch_size

  def pad(self, masks: Any) -> tuple[Any, int]:
    """Pads a chunk to chunk_size (repeating its first mask), split over the devices.

    Returns the global masks and the number of real ones; every process passes the same.
    """
    n = jax.tree.leaves(masks)[0].shape[0]
    if n > self.chunk_size:
      raise ValueError(f'{n} masks in a chunk of {self.chunk_size}')
    index = np.concatenate([np.arange(n), np.zeros(self.chunk_size - n, int)])
    padded = jax.tree.map(lambda x: np.asarray(x)[index], masks)
    return parallel.put(padded, parallel.data_sharding(self.mesh)), n

  def reference(self, params, images) -> jax.Array:
    """Log-probabilities of the all-paths-on architecture: the KL score's reference."""
    on = parallel.put(self.space.all_on(), parallel.replicated(self.mesh))
    fn = jax.jit(functools.partial(_log_probs, self.model, num_ghosts=self._ghosts(len(images))))
    return fn(params, images, on)

  def memory_bytes(
      self,
      params,
      batch: tuple[Any, Any],
      kl_inputs=None,
      zero_cost_inputs=None,
      recalibration: tuple[Any, int] | None = None,
  ) -> int:
    """XLA's per-device estimate for scoring a chunk; compiles what `score` then reuses."""
    padded, _ = self.pad(self.space.sample_masks(jax.random.key(0), 1))
    images, labels = batch
    accuracy = self._accuracy_function(len(labels), recalibration is not None)
    candidates = padded
    programs = []
    if recalibration is not None:
      recal_images, batch_size = recalibration
      template = self.stats_template(params, recal_images.shape[1:])
      recalibrate = self._recalibrate_function(batch_size)
      programs.append(lambda: recalibrate.lower(params, recal_images, template, padded).compile())
      sharding = parallel.data_sharding(self.mesh)
      stats = jax.tree.map(
          lambda t: jax.ShapeDtypeStruct((self.chunk_size, *t.shape), t.dtype, sharding=sharding),
          template,
      )
      candidates = (padded, stats)
    programs.append(lambda: accuracy.lower(params, images, labels, candidates).compile())
    if kl_inputs is not None:
      kl = self._function('kl', _kl, 3, self._ghosts(len(kl_inputs[0])))
      programs.append(lambda: kl.lower(params, *kl_inputs, padded).compile())
    if zero_cost_inputs is not None and self.zero_cost_names:
      zc = self._zero_cost_function()
      programs.append(lambda: zc.lower(*zero_cost_inputs, padded).compile())
    return memory.needed_bytes(programs)

  def score(
      self,
      params,
      batches: Iterable[tuple[Any, Any]],
      masks: Any,
      kl_inputs: tuple[Any, Any] | None = None,
      zero_cost_inputs: tuple[Any, Any, Any] | None = None,
      recalibration: tuple[Any, int] | None = None,
  ) -> dict[str, np.ndarray]:
    """Accuracy, loss (and kl) per mask of a chunk, over all (images, labels) batches.

    And the zero-cost scores, from `zero_cost_inputs` (initial params, images, labels).
    With `recalibration` (training images, batch size) accuracy and loss use each
    candidate's BN statistics on those images (`recalibrate`); KL keeps ghost batches.
    """
    padded, n = self.pad(masks)
    candidates = padded
    if recalibration is not None:
      candidates = (padded, self.recalibrate(params, *recalibration, padded))
    correct = loss = 0.0
    count = 0
    for images, labels in batches:
      fn = self._accuracy_function(len(labels), recalibration is not None)
      c, l = fn(params, images, labels, candidates)
      correct, count = correct + parallel.to_host(c), count + len(labels)
      loss = loss + parallel.to_host(l)
    if not count:
      raise ValueError(NO_BATCH)
    out = {'accuracy': (correct / count)[:n], 'loss': (loss / count)[:n]}
    if kl_inputs is not None:
      images, reference = kl_inputs
      fn = self._function('kl', _kl, 3, self._ghosts(len(images)))
      out['kl'] = parallel.to_host(fn(params, images, reference, padded))[:n]
    if zero_cost_inputs is not None and self.zero_cost_names:
      fn = self._zero_cost_function()
      out.update({k: parallel.to_host(v)[:n] for k, v in fn(*zero_cost_inputs, padded).items()})
    return out

  def compilations(self) -> int:
    """How many programs were compiled so far (the tests count them)."""
    return sum(f._cache_size() for f in self._compiled.values())
