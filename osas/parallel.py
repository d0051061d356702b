"""One data-parallel mesh over every device of every host, and global batches on it."""

from __future__ import annotations

import socket
import time
from typing import Any

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA = 'data'


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D mesh named 'data' (Auto axes) over the first `num_devices` devices (all)."""
  devices = jax.devices()
  if num_devices is not None:
    if not 0 < num_devices <= len(devices):
      raise ValueError(
          f'config.num_devices={num_devices}: a mesh of {num_devices} devices '
          f'was asked for, {len(devices)} are present'
      )
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis split across devices: batches, and masks laid out like batches."""
  return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put(tree: Any, sharding: NamedSharding) -> Any:
  """Global arrays of `tree`'s values (the same on every process) laid out by `sharding`.

  `jax.device_put` refuses shardings over other hosts' devices; building each array from
  the shards this host holds works on one process and on many.
  """
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def one(x):
    if jax.dtypes.issubdtype(getattr(x, 'dtype', None), jax.dtypes.prng_key):
      return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(one, tree)


def global_batch(local: Any, mesh: Mesh) -> Any:
  """Assembles each host's shard of a batch (a pytree of numpy arrays) into global arrays."""
  sharding = data_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)


def global_spec(spec: Any, mesh: Mesh) -> Any:
  """`global_batch`'s shardings on a batch's jax.ShapeDtypeStructs (for compiling ahead)."""
  sharding = data_sharding(mesh)
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), spec)


def to_host(x: Any) -> np.ndarray:
  """The whole of `x` as numpy on every process.

  A global array is gathered from all devices of all hosts; a numpy array is taken as this
  host's shard and the hosts' shards are concatenated, in process order.
  """
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def check_batch(batch_size: int, ghost_batch_size: int | None, mesh: Mesh, field: str) -> None:
  """Checks that a global batch splits evenly over devices and into ghost batches.

  `field` names the batch size, e.g. 'config.retrain.eval_batch_size'.
  """
  devices = mesh.devices.size
  if batch_size <= 0 or batch_size % devices:
    raise ValueError(f'{field}={batch_size} must be a positive multiple of the {devices} devices')
  if ghost_batch_size is not None:
    per_device = batch_size // devices
    if ghost_batch_size <= 0 or per_device % ghost_batch_size:
      raise ValueError(
          f'config.supernet.ghost_batch_size={ghost_batch_size} must divide the per-device batch '
          f'({batch_size} / {devices} devices = {per_device}) of {field}'
      )


def wait_for_coordinator(address: str, timeout_s: float) -> None:
  """Waits until the coordinator's port accepts connections; ValueError after `timeout_s`.

  jax.distributed.initialize aborts the whole process (from C++, no exception) when the
  coordinator does not answer in time, so a non-zero process checks first.
  """
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit():
    raise ValueError(f'--coordinator_address={address!r} must be HOST:PORT')
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host.strip('[]'), int(port)), timeout=2):
        return
    except OSError as e:
      if time.monotonic() >= deadline:
        raise ValueError(
            f'no coordinator answered at {address} within {timeout_s:g} s '
            f'(config.distributed_timeout_s): is process 0 running there? '
            f'({e.strerror or e})'
        ) from None
      time.sleep(0.5)
