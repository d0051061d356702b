"""A seconds-long config for tests: digits, one cell, a few steps of every stage."""

from osas import config_lib

digits = config_lib.sibling(__file__, 'digits')


def get_config(arg=None):
  args = config_lib.parse_arg(arg, steps=4)
  config = digits.get_config(f"steps={args['steps']},filters=2")
  config.model.num_stacks = 1
  config.model.depthwise_impl = 'native'  # Compiles faster; the model is tiny anyway.
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
  config.retrain.archs = ('0,1:sep3x3+sep5x5 | 0,2:sep3x3+max_pool | 1,3:sep5x5 | '
                          '2,4:identity+sep3x3',)
  config.retrain.batch_size = 16
  config.retrain.eval_batch_size = 64
  config.retrain.lr_reference_batch_size = 16
  config.retrain.checkpoint_every = 2
  config.retrain.log_every = 2
  config.retrain.eval_splits = ('test',)
  return config
