"""Every config file loads, variants override only what they say, arguments parse strictly."""

import contextlib
import importlib
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax

import helpers
from osas import config_lib
from osas import data
from osas import parallel
from osas import samplers
from osas import space as space_lib
from osas import stages
from osas.models import ModelSpec
from osas.report import stage as report_stage

CONFIGS = os.path.join(helpers.ROOT, 'configs')
SPACE_SIZES = {'bender2018': 6002115840, 'nasbench201': 15625}
# tiny's bender2018 cell: 2 blocks of 3 ops, up to 2 each: (3 x 6) x (7 x 6) cells.
TINY_BENDER2018_SIZE = 756
NAMES = sorted(f[:-3] for f in os.listdir(CONFIGS) if f.endswith('.py') and f[0] != '_')
# The README promises these run unchanged on 1, 2, 4 and 8 (simulated) devices.
CPU_CONFIGS = ('digits', 'cifar10_cpu', 'nasbench201_cpu')
DEVICE_COUNTS = (1, 2, 4, 8)


def load(name, arg=None):
  return importlib.import_module(f'configs.{name}').get_config(arg)


class ConfigTest(parameterized.TestCase):

  @parameterized.parameters(*NAMES)
  def test_loads_and_parts_resolve(self, name):
    config = load(name)
    stages.get(config.stages)
    space = space_lib.from_config(config.space)
    small = name == 'tiny' and config.space.name == 'bender2018'
    self.assertEqual(space.size, TINY_BENDER2018_SIZE if small else SPACE_SIZES[config.space.name])
    ModelSpec.from_config(config.model, num_classes=10)
    samplers.get_sampler(config.supernet.sampler, space, config.controller)
    self.assertEqual(config.supernet.batch_size % config.supernet.ghost_batch_size, 0)
    self.assertIsNone(config.workdir)  # osas.main names one after the config.

  def test_default_is_the_papers_recipe(self):
    config = load('default')
    self.assertEqual(config.model.num_stacks * config.model.cells_per_stack, 6)
    self.assertEqual(
        (
            config.model.filters,
            config.supernet.batch_size,
            config.supernet.ghost_batch_size,
            config.supernet.num_steps,
        ),
        (16, 1024, 32, 10_000),
    )
    self.assertEqual(
        (
            config.supernet.learning_rate,
            config.supernet.momentum,
            config.supernet.nesterov,
            config.supernet.path_dropout_rate,
        ),
        (0.1, 0.9, True, 0.1),
    )

  def test_imagenet_is_the_papers_setup(self):
    config = load('imagenet_tpu')
    self.assertEqual(config.model.num_stacks * config.model.cells_per_stack, 8)
    self.assertEqual(
        (config.data.image_size, config.supernet.batch_size, config.supernet.num_steps),
        (224, 4096, 15_000),
    )

  def test_variant_changes_only_what_it_says(self):
    base, variant = load('default').to_dict(), load('cifar10', 'filters=64').to_dict()
    self.assertEqual(variant['model']['filters'], 64)
    self.assertEqual(variant['retrain']['filters'], 64)
    variant['model']['filters'] = variant['retrain']['filters'] = 16
    self.assertEqual(variant, base)

  def test_report_defaults_live_in_default_config(self):
    report_stage.check(load('default'), None)
    config = load('default')
    del config['report']
    with self.assertRaisesRegex(ValueError, r'config.report is missing.*configs/default\.py'):
      report_stage.check(config, None)

  @parameterized.parameters('filters', 'filters=x', 'width=3', 'filters=64,width=3')
  def test_bad_argument(self, arg):
    with self.assertRaisesRegex(ValueError, 'config argument'):
      load('cifar10', arg)

  def test_argument_is_typed_like_its_default(self):
    args = config_lib.parse_arg(' filters = 64 ,, name=x ', filters=16, name='a', rate=0.5)
    self.assertEqual(args, {'filters': 64, 'name': 'x', 'rate': 0.5})
    self.assertIsInstance(config_lib.parse_arg('rate=1', rate=0.5)['rate'], float)

  @parameterized.parameters(
      ('true', True),
      ('True', True),
      ('1', True),
      ('yes', True),
      ('YES', True),
      ('false', False),
      ('FALSE', False),
      ('0', False),
      ('no', False),
  )
  def test_bool_argument(self, text, value):
    self.assertIs(config_lib.parse_arg(f'all={text}', all=not value)['all'], value)
    config = load('nasbench201_cpu', f'all={text}')
    self.assertEqual(config.search.strategy, 'all' if value else 'random')

  @parameterized.parameters('ture', 'flase', '', '2', 'on', 'y')
  def test_mistyped_bool_is_refused_naming_it(self, text):
    with self.assertRaisesRegex(
        ValueError, rf"^config argument all='{text}': not a bool \(true/false\)$"
    ):
      config_lib.parse_arg(f'all={text}', all=False)
    with self.assertRaisesRegex(ValueError, rf"all='{text}': not a bool"):
      load('nasbench201_cpu', f'all={text}')


