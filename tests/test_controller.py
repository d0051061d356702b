"""ENAS's controller: decisions, the LSTM policy, REINFORCE, and the pipeline with both."""

import itertools
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import helpers
from osas import data
from osas import main
from osas import parallel
from osas import preemption
from osas import space as space_lib
from osas import stages
from osas import workdir as workdir_lib
from osas.controller import policy as policy_lib
from osas.controller import reinforce
from osas.search import controller_draw
from osas.search import results
from osas.space.decisions import Decisions

SPACES = ('bender2018', 'nasbench201')


def _section(**overrides):
  section = ml_collections.ConfigDict(
      dict(
          hidden_size=8,
          num_layers=1,
          temperature=5.0,
          tanh_constant=1.1,
          op_tanh_reduce=2.5,
          learning_rate=0.0035,
          entropy_weight=1e-4,
          baseline_decay=0.99,
      )
  )
  section.update(overrides)
  return section


def _policy(space, **overrides):
  policy = policy_lib.from_config(space, _section(**overrides))
  params = reinforce.init_state(policy, _section(), jax.random.key(0)).params
  return policy, params


class DecisionsTest(parameterized.TestCase):

  @parameterized.parameters(*SPACES)
  def test_choices_are_the_cells_one_to_one(self, name):
    space = space_lib.get_space(name)
    decisions = Decisions(space)
    self.assertEqual(int(np.prod(decisions.num_options, dtype=np.int64)), space.size)
    archs = space.decode_batch(space.sample_masks(jax.random.key(1), 50))
    choices = decisions.of_archs(archs)
    self.assertEqual(decisions.archs(choices), archs)
    masks = jax.tree.map(np.asarray, decisions.to_masks(choices))
    expected = space.encode_batch(archs)
    for a, b in zip(jax.tree.leaves(masks), jax.tree.leaves(expected)):
      np.testing.assert_array_equal(a, b)


class PolicyTest(parameterized.TestCase):

  @parameterized.parameters(*SPACES)
  def test_every_sample_is_a_cell_and_its_log_prob_is_recomputed(self, name):
    space = space_lib.get_space(name)
    policy, params = _policy(space, num_layers=2)
    sample = jax.jit(lambda p, k: policy.apply({'params': p}, k, 64, method='sample'))
    choices, log_prob, entropy = sample(params, jax.random.key(2))
    self.assertLen(Decisions(space).archs(choices), 64)  # decode raises on a non-cell.
    self.assertTrue(np.all(np.asarray(choices) >= 0))
    self.assertTrue(np.all(np.asarray(choices) < np.array(Decisions(space).num_options)))
    again, entropy_again = jax.jit(lambda p, c: policy.apply({'params': p}, c))(params, choices)
    np.testing.assert_allclose(log_prob, again, rtol=1e-5)
    np.testing.assert_allclose(entropy, entropy_again, rtol=1e-5)

    # By hand from the logits: LSTM layers, head, / temperature, c * tanh, log-softmax,
    # with c = 1.1 for inputs and 1.1 / 2.5 for ops.
    is_op = [item.is_op for item in Decisions(space).items]

    @jax.jit
    def by_hand(params, choices):
      bound = policy.bind({'params': params})
      n = choices.shape[0]
      carry = [(jnp.zeros((n, 8)), jnp.zeros((n, 8))) for _ in range(2)]
      x, total = jnp.broadcast_to(params['start'], (n, 8)), jnp.zeros(n)
      for d in range(len(policy.num_options)):
        for layer in range(2):
          carry[layer], x = bound.cells[layer](carry[layer], x)
        logits = (1.1 / 2.5 if is_op[d] else 1.1) * jnp.tanh(bound.heads[d](x) / 5.0)
        total += jax.nn.log_softmax(logits)[jnp.arange(n), choices[:, d]]
        if d + 1 < len(policy.num_options):
          x = params[f'embeds_{d}']['embedding'][choices[:, d]]
      return total

    np.testing.assert_allclose(log_prob, by_hand(params, choices), rtol=1e-5)

  def test_probabilities_sum_to_one_and_beam_search_ranks_them(self):
    policy = policy_lib.Policy((3, 4, 2), hidden_size=8, tanh_constant=0.0, temperature=0.3)
    params = policy.init(jax.random.key(3), jnp.zeros((1, 3), jnp.int32))['params']
    every = jnp.array(list(itertools.product(range(3), range(4), range(2))))
    log_prob, _ = policy.apply({'params': params}, every)
    self.assertAlmostEqual(float(jnp.exp(log_prob).sum()), 1.0, places=5)
    # Width 24 >= every prefix count: beam search is exact, most probable first, and the
    # rows past the 24 cells are -inf.
    beams, beam_log_prob = policy.apply({'params': params}, 30, method='beam')
    order = np.argsort(-np.asarray(log_prob), kind='stable')
    np.testing.assert_allclose(beam_log_prob[:24], np.asarray(log_prob)[order], rtol=1e-5)
    self.assertEqual(
        sorted(map(tuple, np.asarray(beams[:24]).tolist())), sorted(map(tuple, every.tolist()))
    )
    self.assertTrue(np.all(np.isneginf(beam_log_prob[24:])))


class DrawTest(absltest.TestCase):

  def test_sampled_cells_are_distinct_and_within_the_limit(self):
    space = space_lib.get_space('nasbench201')
    policy, params = _policy(space)
    admits = lambda arch: 'none' not in arch.ops  # 4 ** 6 = 4,096 of the 15,625 cells.
    cells = controller_draw.sampled(policy, params, space, 100, 0, admits)
    self.assertLen(cells, 100)
    self.assertLen(set(cells), 100)
    self.assertTrue(all(map(admits, cells)))
    self.assertEqual(cells, controller_draw.sampled(policy, params, space, 100, 0, admits))
    best = controller_draw.most_probable(policy, params, space, 10, admits)
    log_prob, _ = policy.apply({'params': params}, Decisions(space).of_archs(best))
    self.assertTrue(all(map(admits, best)))
    self.assertTrue(np.all(np.diff(np.asarray(log_prob)) <= 1e-6))  # Most probable first.


