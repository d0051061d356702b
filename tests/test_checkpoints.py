"""Checkpoints round-trip exactly and fall back to an older step when the newest is damaged."""

import functools
import glob
import os
import shutil

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from osas import checkpoints


def _state(step):
  return {
      'params': {
          'w': jnp.arange(6.0).reshape(2, 3) * step,
          'b': jnp.full((3,), step, jnp.bfloat16),
      },
      'count': jnp.asarray(step, jnp.int32),
      # Over 1 KiB: tensorstore stores it out of line, without a CRC of its own.
      'table': jax.random.normal(jax.random.key(step), (32, 32)),
      'step': step,
      'key': jax.random.key(1000 + step),
  }


def _target():
  return jax.eval_shape(lambda: _state(0))


def _assert_state(test, restored, step):
  expected = _state(step)
  test.assertEqual(jax.tree.structure(restored), jax.tree.structure(expected))
  test.assertEqual(jax.random.key_impl(restored['key']), jax.random.key_impl(expected['key']))
  np.testing.assert_array_equal(
      jax.random.key_data(restored['key']), jax.random.key_data(expected['key'])
  )
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
    if isinstance(want, jax.Array):  # A Python int comes back as the target's dtype.
      if jnp.issubdtype(want.dtype, jax.dtypes.prng_key):
        continue
      test.assertEqual(got.dtype, want.dtype)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def _data_files(step_dir):
  return [
      f
      for f in glob.glob(os.path.join(step_dir, '**', 'd', '*'), recursive=True)
      if os.path.isfile(f)
  ]


def _truncate(step_dir):
  for path in _data_files(step_dir):
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)


def _garbage(step_dir):
  for path in _data_files(step_dir):
    with open(path, 'wb') as f:
      f.write(np.random.default_rng(0).bytes(os.path.getsize(path)))


def _flip_one_byte(step_dir, in_array):
  """Flips a byte mid-file: of the largest data file, or of the merged OCDBT index."""
  if in_array:
    path = max(_data_files(step_dir), key=os.path.getsize)
  else:
    (path,) = glob.glob(os.path.join(step_dir, 'default', 'd', '*'))
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))


def _remove_largest_data_file(step_dir):
  os.remove(max(_data_files(step_dir), key=os.path.getsize))


def _remove_tree_metadata(step_dir):
  os.remove(os.path.join(step_dir, 'default', '_METADATA'))


def _empty(step_dir):
  shutil.rmtree(step_dir)
  os.mkdir(step_dir)


DAMAGES = (
    ('truncated', _truncate),
    ('garbage', _garbage),
    ('flipped_byte_in_index', functools.partial(_flip_one_byte, in_array=False)),
    ('flipped_byte_in_array', functools.partial(_flip_one_byte, in_array=True)),
    ('missing_data_file', _remove_largest_data_file),
    ('no_tree_metadata', _remove_tree_metadata),
    ('empty_dir', _empty),
)


