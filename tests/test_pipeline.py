"""End-to-end tests of the CLI on the tiny config: outputs, rerun, bad input."""

import json
import os
import shutil
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

import event_helpers
import helpers
from osas import main
from osas import parallel
from osas import space as space_lib
from osas import workdir as workdir_lib


def _cli(workdir, *flags):
  command = [
      sys.executable,
      '-m',
      'osas.main',
      f'--config={helpers.TINY}',
      f'--workdir={workdir}',
      *flags,
  ]
  env = {**os.environ, 'PYTHONPATH': helpers.ROOT}
  return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


class PipelineTest(parameterized.TestCase):

  def test_run_writes_every_output_and_rerun_is_a_no_op(self):
    workdir = os.path.join(self.create_tempdir().full_path, 'run')
    shutil.copytree(helpers.finished_tiny_run(), workdir)  # The rerun below writes logs.
    done = workdir_lib.read_json(workdir, 'supernet', 'done.json')
    self.assertEqual(done['num_steps'], 4)
    self.assertIn('supernet/probe_all_on_accuracy', done)
    saved = workdir_lib.read_json(workdir, 'config.json')
    self.assertEqual(saved['model']['filters'], 2)
    self.assertEqual(
        sorted(os.listdir(os.path.join(workdir, 'supernet', 'checkpoints'))), ['2', '4']
    )
    selection = workdir_lib.read_json(workdir, 'search', 'selection.json')['groups']
    retrained = {
        workdir_lib.read_json(workdir, 'retrain', d, 'result.json')['arch']
        for d in os.listdir(os.path.join(workdir, 'retrain'))
    }
    wanted = set(helpers.tiny().retrain.archs).union(*selection.values())
    self.assertEqual(retrained, wanted)
    arch_id = space_lib.from_config(helpers.tiny().space).parse(helpers.tiny().retrain.archs[0]).id
    result = workdir_lib.read_json(workdir, 'retrain', arch_id, 'result.json')
    self.assertEqual(result['steps'], 4)
    self.assertGreater(result['params'], 0)
    self.assertBetween(result['test_accuracy'], 0.0, 1.0)
    summary = workdir_lib.read_json(workdir, 'report', 'summary.json')
    self.assertEqual(summary['counts']['candidates_scored'], 6)
    self.assertEqual(summary['counts']['retrained'], len(wanted))
    self.assertTrue(os.path.exists(os.path.join(workdir, 'report', 'summary.md')))
    # TensorBoard event files: the logged scalars read back with their steps.
    logs = os.path.join(workdir, 'logs')
    events = [f for f in os.listdir(logs) if f.startswith('events.out.tfevents')]
    self.assertNotEmpty(events)
    scalars = event_helpers.read_events(os.path.join(logs, events[0]))
    self.assertIn((4, 'supernet/train_loss'), {(s, t) for s, t, _ in scalars})
    before = helpers.snapshot(workdir)
    main.run(helpers.tiny(), workdir)  # Finished stages are not redone.
    after = helpers.snapshot(workdir)
    self.assertEqual(
        {k for k in after if 'events.out' not in k}, {k for k in before if 'events.out' not in k}
    )
    for key in ('supernet/done.json', f'retrain/{arch_id}/result.json'):
      self.assertEqual(after[key], before[key])


class BadInputTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('unknown_source', {'data.source': 'mnist9'}, 'config.data.source'),
      ('ghost_size', {'supernet.ghost_batch_size': 5}, 'config.supernet.ghost_batch_size=5'),
      ('zero_width', {'model.filters': 0}, 'config.model.filters must be positive'),
      ('zero_depth', {'model.num_stacks': 0}, 'config.model.num_stacks must be positive'),
      ('rate', {'supernet.path_dropout_rate': 1.5}, 'path_dropout_rate=1.5 must be in'),
      ('stage', {'stages': ('train_supernet', 'deploy')}, "unknown stage 'deploy'"),
      ('arch', {'retrain.archs': ('0:conv9x9',)}, r'config.retrain.archs\[0\]'),
      ('retrain_width', {'retrain.filters': -1}, 'config.retrain.filters must be positive'),
      ('mesh', {'num_devices': 2}, r'config.num_devices=2: a mesh of 2 devices .* 1 are present'),
  )
  def test_bad_config_names_field_and_leaves_workdir_alone(self, overrides, message):
    workdir = self.create_tempdir()
    workdir.create_file('config.json', json.dumps(helpers.tiny().to_dict()))
    workdir.create_file('supernet/done.json', '{"num_steps": 4}')
    before = helpers.snapshot(workdir.full_path)
    with self.assertRaisesRegex(ValueError, message):
      main.run(helpers.tiny(**overrides), workdir.full_path)
    self.assertEqual(helpers.snapshot(workdir.full_path), before)

  def test_npz_without_y(self):
    directory = self.create_tempdir()
    np.savez(os.path.join(directory.full_path, 'train.npz'), x=np.zeros((4, 8, 8, 1), np.uint8))
    config = helpers.tiny(**{'data.source': 'npz', 'data.npz_dir': directory.full_path})
    with self.assertRaisesRegex(ValueError, 'train.npz'):
      main.run(config, self.create_tempdir().full_path)

  def test_workdir_with_other_shapes_is_refused(self):
    workdir = self.create_tempdir()
    workdir.create_file('config.json', json.dumps(json.loads(helpers.tiny().to_json_best_effort())))
    before = helpers.snapshot(workdir.full_path)
    with self.assertRaisesRegex(ValueError, 'config.model differs'):
      main.run(helpers.tiny(**{'model.filters': 4}), workdir.full_path)
    self.assertEqual(helpers.snapshot(workdir.full_path), before)

  def test_workdir_accepts_other_kernels(self):
    # config.model.kernels (and its old name) choose how, not what: the workdir stays usable.
    workdir = self.create_tempdir().full_path
    old = json.loads(helpers.tiny().to_json_best_effort())
    del old['model']['kernels']
    old['model']['depthwise_impl'] = 'shifted'
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      json.dump(old, f)
    workdir_lib.save_config(helpers.tiny(**{'model.kernels': 'cpu'}), workdir)
    self.assertEqual(workdir_lib.read_json(workdir, 'config.json')['model']['kernels'], 'cpu')
    with self.assertRaisesRegex(ValueError, 'config.model differs'):
      workdir_lib.save_config(helpers.tiny(**{'model.filters': 4}), workdir)

  def test_batch_must_split_over_devices(self):

    class FakeMesh:
      devices = np.zeros(8)

    with self.assertRaisesRegex(ValueError, 'config.x.batch_size=12 must be a positive multiple'):
      parallel.check_batch(12, 4, FakeMesh, 'config.x.batch_size')
    with self.assertRaisesRegex(ValueError, r'per-device batch \(32 / 8 devices = 4\)'):
      parallel.check_batch(32, 8, FakeMesh, 'config.x.batch_size')

  def test_cli_prints_one_line_and_exits_non_zero(self):
    result = _cli(self.create_tempdir().full_path, '--config.model.filters=-3')
    self.assertEqual(result.returncode, 1)
    self.assertEqual(
        result.stderr.strip().splitlines()[-1],
        'osas: error: config.model.filters must be positive, got -3',
    )
    self.assertNotIn('Traceback', result.stderr)


if __name__ == '__main__':
  absltest.main()
