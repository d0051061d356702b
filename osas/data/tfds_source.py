"""TFDS datasets read through `as_data_source`: random access, no TensorFlow."""

from __future__ import annotations

import functools
from typing import Any, Sequence

from absl import logging
import numpy as np

from osas.data import base
from osas.data import splits


def _first_line(error: Exception) -> str:
  # TFDS errors can run to hundreds of lines (e.g. every known dataset name).
  return (str(error).strip().splitlines() or [type(error).__name__])[0]


class TfdsRecords(base.Records):
  """Segments of TFDS data sources, concatenated; images decoded on access."""

  def __init__(self, parts: Sequence[tuple[Sequence[Any], splits.Segment]]):
    self._sources = [source for source, _ in parts]
    self._starts = np.array([segment.start for _, segment in parts])
    self._offsets = np.cumsum([0] + [len(segment) for _, segment in parts])

  def __len__(self) -> int:
    return int(self._offsets[-1])

  def gather(self, indices: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    indices = np.asarray(indices, np.int64)
    parts = np.searchsorted(self._offsets[1:], indices, side='right')
    local = self._starts[parts] + indices - self._offsets[parts]
    examples = [self._sources[p][int(i)] for p, i in zip(parts, local)]
    # Without TensorFlow, TFDS decodes images to uint8 numpy arrays (with PIL
    # or OpenCV); grey images may come without a channel axis.
    images = [np.asarray(ex['image'], np.uint8) for ex in examples]
    images = [im[..., None] if im.ndim == 2 else im for im in images]
    labels = np.array([ex['label'] for ex in examples], np.int32)
    return images, labels.reshape(len(examples))


class TfdsSource(base.Source):
  """A TFDS dataset prepared (as array_record) under `builder.data_dir`."""

  def __init__(self, builder: Any, **kwargs):
    super().__init__(**kwargs)
    self._builder = builder
    self._open = functools.cache(self._open_split)

  def _open_split(self, split: str) -> Sequence[Any]:
    known = list(self._builder.info.splits)  # Empty until prepared.
    if known and split not in known:
      raise KeyError(f'known: {", ".join(known)}')
    try:
      return self._builder.as_data_source(split=split)
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(
          f'config.data.tfds_data_dir: cannot read split {split!r} of '
          f'{self._builder.name!r} from {self._builder.data_dir} (prepare it '
          f"with file_format='array_record'): {_first_line(e)}"
      ) from None

  def base_size(self, split: str) -> int:
    return len(self._open(split))

  def records(self, segments: Sequence[splits.Segment]) -> TfdsRecords:
    # Slices are applied here, not by TFDS: tfds.testing.mock_data ignores
    # them, and digits/npz share exactly this resolution.
    return TfdsRecords([(self._open(s.base), s) for s in segments])


def load_tfds(data_config: Any) -> TfdsSource:
  """Opens TFDS dataset `data_config.name` (never downloads anything)."""
  # Imported here: it costs ~0.4 s and only this source needs it.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  name = data_config.get('name')
  if not name:
    raise ValueError("config.data.name: a TFDS dataset name is required for source 'tfds'")
  try:
    builder = tfds.builder(name, data_dir=data_config.get('tfds_data_dir'))
  except tfds.core.registered.DatasetNotFoundError:
    raise ValueError(f'config.data.name: unknown TFDS dataset {name!r}') from None
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(
        f'config.data.name: cannot open TFDS dataset {name!r}: {_first_line(e)}'
    ) from None
  features = builder.info.features
  image, label = (features[k] if k in features.keys() else None for k in ('image', 'label'))
  if not isinstance(image, tfds.features.Image) or not isinstance(label, tfds.features.ClassLabel):
    raise ValueError(
        f"config.data.name: {name!r} lacks an 'image' Image and a 'label' ClassLabel feature"
    )
  if image.np_dtype != np.uint8:
    raise ValueError(
        f'config.data.name: {name!r} has {image.np_dtype} images; only uint8 ones are supported'
    )
  shape = tuple(image.shape)
  stats = base.DATASET_STATS.get(builder.name)
  if stats is None:
    logging.warning('No known statistics for %r: scaling pixels to [-1, 1].', builder.name)
    stats = ((127.5,) * shape[-1], (127.5,) * shape[-1])
  return TfdsSource(builder, num_classes=label.num_classes, image_shape=shape, stats=stats)
