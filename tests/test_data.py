"""Tests of the input pipeline: sources, splits, determinism, sharding."""

import collections
import os

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from sklearn import datasets as sk_datasets
import tensorflow_datasets as tfds

from data_helpers import id_images
from data_helpers import make_config
from data_helpers import open_split
from data_helpers import raw_pixels
from data_helpers import write_npz
from osas.data import base
from osas.data import sources
from osas.data import splits


class NpzTestCase(parameterized.TestCase):
  """Writes a 10-example identifiable train.npz (and a test.npz)."""

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path
    write_npz(self.dir, 'train.npz', x=id_images(10), y=np.arange(10) % 3)
    write_npz(self.dir, 'test.npz', x=id_images(4), y=np.array([0, 1, 2, 0]))
    self.config = make_config(
        source='npz', npz_dir=self.dir, train_split='train', valid_split='train[7:]'
    )


class SplitsTest(parameterized.TestCase):

  @parameterized.parameters(
      ('train', [('train', 0, 100)]),
      ('train[:45]', [('train', 0, 45)]),
      ('train[45:]', [('train', 45, 100)]),
      ('train[-10:]', [('train', 90, 100)]),
      ('train[:-10]', [('train', 0, 90)]),
      ('train[:10%]', [('train', 0, 10)]),
      ('train[12.5%:-25%]', [('train', 12, 75)]),  # round(12.5) == 12.
      ('train[:5] + test[2:]', [('train', 0, 5), ('test', 2, 7)]),
  )
  def test_resolves_like_tfds(self, spec, expected):
    sizes = {'train': 100, 'test': 7}
    got = splits.resolve(spec, 'f', lambda b: sizes[b])
    self.assertEqual([(s.base, s.start, s.stop) for s in got], expected)

  @parameterized.parameters(
      'train[x:]',
      'train[1:2:3]',
      'train[5]',
      '[1:2]',
      'train[:1.5]',
      'train[10%:20]',
      '',
      'train[1:]x',
  )
  def test_unparsable(self, spec):
    with self.assertRaisesRegex(ValueError, 'config.data.valid_split: cannot parse'):
      splits.resolve(spec, 'config.data.valid_split', lambda b: 100)

  @parameterized.parameters(
      ('train[:101]', 'outside'),
      ('train[-200%:]', 'outside'),
      ('train[50:50]', 'selects no examples'),
      ('train[60:40]', 'selects no examples'),
      ('valid', "unknown split 'valid'"),
  )
  def test_bad_range_or_name(self, spec, message):
    def base_size(name):
      if name != 'train':
        raise KeyError('known: train')
      return 100

    with self.assertRaisesRegex(ValueError, f'^fld: .*{message}'):
      splits.resolve(spec, 'fld', base_size)


class DigitsTest(parameterized.TestCase):

  def test_split_sizes_and_metadata(self):
    config = make_config()
    sizes = {s: open_split(config, s).num_examples for s in ('train', 'valid', 'test')}
    self.assertEqual(sizes, {'train': 1200, 'valid': 237, 'test': 360})
    split = open_split(config, 'test')
    self.assertEqual((split.num_classes, split.image_shape), (10, (8, 8, 1)))

  def test_train_and_test_partition_the_data(self):
    def examples(spec):
      split = open_split(make_config(test_split=spec), 'test', batch=1797)
      (batch,) = split.eval_batches()
      keep = batch['valid'] > 0
      pixels = raw_pixels(split, batch['image'][keep])
      return collections.Counter(
          (p.astype(np.uint8).tobytes(), int(l)) for p, l in zip(pixels, batch['label'][keep])
      )

    train, test = examples('train'), examples('test')
    self.assertEqual((sum(train.values()), sum(test.values())), (1437, 360))
    digits = sk_datasets.load_digits()
    everything = collections.Counter(
        (im.astype(np.uint8)[..., None].tobytes(), int(l))
        for im, l in zip(digits.images, digits.target)
    )
    self.assertEqual(train + test, everything)

  def test_constants_match_the_data(self):
    images = sk_datasets.load_digits().images
    np.testing.assert_allclose(sources.DIGITS_STATS, ((images.mean(),), (images.std(),)), rtol=1e-9)


