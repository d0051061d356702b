"""Stage `search`: score candidates with the trained one-shot model, then select some to retrain."""

from __future__ import annotations

import functools
import itertools
import time
from typing import Any, Callable

from absl import logging
import jax
import numpy as np

from osas import checkpoints
from osas import data
from osas import metric_logs
from osas import parallel
from osas import preemption
from osas import space as space_lib
from osas import workdir as workdir_lib
from osas.controller import policy as policy_lib
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models import hypernet
from osas.models.cost import cost
from osas.models.initialize import init_variables
from osas.search import controller_draw
from osas.search import limits as limits_lib
from osas.search import memory
from osas.search import ranking
from osas.search import recalibration
from osas.search import results
from osas.search import selection
from osas.search import strategies
from osas.search import zero_cost
from osas.search.evaluator import NO_BATCH
from osas.search.evaluator import Evaluator
from osas.search.evaluator import resolve_mode


def check(config, mesh) -> None:
  """Raises ValueError naming the field when the stage's config cannot work."""
  section = config.search
  if section.checkpoint_step < 0:
    raise ValueError(
        f'config.search.checkpoint_step={section.checkpoint_step} must be >= 0 (0: the newest)'
    )
  if section.num_candidates <= 0:
    raise ValueError(f'config.search.num_candidates={section.num_candidates} must be positive')
  if section.chunk_size < 0 or section.chunk_size % mesh.devices.size:
    raise ValueError(
        f'config.search.chunk_size={section.chunk_size} must be 0 (what fits) '
        f'or a positive multiple of the {mesh.devices.size} devices'
    )
  parallel.check_batch(
      section.batch_size, config.supernet.ghost_batch_size, mesh, 'config.search.batch_size'
  )
  if section.kl_examples and section.kl_examples % config.supernet.ghost_batch_size:
    raise ValueError(
        f'config.search.kl_examples={section.kl_examples} must be a multiple of '
        f'config.supernet.ghost_batch_size={config.supernet.ghost_batch_size}'
    )
  resolve_mode(section.evaluator)
  recalibration.check(section)
  unknown = sorted(set(section.zero_cost) - set(zero_cost.SCORES))
  if unknown:
    raise ValueError(
        f'config.search.zero_cost: unknown {unknown}; known: ' f"{', '.join(zero_cost.SCORES)}"
    )
  ranked = [('config.search.rank_by', section.rank_by)]
  ranked += [('config.select.top_by', r) for r in config.select.get('top_by', ())]
  for field, rank_by in ranked:
    for name in ranking.parse(rank_by, field):
      if name in zero_cost.SCORES and name not in section.zero_cost:
        raise ValueError(
            f'{field}={rank_by!r} needs {name!r} in '
            f'config.search.zero_cost={tuple(section.zero_cost)}'
        )
      if name == 'kl' and not section.kl_examples:
        raise ValueError(f'{field}={rank_by!r} needs the KL score: config.search.kl_examples > 0')
  if section.zero_cost and section.zero_cost_batch_size % mesh.devices.size:
    raise ValueError(
        f'config.search.zero_cost_batch_size={section.zero_cost_batch_size} must '
        f'be a multiple of the {mesh.devices.size} devices'
    )
  strategies.check(section, space_lib.from_config(config.space))
  if section.strategy == 'controller':
    controller_draw.check(config)
  for field in ('top_n', 'top_sample', 'small_n', 'random_n', 'buckets', 'per_bucket'):
    if config.select[field] < 0:
      raise ValueError(f'config.select.{field}={config.select[field]} must be >= 0')
  if not 0 <= config.select.small_percentile <= 100:
    raise ValueError('config.select.small_percentile must be in [0, 100]')


