"""The paper's ImageNet setup for a Cloud TPU pod: 8 cells, 224x224, global batch 4096."""

from configs import default
from osas import config_lib


def get_config(arg=None):
  args = config_lib.parse_arg(arg, filters=64)
  config = default.get_config()
  config.distributed = True  # One process per TPU VM host, joined by jax.distributed.
  config.data.name = 'imagenet2012'
  config.data.train_split = 'train[:-50000]'  # Hold out 50,000 training images ...
  config.data.valid_split = 'train[-50000:]'  # ... for one-shot scores.
  config.data.test_split = 'validation'  # The public validation set as test set.
  config.data.augmentation = 'imagenet'
  config.data.image_size = 224
  config.data.workers = 8

  config.model.filters = args['filters']
  config.model.num_stacks = 4  # 4 stacks x 2 cells = the paper's 8 cells.
  config.model.cells_per_stack = 2
  config.model.stem = 'imagenet'  # Two stride-2 convs: cells start at 56x56.

  config.supernet.num_steps = 15_000
  config.supernet.batch_size = 4096
  config.supernet.eval_batch_size = 4096
  config.supernet.lr_reference_batch_size = 1024  # lr 0.1 per 1024 -> 0.4 at 4096.
  config.supernet.warmup_steps = 500
  config.supernet.checkpoint_every = 1000

  config.retrain.filters = args['filters']
  config.retrain.num_steps = 50_000
  config.retrain.batch_size = 1024
  config.retrain.eval_batch_size = 1000
  config.retrain.lr_reference_batch_size = 256
  config.retrain.warmup_steps = 1000
  config.retrain.checkpoint_every = 5000
  return config
