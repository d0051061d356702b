"""Shared by the tests: the tiny config with overrides, workdir snapshots, model checks."""

import atexit
import contextlib
import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from configs import tiny as tiny_config
from osas.models import Standalone
from osas.models import Supernet
from osas.models import params_from_supernet
from osas.models.initialize import init_variables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, 'configs', 'tiny.py')


def tiny(arg=None, **overrides):
  """The tiny config (configs/tiny.py) with dotted-field overrides, e.g. **{'model.filters': 4}."""
  config = tiny_config.get_config(arg)
  for dotted, value in overrides.items():
    section, _, field = dotted.rpartition('.')
    (config[section] if section else config)[field] = value
  return config


def snapshot(directory):
  """Every file under `directory` with its bytes."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, directory)] = f.read()
  return out


@contextlib.contextmanager
def count_compiles():
  """Yields a list that gets the function's name for each XLA compile (any thread) inside."""
  compiles = []

  def listen(event, seconds, **kwargs):
    del seconds
    if event == '/jax/core/compile/backend_compile_duration':
      name = kwargs.get('fun_name', '')
      compiles.append(name[len('jit(') : -1] if name.startswith('jit(') else name)

  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    yield compiles
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)


def tile(mask, n):
  """One cell's masks repeated along a new leading (ghost) axis of length n."""
  return jax.tree.map(lambda a: jnp.broadcast_to(a, (n,) + a.shape), mask)


def rel_err(a, b) -> float:
  return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@functools.lru_cache(maxsize=None)
def supernet(space, spec, execution='mask', num_ghosts=2, per_ghost=4):
  """A Supernet, its variables and images [num_ghosts * per_ghost, 8, 8, 3]; built once."""
  net = Supernet(space, spec, execution=execution)
  images = jax.random.normal(jax.random.key(0), (num_ghosts * per_ghost, 8, 8, 3))
  variables = init_variables(net, jax.random.key(1), images, tile(space.all_on(), num_ghosts))
  return net, variables, images


@functools.lru_cache(maxsize=None)
def jit_apply(space, spec, execution='mask'):
  """The jitted `apply` of `supernet(space, spec, execution)`, num_ghosts static."""
  return jax.jit(supernet(space, spec, execution)[0].apply, static_argnums=3)


def assert_kernels_agree(test, space, spec, masks):
  """Logits and parameter gradients with config.model.kernels 'cpu' and 'native' agree."""
  _, variables, images = supernet(space, spec)
  out = {}
  for impl in ('cpu', 'native'):
    net = Supernet(space, dataclasses.replace(spec, kernels=impl))
    loss = lambda p: jnp.sum(jnp.sin(net.apply({'params': p}, images, masks)))
    out[impl] = jax.jit(jax.value_and_grad(loss))(variables['params'])
  test.assertAlmostEqual(float(out['cpu'][0]), float(out['native'][0]), places=4)
  for a, b in zip(jax.tree.leaves(out['cpu'][1]), jax.tree.leaves(out['native'][1])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def standalone_logits(space, spec, supernet_params, arch, images, num_ghosts):
  """Logits of `arch`'s stand-alone model with the supernet's weights, on each ghost batch.

  BN in training mode uses each ghost batch's statistics, as the supernet's ghost BN does.
  """
  model = Standalone(arch, space, spec)
  params = params_from_supernet(supernet_params, arch)
  stats = init_variables(model, jax.random.key(0), images[:1])['batch_stats']
  apply = jax.jit(
      lambda x: model.apply(
          {'params': params, 'batch_stats': stats}, x, train=True, mutable=['batch_stats']
      )[0]
  )
  return jnp.concatenate([apply(ghost) for ghost in jnp.split(images, num_ghosts)])


@functools.lru_cache(maxsize=None)
def finished_tiny_run() -> str:
  """A workdir where the tiny config ran every stage once; shared, so treat it as read-only."""
  from osas import main  # pylint: disable=g-import-not-at-top

  workdir = tempfile.mkdtemp(prefix='osas_tiny_run_')
  atexit.register(shutil.rmtree, workdir, ignore_errors=True)
  main.run(tiny(), workdir)
  return workdir


def assert_skip_equals_masked(test, space, spec, masks, num_ghosts=2):
  """Skip execution (a lax.cond per path) gives masked execution's logits for each mask."""
  _, variables, images = supernet(space, spec)
  skip = supernet(space, spec, 'skip')[0]
  for mask in masks:
    a = jit_apply(space, spec)(variables, images, mask, num_ghosts)
    b = jit_apply(space, spec, 'skip')(variables, images, mask, num_ghosts)
    test.assertLess(rel_err(b, a), 1e-5)
    jaxpr = str(jax.make_jaxpr(lambda m: skip.apply(variables, images, m, num_ghosts))(mask))
    test.assertIn('cond', jaxpr)


def arch_grads(space, spec, arch, num_ghosts=2):
  """Gradients of the supernet's cross-entropy, every ghost batch using `arch`'s masks."""
  net, variables, images = supernet(space, spec)
  labels = jnp.arange(images.shape[0]) % spec.num_classes

  def loss(params):
    logits = net.apply({'params': params}, images, tile(space.encode(arch), num_ghosts))
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(labels.size), labels])

  return jax.jit(jax.grad(loss))(variables['params'])


def pytest_with_devices(test_file: str, selector: str, devices: int = 8):
  """Runs `test_file`'s tests matching `-k selector` on `devices` simulated CPU devices.

  In a subprocess (XLA_FLAGS must be set before JAX starts), one process, no test workers;
  returns its CompletedProcess.
  """
  flags = os.environ.get('XLA_FLAGS', '') + f' --xla_force_host_platform_device_count={devices}'
  env = {**os.environ, 'PYTHONPATH': ROOT, 'XLA_FLAGS': flags.strip()}
  args = ['-q', '-n', '0', '-p', 'no:cacheprovider', os.path.abspath(test_file), '-k', selector]
  return subprocess.run(
      [sys.executable, '-m', 'pytest', *args],
      env=env,
      capture_output=True,
      text=True,
      timeout=600,
      cwd=ROOT,
  )
