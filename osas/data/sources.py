"""The registry of data sources: scikit-learn digits, .npz files and TFDS."""

from __future__ import annotations

import os
from typing import Any, Callable
import zipfile

import numpy as np
from sklearn import datasets as sk_datasets

from osas.data import base
from osas.data import tfds_source

# Mean and std of all 1,797 digits (pixel values 0..16), computed once.
DIGITS_STATS: base.Stats = ((4.884164579855314,), (6.016787548672236,))
DIGITS_NUM_TRAIN = 1437  # Of 1,797; the other 360 are 'test'.


def load_digits(data_config: Any) -> base.Source:
  """scikit-learn's bundled 8x8 digits, split by a permutation fixed forever."""
  del data_config  # Nothing to configure: the data ships with scikit-learn.
  digits = sk_datasets.load_digits()
  # Seed 0, not the config seed: every run must see the same train/test split.
  order = np.random.default_rng(0).permutation(len(digits.target))
  images = digits.images[order].astype(np.uint8)[..., None]
  labels = digits.target[order].astype(np.int32)
  cut = DIGITS_NUM_TRAIN
  return base.ArraySource(
      {'train': lambda: (images[:cut], labels[:cut]), 'test': lambda: (images[cut:], labels[cut:])},
      num_classes=10,
      image_shape=(8, 8, 1),
      stats=DIGITS_STATS,
  )


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads and checks `x` (uint8 NHWC) and `y` (labels) of one .npz file."""
  if not os.path.isfile(path):
    raise ValueError(f'{path}: no such file (from config.data.npz_dir)')
  try:
    with np.load(path, allow_pickle=False) as npz:
      arrays = {k: npz[k] for k in ('x', 'y') if k in npz.files}
  except (OSError, ValueError, AttributeError, zipfile.BadZipFile) as e:
    # AttributeError: a plain .npy file loads as an array, not an archive.
    raise ValueError(f'{path}: not a readable .npz archive ({e})') from None
  for key in ('x', 'y'):
    if key not in arrays:
      raise ValueError(f'{path}: has no array {key!r} (expected x: uint8 [N, H, W, C], y: int [N])')
  x, y = arrays['x'], arrays['y']
  if x.dtype != np.uint8 or x.ndim != 4:
    raise ValueError(
        f"{path}: 'x' must be a 4-D uint8 array [N, H, W, C] "
        f'(NHWC); got {x.dtype} with shape {x.shape}'
    )
  if x.shape[1] <= 4 < x.shape[3]:
    raise ValueError(f"{path}: 'x' of shape {x.shape} looks like NCHW; expected NHWC [N, H, W, C]")
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f"{path}: 'y' must be a 1-D integer array; got {y.dtype} with shape {y.shape}")
  if len(y) != len(x):
    raise ValueError(f"{path}: 'y' has {len(y)} labels but 'x' has {len(x)} images")
  if len(y) and y.min() < 0:
    raise ValueError(f"{path}: 'y' has negative labels")
  return x, y.astype(np.int32)


def pixel_stats(images: np.ndarray, chunk: int = 4096) -> base.Stats:
  """Per-channel mean and std of uint8 NHWC images, from exact histograms."""
  num_channels = images.shape[-1]
  counts = np.zeros((num_channels, 256), np.int64)
  # Chunked so that no wide copy of a big train set is ever made.
  for i in range(0, len(images), chunk):
    part = images[i : i + chunk].reshape(-1, num_channels)
    counts += np.stack([np.bincount(part[:, c], minlength=256) for c in range(num_channels)])
  values = np.arange(256.0)
  total = counts.sum(1)
  mean = counts @ values / total
  var = (counts * np.square(values - mean[:, None])).sum(1) / total
  # Floor at one grey level so that a constant channel cannot divide by zero.
  std = np.maximum(np.sqrt(var), 1.0)
  return tuple(mean.tolist()), tuple(std.tolist())


def load_npz(data_config: Any) -> base.Source:
  """`npz_dir/train.npz` and (read only when used) `npz_dir/test.npz`."""
  npz_dir = data_config.get('npz_dir')
  if not npz_dir or not os.path.isdir(npz_dir):
    raise ValueError(f'config.data.npz_dir: {npz_dir!r} is not a directory')
  train_path = os.path.join(npz_dir, 'train.npz')
  x, y = _read_npz(train_path)
  if not len(y):
    raise ValueError(f'{train_path}: has no examples')
  num_classes = int(y.max()) + 1
  name = data_config.get('name')
  stats = base.DATASET_STATS.get(name) or pixel_stats(x)
  if len(stats[0]) != x.shape[-1]:
    raise ValueError(
        f'config.data.name: {name!r} has {len(stats[0])}-channel '
        f'statistics but {train_path} has {x.shape[-1]} channels'
    )

  def load_test() -> tuple[np.ndarray, np.ndarray]:
    test_path = os.path.join(npz_dir, 'test.npz')
    test_x, test_y = _read_npz(test_path)
    if test_x.shape[1:] != x.shape[1:]:
      raise ValueError(
          f'{test_path}: images are {test_x.shape[1:]} but train.npz has {x.shape[1:]}'
      )
    if len(test_y) and test_y.max() >= num_classes:
      raise ValueError(
          f'{test_path}: label {test_y.max()} >= the {num_classes} classes of train.npz'
      )
    return test_x, test_y

  return base.ArraySource(
      {'train': lambda: (x, y), 'test': load_test},
      num_classes=num_classes,
      image_shape=x.shape[1:],
      stats=stats,
  )


SOURCES: dict[str, Callable[[Any], base.Source]] = {
    'digits': load_digits,
    'npz': load_npz,
    'tfds': tfds_source.load_tfds,
}
