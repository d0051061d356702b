"""The evaluator's memory: XLA's estimate for a chunk size against what a device holds.

The estimate comes from compiling the scoring programs ahead of their first call, which jit
then reuses: the check costs no extra compile. Every process takes the same decision (the
largest need, the smallest limit), or they would part ways at the next collective.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
from jax.experimental import multihost_utils
import numpy as np

from osas import compile_ahead

# On CPU the devices share the host's RAM with everything else the process holds.
HOST_FRACTION = 0.8
# `config.search.chunk_size = 0` picks the largest chunk whose program needs at most this
# share of a device's memory (the rest: parameters' copies, data, fragmentation)...
AUTO_FRACTION = 0.5
# ...and at most this many candidates per device: a kill loses at most one chunk.
AUTO_MAX_PER_DEVICE = 64

_GIB = 2.0**30


def device_limit_bytes() -> int:
  """Bytes one local device may use: the accelerator's limit, or its share of host RAM."""
  stats = jax.local_devices()[0].memory_stats() or {}
  if stats.get('bytes_limit'):
    return int(stats['bytes_limit'])
  host = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  return int(HOST_FRACTION * host) // jax.local_device_count()


def agreed(needed: int, limit: int) -> tuple[int, int]:
  """(largest need, smallest limit) over all processes; every process must call it."""
  if jax.process_count() == 1:
    return needed, limit
  # float32: without jax_enable_x64 an int64 would travel as int32 and wrap above 2 GiB.
  both = np.asarray(multihost_utils.process_allgather(np.asarray([needed, limit], np.float32)))
  return int(both[:, 0].max()), int(both[:, 1].min())


def check(needed: int, limit: int, *, chunk_size: int, batch_size: int) -> None:
  """Raises ValueError naming the fields when a program needs more than a device has."""
  if needed > limit:
    raise ValueError(
        f'config.search.chunk_size={chunk_size} with config.search.batch_size={batch_size} '
        f"needs about {needed / _GIB:.2f} GiB per device (XLA's estimate), more than the "
        f'{limit / _GIB:.2f} GiB a device has; lower either (chunk_size=0 picks what fits)'
    )


def fitting_chunk_size(
    needed_at: Callable[[int], int], limit: int, devices: int, candidates: int
) -> int:
  """The largest multiple of `devices` whose need fits AUTO_FRACTION of `limit`.

  At most AUTO_MAX_PER_DEVICE per device, and no more than `candidates` need (rounded up
  to the devices); at least one per device (then `check` says whether even that fits).

  `needed_at(m)` gives the need for a chunk of m; the need is taken as linear in m from its
  values at one and two candidates per device (vmap: activations per candidate; skip: flat).
  """
  most = devices * min(AUTO_MAX_PER_DEVICE, -(-candidates // devices))
  if most <= devices:
    return devices
  one, two = needed_at(devices), needed_at(2 * devices)
  per_candidate = max(two - one, 0) / devices
  budget = AUTO_FRACTION * limit - (one - per_candidate * devices)
  if per_candidate == 0:
    fits = most if budget >= 0 else 0
  else:
    fits = int(budget // per_candidate) // devices * devices
  return max(devices, min(most, fits))


def needed_bytes(compile_fns: list[Callable[[], Any]]) -> int:
  """Per-device bytes the largest of the programs compiled by `compile_fns` needs at once.

  The programs compile side by side (osas.compile_ahead): XLA:CPU compiles each on one core.
  """
  needs = [0]
  for compiled in compile_ahead.all_of(compile_fns):
    stats = compiled.memory_analysis()
    if stats is not None:  # A backend without estimates: nothing to check against.
      sizes = (stats.argument_size_in_bytes, stats.output_size_in_bytes, stats.temp_size_in_bytes)
      needs.append(sum(sizes) - stats.alias_size_in_bytes)
  return int(max(needs))