def _supernet_params(config, workdir: str, mesh):
  """The trained one-shot weights: the newest supernet checkpoint that restores.

  With its classes, image shape and ENAS's controller (policy, params) where trained.
  """
  from osas.train import supernet  # pylint: disable=g-import-not-at-top

  if not supernet.check_done(config, workdir):
    raise ValueError(
        f'search: the one-shot model in {workdir} has not finished training '
        '(no supernet/done.json); run the train_supernet stage first'
    )
  parts = supernet.build(config, mesh)
  target = supernet.init_state(parts, config, mesh)
  checkpointer = checkpoints.Checkpointer(workdir_lib.path(workdir, 'supernet', 'checkpoints'))
  at_most = config.search.checkpoint_step or None
  try:
    restored = checkpointer.restore_latest(target, at_most)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'search: no supernet checkpoint in {workdir} could be read ({e})') from None
  finally:
    checkpointer.close()
  if restored is None:
    raise ValueError(
        f'search: {workdir}/supernet/checkpoints holds no checkpoint'
        + (f' at or before config.search.checkpoint_step={at_most}' if at_most else '')
    )
  logging.info('search: the one-shot weights of step %d', restored[1])
  state = restored[0]
  controller = None
  if getattr(state, 'controller', None) is not None:
    controller = policy_lib.from_config(parts['space'], config.controller), state.controller.params
  return supernet.weights(state), parts['train'].num_classes, parts['train'].image_shape, controller


def run(config, workdir: str, mesh) -> None:
  started, section = time.time(), config.search
  params, num_classes, image_shape, controller = _supernet_params(config, workdir, mesh)
  space = space_lib.from_config(config.space)
  spec = ModelSpec.from_config(config.model, num_classes)
  retrain_spec = ModelSpec.from_config(
      {**dict(config.model), 'filters': config.retrain.filters}, num_classes
  )
  path = workdir_lib.path(workdir, 'search', 'candidates.jsonl')
  known = {r['arch']: r for r in results.read(path, repair=True)}
  recalibration.check_records(list(known.values()), section, path)
  # Limits, evolution and the records all ask for a cell's cost; count each cell once.
  cost_of = functools.lru_cache(maxsize=None)(
      lambda arch: cost(space, retrain_spec, arch, image_shape)
  )
  limits = limits_lib.Limits.from_config(section, cost_of)
  strategy = strategies.build(space, config.seed + 3, section, limits, controller)
  scorer = _Scorer(config, space, spec, params, path, mesh, cost_of)
  save = functools.partial(workdir_lib.write_json, workdir, 'search', f'{section.strategy}.json')
  run_rounds(strategy, known, scorer.score, lambda state: save(obj=state))
  # Records of an earlier search in this workdir may lie outside the limits.
  records = [r for r in results.read(path) if limits.admits_record(r)]
  all_on = space.all_on_arch()  # None where the space has no All-On arch.
  groups = selection.select(
      records,
      config.select,
      config.seed + 4,
      None if all_on is None else all_on.to_string(),
      section.rank_by,
  )
  workdir_lib.write_json(
      workdir,
      'search',
      'selection.json',
      obj={
          'groups': groups,
          'num_scored': len(records),
          'rank_by': section.rank_by,
          # Only when set: a search without limits writes what it always wrote.
          **({'limits': limits.to_json()} if limits.active else {}),
          **recalibration.record_fields(section),
      },
  )
  logging.info('search: selected %s', {k: len(v) for k, v in groups.items()})
  if scorer.inputs is not None:  # Scored something: a finished search re-run changes nothing.
    _add_time(workdir, time.time() - started, len(records))


def _add_time(workdir: str, seconds: float, num_scored: int) -> None:
  """Adds a run's wall time to DIR/search/timing.json (benchmarks/compare_search.py).

  Written at the end of a run that scored: a killed run's time is not counted.
  """
  spent = (workdir_lib.read_json(workdir, 'search', 'timing.json') or {}).get('wall_s', 0.0)
  timing = {'wall_s': spent + seconds, 'num_scored': num_scored}
  workdir_lib.write_json(workdir, 'search', 'timing.json', obj=timing)


