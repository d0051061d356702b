"""Times osas.models.kernels against XLA's native ops: forward and forward+gradient, jitted.

Dense convs are timed alone and inside lax.scan (where the supernet runs them, under
nn.scan): XLA:CPU's own kernel gradient is fast in the first case and slow in the second.

  python benchmarks/kernels.py [--batch=256 --size=32 --channels=8 --repeats=7]

Prints a markdown table of median milliseconds; 'ratio' is reference time / ours, so
above 1 means ours is faster.
"""

import os
import statistics
import time
from typing import Callable

from absl import app
from absl import flags
import jax
from jax import lax
import jax.numpy as jnp

from osas.models import kernels

_BATCH = flags.DEFINE_integer('batch', 256, 'N of the NHWC input.')
_SIZE = flags.DEFINE_integer('size', 32, 'H = W of the input.')
_CHANNELS = flags.DEFINE_integer('channels', 8, 'C of the input.')
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed calls per measurement (after 2 warmups).')


def _median_ms(fn: Callable, *args) -> float:
  fn = jax.jit(fn)
  for _ in range(2):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _fwd_and_grad_ms(op: Callable, args: tuple, cotangent: jax.Array) -> tuple[float, float]:
  """Times op(*args), and the gradient of <op(*args), cotangent> wrt every arg."""
  # The cotangent is an argument, not a closed-over constant, so XLA cannot constant-fold
  # the gradient of ops that are linear in x.
  loss = lambda ct, *a: jnp.vdot(op(*a), ct)
  grad = jax.grad(loss, argnums=tuple(range(1, len(args) + 1)))
  return _median_ms(op, *args), _median_ms(grad, cotangent, *args)


def _reference_max_pool(x):
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 1, 1, 1), 'SAME')


def _reference_avg_pool3x3(x):
  window = lambda a: lax.reduce_window(a, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), 'SAME')
  return window(x) / window(jnp.ones((1, *x.shape[1:3], 1), x.dtype))


def _reference_avg_pool2x2(x):
  return lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), 'VALID') / 4


def _max_pool_autodiff(x):
  """The separable max pool without its custom VJP: what the VJP is measured against."""
  return kernels._max3(kernels._max3(x, -3), -2)  # pylint: disable=protected-access


def _lax_conv(x, kernel):
  return lax.conv_general_dilated(
      x, kernel, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def _in_scan(conv):
  """Two convs under lax.scan, as nn.scan runs the cells of a stack."""

  def run(x, kernels_):
    return lax.scan(lambda h, k: (jnp.tanh(conv(h, k)), None), x, kernels_)[0]

  return run


def _pair(conv):
  """1x7 then 7x1 (the conv1x7_7x1 op) with `conv`."""
  return lambda x, k1x7, k7x1: conv(conv(x, k1x7), k7x1)


def main(argv):
  del argv
  shape = (_BATCH.value, _SIZE.value, _SIZE.value, _CHANNELS.value)
  c = shape[-1]
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  x = jax.random.normal(keys[0], shape)
  cotangent = jax.random.normal(keys[1], shape)
  print(
      f'backend={jax.default_backend()} devices={jax.devices()} cpus={os.cpu_count()} '
      f'x={shape} float32, median of {_REPEATS.value}\n'
  )
  print(
      '| op | reference | ours | ref fwd ms | ours fwd ms | fwd ratio '
      '| ref fwd+grad ms | ours fwd+grad ms | fwd+grad ratio |'
  )
  print('|---|---|---|---:|---:|---:|---:|---:|---:|')

  def row(name, ref_name, ref_op, our_name, our_op, args, ct=cotangent):
    ref_f, ref_g = _fwd_and_grad_ms(ref_op, args, ct)
    our_f, our_g = _fwd_and_grad_ms(our_op, args, ct)
    cells = [
        name,
        ref_name,
        our_name,
        f'{ref_f:.1f}',
        f'{our_f:.1f}',
        f'{ref_f / our_f:.1f}x',
        f'{ref_g:.1f}',
        f'{our_g:.1f}',
        f'{ref_g / our_g:.1f}x',
    ]
    print('| ' + ' | '.join(cells) + ' |', flush=True)

  for k in (3, 5, 7):
    kernel = jax.random.normal(keys[2], (k, k, c))
    depthwise = lambda impl: lambda a, w: kernels.depthwise_conv(a, w, impl)
    row(
        f'depthwise {k}x{k}',
        'native',
        depthwise('native'),
        'cpu (shifted)',
        depthwise('cpu'),
        (x, kernel),
    )
  row(
      'max_pool3x3',
      'reduce_window',
      _reference_max_pool,
      'separable+vjp',
      kernels.max_pool3x3,
      (x,),
  )
  row(
      'max_pool3x3',
      'separable autodiff',
      _max_pool_autodiff,
      'separable+vjp',
      kernels.max_pool3x3,
      (x,),
  )
  row(
      'avg_pool3x3', 'reduce_window', _reference_avg_pool3x3, 'separable', kernels.avg_pool3x3, (x,)
  )
  row(
      'avg_pool2x2',
      'reduce_window',
      _reference_avg_pool2x2,
      'reshape-mean',
      kernels.avg_pool2x2,
      (x,),
      cotangent[:, ::2, ::2],
  )
  for k in (1, 3):
    row(
        f'dense {k}x{k}',
        'lax.conv',
        _lax_conv,
        'conv2d',
        kernels.conv2d,
        (x, jax.random.normal(keys[2], (k, k, c, c))),
    )
  for k in (1, 3):
    stacked = 0.1 * jax.random.normal(keys[2], (2, k, k, c, c))
    row(
        f'dense {k}x{k}, 2 in lax.scan',
        'lax.conv',
        _in_scan(_lax_conv),
        'conv2d',
        _in_scan(kernels.conv2d),
        (x, stacked),
    )
  k1x7 = jax.random.normal(keys[2], (1, 7, c, c))
  k7x1 = jax.random.normal(keys[3], (7, 1, c, c))
  row(
      'dense 1x7+7x1',
      'lax.conv',
      _pair(_lax_conv),
      'conv2d',
      _pair(kernels.conv2d),
      (x, k1x7, k7x1),
  )


if __name__ == '__main__':
  app.run(main)
