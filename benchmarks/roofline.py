"""Each training and scoring program's achieved GFLOP/s against this machine's limits.

  PYTHONPATH=. python benchmarks/roofline.py [--spaces=bender2018,nasbench201 --repeats=3]

For each space, at the size of its throughput benchmark (bender2018: train_overhead.py's
F = 8, 3 cells, batch 256 / ghost 32, path dropout; nasbench201: supernet_throughput.py's
C = 16, 1 cell per stack, batch 128 / ghost 16, uniform_class), it times the supernet
training step (each execution), the masked forward and the evaluator's scoring of a chunk
(vmap and skip), and prints two rates per program:
  * 'XLA' GFLOP/s: the FLOPs XLA's cost analysis counts in the compiled program (every op
    it runs, masked paths included) per second. XLA counts a loop body once, so programs
    that loop over ghost batches or candidates (skip) get none;
  * 'useful' GFLOP/s: 2 x the stand-alone multiply-adds (osas.models.cost) of the paths
    the program serves per second: the sampled or scored cells, x3 for a training step
    (forward, input and weight gradients); for training, the mean over 64 sampler draws
    (path dropout: the all-on cell).
Both as a share of the sustained float32 matmul and convolution limits (benchmarks/machine.py).
The hand cross-check: bender2018's all-on forward counted by osas.models.cost against XLA.
"""

from __future__ import annotations

import dataclasses
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import machine
from benchmarks import steps
from configs import default
from osas import parallel
from osas import samplers
from osas import space as space_lib
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models import cost as cost_lib
from osas.models.initialize import init_variables
from osas.search.evaluator import Evaluator
from osas.train import common

_SPACES = flags.DEFINE_list('spaces', ['bender2018', 'nasbench201'], 'Spaces to measure.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed calls per program (after one warm-up).')
_CHUNK = flags.DEFINE_integer('chunk', 16, 'Candidates per evaluator call.')


@dataclasses.dataclass(frozen=True)
class Setup:
  """One space's benchmark size (the other benchmarks' defaults)."""

  space: str
  spec: ModelSpec
  batch: int
  ghost: int
  sampler: str
  executions: tuple[str, ...]


SETUPS = {
    'bender2018': Setup(
        'bender2018',
        ModelSpec(10, filters=8, cells_per_stack=1),
        256,
        32,
        'path_dropout',
        ('mask',),
    ),
    'nasbench201': Setup(
        'nasbench201',
        ModelSpec(10, filters=16, cells_per_stack=1),
        128,
        16,
        'uniform_class',
        ('mask', 'skip'),
    ),
}


def _xla_flops(compiled) -> float | None:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return (cost or {}).get('flops')


def _timed(fn, repeats: int) -> float:
  jax.block_until_ready(fn())
  start = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(fn())
  return (time.perf_counter() - start) / repeats


def _useful(space, spec, masks, images: int) -> float:
  """2 x the mean stand-alone multiply-adds of the masks' cells, times `images`.

  Path-dropout masks need not be cells (a block may lose every op): they count as the
  all-on cell, whose paths a path-dropout step computes (r = 0.1 keeps nearly all).
  """
  try:
    archs = space.decode_batch(masks)
  except ValueError:
    archs = [space.all_on_arch()]
  macs = [cost_lib.cost(space, spec, a, (32, 32, 3)).flops for a in archs]
  return 2 * float(np.mean(macs)) * images


def _section(setup: Setup, execution: str):
  return steps.section(
      sampler=setup.sampler,
      execution=execution,
      batch_size=setup.batch,
      ghost_batch_size=setup.ghost,
  )


def _train_rows(setup, space, params, batch, mesh):
  rows = []
  section = _section(setup, 'mask')
  sampler = samplers.get_sampler(setup.sampler)
  draws = sampler(jax.random.key(5), space, 64, 1.0, section)
  useful = 3 * _useful(space, setup.spec, draws, setup.batch)
  for execution in setup.executions:
    section = _section(setup, execution)
    model = Supernet(space, setup.spec, execution=execution)
    tx = common.optimizer(section, 'config.supernet')
    step = steps.jitted_step(model, tx, section, mesh)
    holder = [steps.fresh_state(params, tx)]
    compiled = step.lower(holder[0], batch).compile()

    def call(compiled=compiled):
      holder[0], metrics = compiled(holder[0], batch)
      return metrics

    flops = _xla_flops(compiled) if execution == 'mask' else None
    rows.append((f'train step ({execution})', _timed(call, _REPEATS.value), flops, useful))
  return rows


