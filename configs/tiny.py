"""A seconds-long config for tests: digits, one cell, a few steps of every stage.

`configs/tiny.py:space=nasbench201` runs it in the NAS-Bench-201 space; `enas=true` trains
and searches with ENAS's controller (a phase of 2 controller steps after every 2 steps);
`smash=true` with SMASH's generated weights.
"""

from configs import digits
from osas import config_lib

# The arch every tiny run retrains besides the search's selection, per space.
RETRAIN_ARCH = {
    'bender2018': '0,1:sep3x3+max_pool | 0,2:identity+sep3x3',
    'nasbench201': (
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+'
        '|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    ),
}


def get_config(arg=None):
  args = config_lib.parse_arg(arg, steps=4, space='bender2018', enas=False, smash=False)
  if args['space'] not in RETRAIN_ARCH:
    known = ', '.join(RETRAIN_ARCH)
    raise ValueError(f"config argument space={args['space']!r}: expected one of {known}")
  config = digits.get_config(f"steps={args['steps']},filters=2,space={args['space']}")
  config.model.num_stacks = 1
  config.compilation_cache_dir = ''  # The tests keep their own (tests/conftest.py).
  # 2 blocks of 3 ops (756 cells): a cell traces and compiles in a third of the time of
  # the paper's 4 blocks of 7 ops, and every kind of path (identity, conv, pool) is there.
  config.space.bender2018.num_blocks = 2
  config.space.bender2018.ops = ('identity', 'sep3x3', 'max_pool')
  config.model.kernels = 'native'  # Compiles faster; the model is tiny anyway.
  config.supernet.batch_size = 16
  config.supernet.ghost_batch_size = 8
  config.supernet.eval_batch_size = 16
  config.supernet.lr_reference_batch_size = 16
  config.supernet.num_probes = 1
  config.supernet.checkpoint_every = 2
  config.supernet.log_every = 2
  config.supernet.eval_every = 0
  config.search.num_candidates = 6
  config.search.chunk_size = 4
  config.search.batch_size = 16
  config.search.num_batches = 2
  config.search.kl_examples = 8
  config.select.top_n = 4
  config.select.top_sample = 1
  config.select.small_n = 1
  config.select.random_n = 0
  config.select.include_all_on = False
  config.retrain.archs = (RETRAIN_ARCH[args['space']],)
  config.retrain.batch_size = 16
  config.retrain.eval_batch_size = 64
  config.retrain.lr_reference_batch_size = 16
  config.retrain.checkpoint_every = 2
  config.retrain.log_every = 2
  config.retrain.eval_splits = ('test',)
  if args['enas']:
    config.supernet.sampler = 'controller'
    config.search.strategy = 'controller'
    config.controller.hidden_size = 8
    config.controller.shared_steps = 2
    config.controller.train_steps = 2
    config.controller.num_samples = 3
    config.controller.batch_size = 16
  if args['smash']:
    config.supernet.weights = 'hypernet'
    config.hypernet.width = 4
  return config
