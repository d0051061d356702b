"""ENAS's alternation inside `train_supernet`: shared-weight steps, then a controller phase.

With config.supernet.sampler = 'controller' every ghost batch trains the shared weights on
its own cell from the controller; after every config.controller.shared_steps of those
steps, config.controller.train_steps REINFORCE steps train the controller, each on
num_samples cells rewarded with their one-shot accuracy on a validation batch, scored by
the search's evaluator (ghost BN, as in training) with the weights the search will use.
Controller step t samples with fold_in(key, t) and is rewarded on validation batch t, so a
resumed run repeats what an uninterrupted one would have done.
"""

from __future__ import annotations

import functools
from typing import Any

from absl import logging
import jax
import numpy as np

from osas import data
from osas import parallel
from osas.controller import policy as policy_lib
from osas.controller import reinforce
from osas.models import hypernet
from osas.search.evaluator import Evaluator
from osas.space.decisions import Decisions

# Beam width of the most probable cell logged after each phase.
BEAM = 16


class ControllerPhases:
  """Wraps the shared-weight step: `step(state, batch)` runs a phase where one is due."""

  def __init__(self, config, mesh, parts: dict[str, Any], writer, weights):
    """`weights(state)`: the shared weights to reward with, those the search will score."""
    section = config.controller
    self.weights = weights
    self.section, self.mesh, self.writer = section, mesh, writer
    self.shared_step = parts['step']
    self.decisions = Decisions(parts['space'])
    self.policy = policy_lib.from_config(parts['space'], section)
    self.valid = data.get_split(
        config.data, 'valid', global_batch_size=section.batch_size, train=False, seed=config.seed
    )
    devices = mesh.devices.size
    self.evaluator = Evaluator(
        parts['space'],
        parts['model'].spec,
        mesh,
        mode=config.search.evaluator,
        chunk_size=-(-section.num_samples // devices) * devices,
        ghost_batch_size=config.supernet.ghost_batch_size,
        hypernet=hypernet.from_config(config),
    )
    repl = parallel.replicated(mesh)
    self._repl = repl
    self._sample = jax.jit(
        functools.partial(reinforce.sample, policy=self.policy, n=section.num_samples),
        out_shardings=repl,
    )
    self._update = jax.jit(
        functools.partial(reinforce.update, policy=self.policy, section=section),
        out_shardings=repl,
        donate_argnums=0,
    )
    self._best = jax.jit(functools.partial(reinforce.most_probable, policy=self.policy, width=BEAM))
    self._step = None  # The shared step count, tracked here so each step needs no sync.
    self.last: dict[str, float] = {}  # The last phase's mean metrics.

  def step(self, state, batch) -> tuple[Any, Any]:
    state, metrics = self.shared_step(state, batch)
    if self._step is None:
      self._step = int(jax.device_get(state.step)) - 1
    self._step += 1
    if self._step % self.section.shared_steps == 0:
      state = self.phase(state, self._step)
    return state, metrics

  def phase(self, state, shared_step: int):
    """config.controller.train_steps REINFORCE steps on the current shared weights."""
    controller, phase_metrics = state.controller, []
    first = int(jax.device_get(controller.step))  # One sync per phase, not per step.
    for t in range(first, first + self.section.train_steps):
      choices = self._sample(controller.params, jax.random.fold_in(controller.key, t))
      masks = self.decisions.to_masks(np.asarray(choices))
      batch = parallel.global_batch(self.valid.batch(t), self.mesh)
      images_labels = [(batch['image'], batch['label'])]
      scores = self.evaluator.score(self.weights(state), images_labels, masks)
      rewards = parallel.put(scores['accuracy'].astype(np.float32), self._repl)
      controller, metrics = self._update(controller, choices, rewards)
      phase_metrics.append(metrics)
    self.last = {
        f'controller/{k}': float(np.mean([m[k] for m in phase_metrics])) for k in phase_metrics[0]
    }
    best, log_prob = self._best(controller.params)
    arch = self.decisions.archs(np.asarray(best))[0]
    self.last['controller/best_prob'] = float(np.exp(log_prob[0]))
    self.writer.write_scalars(shared_step, self.last)
    logging.info(
        'controller: step %d, accuracy %.4f, entropy %.3f; most probable cell (beam) %s (p=%.3g)',
        first + self.section.train_steps,
        self.last['controller/accuracy'],
        self.last['controller/entropy'],
        arch,
        self.last['controller/best_prob'],
    )
    return state.replace(controller=controller)


def init_state(space, section, seed: int) -> reinforce.ControllerState:
  """The controller's initial state (its own seed: seed + 6)."""
  return reinforce.init_state(
      policy_lib.from_config(space, section), section, jax.random.key(seed + 6)
  )