class NpzTest(NpzTestCase):

  def test_metadata_and_test_split(self):
    split = open_split(self.config, 'test')
    self.assertEqual((split.num_examples, split.num_classes, split.image_shape), (4, 3, (4, 4, 1)))

  def test_normalisation_by_hand(self):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (6, 2, 3, 2), dtype=np.uint8)
    write_npz(self.dir, 'train.npz', x=x, y=np.arange(6))
    split = open_split(self.config, batch=6)
    (batch,) = split.eval_batches()
    pixels = x.reshape(-1, 2).astype(np.float64)
    mean = [np.mean(pixels[:, c]) for c in range(2)]
    std = [np.sqrt(np.mean((pixels[:, c] - mean[c]) ** 2)) for c in range(2)]
    np.testing.assert_allclose(batch['image'], (x - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(batch['label'], np.arange(6))

  def test_cifar10_name_selects_cifar10_constants(self):
    write_npz(self.dir, 'train.npz', x=np.full((2, 3, 3, 3), 7, np.uint8), y=np.array([0, 1]))
    self.config.name = 'cifar10'
    (batch,) = open_split(self.config, batch=2).eval_batches()
    mean, std = (np.float32(s) for s in base.DATASET_STATS['cifar10'])
    np.testing.assert_allclose(batch['image'][0, 0, 0], (7 - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(mean / 255, [0.4914, 0.4822, 0.4465], atol=1e-6)


class DeterminismTest(NpzTestCase):

  def _split(self, augmentation='cifar', **kwargs):
    config = make_config(augmentation=augmentation, image_size=12, workers=kwargs.pop('workers', 0))
    return open_split(config, train=True, **kwargs)

  def test_same_seed_same_batches_different_seed_differs(self):
    a, b, c = self._split(seed=3), self._split(seed=3), self._split(seed=4)
    for step in (0, 1, 150, 151):  # 150 * 8 = 1200: the second epoch starts.
      np.testing.assert_array_equal(a.batch(step)['image'], b.batch(step)['image'])
    self.assertFalse(np.array_equal(a.batch(0)['label'], c.batch(0)['label']))

  @parameterized.parameters(0, 2)
  def test_batches_equal_batch(self, workers):
    split = self._split(workers=workers)
    for step, got in zip(range(5, 9), split.batches(start_step=5)):
      expected = self._split().batch(step)  # A fresh, "resumed" split.
      for key in ('image', 'label'):
        np.testing.assert_array_equal(got[key], expected[key])

  @parameterized.parameters(('cifar', 2), ('cifar', 4), ('imagenet', 2))
  def test_global_batch_is_independent_of_process_count(self, aug, hosts):
    kwargs = dict(augmentation=aug, batch=24, seed=7)
    one = self._split(**kwargs, process_index=0, process_count=1)
    many = [self._split(**kwargs, process_index=h, process_count=hosts) for h in range(hosts)]
    for step in (0, 49, 50):  # Batch 49 straddles epochs 0 and 1.
      whole = one.batch(step)
      for key in ('image', 'label'):
        np.testing.assert_array_equal(
            np.concatenate([m.batch(step)[key] for m in many]), whole[key]
        )

  def test_each_epoch_covers_every_example_once(self):
    split = open_split(self.config, batch=4, seed=5)
    pixels = np.concatenate(
        [split.batch(t)['image'][:, 0, 0, 0] for t in range(5)]
    )  # 20 positions: 2 epochs.
    ids = raw_pixels(split, pixels)
    self.assertCountEqual(ids[:10], range(10))
    self.assertCountEqual(ids[10:], range(10))
    self.assertFalse(np.array_equal(ids[:10], ids[10:]))  # Reshuffled.
    self.assertFalse(np.array_equal(ids[:10], np.arange(10)))  # Shuffled.

  def test_train_augments_and_eval_does_not(self):
    config = make_config(augmentation='cifar')
    plain = open_split(config, train=False).batch(0)['image']
    augmented = open_split(config, train=True).batch(0)['image']
    self.assertFalse(np.array_equal(plain, augmented))
    (evaluated,) = open_split(config, batch=1200).eval_batches()
    self.assertEqual(evaluated['image'].shape, (1200, 8, 8, 1))


class EvalBatchesTest(NpzTestCase):

  @parameterized.parameters(('pad', [4, 4, 2]), ('drop', [4, 4]))
  def test_counts_masks_and_order(self, remainder, valid_counts):
    split = open_split(self.config, batch=4)
    batches = list(split.eval_batches(remainder))
    self.assertEqual([int(b['valid'].sum()) for b in batches], valid_counts)
    images = np.concatenate([b['image'] for b in batches])
    valid = np.concatenate([b['valid'] for b in batches]) > 0
    ids = raw_pixels(split, images[valid, 0, 0, 0])
    np.testing.assert_array_equal(ids, np.arange(sum(valid_counts)))
    self.assertTrue(np.all(images[~valid] == 0))
    self.assertTrue(np.all(np.concatenate([b['label'] for b in batches])[~valid] == 0))
    self.assertTrue(all(b['valid'].dtype == np.float32 for b in batches))

  def test_hosts_take_contiguous_slices(self):
    whole = list(open_split(self.config, batch=4).eval_batches())
    hosts = [
        list(open_split(self.config, batch=4, process_index=h, process_count=2).eval_batches())
        for h in range(2)
    ]
    self.assertLen(hosts[1], 3)
    np.testing.assert_array_equal(hosts[1][2]['valid'], [0, 0])
    for t, batch in enumerate(whole):
      for key in ('image', 'label', 'valid'):
        np.testing.assert_array_equal(np.concatenate([h[t][key] for h in hosts]), batch[key])

  def test_bad_remainder(self):
    with self.assertRaisesRegex(ValueError, 'remainder'):
      next(open_split(self.config).eval_batches('keep'))


class TfdsTest(parameterized.TestCase):

  def test_cifar10_mock(self):
    config = make_config(
        source='tfds',
        name='cifar10',
        train_split='train[:40]',
        valid_split='train[40:]',
        augmentation='cifar',
    )
    with tfds.testing.mock_data(num_examples=50):
      split = open_split(config, batch=8, train=True)
      self.assertEqual(
          (split.num_examples, split.num_classes, split.image_shape), (40, 10, (32, 32, 3))
      )
      valid = open_split(config, 'valid', batch=4)
      self.assertEqual(valid.num_examples, 10)
      halves = [
          open_split(config, batch=8, train=True, process_index=h, process_count=2).batch(5)
          for h in range(2)
      ]
      whole = split.batch(5)
      for key in ('image', 'label'):
        np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), whole[key])
      # Mock images are uint8 decoded arrays: check the round trip.
      source = tfds.data_source('cifar10', split='train')
      (batch,) = open_split(config, batch=40).eval_batches()
      np.testing.assert_array_equal(raw_pixels(split, batch['image'][3]), source[3]['image'])
      self.assertEqual(batch['label'][3], source[3]['label'])

  def test_imagenet2012_mock(self):
    config = make_config(
        source='tfds',
        name='imagenet2012',
        test_split='validation',
        augmentation='imagenet',
        image_size=24,
    )
    with tfds.testing.mock_data(num_examples=6):
      split = open_split(config, 'test', batch=4, train=True)
      self.assertEqual((split.num_classes, split.image_shape), (1000, (24, 24, 3)))
      self.assertEqual(split.batch(0)['image'].shape, (4, 24, 24, 3))
      batches = list(split.eval_batches())
      np.testing.assert_array_equal(batches[-1]['valid'], [1, 1, 0, 0])


class ErrorsTest(NpzTestCase):

  @parameterized.named_parameters(
      ('source', dict(source='foo'), "config.data.source: unknown 'foo'; known: digits, npz, tfds"),
      ('augmentation', dict(augmentation='foo'), 'config.data.augmentation'),
      ('tfds_name', dict(source='tfds', name='no_such_set'), 'config.data.name'),
      ('npz_dir_none', dict(source='npz'), 'config.data.npz_dir'),
      ('npz_dir_missing', dict(source='npz', npz_dir='/no/such/dir'), 'config.data.npz_dir'),
      (
          'bad_split',
          dict(valid_split='train[x:]'),
          "config.data.valid_split: cannot parse 'train\\[x:\\]'",
      ),
      ('empty_split', dict(valid_split='train[5:5]'), 'config.data.valid_split'),
      ('image_size', dict(augmentation='imagenet'), 'config.data.image_size'),
      ('workers', dict(workers=-1), 'config.data.workers'),
  )
  def test_config_errors(self, overrides, message):
    with self.assertRaisesRegex(ValueError, message):
      open_split(make_config(**overrides), 'valid')

  @parameterized.named_parameters(
      ('no_x', dict(y=np.zeros(3, np.int64)), "no array 'x'"),
      ('no_y', dict(x=id_images(3)), "no array 'y'"),
      ('float_x', dict(x=np.zeros((3, 4, 4, 1)), y=np.zeros(3, np.int64)), 'uint8'),
      ('3d_x', dict(x=np.zeros((3, 4, 4), np.uint8), y=np.zeros(3, np.int64)), '4-D'),
      ('nchw', dict(x=np.zeros((3, 3, 8, 8), np.uint8), y=np.zeros(3, np.int64)), 'NCHW'),
      ('short_y', dict(x=id_images(3), y=np.zeros(2, np.int64)), '2 labels but'),
      ('float_y', dict(x=id_images(3), y=np.zeros(3)), "'y' must be"),
  )
  def test_bad_train_npz(self, arrays, message):
    write_npz(self.dir, 'train.npz', **arrays)
    with self.assertRaisesRegex(ValueError, f'train.npz: .*{message}'):
      open_split(self.config)

  def test_missing_files(self):
    os.remove(os.path.join(self.dir, 'test.npz'))
    open_split(self.config)  # test.npz is read only when a split needs it.
    with self.assertRaisesRegex(ValueError, 'test.npz: no such file'):
      open_split(self.config, 'test')
    os.remove(os.path.join(self.dir, 'train.npz'))
    with self.assertRaisesRegex(ValueError, 'train.npz: no such file'):
      open_split(self.config)

  def test_not_an_npz(self):
    with open(os.path.join(self.dir, 'train.npz'), 'w') as f:
      f.write('hello')
    with self.assertRaisesRegex(ValueError, 'train.npz: not a readable'):
      open_split(self.config)

  @parameterized.named_parameters(
      (
          'indivisible',
          dict(batch=10, process_count=3, process_index=0),
          'global_batch_size: 10 is not divisible',
      ),
      ('zero_batch', dict(batch=0), 'global_batch_size'),
      ('process_index', dict(process_index=2, process_count=2), 'process_index'),
  )
  def test_argument_errors(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      open_split(self.config, **kwargs)

  def test_unknown_split_argument(self):
    with self.assertRaisesRegex(ValueError, "split: unknown 'eval'"):
      open_split(self.config, 'eval')


if __name__ == '__main__':
  absltest.main()
