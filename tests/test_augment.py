"""Tests of the data augmentations: CIFAR pad-crop-flip, ImageNet crops, their draws."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from data_helpers import make_config
from data_helpers import open_split
from data_helpers import raw_pixels
from data_helpers import write_npz
from osas.data import augment


class AugmentTest(parameterized.TestCase):

  def test_uniforms_depend_only_on_key_and_position(self):
    u = augment.uniforms(9, np.array([5, 6, 7]), 4)
    self.assertTrue(np.all((u >= 0) & (u < 1)))
    np.testing.assert_array_equal(augment.uniforms(9, np.array([6]), 4)[0], u[1])
    self.assertFalse(np.array_equal(augment.uniforms(10, [6], 4)[0], u[1]))

  def test_cifar_is_a_shifted_flipped_copy(self):
    image = np.random.default_rng(0).integers(1, 256, (32, 32, 3), np.uint8)
    draws = np.array([2.5 / 9, 7.5 / 9, 0.2])  # Offsets 2, 7; flip.
    out = augment.pad_crop_flip(image, draws, None)
    expected = np.zeros_like(image)  # Shifted down 2, left 3: zero rows/cols.
    expected[2:, :29] = image[:30, 3:]
    np.testing.assert_array_equal(out, expected[:, ::-1])

  def test_cifar_in_pipeline_copies_shifts_and_flips(self):
    directory = self.create_tempdir().full_path
    image = np.random.default_rng(0).integers(1, 256, (1, 32, 32, 3), np.uint8)
    write_npz(directory, 'train.npz', x=image, y=np.zeros(1, np.int64))
    config = make_config(source='npz', npz_dir=directory, train_split='train', augmentation='cifar')
    split = open_split(config, batch=64, train=True)
    padded = np.pad(image[0], ((4, 4), (4, 4), (0, 0)))
    candidates = {
        (dy, dx, flip): padded[dy : dy + 32, dx : dx + 32][:, ::flip]
        for dy in range(9)
        for dx in range(9)
        for flip in (1, -1)
    }
    seen = set()
    for out in raw_pixels(split, split.batch(0)['image']):
      match = [k for k, c in candidates.items() if np.array_equal(out, c)]
      self.assertLen(match, 1)
      seen.add(match[0])
    self.assertGreater(len(seen), 20)
    self.assertEqual({k[2] for k in seen}, {1, -1})

  def test_imagenet_eval_centre_crop_without_resize(self):
    image = np.random.default_rng(0).integers(0, 256, (40, 32, 3), np.uint8)
    # Shorter side 32 == 28 / 0.875 already: a pure centre crop.
    out = augment.resize_centre_crop(image, 28)
    np.testing.assert_array_equal(out, image[6:34, 2:30])

  def test_imagenet_eval_resizes_shorter_side(self):
    image = np.zeros((64, 48, 3), np.uint8)
    image[:, 24:] = 200  # Right half bright.
    out = augment.resize_centre_crop(image, 28)  # Resized to 43x32, cropped.
    self.assertEqual(out.shape, (28, 28, 3))
    np.testing.assert_array_equal(out[:, :12], 0)
    np.testing.assert_array_equal(out[:, 16:], 200)

  def test_imagenet_train_crop(self):
    image = np.random.default_rng(0).integers(0, 256, (20, 20, 3), np.uint8)
    full = np.zeros(augment.AUGMENTATIONS['imagenet'].num_draws)
    full[:2] = 1 - 1e-12, 0.5  # Whole area, aspect 1; no flip (last = 0).
    np.testing.assert_array_equal(augment.random_resized_crop_flip(image, full, 20), image[:, ::-1])
    full[-1] = 0.9
    np.testing.assert_array_equal(augment.random_resized_crop_flip(image, full, 20), image)
    thin = np.full((100, 6, 3), 9, np.uint8)  # No crop fits: fallback.
    out = augment.random_resized_crop_flip(thin, np.full(41, 0.99), 12)
    np.testing.assert_array_equal(out, np.full((12, 12, 3), 9))


if __name__ == '__main__':
  absltest.main()
