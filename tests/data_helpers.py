"""Shared helpers of the data tests: configs, splits and small npz files."""

import os

import ml_collections
import numpy as np

from osas import data


def make_config(**overrides) -> ml_collections.ConfigDict:
  config = dict(
      source='digits',
      name=None,
      npz_dir=None,
      tfds_data_dir=None,
      train_split='train[:1200]',
      valid_split='train[1200:]',
      test_split='test',
      augmentation='none',
      image_size=None,
  )
  config.update(overrides)
  return ml_collections.ConfigDict(config)


def open_split(config, split='train', *, batch=8, train=False, seed=0, **kwargs) -> data.DataSplit:
  return data.get_split(config, split, global_batch_size=batch, train=train, seed=seed, **kwargs)


def raw_pixels(split: data.DataSplit, images: np.ndarray) -> np.ndarray:
  """Undoes the normalisation of uint8-valued images."""
  # pylint: disable=protected-access
  return np.round(images * split._std + split._mean).astype(np.int64)


def write_npz(directory: str, name: str, **arrays) -> str:
  path = os.path.join(directory, name)
  np.savez(path, **arrays)
  return path


def id_images(n: int, shape=(4, 4, 1)) -> np.ndarray:
  """Images whose every pixel holds the example's index: identifiable."""
  return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, *shape)).copy()
