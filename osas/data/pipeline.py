"""DataSplit: deterministic, resumable, host-sharded batches of one split."""

from __future__ import annotations

import functools
import sys
from typing import Any, Iterator, Mapping, TypeVar

import grain
import jax
import numpy as np

from osas.data import augment
from osas.data import base
from osas.data import sources
from osas.data import splits

SPLIT_FIELDS = {'train': 'train_split', 'valid': 'valid_split', 'test': 'test_split'}
# Independent random streams derived from the one seed.
_SHUFFLE_STREAM, _AUGMENT_STREAM = 1, 2

T = TypeVar('T')
Batch = dict[str, np.ndarray]


def _lookup(registry: Mapping[str, T], name: str, key: Any) -> T:
  if key not in registry:
    raise ValueError(f'{name}: unknown {key!r}; known: {", ".join(registry)}')
  return registry[key]


class DataSplit:
  """One split, batched for this host; built by `get_split`.

  Global training batch `t` is positions [t*B, (t+1)*B) of the concatenation
  of epochs, each epoch a permutation of the split drawn from (seed, epoch);
  host h holds rows [h*b, (h+1)*b) of it (b = B / process_count). An example's
  augmentation draws depend on (seed, position) only, so the global batch is
  the same for any number of hosts, and `batch(t)` is the same whenever asked.
  """

  def __init__(
      self,
      records: base.Records,
      *,
      source: base.Source,
      augmentation: augment.Augmentation,
      image_size: int | None,
      global_batch_size: int,
      train: bool,
      seed: int,
      process_index: int,
      process_count: int,
      workers: int,
  ):
    self.num_examples = len(records)
    self.num_classes = source.num_classes
    self.image_shape = augmentation.output_shape(source.image_shape, image_size)
    self.global_batch_size = global_batch_size
    self.host_batch_size = global_batch_size // process_count
    self._records = records
    self._augmentation = augmentation
    self._image_size = image_size
    self._mean, self._std = source.mean, source.std
    self._train = train
    self._host_offset = process_index * self.host_batch_size
    self._seed = int(seed) % 2**64  # SeedSequence wants non-negative entropy.
    self._augment_key = int(
        np.random.SeedSequence([self._seed, _AUGMENT_STREAM]).generate_state(1, np.uint64)[0]
    )
    # Two epochs cached: a batch may straddle an epoch boundary.
    self._permutation = functools.lru_cache(maxsize=2)(self._new_permutation)
    self._read_options = grain.ReadOptions(num_threads=workers, prefetch_buffer_size=2 * workers)

  def _new_permutation(self, epoch: int) -> np.ndarray:
    # A materialised numpy permutation rather than grain's shuffle: grain's
    # index_shuffle costs milliseconds per index on small splits.
    rng = np.random.default_rng([self._seed, _SHUFFLE_STREAM, epoch])
    return rng.permutation(self.num_examples)

  def _host_positions(self, global_start: int) -> np.ndarray:
    return global_start + self._host_offset + np.arange(self.host_batch_size)

  def _shuffled(self, positions: np.ndarray) -> np.ndarray:
    """Indices into the split of stream positions (epochs concatenated)."""
    epochs, offsets = np.divmod(positions, self.num_examples)
    indices = np.empty_like(positions)
    for epoch in np.unique(epochs):
      mask = epochs == epoch
      indices[mask] = self._permutation(int(epoch))[offsets[mask]]
    return indices

  def _load(
      self, indices: np.ndarray, positions: np.ndarray, train: bool
  ) -> tuple[np.ndarray, np.ndarray]:
    """Float32 normalised images and int32 labels of `indices`."""
    images, labels = self._records.gather(indices)
    out = np.empty((len(labels), *self.image_shape), np.float32)
    aug, size = self._augmentation, self._image_size
    if train:
      draws = augment.uniforms(self._augment_key, positions, aug.num_draws)
      for i, image in enumerate(images):
        out[i] = aug.train(image, draws[i], size)
    else:
      for i, image in enumerate(images):
        out[i] = aug.eval(image, size)
    out -= self._mean
    out /= self._std
    return out, labels.astype(np.int32)

  def batch_spec(self, evaluation: bool = False) -> dict[str, jax.ShapeDtypeStruct]:
    """Global shapes and dtypes of `batch` (of `eval_batches` with evaluation), loading nothing."""
    n = self.global_batch_size
    spec = {
        'image': jax.ShapeDtypeStruct((n, *self.image_shape), np.float32),
        'label': jax.ShapeDtypeStruct((n,), np.int32),
    }
    if evaluation:
      spec['valid'] = jax.ShapeDtypeStruct((n,), np.float32)
    return spec

  def batch(self, step: int) -> Batch:
    """This host's rows of global training batch `step` (see class doc)."""
    if step < 0:
      raise ValueError(f'step: must be >= 0, got {step}')
    positions = self._host_positions(step * self.global_batch_size)
    image, label = self._load(self._shuffled(positions), positions, self._train)
    return {'image': image, 'label': label}

  def batches(self, start_step: int = 0) -> Iterator[Batch]:
    """batch(start_step), batch(start_step + 1), ... forever."""
    steps = grain.MapDataset.range(start_step, sys.maxsize)
    return iter(steps.map(self.batch).to_iter_dataset(self._read_options))

  def _eval_batch(self, index: int) -> Batch:
    positions = self._host_positions(index * self.global_batch_size)
    real = positions[positions < self.num_examples]  # A prefix: pad after.
    image, label = self._load(real, real, train=False)
    pad = self.host_batch_size - len(real)
    return {
        'image': np.pad(image, [(0, pad)] + [(0, 0)] * 3),
        'label': np.pad(label, (0, pad)),
        'valid': (np.arange(self.host_batch_size) < len(real)).astype(np.float32),
    }

  def eval_batches(self, remainder: str = 'pad') -> Iterator[Batch]:
    """One ordered pass, without augmentation, over this host's share.

    Args:
      remainder: 'pad' fills the last partial global batch with zeros (and
        valid=0); 'drop' leaves it out.
    """
    num_batches = {
        'pad': -(-self.num_examples // self.global_batch_size),
        'drop': self.num_examples // self.global_batch_size,
    }
    if remainder not in num_batches:
      raise ValueError(f"remainder: expected 'pad' or 'drop', got {remainder!r}")
    indices = grain.MapDataset.range(num_batches[remainder])
    return iter(indices.map(self._eval_batch).to_iter_dataset(self._read_options))


def _check_int(name: str, value: Any, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f'{name}: expected an int >= {minimum}, got {value!r}')
  return int(value)


def get_split(
    data_config: Any,
    split: str,
    *,
    global_batch_size: int,
    train: bool,
    seed: int,
    process_index: int | None = None,
    process_count: int | None = None,
) -> DataSplit:
  """Opens split 'train', 'valid' or 'test' of `config.data`, batched for this host.

  Args:
    data_config: the `config.data` section (see the package docstring).
    split: selects `data_config.<split>_split`.
    global_batch_size: examples per step over all hosts.
    train: whether `batch` and `batches` augment.
    seed: drives the per-epoch shuffle and the augmentation.
    process_index: this host; defaults to `jax.process_index()`.
    process_count: hosts; defaults to `jax.process_count()`.

  Raises:
    ValueError: naming the config field, argument or file at fault.
  """
  field = _lookup(SPLIT_FIELDS, 'split', split)
  process_count = jax.process_count() if process_count is None else process_count
  process_index = jax.process_index() if process_index is None else process_index
  process_count = _check_int('process_count', process_count, 1)
  if _check_int('process_index', process_index, 0) >= process_count:
    raise ValueError(f'process_index: {process_index} is not below process_count {process_count}')
  global_batch_size = _check_int('global_batch_size', global_batch_size, 1)
  if global_batch_size % process_count:
    raise ValueError(
        f'global_batch_size: {global_batch_size} is not '
        f'divisible by the process count {process_count}'
    )
  workers = _check_int('config.data.workers', data_config.get('workers', 0), 0)
  aug_name = data_config.get('augmentation', 'none')
  augmentation = _lookup(augment.AUGMENTATIONS, 'config.data.augmentation', aug_name)
  source = _lookup(sources.SOURCES, 'config.data.source', data_config.get('source'))(data_config)
  image_size = data_config.get('image_size')
  if None in augmentation.output_shape(source.image_shape, image_size):
    raise ValueError(
        f'config.data.augmentation: {aug_name!r} keeps the '
        'image size, which varies in this dataset; use '
        "'imagenet' (with config.data.image_size)"
    )
  segments = splits.resolve(data_config.get(field), f'config.data.{field}', source.base_size)
  return DataSplit(
      source.records(segments),
      source=source,
      augmentation=augmentation,
      image_size=image_size,
      global_batch_size=global_batch_size,
      train=train,
      seed=seed,
      process_index=process_index,
      process_count=process_count,
      workers=workers,
  )


def first_batch(data_config: Any, split: str, *, size: int, seed: int) -> tuple[Batch, tuple]:
  """This host's part of the first `size` examples of `split` in `seed`'s order, un-augmented.

  With the split's image shape. What a search computes its label-free and zero-cost
  scores and its BN recalibration from.
  """
  opened = get_split(data_config, split, global_batch_size=size, train=False, seed=seed)
  return opened.batch(0), opened.image_shape
