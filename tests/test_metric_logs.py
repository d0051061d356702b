"""Event files read back by TensorBoard's own readers, metrics.jsonl, progress lines."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np
from tensorboard.backend.event_processing import event_accumulator

import event_helpers
from osas import metric_logs

SCALARS = [
    (1, {'loss': 2.5, 'accuracy': np.float32(0.125)}),
    (7, {'loss': jnp.asarray(0.1), 'count': np.int64(3)}),
    (2**40, {'loss': float('inf')}),
]


def _write(logdir, entries=SCALARS, **kwargs):
  with metric_logs.MetricWriter(logdir, **kwargs) as writer:
    for step, scalars in entries:
      writer.write_scalars(step, scalars)


def _expected(entries=SCALARS):
  return [
      (step, name, float(np.float32(value)))
      for step, scalars in entries
      for name, value in scalars.items()
  ]


def _event_files(logdir):
  return sorted(f for f in os.listdir(logdir) if f.startswith('events.out.tfevents.'))


class MetricWriterTest(absltest.TestCase):

  def test_scalars_round_trip(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    (name,) = _event_files(logdir)
    self.assertTrue(name.endswith('.osas'))
    self.assertEqual(event_helpers.read_events(os.path.join(logdir, name)), _expected())

  def test_every_write_is_on_disk_before_close(self):
    logdir = self.create_tempdir().full_path
    writer = metric_logs.MetricWriter(logdir)
    writer.write_scalars(5, {'loss': 0.5})  # No flush() and no close(): a run killed here.
    self.assertEqual(event_helpers.read_events(logdir), [(5, 'loss', 0.5)])
    with open(os.path.join(logdir, 'metrics.jsonl')) as f:
      self.assertEqual(f.read(), '{"step": 5, "loss": 0.5}\n')
    writer.close()

  def test_jsonl_has_one_line_per_write(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    with open(os.path.join(logdir, 'metrics.jsonl')) as f:
      lines = [json.loads(line) for line in f]
    self.assertEqual(
        lines,
        [
            {'step': 1, 'loss': 2.5, 'accuracy': 0.125},
            {'step': 7, 'loss': float(jnp.asarray(0.1)), 'count': 3.0},
            {'step': 2**40, 'loss': float('inf')},
        ],
    )

  def test_resume_adds_an_event_file_and_appends_jsonl(self):
    logdir = self.create_tempdir().full_path
    _write(logdir, SCALARS[:1])
    _write(logdir, SCALARS[1:])
    self.assertLen(_event_files(logdir), 2)
    self.assertEqual(event_helpers.read_events(logdir), _expected())  # A directory: all files.
    with open(os.path.join(logdir, 'metrics.jsonl')) as f:
      self.assertEqual([json.loads(line)['step'] for line in f], [1, 7, 2**40])

  def test_damaged_record_fails_tensorboards_crc_check(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    path = os.path.join(logdir, _event_files(logdir)[0])
    with open(path, 'rb') as f:
      data = f.read()
    # The first record's length, then a byte of the last value: nothing, then all but the last.
    for offset, expected in ((3, []), (len(data) - 10, _expected()[:-1])):
      damaged = bytearray(data)
      damaged[offset] ^= 0x01
      with open(path, 'wb') as f:
        f.write(damaged)
      self.assertEqual(event_helpers.read_events(path), expected)

  def test_truncated_tail_keeps_the_complete_records(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    path = os.path.join(logdir, _event_files(logdir)[0])
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) - 3)  # What a writer killed mid-record leaves.
    self.assertEqual(event_helpers.read_events(path), _expected()[:-1])

  def test_text(self):
    logdir = self.create_tempdir().full_path
    with metric_logs.MetricWriter(logdir) as writer:
      writer.write_text(0, 'config', 'lr: 0.1\nsteps: ünï')
      writer.write_scalars(3, {'loss': 1.0})
    self.assertEqual(
        event_helpers.read_events(logdir), [(0, 'config', 'lr: 0.1\nsteps: ünï'), (3, 'loss', 1.0)]
    )

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

  def test_tensorboard_ui_reads_the_same(self):
    logdir = self.create_tempdir().full_path
    _write(logdir)
    with metric_logs.MetricWriter(logdir) as writer:
      writer.write_text(9, 'config', 'filters: 16')
    accumulator = event_accumulator.EventAccumulator(logdir, size_guidance={'tensors': 0})
    accumulator.Reload()
    read = [
        (e.step, tag, e.value)
        for tag in accumulator.Tags()['scalars']
        for e in accumulator.Scalars(tag)
    ]
    self.assertCountEqual(read, _expected())
    (text,) = accumulator.Tensors('config')
    self.assertEqual((text.step, text.tensor_proto.string_val), (9, [b'filters: 16']))

  def test_no_tensorflow_import(self):
    code = "import osas.metric_logs, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, '-c', code], check=True)


class ProgressTest(absltest.TestCase):

  def _progress(self, times, total=100, **kwargs):
    clock, lines = iter(times), []
    progress = metric_logs.Progress(
        total,
        examples_per_step=32,
        every_s=10.0,
        log_fn=lambda fmt, line: lines.append(line),
        clock=lambda: next(clock),
        **kwargs,
    )
    return progress, lines

  def test_rate_and_eta_exclude_the_compile(self):
    # Made at t=0; the first step (compile) ends at t=50; then updates at 55 (too soon), 62.5,
    # 70 (too soon), 79.5.
    progress, lines = self._progress([0.0, 50.0, 55.0, 62.5, 70.0, 79.5])
    self.assertIsNone(progress.update(1))  # No ETA before a rate after the compile exists.
    self.assertEqual(lines, ['train: first step (compile) took 50.0 s'])
    self.assertIsNone(progress.update(5))
    # 25 steps in 12.5 s after the compile: 2 steps/s, 64 examples/s; 74 steps left: 37 s.
    self.assertEqual(progress.update(26), 'train: step 26/100 (26.0%), 64.0 examples/s, ETA 37s')
    self.assertIsNone(progress.update(40))
    # Since the last line: 34 steps in 17 s, again 2 steps/s; 40 steps left.
    self.assertEqual(progress.update(60), 'train: step 60/100 (60.0%), 64.0 examples/s, ETA 20s')
    self.assertEqual(
        lines,
        [
            'train: first step (compile) took 50.0 s',
            'train: step 26/100 (26.0%), 64.0 examples/s, ETA 37s',
            'train: step 60/100 (60.0%), 64.0 examples/s, ETA 20s',
        ],
    )

  def test_last_step_always_logs(self):
    progress, lines = self._progress([0.0, 1.0, 2.0])
    self.assertIsNone(progress.update(50))
    # 50 steps in the 1 s after the compile; the total time counts the compile.
    self.assertEqual(
        progress.update(100), 'train: step 100/100 (100.0%), 1600.0 examples/s, done in 2s'
    )
    self.assertLen(lines, 2)
    self.assertEqual(sum('compile' in line for line in lines), 1)

  def test_one_step_run_says_done(self):
    progress, lines = self._progress([0.0, 52.34], total=1, name='supernet')
    self.assertEqual(progress.update(1), 'supernet: step 1/1 (100.0%), done in 52s')
    self.assertEqual(
        lines,
        ['supernet: first step (compile) took 52.3 s', 'supernet: step 1/1 (100.0%), done in 52s'],
    )

  def test_resumed_run_counts_only_its_own_steps(self):
    progress, lines = self._progress([1000.0, 1030.0, 1130.0], start_step=90, name='supernet')
    self.assertIsNone(progress.update(91))
    # After the compile, 5 steps in 100 s: 1.6 examples/s; 4 steps left: 80 s.
    self.assertEqual(
        progress.update(96), 'supernet: step 96/100 (96.0%), 1.6 examples/s, ETA 1m20s'
    )
    self.assertEqual(lines[0], 'supernet: first step (compile) took 30.0 s')

  def test_long_eta(self):
    progress, _ = self._progress([0.0, 10.0, 3610.0])
    progress.update(1)
    # 40 steps in 3600 s: 0.36 examples/s; 59 steps left: 5310 s.
    self.assertEqual(progress.update(41), 'train: step 41/100 (41.0%), 0.4 examples/s, ETA 1h28m')

  def test_unit_names_what_a_step_counts(self):
    progress, _ = self._progress([0.0, 1.0, 5.0], unit='candidates')
    progress.update(1)
    # 99 steps of 32 in the 4 s after the compile.
    self.assertEqual(
        progress.update(100), 'train: step 100/100 (100.0%), 792.0 candidates/s, done in 5s'
    )


if __name__ == '__main__':
  absltest.main()
