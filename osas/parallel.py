"""One data-parallel mesh over every device of every host, and global batches on it."""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

DATA = 'data'


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D mesh named 'data' (Auto axes) over the first `num_devices` devices (all)."""
  devices = jax.devices()
  if num_devices is not None:
    if not 0 < num_devices <= len(devices):
      raise ValueError(f'a mesh of {num_devices} devices was asked for, '
                       f'{len(devices)} are present')
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis split across devices: batches, and masks laid out like batches."""
  return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local: Any, mesh: Mesh) -> Any:
  """Assembles each host's shard of a batch (a pytree of numpy arrays) into global arrays."""
  sharding = data_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)


def check_batch(batch_size: int, ghost_batch_size: int | None, mesh: Mesh, field: str) -> None:
  """Checks that a global batch splits evenly over devices and into ghost batches."""
  devices = mesh.devices.size
  if batch_size <= 0 or batch_size % devices:
    raise ValueError(f'{field}.batch_size={batch_size} must be a positive multiple of the '
                     f'{devices} devices')
  if ghost_batch_size is not None:
    per_device = batch_size // devices
    if ghost_batch_size <= 0 or per_device % ghost_batch_size:
      raise ValueError(f'{field}.ghost_batch_size={ghost_batch_size} must divide the '
                       f'per-device batch ({batch_size} / {devices} devices = {per_device})')
