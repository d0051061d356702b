"""Every config file loads, variants override only what they say, arguments parse."""

import os

from absl.testing import absltest
from absl.testing import parameterized

from osas import config_lib
from osas import samplers
from osas import space as space_lib
from osas import stages
from osas.models import ModelSpec

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
SPACE_SIZES = {'bender2018': 6002115840, 'nasbench201': 15625}
NAMES = sorted(f[:-3] for f in os.listdir(CONFIGS) if f.endswith('.py'))


def load(name, arg=None):
  return config_lib.sibling(os.path.join(CONFIGS, 'x.py'), name).get_config(arg)


class ConfigTest(parameterized.TestCase):

  @parameterized.parameters(*NAMES)
  def test_loads_and_parts_resolve(self, name):
    config = load(name)
    stages.get(config.stages)
    space = space_lib.from_config(config.space)
    self.assertEqual(space.size, SPACE_SIZES[config.space.name])
    ModelSpec.from_config(config.model, num_classes=10)
    samplers.get_sampler(config.supernet.sampler)
    self.assertEqual(config.supernet.batch_size % config.supernet.ghost_batch_size, 0)

  def test_default_is_the_papers_recipe(self):
    config = load('default')
    self.assertEqual(config.model.num_stacks * config.model.cells_per_stack, 6)
    self.assertEqual((config.model.filters, config.supernet.batch_size,
                      config.supernet.ghost_batch_size, config.supernet.num_steps),
                     (16, 1024, 32, 10_000))
    self.assertEqual((config.supernet.learning_rate, config.supernet.momentum,
                      config.supernet.nesterov, config.supernet.path_dropout_rate),
                     (0.1, 0.9, True, 0.1))

  def test_imagenet_is_the_papers_setup(self):
    config = load('imagenet_tpu')
    self.assertEqual(config.model.num_stacks * config.model.cells_per_stack, 8)
    self.assertEqual((config.data.image_size, config.supernet.batch_size,
                      config.supernet.num_steps), (224, 4096, 15_000))

  def test_variant_changes_only_what_it_says(self):
    base, variant = load('default').to_dict(), load('cifar10', 'filters=64').to_dict()
    self.assertEqual(variant['model']['filters'], 64)
    self.assertEqual(variant['retrain']['filters'], 64)
    variant['model']['filters'] = variant['retrain']['filters'] = 16
    self.assertEqual(variant, base)

  @parameterized.parameters('filters', 'filters=x', 'width=3')
  def test_bad_argument(self, arg):
    with self.assertRaisesRegex(ValueError, 'config argument'):
      load('cifar10', arg)


if __name__ == '__main__':
  absltest.main()
