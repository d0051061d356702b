"""launch/tpu.py builds the right gcloud commands, prints them with --dry-run, runs them."""

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'launch', 'tpu.py')
_spec = importlib.util.spec_from_file_location('launch_tpu', SCRIPT)
tpu = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)  # dataclasses look it up.
_spec.loader.exec_module(tpu)

POD = tpu.Tpu('osas-pod', 'us-central2-b')
FLAGS = ['--name=osas-pod', '--zone=us-central2-b']
SSH = 'gcloud compute tpus tpu-vm ssh osas-pod --zone=us-central2-b'


def cli(*argv):
  """Runs the script in-process: (exit status, stdout, stderr)."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = tpu.main(list(argv))
  return status, out.getvalue(), err.getvalue()


def remote(command):
  """The --command=... value of a gcloud ssh command."""
  [value] = [arg[len('--command=') :] for arg in command if arg.startswith('--command=')]
  return value


class BuildersTest(parameterized.TestCase):

  @parameterized.parameters(
      ({}, ''),
      ({'spot': True}, ' --spot'),
      ({'preemptible': True}, ' --preemptible'),
  )
  def test_create(self, kind, flag):
    [command] = tpu.create(POD, 'v4-32', **kind)
    self.assertEqual(
        shlex.join(command),
        'gcloud compute tpus tpu-vm create osas-pod --zone=us-central2-b '
        f'--accelerator-type=v4-32 --version=tpu-ubuntu2204-base{flag}',
    )

  @parameterized.parameters(({}, ''), ({'spot': True}, ' --spot'))
  def test_create_queued(self, kind, flag):
    [command] = tpu.create(POD, 'v5p-64', 'my-runtime', queued=True, **kind)
    self.assertEqual(
        shlex.join(command),
        'gcloud compute tpus queued-resources create osas-pod --zone=us-central2-b '
        '--node-id=osas-pod --accelerator-type=v5p-64 --runtime-version=my-runtime' + flag,
    )

  @parameterized.parameters(
      ('v2-32', 'tpu-ubuntu2204-base'),
      ('v3-8', 'tpu-ubuntu2204-base'),
      ('v4-32', 'tpu-ubuntu2204-base'),
      ('v5litepod-16', 'v2-alpha-tpuv5-lite'),
      ('v5p-64', 'v2-alpha-tpuv5'),
      ('v6e-16', 'v2-alpha-tpuv6e'),
  )
  def test_default_runtime_version(self, accelerator_type, version):
    [command] = tpu.create(POD, accelerator_type)
    self.assertIn(f'--version={version}', command)

  def test_runtime_version_overrides_default(self):
    [command] = tpu.create(POD, 'v4-32', 'tpu-vm-base-x')
    self.assertIn('--version=tpu-vm-base-x', command)
    self.assertNotIn('--version=tpu-ubuntu2204-base', command)

  def test_unknown_generation_needs_runtime_version(self):
    with self.assertRaisesRegex(tpu.UsageError, 'give --runtime-version'):
      tpu.create(POD, 'v9-8')
    [command] = tpu.create(POD, 'v9-8', 'some-version')
    self.assertIn('--version=some-version', command)

  @parameterized.parameters(
      ({'spot': True, 'preemptible': True}, 'exclude each other'),
      ({'preemptible': True, 'queued': True}, 'not --preemptible'),
  )
  def test_create_refuses(self, kwargs, message):
    with self.assertRaisesRegex(tpu.UsageError, message):
      tpu.create(POD, 'v4-32', **kwargs)

  def test_project_goes_to_every_command(self):
    pod = tpu.Tpu('osas-pod', 'us-central2-b', 'my-project')
    commands = (
        tpu.create(pod, 'v4-8')
        + tpu.setup(pod)
        + tpu.run(pod, 'gs://b/w')
        + tpu.logs(pod)
        + tpu.stop(pod)
        + tpu.status(pod)
        + tpu.delete(pod, True)
    )
    for command in commands:
      self.assertEqual(command[-1], '--project=my-project')
      self.assertEqual(command[:3], ['gcloud', 'compute', 'tpus'])
      self.assertIn('--zone=us-central2-b', command)

  @parameterized.parameters(
      (False, 'tpu-vm delete osas-pod --zone=us-central2-b --quiet'),
      (True, 'queued-resources delete osas-pod --zone=us-central2-b --force --quiet'),
  )
  def test_delete(self, queued, expected):
    [command] = tpu.delete(POD, queued)
    self.assertEqual(shlex.join(command), f'gcloud compute tpus {expected}')

  @parameterized.parameters((False, 'tpu-vm'), (True, 'queued-resources'))
  def test_status(self, queued, group):
    [command] = tpu.status(POD, queued)
    self.assertEqual(
        shlex.join(command), f'gcloud compute tpus {group} describe osas-pod --zone=us-central2-b'
    )

  def test_setup_copies_code_to_all_workers_then_installs(self):
    clear, copy, install = tpu.setup(POD, '/src/osas')
    self.assertEqual(
        shlex.join(clear), f"{SSH} --worker=all '--command=rm -rf ~/osas && mkdir ~/osas'"
    )
    self.assertEqual(
        copy,
        [
            'gcloud',
            'compute',
            'tpus',
            'tpu-vm',
            'scp',
            '/src/osas/setup.py',
            '/src/osas/README.md',
            '/src/osas/osas',
            '/src/osas/configs',
            'osas-pod:osas',
            '--zone=us-central2-b',
            '--worker=all',
            '--recurse',
        ],
    )
    self.assertEqual(install[:-1], shlex.split(SSH) + ['--worker=all'])
    self.assertEqual(
        remote(install),
        'python3 -m pip install --user --upgrade uv && '
        '~/.local/bin/uv venv --allow-existing --python=3.11 ~/osas-venv && '
        '~/.local/bin/uv pip install --python ~/osas-venv/bin/python -e ~/osas "jax[tpu]" gcsfs',
    )

  def test_setup_copies_what_install_and_run_need(self):
    for path in tpu.CODE:
      self.assertTrue(os.path.exists(os.path.join(ROOT, path)), path)
    self.assertTrue(os.path.exists(os.path.join(ROOT, tpu.DEFAULT_CONFIG)))
    self.assertIn("open('README.md'", open(os.path.join(ROOT, 'setup.py')).read())

  @parameterized.parameters(
      (None, 'git clone --depth=1 https://example.com/osas.git ~/osas'),
      ('v1.0', 'git clone --depth=1 --branch=v1.0 https://example.com/osas.git ~/osas'),
  )
  def test_setup_from_git(self, ref, clone):
    fetch, install = tpu.setup(POD, git='https://example.com/osas.git', ref=ref)
    self.assertEqual(fetch[:-1], shlex.split(SSH) + ['--worker=all'])
    self.assertEqual(remote(fetch), f'rm -rf ~/osas && {clone}')
    self.assertEqual(install, tpu.setup(POD, '/src')[-1])

  def test_ref_needs_git(self):
    with self.assertRaisesRegex(tpu.UsageError, '--ref needs --git'):
      tpu.setup(POD, ref='main')

  def test_run(self):
    [command] = tpu.run(
        POD,
        'gs://b/run1',
        overrides=['--config.supernet.num_steps=100'],
        tfds_data_dir='gs://b/tensorflow_datasets',
    )
    self.assertEqual(command[:-1], shlex.split(SSH) + ['--worker=all'])
    self.assertEqual(
        remote(command),
        'cd ~/osas && { TFDS_DATA_DIR=gs://b/tensorflow_datasets nohup '
        '~/osas-venv/bin/python -m osas.main --config=configs/imagenet_tpu.py '
        '--workdir=gs://b/run1 --config.supernet.num_steps=100 >> ~/osas.log 2>&1 '
        '< /dev/null & }',
    )

  def test_run_without_tfds_data_dir_sets_no_environment(self):
    command = tpu.run_command('gs://b/w', 'configs/tiny.py')
    self.assertNotIn('TFDS_DATA_DIR', command)
    self.assertIn(
        '{ nohup ~/osas-venv/bin/python -m osas.main --config=configs/tiny.py '
        '--workdir=gs://b/w >>',
        command,
    )

  def test_run_quotes_what_the_user_gives(self):
    command = tpu.run_command(
        'gs://b/my run', overrides=["--config.data.name=it's"], tfds_data_dir='gs://b/t d'
    )
    self.assertIn("TFDS_DATA_DIR='gs://b/t d' nohup", command)
    self.assertIn("'--workdir=gs://b/my run' '--config.data.name=it'\"'\"'s' >>", command)

  @parameterized.parameters('/tmp/w', 'w', 'gs:/b/w', 'gs://', 'GS://b/w', 's3://b/w')
  def test_workdir_must_be_on_gcs(self, workdir):
    with self.assertRaisesRegex(tpu.UsageError, f'--workdir={re.escape(workdir)} must be a gs://'):
      tpu.run(POD, workdir)

  @parameterized.parameters(('0', '--worker=0'), ('3', '--worker=3'))
  def test_logs(self, worker, flag):
    [command] = tpu.logs(POD, worker)
    self.assertEqual(shlex.join(command), f"{SSH} {flag} '--command=tail -n 100 -f ~/osas.log'")

  def test_stop(self):
    [command] = tpu.stop(POD)
    self.assertEqual(
        shlex.join(command), f'{SSH} --worker=all \'--command=pkill -f "[o]sas[.]main" || true\''
    )

  def test_stop_pattern_matches_osas_but_not_the_shell_that_runs_pkill(self):
    pattern = shlex.split(tpu.PROCESS_PATTERN)[0]
    self.assertRegex(remote(tpu.run(POD, 'gs://b/w')[0]), pattern)
    self.assertNotRegex(remote(tpu.stop(POD)[0]), pattern)

  @parameterized.parameters(('--config.a.b=1',), ('--config.data.name=x y',))
  def test_overrides_accepted(self, arg):
    self.assertEqual(tpu.check_overrides([arg]), [arg])

  @parameterized.parameters('--foo', '--config.a', 'positional', '--config=x', '--configx.a=1')
  def test_overrides_refused(self, arg):
    with self.assertRaisesRegex(tpu.UsageError, 'unexpected argument'):
      tpu.check_overrides([arg])


class RemoteShellTest(absltest.TestCase):
  """The remote command lines are valid shell, and `run` really detaches."""

  def test_remote_commands_parse(self):
    commands = (
        tpu.setup(POD)
        + tpu.setup(POD, git='https://x/y.git', ref='r')
        + tpu.logs(POD)
        + tpu.stop(POD)
        + tpu.run(POD, 'gs://b/w', tfds_data_dir='gs://b/t')
    )
    for command in commands:
      if command[4] == 'ssh':
        subprocess.run(['bash', '-n', '-c', remote(command)], check=True)

  def test_run_returns_at_once_and_starts_osas_with_its_arguments(self):
    home = self.create_tempdir().full_path
    os.makedirs(os.path.join(home, 'osas'))
    fake = os.path.join(home, 'osas-venv', 'bin', 'python')
    os.makedirs(os.path.dirname(fake))
    with open(fake, 'w') as f:  # Records what it was given, then keeps running a while.
      f.write(
          '#!/bin/bash\nsleep 1\n{ echo "$PWD|$TFDS_DATA_DIR"; printf "%s\\n" "$@"; } '
          '> ~/args\necho started\n'
      )
    os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
    command = tpu.run_command(
        'gs://b/my run', overrides=["--config.data.name=it's"], tfds_data_dir='gs://b/t d'
    )
    start = time.monotonic()
    # Output through a pipe, as over SSH: bash must not keep it open for the job.
    result = subprocess.run(
        ['bash', '-c', command],
        env={**os.environ, 'HOME': home},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=True,
    )
    self.assertLess(time.monotonic() - start, 0.9)
    self.assertEqual(result.stdout, b'')
    args = os.path.join(home, 'args')
    for _ in range(100):
      if (
          os.path.exists(args)
          and os.path.exists(os.path.join(home, 'osas.log'))
          and open(os.path.join(home, 'osas.log')).read()
      ):
        break
      time.sleep(0.05)
    self.assertEqual(
        open(args).read().splitlines(),
        [
            f'{home}/osas|gs://b/t d',
            '-m',
            'osas.main',
            '--config=configs/imagenet_tpu.py',
            '--workdir=gs://b/my run',
            "--config.data.name=it's",
        ],
    )
    self.assertEqual(open(os.path.join(home, 'osas.log')).read(), 'started\n')


class CommandLineTest(parameterized.TestCase):

  def test_dry_run_prints_one_command_per_line(self):
    status, out, err = cli('setup', *FLAGS, '--source=/src/osas', '--dry-run')
    self.assertEqual((status, err), (0, ''))
    self.assertEqual(out.splitlines(), [shlex.join(c) for c in tpu.setup(POD, '/src/osas')])
    self.assertEqual([shlex.split(line) for line in out.splitlines()], tpu.setup(POD, '/src/osas'))

  def test_setup_from_the_checkout_names_paths_relative_to_it(self):
    with mock.patch.object(os, 'getcwd', return_value=ROOT):
      _, out, _ = cli('setup', *FLAGS, '--dry-run')
    self.assertIn('tpu-vm scp setup.py README.md osas configs osas-pod:osas ', out)

  @parameterized.parameters(
      (
          ['create', '--accelerator-type=v4-32', '--preemptible'],
          tpu.create(POD, 'v4-32', preemptible=True),
      ),
      (
          ['create', '--accelerator-type=v6e-16', '--spot', '--queued', '--runtime-version=rt'],
          tpu.create(POD, 'v6e-16', 'rt', spot=True, queued=True),
      ),
      (
          [
              'run',
              '--workdir=gs://b/w',
              '--config=configs/imagenet_tpu.py:filters=32',
              '--tfds-data-dir=gs://b/tfds',
              '--config.seed=3',
              '--config.data.workers=4',
          ],
          tpu.run(
              POD,
              'gs://b/w',
              'configs/imagenet_tpu.py:filters=32',
              ['--config.seed=3', '--config.data.workers=4'],
              'gs://b/tfds',
          ),
      ),
      (['logs', '--worker=2'], tpu.logs(POD, '2')),
      (['ssh', '--worker=all', '--command=ls ~'], [tpu.ssh(POD, 'all', 'ls ~')]),
      (['ssh'], [tpu.ssh(POD)]),
      (['status', '--queued'], tpu.status(POD, True)),
      (['stop'], tpu.stop(POD)),
      (['delete'], tpu.delete(POD)),
  )
  def test_flags_reach_the_builders(self, argv, expected):
    status, out, _ = cli(*argv, *FLAGS, '--dry-run')
    self.assertEqual(status, 0)
    self.assertEqual([shlex.split(line) for line in out.splitlines()], expected)

  @parameterized.parameters(
      (['create', '--zone=z', '--accelerator-type=v4-8'], 'required: --name'),
      (['create', '--name=n', '--accelerator-type=v4-8'], 'required: --zone'),
      (['create', '--name=n', '--zone=z'], 'required: --accelerator-type'),
      (['run', '--name=n', '--zone=z'], 'required: --workdir'),
      (['run', '--name=n', '--zone=z', '--workdir=/tmp/w'], '--workdir=/tmp/w must be a gs://'),
      (
          ['run', '--name=n', '--zone=z', '--workdir=gs://b', '--bogus'],
          "unexpected argument '--bogus'",
      ),
      (['logs', '--name=n', '--zone=z', '--config.a=1'], 'unrecognized arguments: --config.a=1'),
      (
          ['create', '--name=n', '--zone=z', '--accelerator-type=v4-8', '--spot', '--preemptible'],
          'not allowed with',
      ),
      (['setup', '--name=n', '--zone=z', '--git=u', '--source=s'], 'not allowed with'),
      (['launch', '--name=n', '--zone=z'], 'invalid choice'),
      ([], 'required'),
  )
  def test_bad_flags_give_one_line(self, argv, message):
    status, out, err = cli(*argv, '--dry-run')
    self.assertEqual((status, out), (2, ''))
    self.assertEqual(len(err.splitlines()), 1, err)
    self.assertTrue(err.startswith('launch/tpu.py: error: '), err)
    self.assertIn(message, err)

  def test_run_help_says_rerun_resumes(self):
    help_text = subprocess.run(
        [sys.executable, SCRIPT, 'run', '--help'], capture_output=True, text=True, check=True
    ).stdout
    self.assertIn('resumes', help_text)
    self.assertIn('preemption', help_text)

  def test_script_runs_as_a_program(self):
    result = subprocess.run(
        [sys.executable, SCRIPT, 'delete', *FLAGS, '--queued', '--dry-run'],
        capture_output=True,
        text=True,
    )
    self.assertEqual(result.returncode, 0, result.stderr)
    self.assertEqual(
        result.stdout,
        'gcloud compute tpus queued-resources delete osas-pod '
        '--zone=us-central2-b --force --quiet\n',
    )
    result = subprocess.run(
        [sys.executable, SCRIPT, 'run', *FLAGS, '--workdir=w'], capture_output=True, text=True
    )
    self.assertEqual(result.returncode, 2)
    self.assertEqual(len(result.stderr.splitlines()), 1)


class ExecuteTest(absltest.TestCase):
  """Without --dry-run the commands run in turn; a fake gcloud records them."""

  def setUp(self):
    super().setUp()
    self.bin = self.create_tempdir().full_path
    self.calls = os.path.join(self.bin, 'calls')

  def fake_gcloud(self, status):
    path = os.path.join(self.bin, 'gcloud')
    with open(path, 'w') as f:
      f.write(
          f'#!{sys.executable}\nimport json, sys\n'
          f'open({self.calls!r}, "a").write(json.dumps(sys.argv[1:]) + "\\n")\n'
          f'sys.exit({status})\n'
      )
    os.chmod(path, 0o755)

  def recorded(self):
    with open(self.calls) as f:
      return [['gcloud', *json.loads(line)] for line in f]

  def test_runs_every_command(self):
    self.fake_gcloud(0)
    with mock.patch.dict(os.environ, {'PATH': self.bin}):
      status, out, err = cli('setup', *FLAGS, '--source=/src')
    self.assertEqual((status, out), (0, ''))
    self.assertEqual(self.recorded(), tpu.setup(POD, '/src'))
    self.assertEqual(err.splitlines(), [f'+ {shlex.join(c)}' for c in tpu.setup(POD, '/src')])

  def test_stops_at_the_first_failure(self):
    self.fake_gcloud(3)
    with mock.patch.dict(os.environ, {'PATH': self.bin}):
      status, _, err = cli('setup', *FLAGS, '--source=/src')
    self.assertEqual(status, 3)
    self.assertEqual(self.recorded(), tpu.setup(POD, '/src')[:1])
    self.assertIn('gcloud exited with status 3', err)

  def test_missing_gcloud_is_one_line(self):
    with mock.patch.dict(os.environ, {'PATH': self.bin}):
      status, _, err = cli('status', *FLAGS)
    self.assertEqual(status, 2)
    self.assertEqual(
        err,
        'launch/tpu.py: error: gcloud not found: install the Google Cloud CLI '
        '(or use --dry-run)\n',
    )


class ReadmeTest(absltest.TestCase):

  def test_dry_run_examples_are_what_the_script_prints(self):
    text = open(os.path.join(ROOT, 'launch', 'README.md')).read()
    examples = re.findall(r'^\$ python launch/tpu\.py (.*)\n((?:[^$`].*\n)*)', text, re.M)
    self.assertGreaterEqual(len(examples), 6)
    with mock.patch.object(os, 'getcwd', return_value=ROOT):
      for argv, expected in examples:
        self.assertEqual(cli(*shlex.split(argv)), (0, expected, ''), argv)


if __name__ == '__main__':
  absltest.main()
