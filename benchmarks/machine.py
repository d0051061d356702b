"""This machine's sustained float32 matmul and convolution GFLOP/s under jit: the limits."""

import statistics
import time

import jax
from jax import lax
import jax.numpy as jnp


def median_seconds(fn, *args, warmup: int = 5, repeats: int = 20) -> float:
  """Median wall seconds of fn(*args) after `warmup` untimed calls.

  The first few calls run well below the rest (thread pool start-up).
  """
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_gflops(n: int = 1024) -> float:
  """Sustained float32 GFLOP/s of an n x n x n matmul."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  return 2 * n**3 / median_seconds(jax.jit(lambda x: x @ x), a) / 1e9


def conv_gflops(batch: int = 128, size: int = 32, channels: int = 64, k: int = 3) -> float:
  """Sustained float32 GFLOP/s of XLA's k x k 'SAME' convolution, channels in and out."""
  x = jax.random.normal(jax.random.key(0), (batch, size, size, channels), jnp.float32)
  w = jax.random.normal(jax.random.key(1), (k, k, channels, channels), jnp.float32)
  conv = jax.jit(
      lambda x, w: lax.conv_general_dilated(
          x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
      )
  )
  flops = 2 * batch * size * size * k * k * channels * channels
  return flops / median_seconds(conv, x, w) / 1e9
