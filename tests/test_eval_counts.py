"""Evaluation counts correct predictions on the devices: the same as a hand count, any mesh.

The tests run on a 1-device mesh and on one of every device there is; with one device the
file runs again in a subprocess with 8 simulated devices.
"""

import functools

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from osas import parallel
from osas import space as space_lib
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models.initialize import init_variables
from osas.train import common
from osas.train import standalone as standalone_train
from osas.train import supernet as supernet_train

DEVICES = 8


def _meshes():
  return [parallel.make_mesh(n) for n in sorted({1, jax.device_count()})]


class _Split:
  """Stands in for a DataSplit: eval_batches yields the given batches (one host)."""

  def __init__(self, batches):
    self._batches = batches

  def eval_batches(self, remainder):
    del remainder
    return iter(self._batches)


def _images(rng, n, shape):
  return rng.normal(size=(n,) + shape).astype(np.float32)


class EvalCountsTest(absltest.TestCase):

  def test_standalone_accuracy_is_the_hand_count_and_padded_rows_do_not_count(self):
    config = helpers.tiny()
    space = space_lib.from_config(config.space)
    arch = space.parse(config.retrain.archs[0])
    model = Standalone(arch, space, ModelSpec.from_config(config.model, num_classes=10))
    shape = (8, 8, 1)
    variables = init_variables(model, jax.random.key(3), np.zeros((1,) + shape, np.float32))
    # BN statistics away from their initial 0/1, so that predictions differ between images.
    stats = jax.tree.map(lambda x: x + 0.3, variables['batch_stats'])
    state = common.TrainState(
        step=jnp.zeros((), jnp.int32),
        params=variables['params'],
        opt_state=None,
        key=jax.random.key(0),
        batch_stats=stats,
    )
    predict = lambda images: np.asarray(
        model.apply({'params': state.params, 'batch_stats': stats}, images, train=False)
    ).argmax(-1)
    rng = np.random.default_rng(0)
    batches, correct, valid_rows = [], 0, 0
    for real in (16, 16, 5):  # The last batch: 5 real rows, 11 padded.
      images = _images(rng, 16, shape)
      predicted = predict(images)
      labels = np.where(rng.random(16) < 0.5, predicted, (predicted + 1) % 10)
      valid = (np.arange(16) < real).astype(np.float32)
      labels[real:] = predicted[real:]  # Right if they counted: they must not.
      batches.append({'image': images, 'label': labels.astype(np.int32), 'valid': valid})
      correct += int((labels == predicted)[:real].sum())
      valid_rows += real
    self.assertNotIn(correct, (0, valid_rows))
    for mesh in _meshes():
      repl, sharded = parallel.replicated(mesh), parallel.data_sharding(mesh)
      counts = jax.jit(
          functools.partial(standalone_train.eval_counts, model=model),
          in_shardings=(repl, sharded),
          out_shardings=repl,
      )
      accuracy = standalone_train.accuracy(parallel.put(state, repl), _Split(batches), counts, mesh)
      self.assertEqual(accuracy, correct / valid_rows, f'{mesh.devices.size} devices')

  def test_probe_accuracies_are_the_hand_count(self):
    config = helpers.tiny(
        **{
            'supernet.batch_size': 32,
            'supernet.ghost_batch_size': 4,
            'supernet.eval_batch_size': 32,
            'supernet.num_probes': 2,
        }
    )
    rng = np.random.default_rng(1)
    results = []
    for mesh in _meshes():
      parts = supernet_train.build(config, mesh)
      state = supernet_train.init_state(parts, config, mesh)
      if not results:  # The same batches for every mesh, labels half right.
        names, masks = supernet_train.probe_archs(parts['space'], config.seed, 2)
        apply = jax.jit(functools.partial(parts['model'].apply, num_ghosts=8))
        batches, correct = [], np.zeros(len(names), int)
        for _ in range(3):
          images = _images(rng, 32, parts['train'].image_shape)
          predicted = np.stack(
              [
                  np.asarray(
                      apply(
                          {'params': state.params}, images, jax.tree.map(lambda m, i=i: m[i], masks)
                      )
                  ).argmax(-1)
                  for i in range(len(names))
              ]
          )
          labels = np.where(rng.random(32) < 0.5, predicted[0], (predicted[0] + 1) % 10)
          batches.append({'image': images, 'label': labels.astype(np.int32)})
          correct += (predicted == labels).sum(-1)
        expected = {f'probe_{n}_accuracy': c / 96 for n, c in zip(names, correct)}
        expected['probe_random_mean_accuracy'] = correct[1:].mean() / 96
        self.assertNotIn(correct[0], (0, 96))
      parts['valid'] = _Split(batches)
      results.append(supernet_train.evaluate_probes(state, parts, config, mesh))
    for scalars in results:
      self.assertEqual(scalars.keys(), expected.keys())
      for name, value in expected.items():
        self.assertAlmostEqual(scalars[name], value, places=12, msg=name)


class RunWithEightDevicesTest(absltest.TestCase):

  @absltest.skipIf(jax.device_count() >= DEVICES, 'EvalCountsTest uses them in this process')
  def test_in_a_subprocess(self):
    result = helpers.pytest_with_devices(__file__, 'EvalCountsTest', DEVICES)
    self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
    self.assertIn('2 passed', result.stdout)


if __name__ == '__main__':
  absltest.main()
