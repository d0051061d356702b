"""Zero-cost scores of NAS-Bench-201 cells against the benchmark's table, no training at all.

    PYTHONPATH=. python benchmarks/zero_cost_nb201.py --npz_dir=DIR --csv=nb201_cifar10.csv \
      [--cells=1000 --seed=0 --batch=64 --filters=16 --cells_per_stack=1]

Draws --cells distinct cells (0: all 15,625), scores them (--scores, default all of
osas.search.zero_cost.SCORES) with the search stage's evaluator on a freshly initialised
supernet (seeded by --init_seed, default --seed) from one batch of the npz's training
images, and prints the report's ranking table: every
zero-cost score, the AGGREGATES below and the baselines (parameters, FLOPs, 3x3-conv
count, random) against `test_acc_200ep`, with bootstrap intervals; also the time per
candidate. --records keeps every cell's scores; --from_records ranks such a file again.
"""

import argparse
import json
import time

import jax
import ml_collections
import numpy as np

from osas import data
from osas import parallel
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models.cost import cost
from osas.models.initialize import init_variables
from osas.report import ground_truth
from osas.report import rankings
from osas.search import strategies
from osas.search import zero_cost
from osas.search.evaluator import Evaluator
from osas.space import get_space

# The first is the table's rank_by (MeCo's aggregate below is configs/nasbench201_cpu.py's
# now), the others compared beside it (config.report.also_rank_by).
AGGREGATES = (
    'synflow*jacob_cov*flops',
    'meco*synflow*jacob_cov*flops',
    'meco*flops',
    'naswot*synflow*jacob_cov*flops',
    'naswot*synflow*jacob_cov*snip*flops',
    'synflow+jacob_cov+flops',
    'naswot+synflow+flops',
    'naswot+synflow+jacob_cov+snip+flops',
)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--npz_dir', required=True)
  parser.add_argument('--csv', required=True)
  parser.add_argument('--cells', type=int, default=1000)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument(
      '--init_seed',
      type=int,
      default=None,
      help='Initialisation and image batch (default: --seed).',
  )
  parser.add_argument('--filters', type=int, default=16)
  parser.add_argument('--cells_per_stack', type=int, default=1)
  parser.add_argument('--chunk', type=int, default=16)
  parser.add_argument('--mode', default='skip')
  parser.add_argument(
      '--scores',
      default=','.join(zero_cost.SCORES),
      help='Comma-separated zero-cost scores to compute (osas.search.zero_cost.SCORES).',
  )
  parser.add_argument(
      '--also', default='', help='Comma-separated rank_by aggregates ranked beside AGGREGATES.'
  )
  parser.add_argument('--bootstrap', type=int, default=1000)
  parser.add_argument('--out', default=None, help='Also write the table as JSON here.')
  parser.add_argument(
      '--records', default=None, help="Also write every cell's scores here (JSON lines)."
  )
  parser.add_argument(
      '--from_records',
      default=None,
      help='Rank the cells of a --records file again, scoring nothing.',
  )
  args = parser.parse_args()

  table = ground_truth.load_table(args.csv, 'arch', 'test_acc_200ep')
  names = tuple(args.scores.split(','))
  unknown = sorted(set(names) - set(zero_cost.SCORES))
  if unknown:
    raise SystemExit(f"--scores: unknown {unknown}; known: {', '.join(zero_cost.SCORES)}")
  if args.from_records:
    with open(args.from_records) as f:
      records = [json.loads(line) for line in f]
    report(records, [table.accuracy[r['arch']] for r in records], None, args)
    return
  space = get_space('nasbench201')
  init_seed = args.seed if args.init_seed is None else args.init_seed
  spec = ModelSpec(
      num_classes=10, filters=args.filters, num_stacks=3, cells_per_stack=args.cells_per_stack
  )
  section = ml_collections.ConfigDict(
      dict(
          source='npz',
          name='cifar10',
          npz_dir=args.npz_dir,
          tfds_data_dir=None,
          train_split='train[:9000]',
          valid_split='train[9000:]',
          test_split='test',
          augmentation='none',
          image_size=None,
          workers=0,
      )
  )
  train = data.get_split(
      section, 'train', global_batch_size=args.batch, train=False, seed=init_seed
  )
  batch = train.batch(0)
  mesh = parallel.make_mesh()
  images = parallel.global_batch(batch['image'], mesh)
  labels = parallel.global_batch(batch['label'], mesh)
  params = init_variables(
      Supernet(space, spec),
      jax.random.key(init_seed + 5),
      np.zeros((1, 32, 32, 3), np.float32),
      jax.tree.map(lambda x: x[None], space.all_on()),
  )['params']
  evaluator = Evaluator(
      space,
      spec,
      mesh,
      mode=args.mode,
      chunk_size=args.chunk,
      ghost_batch_size=args.batch,
      zero_cost_names=names,
  )
  if args.cells:
    archs = strategies.random_archs(space, args.seed + 3, args.cells)
  else:
    archs = list(space.enumerate())
  records, started = [], time.perf_counter()
  for i in range(0, len(archs), args.chunk):
    chunk = archs[i : i + args.chunk]
    scores = evaluator.score(
        params, [(images, labels)], space.encode_batch(chunk), None, (params, images, labels)
    )
    for n, arch in enumerate(chunk):
      p, f = cost(space, spec, arch, (32, 32, 3))
      records.append(
          {
              'arch': arch.to_string(),
              'params': p,
              'flops': f,
              **{k: float(scores[k][n]) for k in names},
          }
      )
  seconds = time.perf_counter() - started
  report(records, [table.accuracy[r['arch']] for r in records], seconds, args)


def report(records, true, seconds, args) -> None:
  """Prints (and writes, as asked) the ranking table of scored cells."""
  result = {
      'cells': len(records),
      'seed': args.seed,
      'batch': args.batch,
      'seconds': seconds and round(seconds, 1),
      **rankings.table(
          records,
          true,
          rank_by=AGGREGATES[0],
          space_name='nasbench201',
          seed=args.seed,
          bootstrap=args.bootstrap,
          also=AGGREGATES[1:] + tuple(a for a in args.also.split(',') if a),
      ),
  }
  if seconds:
    print(
        f'{len(records)} cells in {seconds:.0f} s ({1000 * seconds / len(records):.0f} ms '
        f'per cell, compile included), zero-cost batch {args.batch}, seed {args.seed}'
    )
  print('\n'.join(rankings.render(result, 'true `test_acc_200ep`')))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=2)
  if args.records:
    with open(args.records, 'w') as f:
      f.writelines(json.dumps({**r, 'true': t}) + '\n' for r, t in zip(records, true))


if __name__ == '__main__':
  main()
