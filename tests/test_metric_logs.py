"""Event files read back exactly (by our reader and by TensorBoard's), JSONL, progress lines."""

import json
import os

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from osas import metric_logs

SCALARS = [(1, {'loss': 2.5, 'accuracy': np.float32(0.125)}),
           (7, {'loss': jnp.asarray(0.1), 'count': np.int64(3)}),
           (2**40, {'loss': float('inf')})]


def _write(logdir, entries=SCALARS, **kwargs):
  with metric_logs.MetricWriter(logdir, **kwargs) as writer:
    for step, scalars in entries:
      writer.write_scalars(step, scalars)


def _expected(entries=SCALARS):
  return [(step, name, float(np.float32(value)))
          for step, scalars in entries for name, value in scalars.items()]


def _event_files(logdir):
  return sorted(f for f in os.listdir(logdir) if f.startswith('events.out.tfevents.'))


class MetricWriterTest(absltest.TestCase):

  def test_crc32c_known_value(self):
    self.assertEqual(metric_logs.crc32c(b'123456789'), 0xE3069283)  # The standard check value.

  def test_scalars_round_trip(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    (name,) = _event_files(logdir)
    self.assertTrue(name.endswith('.osas'))
    self.assertEqual(metric_logs.read_events(os.path.join(logdir, name)), _expected())

  def test_jsonl_has_one_line_per_write(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    with open(os.path.join(logdir, 'metrics.jsonl')) as f:
      lines = [json.loads(line) for line in f]
    self.assertEqual(lines, [{'step': 1, 'loss': 2.5, 'accuracy': 0.125},
                             {'step': 7, 'loss': float(jnp.asarray(0.1)), 'count': 3.0},
                             {'step': 2**40, 'loss': float('inf')}])

  def test_resume_adds_an_event_file_and_appends_jsonl(self):
    logdir = self.create_tempdir().full_path
    _write(logdir, SCALARS[:1])
    _write(logdir, SCALARS[1:])
    self.assertLen(_event_files(logdir), 2)
    self.assertEqual(metric_logs.read_events(logdir), _expected())  # A directory: all files.
    with open(os.path.join(logdir, 'metrics.jsonl')) as f:
      self.assertEqual([json.loads(line)['step'] for line in f], [1, 7, 2**40])

  def test_corrupted_byte_is_detected(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    path = os.path.join(logdir, _event_files(logdir)[0])
    with open(path, 'rb') as f:
      data = bytearray(f.read())
    for offset in (3, len(data) - 10):  # A record length, then a value.
      damaged = bytearray(data)
      damaged[offset] ^= 0x01
      with open(path, 'wb') as f:
        f.write(damaged)
      with self.assertRaisesRegex(ValueError, 'CRC mismatch'):
        metric_logs.read_events(path)

  def test_truncated_tail_keeps_the_complete_records(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    path = os.path.join(logdir, _event_files(logdir)[0])
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) - 3)  # What a writer killed mid-record leaves.
    self.assertEqual(metric_logs.read_events(path), _expected()[:-1])

  def test_text(self):
    logdir = self.create_tempdir().full_path
    with metric_logs.MetricWriter(logdir) as writer:
      writer.write_text(0, 'config', 'lr: 0.1\nsteps: ünï')
      writer.write_scalars(3, {'loss': 1.0})
    self.assertEqual(metric_logs.read_events(logdir),
                     [(0, 'config', 'lr: 0.1\nsteps: ünï'), (3, 'loss', 1.0)])

  def test_disabled_writes_nothing(self):
    logdir = os.path.join(self.create_tempdir().full_path, 'logs')
    _write(logdir, enabled=False)
    self.assertFalse(os.path.exists(logdir))

  def test_non_scalar_and_write_after_close_are_refused(self):
    writer = metric_logs.MetricWriter(self.create_tempdir().full_path)
    with self.assertRaisesRegex(ValueError, "'w' has shape"):
      writer.write_scalars(0, {'w': np.zeros(2)})
    writer.close()
    with self.assertRaisesRegex(ValueError, 'after close'):
      writer.write_scalars(0, {'loss': 1.0})

  def test_tensorboard_reads_the_same(self):
    try:
      from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    except ImportError:
      self.skipTest('tensorboard is not installed')
    logdir = self.create_tempdir().full_path
    _write(logdir)
    with metric_logs.MetricWriter(logdir) as writer:
      writer.write_text(9, 'config', 'filters: 16')
    accumulator = event_accumulator.EventAccumulator(logdir, size_guidance={'tensors': 0})
    accumulator.Reload()
    read = [(e.step, tag, e.value) for tag in accumulator.Tags()['scalars']
            for e in accumulator.Scalars(tag)]
    self.assertCountEqual(read, _expected())
    (text,) = accumulator.Tensors('config')
    self.assertEqual((text.step, text.tensor_proto.string_val), (9, [b'filters: 16']))


class ProgressTest(absltest.TestCase):

  def _progress(self, times, **kwargs):
    clock, lines = iter(times), []
    progress = metric_logs.Progress(100, examples_per_step=32, every_s=10.0,
                                    log_fn=lambda fmt, line: lines.append(line),
                                    clock=lambda: next(clock), **kwargs)
    return progress, lines

  def test_logs_at_most_every_every_s_with_hand_computed_numbers(self):
    # Made at t=0; updates at t=4, 9.9 (too soon), 12.5, 20 (too soon), 30.
    progress, lines = self._progress([0.0, 4.0, 9.9, 12.5, 20.0, 30.0])
    self.assertIsNone(progress.update(10))
    self.assertIsNone(progress.update(20))
    # 25 steps in 12.5 s: 2 steps/s, 64 examples/s, 75 steps left: 37.5 s -> 38 s.
    self.assertEqual(progress.update(25), 'train: step 25/100 (25.0%), 64.0 examples/s, ETA 38s')
    self.assertIsNone(progress.update(40))
    # Since the last line: 35 steps in 17.5 s, again 2 steps/s; 40 steps left.
    self.assertEqual(progress.update(60), 'train: step 60/100 (60.0%), 64.0 examples/s, ETA 20s')
    self.assertLen(lines, 2)
    self.assertEqual(lines[-1], 'train: step 60/100 (60.0%), 64.0 examples/s, ETA 20s')

  def test_last_step_always_logs(self):
    progress, lines = self._progress([0.0, 1.0, 2.0])
    self.assertIsNone(progress.update(50))
    self.assertEqual(progress.update(100),
                     'train: step 100/100 (100.0%), 1600.0 examples/s, done in 2s')
    self.assertLen(lines, 1)

  def test_resumed_run_counts_only_its_own_steps(self):
    progress, _ = self._progress([1000.0, 1100.0], start_step=90, name='supernet')
    # 5 steps in 100 s (not 95): 1.6 examples/s; 5 steps left: 100 s.
    self.assertEqual(progress.update(95),
                     'supernet: step 95/100 (95.0%), 1.6 examples/s, ETA 1m40s')

  def test_long_eta(self):
    progress, _ = self._progress([0.0, 3600.0])
    self.assertEqual(progress.update(50), 'train: step 50/100 (50.0%), 0.4 examples/s, ETA 1h00m')

  def test_unit_names_what_a_step_counts(self):
    progress, _ = self._progress([0.0, 4.0], unit='candidates')  # 100 steps of 32 in 4 s.
    self.assertEqual(progress.update(100),
                     'train: step 100/100 (100.0%), 800.0 candidates/s, done in 4s')


if __name__ == '__main__':
  absltest.main()
