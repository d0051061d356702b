"""The paper's CIFAR-10 setup through TFDS; `configs/cifar10.py:filters=64` sets F."""

from configs import default
from osas import config_lib


def get_config(arg=None):
  args = config_lib.parse_arg(arg, filters=16)
  config = default.get_config()
  config.model.filters = args['filters']  # The supernet's F.
  config.retrain.filters = args['filters']  # Stand-alone F (the paper varies 16 to 128).
  return config
