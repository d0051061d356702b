"""Functional NHWC kernels of the search space's ops: fast on XLA:CPU, native elsewhere.

`config.model.kernels` chooses, in one place, for every convolution and pool: 'cpu' (the
forms below that XLA:CPU runs fast: shifted multiply-adds, matmuls over im2col columns,
separable maxima, each with its own gradient), 'native' (XLA's convolutions and
reduce_window, what GPUs and TPUs run best) or 'auto' (cpu on CPU, native elsewhere).
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

IMPLS = ('auto', 'cpu', 'native')

# Per-chunk element budget of the kernel gradient's batch loop: small enough that a chunk
# of x and of g stays in L2 across all k*k taps, large enough to amortise the loop.
_CHUNK_ELEMENTS = 1 << 15


def resolve_impl(impl: str) -> str:
  """The kernels `impl` selects: 'auto' is 'cpu' on the CPU backend, else 'native'."""
  if impl == 'auto':
    return 'cpu' if jax.default_backend() == 'cpu' else 'native'
  if impl in IMPLS:
    return impl
  raise ValueError(f'config.model.kernels: unknown {impl!r}; expected one of {", ".join(IMPLS)}')


def _varying_axes(a: jax.Array) -> frozenset[str]:
  """The shard_map axes `a` varies over (JAX 0.10 names them manual_axis_type.varying)."""
  aval = jax.typeof(a)
  manual = getattr(aval, 'manual_axis_type', None)
  return manual.varying if manual is not None else frozenset(getattr(aval, 'vma', ()))


def _vary_like(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`kernel` varying over the manual (shard_map) axes x varies over; outside, unchanged.

  A custom VJP must give the kernel a cotangent of its own type; its gradient from
  per-device x varies, so the kernel is made varying first (the transpose psums it).
  """
  axes = tuple(sorted(_varying_axes(x) - _varying_axes(kernel)))
  return lax.pcast(kernel, axes, to='varying') if axes else kernel


def _pad_hw(x: jax.Array, ph: int, pw: int) -> jax.Array:
  pads = [(0, 0)] * (x.ndim - 3) + [(ph, ph), (pw, pw), (0, 0)]
  return jnp.pad(x, pads)


def _windows(xp: jax.Array, kh: int, kw: int):
  """Yields the kh*kw stride-1 windows of a 'SAME'-padded [..., H+kh-1, W+kw-1, C] array."""
  h, w = xp.shape[-3] - kh + 1, xp.shape[-2] - kw + 1
  for i in range(kh):
    for j in range(kw):
      yield xp[..., i : i + h, j : j + w, :]


def _acc_dtype(dtype) -> jnp.dtype:
  # Sums over up to 49 taps (or a whole batch) lose too much in bfloat16/float16.
  return jnp.promote_types(dtype, jnp.float32)


