"""The fast initialiser draws every variable as the module's own initialiser would.

osas.models.initialize picks each kernel's scale from its name and shape (to skip the
minute-long compile of `Module.init`); here each variable's initialiser is taken from the
modules themselves (the function object passed to `param`/`variable`) and called, so a
change of any module's initialiser that the fast path does not follow fails this test.
"""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from osas import space as space_lib
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models import Supernet
from osas.models import initialize


def _recorded_initialisers(module, *args):
  """{(collection, *path): (init_fn, init_args)} of every variable `module.init` creates."""
  calls = {}
  param, variable = nn.Module.param, nn.Module.variable

  def recording_param(self, name, init_fn, *init_args, **kwargs):
    calls[('params', *self.path, name)] = (init_fn, init_args)
    return param(self, name, init_fn, *init_args, **kwargs)

  def recording_variable(self, collection, name, init_fn=None, *init_args, **kwargs):
    calls[(collection, *self.path, name)] = (init_fn, init_args)
    return variable(self, collection, name, init_fn, *init_args, **kwargs)

  with (
      mock.patch.object(nn.Module, 'param', recording_param),
      mock.patch.object(nn.Module, 'variable', recording_variable),
  ):
    initialize.variable_shapes(module, *args)
  return calls


def _models():
  """(name, module, example inputs): both spaces' supernets (stacked cells) and stand-alones."""
  out = []
  for name in ('bender2018', 'nasbench201'):
    config = helpers.tiny(f'space={name}')
    space = space_lib.from_config(config.space)
    spec = ModelSpec.from_config(config.model, num_classes=10)
    scanned = ModelSpec(
        num_classes=10, filters=2, num_stacks=2, cells_per_stack=3, kernels='native'
    )
    image = np.zeros((4, 8, 8, 1), np.float32)
    all_on = jax.tree.map(lambda x: x[None], space.all_on())
    arch = space.parse(config.retrain.archs[0])
    out += [
        (f'{name}_supernet', Supernet(space, scanned), (image, all_on)),
        (f'{name}_standalone', Standalone(arch, space, spec), (image[:1],)),
    ]
  return out


class InitializeTest(parameterized.TestCase):

  @parameterized.named_parameters(*_models())
  def test_fast_initialiser_matches_the_modules_initialisers(self, module, args):
    recorded = _recorded_initialisers(module, *args)
    variables = initialize.init_variables(module, jax.random.key(0), *args)
    flat = {
        tuple(p.key for p in path): leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]
    }
    self.assertEqual(set(flat), set(recorded))
    kernels = 0
    for path, value in flat.items():
      init_fn, init_args = recorded[path]
      shape = init_args[0]
      if path[0] != 'params':  # Running statistics: initialisers without a key.
        expected = np.broadcast_to(np.asarray(init_fn(*init_args)), value.shape)
        np.testing.assert_array_equal(value, expected, err_msg=str(path))
        continue
      key = jax.random.key(len(path))
      drawn = np.asarray(init_fn(key, *init_args), np.float64)
      if np.all(drawn == drawn.flat[0]):  # A constant (BN scale 1, biases 0).
        np.testing.assert_array_equal(value, np.full(value.shape, drawn.flat[0]), err_msg=str(path))
        continue
      # Otherwise the module draws a unit normal truncated at +-2, times its std: the ratio
      # to that draw (same key) is one number, the std the fast path must use too.
      unit = np.asarray(jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32), np.float64)
      ratio = drawn / unit
      np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5, err_msg=str(path))
      std = initialize.kernel_std(path[1:], value.shape)
      self.assertAlmostEqual(std, ratio.flat[0], delta=1e-5 * std, msg=str(path))
      self.assertLessEqual(np.abs(np.asarray(value)).max(), 2 * std * (1 + 1e-6), str(path))
      self.assertEqual(value.shape[-len(shape) :], tuple(shape), str(path))
      kernels += 1
    self.assertGreater(kernels, 2)


if __name__ == '__main__':
  absltest.main()
