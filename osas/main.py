"""Runs the osas pipeline: python -m osas.main --config=configs/NAME.py --workdir=DIR."""

import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from osas import parallel
from osas import preemption
from osas import stages
from osas import workdir as workdir_lib

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/NAME.py[:arg]).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, results, logs.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0, to join several processes by hand '
    '(on Cloud TPU pods and SLURM jax.distributed finds it without this flag).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'With --coordinator_address.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'With --coordinator_address.')
flags.mark_flags_as_required(['config', 'workdir'])


def _initialize_distributed(config) -> None:
  """Joins the other hosts before JAX touches a device, when there are other hosts."""
  if _COORDINATOR.value:
    if _PROCESS_ID.value:
      parallel.wait_for_coordinator(_COORDINATOR.value, config.distributed_timeout_s)
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                               initialization_timeout=config.distributed_timeout_s)
  elif config.get('distributed', False) or ',' in os.environ.get('TPU_WORKER_HOSTNAMES', ''):
    jax.distributed.initialize()


def run(config, workdir: str) -> None:
  """Runs config.stages in `workdir`; bad input raises ValueError before anything is written."""
  logging.info('osas: process %d of %d, %d local / %d global devices (%s)',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.default_backend())
  mesh = parallel.make_mesh(config.get('num_devices'))
  to_run = stages.get(config.stages)
  for _, stage in to_run:
    stage.check(config, mesh)
  workdir_lib.save_config(config, workdir)
  for name, stage in to_run:
    logging.info('osas: stage %s', name)
    stage.run(config, workdir, mesh)


class _QuietLibraries(std_logging.Filter):
  """Drops the per-save INFO chatter of orbax and friends; warnings still show."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return record.levelno >= std_logging.WARNING or not any(
        f'{os.sep}{name}{os.sep}' in record.pathname for name in ('orbax', 'jax', 'tensorstore'))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietLibraries())
  try:
    _initialize_distributed(_CONFIG.value)
    # After jax.distributed, whose preemption notifier would otherwise replace the handler.
    preemption.install()
    run(_CONFIG.value, _WORKDIR.value)
  except preemption.Preempted as e:  # Saved; the same command resumes.
    logging.warning('osas: stopped on request (%s); rerun the same command to resume', e)
    sys.exit(0)
  except ValueError as e:  # Bad input: one line, no traceback, nothing written over.
    logging.debug('osas: bad input', exc_info=True)
    print(f'osas: error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