class CheckpointerTest(parameterized.TestCase):

  def _saved(self, steps=(1, 2, 3), **kwargs):
    directory = self.create_tempdir().full_path
    with checkpoints.Checkpointer(directory, **kwargs) as checkpointer:
      for step in steps:
        checkpointer.save(step, _state(step))
    return directory

  def test_round_trip_is_exact(self):
    directory = self._saved()
    checkpointer = checkpoints.Checkpointer(directory)
    self.assertEqual(checkpointer.latest_step, 3)
    for target in (_target(), _state(0)):  # Abstract or concrete.
      restored, step = checkpointer.restore_latest(target)
      self.assertEqual(step, 3)
      _assert_state(self, restored, 3)
    checkpointer.close()

  def test_restore_casts_to_the_target_dtype(self):
    target = _target()
    target['table'] = jax.ShapeDtypeStruct((32, 32), jnp.bfloat16)
    with checkpoints.Checkpointer(self._saved()) as checkpointer:
      restored, step = checkpointer.restore_latest(target)
    self.assertEqual(step, 3)  # Not taken for damage by the fingerprint check.
    np.testing.assert_array_equal(restored['table'], _state(3)['table'].astype(jnp.bfloat16))

  def test_interval_and_max_to_keep(self):
    directory = self.create_tempdir().full_path
    with checkpoints.Checkpointer(directory, max_to_keep=2, save_interval_steps=2) as c:
      self.assertEqual(
          [c.save(step, _state(step)) for step in range(1, 6)], [False, True, False, True, False]
      )  # Not the first step either.
      self.assertTrue(c.save(5, _state(5), force=True))
    self.assertEqual(sorted(os.listdir(directory)), ['4', '5'])

  def test_at_most_restores_an_earlier_step(self):
    with checkpoints.Checkpointer(self._saved(steps=(2, 4, 6))) as checkpointer:
      for at_most, want in ((6, 6), (5, 4), (4, 4), (3, 2)):
        restored, step = checkpointer.restore_latest(_target(), at_most=at_most)
        self.assertEqual(step, want)
        _assert_state(self, restored, want)
      self.assertIsNone(checkpointer.restore_latest(_target(), at_most=1))

  def test_no_checkpoint_gives_none(self):
    with checkpoints.Checkpointer(self.create_tempdir().full_path) as checkpointer:
      self.assertIsNone(checkpointer.restore_latest(_target()))
      self.assertIsNone(checkpointer.latest_step)

  @parameterized.named_parameters(*DAMAGES)
  def test_damaged_newest_falls_back_then_training_goes_on(self, damage):
    directory = self._saved()
    damage(os.path.join(directory, '3'))
    checkpointer = checkpoints.Checkpointer(directory, max_to_keep=3)
    with self.assertLogs(level='WARNING') as logs:
      restored, step = checkpointer.restore_latest(_target())
    self.assertEqual(step, 2)
    _assert_state(self, restored, 2)
    self.assertTrue(
        any('step 3' in line and directory in line for line in logs.output), logs.output
    )
    self.assertTrue(os.path.isdir(os.path.join(directory, '3')))  # Kept as it was.
    # Training resumes from step 2: saves step 3 again and goes on, past max_to_keep.
    for step in (3, 4, 5, 6):
      self.assertTrue(checkpointer.save(step, _state(step)))
    checkpointer.close()
    names = sorted(os.listdir(directory))
    self.assertEqual([n for n in names if '.damaged-' not in n], ['4', '5', '6'])
    (aside,) = [n for n in names if n.startswith('3.damaged-')]  # Not deleted.
    with checkpoints.Checkpointer(directory) as checkpointer:
      restored, step = checkpointer.restore_latest(_target())
    self.assertEqual(step, 6)
    _assert_state(self, restored, 6)
    self.assertTrue(os.path.isdir(os.path.join(directory, aside)))

  def test_killed_save_leaves_a_tmp_dir_that_is_ignored(self):
    directory = self._saved()
    partial = os.path.join(directory, '4.orbax-checkpoint-tmp-1700000000')
    shutil.copytree(os.path.join(directory, '3'), partial)
    _truncate(partial)
    with checkpoints.Checkpointer(directory) as checkpointer:
      self.assertEqual(checkpointer.latest_step, 3)
      restored, step = checkpointer.restore_latest(_target())
      _assert_state(self, restored, 3)
      self.assertTrue(checkpointer.save(4, _state(4)))
    with checkpoints.Checkpointer(directory) as checkpointer:
      restored, step = checkpointer.restore_latest(_target())
    self.assertEqual(step, 4)
    _assert_state(self, restored, 4)

  def test_newest_two_damaged_falls_back_two_steps(self):
    directory = self._saved()
    _empty(os.path.join(directory, '3'))
    _garbage(os.path.join(directory, '2'))
    with checkpoints.Checkpointer(directory) as checkpointer:
      with self.assertLogs(level='WARNING'):
        restored, step = checkpointer.restore_latest(_target())
      self.assertEqual(step, 1)
      _assert_state(self, restored, 1)
      self.assertTrue(checkpointer.save(2, _state(2)))
      self.assertEqual(checkpointer.latest_step, 2)

  def test_all_damaged_is_an_error_naming_the_directory(self):
    directory = self._saved(steps=(1, 2))
    _truncate(os.path.join(directory, '1'))
    _empty(os.path.join(directory, '2'))
    with checkpoints.Checkpointer(directory) as checkpointer:
      with self.assertLogs(level='WARNING'):
        with self.assertRaisesRegex(RuntimeError, f'None of the checkpoints in {directory}'):
          checkpointer.restore_latest(_target())
    self.assertEqual(sorted(os.listdir(directory)), ['1', '2'])  # Nothing renamed.

  def test_shape_mismatch_is_an_error(self):
    directory = self._saved(steps=(1,))
    target = _target()
    target['params']['w'] = jax.ShapeDtypeStruct((3, 3), jnp.float32)
    with checkpoints.Checkpointer(directory) as checkpointer:
      with self.assertLogs(level='WARNING') as logs:
        with self.assertRaises(RuntimeError):
          checkpointer.restore_latest(target)
    self.assertIn('not compatible with the stored shape', '\n'.join(logs.output))


if __name__ == '__main__':
  absltest.main()