def run_rounds(
    strategy: strategies.Strategy,
    known: dict[str, dict[str, Any]],
    score: Callable[[list[Any]], list[dict[str, Any]]],
    save: Callable[[dict[str, Any]], None],
) -> None:
  """Runs `strategy` round by round until it proposes nothing.

  `known` maps arch strings to the records scored so far (those of candidates.jsonl when
  resuming); `score` scores and saves the rest and returns their records. The strategy
  sees every round's records, and `save` its state after each round. A resumed search
  replays the finished rounds from `known` without scoring, so it ends where an
  uninterrupted one does.
  """
  for round_ in itertools.count():
    candidates = strategy.propose()
    if not candidates:
      return
    if round_:  # Between rounds; poll 0: each process asks the others (rounds are long).
      preemption.stop_if_requested(f'search: {round_} rounds scored and saved')
    todo = [a for a in candidates if a.to_string() not in known]
    logging.info(
        'search: round %d: %d candidates, %d scored before, %d to score',
        round_,
        len(candidates),
        len(candidates) - len(todo),
        len(todo),
    )
    if todo:
      known.update((r['arch'], r) for r in score(todo))
    strategy.observe([known[a.to_string()] for a in candidates])
    if (state := strategy.state()) is not None:
      save(state)


def _evaluator(config, space, spec, mesh, chunk_size: int) -> Evaluator:
  return Evaluator(
      space,
      spec,
      mesh,
      mode=config.search.evaluator,
      chunk_size=chunk_size,
      ghost_batch_size=config.supernet.ghost_batch_size,
      zero_cost_names=config.search.zero_cost,
      hypernet=hypernet.from_config(config),
  )


def _kl_inputs(config, space, spec, mesh, params):
  """(images, reference logits) of the label-free KL score; None when it is off."""
  section = config.search
  if not section.kl_examples:
    return None
  batch, _ = data.first_batch(config.data, 'train', size=section.kl_examples, seed=config.seed)
  images = parallel.global_batch(batch['image'], mesh)
  reference = _evaluator(config, space, spec, mesh, mesh.devices.size).reference(params, images)
  return images, reference


def _zero_cost_inputs(config, space, spec, mesh):
  """(params, images, labels) for the zero-cost scores; None when there are none.

  A freshly initialised supernet (its own seed) and one batch of training images.
  """
  section = config.search
  if not section.zero_cost:
    return None
  batch, image_shape = data.first_batch(
      config.data, 'train', size=section.zero_cost_batch_size, seed=config.seed
  )
  batch = parallel.global_batch(batch, mesh)
  image = np.zeros((1,) + image_shape, np.float32)
  variables = init_variables(
      Supernet(space, spec),
      jax.random.key(config.seed + 5),
      image,
      jax.tree.map(lambda x: x[None], space.all_on()),
  )
  params = parallel.put(variables['params'], parallel.replicated(mesh))
  return params, batch['image'], batch['label']


def _fitting_evaluator(
    config, space, spec, mesh, params, batch, inputs: tuple[Any, Any, Any], candidates: int
) -> Evaluator:
  """The evaluator for config.search.chunk_size (0: the largest that fits), memory checked.

  `inputs`: the KL, zero-cost and recalibration inputs (each None when off).
  """
  limit = memory.agreed(0, memory.device_limit_bytes())[1]
  needed_at = lambda m: memory.agreed(
      _evaluator(config, space, spec, mesh, m).memory_bytes(params, batch, *inputs), limit
  )[0]
  chunk_size = config.search.chunk_size
  if not chunk_size:
    chunk_size = memory.fitting_chunk_size(needed_at, limit, mesh.devices.size, candidates)
    logging.info('search: chunk size %d (config.search.chunk_size=0: what fits)', chunk_size)
  evaluator = _evaluator(config, space, spec, mesh, chunk_size)
  needed = memory.agreed(evaluator.memory_bytes(params, batch, *inputs), limit)[0]
  memory.check(needed, limit, chunk_size=chunk_size, batch_size=config.search.batch_size)
  return evaluator


def _classes(todo: list[Any], space, per_class: bool) -> list[list[Any]]:
  """`todo` grouped by isomorphism class (per_class) or one cell per group, in order."""
  if not per_class:
    return [[arch] for arch in todo]
  groups: dict[str, list[Any]] = {}
  for arch in todo:
    groups.setdefault(space.isomorphism_key(arch), []).append(arch)
  return list(groups.values())


