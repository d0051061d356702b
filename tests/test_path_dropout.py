"""Statistical and structural tests of path dropout."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from osas.space import SearchSpace


class PathDropoutTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.space = SearchSpace()

  def _draw(self, ramp, rate, n=100_000, seed=0):
    fn = jax.jit(self.space.drop_masks, static_argnums=1)
    masks = fn(jax.random.key(seed), n, ramp=ramp, rate=rate)
    return np.asarray(masks.inputs), np.asarray(masks.ops)

  @parameterized.parameters((1.0, 0.1), (0.5, 0.1), (1.0, 0.5), (0.3, 0.9))
  def test_drop_frequency_of_every_path(self, ramp, rate):
    inputs, ops = self._draw(ramp, rate)
    n = inputs.shape[0]
    for i in range(self.space.num_blocks):
      k = 2 + i
      p = ramp * rate ** (1 / k)
      se = np.sqrt(p * (1 - p) / n)
      for j in range(k):
        dropped = 1 - inputs[:, i, j].mean()
        self.assertLess(abs(dropped - p), 4 * se, f'block {i} input {j}: {dropped} vs {p}')
      np.testing.assert_array_equal(inputs[:, i, k:], False)  # Padding never turns on.
      p_op = ramp * rate ** (1 / 7)
      se_op = np.sqrt(p_op * (1 - p_op) / n)
      for o in range(7):
        self.assertLess(abs(1 - ops[:, i, o].mean() - p_op), 4 * se_op)

  def test_all_inputs_drop_together_with_probability_rate(self):
    rate = 0.1
    inputs, ops = self._draw(1.0, rate)
    n = inputs.shape[0]
    se = np.sqrt(rate * (1 - rate) / n)
    for i in range(self.space.num_blocks):
      all_dropped = (~inputs[:, i, : 2 + i]).all(axis=1).mean()
      self.assertLess(abs(all_dropped - rate), 4 * se, f'block {i}: {all_dropped}')
      self.assertLess(abs((~ops[:, i]).all(axis=1).mean() - rate), 4 * se)

  def test_paths_drop_independently(self):
    inputs, _ = self._draw(1.0, 0.3)
    a, b = ~inputs[:, 3, 0], ~inputs[:, 3, 4]
    p = 0.3**0.2
    self.assertLess(abs((a & b).mean() - p * p), 4 * np.sqrt(p * p / a.size))

  def test_no_drops_at_ramp_zero(self):
    inputs, ops = self._draw(0.0, 0.5, n=10_000)
    np.testing.assert_array_equal(inputs, np.broadcast_to(self.space.valid_inputs, inputs.shape))
    self.assertTrue(ops.all())

  def test_ghosts_differ_and_key_determines(self):
    a, _ = self._draw(1.0, 0.5, n=8, seed=1)
    b, _ = self._draw(1.0, 0.5, n=8, seed=1)
    np.testing.assert_array_equal(a, b)
    self.assertGreater(len({m.tobytes() for m in a}), 1)

  def test_base_masks_only_lose_paths(self):
    base = self.space.sample_masks(jax.random.key(2), 1)
    base = jax.tree.map(lambda x: x[0], base)
    masks = self.space.drop_masks(jax.random.key(3), 64, ramp=1.0, rate=0.5, base=base)
    self.assertFalse((np.asarray(masks.inputs) & ~np.asarray(base.inputs)).any())
    self.assertFalse((np.asarray(masks.ops) & ~np.asarray(base.ops)).any())


if __name__ == '__main__':
  absltest.main()
