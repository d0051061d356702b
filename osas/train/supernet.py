"""Stage `train_supernet`: the one-shot model with path dropout, ghost BN and usage-weighted L2."""

from __future__ import annotations

import functools
import json
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from osas import checkpoints
from osas import compile_ahead
from osas import data
from osas import metric_logs
from osas import models
from osas import parallel
from osas import samplers
from osas import space as space_lib
from osas import workdir as workdir_lib
from osas.controller import reinforce
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models import hypernet
from osas.models.initialize import init_variables
from osas.train import common
from osas.train import controller_phases
from osas.train.loop import Loop


class SupernetState(common.TrainState):
  """The supernet's training state, plus the moving average of its weights (if kept)."""

  ema_params: Any = None


class ControllerSupernetState(SupernetState):
  """With ENAS's controller (sampler 'controller'), checkpointed with the weights.

  A subclass, not a field of SupernetState: every other run's checkpoints keep the layout
  they had before ENAS existed, so workdirs trained earlier still restore.
  """

  controller: Any = None  # reinforce.ControllerState.


def is_bn_affine(path: tuple[str, ...]) -> bool:
  """A batch norm scale or shift (the classifier's and SMASH's hypernetwork's biases are not)."""
  return path[-1] in ('scale', 'bias') and path[0] != 'hypernet' and 'classifier' not in path


def weights(state: SupernetState) -> Any:
  """The weights the one-shot model is judged with: their moving average where kept."""
  return state.params if state.ema_params is None else state.ema_params


EXECUTIONS = ('auto', 'mask', 'skip')


def resolve_execution(execution: str, sampler: str) -> str:
  """config.supernet.execution: 'auto' is 'skip' on CPU with a sparse sampler, else 'mask'.

  One ghost batch after another suits a CPU, where skipping 4 of 5 ops per edge saves
  their time; accelerators run the whole batch's ops at once faster than G small ones.
  """
  if execution not in EXECUTIONS:
    raise ValueError(
        f'config.supernet.execution={execution!r}: expected one of {", ".join(EXECUTIONS)}'
    )
  if execution != 'auto':
    return execution
  return 'skip' if jax.default_backend() == 'cpu' and sampler in samplers.SPARSE else 'mask'


def _per_device(apply, sharding):
  """`apply(params, images, masks)` on each device's share of the batch (shard_map).

  For 'skip' execution: each device runs its own ghost batches one by one (Supernet's
  scan), where under plain jit the scan would gather every ghost batch onto every device.
  """
  axes = sharding.mesh.axis_names

  def local(params, images, masks):
    # Varying per device from the start, so the gradient's all-reduce comes once, here,
    # and not inside a lax.cond that devices take differently (a collective there hangs).
    params = jax.tree.map(lambda p: jax.lax.pcast(p, axes, to='varying'), params)
    return apply(params, images, masks)

  spec = sharding.spec
  return jax.shard_map(
      local,
      mesh=sharding.mesh,
      in_specs=(jax.sharding.PartitionSpec(), spec, spec),
      out_specs=spec,
  )


def train_step(
    state: SupernetState,
    batch: dict[str, jax.Array],
    *,
    model: Supernet,
    tx,
    sampler,
    section,
    masks_sharding,
) -> tuple[SupernetState, Any]:
  """One SGD step; each ghost batch draws its own mask from the state's key.

  With `section.bn_affine` off, batch norm scales and shifts get no gradient and stay at
  1 and 0; with `section.ema_decay` the state keeps an exponential moving average of the
  weights, its decay min(ema_decay, (1 + t) / (10 + t)) so early steps do not pin it to
  the initialisation.
  """
  num_ghosts = section.batch_size // section.ghost_batch_size
  ramp = jnp.minimum(state.step / section.num_steps, 1.0)
  key = jax.random.fold_in(state.key, state.step)
  masks = sampler(key, model.space, num_ghosts, ramp, section, state)
  masks = jax.lax.with_sharding_constraint(masks, masks_sharding)

  apply = lambda params, images, masks: model.apply({'params': params}, images, masks)
  if model.execution == 'skip':
    apply = _per_device(apply, masks_sharding)

  def loss_fn(params):
    logits = apply(params, batch['image'], masks)
    loss = common.cross_entropy(logits, batch['label'])
    usage = models.of(model.space).usage_fraction
    # SMASH's hypernetwork is not decayed, as in its reference code: decay would pull every
    # cell's generated kernels towards the shared ones.
    decay = lambda path: 0.0 if path[0] == 'hypernet' else usage(model.space, path, masks)
    l2 = common.l2(params, decay)
    return loss + 0.5 * section.weight_decay * l2, (logits, loss, l2)

  grads, (logits, loss, l2) = jax.grad(loss_fn, has_aux=True)(state.params)
  if not section.bn_affine:
    grads = jax.tree_util.tree_map_with_path(
        lambda p, g: jnp.zeros_like(g) if is_bn_affine(common.path_names(p)) else g, grads
    )
  metrics = common.TrainMetrics.single_from_model_output(
      logits=logits, labels=batch['label'], loss=loss, l2=l2
  )
  state = common.apply_gradients(state, grads, tx)
  if state.ema_params is not None:
    decay = jnp.minimum(section.ema_decay, (1.0 + state.step) / (10.0 + state.step))
    state = state.replace(
        ema_params=jax.tree.map(
            lambda e, p: decay * e + (1 - decay) * p, state.ema_params, state.params
        )
    )
  return state, metrics


