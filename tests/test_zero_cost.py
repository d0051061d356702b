"""Zero-cost scores: each against its paper's definition by hand, and supernet == stand-alone."""

import itertools

from absl.testing import absltest
from absl.testing import parameterized
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from osas import models
from osas import parallel
from osas.models import ModelSpec
from osas.models import Standalone
from osas.models import Supernet
from osas.models import params_from_supernet
from osas.models.initialize import init_variables
from osas.models.ops import ReLU
from osas.search import zero_cost
from osas.search.evaluator import Evaluator
from osas.space import SearchSpace
from osas.space import get_space

ARCHS = {
    'nasbench201': '|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+'
    '|skip_connect~0|nor_conv_3x3~1|none~2|',
    'bender2018': '0,1:sep3x3+conv1x7_7x1 | 1,2:identity+avg_pool',
}
# The paper's ops in 2 blocks: a quarter of the 4-block cell's trace and compile.
SPACES = {'nasbench201': get_space('nasbench201'), 'bender2018': SearchSpace(num_blocks=2)}


class _Toy(nn.Module):
  """x -> ReLU(x W1) W2 on flat inputs (the ReLU sees them as 1x1 images)."""

  @nn.compact
  def __call__(self, x):
    h = ReLU()(nn.Dense(24, use_bias=False, name='hidden')(x)[:, None, None, :])
    return nn.Dense(3, use_bias=False, name='out')(h[:, 0, 0, :])


def _toy():
  model = _Toy()
  x = jax.random.normal(jax.random.key(0), (5, 16))
  params = model.init(jax.random.key(1), x)['params']
  return model, params, x, jnp.array([0, 1, 2, 0, 1])


class DefinitionsTest(absltest.TestCase):

  def test_grad_norm_and_snip_by_hand(self):
    model, params, x, labels = _toy()
    apply = lambda p, x: model.apply({'params': p}, x)
    loss = lambda p: -jnp.mean(jax.nn.log_softmax(apply(p, x))[jnp.arange(5), labels])
    grads = jax.grad(loss)(params)
    g1, g2 = grads['hidden']['kernel'], grads['out']['kernel']
    ours = zero_cost.loss_grads(apply, params, x, labels)
    self.assertAlmostEqual(
        float(zero_cost.grad_norm(ours)), float(jnp.linalg.norm(g1) + jnp.linalg.norm(g2)), places=5
    )
    expected = (
        jnp.abs(g1 * params['hidden']['kernel']).sum() + jnp.abs(g2 * params['out']['kernel']).sum()
    )
    self.assertAlmostEqual(float(zero_cost.snip(params, ours)), float(expected), places=5)

  def test_synflow_of_a_linear_network_is_its_weight_mass_path_sum(self):
    # With |W1|, |W2| and x = 1, R = 1^T |W1| |W2| 1; sum w dR/dw counts R once per layer.
    model, params, x, _ = _toy()
    apply = lambda p, x: model.apply({'params': p}, x)
    w1, w2 = (np.abs(np.asarray(params[k]['kernel'])) for k in ('hidden', 'out'))
    r = np.ones(16) @ w1 @ w2 @ np.ones(3)
    self.assertAlmostEqual(float(zero_cost.synflow(apply, params, (16,))), np.log(2 * r), places=5)

  def test_jacob_cov_matches_numpy_corrcoef_and_eig(self):
    model, params, x, _ = _toy()
    apply = lambda p, x: jnp.tanh(model.apply({'params': p}, x))
    jac = np.asarray(jax.grad(lambda x: jnp.sum(apply(params, x)))(x)).reshape(5, -1)
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    expected = -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))
    self.assertAlmostEqual(float(zero_cost.jacob_cov(apply, params, x)) / expected, 1.0, places=4)

  def test_naswot_is_logdet_of_units_minus_hamming_distance(self):
    model, params, x, _ = _toy()
    _, state = model.apply({'params': params}, x, mutable=['intermediates'])
    codes = np.asarray(x @ params['hidden']['kernel'] > 0)
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    kernel = codes.shape[1] - hamming
    expected = np.linalg.slogdet(kernel.astype(np.float64))[1]
    self.assertAlmostEqual(
        float(zero_cost.naswot(state['intermediates'], lambda p: 1.0)), expected, places=4
    )
    # A dropped ReLU (weight 0) leaves nothing: the kernel is all zeros, log|K| = -inf.
    self.assertEqual(float(zero_cost.naswot(state['intermediates'], lambda p: 0.0)), -np.inf)

  def test_meco_is_the_smallest_eigenvalue_of_numpys_channel_corrcoef(self):
    x = np.array(jax.random.normal(jax.random.key(3), (2, 4, 4, 4)))
    x[0, ..., 3] = 0.5  # A constant channel: no correlation (NaN in corrcoef, 0 in MeCo's code).
    _, state = ReLU().apply({}, jnp.asarray(x), mutable=['intermediates'])
    with np.errstate(invalid='ignore', divide='ignore'):
      corr = np.nan_to_num(np.corrcoef(x[0].reshape(16, 4).T))  # Only the first example.
    expected = np.linalg.eigvalsh(corr)[0]
    self.assertAlmostEqual(
        float(zero_cost.meco(state['intermediates'], lambda p: 1.0)), expected, 5
    )
    self.assertAlmostEqual(expected, 0.0, places=6)  # The zero row makes 0 an eigenvalue...
    x[0, ..., 3] = np.asarray(jax.random.normal(jax.random.key(4), (4, 4)))
    _, state = ReLU().apply({}, jnp.asarray(x), mutable=['intermediates'])
    expected = np.linalg.eigvalsh(np.corrcoef(x[0].reshape(16, 4).T))[0]
    self.assertGreater(expected, 0.0)  # ...which correlated random channels keep above 0.
    self.assertAlmostEqual(
        float(zero_cost.meco(state['intermediates'], lambda p: 1.0)), expected, 5
    )
    self.assertEqual(float(zero_cost.meco(state['intermediates'], lambda p: 0.0)), 0.0)


