"""Times the one-shot training step against an unmasked step and against the forward pass.

  PYTHONPATH=. python benchmarks/train_overhead.py [--batch=256 --size=32 --filters=8
      --stacks=3 --cells_per_stack=1 --ghost=32 --repeats=7 --profile]

Prints a markdown table of median seconds per call and of lower+compile seconds (and the
supernet's initialisation time):
  * 'one-shot step': `osas.train.supernet.train_step` (masks drawn in the step, ghost BN,
    usage-weighted L2, SGD with Nesterov momentum);
  * 'all-on step': the same supernet with every path on and no masks (`masks=None`),
    plain L2, the same optimiser; the one-shot step's overhead is their ratio;
  * 'forward': `Supernet.apply` with the one-shot step's kind of masks, jitted.
With --profile, also where the one-shot step's and the forward's time goes, per HLO op
(benchmarks/profiling.py).
"""

import functools
import statistics
import time
from typing import Any, Callable

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import profiling
from benchmarks import steps
from osas import parallel
from osas import samplers
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models.initialize import init_variables
from osas.space import SearchSpace
from osas.train import common

_BATCH = flags.DEFINE_integer('batch', 256, 'Images per training step.')
_SIZE = flags.DEFINE_integer('size', 32, 'Image height = width.')
_FILTERS = flags.DEFINE_integer('filters', 8, 'F: width of the first stack.')
_STACKS = flags.DEFINE_integer('stacks', 3, 'Stacks of cells.')
_CELLS = flags.DEFINE_integer('cells_per_stack', 1, 'Cells per stack.')
_GHOST = flags.DEFINE_integer('ghost', 32, 'Ghost batch size.')
_CLASSES = flags.DEFINE_integer('classes', 10, 'Classes of the classifier.')
_IMPL = flags.DEFINE_string('impl', 'auto', "config.model.kernels: 'auto', 'cpu', 'native'.")
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed calls per measurement (after warm-up).')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls before timing.')
_PROFILE = flags.DEFINE_bool(
    'profile', False, 'Also print the per-HLO-op breakdown of the one-shot step and forward.'
)


def all_on_step(
    state: common.TrainState, batch: dict[str, jax.Array], *, model: Supernet, tx, section
) -> tuple[common.TrainState, Any]:
  """The reference: train_step without masks (every path on, ungated) and with plain L2."""
  num_ghosts = section.batch_size // section.ghost_batch_size

  def loss_fn(params):
    logits = model.apply({'params': params}, batch['image'], None, num_ghosts=num_ghosts)
    loss = common.cross_entropy(logits, batch['label'])
    l2 = common.l2(params)
    return loss + 0.5 * section.weight_decay * l2, (logits, loss, l2)

  grads, (logits, loss, l2) = jax.grad(loss_fn, has_aux=True)(state.params)
  metrics = common.TrainMetrics.single_from_model_output(
      logits=logits, labels=batch['label'], loss=loss, l2=l2
  )
  return common.apply_gradients(state, grads, tx), metrics


def _compile(fn: Callable, *args) -> tuple[Callable, float]:
  start = time.perf_counter()
  compiled = fn.lower(*args).compile()
  return compiled, time.perf_counter() - start


def _time_step(step: Callable, state, batch) -> float:
  """Median seconds of `step`, threading the (donated) state through the calls."""
  times = []
  for i in range(_WARMUP.value + _REPEATS.value):
    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - start)
  return statistics.median(times)