def probe_correct(
    params: Any, images: jax.Array, labels: jax.Array, probes, *, model: Supernet, num_ghosts: int
) -> jax.Array:
  """Correct predictions [num_probes] of each probe arch over the whole (global) batch.

  Counted here, on the devices, so that only these counts, not logits, reach the hosts.
  """
  apply = lambda mask: model.apply({'params': params}, images, mask, num_ghosts=num_ghosts)
  logits = jax.vmap(apply)(probes)  # [num_probes, B, classes]
  return jnp.sum(jnp.argmax(logits, -1) == labels, axis=-1, dtype=jnp.int32)


def probe_archs(space: space_lib.Space, seed: int, num_random: int) -> tuple[list[str], Any]:
  """All paths on, then `num_random` fixed random cells: the archs watched while training."""
  random = space.sample_masks(jax.random.key(seed + 1), num_random)
  masks = jax.tree.map(
      lambda on, r: np.concatenate([on[None], np.asarray(r)]), space.all_on(), random
  )
  names = ['all_on'] + [f'random_{i}' for i in range(num_random)]
  return names, masks


def check(config, mesh) -> None:
  """Raises ValueError naming the field when the stage's config cannot work."""
  section = config.supernet
  parallel.check_batch(
      section.batch_size, section.ghost_batch_size, mesh, 'config.supernet.batch_size'
  )
  parallel.check_batch(
      section.eval_batch_size, section.ghost_batch_size, mesh, 'config.supernet.eval_batch_size'
  )
  if not 0 <= section.ema_decay < 1:
    raise ValueError(f'config.supernet.ema_decay={section.ema_decay} must be in [0, 1) (0: off)')
  if not 0 < section.path_dropout_rate < 1:
    raise ValueError(
        f'config.supernet.path_dropout_rate={section.path_dropout_rate} must be ' 'in (0, 1)'
    )
  for field in ('num_steps', 'checkpoint_every', 'log_every', 'keep_checkpoints'):
    if section[field] <= 0:
      raise ValueError(f'config.supernet.{field}={section[field]} must be positive')
  resolve_execution(section.execution, section.sampler)
  hypernet.from_config(config)
  space = space_lib.from_config(config.space)
  ModelSpec.from_config(config.model, num_classes=1)
  samplers.get_sampler(section.sampler, space, config.controller)
  if section.sampler == 'controller':
    reinforce.check(config.controller)
    if config.controller.shared_steps > section.num_steps:
      raise ValueError(
          f'config.controller.shared_steps={config.controller.shared_steps} must be <= '
          f'config.supernet.num_steps={section.num_steps}: else the controller never trains'
      )
    parallel.check_batch(
        config.controller.batch_size,
        section.ghost_batch_size,
        mesh,
        'config.controller.batch_size',
    )
  common.learning_rate(section, 'config.supernet')
  data.get_split(
      config.data, 'train', global_batch_size=section.batch_size, train=True, seed=config.seed
  )


def build(config, mesh) -> dict[str, Any]:
  """Model, data and jitted functions of the stage."""
  section = config.supernet
  space = space_lib.from_config(config.space)
  train = data.get_split(
      config.data, 'train', global_batch_size=section.batch_size, train=True, seed=config.seed
  )
  valid = data.get_split(
      config.data, 'valid', global_batch_size=section.eval_batch_size, train=False, seed=config.seed
  )
  model = hypernet.make_supernet(
      space,
      ModelSpec.from_config(config.model, train.num_classes),
      resolve_execution(section.execution, section.sampler),
      hypernet.from_config(config),
  )
  tx = common.optimizer(section, 'config.supernet')
  repl, batch_sharding = parallel.replicated(mesh), parallel.data_sharding(mesh)
  step = jax.jit(
      functools.partial(
          train_step,
          model=model,
          tx=tx,
          sampler=samplers.get_sampler(section.sampler, space, config.controller),
          section=section,
          masks_sharding=batch_sharding,
      ),
      in_shardings=(repl, batch_sharding),
      out_shardings=(repl, repl),
      donate_argnums=0,
  )
  probes = jax.jit(
      functools.partial(
          probe_correct, model=model, num_ghosts=section.eval_batch_size // section.ghost_batch_size
      ),
      in_shardings=(repl, batch_sharding, batch_sharding, repl),
      out_shardings=repl,
  )
  return dict(space=space, train=train, valid=valid, model=model, tx=tx, step=step, probes=probes)


