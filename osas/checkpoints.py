"""Orbax checkpoints of one pytree that fall back to an older step when the newest is damaged."""

from __future__ import annotations

import time
from typing import Any

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

PyTree = Any
_FINGERPRINTS = 'osas_fingerprints'  # Key in the custom metadata that orbax saves with the tree.
_GOLDEN = np.uint32(0x9E3779B1)
_FINGERPRINTED_KINDS = (np.bool_, np.integer, np.floating, jax.dtypes.prng_key)


def _words(x: jax.Array) -> jax.Array:
  """The bits of `x` as a flat uint32 vector."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32).ravel()
  if x.dtype.itemsize >= 4:  # 8-byte values become pairs of words.
    return jax.lax.bitcast_convert_type(x, jnp.uint32).ravel()
  narrow = jax.lax.bitcast_convert_type(x, jnp.dtype(f'uint{8 * x.dtype.itemsize}'))
  return narrow.astype(jnp.uint32).ravel()


@jax.jit
def _fingerprint_leaves(leaves: list[jax.Array]) -> list[jax.Array]:
  # Odd weights that differ by position: flipping any one bit always changes the sum mod 2**32.
  out = []
  for x in leaves:
    words = _words(x)
    weights = jnp.arange(words.size, dtype=jnp.uint32) * _GOLDEN | 1
    out.append(jnp.sum(words * weights, dtype=jnp.uint32))
  return out


def _fingerprints(tree: PyTree) -> dict[str, list[Any]]:
  """Path -> [dtype, fingerprint] of each array leaf, computed on device.

  Tensorstore checks its index with CRCs but not out-of-line array chunks (>1 KiB), so
  without these a flipped bit in a large array would restore silently.
  """
  paths, leaves = [], []
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    if isinstance(leaf, (jax.Array, np.ndarray)) and any(
        jnp.issubdtype(leaf.dtype, kind) for kind in _FINGERPRINTED_KINDS
    ):
      paths.append(jax.tree_util.keystr(path))
      leaves.append(leaf)
  values = _fingerprint_leaves(leaves)
  # The values are replicated: every process reads the same number from its own copy.
  return {
      path: [str(leaf.dtype), int(np.asarray(value.addressable_data(0)))]
      for path, leaf, value in zip(paths, leaves, values)
  }


def _mismatch(state: PyTree, saved: dict[str, list[Any]]) -> str | None:
  """Which restored array differs from its saved fingerprint, if one does."""
  for path, fingerprint in _fingerprints(state).items():
    # A target of another dtype is cast on restore: nothing to compare then.
    if path in saved and saved[path][0] == fingerprint[0] and saved[path] != fingerprint:
      return f'the values of {path} differ from those saved (fingerprint mismatch)'
  return None


def _first_line(error: BaseException) -> str:
  """The error's first line without the long tensorstore spec that orbax errors carry."""
  lines = str(error).strip().splitlines() or ['']
  return f'{type(error).__name__}: {lines[0].split(" [tensorstore_spec")[0]}'


def _everywhere(ok: bool) -> bool:
  """Whether `ok` holds on every process: each reads its own shards, so one may fail alone."""
  if jax.process_count() == 1:
    return ok
  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


