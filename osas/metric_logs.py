"""Metric logs without TensorFlow: TensorBoard event files, metrics.jsonl, progress lines."""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Callable, Mapping

from absl import logging
from etils import epath
import jax
import numpy as np
from tensorboardX import event_file_writer
from tensorboardX import summary as summary_lib
from tensorboardX.proto import event_pb2
from tensorboardX.proto import summary_pb2

_file_ids = itertools.count()


class MetricWriter:
  """Writes scalars to TensorBoard event files and metrics.jsonl in `logdir`.

  Only process 0 writes by default; elsewhere every method is a no-op. Each writer starts a
  new event file (TensorBoard merges those of a resumed run) and appends to metrics.jsonl.
  Every write is flushed, so a killed run keeps what it logged.
  """

  def __init__(self, logdir: str | os.PathLike[str], *, enabled: bool | None = None):
    self._enabled = jax.process_index() == 0 if enabled is None else enabled
    self._events = self._jsonl = None
    if not self._enabled:
      return
    directory = epath.Path(logdir)
    directory.mkdir(parents=True, exist_ok=True)
    # tensorboardX, not tensorboard's writer: it needs only protobuf, numpy and packaging.
    # Its synchronous EventsWriter, not SummaryWriter: the latter's flush() does not wait for
    # its queue, so a killed run could lose what it logged. The suffix keeps two writers of the
    # same second apart (tensorboardX names files by the second and the host only).
    self._events = event_file_writer.EventsWriter(
        os.fspath(directory / 'events'), f'.{os.getpid()}.{next(_file_ids):04d}.osas'
    )
    self._events.flush()
    self._jsonl = (directory / 'metrics.jsonl').open('a')

  def _write_event(self, step: int, summary: summary_pb2.Summary) -> None:
    if self._events is None:
      raise ValueError('MetricWriter: write after close()')
    self._events.write_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    self._events.flush()

  def write_scalars(self, step: int, scalars: Mapping[str, float | np.ndarray | jax.Array]) -> None:
    """Logs scalar values (Python, numpy or jax, any float or int dtype) at `step`."""
    if not self._enabled:
      return
    values = {}
    for name, value in scalars.items():
      array = np.asarray(jax.device_get(value))
      if array.size != 1:
        raise ValueError(f'write_scalars: {name!r} has shape {array.shape}, not a scalar')
      values[name] = float(array.reshape(()))
    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag=name, simple_value=value)
            for name, value in values.items()
        ]
    )
    self._write_event(int(step), summary)
    self._jsonl.write(json.dumps({'step': int(step), **values}) + '\n')
    self._jsonl.flush()

  def write_text(self, step: int, name: str, text: str) -> None:
    """Logs text (e.g. the config) that TensorBoard's Text tab shows as markdown."""
    if self._enabled:
      summary = summary_lib.text(name, text)
      summary.value[0].tag = name  # Not tensorboardX's `name/text_summary`.
      self._write_event(int(step), summary)

  def flush(self) -> None:
    if self._events is not None:
      self._events.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self._events is not None:
      self._events.close()
      self._jsonl.close()
    self._events = self._jsonl = None

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, minutes = seconds // 3600, seconds // 60 % 60
  if hours:
    return f'{hours}h{minutes:02d}m'
  return f'{minutes}m{seconds % 60:02d}s' if minutes else f'{seconds}s'


class Progress:
  """Logs a progress line at most every `every_s` seconds (and at the end): step/total, rate, ETA.

  The first update of this process holds the compile: its time is logged once on its own line,
  and rate and ETA come only from the steps after it, each line's from the steps since the
  previous line. A resumed run's numbers therefore count only steps this process ran.
  """

  def __init__(
      self,
      total_steps: int,
      *,
      examples_per_step: int,
      every_s: float = 30.0,
      start_step: int = 0,
      name: str = 'train',
      unit: str = 'examples',
      log_fn: Callable[..., None] = logging.info,
      clock: Callable[[], float] = time.monotonic,
  ):
    self._total, self._examples_per_step = total_steps, examples_per_step
    self._every_s, self._name, self._log_fn, self._clock = every_s, name, log_fn, clock
    self._unit = unit  # What a step's `examples_per_step` count: examples, candidates, ...
    self._start_time = self._last_time = clock()
    self._last_step = start_step
    self._compiled = False

  def update(self, step: int) -> str | None:
    """Logs and returns the progress line when one is due, else returns None."""
    now = self._clock()
    done = step >= self._total
    if not self._compiled:  # The rate baseline moves past the compile.
      self._compiled = True
      self._log_fn('%s', f'{self._name}: first step (compile) took {now - self._last_time:.1f} s')
      self._last_time, self._last_step = now, step
    if not done and now - self._last_time < self._every_s:
      return None
    steps, seconds = step - self._last_step, now - self._last_time
    rate = steps / seconds if steps > 0 and seconds > 0 else None
    line = f'{self._name}: step {step}/{self._total} ({100 * step / max(self._total, 1):.1f}%)'
    if rate is not None:
      line += f', {rate * self._examples_per_step:.1f} {self._unit}/s'
    if done:
      line += f', done in {_duration(now - self._start_time)}'
    elif rate is not None:
      line += f', ETA {_duration((self._total - step) / rate)}'
    self._last_time, self._last_step = now, step
    self._log_fn('%s', line)
    return line
