"""A stop request (SIGTERM) saves and exits 0; resumed runs end exactly as uninterrupted ones."""

import os
import signal
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import jax
import numpy as np

import helpers
from osas import main
from osas import preemption
from osas import workdir as workdir_lib


def _stop_at_poll(n):
  """A stand-in for preemption.requested that says 'stop' at its n-th call only."""
  calls = []

  def requested(poll=0, every=10):
    del poll, every
    calls.append(None)
    return len(calls) == n

  return mock.patch.object(preemption, 'requested', side_effect=requested)


def _checkpoints(workdir, *parts):
  directory = os.path.join(workdir, *parts, 'checkpoints')
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def _params(workdir, step):
  """The supernet parameters of a checkpoint, as numpy arrays."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  path = os.path.join(workdir, 'supernet', 'checkpoints', str(step), 'default')
  return jax.tree.map(np.asarray, ocp.StandardCheckpointer().restore(path)['params'])


def _results(workdir):
  """Every retrained arch's result, less what depends on the wall clock or the logging."""
  out = {}
  for arch_id in os.listdir(os.path.join(workdir, 'retrain')):
    result = workdir_lib.read_json(workdir, 'retrain', arch_id, 'result.json')
    out[arch_id] = {
        k: v for k, v in result.items() if k != 'wall_time_s' and not k.startswith('train_')
    }
  return out


class StopAndResumeTest(absltest.TestCase):

  def test_stops_in_each_stage_and_resumes_to_the_uninterrupted_results(self):
    config = helpers.tiny  # 4 supernet steps, 2 search chunks, 4 steps per retrained arch.
    reference = helpers.finished_tiny_run()
    workdir = self.create_tempdir().full_path

    with _stop_at_poll(3), self.assertRaisesRegex(preemption.Preempted, 'saved step 3 of 4'):
      main.run(config(), workdir)  # Polls after steps 1, 2, 3: stops after step 3 ...
    self.assertEqual(_checkpoints(workdir, 'supernet'), [2, 3])  # ... saving it off-interval.
    self.assertIsNone(workdir_lib.read_json(workdir, 'supernet', 'done.json'))

    with _stop_at_poll(1), self.assertRaisesRegex(preemption.Preempted, '1 of 2 chunks'):
      main.run(config(), workdir)  # Step 4 (the last: no poll), then the first chunk.
    with open(os.path.join(workdir, 'search', 'candidates.jsonl')) as f:
      self.assertLen(f.readlines(), 4)
    self.assertIsNone(workdir_lib.read_json(workdir, 'search', 'selection.json'))

    with _stop_at_poll(2), self.assertRaisesRegex(preemption.Preempted, 'saved step 2 of 4'):
      main.run(config(), workdir)  # The second chunk, then two steps of the first arch.
    retrain = os.path.join(workdir, 'retrain')
    self.assertLen(os.listdir(retrain), 1)  # The first arch, stopped before its result.
    self.assertEqual(_checkpoints(retrain, os.listdir(retrain)[0]), [2])

    main.run(config(), workdir)
    for a, b in zip(jax.tree.leaves(_params(workdir, 4)), jax.tree.leaves(_params(reference, 4))):
      np.testing.assert_array_equal(a, b)
    for name in ('search/candidates.jsonl', 'search/selection.json'):
      with open(os.path.join(workdir, name)) as f, open(os.path.join(reference, name)) as g:
        self.assertEqual(f.read(), g.read(), name)
    self.assertEqual(_results(workdir), _results(reference))
    summary = workdir_lib.read_json(workdir, 'report', 'summary.json')
    self.assertEqual(
        summary['counts'], workdir_lib.read_json(reference, 'report', 'summary.json')['counts']
    )


class SignalTest(absltest.TestCase):

  def test_sigterm_saves_and_exits_zero_then_kill_9_resumes_to_the_same_params(self):
    steps = 120  # Far more than run before the signals: both arrive mid-training.
    workdir = self.create_tempdir().full_path
    command = [
        sys.executable,
        '-m',
        'osas.main',
        f'--config={helpers.TINY}:steps={steps}',
        f'--workdir={workdir}',
        "--config.stages=('train_supernet',)",
        '--config.supernet.checkpoint_every=30',
    ]
    env = {**os.environ, 'PYTHONPATH': helpers.ROOT}
    checkpoints = os.path.join(workdir, 'supernet', 'checkpoints')

    def start_and_wait_for(predicate):
      process = subprocess.Popen(
          command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
      )
      deadline = time.time() + 240
      while time.time() < deadline and process.poll() is None and not predicate():
        time.sleep(0.05)
      self.assertIsNone(process.poll(), process.stderr.read() if process.poll() else '')
      return process

    # Checkpoint 30 exists once 30 steps ran: SIGTERM then lands between steps 30 and 120.
    process = start_and_wait_for(lambda: os.path.exists(os.path.join(checkpoints, '30')))
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=60)[1]
    self.assertEqual(process.returncode, 0, stderr)
    self.assertIn('rerun the same command to resume', stderr)
    saved = _checkpoints(workdir, 'supernet')
    self.assertGreater(saved[-1], 30)  # The step it stopped at, saved off the interval.
    self.assertLess(saved[-1], steps)
    self.assertIsNone(workdir_lib.read_json(workdir, 'supernet', 'done.json'))

    # Resumed, then killed without warning: the saved steps survive and it resumes again.
    stopped = saved[-1]
    process = start_and_wait_for(lambda: _checkpoints(workdir, 'supernet')[-1] >= 60)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    self.assertIn(stopped, _checkpoints(workdir, 'supernet'))
    self.assertIsNone(workdir_lib.read_json(workdir, 'supernet', 'done.json'))
    config = lambda: helpers.tiny(
        f'steps={steps}', stages=('train_supernet',), **{'supernet.checkpoint_every': 30}
    )
    main.run(config(), workdir)
    reference = self.create_tempdir().full_path
    main.run(config(), reference)
    for a, b in zip(
        jax.tree.leaves(_params(workdir, steps)), jax.tree.leaves(_params(reference, steps))
    ):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


if __name__ == '__main__':
  absltest.main()
