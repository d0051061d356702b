"""Stage `retrain`: stand-alone models trained from scratch, one directory per arch."""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from osas import checkpoints
from osas import compile_ahead
from osas import data
from osas import metric_logs
from osas import parallel
from osas import preemption
from osas import space as space_lib
from osas import workdir as workdir_lib
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models.cost import cost
from osas.models.initialize import init_variables
from osas.train import common
from osas.train.loop import Loop


def train_step(state: common.TrainState, batch, *, model: Standalone, tx, weight_decay: float):
  """One SGD step with ordinary BN (running averages updated) and L2 on all kernels."""

  def loss_fn(params):
    logits, updates = model.apply(
        {'params': params, 'batch_stats': state.batch_stats},
        batch['image'],
        train=True,
        mutable=['batch_stats'],
    )
    loss = common.cross_entropy(logits, batch['label'])
    l2 = common.l2(params)
    return loss + 0.5 * weight_decay * l2, (logits, loss, l2, updates['batch_stats'])

  grads, (logits, loss, l2, stats) = jax.grad(loss_fn, has_aux=True)(state.params)
  metrics = common.TrainMetrics.single_from_model_output(
      logits=logits, labels=batch['label'], loss=loss, l2=l2
  )
  return common.apply_gradients(state, grads, tx, batch_stats=stats), metrics


def eval_counts(state: common.TrainState, batch, *, model: Standalone) -> jax.Array:
  """[correct, valid] over the (global) batch: padded rows (valid 0) count in neither.

  Counted here, on the devices, so that only two numbers, not logits, reach the hosts.
  """
  logits = model.apply(
      {'params': state.params, 'batch_stats': state.batch_stats}, batch['image'], train=False
  )
  valid = batch['valid'] > 0
  correct = (jnp.argmax(logits, -1) == batch['label']) & valid
  return jnp.stack([jnp.sum(correct, dtype=jnp.int32), jnp.sum(valid, dtype=jnp.int32)])


def accuracy(state, split: data.DataSplit, counts, mesh) -> float:
  """Accuracy over the whole split; `counts` is the jitted `eval_counts`."""
  total = 0  # [correct, valid], summed on the devices: one transfer at the end.
  for batch in split.eval_batches(remainder='pad'):
    total = total + counts(state, parallel.global_batch(batch, mesh))
  correct, valid = np.asarray(total)
  return float(correct) / max(float(valid), 1.0)


class Splits(NamedTuple):
  """The data every retrained arch uses, opened once."""

  train: data.DataSplit  # Retraining batches, augmented.
  evals: dict[str, data.DataSplit]  # config.retrain.eval_splits, in evaluation batches.


def _splits(config) -> Splits:
  section = config.retrain
  evals = {
      name: data.get_split(
          config.data,
          name,
          global_batch_size=section.eval_batch_size,
          train=False,
          seed=config.seed,
      )
      for name in section.eval_splits
  }
  train = data.get_split(
      config.data, 'train', global_batch_size=section.batch_size, train=True, seed=config.seed
  )
  return Splits(train, evals)


@dataclasses.dataclass
class Program:
  """One arch's stand-alone model, initial state, and its compiled step and evaluation."""

  model: Standalone
  state: common.TrainState
  step: Any  # jitted train_step, compiled for the retraining batches.
  counts: Any  # jitted eval_counts, compiled for the evaluation batches.


def _initial_state(model: Standalone, tx, config, image_shape, mesh) -> common.TrainState:
  variables = init_variables(
      model, jax.random.key(config.seed), np.zeros((1,) + image_shape, np.float32)
  )
  state = common.TrainState(
      step=jnp.zeros((), jnp.int32),
      params=variables['params'],
      opt_state=tx.init(variables['params']),
      key=jax.random.key(config.seed),
      batch_stats=variables['batch_stats'],
  )
  return parallel.put(state, parallel.replicated(mesh))


def build(arch: space_lib.ArchBase, config, mesh, splits: Splits) -> Program:
  """The arch's model and state, its programs compiled for the batches of `splits`.

  `run` calls it on a background thread while the arch before trains: it must stay free
  of collectives, whose order across processes the training loop's would then race.
  """
  section, space = config.retrain, space_lib.from_config(config.space)
  model = Standalone(arch, space, _spec(config, splits.train.num_classes))
  tx = common.optimizer(section, 'config.retrain')
  state = _initial_state(model, tx, config, splits.train.image_shape, mesh)
  repl, batch_sharding = parallel.replicated(mesh), parallel.data_sharding(mesh)
  step = jax.jit(
      functools.partial(train_step, model=model, tx=tx, weight_decay=section.weight_decay),
      in_shardings=(repl, batch_sharding),
      out_shardings=(repl, repl),
      donate_argnums=0,
  )
  counts = jax.jit(
      functools.partial(eval_counts, model=model),
      in_shardings=(repl, batch_sharding),
      out_shardings=repl,
  )
  # Compiled now, for the batches the loop will pass: jit's cache keeps both programs.
  compile_ahead.compile_now(step, state, parallel.global_spec(splits.train.batch_spec(), mesh))
  if splits.evals:  # All of config.retrain.eval_batch_size: one program serves every split.
    spec = next(iter(splits.evals.values())).batch_spec(evaluation=True)
    compile_ahead.compile_now(counts, state, parallel.global_spec(spec, mesh))
  return Program(model, state, step, counts)


def finished(arch: space_lib.ArchBase, config, workdir: str) -> dict[str, Any] | None:
  """The arch's result.json where it was retrained for config.retrain.num_steps, else None."""
  result = workdir_lib.read_json(workdir, 'retrain', arch.id, 'result.json')
  return result if result and result.get('steps') == config.retrain.num_steps else None


