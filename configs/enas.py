"""ENAS (Pham et al. 2018) as a config of the pipeline, on digits: minutes on a CPU.

The shared weights train on cells from an LSTM controller, which is trained in turn by
REINFORCE on their one-shot accuracy; the search scores the controller's most probable
cells. `configs/enas.py:space=nasbench201` searches the NAS-Bench-201 cell.
"""

from configs import digits


def get_config(arg=None):
  config = digits.get_config(arg)  # Its arguments: space=, steps=, filters=.
  config.supernet.sampler = 'controller'  # Each ghost batch: a cell from the controller.
  config.search.strategy = 'controller'  # Its most probable cells (controller_draw).
  # 6 phases over 300 steps, 2 rewarded cells per shared step (ENAS: 300 per epoch of
  # 390 steps on CIFAR-10).
  config.controller.shared_steps = 50
  config.controller.train_steps = 10  # x 10 cells (num_samples): 100 rewards per phase.
  config.controller.batch_size = 64  # Of the 237 held-out images, one batch per reward.
  # ENAS trains its controller for 4,500 steps at 0.0035; with ~50x fewer here, 10x the
  # rate lets the policy move from uniform (tanh still bounds every choice's odds).
  config.controller.learning_rate = 0.035
  return config
