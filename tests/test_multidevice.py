"""Data parallelism: 8 simulated CPU devices compute what 1 device does, step and scores alike.

XLA fixes the device count when its backend starts, so with one device the test runs this
file again in a subprocess with `--xla_force_host_platform_device_count=8`.
"""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

import helpers
from osas import parallel
from osas import space as space_lib
from osas.models import ModelSpec
from osas.search.evaluator import Evaluator
from osas.train import supernet as supernet_train

DEVICES = 8


def _config():
  """The tiny config with a global batch of 8 ghost batches of 4: one per device."""
  return helpers.tiny(
      **{
          'supernet.batch_size': 32,
          'supernet.ghost_batch_size': 4,
          'supernet.eval_batch_size': 32,
          'supernet.lr_reference_batch_size': 32,
      }
  )


def _batch(config, image_shape):
  rng = np.random.default_rng(0)
  size = config.supernet.batch_size
  return {
      'image': rng.normal(size=(size,) + image_shape).astype(np.float32),
      'label': rng.integers(0, 10, size).astype(np.int32),
  }


def _relative(a, b) -> float:
  return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@absltest.skipIf(jax.device_count() < DEVICES, 'runs in the subprocess with 8 devices')
class EightDevicesTest(parameterized.TestCase):

  def test_one_step_on_8_devices_equals_1_device(self):
    # 'mask' and 'skip' on 8 devices (ghost batches one by one on each) against 'mask' on 1.
    config = _config()
    config.supernet.sampler = 'uniform_cell'  # Single path: what 'skip' is for.
    out = {}
    for n, execution in ((1, 'mask'), (DEVICES, 'mask'), (DEVICES, 'skip')):
      mesh = parallel.make_mesh(n)
      config.supernet.execution = execution
      parts = supernet_train.build(config, mesh)
      state = supernet_train.init_state(parts, config, mesh)
      batch = parallel.global_batch(_batch(config, parts['train'].image_shape), mesh)
      state, metrics = parts['step'](state, batch)
      out[n, execution] = (jax.tree.map(np.asarray, state.params), float(metrics.compute()['loss']))
      self.assertLen(state.params['net']['stem']['conv']['kernel'].sharding.device_set, n)
    want_params, want_loss = out[1, 'mask']
    for execution in ('mask', 'skip'):
      params, loss = out[DEVICES, execution]
      self.assertLess(abs(loss - want_loss) / want_loss, 1e-5, execution)
      a, b = (
          np.concatenate([x.ravel() for x in jax.tree.leaves(p)]) for p in (params, want_params)
      )
      self.assertLess(np.linalg.norm(a - b) / np.linalg.norm(b), 1e-5, execution)
      # BN biases start at 0, so after one step they are one small update (the stem's true
      # gradient is 0): their differences are summation-order noise, hence the atol.
      for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(want_params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=execution)

  @parameterized.parameters('vmap', 'skip')
  def test_evaluator_scores_on_8_devices_equal_1_device(self, mode):
    config = _config()
    space = space_lib.from_config(config.space)
    spec = ModelSpec.from_config(config.model, num_classes=10)
    parts = supernet_train.build(config, parallel.make_mesh(1))
    params = supernet_train.init_state(parts, config, parallel.make_mesh(1)).params
    batch = _batch(config, parts['train'].image_shape)
    masks = space.sample_masks(jax.random.key(4), 16)
    scores = {}
    for n in (1, DEVICES):
      mesh = parallel.make_mesh(n)
      evaluator = Evaluator(space, spec, mesh, mode=mode, chunk_size=16, ghost_batch_size=4)
      arrays = parallel.global_batch(batch, mesh)
      scores[n] = evaluator.score(
          jax.device_put(params, parallel.replicated(mesh)),
          [(arrays['image'], arrays['label'])],
          masks,
      )
    np.testing.assert_array_equal(scores[DEVICES]['accuracy'], scores[1]['accuracy'])
    self.assertLess(_relative(scores[DEVICES]['loss'], scores[1]['loss']), 1e-5)


class RunWithEightDevicesTest(absltest.TestCase):

  @absltest.skipIf(jax.device_count() >= DEVICES, 'EightDevicesTest runs in this process')
  def test_in_a_subprocess(self):
    result = helpers.pytest_with_devices(__file__, 'EightDevicesTest and not Run', DEVICES)
    self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
    self.assertIn('3 passed', result.stdout)
    self.assertNotIn('skipped', result.stdout)


if __name__ == '__main__':
  absltest.main()
