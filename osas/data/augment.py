"""Augmentations by name; their randomness is a pure function of position."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
from PIL import Image

from osas.data import base

CIFAR_PAD = 4
CROP_AREA = (0.08, 1.0)  # Inception-style random resized crop.
CROP_LOG_ASPECT = (math.log(3 / 4), math.log(4 / 3))
CROP_ATTEMPTS = 10
EVAL_CROP_FRACTION = 0.875  # Resize to 256, centre crop 224.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z: np.ndarray) -> np.ndarray:
  z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return z ^ (z >> np.uint64(31))


def uniforms(key: int, positions: np.ndarray, count: int) -> np.ndarray:
  """[len(positions), count] floats in [0, 1) that depend only on the inputs.

  A counter-based hash rather than a generator per example: it is vectorised,
  and it makes an example's draws independent of which host or batch asks.

  Args:
    key: a 64-bit key, derived from the run's seed.
    positions: global positions of examples in the (epoch-concatenated) stream.
    count: draws per example.
  """
  positions = np.asarray(positions, np.uint64).reshape(-1, 1)
  draws = np.arange(1, count + 1, dtype=np.uint64)
  with np.errstate(over='ignore'):  # uint64 arithmetic wraps on purpose.
    z = _splitmix64(np.uint64(key) + positions * _GOLDEN)
    z = _splitmix64(z + draws * _GOLDEN)
  return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _maybe_flip(image: np.ndarray, draw: float) -> np.ndarray:
  return image[:, ::-1] if draw < 0.5 else image


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear (antialiased when shrinking) resize of a uint8 HWC image."""
  if image.shape[:2] == (height, width):
    return image
  # PIL resizes channels independently, so one 'L' image per channel gives the
  # same result as 'RGB' and works for any channel count.
  channels = (Image.fromarray(np.ascontiguousarray(image[..., c])) for c in range(image.shape[-1]))
  size = (width, height)
  return np.stack([np.asarray(c.resize(size, Image.Resampling.BILINEAR)) for c in channels], -1)


def pad_crop_flip(image: np.ndarray, draws: np.ndarray, image_size: int | None) -> np.ndarray:
  """Zero-pads by CIFAR_PAD, crops back to the input size, maybe flips.

  Zero padding (black borders in pixel space) as in the standard CIFAR ResNet
  recipe (torchvision `RandomCrop(32, padding=4)`).
  """
  del image_size  # Crops back to the input size.
  height, width = image.shape[:2]
  # The crop at (top, left) of the padded image is the input shifted by
  # (top - pad, left - pad); copying the overlap avoids np.pad's overhead.
  dy, dx = (int(d * (2 * CIFAR_PAD + 1)) - CIFAR_PAD for d in draws[:2])
  out = np.zeros_like(image)
  out[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)] = image[
      max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)
  ]
  return _maybe_flip(out, draws[2])


def _crop_box(height: int, width: int, draws: np.ndarray) -> tuple[int, int, int, int]:
  """(top, left, crop height, crop width) of an Inception-style crop."""
  for attempt in range(CROP_ATTEMPTS):
    area_draw, aspect_draw, top_draw, left_draw = draws[4 * attempt :][:4]
    area = height * width * (CROP_AREA[0] + area_draw * (CROP_AREA[1] - CROP_AREA[0]))
    aspect = math.exp(CROP_LOG_ASPECT[0] + aspect_draw * (CROP_LOG_ASPECT[1] - CROP_LOG_ASPECT[0]))
    crop_w = round(math.sqrt(area * aspect))
    crop_h = round(math.sqrt(area / aspect))
    if 0 < crop_w <= width and 0 < crop_h <= height:
      top, left = int(top_draw * (height - crop_h + 1)), int(left_draw * (width - crop_w + 1))
      return top, left, crop_h, crop_w
  # No luck (very elongated image): as torchvision, a centre crop with the
  # aspect ratio clamped to the allowed range.
  aspect = min(max(width / height, 3 / 4), 4 / 3)
  crop_h = min(height, round(width / aspect))
  crop_w = min(width, round(height * aspect))
  return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def random_resized_crop_flip(
    image: np.ndarray, draws: np.ndarray, image_size: int | None
) -> np.ndarray:
  top, left, crop_h, crop_w = _crop_box(*image.shape[:2], draws)
  crop = image[top : top + crop_h, left : left + crop_w]
  return _maybe_flip(_resize(crop, image_size, image_size), draws[-1])


def resize_centre_crop(image: np.ndarray, image_size: int | None) -> np.ndarray:
  """Resizes the shorter side to image_size / 0.875, centre crops image_size."""
  height, width = image.shape[:2]
  scale = round(image_size / EVAL_CROP_FRACTION) / min(height, width)
  new_h = max(image_size, round(height * scale))
  new_w = max(image_size, round(width * scale))
  top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
  return _resize(image, new_h, new_w)[top : top + image_size, left : left + image_size]


def _square_shape(shape: base.ImageShape, image_size: int | None) -> base.ImageShape:
  if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size <= 0:
    raise ValueError(
        "config.data.image_size: augmentation 'imagenet' needs "
        f'a positive int, got {image_size!r}'
    )
  return image_size, image_size, shape[-1]


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """Maps a uint8 HWC image to its training or evaluation version."""

  # (image, draws [num_draws], image_size) -> image.
  train: Callable[[np.ndarray, np.ndarray, int | None], np.ndarray]
  # (image, image_size) -> image; deterministic.
  eval: Callable[[np.ndarray, int | None], np.ndarray]
  output_shape: Callable[[base.ImageShape, int | None], base.ImageShape]
  num_draws: int = 0


def _unchanged(image_or_shape: Any, *unused) -> Any:
  return image_or_shape  # Only 'imagenet' resizes.


AUGMENTATIONS: dict[str, Augmentation] = {
    'none': Augmentation(_unchanged, _unchanged, _unchanged),
    'cifar': Augmentation(pad_crop_flip, _unchanged, _unchanged, num_draws=3),
    'imagenet': Augmentation(
        random_resized_crop_flip, resize_centre_crop, _square_shape, num_draws=4 * CROP_ATTEMPTS + 1
    ),
}
