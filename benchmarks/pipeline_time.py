"""Wall time of a whole pipeline run (the README's first command by default), stage by stage.

    PYTHONPATH=. python benchmarks/pipeline_time.py [--code=DIR ...] [--config=configs/digits.py]

Each `--code` is a checkout whose osas runs the config in a fresh workdir, one after
another, so that two versions compare under the same machine state. The stages' times
come from the log lines `osas: stage NAME`; compiles from `first step (compile) took`.
"""

import datetime
import os
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_CODE = flags.DEFINE_multi_string('code', ['.'], 'Checkouts to time, in this order.')
_CONFIG = flags.DEFINE_string('config', 'configs/digits.py', 'The config, relative to a checkout.')

_LOGGED = re.compile(r'^[IWE](\d{4} \d\d:\d\d:\d\d\.\d+) ')
_STAGE = re.compile(_LOGGED.pattern + r'.*osas: stage (\w+)')
_COMPILE = re.compile(r'\] (.+): first step \(compile\) took ([\d.]+) s')


def _time(line: str) -> datetime.datetime:
  return datetime.datetime.strptime(_LOGGED.match(line).group(1), '%m%d %H:%M:%S.%f')


def stage_seconds(log: str, end: datetime.datetime) -> dict[str, float]:
  """Seconds from each `osas: stage` line to the next (the last one to `end`)."""
  starts = [(m.group(2), _time(line)) for line in log.splitlines() if (m := _STAGE.match(line))]
  ends = [t for _, t in starts[1:]] + [end]
  return {name: (stop - start).total_seconds() for (name, start), stop in zip(starts, ends)}


def run(code: str) -> None:
  workdir = tempfile.mkdtemp(prefix='osas_pipeline_time_')
  command = [sys.executable, '-m', 'osas.main', f'--config={_CONFIG.value}', f'--workdir={workdir}']
  env = {**os.environ, 'PYTHONPATH': os.path.abspath(code)}
  started = time.time()
  result = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
  wall = time.time() - started
  if result.returncode:
    sys.exit(f'{code}: exit {result.returncode}\n{result.stderr[-3000:]}')
  end = _time([line for line in result.stderr.splitlines() if _LOGGED.match(line)][-1])
  stages = stage_seconds(result.stderr, end)
  compiles = [(name, float(s)) for name, s in _COMPILE.findall(result.stderr)]
  print(f'{code} ({workdir}): wall {wall:.0f} s')
  for name, seconds in stages.items():
    print(f'  {name:15s} {seconds:6.1f} s')
  for name, seconds in compiles:
    print(f'  first step of {name}: {seconds:.1f} s')


def main(argv):
  del argv
  for code in _CODE.value:
    run(code)


if __name__ == '__main__':
  app.run(main)
