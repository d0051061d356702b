"""Programs compiled on background threads are the ones the later calls run: no second compile."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

import helpers
from osas import compile_ahead
from osas import parallel
from osas import space as space_lib
from osas import workdir as workdir_lib
from osas.train import standalone as standalone_train
from osas.train import supernet as supernet_train


class CompileAheadTest(absltest.TestCase):

  def test_a_program_compiled_on_a_thread_serves_the_later_call(self):
    mesh = parallel.make_mesh(1)
    repl = parallel.replicated(mesh)
    scale = parallel.put(jnp.asarray(2.0), repl)  # Weakly typed: a spec must say so.
    fn = jax.jit(lambda x, s: s * jnp.sin(x) @ x.T, in_shardings=(repl, repl), out_shardings=repl)
    x = parallel.put(np.arange(12.0).reshape(3, 4), repl)
    # Other tests' background compiles may still finish in these windows: count by name.
    with helpers.count_compiles() as compiles:
      compiled = compile_ahead.compile_later(fn, x, scale).result()
    self.assertEqual(compiles.count('<lambda>'), 1)
    with helpers.count_compiles() as compiles:
      out = fn(x, scale)
    self.assertNotIn('<lambda>', compiles)
    np.testing.assert_allclose(out, compiled(x, scale))
    np.testing.assert_allclose(out, 2 * np.sin(np.asarray(x)) @ np.asarray(x).T, rtol=1e-6)

  def test_all_of_keeps_the_order_and_raises_an_error_where_asked(self):
    self.assertEqual(compile_ahead.all_of([lambda: 1, lambda: 2, lambda: 3]), [1, 2, 3])
    self.assertEqual(compile_ahead.all_of([]), [])

    def broken():
      raise ValueError('config.search.chunk_size: too big')

    with self.assertRaisesRegex(ValueError, 'chunk_size: too big'):
      compile_ahead.all_of([lambda: 1, broken])

  def test_retrain_build_compiles_what_the_loop_runs(self):
    config = helpers.tiny(**{'retrain.eval_splits': ('valid', 'test')})
    mesh = parallel.make_mesh(1)
    arch = space_lib.from_config(config.space).parse(config.retrain.archs[0])
    splits = standalone_train._splits(config)
    with helpers.count_compiles() as compiles:
      program = compile_ahead.start(
          lambda: standalone_train.build(arch, config, mesh, splits)
      ).result()
    # Two evaluation splits of one batch shape: one program.
    self.assertEqual([compiles.count('train_step'), compiles.count('eval_counts')], [1, 1])
    with helpers.count_compiles() as compiles:
      state, _ = program.step(program.state, parallel.global_batch(splits.train.batch(0), mesh))
      for split in splits.evals.values():
        accuracy = standalone_train.accuracy(state, split, program.counts, mesh)
        self.assertBetween(accuracy, 0.0, 1.0)
    # Only the eager sums of the counts compile (tiny); the two programs do not again.
    self.assertNoCommonElements(compiles, ['train_step', 'eval_counts'])
    self.assertEqual(int(state.step), 1)

  def test_retrain_compiles_each_pending_arch_once(self):
    archs = ('0,1:sep3x3+max_pool | 0,2:identity+sep3x3', '0:max_pool | 1:identity')
    workdir = self.create_tempdir().full_path
    mesh = parallel.make_mesh(1)
    config = helpers.tiny(stages=('retrain',), **{'retrain.archs': archs[:1]})
    with helpers.count_compiles() as compiles:
      standalone_train.run(config, workdir, mesh)
    self.assertEqual(compiles.count('train_step'), 1)
    config = helpers.tiny(stages=('retrain',), **{'retrain.archs': archs})
    with helpers.count_compiles() as compiles:  # The first arch finished: only the second.
      standalone_train.run(config, workdir, mesh)
    self.assertEqual(compiles.count('train_step'), 1)
    space = space_lib.from_config(config.space)
    for text in archs:
      result = workdir_lib.read_json(workdir, 'retrain', space.parse(text).id, 'result.json')
      self.assertEqual(result['steps'], config.retrain.num_steps)

  def test_supernet_probes_compiled_ahead_are_the_program_evaluation_runs(self):
    config = helpers.tiny(**{'supernet.num_probes': 2})
    mesh = parallel.make_mesh(1)
    parts = supernet_train.build(config, mesh)
    state = supernet_train.init_state(parts, config, mesh)
    with helpers.count_compiles() as compiles:
      supernet_train.compile_probes_ahead(state, parts, config, mesh).result()
    self.assertIn('probe_correct', compiles)
    with helpers.count_compiles() as compiles:
      scalars = supernet_train.evaluate_probes(state, parts, config, mesh)
    self.assertNotIn('probe_correct', compiles)
    self.assertLen([k for k in scalars if k.startswith('probe_random_')], 3)


if __name__ == '__main__':
  absltest.main()
