"""Reads TensorBoard event files back with TensorBoard's own reader, for tests."""

import glob
import os

from tensorboard.backend.event_processing import event_file_loader
from tensorboard.util import tensor_util


def read_events(path):
  """(step, tag, value) of every scalar and text summary, in file order.

  `path` is an event file or a directory whose event files are read in name (that is, time)
  order, as TensorBoard merges them. A damaged or truncated record ends its file's events, as
  in TensorBoard: its CRC check fails (what a writer killed mid-record leaves).
  """
  files = sorted(glob.glob(os.path.join(path, '*tfevents*'))) if os.path.isdir(path) else [path]
  out = []
  for file in files:
    for event in event_file_loader.EventFileLoader(file).Load():
      for value in event.summary.value:
        if not value.HasField('tensor'):
          continue
        array = tensor_util.make_ndarray(value.tensor)  # The loader turns scalars into tensors.
        if array.size != 1:
          continue
        item = array.reshape(()).item()
        out.append((event.step, value.tag, item.decode() if isinstance(item, bytes) else item))
  return out
