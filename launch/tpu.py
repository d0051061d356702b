#!/usr/bin/env python3
"""Cloud TPU VM launcher for osas: create, setup, run, logs, ssh, status, stop, delete."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Optional, Sequence

Command = list[str]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What `pip install -e .` and the run need; tests, benchmarks and .git stay behind.
CODE = ('setup.py', 'README.md', 'osas', 'configs')
# Paths on each worker. Remote commands run in the home directory, and `~` is left
# unquoted in them so that the remote shell expands it.
CODE_DIR = 'osas'
REMOTE_CODE = f'~/{CODE_DIR}'
REMOTE_VENV = '~/osas-venv'
REMOTE_LOG = '~/osas.log'
# TPU runtime images ship Ubuntu 22.04's Python 3.10; osas's pinned JAX needs 3.11+,
# which uv installs next to it.
PYTHON = '3.11'
UV = '~/.local/bin/uv'
DEFAULT_CONFIG = 'configs/imagenet_tpu.py'
# https://cloud.google.com/tpu/docs/runtimes: the software version for JAX per TPU generation.
RUNTIME_VERSIONS = {
    'v2': 'tpu-ubuntu2204-base',
    'v3': 'tpu-ubuntu2204-base',
    'v4': 'tpu-ubuntu2204-base',
    'v5litepod': 'v2-alpha-tpuv5-lite',
    'v5p': 'v2-alpha-tpuv5',
    'v6e': 'v2-alpha-tpuv6e',
}
# The brackets keep pkill from matching the remote shell whose command line holds the pattern.
PROCESS_PATTERN = '"[o]sas[.]main"'


class UsageError(Exception):
  """Bad flags: reported as one line, exit status 2."""


@dataclasses.dataclass(frozen=True)
class Tpu:
  """Which TPU VM (and queued resource, of the same name) the commands act on."""

  name: str
  zone: str
  project: Optional[str] = None


def _gcloud(tpu: Tpu, command: str, positional: Sequence[str], *flags: str) -> Command:
  project = [f'--project={tpu.project}'] if tpu.project else []
  return [
      'gcloud',
      'compute',
      'tpus',
      *command.split(),
      *positional,
      f'--zone={tpu.zone}',
      *flags,
      *project,
  ]


def default_runtime_version(accelerator_type: str) -> str:
  """The TPU software version Google recommends for JAX on this TPU generation."""
  generation = accelerator_type.split('-')[0]
  if generation not in RUNTIME_VERSIONS:
    raise UsageError(
        f'no default runtime version for --accelerator-type={accelerator_type}; '
        'give --runtime-version (gcloud compute tpus tpu-vm versions list)'
    )
  return RUNTIME_VERSIONS[generation]


def create(
    tpu: Tpu,
    accelerator_type: str,
    runtime_version: Optional[str] = None,
    spot: bool = False,
    preemptible: bool = False,
    queued: bool = False,
) -> list[Command]:
  """Creates the TPU VM directly, or as a queued resource that waits for capacity."""
  if spot and preemptible:
    raise UsageError('--spot and --preemptible exclude each other')
  version = runtime_version or default_runtime_version(accelerator_type)
  if queued:
    if preemptible:
      raise UsageError('queued resources take --spot, not --preemptible')
    return [
        _gcloud(
            tpu,
            'queued-resources create',
            [tpu.name],
            f'--node-id={tpu.name}',
            f'--accelerator-type={accelerator_type}',
            f'--runtime-version={version}',
            *(['--spot'] if spot else []),
        )
    ]
  kind = ['--spot'] if spot else ['--preemptible'] if preemptible else []
  return [
      _gcloud(
          tpu,
          'tpu-vm create',
          [tpu.name],
          f'--accelerator-type={accelerator_type}',
          f'--version={version}',
          *kind,
      )
  ]


def status(tpu: Tpu, queued: bool = False) -> list[Command]:
  return [_gcloud(tpu, 'queued-resources describe' if queued else 'tpu-vm describe', [tpu.name])]


def delete(tpu: Tpu, queued: bool = False) -> list[Command]:
  """Deletes without asking; --force also deletes the queued resource's TPU VM."""
  if queued:
    return [_gcloud(tpu, 'queued-resources delete', [tpu.name], '--force', '--quiet')]
  return [_gcloud(tpu, 'tpu-vm delete', [tpu.name], '--quiet')]


def ssh(tpu: Tpu, worker: str = '0', command: Optional[str] = None) -> Command:
  remote = [f'--command={command}'] if command is not None else []
  return _gcloud(tpu, 'tpu-vm ssh', [tpu.name], f'--worker={worker}', *remote)


