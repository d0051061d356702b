"""The training loop both trainers run: resume, step, log, evaluate, checkpoint."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

from absl import logging
import jax

from osas import checkpoints
from osas import metric_logs
from osas import preemption


@dataclasses.dataclass
class Loop:
  """Runs `step_fn` from the newest restorable checkpoint up to `num_steps`."""

  name: str  # Prefix of the logged scalars, e.g. 'supernet'.
  step_fn: Callable[[Any, Any], tuple[Any, Any]]  # (state, batch) -> (state, metrics).
  batches: Callable[[int], Iterator[Any]]  # start_step -> global batches.
  num_steps: int
  examples_per_step: int
  checkpointer: checkpoints.Checkpointer
  writer: metric_logs.MetricWriter
  log_every: int = 100
  eval_every: int = 0  # 0: only at the end.
  eval_fn: Callable[[Any], dict[str, float]] | None = None

  def restore(self, state: Any) -> Any:
    """The newest checkpoint that restores, else `state` as given."""
    restored = self.checkpointer.restore_latest(state)
    if restored is None:
      return state
    state, step = restored
    logging.info('%s: resumed from the checkpoint of step %d', self.name, step)
    return state

  def run(self, state: Any) -> tuple[Any, dict[str, float]]:
    """Trains to `num_steps`; returns the state and the last logged and evaluated scalars."""
    start = int(jax.device_get(state.step))
    progress = metric_logs.Progress(
        self.num_steps, examples_per_step=self.examples_per_step, start_step=start, name=self.name
    )
    summary, accumulated = {}, None
    batches = self.batches(start)
    for step in range(start + 1, self.num_steps + 1):
      state, metrics = self.step_fn(state, next(batches))
      accumulated = metrics if accumulated is None else accumulated.merge(metrics)
      last = step == self.num_steps
      if step % self.log_every == 0 or last:
        scalars = {f'{self.name}/train_{k}': float(v) for k, v in accumulated.compute().items()}
        self.writer.write_scalars(step, scalars)
        summary.update(scalars)
        accumulated = None
      if self.eval_fn and (last or (self.eval_every and step % self.eval_every == 0)):
        scalars = {f'{self.name}/{k}': float(v) for k, v in self.eval_fn(state).items()}
        self.writer.write_scalars(step, scalars)
        summary.update(scalars)
      stop = not last and preemption.requested(step)
      self.checkpointer.save(step, state, force=last or stop)
      progress.update(step)
      if stop:
        self.checkpointer.wait_until_finished()
        self.writer.flush()
        raise preemption.Preempted(f'{self.name}: saved step {step} of {self.num_steps}')
    self.checkpointer.wait_until_finished()
    return state, summary
