"""Runs the osas pipeline: python -m osas.main --config=configs/NAME.py [--workdir=DIR]."""

from __future__ import annotations

import logging as std_logging
import os
import re
import sys
from typing import NoReturn

from absl import app
from absl import flags
from absl import logging
from etils import epath
import jax
from ml_collections import config_flags

from osas import parallel
from osas import preemption
from osas import stages
from osas import workdir as workdir_lib

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file (configs/NAME.py[:arg]).', lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    'workdir',
    None,
    'Directory for checkpoints, results, logs; default: config.workdir, '
    'else workdirs/NAME[_ARG] for --config=configs/NAME.py[:ARG].',
)
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address',
    None,
    'host:port of process 0, to join several processes by hand '
    '(on Cloud TPU pods and SLURM jax.distributed finds it without this flag).',
)
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'With --coordinator_address.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'With --coordinator_address.')


def _fail(message: str) -> NoReturn:
  print(f'osas: error: {message}', file=sys.stderr)
  sys.exit(1)


def _config_text(argv: list[str]) -> str | None:
  """What --config was given (the last one wins, as in absl), or None."""
  text = None
  for i, arg in enumerate(argv[1:], 1):
    match = re.fullmatch(r'--?config(=(.*))?', arg, re.DOTALL)
    if match:
      text = match.group(2) if match.group(1) else (argv[i + 1] if i + 1 < len(argv) else '')
  return text


def _chain(e: BaseException) -> list[BaseException]:
  """`e` and the exceptions it was raised from, as Python prints them."""
  chain = [e]
  while True:
    last = chain[-1]
    cause = last.__cause__ or (None if last.__suppress_context__ else last.__context__)
    if cause is None:
      return chain
    chain.append(cause)


def _flag_error(e: Exception, argv: list[str]) -> str | None:
  """One line naming the flag at fault; None where the error is a bug (the traceback helps).

  absl parses flags before `main`; ml_collections loads the config file and applies the
  --config.FIELD overrides while it does, so their errors arrive here wrapped (config_flags
  defers a file it cannot read to the first use of the config, as an OSError).
  """
  config = _config_text(argv)
  if isinstance(e, flags.UnrecognizedFlagError):
    return (
        f'--{e.flagname}: unknown flag; osas takes --config, --config.FIELD=VALUE, '
        '--workdir, --coordinator_address, --num_processes, --process_id'
    )
  if config is None:
    return '--config is required, e.g. --config=configs/digits.py'
  if isinstance(e, OSError):
    file = config.split(':', 1)[0]
    if not file:
      return '--config is empty: give a config file, e.g. --config=configs/digits.py'
    if not os.path.exists(file):
      return f'--config={config}: no such file'
    return f'--config={config}: cannot read {file} ({e.__cause__ or e})'.splitlines()[0]
  chain = _chain(e)
  root = chain[-1]
  if isinstance(e, (AttributeError, KeyError)) and isinstance(root, KeyError):
    # A --config.FIELD that the config does not declare: the KeyError names FIELD, and
    # ConfigDict adds a 'Did you mean' line where a field is close.
    hints = {
        line
        for x in chain
        if isinstance(x, KeyError) and x.args
        for line in str(x.args[0]).splitlines()
        if line.startswith('Did you')
    }
    for arg in argv:
      name = arg.lstrip('-').split('=', 1)[0]
      if name.startswith('config.') and str(root.args[0]) in name.split('.')[1:]:
        return f'--{name}: the config has no such field' + ''.join(f'; {h}' for h in hints)
    return None
  if isinstance(e, flags.Error):
    line = str(e).splitlines()[0].removeprefix('flag ')
    if line.startswith('--config=') and root is not e:  # get_config raised: say what.
      return f'--config={config}: {root}'
    return line
  if isinstance(root, ImportError):
    return (
        f'--config={config}: {root}; run osas from its repository root, or install it '
        'with pip install -e . there'
    )
  return None


def _parse_flags(argv: list[str]) -> list[str]:
  """Parses the flags as absl does (app.run's flags_parser), each mistake in one line."""
  try:
    rest = flags.FLAGS(argv)
    if _CONFIG.value is not None:
      _CONFIG.value.get('workdir')  # A config file that did not load raises only when used.
  except Exception as e:  # pylint: disable=broad-except
    message = _flag_error(e, argv)
    if message is None:
      raise
    _fail(message)
  if _CONFIG.value is None:
    _fail('--config is required, e.g. --config=configs/digits.py')
  if len(rest) > 1:
    _fail(f'unexpected arguments {" ".join(rest[1:])} (flags are --NAME=VALUE)')
  if _COORDINATOR.value is None:
    for flag in (_NUM_PROCESSES, _PROCESS_ID):
      if flag.value is not None:
        _fail(f'--{flag.name}={flag.value} needs --coordinator_address=HOST:PORT')
  elif _NUM_PROCESSES.value is not None and _PROCESS_ID.value is not None:
    if not 0 <= _PROCESS_ID.value < _NUM_PROCESSES.value:
      _fail(
          f'--process_id={_PROCESS_ID.value} must be in [0, --num_processes='
          f'{_NUM_PROCESSES.value})'
      )
  return rest


