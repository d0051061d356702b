"""Supernet training throughput: images/s of the real train_step, mask against skip execution.

  PYTHONPATH=. python benchmarks/supernet_throughput.py [--space=nasbench201
      --sampler=uniform_class --executions=mask,skip --weights=shared --batch=128
      --ghost=16 --filters=16 --cells_per_stack=1 --repeats=5]

Prints a markdown table of median seconds per step, training images/s and lower+compile
seconds for each `config.supernet.execution` and `config.supernet.weights` (shared, or
SMASH's 'hypernet' at config.hypernet's defaults), the ratio of each to the first, and, for
'mask' execution, the achieved GFLOP/s (XLA's cost analysis of the compiled step) beside
this machine's sustained float32 matmul GFLOP/s (the limit the convolutions, as matmuls,
could reach). XLA counts a loop body once, so the skip step (a scan over ghost batches)
gets no FLOP figure.
"""

import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from benchmarks import machine
from benchmarks import steps
from configs import default
from osas import parallel
from osas import space as space_lib
from osas.models import ModelSpec
from osas.models import hypernet
from osas.models.initialize import init_variables
from osas.train import common

_SPACE = flags.DEFINE_string('space', 'nasbench201', 'Search space (config.space.name).')
_SAMPLER = flags.DEFINE_string('sampler', 'uniform_class', 'config.supernet.sampler.')
_EXECUTIONS = flags.DEFINE_list('executions', ['mask', 'skip'], 'config.supernet.execution values.')
_WEIGHTS = flags.DEFINE_list('weights', ['shared'], 'config.supernet.weights values.')
_BATCH = flags.DEFINE_integer('batch', 128, 'Images per training step.')
_GHOST = flags.DEFINE_integer('ghost', 16, 'Ghost batch size.')
_SIZE = flags.DEFINE_integer('size', 32, 'Image height = width.')
_FILTERS = flags.DEFINE_integer('filters', 16, 'F (C in NAS-Bench-201): first stack width.')
_CELLS = flags.DEFINE_integer('cells_per_stack', 1, 'Cells per stack (N).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed steps per execution (after warm-up).')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps before timing.')
_MATMUL = flags.DEFINE_integer('matmul', 1024, 'Side of the square matmul timed for the limit.')


def _section(execution: str) -> ml_collections.ConfigDict:
  return steps.section(
      sampler=_SAMPLER.value,
      execution=execution,
      batch_size=_BATCH.value,
      ghost_batch_size=_GHOST.value,
      lr_reference_batch_size=_BATCH.value,
      num_steps=10_000,
  )


def _measure(
    execution: str, weights: str, space, spec, batch, mesh
) -> tuple[float, float, float | None]:
  """(median s/step, lower+compile s, XLA's FLOPs of one step) of train_step."""
  section = _section(execution)
  config = ml_collections.ConfigDict({'supernet': {'weights': weights}})
  config.hypernet = default.get_config().hypernet
  model = hypernet.make_supernet(space, spec, execution, hypernet.from_config(config))
  tx = common.optimizer(section, 'config.supernet')
  image = np.zeros((_GHOST.value,) + batch['image'].shape[1:], np.float32)
  params = init_variables(
      model, jax.random.key(0), image, jax.tree.map(lambda x: x[None], space.all_on())
  )['params']
  state = steps.fresh_state(params, tx)
  step = steps.jitted_step(model, tx, section, mesh)
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = (cost or {}).get('flops') if execution == 'mask' else None
  times = []
  for i in range(_WARMUP.value + _REPEATS.value):
    start = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - start)
  return statistics.median(times), compile_s, flops


def main(argv):
  del argv
  space = space_lib.from_config(ml_collections.ConfigDict({'name': _SPACE.value}))
  spec = ModelSpec(num_classes=10, filters=_FILTERS.value, cells_per_stack=_CELLS.value)
  mesh = parallel.make_mesh()
  rng = np.random.default_rng(0)
  batch = {
      'image': jnp.asarray(
          rng.normal(size=(_BATCH.value, _SIZE.value, _SIZE.value, 3)), jnp.float32
      ),
      'label': jnp.asarray(rng.integers(0, 10, _BATCH.value), jnp.int32),
  }
  limit = machine.matmul_gflops(_MATMUL.value)
  rows = [
      (f'{e}, {w}', *_measure(e, w, space, spec, batch, mesh))
      for e in _EXECUTIONS.value
      for w in _WEIGHTS.value
  ]
  print(
      f'jax {jax.__version__}, backend {jax.default_backend()} ({jax.device_count()} '
      f'device(s)); {_SPACE.value}, sampler {_SAMPLER.value}, batch {_BATCH.value} of '
      f'{_SIZE.value}x{_SIZE.value}x3 in ghost batches of {_GHOST.value}, F={spec.filters}, '
      f'{spec.num_stacks} stacks x {spec.cells_per_stack} cells; median of {_REPEATS.value} '
      f'steps after {_WARMUP.value}; float32 matmul {_MATMUL.value}^3: {limit:.1f} GFLOP/s\n'
  )
  print(
      '| execution, weights | s/step | images/s | vs first | lower+compile s | GFLOP/s (XLA count) '
      '| of matmul |'
  )
  print('|---|---:|---:|---:|---:|---:|---:|')
  first = rows[0][1]
  for name, seconds, compile_s, flops in rows:
    rate = '–' if flops is None else f'{flops / seconds / 1e9:.1f}'
    share = '–' if flops is None else f'{flops / seconds / 1e9 / limit:.0%}'
    print(
        f'| {name} | {seconds:.3f} | {_BATCH.value / seconds:.1f} | '
        f'{first / seconds:.2f}x | {compile_s:.1f} | {rate} | {share} |'
    )


if __name__ == '__main__':
  app.run(main)