def _valid_batches(config, mesh) -> list[tuple[Any, Any]]:
  """The (images, labels) every candidate is scored on: config.search.num_batches of them."""
  section = config.search
  valid = data.get_split(
      config.data, 'valid', global_batch_size=section.batch_size, train=False, seed=config.seed
  )
  batches = []
  for n, batch in enumerate(valid.eval_batches(remainder='drop')):
    if section.num_batches and n >= section.num_batches:
      break
    arrays = parallel.global_batch({'image': batch['image'], 'label': batch['label']}, mesh)
    batches.append((arrays['image'], arrays['label']))
  if not batches:  # Before any compile: the evaluator's memory check needs a batch.
    raise ValueError(f'search: {NO_BATCH}={section.batch_size}')
  return batches


class _Scorer:
  """Scores rounds of candidates chunk by chunk, appending each finished chunk to `path`.

  Set up on the first round with something to score: its validation batches, KL and
  zero-cost inputs and compiled evaluator serve every later round. With
  config.search.per_class, one cell of each isomorphism class is scored and its scores
  are written for every cell of the class (`same_as` names it).
  """

  def __init__(self, config, space, spec, params, path: str, mesh, cost_of):
    self.config, self.space, self.spec, self.params = config, space, spec, params
    self.path, self.mesh, self.cost_of = path, mesh, cost_of
    self.inputs = None  # (evaluator, batches, kl, zero-cost, recalibration inputs) once set up.

  def _setup(self, num_classes: int) -> None:
    config, space, spec, mesh = self.config, self.space, self.spec, self.mesh
    batches = _valid_batches(config, mesh)
    kl_inputs = _kl_inputs(config, space, spec, mesh, self.params)
    zero_cost_inputs = _zero_cost_inputs(config, space, spec, mesh)
    recalibration_inputs = recalibration.inputs(config, mesh)
    inputs = kl_inputs, zero_cost_inputs, recalibration_inputs
    evaluator = _fitting_evaluator(
        config, space, spec, mesh, self.params, batches[0], inputs, num_classes
    )
    self.inputs = evaluator, batches, *inputs

  def _records(self, members: list[Any], scores: dict[str, Any], i: int) -> list[dict[str, Any]]:
    """The records of one isomorphism class, scored as its first member (row `i`)."""
    records = []
    for arch in members:
      params_count, flops = self.cost_of(arch)
      records.append(
          {
              'arch': arch.to_string(),
              'kl': None,
              'params': params_count,
              'flops': flops,
              **{k: float(v[i]) for k, v in scores.items()},
              **({} if arch is members[0] else {results.SAME_AS: members[0].to_string()}),
              **recalibration.record_fields(self.config.search),
          }
      )
    return records

  def score(self, todo: list[Any]) -> list[dict[str, Any]]:
    """Scores `todo`, saving each chunk as it finishes; the records written, in order."""
    started = time.time()
    classes = _classes(todo, self.space, self.config.search.per_class)
    if len(classes) < len(todo):
      logging.info('search: %d cells in %d isomorphism classes', len(todo), len(classes))
    if self.inputs is None:
      self._setup(len(classes))
    evaluator, batches, kl_inputs, zero_cost_inputs, recalibration_inputs = self.inputs
    size = evaluator.chunk_size
    chunks = [classes[i : i + size] for i in range(0, len(classes), size)]
    progress = metric_logs.Progress(
        len(chunks), examples_per_step=size, name='search', unit='candidates'
    )
    written = []
    for n, chunk in enumerate(chunks, 1):
      masks = self.space.encode_batch([c[0] for c in chunk])
      scores = evaluator.score(
          self.params, batches, masks, kl_inputs, zero_cost_inputs, recalibration_inputs
      )
      records = [r for i, members in enumerate(chunk) for r in self._records(members, scores, i)]
      results.append(self.path, records)
      written += records
      progress.update(n)
      if n < len(chunks):
        preemption.stop_if_requested(f'search: {n} of {len(chunks)} chunks scored and saved', n)
    logging.info(
        'search: scored %d candidates (%d distinct) in %.1f s (compiles included) with the %s '
        'evaluator (%d compiles)',
        len(todo),
        len(classes),
        time.time() - started,
        evaluator.mode,
        evaluator.compilations(),
    )
    return written