def retrain_one(
    arch: space_lib.ArchBase, program: Program, config, workdir: str, mesh, splits: Splits
) -> dict[str, Any]:
  """Trains `arch` from scratch (resuming), evaluates it, writes result.json; returns it."""
  section, space = config.retrain, space_lib.from_config(config.space)
  started = time.time()
  train = splits.train
  run_dir = workdir_lib.path(workdir, 'retrain', arch.id)
  checkpointer = checkpoints.Checkpointer(
      workdir_lib.path(run_dir, 'checkpoints'), save_interval_steps=section.checkpoint_every
  )
  name = f'retrain/{arch.id}'
  with metric_logs.MetricWriter(workdir_lib.path(workdir, 'logs', 'retrain', arch.id)) as writer:
    loop = Loop(
        name=name,
        step_fn=program.step,
        num_steps=section.num_steps,
        batches=lambda s: (parallel.global_batch(b, mesh) for b in train.batches(s)),
        examples_per_step=section.batch_size,
        checkpointer=checkpointer,
        writer=writer,
        log_every=section.log_every,
        eval_every=section.eval_every,
        eval_fn=lambda s: {
            f'{k}_accuracy': accuracy(s, split, program.counts, mesh)
            for k, split in splits.evals.items()
        },
    )
    _, summary = loop.run(loop.restore(program.state))
  checkpointer.close()
  spec = program.model.spec
  params, flops = cost(space, spec, arch, train.image_shape)
  result = {
      'arch': arch.to_string(),
      'arch_id': arch.id,
      'params': params,
      'flops': flops,
      'filters': spec.filters,
      'steps': section.num_steps,
      # Training and evaluation; the compile ran ahead, beside the arch before.
      'wall_time_s': round(time.time() - started, 2),
      **{k.split('/')[-1]: v for k, v in summary.items()},
  }
  workdir_lib.write_json(workdir, 'retrain', arch.id, 'result.json', obj=result)
  logging.info('retrain: %s -> %s', arch, {k: v for k, v in result.items() if 'acc' in k})
  return result


def archs_to_retrain(config, workdir: str) -> list[space_lib.ArchBase]:
  """The archs named in config.retrain.archs, then those the search stage selected."""
  space = space_lib.from_config(config.space)
  archs = []
  for n, text in enumerate(config.retrain.archs):
    try:
      archs.append(space.parse(text))
    except ValueError as e:
      raise ValueError(f'config.retrain.archs[{n}]: {e}') from None
  selection = workdir_lib.read_json(workdir, 'search', 'selection.json') or {}
  for group in selection.get('groups', {}).values():
    archs.extend(space.parse(text, strict=False) for text in group)  # All-On has every op.
  return list(dict.fromkeys(archs))  # Unique, in order.


def _spec(config, num_classes: int) -> ModelSpec:
  """The model section, at the retraining width config.retrain.filters."""
  fields = {**dict(config.model), 'filters': config.retrain.filters}
  try:
    return ModelSpec.from_config(fields, num_classes)
  except ValueError as e:
    raise ValueError(str(e).replace('config.model.filters', 'config.retrain.filters')) from None


def check(config, mesh) -> None:
  """Raises ValueError naming the field when the stage's config cannot work."""
  section = config.retrain
  parallel.check_batch(section.batch_size, None, mesh, 'config.retrain.batch_size')
  parallel.check_batch(section.eval_batch_size, None, mesh, 'config.retrain.eval_batch_size')
  for field in ('num_steps', 'checkpoint_every', 'log_every'):
    if section[field] <= 0:
      raise ValueError(f'config.retrain.{field}={section[field]} must be positive')
  _spec(config, num_classes=1)
  common.learning_rate(section, 'config.retrain')
  space = space_lib.from_config(config.space)
  for n, text in enumerate(section.archs):
    try:
      space.parse(text)
    except ValueError as e:
      raise ValueError(f'config.retrain.archs[{n}]: {e}') from None
  for name in section.eval_splits:
    if name not in ('train', 'valid', 'test'):
      raise ValueError(f'config.retrain.eval_splits: unknown split {name!r}')


def run(config, workdir: str, mesh) -> None:
  archs = archs_to_retrain(config, workdir)
  if not archs:
    raise ValueError(
        'retrain: config.retrain.archs is empty and the workdir holds no '
        'search/selection.json: nothing to retrain'
    )
  pending = []
  for arch in archs:
    if finished(arch, config, workdir):
      logging.info('retrain: %s finished earlier; skipped', arch)
    else:
      pending.append(arch)
  if not pending:
    return
  splits = _splits(config)
  # Each arch's programs compile on a background thread while the one before it trains.
  building = compile_ahead.start(functools.partial(build, pending[0], config, mesh, splits))
  try:
    for n, arch in enumerate(pending):
      logging.info('retrain: arch %d of %d: %s', n + 1, len(pending), arch)
      program = building.result()
      if n + 1 < len(pending):
        following = functools.partial(build, pending[n + 1], config, mesh, splits)
        building = compile_ahead.start(following)
      retrain_one(arch, program, config, workdir, mesh, splits)
      if n + 1 < len(pending):
        preemption.stop_if_requested(f'retrain: {n + 1} of {len(pending)} archs done', n)
  except BaseException:
    if not building.done():  # The process exits once it finishes (compile_ahead.start).
      logging.warning("retrain: stopping; waiting for the next arch's compile to finish")
    raise
