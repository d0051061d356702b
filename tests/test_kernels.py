"""Tests of the functional kernels against XLA's native convolution and reduce_window."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads
import numpy as np

from osas.models import kernels

KERNEL_SHAPES = [(3, 3), (5, 5), (7, 7), (1, 7), (7, 1)]
TOL = dict(rtol=1e-5, atol=1e-5)


def _normal(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _tie_free(seed, shape):
  """Distinct values one apart, so max pool's argmax is unique and finite differences exact."""
  values = np.random.default_rng(seed).permutation(np.prod(shape)) - np.prod(shape) / 2
  return jnp.asarray(values.reshape(shape), jnp.float32)


def _value_and_grads(fn, *args):
  """fn(*args) and the gradient wrt every arg of a random linear functional of it."""
  cotangent = _normal(99, jax.eval_shape(fn, *args).shape)
  grads = jax.grad(lambda *a: jnp.vdot(fn(*a), cotangent), range(len(args)))(*args)
  return fn(*args), *grads


def _assert_all_close(actual, expected, **tol):
  for a, e in zip(actual, expected, strict=True):
    np.testing.assert_allclose(a, e, **(tol or TOL))


def _window(x, init, op, size=3, stride=1, padding='SAME'):
  return lax.reduce_window(x, init, op, (1, size, size, 1), (1, stride, stride, 1), padding)


class ResolveImplTest(parameterized.TestCase):

  def test_auto_is_cpu_on_cpu(self):
    if jax.default_backend() != 'cpu':
      self.skipTest('CPU-only expectation')
    self.assertEqual(kernels.resolve_impl('auto'), 'cpu')

  @parameterized.parameters('cpu', 'native')
  def test_explicit_impl_passes_through(self, impl):
    self.assertEqual(kernels.resolve_impl(impl), impl)

  def test_unknown_impl_names_value_and_choices(self):
    with self.assertRaisesRegex(
        ValueError, r"config.model.kernels: unknown 'grouped'.*auto, cpu, native"
    ):
      kernels.resolve_impl('grouped')
    with self.assertRaisesRegex(ValueError, 'grouped'):
      kernels.depthwise_conv(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2)), 'grouped')


class DepthwiseConvTest(parameterized.TestCase):

  def _run(self, impl, x, kernel, kernel_axis=None, use_vmap=False):
    fn = lambda a, k: kernels.depthwise_conv(a, k, impl)
    if use_vmap:
      fn = jax.vmap(fn, in_axes=(0, kernel_axis))
    return jax.jit(lambda a, k: _value_and_grads(fn, a, k))(x, kernel)

  @parameterized.parameters(*KERNEL_SHAPES)
  def test_cpu_matches_native(self, kh, kw):
    x, kernel = _normal(0, (2, 8, 8, 4)), _normal(1, (kh, kw, 4))
    _assert_all_close(self._run('cpu', x, kernel), self._run('native', x, kernel))

  @parameterized.product(kernel_shape=[(3, 3), (7, 1)], kernel_axis=[None, 0])
  def test_cpu_matches_native_under_vmap(self, kernel_shape, kernel_axis):
    x = _normal(0, (3, 2, 8, 8, 4))
    kernel = _normal(1, (3, *kernel_shape, 4) if kernel_axis == 0 else (*kernel_shape, 4))
    shifted = self._run('cpu', x, kernel, kernel_axis, use_vmap=True)
    self.assertEqual(shifted[2].shape, kernel.shape)
    _assert_all_close(shifted, self._run('native', x, kernel, kernel_axis, use_vmap=True))

  def test_kernel_grad_spans_several_batch_chunks(self):
    # Large enough that the kernel gradient's loop over batch chunks runs several times.
    x, kernel = _normal(0, (24, 16, 16, 16)), _normal(1, (5, 5, 16))
    self.assertLess(kernels._batch_chunk(24, 16 * 16 * 16), 24)
    _assert_all_close(
        self._run('cpu', x, kernel), self._run('native', x, kernel), rtol=1e-5, atol=1e-4
    )

  @parameterized.parameters((3, 3), (1, 7))
  def test_check_grads(self, kh, kw):
    fn = lambda a, k: kernels.depthwise_conv(a, k, 'cpu')
    args = (_normal(0, (1, 5, 5, 2)), _normal(1, (kh, kw, 2)))
    check_grads(fn, args, order=1, modes=['rev'], eps=1e-2, atol=1e-2, rtol=1e-2)

  def test_bfloat16_stays_bfloat16_and_close(self):
    x, kernel = _normal(0, (2, 8, 8, 4)), _normal(1, (7, 7, 4))
    bf16 = lambda a: a.astype(jnp.bfloat16)
    out = kernels.depthwise_conv(bf16(x), bf16(kernel), 'cpu')
    self.assertEqual(out.dtype, jnp.bfloat16)
    expected = kernels.depthwise_conv(x, kernel, 'native')
    np.testing.assert_allclose(out.astype(jnp.float32), expected, rtol=0.05, atol=0.2)

  @parameterized.parameters(((2, 3, 4),), ((3, 3, 5),), ((3, 3),))
  def test_bad_kernel_shape_raises(self, kernel_shape):
    with self.assertRaises(ValueError):
      kernels.depthwise_conv(jnp.zeros((1, 8, 8, 4)), jnp.zeros(kernel_shape))