def install_command() -> str:
  """Installs osas and JAX for TPUs in a Python 3.11 venv; together, so setup.py's jax pin holds."""
  venv_python = f'{REMOTE_VENV}/bin/python'
  return (
      f'python3 -m pip install --user --upgrade uv && '
      f'{UV} venv --allow-existing --python={PYTHON} {REMOTE_VENV} && '
      # gcsfs: without TensorFlow, etils.epath (workdir, TFDS metadata) reads gs:// with it.
      f'{UV} pip install --python {venv_python} -e {REMOTE_CODE} "jax[tpu]" gcsfs'
  )


def setup(
    tpu: Tpu, source: str = ROOT, git: Optional[str] = None, ref: Optional[str] = None
) -> list[Command]:
  """Replaces ~/osas on every worker by the local code (or a git clone), then installs it."""
  if git:
    branch = [f'--branch={ref}'] if ref else []
    clone = shlex.join(['git', 'clone', '--depth=1', *branch, git])
    fetch = [ssh(tpu, 'all', f'rm -rf {REMOTE_CODE} && {clone} {REMOTE_CODE}')]
  else:
    if ref:
      raise UsageError('--ref needs --git')
    # Bare names when run from the checkout, as documented: shorter, same meaning.
    here = os.path.abspath(source) == os.getcwd()
    sources = [path if here else os.path.join(os.path.abspath(source), path) for path in CODE]
    # scp -r into an existing directory nests the sources in it, hence the empty one.
    fetch = [
        ssh(tpu, 'all', f'rm -rf {REMOTE_CODE} && mkdir {REMOTE_CODE}'),
        _gcloud(
            tpu, 'tpu-vm scp', [*sources, f'{tpu.name}:{CODE_DIR}'], '--worker=all', '--recurse'
        ),
    ]
  return fetch + [ssh(tpu, 'all', install_command())]


def check_workdir(workdir: str) -> None:
  if not re.match(r'gs://[^/]+', workdir):
    raise UsageError(
        f'--workdir={workdir} must be a gs:// path: all hosts of a pod must share '
        'one workdir, and it must outlive the TPU VM to resume after a preemption'
    )


def run_command(
    workdir: str,
    config: str = DEFAULT_CONFIG,
    overrides: Sequence[str] = (),
    tfds_data_dir: Optional[str] = None,
) -> str:
  """The shell line each worker runs: osas in the background, detached from the SSH session."""
  check_workdir(workdir)
  env = f'TFDS_DATA_DIR={shlex.quote(tfds_data_dir)} ' if tfds_data_dir else ''
  main = shlex.join([f'--config={config}', f'--workdir={workdir}', *overrides])
  # Appending keeps the log of the runs before a resume. The braces background only the
  # redirected command: `cd && cmd &` would background a subshell that holds the SSH
  # session's stdout open, and gcloud would wait for the whole run.
  return (
      f'cd {REMOTE_CODE} && {{ {env}nohup {REMOTE_VENV}/bin/python -m osas.main {main} '
      f'>> {REMOTE_LOG} 2>&1 < /dev/null & }}'
  )


def run(
    tpu: Tpu,
    workdir: str,
    config: str = DEFAULT_CONFIG,
    overrides: Sequence[str] = (),
    tfds_data_dir: Optional[str] = None,
) -> list[Command]:
  """Starts the same osas command on all workers; jax.distributed joins them."""
  return [ssh(tpu, 'all', run_command(workdir, config, overrides, tfds_data_dir))]


def logs(tpu: Tpu, worker: str = '0') -> list[Command]:
  return [ssh(tpu, worker, f'tail -n 100 -f {REMOTE_LOG}')]


def stop(tpu: Tpu) -> list[Command]:
  # `|| true`: a worker whose process already died is not an error.
  return [ssh(tpu, 'all', f'pkill -f {PROCESS_PATTERN} || true')]


def check_overrides(extra: Sequence[str]) -> list[str]:
  """Arguments left over by argparse must be osas config overrides, --config.FIELD=VALUE."""
  for arg in extra:
    if not re.fullmatch(r'--config\.[\w.]+=.*', arg, re.DOTALL):
      raise UsageError(
          f'unexpected argument {arg!r} (osas config overrides are ' '--config.FIELD=VALUE)'
      )
  return list(extra)


