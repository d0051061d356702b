"""The command line: each mistake is one line naming the flag or path, and writes nothing."""

import json
import os
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax

import helpers
from osas import main

CONFIG = f'--config={helpers.TINY}'


def _osas(*args, cwd=helpers.ROOT):
  env = {**os.environ, 'PYTHONPATH': helpers.ROOT, 'JAX_PLATFORMS': 'cpu'}
  return subprocess.run(
      [sys.executable, '-m', 'osas.main', *args],
      env=env,
      cwd=cwd,
      capture_output=True,
      text=True,
      timeout=300,
  )


class DefaultWorkdirTest(parameterized.TestCase):

  @parameterized.parameters(
      ('configs/imagenet_tpu.py', 'workdirs/imagenet_tpu'),
      ('/abs/configs/cifar10.py:filters=64', 'workdirs/cifar10_filters=64'),
      ('configs/cifar10_cpu.py:steps=5,filters=4', 'workdirs/cifar10_cpu_steps=5,filters=4'),
      ('configs/x.py:a=../b c', 'workdirs/x_a=.._b_c'),
  )
  def test_named_after_the_config(self, config, workdir):
    self.assertEqual(main.default_workdir(config), workdir)


class BadInputTest(parameterized.TestCase):
  """Every case fails before JAX compiles anything (each is a ~4 s subprocess)."""

  def setUp(self):
    super().setUp()
    self.workdir = self.create_tempdir().full_path
    with open(os.path.join(self.workdir, 'config.json'), 'w') as f:
      f.write('{"from": "an earlier run"}\n')
    self.file = self.create_tempfile(content='not a directory').full_path

  @parameterized.named_parameters(
      ('missing_config_file', ['--config=configs/no_such.py'], 'configs/no_such.py: no such file'),
      ('empty_config', ['--config='], '--config is empty'),
      ('no_config', [], '--config is required'),
      (
          'unknown_field',
          [CONFIG, '--config.model.filtrs=4'],
          '--config.model.filtrs: the config has no such field',
      ),
      ('bad_field_type', [CONFIG, '--config.seed=abc'], '--config.seed=abc: '),
      ('unknown_flag', [CONFIG, '--stpes=4'], '--stpes: unknown flag'),
      ('bad_config_argument', [f'{CONFIG}:steps=many'], "steps='many': not an int"),
      (
          'mistyped_bool',
          ['--config=configs/nasbench201_cpu.py:all=ture'],
          "all='ture': not a bool (true/false)",
      ),
      (
          'num_processes_alone',
          [CONFIG, '--num_processes=2'],
          '--num_processes=2 needs --coordinator_address',
      ),
      ('positional_argument', [CONFIG, 'train'], 'unexpected arguments train'),
      ('empty_workdir', [CONFIG, '--workdir='], '--workdir is empty'),
      ('workdir_is_a_file', [CONFIG, '--workdir={file}'], '--workdir={file}: exists and is not'),
      ('workdir_under_a_file', [CONFIG, '--workdir={file}/run'], 'workdir {file}/run'),
      (
          'workdir_under_proc',
          [CONFIG, '--workdir=/proc/osas_test_run'],
          'workdir /proc/osas_test_run',
      ),
  )
  def test_one_line_naming_it(self, args, expected):
    args = [a.format(file=self.file) for a in args]
    if not any(a.startswith('--workdir') for a in args):
      args.append(f'--workdir={self.workdir}')
    before = helpers.snapshot(self.workdir)
    result = _osas(*args)
    self.assertNotEqual(result.returncode, 0)
    self.assertNotIn('Traceback', result.stderr)
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    self.assertTrue(last.startswith('osas: error: '), result.stderr[-2000:])
    self.assertIn(expected.format(file=self.file), last)
    self.assertEqual(helpers.snapshot(self.workdir), before)
    with open(self.file) as f:
      self.assertEqual(f.read(), 'not a directory')
    self.assertFalse(os.path.exists('/proc/osas_test_run'))


class WorkdirTest(absltest.TestCase):
  """Where a run writes without --workdir; the report stage alone keeps it fast."""

  def test_default_is_named_after_the_config_and_printed(self):
    cwd = self.create_tempdir().full_path
    result = _osas(f'{CONFIG}:steps=3', '--config.stages=("report",)', cwd=cwd)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn('osas: workdir workdirs/tiny_steps=3', result.stderr)
    with open(os.path.join(cwd, 'workdirs', 'tiny_steps=3', 'config.json')) as f:
      self.assertEqual(json.load(f)['supernet']['num_steps'], 3)

  def test_the_cards_command_starts_and_stops_at_the_missing_data(self):
    cwd, data_dir = self.create_tempdir().full_path, self.create_tempdir().full_path
    config = os.path.join(helpers.ROOT, 'configs', 'imagenet_tpu.py')
    result = _osas(f'--config={config}', f'--config.data.tfds_data_dir={data_dir}', cwd=cwd)
    self.assertEqual(result.returncode, 1, result.stderr[-2000:])
    self.assertNotIn('Traceback', result.stderr)
    self.assertIn('osas: workdir workdirs/imagenet_tpu', result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    self.assertStartsWith(last, 'osas: error: config.data.tfds_data_dir: ')
    self.assertIn("'imagenet2012'", last)
    self.assertEqual(os.listdir(cwd), [])

  def test_config_workdir_then_the_flag(self):
    cwd = self.create_tempdir().full_path
    result = _osas(CONFIG, '--config.stages=("report",)', '--config.workdir=from_config', cwd=cwd)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertEqual(os.listdir(cwd), ['from_config'])
    result = _osas(
        CONFIG,
        '--config.stages=("report",)',
        '--config.workdir=from_config',
        '--workdir=from_flag',
        cwd=cwd,
    )
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    self.assertIn('osas: workdir from_flag', result.stderr)
    self.assertEqual(sorted(os.listdir(cwd)), ['from_config', 'from_flag'])


class CompilationCacheTest(absltest.TestCase):

  def test_the_config_points_jax_at_the_cache_and_empty_leaves_it(self):
    before = jax.config.jax_compilation_cache_dir
    home = self.create_tempdir().full_path
    try:
      with mock.patch.dict(os.environ, {'HOME': home}):
        workdir = self.create_tempdir().full_path
        main.run(helpers.tiny(stages=('report',), compilation_cache_dir='~/xla'), workdir)
      self.assertEqual(jax.config.jax_compilation_cache_dir, os.path.join(home, 'xla'))
      jax.config.update('jax_compilation_cache_dir', before)
      main.run(helpers.tiny(stages=('report',)), self.create_tempdir().full_path)
      self.assertEqual(jax.config.jax_compilation_cache_dir, before)
    finally:
      jax.config.update('jax_compilation_cache_dir', before)


if __name__ == '__main__':
  absltest.main()
