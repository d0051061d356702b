"""SMASH (Brock et al. 2018) as a config of the pipeline, on digits: minutes on a CPU.

A hypernetwork generates every dense convolution kernel from the cell's encoding; it
trains on uniformly random cells (each ghost batch its own) with the ordinary loss, and
the search ranks random cells by one-shot accuracy with their generated weights.
`configs/smash.py:space=nasbench201` searches the NAS-Bench-201 cell.
"""

from configs import digits


def get_config(arg=None):
  config = digits.get_config(arg)  # Its arguments: space=, steps=, filters=.
  config.supernet.weights = 'hypernet'  # Kernels generated per cell (config.hypernet).
  config.supernet.sampler = 'uniform_cell'  # SMASH's random architectures, one per ghost batch.
  return config
