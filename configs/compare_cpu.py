"""Issue #14's comparison on NAS-Bench-201 (CPU-sized): one sampler x strategy x batch norm.

`configs/compare_cpu.py:sampler=S,strategy=T,bn=B` with S in path_dropout | uniform_class
(training), T in random | evolution (which cells are scored: the same number either way),
or S = T = controller (ENAS: the controller trained with the shared weights proposes them),
B in ghost | recalibrate (how a cell's BN statistics are obtained for its one-shot score),
and `weights=hypernet` for SMASH's kernels generated per cell (default: shared); every
combination searches under the same FLOP limit and is judged by the benchmark's
table (benchmarks/compare_search.py prints the comparison). The data and the table are
the repository's real CIFAR-10 subset and NAS-Bench-201 CSV under ../shared/data (paths
relative to the repository root; override them as in configs/nasbench201_cpu.py). The
supernet depends on the sampler and weights only: combinations that share them can share
supernet/.
"""

from configs import nasbench201_cpu
from osas import config_lib

DATA = '../shared/data'
# The median stand-alone FLOPs (multiply-adds) of the 15,625 cells at C = 16, 1 cell per
# stack, 32x32 images (osas.models.cost): the limit admits 51% of the space.
MEDIAN_FLOPS = 15_647_360
SAMPLERS = ('path_dropout', 'uniform_class', 'controller')
STRATEGIES = ('random', 'evolution', 'controller')


def get_config(arg=None):
  args = config_lib.parse_arg(
      arg,
      sampler='path_dropout',
      strategy='random',
      bn='ghost',
      weights='shared',
      candidates=1000,
      steps=1000,
      seed=0,
  )
  for field, known in (('sampler', SAMPLERS), ('strategy', STRATEGIES)):
    if args[field] not in known:
      raise ValueError(f'config argument {field}={args[field]!r}: expected one of {known}')
  if (args['sampler'] == 'controller') != (args['strategy'] == 'controller'):
    raise ValueError(
        f"config argument strategy={args['strategy']!r}: ENAS is sampler=controller with "
        'strategy=controller, and neither goes with another'
    )
  if args['candidates'] <= 0 or args['candidates'] % 50:
    raise ValueError(f"config argument candidates={args['candidates']}: a positive multiple of 50")
  config = nasbench201_cpu.get_config(
      f"steps={args['steps']},candidates={args['candidates']},sampler={args['sampler']},"
      f"rank=accuracy,classes=false,seed={args['seed']}"
  )
  config.data.source = 'npz'
  config.data.npz_dir = f'{DATA}/cifar10_subset'  # 9,000 training, 1,000 held-out images.
  config.report.ground_truth = f'{DATA}/nasbench201/nb201_cifar10.csv'  # test_acc_200ep.

  config.search.strategy = args['strategy']
  config.supernet.weights = args['weights']  # Checked, naming the field, by the stages.
  # ENAS: a phase of 10 controller steps x 10 cells, rewarded on 128 held-out images each,
  # after every 100 shared steps (ENAS: 30 steps x 10 cells after each epoch of ~390).
  config.controller.shared_steps = 100
  config.controller.train_steps = 10
  config.controller.batch_size = 128  # The training batch's size (ENAS: 160 both).
  # ENAS trains its controller for 4,500 steps at 0.0035; with ~50x fewer here, 10x the
  # rate lets the policy move from uniform (tanh still bounds every choice's odds).
  config.controller.learning_rate = 0.035
  config.search.max_flops = MEDIAN_FLOPS
  # population x iterations = num_candidates: evolution scores as many cells as random.
  config.search.evolution.population = 50
  config.search.evolution.iterations = args['candidates'] // 50
  # 10 divides a generation (50): evolution's rounds fill their chunks as random's do.
  config.search.chunk_size = 10
  config.search.bn = args['bn']  # Checked, naming the field, by the search stage.
  config.search.recalibration_images = 1024  # 4 batches of 256 (config.search.batch_size).
  # One-shot scores only: ranked by one-shot accuracy, each cell scored itself (no
  # isomorphism classes, so a scored cell is a cost), no zero-cost or KL scores.
  config.search.zero_cost = ()
  config.search.kl_examples = 0
  config.report.also_rank_by = ()
  config.select.top_by = ()
  return config
