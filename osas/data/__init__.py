"""Input pipeline: one `get_split` interface over digits, .npz and TFDS data.

`config.data` fields:

  source:         'digits' | 'npz' | 'tfds'
  name:           TFDS dataset name ('cifar10', 'imagenet2012'); for 'npz',
                  'cifar10' selects CIFAR-10's normalisation constants.
  npz_dir:        directory with train.npz and test.npz (x: uint8 NHWC, y: int).
  tfds_data_dir:  TFDS data_dir (datasets prepared as array_record), or None.
  train_split, valid_split, test_split: TFDS split syntax, e.g.
                  'train[:45000]', 'train[90%:]', 'test', 'train[:10]+test'.
  augmentation:   'none' | 'cifar' (zero-pad 4, random crop, flip) |
                  'imagenet' (Inception crop + flip; eval: resize, centre crop).
  image_size:     final square size for 'imagenet'; ignored otherwise.
  workers:        optional, default 0: threads that prefetch batches.

Bad values raise ValueError naming the field (or file) at fault.
"""

from osas.data.pipeline import DataSplit
from osas.data.pipeline import first_batch
from osas.data.pipeline import get_split

__all__ = ['DataSplit', 'first_batch', 'get_split']