class ReinforceTest(absltest.TestCase):

  def test_a_rewarded_choice_becomes_more_probable(self):
    policy = policy_lib.Policy((3, 3), hidden_size=8)
    section = _section(learning_rate=0.05, baseline_decay=0.9, entropy_weight=0.0)
    state = reinforce.init_state(policy, section, jax.random.key(4))
    prob_of_0 = lambda s: float(
        jnp.exp(policy.apply({'params': s.params}, jnp.array([[0, 0], [0, 1], [0, 2]]))[0]).sum()
    )
    before = prob_of_0(state)
    update = jax.jit(lambda s, c, r: reinforce.update(s, c, r, policy=policy, section=section))
    sample = jax.jit(lambda p, k: reinforce.sample(p, k, policy=policy, n=16))
    for t in range(60):
      choices = sample(state.params, jax.random.key(t))
      rewards = (choices[:, 0] == 0).astype(jnp.float32)
      if t == 0:
        first_mean = float(rewards.mean())
      state, metrics = update(state, choices, rewards)
      if t == 0:  # Starts at the first reward, then moves 10% towards each next one.
        expected = float(rewards[0])
        for r in np.asarray(rewards)[1:]:
          expected = 0.9 * expected + 0.1 * r
        self.assertAlmostEqual(float(metrics['baseline']), expected, places=5)
        self.assertAlmostEqual(float(metrics['accuracy']), first_mean, places=6)
    self.assertAlmostEqual(before, 1 / 3, delta=0.05)
    self.assertGreater(prob_of_0(state), 0.8)
    self.assertEqual(int(state.step), 60)


class PipelineTest(absltest.TestCase):

  def test_enas_with_smash_weights_trains_searches_reports_and_resumes_to_the_same_state(self):
    # ENAS's controller trains beside SMASH's generated weights: one tiny pipeline runs
    # both plug-ins end to end (their plain forms share every stage's code with it).
    from test_preemption import _params  # pylint: disable=g-import-not-at-top
    from test_preemption import _stop_at_poll  # pylint: disable=g-import-not-at-top

    arg = 'space=nasbench201,enas=true,smash=true'
    config = lambda **overrides: helpers.tiny(arg, **overrides)
    reference = self.create_tempdir().full_path
    # Retraining does not see the controller or the hypernetwork: test_pipeline (bender2018)
    # and test_nasbench201 cover it.
    main.run(config(stages=('train_supernet', 'search', 'report')), reference)
    done = workdir_lib.read_json(reference, 'supernet', 'done.json')
    # 4 steps, a phase after steps 2 and 4, 2 controller steps each.
    self.assertGreater(done['controller/entropy'], 0)
    restored = _controller(reference, 4)
    self.assertEqual(int(restored['step']), 4)
    self.assertIn('hypernet', _params(reference, 4))

    # The search scored the controller's 6 most probable cells, most probable first.
    space = space_lib.get_space('nasbench201')
    policy = policy_lib.from_config(space, config().controller)
    params = jax.tree.map(jnp.asarray, restored['params'])
    expected = [a.to_string() for a in controller_draw.most_probable(policy, params, space, 6)]
    records = results.read(os.path.join(reference, 'search', 'candidates.jsonl'))
    self.assertEqual([r['arch'] for r in records], expected)
    # The report follows as for any strategy.
    summary = workdir_lib.read_json(reference, 'report', 'summary.json')
    self.assertEqual(summary['counts']['candidates_scored'], 6)

    # Stopped after step 3, resumed: the controller and the weights (shared and
    # hypernetwork) end where the uninterrupted run's did.
    workdir = self.create_tempdir().full_path
    with _stop_at_poll(3), self.assertRaises(preemption.Preempted):
      main.run(config(stages=('train_supernet',)), workdir)
    self.assertEqual(int(_controller(workdir, 3)['step']), 2)
    main.run(config(stages=('train_supernet',)), workdir)
    for a, b in zip(jax.tree.leaves(_controller(workdir, 4)), jax.tree.leaves(restored)):
      np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(_params(workdir, 4)), jax.tree.leaves(_params(reference, 4))):
      np.testing.assert_array_equal(a, b)


class CheckTest(parameterized.TestCase):

  @parameterized.parameters(
      ('controller.num_samples', 0, r'config\.controller\.num_samples=0 must be a positive'),
      ('controller.temperature', 0.0, r'config\.controller\.temperature=0\.0 must be positive'),
      ('controller.batch_size', 12, r'config\.controller\.batch_size'),
      ('search.controller_draw', 'best', r"config\.search\.controller_draw='best'"),
      ('supernet.sampler', 'uniform_cell', r'needs a controller trained with the supernet'),
  )
  def test_bad_field_is_named(self, field, value, message):
    config = helpers.tiny('enas=true', **{field: value})
    mesh = parallel.make_mesh(1)
    with mock.patch.object(data, 'get_split'), self.assertRaisesRegex(ValueError, message):
      for _, stage in stages.get(config.stages):
        stage.check(config, mesh)


def _controller(workdir, step):
  """The controller's state in a supernet checkpoint (but its key), as numpy arrays."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  path = os.path.join(workdir, 'supernet', 'checkpoints', str(step), 'default')
  state = dict(ocp.StandardCheckpointer().restore(path)['controller'])
  del state['key']
  return jax.tree.map(np.asarray, state)


if __name__ == '__main__':
  absltest.main()