def default_workdir(config_text: str) -> str:
  """workdirs/NAME for --config=configs/NAME.py, workdirs/NAME_ARG for configs/NAME.py:ARG."""
  file, _, arg = config_text.partition(':')
  name = os.path.splitext(os.path.basename(file))[0]
  if arg:
    name += '_' + re.sub(r'[^\w.,=+-]', '_', arg)
  return os.path.join('workdirs', name)


def _workdir(config) -> str:
  """--workdir, else config.workdir, else the config's default; an existing file is refused."""
  if _WORKDIR.value is not None:
    workdir, source = _WORKDIR.value, '--workdir'
  elif config.get('workdir') is not None:
    workdir, source = config.workdir, 'config.workdir'
  else:
    workdir = default_workdir(config_flags.get_config_filename(flags.FLAGS['config']))
    source = 'workdir'  # The default, named after the config.
  if not workdir.strip():
    raise ValueError(f'{source} is empty')
  if epath.Path(workdir).exists() and not epath.Path(workdir).is_dir():
    raise ValueError(f'{source}={workdir}: exists and is not a directory')
  return workdir


def _initialize_distributed(config) -> None:
  """Joins the other hosts before JAX touches a device, when there are other hosts."""
  if _COORDINATOR.value:
    if _PROCESS_ID.value:
      parallel.wait_for_coordinator(_COORDINATOR.value, config.distributed_timeout_s)
    jax.distributed.initialize(
        _COORDINATOR.value,
        _NUM_PROCESSES.value,
        _PROCESS_ID.value,
        initialization_timeout=config.distributed_timeout_s,
    )
  elif ',' in os.environ.get('TPU_WORKER_HOSTNAMES', ''):
    jax.distributed.initialize()
  elif config.get('distributed', False):
    try:
      jax.distributed.initialize()
    except ValueError as e:
      # jax found no cluster around this process (no TPU pod, SLURM, ... environment), so
      # it has no coordinator: the config runs on this one machine, e.g. to try the TPU
      # config on a workstation. Any other error of a cluster that was found stands.
      if 'coordinator_address' not in str(e):
        raise
      logging.warning(
          'osas: config.distributed is set, but jax.distributed found no other '
          'hosts (%s): running as one process',
          e,
      )


def _make_workdir(workdir: str) -> None:
  try:
    epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ValueError(f'cannot create the workdir {workdir} ({e.strerror or e})') from None


def run(config, workdir: str) -> None:
  """Runs config.stages in `workdir`; bad input raises ValueError before anything is written."""
  logging.info(
      'osas: process %d of %d, %d local / %d global devices (%s)',
      jax.process_index(),
      jax.process_count(),
      jax.local_device_count(),
      jax.device_count(),
      jax.default_backend(),
  )
  logging.info('osas: workdir %s', workdir)
  if config.get('compilation_cache_dir'):  # '': JAX's own setting stays.
    jax.config.update('jax_compilation_cache_dir', os.path.expanduser(config.compilation_cache_dir))
  mesh = parallel.make_mesh(config.get('num_devices'))
  to_run = stages.get(config.stages)
  for _, stage in to_run:
    stage.check(config, mesh)
  _make_workdir(workdir)
  workdir_lib.save_config(config, workdir)
  for name, stage in to_run:
    logging.info('osas: stage %s', name)
    stage.run(config, workdir, mesh)


class _QuietLibraries(std_logging.Filter):
  """Drops the per-save INFO chatter of orbax and friends; warnings still show."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(
        f'{os.sep}{name}{os.sep}' in record.pathname for name in ('orbax', 'jax', 'tensorstore')
    )


def main(argv):
  del argv  # _parse_flags refused anything left over.
  logging.get_absl_handler().addFilter(_QuietLibraries())
  try:
    config = _CONFIG.value
    workdir = _workdir(config)
    _initialize_distributed(config)
    # After jax.distributed, whose preemption notifier would otherwise replace the handler.
    preemption.install()
    run(config, workdir)
  except preemption.Preempted as e:  # Saved; the same command resumes.
    logging.warning('osas: stopped on request (%s); rerun the same command to resume', e)
    sys.exit(0)
  except ValueError as e:  # Bad input: one line, no traceback, nothing written over.
    logging.debug('osas: bad input', exc_info=True)
    _fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