def _time_call(fn: Callable, *args) -> float:
  times = []
  for i in range(_WARMUP.value + _REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv):
  del argv
  batch_size, ghost = _BATCH.value, _GHOST.value
  space = SearchSpace()
  spec = ModelSpec(
      num_classes=_CLASSES.value,
      filters=_FILTERS.value,
      num_stacks=_STACKS.value,
      cells_per_stack=_CELLS.value,
      kernels=_IMPL.value,
  )
  model = Supernet(space, spec)
  # lr_reference_batch_size stays the default's: the rate does not change the timing.
  section = steps.section(batch_size=batch_size, ghost_batch_size=ghost, execution='mask')
  mesh = parallel.make_mesh()
  parallel.check_batch(batch_size, ghost, mesh, '--batch/--ghost')
  sampler = samplers.get_sampler(section.sampler)
  tx = common.optimizer(section, 'config.supernet')

  rng = np.random.default_rng(0)
  batch = {
      'image': jnp.asarray(rng.normal(size=(batch_size, _SIZE.value, _SIZE.value, 3)), jnp.float32),
      'label': jnp.asarray(rng.integers(0, _CLASSES.value, batch_size), jnp.int32),
  }
  image = np.zeros((ghost, _SIZE.value, _SIZE.value, 3), np.float32)
  init_start = time.perf_counter()
  params = init_variables(
      model, jax.random.key(0), image, jax.tree.map(lambda x: x[None], space.all_on())
  )['params']
  jax.block_until_ready(params)
  init_s = time.perf_counter() - init_start
  new_state = lambda: steps.fresh_state(params, tx)
  num_ghosts = batch_size // ghost
  masks = sampler(jax.random.key(3), space, num_ghosts, 1.0, section)

  one_shot = steps.jitted_step(model, tx, section, mesh)
  all_on = jax.jit(
      functools.partial(all_on_step, model=model, tx=tx, section=section), donate_argnums=0
  )
  forward = jax.jit(lambda p, x, m: model.apply({'params': p}, x, m))

  rows = []
  one_shot, one_shot_compile = _compile(one_shot, new_state(), batch)
  one_shot_s = _time_step(one_shot, new_state(), batch)
  all_on, all_on_compile = _compile(all_on, new_state(), batch)
  all_on_s = _time_step(all_on, new_state(), batch)
  forward, forward_compile = _compile(forward, params, batch['image'], masks)
  forward_s = _time_call(forward, params, batch['image'], masks)
  rows.append(('one-shot step (train_step)', one_shot_s, one_shot_compile))
  rows.append(('all-on step (masks=None, plain L2)', all_on_s, all_on_compile))
  rows.append(('forward (Supernet.apply, masks)', forward_s, forward_compile))

  num_params = sum(x.size for x in jax.tree.leaves(params))
  print(
      f'jax {jax.__version__}, backend {jax.default_backend()} '
      f'({jax.device_count()} device(s)); batch {batch_size} of {_SIZE.value}x{_SIZE.value}x3, '
      f'ghost batch {ghost}, F={spec.filters}, {spec.num_stacks} stacks x '
      f'{spec.cells_per_stack} cells = {spec.num_stacks * spec.cells_per_stack} cells, '
      f'kernels {spec.kernels}, {num_params:,} parameters; median of '
      f'{_REPEATS.value} after {_WARMUP.value} warm-up calls\n'
  )
  print('| measurement | median s/call | lower+compile s |')
  print('|---|---:|---:|')
  for name, seconds, compile_s in rows:
    print(f'| {name} | {seconds:.3f} | {compile_s:.1f} |')
  print(f'| supernet init (eval_shape + initialisers) | | {init_s:.1f} |')
  print(f'| one-shot step / all-on step (target <= 1.15) | {one_shot_s / all_on_s:.2f} | |')
  print(f'| one-shot step / forward (target <= 4) | {one_shot_s / forward_s:.2f} | |')
  if _PROFILE.value:
    holder = [new_state()]  # The step donates its state: thread it through the calls.

    def step():
      holder[0], metrics = one_shot(holder[0], batch)
      return metrics

    profiling.print_breakdown('one-shot step', profiling.breakdown(one_shot, step))
    profiling.print_breakdown(
        'forward', profiling.breakdown(forward, lambda: forward(params, batch['image'], masks))
    )


if __name__ == '__main__':
  app.run(main)