class _Parser(argparse.ArgumentParser):
  """Reports bad flags in one line, without the usage block."""

  def error(self, message):
    raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
  common = _Parser(add_help=False)
  common.add_argument('--name', required=True, help='TPU VM (and queued resource) name.')
  common.add_argument('--zone', required=True, help='e.g. us-central2-b.')
  common.add_argument('--project', help="Default: gcloud's core/project.")
  common.add_argument(
      '--dry-run',
      action='store_true',
      help='Print the gcloud commands, one per line, instead of running them.',
  )
  queued = _Parser(add_help=False)
  queued.add_argument(
      '--queued',
      action='store_true',
      help='The TPU VM was (or is to be) created through a queued resource.',
  )
  worker = _Parser(add_help=False)
  worker.add_argument('--worker', default='0', help='Worker index (default 0) or "all".')

  parser = _Parser(prog='launch/tpu.py', description=__doc__)
  sub = parser.add_subparsers(dest='step', required=True)
  p = sub.add_parser('create', parents=[common, queued], help='Create the TPU VM.')
  p.add_argument('--accelerator-type', required=True, help='e.g. v4-32, v5p-64, v6e-16.')
  p.add_argument(
      '--runtime-version', help='TPU software version; default: the one for JAX on this generation.'
  )
  kind = p.add_mutually_exclusive_group()
  kind.add_argument('--spot', action='store_true', help='Spot VM: cheap, may be preempted.')
  kind.add_argument(
      '--preemptible', action='store_true', help='Preemptible VM (not with --queued).'
  )
  p = sub.add_parser(
      'setup', parents=[common], help='Copy the code to ~/osas on all workers and install it there.'
  )
  origin = p.add_mutually_exclusive_group()
  origin.add_argument('--source', default=ROOT, help='Local checkout to copy (default: this one).')
  origin.add_argument('--git', help='Clone this repository on the workers instead of copying.')
  p.add_argument('--ref', help='Branch or tag to clone (with --git).')
  p = sub.add_parser(
      'run',
      parents=[common],
      help='Start osas on all workers, detached; rerun it after a preemption to resume.',
      description='Starts `python -m osas.main --config=CONFIG --workdir=WORKDIR '
      '[--config.FIELD=VALUE ...]` on every worker in the background (log: ~/osas.log). '
      'osas resumes from its workdir, so after a preemption recreate the TPU VM, set it up '
      'and rerun the same command.',
  )
  p.add_argument('--workdir', required=True, help='gs://BUCKET/DIR, shared by all workers.')
  p.add_argument('--config', default=DEFAULT_CONFIG, help=f'Default: {DEFAULT_CONFIG}.')
  p.add_argument(
      '--tfds-data-dir', help='Exported as TFDS_DATA_DIR, e.g. gs://BUCKET/tensorflow_datasets.'
  )
  sub.add_parser('logs', parents=[common, worker], help="Follow a worker's ~/osas.log.")
  p = sub.add_parser('ssh', parents=[common, worker], help='Open a shell or run --command.')
  p.add_argument('--command', help='Run this instead of an interactive shell.')
  sub.add_parser('status', parents=[common, queued], help='Describe the TPU VM or queued resource.')
  sub.add_parser('stop', parents=[common], help='Kill osas on all workers.')
  sub.add_parser('delete', parents=[common, queued], help='Delete the TPU VM, without asking.')
  return parser


def plan(argv: Sequence[str]) -> tuple[list[Command], bool]:
  """The commands that `argv` asks for, and whether to only print them."""
  args, extra = _parser().parse_known_args(argv)
  if extra and args.step != 'run':
    raise UsageError(f'unrecognized arguments: {" ".join(extra)}')
  tpu = Tpu(args.name, args.zone, args.project)
  steps = {
      'create': lambda: create(
          tpu, args.accelerator_type, args.runtime_version, args.spot, args.preemptible, args.queued
      ),
      'setup': lambda: setup(tpu, args.source, args.git, args.ref),
      'run': lambda: run(
          tpu, args.workdir, args.config, check_overrides(extra), args.tfds_data_dir
      ),
      'logs': lambda: logs(tpu, args.worker),
      'ssh': lambda: [ssh(tpu, args.worker, args.command)],
      'status': lambda: status(tpu, args.queued),
      'stop': lambda: stop(tpu),
      'delete': lambda: delete(tpu, args.queued),
  }
  commands = steps[args.step]()
  return commands, args.dry_run


def execute(commands: Sequence[Command], dry_run: bool) -> int:
  """Prints the commands, shell-quoted one per line, or runs them until one fails."""
  if dry_run:
    print('\n'.join(shlex.join(command) for command in commands))
    return 0
  if not shutil.which('gcloud'):
    raise UsageError('gcloud not found: install the Google Cloud CLI (or use --dry-run)')
  for command in commands:
    print(f'+ {shlex.join(command)}', file=sys.stderr, flush=True)
    returncode = subprocess.call(command)
    if returncode:
      print(f'launch/tpu.py: error: gcloud exited with status {returncode}', file=sys.stderr)
      return returncode
  return 0


def main(argv: Sequence[str]) -> int:
  try:
    return execute(*plan(argv))
  except UsageError as e:
    print(f'launch/tpu.py: error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:  # Leaving `logs` with Ctrl-C is the normal way out.
    return 130


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