def _forward_row(setup, space, params, batch):
  model = Supernet(space, setup.spec)
  masks = samplers.get_sampler(setup.sampler)(
      jax.random.key(3), space, setup.batch // setup.ghost, 1.0, _section(setup, 'mask')
  )
  forward = jax.jit(lambda p, x, m: model.apply({'params': p}, x, m))
  compiled = forward.lower(params, batch['image'], masks).compile()
  useful = _useful(space, setup.spec, masks, setup.ghost) * (setup.batch // setup.ghost)
  seconds = _timed(lambda: compiled(params, batch['image'], masks), _REPEATS.value)
  return ('forward (masks)', seconds, _xla_flops(compiled), useful)


def _evaluator_rows(setup, space, params, batch, mesh):
  rows = []
  masks = space.sample_masks(jax.random.key(4), _CHUNK.value)
  useful = _useful(space, setup.spec, masks, setup.batch) * _CHUNK.value
  data = [(batch['image'], batch['label'])]
  for mode in ('vmap', 'skip'):
    evaluator = Evaluator(
        space, setup.spec, mesh, mode=mode, chunk_size=_CHUNK.value, ghost_batch_size=setup.ghost
    )
    score = lambda: evaluator.score(params, data, masks)['accuracy']
    seconds = _timed(score, _REPEATS.value)
    flops = None
    if mode == 'vmap':
      (fn,) = evaluator._compiled.values()  # pylint: disable=protected-access
      padded, _ = evaluator.pad(masks)
      flops = _xla_flops(fn.lower(params, *data[0], padded).compile())
    rows.append((f'score a chunk of {_CHUNK.value} ({mode})', seconds, flops, useful))
  return rows


def _cross_check(setup, space, params, batch) -> str:
  """bender2018's all-on forward: XLA's FLOPs against 2 x osas.models.cost's multiply-adds."""
  on = jax.tree.map(
      lambda x: jnp.broadcast_to(x, (setup.batch // setup.ghost, *x.shape)), space.all_on()
  )
  model = Supernet(space, setup.spec)
  compiled = (
      jax.jit(lambda p, x, m: model.apply({'params': p}, x, m))
      .lower(params, batch['image'], on)
      .compile()
  )
  hand = 2 * cost_lib.cost(space, setup.spec, space.all_on_arch(), (32, 32, 3)).flops * setup.batch
  xla = _xla_flops(compiled)
  return (
      f'hand check ({setup.space}, all-on forward, batch {setup.batch}): '
      f'osas.models.cost {hand / 1e9:.3f} GFLOP (convolutions and classifier), XLA '
      f'{xla / 1e9:.3f} GFLOP (also BN, ReLU, pools, sums, masks): XLA / hand {xla / hand:.3f}'
  )


def main(argv):
  del argv
  mesh = parallel.make_mesh()
  matmul, conv = machine.matmul_gflops(), machine.conv_gflops()
  print(
      f'jax {jax.__version__}, backend {jax.default_backend()} ({jax.device_count()} '
      f'device(s)); limits: float32 matmul 1024^3 {matmul:.1f} GFLOP/s, 3x3 convolution '
      f'128x32x32x64 -> 64 {conv:.1f} GFLOP/s; mean of {_REPEATS.value} calls after 1\n'
  )
  print(
      '| space | program | s/call | XLA GFLOP/s | useful GFLOP/s | useful / matmul | '
      'useful / conv |'
  )
  print('|---|---|---:|---:|---:|---:|---:|')
  checks = []
  for name in _SPACES.value:
    setup = SETUPS[name]
    space = space_lib.from_config(_space_config(name))
    rng = np.random.default_rng(0)
    batch = {
        'image': jnp.asarray(rng.normal(size=(setup.batch, 32, 32, 3)), jnp.float32),
        'label': jnp.asarray(rng.integers(0, 10, setup.batch), jnp.int32),
    }
    image = np.zeros((setup.ghost, 32, 32, 3), np.float32)
    params = init_variables(
        Supernet(space, setup.spec),
        jax.random.key(0),
        image,
        jax.tree.map(lambda x: x[None], space.all_on()),
    )['params']
    rows = _train_rows(setup, space, params, batch, mesh)
    rows.append(_forward_row(setup, space, params, batch))
    rows += _evaluator_rows(setup, space, params, batch, mesh)
    for program, seconds, flops, useful in rows:
      xla = '–' if flops is None else f'{flops / seconds / 1e9:.1f}'
      rate = useful / seconds / 1e9
      print(
          f'| {name} | {program} | {seconds:.3f} | {xla} | {rate:.1f} | '
          f'{rate / matmul:.1%} | {rate / conv:.1%} |'
      )
    if space.all_on_arch() is not None:
      checks.append(_cross_check(setup, space, params, batch))
  print()
  for line in checks:
    print(line)


def _space_config(name: str):
  config = default.get_config().space
  config.name = name
  return config


if __name__ == '__main__':
  app.run(main)
