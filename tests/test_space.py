"""Tests of the search space: size, string/JSON forms, masks, uniform sampling."""

import collections
import json
import math

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from osas import space as space_lib
from osas.space import Arch
from osas.space import SearchSpace

EXAMPLE = '0,1:sep3x3+max_pool | 2:identity | 0,3:sep5x5 | 1,4:sep7x7+avg_pool'


class SizeTest(parameterized.TestCase):

  def test_paper_size_is_computed(self):
    self.assertEqual(SearchSpace().size, 6002115840)
    self.assertEqual(SearchSpace().size, (3 * 7 * 15 * 31) * 28**4)

  @parameterized.parameters(
      dict(num_blocks=2, ops=('identity', 'sep3x3', 'max_pool')),
      dict(num_blocks=2, ops=('identity', 'sep3x3', 'max_pool'), max_ops=1),
      dict(num_blocks=3, ops=('identity', 'max_pool'), max_inputs_per_block=2),
      dict(num_blocks=1, num_cell_inputs=3, ops=('a', 'b', 'c', 'd'), min_ops=2, max_ops=3),
  )
  def test_enumeration_matches_formula(self, **params):
    space = SearchSpace(**params)
    archs = list(space.enumerate())
    self.assertLen(archs, space.size)
    self.assertLen(set(archs), space.size)
    self.assertLen({a.to_string() for a in archs}, space.size)
    for arch in archs[:: max(1, len(archs) // 50)]:
      self.assertEqual(space.canonical(arch), arch)

  def test_reduced_size_by_hand(self):
    # 2 blocks, 3 ops: (2^2 - 1)(2^3 - 1) input choices, (3 + 3)^2 op choices.
    self.assertEqual(SearchSpace(num_blocks=2, ops=('a', 'b', 'c')).size, 3 * 7 * 36)


class ArchFormTest(parameterized.TestCase):

  def test_string_round_trip(self):
    arch = Arch.from_string(EXAMPLE)
    self.assertEqual(arch.to_string(), EXAMPLE)
    self.assertEqual(Arch.from_string(arch.to_string()), arch)
    self.assertEqual(arch.blocks[3].inputs, (1, 4))
    self.assertEqual(arch.blocks[3].ops, ('sep7x7', 'avg_pool'))

  def test_parse_canonicalises_order_and_spaces(self):
    messy = '1,0:max_pool+sep3x3|2:identity|3,0 : sep5x5|4,1:avg_pool+sep7x7'
    self.assertEqual(Arch.from_string(messy).to_string(), EXAMPLE)

  def test_json_round_trip(self):
    arch = Arch.from_string(EXAMPLE)
    data = json.loads(json.dumps(arch.to_json()))
    self.assertEqual(Arch.from_json(data), arch)
    self.assertEqual(Arch.from_json(json.dumps(data)), arch)
    self.assertEqual(data['blocks'][0], {'inputs': [0, 1], 'ops': ['sep3x3', 'max_pool']})

  def test_hashable_and_immutable(self):
    a, b = Arch.from_string(EXAMPLE), Arch.from_string(EXAMPLE)
    self.assertEqual(len({a, b}), 1)
    self.assertEqual(a.id, b.id)
    with self.assertRaises(Exception):
      a.blocks = ()

  def test_random_archs_round_trip(self):
    space = SearchSpace()
    masks = space.sample_masks(jax.random.key(3), 200)
    for arch in space.decode_batch(masks):
      self.assertEqual(space.parse(arch.to_string()), arch)
      self.assertEqual(Arch.from_json(arch.to_json()), arch)
      back = space.decode(space.encode(arch))
      self.assertEqual(back, arch)

  @parameterized.parameters(
      (
          '0:identity | 1:identity | 0,5:identity | 1:identity',
          'block 2 reads input 5, only 0..3 exist',
      ),
      (
          '0:identity+sep3x3+max_pool | 1:identity | 1:identity | 1:identity',
          'block 0 has 3 ops, at most 2 allowed',
      ),
      ('0:identity | 1:conv9x9 | 1:identity | 1:identity', "block 1: unknown op 'conv9x9'"),
      ('0:identity | 1:identity | 1:identity', 'cell has 3 blocks'),
      ('0:identity | 1,1:identity | 1:identity | 1:identity', 'block 1 lists input 1 twice'),
      ('0:identity | 1:identity | x:identity | 1:identity', 'block 2: malformed'),
      ('0:identity | 1:identity | 1:identity | 1', 'block 3: malformed'),
      ('', 'empty'),
  )
  def test_invalid_strings_name_rule_and_block(self, text, message):
    with self.assertRaisesRegex(ValueError, message):
      Arch.from_string(text)

  def test_empty_ops_rejected(self):
    space = SearchSpace()
    with self.assertRaisesRegex(ValueError, 'block 0 has 0 ops, at least 1 allowed'):
      space.canonical(Arch((space_lib.Block((0,), ()),) * 4))


class MaskTest(absltest.TestCase):

  def test_encode_layout(self):
    space = SearchSpace()
    masks = space.encode(Arch.from_string(EXAMPLE))
    self.assertEqual(masks.inputs.shape, (4, 5))
    self.assertEqual(masks.ops.shape, (4, 7))
    np.testing.assert_array_equal(masks.inputs[3], [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(masks.ops[0], [0, 1, 0, 0, 0, 1, 0])
    self.assertFalse((masks.inputs & ~space.valid_inputs).any())

  def test_decode_rejects_padding_and_empty(self):
    space = SearchSpace()
    masks = space.encode(Arch.from_string(EXAMPLE))
    bad = masks.inputs.copy()
    bad[0, 4] = True
    with self.assertRaisesRegex(ValueError, 'block 0 reads input 4, only 0..1 exist'):
      space.decode(space_lib.Masks(bad, masks.ops))
    empty = masks.inputs.copy()
    empty[1] = False
    with self.assertRaisesRegex(ValueError, 'block 1 has 0 inputs'):
      space.decode(space_lib.Masks(empty, masks.ops))

  def test_all_on(self):
    space = SearchSpace()
    on = space.all_on()
    self.assertEqual(on.inputs.sum(), 2 + 3 + 4 + 5)
    self.assertTrue(on.ops.all())


class SamplingTest(absltest.TestCase):

  def test_samples_are_valid_and_jittable(self):
    space = SearchSpace()
    masks = jax.jit(space.sample_masks, static_argnums=1)(jax.random.key(0), 500)
    self.assertEqual(masks.inputs.shape, (500, 4, 5))
    self.assertEqual(masks.ops.shape, (500, 4, 7))
    self.assertLen(space.decode_batch(masks), 500)  # decode validates every one.

  def test_uniform_over_cells(self):
    # Small space of 3 * 7 * 3^2 = 189 cells; chi-square-style bound on the counts.
    space = SearchSpace(num_blocks=2, ops=('a', 'b', 'c'), max_ops=1)
    n = 60000
    masks = space.sample_masks(jax.random.key(1), n)
    bits = np.concatenate(
        [np.asarray(masks.inputs).reshape(n, -1), np.asarray(masks.ops).reshape(n, -1)], axis=1
    ).astype(np.int64)
    counts = collections.Counter((bits @ (1 << np.arange(bits.shape[1]))).tolist())
    self.assertLen(counts, space.size)
    expected = n / space.size
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    # Mean of chi2 is 188 (dof); 4 standard deviations above it is ~265.
    self.assertLess(chi2, 188 + 4 * math.sqrt(2 * 188))

  def test_get_space(self):
    self.assertEqual(space_lib.get_space('bender2018'), SearchSpace())
    with self.assertRaisesRegex(ValueError, "config.space.name: unknown space 'nope'"):
      space_lib.get_space('nope')


if __name__ == '__main__':
  absltest.main()