def _reference_avg_pool3x3(x):
  return _window(x, 0.0, lax.add) / _window(jnp.ones_like(x), 0.0, lax.add)


POOLS = dict(
    max_pool3x3=(kernels.max_pool3x3, lambda x: _window(x, -jnp.inf, lax.max)),
    avg_pool3x3=(kernels.avg_pool3x3, _reference_avg_pool3x3),
    avg_pool2x2=(kernels.avg_pool2x2, lambda x: _window(x, 0.0, lax.add, 2, 2, 'VALID') / 4),
)


class DenseConvTest(parameterized.TestCase):

  @parameterized.parameters((1, 1), (3, 3), (1, 7), (7, 1))
  def test_matches_lax_conv_value_and_grads(self, kh, kw):
    # 1x1 runs as a matmul over [N*H*W, Cin], kxk with an im2col kernel gradient.
    native = lambda a, k: lax.conv_general_dilated(
        a, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )
    x, kernel = _normal(0, (2, 6, 7, 3)), _normal(1, (kh, kw, 3, 4))
    _assert_all_close(
        _value_and_grads(kernels.conv2d, x, kernel),
        _value_and_grads(native, x, kernel),
        rtol=1e-5,
        atol=1e-5,
    )

  @parameterized.product(kernel_size=(1, 3, 5), size=((8, 8), (7, 6)), strides=(2, 3))
  def test_strided_matches_lax_conv_value_and_grads(self, kernel_size, size, strides):
    # PyTorch's padding=k//2 on every side: output (y, x) is centred on input (s*y, s*x).
    k = kernel_size
    native = lambda a, w: lax.conv_general_dilated(
        a, w, (strides, strides), [(k // 2, k // 2)] * 2, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
    )
    x, kernel = _normal(0, (2,) + size + (3,)), _normal(1, (k, k, 3, 4))
    _assert_all_close(
        _value_and_grads(lambda a, w: kernels.conv2d(a, w, strides), x, kernel),
        _value_and_grads(native, x, kernel),
        rtol=1e-5,
        atol=1e-5,
    )

  def test_leading_axes_are_batch_axes(self):
    x, kernel = _normal(0, (2, 3, 5, 5, 2)), _normal(1, (3, 3, 2, 4))
    np.testing.assert_allclose(kernels.conv2d(x, kernel)[1], kernels.conv2d(x[1], kernel), **TOL)


class BackendChoiceTest(parameterized.TestCase):
  """config.model.kernels: 'native' (XLA's, for GPU and TPU) and 'cpu' agree."""

  @parameterized.product(kernel_size=((1, 1), (3, 3), (1, 7)), strides=(1, 2))
  def test_conv2d_native_equals_cpu(self, kernel_size, strides):
    if strides > 1 and kernel_size[0] != kernel_size[1]:
      self.skipTest('strided convs are square')
    x, kernel = _normal(0, (2, 3, 8, 6, 3)), _normal(1, kernel_size + (3, 4))
    conv = lambda impl: lambda a, k: kernels.conv2d(a, k, strides, impl)
    _assert_all_close(
        _value_and_grads(conv('cpu'), x, kernel),
        _value_and_grads(conv('native'), x, kernel),
        rtol=1e-5,
        atol=1e-5,
    )

  def test_max_pool_native_equals_cpu(self):
    x = _tie_free(0, (2, 3, 6, 5, 4))
    pool = lambda impl: lambda a: kernels.max_pool3x3(a, impl)
    _assert_all_close(_value_and_grads(pool('cpu'), x), _value_and_grads(pool('native'), x))


class ShardMapTest(absltest.TestCase):
  """The custom-gradient kernels inside shard_map, kernels replicated and x per device."""

  def test_gradients_equal_outside_shard_map(self):
    mesh = jax.make_mesh((1,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
    x = _normal(0, (2, 6, 6, 3))
    for conv, kernel in (
        (lambda a, k: kernels.depthwise_conv(a, k, 'cpu'), _normal(1, (3, 3, 3))),
        (lambda a, k: kernels.conv2d(a, k, 1, 'cpu'), _normal(2, (3, 3, 3, 4))),
    ):
      loss = lambda k, a, conv=conv: jnp.sum(jnp.sin(conv(a, k)))
      inside = jax.shard_map(
          jax.grad(lambda k, a, loss=loss: jax.lax.psum(loss(k, a), 'data')),
          mesh=mesh,
          in_specs=(P(), P('data')),
          out_specs=P(),
      )
      np.testing.assert_allclose(inside(kernel, x), jax.grad(loss)(kernel, x), rtol=1e-5)


class PoolTest(parameterized.TestCase):

  @parameterized.parameters(*POOLS)
  def test_matches_reduce_window(self, name):
    pool, reference = POOLS[name]
    x = _tie_free(0, (2, 8, 6, 3))
    _assert_all_close(
        jax.jit(lambda a: _value_and_grads(pool, a))(x), _value_and_grads(reference, x)
    )
    _assert_all_close(jax.vmap(pool)(jnp.stack([x, -x])), [reference(x), reference(-x)])

  @parameterized.product(name=('max_pool3x3', 'avg_pool3x3'), size=((1, 1), (2, 2), (2, 5)))
  def test_tiny_images_match_reduce_window(self, name, size):
    pool, reference = POOLS[name]
    x = _tie_free(1, (2,) + size + (3,))
    _assert_all_close(pool(x), reference(x))

  @parameterized.parameters(*POOLS)
  def test_check_grads(self, name):
    check_grads(
        POOLS[name][0],
        (_tie_free(0, (1, 4, 4, 2)),),
        order=1,
        modes=['rev'],
        eps=1e-2,
        atol=1e-2,
        rtol=1e-2,
    )

  def test_hand_computed_3x3_values(self):
    x = jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)
    avg = kernels.avg_pool3x3(x)[0, :, :, 0]
    self.assertAlmostEqual(float(avg[0, 0]), (0 + 1 + 4 + 5) / 4)  # Corner: 4 real pixels.
    self.assertAlmostEqual(float(avg[0, 1]), (0 + 1 + 2 + 4 + 5 + 6) / 6)
    self.assertAlmostEqual(float(avg[1, 1]), 5.0)
    # All negative, so zero padding would win at the border; -inf padding must not.
    peak = kernels.max_pool3x3(-1 - x)[0, :, :, 0]
    np.testing.assert_array_equal(peak[0], [-1, -1, -2, -3])
    self.assertEqual(float(kernels.max_pool3x3(x)[0, 1, 1, 0]), 10.0)

  def test_max_pool_grad_with_ties_is_a_subgradient(self):
    x = jnp.zeros((2, 5, 5, 3))  # Every window is all ties.
    grad = jax.grad(lambda a: jnp.sum(kernels.max_pool3x3(a)))(x)
    self.assertTrue(bool(jnp.all(grad >= 0)))
    self.assertEqual(float(grad.sum()), x.size)  # Each output's unit cotangent lands once.

  def test_avg_pool2x2_rejects_odd_sizes(self):
    with self.assertRaisesRegex(ValueError, '5x4'):
      kernels.avg_pool2x2(jnp.zeros((1, 5, 4, 2)))


if __name__ == '__main__':
  absltest.main()