class Checkpointer:
  """Saves a pytree at multiples of `save_interval_steps`; restores the newest step that reads.

  Wraps orbax's CheckpointManager: step `s` lives in `directory`/s/default. Saves are
  asynchronous (the arrays are copied off the device before `save` returns, the files are
  written in the background): call `wait_until_finished` or `close` before the process
  exits, or the newest checkpoint may be lost. All processes must make every call: orbax
  coordinates multi-host writes, and each process reads its own shards.

  Typed PRNG key arrays (jax.random.key) are stored and restored as they are by orbax 0.12.8.
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3, save_interval_steps: int = 1):
    self._directory = epath.Path(directory)
    # Orbax's default policy also saves the first step of a run; only multiples of the
    # interval are saved here. Preemption is osas.preemption's: the loop saves with force.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=True,
        save_decision_policy=ocp.checkpoint_managers.FixedIntervalPolicy(save_interval_steps),
    )
    # An explicit handler: without one orbax infers the layout from the newest step
    # directory, and an empty (damaged) one makes it refuse every later save and restore.
    self._manager = ocp.CheckpointManager(
        self._directory, options=options, item_handlers=ocp.StandardCheckpointHandler()
    )
    self._damaged = []  # Steps newer than the one restored that did not restore.

  @property
  def latest_step(self) -> int | None:
    """The newest step on disk, damaged or not: restore_latest tells which one restores."""
    return self._manager.latest_step()

  def save(self, step: int, state: PyTree, *, force: bool = False) -> bool:
    """Saves `state` if `step` is on the save interval (or `force`); returns whether it did."""
    if self._damaged:
      self._set_aside_damaged()
    if not force and not self._manager.should_save(step):
      return False  # Before fingerprinting: the training loop calls this every step.
    metadata = {_FINGERPRINTS: _fingerprints(state)}
    return self._manager.save(
        step, args=ocp.args.StandardSave(state, custom_metadata=metadata), force=force
    )

  def restore_latest(self, target: PyTree, at_most: int | None = None) -> tuple[PyTree, int] | None:
    """(state, step) of the newest checkpoint that restores; None when there is none.

    With `at_most`, only steps up to it count (an earlier state of a finished run).

    `target` gives the structure, shapes, dtypes and shardings: a pytree of arrays or of
    jax.ShapeDtypeStruct. A step that fails to restore (damaged or missing files, a
    different structure or shape) is logged and the next older one is tried. Damaged
    steps are kept on disk: the next `save` renames them to '<step>.damaged-<time>', out
    of orbax's sight, so training re-saves those steps and max_to_keep counts only good
    checkpoints. Raises RuntimeError when checkpoints exist but none restores.
    """
    self._manager.reload()  # Another run (or a killed one) may have written since.
    steps = sorted(
        (s for s in self._manager.all_steps() if at_most is None or s <= at_most), reverse=True
    )
    failed = []
    for step in steps:
      try:
        (state, saved), reason = self._read(step, target), None
      except Exception as e:  # pylint: disable=broad-except
        reason = _first_line(e)  # Orbax and tensorstore raise many types for bad files.
      # Agree before computing on the restored arrays, a collective on every process.
      if not _everywhere(reason is None):
        reason = reason or 'it failed to restore on another process'
      else:
        reason = _mismatch(state, saved)
        if reason is None:
          self._damaged = failed
          return state, step
      logging.warning(
          'Checkpoint of step %d in %s does not restore, trying an older one: %s',
          step,
          self._directory,
          reason,
      )
      failed.append(step)
    if steps:
      raise RuntimeError(
          f'None of the checkpoints in {self._directory} (steps {steps}) '
          "restores; see the warnings above for each step's error"
      )
    return None

  def _read(self, step: int, target: PyTree) -> tuple[PyTree, dict[str, list[Any]]]:
    """The restored state and the fingerprints saved with it."""
    # Orbax restores into the target's structure even when the step's tree metadata is
    # gone, but then neither it nor the fingerprints check anything: count it as damaged.
    metadata = self._manager.item_metadata(step)
    if metadata is None:
      raise ValueError(f'its tree metadata ({step}/default/_METADATA) is missing')
    state = self._manager.restore(step, args=ocp.args.StandardRestore(target))
    return state, (metadata.custom_metadata or {}).get(_FINGERPRINTS, {})

  def _set_aside_damaged(self) -> None:
    """Renames the damaged steps so that orbax neither lists, re-saves over, nor deletes them."""
    if jax.process_index() == 0:
      for step in self._damaged:
        target = self._directory / f'{step}.damaged-{int(time.time())}'
        (self._directory / str(step)).rename(target)
        logging.warning('Set the damaged checkpoint of step %d aside as %s', step, target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('osas.checkpoints.set_aside_damaged')
    self._damaged = []
    self._manager.reload()

  def wait_until_finished(self) -> None:
    """Blocks until every asynchronous save is on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves, then releases orbax's resources."""
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
