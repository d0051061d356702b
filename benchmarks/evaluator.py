"""Evaluator throughput in one run: vmap, skip, a Python loop, a fresh model per candidate.

    PYTHONPATH=. python benchmarks/evaluator.py [--candidates=256 --batch=128 ...]

Prints candidate-images per second for (a) the vmapped evaluator, (b) the supernet
forward with every path on and no masks at the same per-call batch, (c) a Python loop
calling one jitted single-mask function, (d) a freshly compiled `Standalone` per
candidate on 500 images (compile included: what tools that rebuild the model do), (e) the
skip evaluator; then the time and peak memory of scoring 4x the candidates.
"""

import argparse
import resource
import time

import jax
import jax.numpy as jnp

from osas import parallel
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models import Supernet
from osas.models import params_from_supernet
from osas.models.initialize import init_variables
from osas.search.evaluator import Evaluator
from osas.space import SearchSpace


def _timed(fn):
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--candidates', type=int, default=256)
  parser.add_argument('--chunk', type=int, default=16)
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--ghost', type=int, default=32)
  parser.add_argument('--image_size', type=int, default=32)
  parser.add_argument('--filters', type=int, default=8)
  parser.add_argument('--stacks', type=int, default=3)
  parser.add_argument('--cells', type=int, default=1)
  parser.add_argument('--fresh_models', type=int, default=4, help='(d) is slow: sample these')
  args = parser.parse_args()

  space = SearchSpace()
  spec = ModelSpec(
      num_classes=10, filters=args.filters, num_stacks=args.stacks, cells_per_stack=args.cells
  )
  mesh = parallel.make_mesh()
  images = jax.random.normal(jax.random.key(0), (args.batch, args.image_size, args.image_size, 3))
  labels = jnp.arange(args.batch) % 10
  ghosts = args.batch // args.ghost
  params = init_variables(
      Supernet(space, spec),
      jax.random.key(1),
      images[: args.ghost],
      jax.tree.map(lambda x: x[None], space.all_on()),
  )['params']
  masks = space.sample_masks(jax.random.key(2), 4 * args.candidates)
  chunks = [
      jax.tree.map(lambda x, i=i: x[i : i + args.chunk], masks)
      for i in range(0, args.candidates, args.chunk)
  ]
  work = args.candidates * args.batch  # Candidate-images per pass.
  rows = []

  def evaluator_rate(mode):
    evaluator = Evaluator(
        space, spec, mesh, mode=mode, chunk_size=args.chunk, ghost_batch_size=args.ghost
    )
    score = lambda chunk: evaluator.score(params, [(images, labels)], chunk)['accuracy']
    compile_s = _timed(lambda: score(chunks[0]))
    seconds = _timed(lambda: [score(c) for c in chunks])
    return evaluator, score, compile_s, work / seconds

  _, vmap_score, compile_s, vmap_rate = evaluator_rate('vmap')
  rows.append(('(a) vmap evaluator', vmap_rate, compile_s))
  forward = jax.jit(
      lambda p, x: Supernet(space, spec).apply({'params': p}, x, None, num_ghosts=ghosts)
  )
  compile_s = _timed(lambda: forward(params, images))
  seconds = _timed(lambda: [forward(params, images) for _ in range(args.candidates)])
  rows.append(('(b) forward, all paths on, no masks', work / seconds, compile_s))
  single = jax.jit(
      lambda p, x, m: Supernet(space, spec).apply({'params': p}, x, m, num_ghosts=ghosts)
  )
  one = lambda n: jax.tree.map(lambda x: x[n], masks)
  compile_s = _timed(lambda: single(params, images, one(0)))
  seconds = _timed(lambda: [single(params, images, one(n)) for n in range(args.candidates)])
  rows.append(('(c) Python loop, one jitted single-mask call each', work / seconds, compile_s))
  fresh_images = jax.random.normal(jax.random.key(3), (500,) + images.shape[1:])
  start = time.perf_counter()
  for arch in space.decode_batch(jax.tree.map(lambda x: x[: args.fresh_models], masks)):
    model = Standalone(arch, space, spec)
    variables = {
        'params': params_from_supernet(params, arch),
        'batch_stats': init_variables(model, jax.random.key(0), images[:1])['batch_stats'],
    }
    jax.block_until_ready(jax.jit(lambda v, x: model.apply(v, x))(variables, fresh_images))
  rows.append(
      (
          '(d) fresh compiled Standalone per candidate, 500 images',
          args.fresh_models * 500 / (time.perf_counter() - start),
          float('nan'),
      )
  )
  _, skip_score, compile_s, skip_rate = evaluator_rate('skip')
  rows.append(('(e) skip evaluator', skip_rate, compile_s))

  print(
      f'jax {jax.__version__} on {jax.default_backend()}; {args.candidates} candidates, '
      f'batch {args.batch} of {args.image_size}x{args.image_size}, ghost {args.ghost}, '
      f'chunk {args.chunk}, F={args.filters}, {args.stacks}x{args.cells} cells'
  )
  print(f"{'':58s} {'cand-img/s':>11s} {'compile s':>10s}")
  for name, rate, compile_s in rows:
    print(f'{name:58s} {rate:11.0f} {compile_s:10.1f}')
  rate = dict((r[0][:3], r[1]) for r in rows)
  auto = max(rate['(a)'], rate['(e)'])
  print(
      f"a/b {rate['(a)'] / rate['(b)']:.2f}  auto/c {auto / rate['(c)']:.2f}  "
      f"auto/d {auto / rate['(d)']:.1f}  e/a {rate['(e)'] / rate['(a)']:.2f}"
  )

  best = skip_score if rate['(e)'] >= rate['(a)'] else vmap_score
  many = [
      jax.tree.map(lambda x, i=i: x[i : i + args.chunk], masks)
      for i in range(0, 4 * args.candidates, args.chunk)
  ]
  before = _peak_mb()
  t1 = _timed(lambda: [best(c) for c in chunks])
  t4 = _timed(lambda: [best(c) for c in many])
  print(
      f'4x candidates: {t4 / t1:.2f}x the time (target 3.6-4.4); peak RSS '
      f'{before:.0f} MB -> {_peak_mb():.0f} MB'
  )


if __name__ == '__main__':
  main()
