"""Two processes joined by jax.distributed (2 CPU devices each) compute what one process does."""

import json
import os
import socket
import subprocess
import sys
import time

from absl.testing import absltest
import numpy as np

import helpers
from osas import main

# A global batch of 4 ghost batches of 8: one per device of the 2 x 2 devices.
OVERRIDES = {
    'supernet.batch_size': 32,
    'supernet.eval_batch_size': 32,
    'supernet.lr_reference_batch_size': 32,
    'search.batch_size': 32,
}
STAGES = ('train_supernet', 'search')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _cli(workdir, *flags, devices=2):
  command = [
      sys.executable,
      '-m',
      'osas.main',
      f'--config={helpers.TINY}',
      f'--workdir={workdir}',
      f'--config.stages={STAGES}',
      *(f'--config.{k}={v}' for k, v in OVERRIDES.items()),
      *flags,
  ]
  env = {
      **os.environ,
      'PYTHONPATH': helpers.ROOT,
      'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}',
  }
  return subprocess.Popen(
      command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
  )


def _finish(processes, timeout_s):
  """Waits for all, killing every one still running at the deadline; returns their stderr."""
  deadline, errors = time.time() + timeout_s, []
  try:
    for process in processes:
      errors.append(process.communicate(timeout=max(deadline - time.time(), 1))[1])
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
  return errors


def _records(workdir):
  with open(os.path.join(workdir, 'search', 'candidates.jsonl')) as f:
    return [json.loads(line) for line in f]


class TwoProcessTest(absltest.TestCase):

  def test_two_processes_write_what_one_process_writes(self):
    reference = self.create_tempdir().full_path
    main.run(helpers.tiny(stages=STAGES, **OVERRIDES), reference)
    workdir = self.create_tempdir().full_path
    address = f'--coordinator_address=127.0.0.1:{_free_port()}'
    processes = [_cli(workdir, address, '--num_processes=2', f'--process_id={i}') for i in range(2)]
    errors = _finish(processes, timeout_s=400)
    for i, process in enumerate(processes):
      self.assertEqual(process.returncode, 0, f'process {i}:\n{errors[i][-3000:]}')
    self.assertIn('process 0 of 2, 2 local / 4 global devices', errors[0])
    expected, got = _records(reference), _records(workdir)
    self.assertEqual([r['arch'] for r in got], [r['arch'] for r in expected])
    for field in ('accuracy', 'loss', 'kl', 'params', 'flops'):
      np.testing.assert_allclose(
          [r[field] for r in got], [r[field] for r in expected], rtol=1e-4, err_msg=field
      )
    with (
        open(os.path.join(workdir, 'search', 'selection.json')) as f,
        open(os.path.join(reference, 'search', 'selection.json')) as g,
    ):
      self.assertEqual(json.load(f), json.load(g))

  def test_coordinator_that_never_answers_is_a_clear_error_in_bounded_time(self):
    started = time.time()
    process = _cli(
        self.create_tempdir().full_path,
        f'--coordinator_address=127.0.0.1:' f'{_free_port()}',
        '--num_processes=2',
        '--process_id=1',
        '--config.distributed_timeout_s=5',
    )
    (stderr,) = _finish([process], timeout_s=120)
    self.assertEqual(process.returncode, 1, stderr[-3000:])
    last = stderr.strip().splitlines()[-1]
    self.assertStartsWith(last, 'osas: error: no coordinator answered at 127.0.0.1:')
    self.assertLess(time.time() - started, 100)


if __name__ == '__main__':
  absltest.main()
