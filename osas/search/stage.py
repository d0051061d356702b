"""Stage `search`: score candidates with the trained one-shot model, then select some to retrain."""

from __future__ import annotations

import time
from typing import Any

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
from osas.models import ModelSpec
from osas.models import Supernet
from osas.models.cost import cost
from osas.models.initialize import init_variables
from osas.search import memory
from osas.search import ranking
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
  for field in ('top_n', 'top_sample', 'small_n', 'random_n', 'buckets', 'per_bucket'):
    if config.select[field] < 0:
      raise ValueError(f'config.select.{field}={config.select[field]} must be >= 0')
  if not 0 <= config.select.small_percentile <= 100:
    raise ValueError('config.select.small_percentile must be in [0, 100]')


def _supernet_params(config, workdir: str, mesh):
  """The trained one-shot weights: the newest supernet checkpoint that restores."""
  from osas.train import supernet  # pylint: disable=g-import-not-at-top

  if not workdir_lib.read_json(workdir, 'supernet', 'done.json'):
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
  return supernet.weights(restored[0]), parts['train'].num_classes, parts['train'].image_shape


def run(config, workdir: str, mesh) -> None:
  section = config.search
  params, num_classes, image_shape = _supernet_params(config, workdir, mesh)
  space = space_lib.from_config(config.space)
  spec = ModelSpec.from_config(config.model, num_classes)
  retrain_spec = ModelSpec.from_config(
      {**dict(config.model), 'filters': config.retrain.filters}, num_classes
  )
  path = workdir_lib.path(workdir, 'search', 'candidates.jsonl')
  scored = {r['arch'] for r in results.read(path, repair=True)}
  candidates = strategies.get_strategy(section.strategy)(
      space, config.seed + 3, section.num_candidates
  )
  todo = [a for a in candidates if a.to_string() not in scored]
  logging.info(
      'search: %d candidates, %d scored before, %d to score',
      len(candidates),
      len(candidates) - len(todo),
      len(todo),
  )
  if todo:
    _score(todo, params, config, space, spec, retrain_spec, image_shape, path, mesh)
  records = results.read(path)
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
      obj={'groups': groups, 'num_scored': len(records), 'rank_by': section.rank_by},
  )
  logging.info('search: selected %s', {k: len(v) for k, v in groups.items()})


def _evaluator(config, space, spec, mesh, chunk_size: int) -> Evaluator:
  return Evaluator(
      space,
      spec,
      mesh,
      mode=config.search.evaluator,
      chunk_size=chunk_size,
      ghost_batch_size=config.supernet.ghost_batch_size,
      zero_cost_names=config.search.zero_cost,
  )


def _zero_cost_inputs(config, space, spec, mesh):
  """(params, images, labels) for the zero-cost scores; None when there are none.

  A freshly initialised supernet (its own seed) and one batch of training images.
  """
  section = config.search
  if not section.zero_cost:
    return None
  train = data.get_split(
      config.data,
      'train',
      global_batch_size=section.zero_cost_batch_size,
      train=False,
      seed=config.seed,
  )
  batch = parallel.global_batch(train.batch(0), mesh)
  image = np.zeros((1,) + train.image_shape, np.float32)
  variables = init_variables(
      Supernet(space, spec),
      jax.random.key(config.seed + 5),
      image,
      jax.tree.map(lambda x: x[None], space.all_on()),
  )
  params = parallel.put(variables['params'], parallel.replicated(mesh))
  return params, batch['image'], batch['label']


def _fitting_evaluator(
    config, space, spec, mesh, params, batch, kl_inputs, zero_cost_inputs, candidates: int
) -> Evaluator:
  """The evaluator for config.search.chunk_size (0: the largest that fits), memory checked."""
  limit = memory.agreed(0, memory.device_limit_bytes())[1]
  needed_at = lambda m: memory.agreed(
      _evaluator(config, space, spec, mesh, m).memory_bytes(
          params, batch, kl_inputs, zero_cost_inputs
      ),
      limit,
  )[0]
  chunk_size = config.search.chunk_size
  if not chunk_size:
    chunk_size = memory.fitting_chunk_size(needed_at, limit, mesh.devices.size, candidates)
    logging.info('search: chunk size %d (config.search.chunk_size=0: what fits)', chunk_size)
  evaluator = _evaluator(config, space, spec, mesh, chunk_size)
  needed = memory.agreed(evaluator.memory_bytes(params, batch, kl_inputs, zero_cost_inputs), limit)[
      0
  ]
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


def _score(todo, params, config, space, spec, retrain_spec, image_shape, path, mesh) -> None:
  """Scores `todo` chunk by chunk, appending each finished chunk to the candidates file.

  With config.search.per_class, one cell of each isomorphism class is scored and its
  scores are written for every cell of the class (`same_as` names it).
  """
  section = config.search
  started = time.time()
  classes = _classes(todo, space, section.per_class)
  if len(classes) < len(todo):
    logging.info('search: %d cells in %d isomorphism classes', len(todo), len(classes))
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
  kl_inputs = None
  if section.kl_examples:
    train = data.get_split(
        config.data, 'train', global_batch_size=section.kl_examples, train=False, seed=config.seed
    )
    images = parallel.global_batch(train.batch(0)['image'], mesh)
    reference = _evaluator(config, space, spec, mesh, mesh.devices.size).reference(params, images)
    kl_inputs = (images, reference)
  zero_cost_inputs = _zero_cost_inputs(config, space, spec, mesh)
  evaluator = _fitting_evaluator(
      config, space, spec, mesh, params, batches[0], kl_inputs, zero_cost_inputs, len(classes)
  )
  size = evaluator.chunk_size
  chunks = [classes[i : i + size] for i in range(0, len(classes), size)]
  progress = metric_logs.Progress(
      len(chunks), examples_per_step=size, name='search', unit='candidates'
  )
  for n, chunk in enumerate(chunks, 1):
    scores = evaluator.score(
        params, batches, space.encode_batch([c[0] for c in chunk]), kl_inputs, zero_cost_inputs
    )
    records = []
    for i, members in enumerate(chunk):
      for arch in members:
        params_count, flops = cost(space, retrain_spec, arch, image_shape)
        records.append(
            {
                'arch': arch.to_string(),
                'kl': None,
                'params': params_count,
                'flops': flops,
                **{k: float(v[i]) for k, v in scores.items()},
                **({} if arch is members[0] else {results.SAME_AS: members[0].to_string()}),
            }
        )
    results.append(path, records)
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