class CompareConfigTest(parameterized.TestCase):

  @parameterized.parameters(
      *[
          (sampler, strategy, bn)
          for sampler in ('path_dropout', 'uniform_class')
          for strategy in ('random', 'evolution')
          for bn in ('ghost', 'recalibrate')
      ],
      ('controller', 'controller', 'ghost'),
  )
  def test_every_combination_passes_every_stages_check(self, sampler, strategy, bn):
    config = load('compare_cpu', f'sampler={sampler},strategy={strategy},bn={bn}')
    self.assertEqual(
        (config.supernet.sampler, config.search.strategy, config.search.bn), (sampler, strategy, bn)
    )
    evolution = config.search.evolution
    self.assertEqual(evolution.population * evolution.iterations, config.search.num_candidates)
    self.assertGreater(config.search.max_flops, 0)
    # The report's check reads the table's header: a stand-in, so ../shared is not needed.
    table = self.create_tempfile('nb201.csv', content='arch,test_acc_200ep\n').full_path
    config.report.ground_truth = table
    _check_every_stage(config, 1)

  @parameterized.parameters(
      'sampler=single_path', 'strategy=all', 'candidates=30', 'strategy=controller'
  )
  def test_bad_combination_is_refused_naming_it(self, arg):
    with self.assertRaisesRegex(ValueError, f'^config argument {arg.split("=")[0]}='):
      load('compare_cpu', arg)


def _check_every_stage(config, num_devices):
  """Runs every stage's check on a mesh of `num_devices`; CIFAR-10 itself is not needed."""
  mesh = parallel.make_mesh(num_devices)
  # CIFAR-10 is not downloaded for the tests, nor is ../shared's subset (npz) required:
  # their stages open no data here.
  absent = config.data.source == 'tfds' or (
      config.data.source == 'npz' and not os.path.isdir(config.data.npz_dir)
  )
  with mock.patch.object(data, 'get_split') if absent else contextlib.nullcontext():
    for _, stage in stages.get(config.stages):
      stage.check(config, mesh)


@absltest.skipIf(jax.device_count() < max(DEVICE_COUNTS), 'runs in a subprocess with 8 devices')
class DeviceCountTest(parameterized.TestCase):

  @parameterized.named_parameters(
      (f'{name}_{n}', name, n) for name in CPU_CONFIGS for n in DEVICE_COUNTS
  )
  def test_every_stage_accepts_the_device_count(self, name, num_devices):
    config = load(name)
    _check_every_stage(config, num_devices)
    # Every batch split over devices, and ghost batches within a device's share.
    ghost = config.supernet.ghost_batch_size
    for batch in (
        config.supernet.batch_size,
        config.supernet.eval_batch_size,
        config.search.batch_size,
    ):
      self.assertEqual(batch % (num_devices * ghost), 0, batch)
    for batch in (config.retrain.batch_size, config.retrain.eval_batch_size):
      self.assertEqual(batch % num_devices, 0, batch)

  def test_the_check_refuses_a_ghost_batch_that_does_not_fit(self):
    config = load('digits')
    config.supernet.ghost_batch_size = config.supernet.batch_size // 4
    _check_every_stage(config, 4)
    with self.assertRaisesRegex(ValueError, 'ghost_batch_size'):
      _check_every_stage(config, 8)


class RunWithEightDevicesTest(absltest.TestCase):

  @absltest.skipIf(jax.device_count() >= max(DEVICE_COUNTS), 'DeviceCountTest runs here')
  def test_in_a_subprocess(self):
    result = helpers.pytest_with_devices(__file__, 'DeviceCountTest')
    self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
    count = len(CPU_CONFIGS) * len(DEVICE_COUNTS) + 1
    self.assertIn(f'{count} passed', result.stdout)
    self.assertNotIn('skipped', result.stdout)


if __name__ == '__main__':
  absltest.main()