def _shifted_forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
  kh, kw, _ = kernel.shape
  acc = _acc_dtype(jnp.result_type(x, kernel))
  taps = kernel.astype(acc).reshape(kh * kw, -1)
  out = sum(
      window.astype(acc) * taps[t]
      for t, window in enumerate(_windows(_pad_hw(x, kh // 2, kw // 2), kh, kw))
  )
  return out.astype(jnp.result_type(x, kernel))


def _batch_chunk(n: int, per_example: int) -> int:
  """The largest divisor of n whose chunk of examples fits the _CHUNK_ELEMENTS budget."""
  limit = max(1, _CHUNK_ELEMENTS // per_example)
  return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def _shifted_kernel_grad(x: jax.Array, g: jax.Array, kh: int, kw: int) -> jax.Array:
  """d(sum g * depthwise_conv(x, k)) / dk: per tap, sum of window * g over all but channels.

  Done tap by tap over the whole batch, each of the k*k reductions streams x and g from
  memory (at 7x7 on (256,32,32,8) that is 49 * 16 MB); looping over cache-sized chunks
  of the batch and doing every tap per chunk is 1.2-1.7x faster on CPU at 32x32 inputs.
  """
  h, w, c = x.shape[-3:]
  acc = _acc_dtype(jnp.result_type(x, g))
  xp = _pad_hw(x.reshape(-1, h, w, c), kh // 2, kw // 2)
  g = g.reshape(-1, h, w, c)
  n = g.shape[0]
  nb = _batch_chunk(n, h * w * c)

  def body(total, chunk):
    xc, gc = chunk
    gc = gc.astype(acc)
    taps = [jnp.sum(window.astype(acc) * gc, axis=(0, 1, 2)) for window in _windows(xc, kh, kw)]
    return total + jnp.stack(taps), None

  chunks = (xp.reshape(n // nb, nb, *xp.shape[1:]), g.reshape(n // nb, nb, h, w, c))
  # full_like, not zeros: inside shard_map the carry must vary over x's axes from the start.
  total, _ = lax.scan(body, lax.full_like(xp, 0, acc, (kh * kw, c)), chunks)
  return total.reshape(kh, kw, c)


def _depthwise_shifted_bwd(residuals, g):
  x, kernel = residuals
  kh, kw, _ = kernel.shape
  # With odd kernels 'SAME' pads symmetrically, so the transpose is the same
  # correlation with the kernel flipped in both spatial axes.
  dx = _shifted_forward(g, kernel[::-1, ::-1])
  dk = _shifted_kernel_grad(x, g, kh, kw)
  return dx.astype(x.dtype), dk.astype(kernel.dtype)


_depthwise_shifted = jax.custom_vjp(_shifted_forward)
_depthwise_shifted.defvjp(lambda x, k: (_shifted_forward(x, k), (x, k)), _depthwise_shifted_bwd)


def _conv(x: jax.Array, kernel: jax.Array, groups: int = 1) -> jax.Array:
  return lax.conv_general_dilated(
      x,
      kernel,
      (1, 1),
      'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      feature_group_count=groups,
  )


def _check_odd(kernel: jax.Array) -> None:
  if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
    raise ValueError(f'kernel height and width must be odd, got {kernel.shape[:2]}')


def depthwise_conv(x: jax.Array, kernel: jax.Array, impl: str = 'auto') -> jax.Array:
  """Depthwise conv of x [..., H, W, C] with kernel [kh, kw, C]: stride 1, 'SAME', no bias.

  'native' is XLA's grouped convolution; 'cpu' sums kh*kw shifted slices of x times
  kernel taps (10-50x faster on XLA:CPU, forward and gradient); 'auto' picks per backend.
  """
  if kernel.ndim != 3 or kernel.shape[-1] != x.shape[-1] or x.ndim < 3:
    raise ValueError(
        f'expected x [..., H, W, C] and kernel [kh, kw, C], got x {x.shape} '
        f'and kernel {kernel.shape}'
    )
  _check_odd(kernel)
  if resolve_impl(impl) == 'cpu':
    return _depthwise_shifted(x, _vary_like(x, kernel))
  h, w, c = x.shape[-3:]
  return _conv(x.reshape(-1, h, w, c), kernel[:, :, None, :], c).reshape(x.shape)


def _columns(x: jax.Array, kh: int, kw: int, strides: int = 1) -> jax.Array:
  """im2col: [..., H/s, W/s, kh*kw*C], tap-major, matching kernel.reshape(kh*kw*C, features)."""
  windows = _windows(_pad_hw(x, kh // 2, kw // 2), kh, kw)
  return jnp.concatenate([w[..., ::strides, ::strides, :] for w in windows], axis=-1)


def _matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The product of x [..., Cin] and kernel [Cin, Cout], with x flattened to 2-D first.

  Flattened so that autodiff's kernel gradient contracts one axis: contracting several,
  XLA:CPU picks a matmul that wants x transposed and fuses x's producers (a depthwise
  conv, BN) into that transposed copy, recomputing them there with strided writes (2-3x
  slower at 32x32x8).
  """
  out = jnp.reshape(x, (-1, x.shape[-1])) @ kernel
  return out.reshape(*x.shape[:-1], out.shape[-1])


def _conv_kxk_bwd(residuals, g):
  x, kernel = residuals
  kh, kw, _, _ = kernel.shape
  # Odd kernels pad symmetrically: dx is the 'SAME' conv of g with the flipped,
  # transposed kernel (a forward conv XLA runs natively). The kernel gradient, which
  # XLA emits as a conv windowed over the whole image, is a matmul over im2col columns.
  dx = _conv(g, jnp.swapaxes(kernel[::-1, ::-1], 2, 3))
  dk = _kernel_grad(_columns(x, kh, kw), g)
  return dx.astype(x.dtype), dk.reshape(kernel.shape).astype(kernel.dtype)


_conv_kxk = jax.custom_vjp(lambda x, kernel: _conv(x, kernel))
_conv_kxk.defvjp(lambda x, k: (_conv(x, k), (x, k)), _conv_kxk_bwd)


def _kernel_grad(x: jax.Array, g: jax.Array) -> jax.Array:
  """Sum over all but the last axis of x[..., :, None] * g[..., None, :], as a 2-D matmul."""
  acc = _acc_dtype(jnp.result_type(x, g))
  x, g = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
  return jnp.tensordot(x, g, (0, 0), preferred_element_type=acc)


def conv2d(x: jax.Array, kernel: jax.Array, strides: int = 1, impl: str = 'auto') -> jax.Array:
  """Dense conv of x [..., H, W, Cin] with kernel [kh, kw, Cin, Cout], no bias.

  Stride 1 is 'SAME'; stride s pads k // 2 on every side (PyTorch's padding=k//2, as
  NAS-Bench-201's reductions), so output pixel (y, x) is centred on input (s*y, s*x).
  XLA:CPU runs the kernel gradient of nn.Conv as a convolution windowed over the whole
  image, and inside a while loop (nn.scan over cells or ghost batches) it leaves that
  convolution in a layout its fast path does not take: 15-60x slower than a matmul.
  Here 1x1 convs are matmuls (forward 2-10x faster too), larger ones get the kernel
  gradient as one, and strided ones are a matmul over strided im2col columns; 'native'
  (`impl`, see resolve_impl) is XLA's convolution with the same padding.
  """
  if kernel.ndim != 4 or x.ndim < 3 or x.shape[-1] != kernel.shape[2]:
    raise ValueError(
        f'expected x [..., H, W, Cin] and kernel [kh, kw, Cin, Cout], got x '
        f'{x.shape} and kernel {kernel.shape}'
    )
  _check_odd(kernel)
  kh, kw, cin, _ = kernel.shape
  if resolve_impl(impl) == 'native':
    h, w = x.shape[-3:-1]
    out = lax.conv_general_dilated(
        jnp.reshape(x, (-1, h, w, cin)),
        kernel,
        (strides, strides),
        [(kh // 2, kh // 2), (kw // 2, kw // 2)],
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    )
    return out.reshape(*x.shape[:-3], *out.shape[-3:])
  if strides > 1:
    return _matmul(_columns(x, kh, kw, strides), kernel.reshape(kh * kw * cin, -1))
  if kh == kw == 1:
    return _matmul(x, kernel[0, 0])
  h, w = x.shape[-3:-1]
  out = _conv_kxk(jnp.reshape(x, (-1, h, w, cin)), _vary_like(x, jnp.asarray(kernel)))
  return out.reshape(*x.shape[:-1], out.shape[-1])


def _lowest(dtype) -> float | int:
  return -jnp.inf if jnp.issubdtype(dtype, jnp.inexact) else jnp.iinfo(dtype).min


def _shift(x: jax.Array, axis: int, offset: int, fill) -> jax.Array:
  """out[m] = x[m + offset] along `axis`, `fill` where m + offset falls outside."""
  axis %= x.ndim
  pads = [(0, 0)] * x.ndim
  pads[axis] = (max(-offset, 0), max(offset, 0))
  start = max(offset, 0)
  return lax.slice_in_dim(
      jnp.pad(x, pads, constant_values=fill), start, start + x.shape[axis], axis=axis
  )


def _reduce3(x: jax.Array, axis: int, op, fill) -> jax.Array:
  """Applies op over the 3-wide 'SAME' window along `axis` (fill standing in for the padding)."""
  return functools.reduce(op, [_shift(x, axis, d, fill) for d in (-1, 0, 1)])


def _max3(x: jax.Array, axis: int) -> jax.Array:
  return _reduce3(x, axis, jnp.maximum, _lowest(x.dtype))


def _max3_grad(x: jax.Array, y: jax.Array, g: jax.Array, axis: int) -> jax.Array:
  """Routes each g to the first position of its window holding the max y, once per window."""
  taken = jnp.zeros(y.shape, bool)
  dx = jnp.zeros_like(g)
  for d in (-1, 0, 1):
    hit = (_shift(x, axis, d, _lowest(x.dtype)) == y) & ~taken
    taken |= hit
    dx += _shift(jnp.where(hit, g, 0), axis, -d, 0)
  return dx


def max_pool3x3(x: jax.Array, impl: str = 'auto') -> jax.Array:
  """3x3 max pool of x [..., H, W, C], stride 1, 'SAME' (padding never wins).

  'cpu' (`impl`, see resolve_impl): separable (3-row then 3-column maxima) with a custom
  VJP that routes each output's cotangent to one argmax; on CPU its forward+grad is ~4x
  faster than reduce_window's and 5-15% faster than autodiff through jnp.maximum.
  Reverse mode only (no jvp). 'native': XLA's reduce_window.
  """
  if resolve_impl(impl) == 'cpu':
    return _max_pool3x3_cpu(x)
  window = (1,) * (x.ndim - 3) + (3, 3, 1)
  return lax.reduce_window(x, _lowest(x.dtype), lax.max, window, (1,) * x.ndim, 'SAME')


@jax.custom_vjp
def _max_pool3x3_cpu(x: jax.Array) -> jax.Array:
  return _max3(_max3(x, -3), -2)


def _max_pool3x3_bwd(x, g):
  # Recomputing the two cheap max passes beats keeping two activations per pool alive.
  rows = _max3(x, -3)
  y = _max3(rows, -2)
  return (_max3_grad(x, rows, _max3_grad(rows, y, g, -2), -3),)


_max_pool3x3_cpu.defvjp(lambda x: (_max_pool3x3_cpu(x), x), _max_pool3x3_bwd)


def _window_counts(n: int) -> np.ndarray:
  """Real pixels in each 3-wide window along an axis of length n (also for n < 3)."""
  i = np.arange(n)
  return np.minimum(i + 1, n - 1) - np.maximum(i - 1, 0) + 1


def avg_pool3x3(x: jax.Array) -> jax.Array:
  """3x3 average pool of x [..., H, W, C], stride 1, 'SAME', averaging real pixels only."""
  h, w = x.shape[-3:-1]
  sums = _reduce3(_reduce3(x, -3, jnp.add, 0), -2, jnp.add, 0)
  inv_counts = 1.0 / np.outer(_window_counts(h), _window_counts(w))[:, :, None]
  return sums * jnp.asarray(inv_counts, x.dtype)


def avg_pool2x2(x: jax.Array) -> jax.Array:
  """2x2 average pool of x [..., H, W, C], stride 2; H and W must be even."""
  *lead, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f'avg_pool2x2 needs even height and width, got {h}x{w}')
  return x.reshape(*lead, h // 2, 2, w // 2, 2, c).mean(axis=(-4, -2))