def init_state(parts: dict[str, Any], config, mesh) -> SupernetState:
  image = np.zeros((config.supernet.ghost_batch_size,) + parts['train'].image_shape, np.float32)
  variables = init_variables(
      parts['model'],
      jax.random.key(config.seed),
      image,
      jax.tree.map(lambda x: x[None], parts['space'].all_on()),
  )
  params = variables['params']
  enas = config.supernet.sampler == 'controller'
  extra = {}
  if enas:
    extra['controller'] = controller_phases.init_state(
        parts['space'], config.controller, config.seed
    )
  state = (ControllerSupernetState if enas else SupernetState)(
      step=jnp.zeros((), jnp.int32),
      params=params,
      opt_state=parts['tx'].init(params),
      key=jax.random.key(config.seed + 2),
      # A copy: the step donates the state, and one buffer cannot be donated twice.
      ema_params=jax.tree.map(jnp.copy, params) if config.supernet.ema_decay else None,
      **extra,
  )
  return parallel.put(state, parallel.replicated(mesh))


def compile_probes_ahead(state, parts, config, mesh):
  """Starts compiling the probes' program (beside the first step's); its future."""
  spec = parallel.global_spec(parts['valid'].batch_spec(), mesh)
  _, masks = probe_archs(parts['space'], config.seed, config.supernet.num_probes)
  return compile_ahead.compile_later(
      parts['probes'], weights(state), spec['image'], spec['label'], masks
  )


def evaluate_probes(state, parts, config, mesh, compiling=None) -> dict[str, float]:
  """One-shot validation accuracy of the probe archs, with ghost BN as in training.

  `compiling`: compile_probes_ahead's future, waited for so that the program compiles once.
  """
  if compiling is not None:
    compiling.result()
  names, masks = probe_archs(parts['space'], config.seed, config.supernet.num_probes)
  correct, count = 0, 0  # Summed on the devices: one transfer at the end.
  for batch in parts['valid'].eval_batches(remainder='drop'):
    arrays = parallel.global_batch({'image': batch['image'], 'label': batch['label']}, mesh)
    correct = correct + parts['probes'](weights(state), arrays['image'], arrays['label'], masks)
    count += arrays['label'].shape[0]
  if not count:
    raise ValueError('config.supernet.eval_batch_size is larger than the validation split')
  accuracy = np.asarray(correct) / count
  scalars = {f'probe_{n}_accuracy': a for n, a in zip(names, accuracy)}
  scalars['probe_random_mean_accuracy'] = float(accuracy[1:].mean()) if len(names) > 1 else 0.0
  return scalars


def _weights(config) -> str:
  return config.supernet.get('weights', 'shared')


def check_done(config, workdir: str) -> dict[str, Any] | None:
  """DIR/supernet/done.json, or ValueError where it was trained with other weights.

  A supernet/ copied between workdirs escapes the saved config's check; this catches it.
  """
  done = workdir_lib.read_json(workdir, 'supernet', 'done.json')
  if done and done.get('weights', 'shared') != _weights(config):
    raise ValueError(
        f'config.supernet.weights={_weights(config)!r}, but {workdir}/supernet was trained '
        f"with {done.get('weights', 'shared')!r} weights; use a new --workdir"
    )
  return done


def run(config, workdir: str, mesh) -> None:
  """Trains the one-shot model in `workdir`/supernet, resuming from its checkpoints."""
  section = config.supernet
  done = check_done(config, workdir)
  if done and done.get('num_steps') == section.num_steps:
    logging.info('train_supernet: finished earlier (%d steps); skipped', section.num_steps)
    return
  parts = build(config, mesh)
  state = init_state(parts, config, mesh)
  checkpointer = checkpoints.Checkpointer(
      workdir_lib.path(workdir, 'supernet', 'checkpoints'),
      save_interval_steps=section.checkpoint_every,
      max_to_keep=section.keep_checkpoints,
  )
  # The restored state has the fresh one's shapes and shardings.
  compiling = compile_probes_ahead(state, parts, config, mesh)
  with metric_logs.MetricWriter(workdir_lib.path(workdir, 'logs')) as writer:
    phases = None
    if section.sampler == 'controller':
      phases = controller_phases.ControllerPhases(config, mesh, parts, writer, weights)
    loop = Loop(
        name='supernet',
        step_fn=parts['step'] if phases is None else phases.step,
        num_steps=section.num_steps,
        batches=lambda start: (
            parallel.global_batch(b, mesh) for b in parts['train'].batches(start)
        ),
        examples_per_step=section.batch_size,
        checkpointer=checkpointer,
        writer=writer,
        log_every=section.log_every,
        eval_every=section.eval_every,
        eval_fn=lambda s: evaluate_probes(s, parts, config, mesh, compiling),
    )
    state = loop.restore(state)
    _, summary = loop.run(state)
    summary.update(phases.last if phases else {})
  checkpointer.close()
  workdir_lib.write_json(
      workdir,
      'supernet',
      'done.json',
      obj={'num_steps': section.num_steps, 'weights': _weights(config), **summary},
  )
  logging.info('train_supernet: done; %s', json.dumps(summary))
