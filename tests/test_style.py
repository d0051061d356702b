"""The whole tree passes the linter (ruff) and the formatter's check (pyink), as CI runs them."""

import os
import subprocess
import sys

from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PATHS = ['osas', 'configs', 'tests', 'benchmarks', 'launch', 'setup.py']


class StyleTest(absltest.TestCase):

  def _check(self, *command):
    result = subprocess.run(
        [sys.executable, '-m', *command, *_PATHS],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    self.assertEqual(result.returncode, 0, f'{" ".join(command)} failed:\n{output}')

  def test_ruff(self):
    self._check('ruff', 'check', '--no-cache', '--output-format=concise')

  def test_pyink(self):
    self._check('pyink', '--check', '--diff')


if __name__ == '__main__':
  absltest.main()
