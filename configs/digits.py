"""The embedded default: scikit-learn's digits (real, offline); the whole pipeline on a CPU.

`configs/digits.py:space=nasbench201` searches the NAS-Bench-201 cell instead of the paper's.
"""

from configs import default
from osas import config_lib

SPACES = ('bender2018', 'nasbench201')


def get_config(arg=None):
  args = config_lib.parse_arg(arg, space='bender2018', steps=300, filters=8)
  if args['space'] not in SPACES:
    raise ValueError(f"config argument space={args['space']!r}: expected one of {SPACES}")
  config = default.get_config()
  config.space.name = args['space']
  config.data.source = 'digits'  # 1,797 8x8 grey images bundled with scikit-learn.
  config.data.train_split = 'train[:1200]'
  config.data.valid_split = 'train[1200:]'  # 237 held-out images for one-shot scores.
  config.data.augmentation = 'none'  # Digits are not flip-invariant.

  config.model.filters = args['filters']
  config.model.num_stacks = 2  # 8x8 -> 4x4.
  config.model.cells_per_stack = 1

  config.supernet.num_steps = args['steps']
  config.supernet.batch_size = 64
  # Ghost batches of 8 so that 64 splits into ghosts on 1, 2, 4 or 8 devices (8 a device):
  # the same 300 x 64 samples and 3 x 64 scored images as with 16 (batches of 128 for
  # ghosts of 16 would score 128 of the 237 images); the scores spread alike (measured).
  config.supernet.ghost_batch_size = 8
  config.supernet.eval_batch_size = 64
  config.supernet.lr_reference_batch_size = 64
  config.supernet.checkpoint_every = 100
  config.supernet.log_every = 25
  config.supernet.eval_every = 100

  config.search.num_candidates = 256
  config.search.chunk_size = 32
  config.search.batch_size = 64  # 3 batches of the 237 held-out images.
  config.search.kl_examples = 32

  config.select.top_n = 25
  config.select.top_sample = 2
  config.select.small_n = 1
  config.select.random_n = 2
  config.select.include_all_on = False  # All-On alone would double the retraining time.
  config.select.buckets = 0  # Five retrained archs keep the whole run under 5 minutes.

  config.retrain.archs = ()
  config.retrain.filters = args['filters']
  config.retrain.num_steps = args['steps']
  config.retrain.batch_size = 64
  config.retrain.eval_batch_size = 120
  config.retrain.lr_reference_batch_size = 64
  config.retrain.checkpoint_every = 100
  config.retrain.log_every = 25
  return config