class SupernetEqualsStandaloneTest(parameterized.TestCase):
  """Each score of a masked candidate on the supernet equals that of its stand-alone model."""

  @parameterized.parameters('nasbench201', 'bender2018')
  def test_every_score(self, name):
    space = SPACES[name]
    # Two cells under nn.scan: stacked kernels are layers of their own for grad_norm.
    spec = ModelSpec(num_classes=5, filters=2, num_stacks=1, cells_per_stack=2, kernels='native')
    net = Supernet(space, spec)
    images = jax.random.normal(jax.random.key(0), (8, 4, 4, 3))
    labels = jnp.arange(8) % 5
    params = init_variables(
        net, jax.random.key(1), images, jax.tree.map(lambda a: a[None], space.all_on())
    )['params']
    arch = space.parse(ARCHS[name])
    mask = space.encode(arch)
    model = Standalone(arch, space, spec)
    stats = init_variables(model, jax.random.key(0), images[:1])['batch_stats']
    own = params_from_supernet(params, arch)

    def supernet(p, x, mutable=False):
      return net.apply({'params': p}, x, mask, num_ghosts=1, mutable=mutable)

    def standalone(p, x, mutable=('batch_stats',)):
      return model.apply({'params': p, 'batch_stats': stats}, x, train=True, mutable=list(mutable))

    usage = models.of(space).usage_fraction
    one = jax.tree.map(lambda a: a[None], mask)
    got = {}
    for kind, p in (('supernet', params), ('standalone', own)):
      if kind == 'supernet':
        apply = supernet
        kernels = lambda p, x: supernet(p, x, ['intermediates'])[1]['intermediates']
        weight = lambda path: usage(space, path, one)
      else:
        apply = lambda p, x: standalone(p, x)[0]
        kernels = lambda p, x: standalone(p, x, ['batch_stats', 'intermediates'])[1][
            'intermediates'
        ]
        weight = lambda path: 1.0
      got[kind] = jax.jit(
          lambda p: zero_cost.scores(zero_cost.SCORES, apply, kernels, weight, p, images, labels)
      )(p)
    self.assertEqual(set(got['supernet']), set(zero_cost.SCORES))
    for score in zero_cost.SCORES:
      a, b = float(got['supernet'][score]), float(got['standalone'][score])
      self.assertTrue(np.isfinite(a), score)
      self.assertAlmostEqual(a / b, 1.0, places=4, msg=f'{name} {score}: {a} vs {b}')


class EvaluatorTest(absltest.TestCase):
  """The evaluator's zero-cost scores of a chunk equal each candidate's stand-alone scores."""

  def test_chunk_equals_standalone_in_both_modes(self):
    space = get_space('nasbench201')
    spec = ModelSpec(num_classes=4, filters=2, num_stacks=1, cells_per_stack=1, kernels='native')
    images = jax.random.normal(jax.random.key(0), (8, 4, 4, 1))
    labels = jnp.arange(8) % 4
    params = init_variables(
        Supernet(space, spec),
        jax.random.key(1),
        images,
        jax.tree.map(lambda a: a[None], space.all_on()),
    )['params']
    masks = space.sample_masks(jax.random.key(2), 1)  # Padded to the chunk of 4.
    got = {}
    for mode in ('vmap', 'skip'):
      evaluator = Evaluator(
          space,
          spec,
          parallel.make_mesh(),
          mode=mode,
          chunk_size=4,
          ghost_batch_size=8,
          zero_cost_names=zero_cost.SCORES,
      )
      got[mode] = evaluator.score(params, [(images, labels)], masks, None, (params, images, labels))
    for n, arch in enumerate(space.decode_batch(masks)):
      model = Standalone(arch, space, spec)
      stats = init_variables(model, jax.random.key(0), images[:1])['batch_stats']
      run = lambda p, x, mutable: model.apply(
          {'params': p, 'batch_stats': stats}, x, train=True, mutable=mutable
      )
      want = jax.jit(
          lambda p, run=run: zero_cost.scores(
              zero_cost.SCORES,
              lambda p, x: run(p, x, ['batch_stats'])[0],
              lambda p, x: run(p, x, ['batch_stats', 'intermediates'])[1]['intermediates'],
              lambda path: 1.0,
              p,
              images,
              labels,
          )
      )(params_from_supernet(params, arch))
      for mode, score in itertools.product(got, zero_cost.SCORES):
        np.testing.assert_allclose(
            got[mode][score][n], want[score], rtol=1e-4, err_msg=f'{mode} {arch} {score}'
        )


if __name__ == '__main__':
  absltest.main()
