"""Stopping cleanly on SIGTERM: finish the step, save, flush, exit 0; the same command resumes.

Spot and preemptible TPU VMs (and most schedulers) send SIGTERM some seconds before they take
a machine. The handler only sets a flag; loops poll `requested()` where stopping loses nothing,
save, and raise `Preempted`, which `osas.main` turns into a clean exit. The signal may reach
one host first, so the flag is combined across processes: all stop at the same step.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

_requested = threading.Event()


class Preempted(Exception):
  """Raised after the state was saved because a stop was requested."""


def _handler(signum: int, frame: Any) -> None:
  del frame
  logging.warning('osas: received signal %d; stopping after the current step', signum)
  _requested.set()


def install() -> None:
  """Routes SIGTERM to the flag (main thread only, as Python requires)."""
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _handler)


def requested(poll: int = 0, every: int = 10) -> bool:
  """Whether any process was asked to stop; every process must call this at the same polls.

  On several processes only every `every`-th `poll` (a step or chunk number) asks the
  others: the all-gather waits for the device, which would stall the host each step.
  """
  if jax.process_count() == 1:
    return _requested.is_set()
  if poll % every:
    return False
  if np.any(multihost_utils.process_allgather(np.asarray(_requested.is_set(), np.int32))):
    _requested.set()  # Later polls on this process agree without another signal.
  return _requested.is_set()


def stop_if_requested(where: str, poll: int = 0) -> None:
  """Raises Preempted when a stop was requested; callers save what they have first."""
  if requested(poll):
    raise Preempted(where)
