"""What every data source provides: base splits of raw images, labels, stats."""

from __future__ import annotations

import abc
import functools
from typing import Callable, Sequence

import numpy as np

from osas.data import splits

ImageShape = tuple[int | None, int | None, int]  # None: varies per example.
Stats = tuple[tuple[float, ...], tuple[float, ...]]  # Per-channel mean, std.


def _scaled(mean: Sequence[float], std: Sequence[float]) -> Stats:
  """Stats published for [0, 1] images, in the uint8 units we normalise."""
  return tuple(255 * m for m in mean), tuple(255 * s for s in std)


# Published per-channel statistics of the training sets, keyed by dataset name.
DATASET_STATS: dict[str, Stats] = {
    'cifar10': _scaled((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    'cifar100': _scaled((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    'imagenet2012': _scaled((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class Records(abc.ABC):
  """Random access to the examples of one resolved split."""

  @abc.abstractmethod
  def __len__(self) -> int:
    ...

  @abc.abstractmethod
  def gather(self, indices: np.ndarray) -> tuple[Sequence[np.ndarray], np.ndarray]:
    """Returns (uint8 HWC images, int labels) of the examples at `indices`."""


class ArrayRecords(Records):
  """Examples held in memory as one uint8 NHWC array."""

  def __init__(self, images: np.ndarray, labels: np.ndarray):
    self.images, self.labels = images, labels

  def __len__(self) -> int:
    return len(self.labels)

  def gather(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return self.images[indices], self.labels[indices]


class Source(abc.ABC):
  """A dataset: named base splits ('train', 'test') plus metadata."""

  def __init__(self, *, num_classes: int, image_shape: ImageShape, stats: Stats):
    self.num_classes = num_classes
    self.image_shape = image_shape
    self.mean, self.std = (np.asarray(s, np.float32) for s in stats)

  @abc.abstractmethod
  def base_size(self, base: str) -> int:
    """Examples in base split `base`; KeyError (listing known ones) if none."""

  @abc.abstractmethod
  def records(self, segments: Sequence[splits.Segment]) -> Records:
    """The concatenation of `segments` of base splits."""


class ArraySource(Source):
  """A source whose base splits are loaded (lazily, once) into memory."""

  def __init__(self, loaders: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]], **kwargs):
    super().__init__(**kwargs)
    self._loaders = loaders
    self._load = functools.cache(lambda base: self._loaders[base]())

  def base_size(self, base: str) -> int:
    if base not in self._loaders:
      raise KeyError(f'known: {", ".join(self._loaders)}')
    return len(self._load(base)[1])

  def records(self, segments: Sequence[splits.Segment]) -> ArrayRecords:
    parts = [tuple(a[s.start : s.stop] for a in self._load(s.base)) for s in segments]
    if len(parts) == 1:
      return ArrayRecords(*parts[0])  # Views: no copy of a big train set.
    return ArrayRecords(*(np.concatenate(a) for a in zip(*parts)))
