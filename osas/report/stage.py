"""Stage `report`: Table 1, rank correlations and figures from the search and retrain outputs."""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from absl import logging
from etils import epath
import jax

from osas.report import figures
from osas.report import ground_truth
from osas.report import loading
from osas.report import markdown
from osas.report import rankings
from osas.report import tables
from osas.search import ranking as search_ranking
from osas.search import results as search_results
from osas.search.results import is_number
from osas.workdir import read_json
from osas.workdir import write_atomic

_FIELDS = {
    'figures': bool,
    'accuracy_key': str,
    'dpi': int,
    'bootstrap': int,
    'ground_truth_arch_column': str,
    'ground_truth_accuracy_column': str,
}


def check(config, mesh) -> None:
  """Raises ValueError naming the config.report field that cannot work."""
  del mesh  # The report runs on the host only.
  section = config.get('report')
  if section is None:
    raise ValueError('config.report is missing; copy the report section of configs/default.py')
  for field, kind in _FIELDS.items():
    value = section.get(field)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
      raise ValueError(f'config.report.{field}={value!r} must be a {kind.__name__}')
  key = section.accuracy_key
  if not re.fullmatch(r'\w+', key):
    raise ValueError(f'config.report.accuracy_key={key!r} must name a result.json field')
  # The retrain stage writes '<split>_accuracy' for each split it evaluates.
  splits = config.get('retrain', {}).get('eval_splits')
  split = key.removesuffix('_accuracy')
  if split != key and splits is not None and split not in splits:
    raise ValueError(
        f'config.report.accuracy_key={key!r}: retrain writes only '
        f"{', '.join(f'{s}_accuracy' for s in splits)} "
        f'(config.retrain.eval_splits={tuple(splits)})'
    )
  if section.bootstrap < 0:
    raise ValueError(f'config.report.bootstrap={section.bootstrap} must be >= 0 (0: no intervals)')
  for rank_by in section.get('also_rank_by', ()):
    search_ranking.parse(rank_by, 'config.report.also_rank_by')
  for rank_by in config.get('select', {}).get('top_by', ()):
    search_ranking.parse(rank_by, 'config.select.top_by')
  if not 50 <= section.dpi <= 600:
    raise ValueError(f'config.report.dpi={section.dpi} must be in [50, 600]')
  _check_ground_truth(section)


def _check_ground_truth(section) -> None:
  """Checks the ground-truth fields; with a table set, that it exists and has both columns.

  Cheap to learn before the supernet trains, costly after.
  """
  path = section.get('ground_truth')
  if path is not None and (not isinstance(path, str) or not path.strip()):
    raise ValueError(f'config.report.ground_truth={path!r} must be a CSV path or None')
  for field in ('ground_truth_arch_column', 'ground_truth_accuracy_column'):
    if not section[field].strip():
      raise ValueError(f'config.report.{field}={section[field]!r} must name a CSV column')
  if path is not None:
    ground_truth.check_table(
        path, section.ground_truth_arch_column, section.ground_truth_accuracy_column
    )


def _missing(
    candidates: Sequence[dict[str, Any]],
    groups: dict[str, list[str]],
    results: Sequence[dict[str, Any]],
    accuracy_key: str,
    truth: dict[str, Any] | None,
) -> list[str]:
  """What the report lacks, each with its consequence, for summary.md's first section."""
  notes = []
  scored = {c['arch'] for c in candidates}
  if not candidates:
    notes.append(
        'no scored candidates (search/candidates.jsonl is missing or empty): '
        'no one-shot statistics; run the search stage'
    )
  elif not any(is_number(c.get('kl')) for c in candidates):
    notes.append(
        'no KL scores in search/candidates.jsonl (config.search.kl_examples = 0?): '
        'no KL correlations or figure'
    )
  if not groups:
    notes.append(
        'no groups (search/selection.json is missing or empty): '
        f"the table has only the '{tables.ALL_RETRAINED}' row"
    )
  if not results:
    notes.append('no retrained archs (no retrain/*/result.json): no stand-alone accuracies')
  lacking = sum(not is_number(r.get(accuracy_key)) for r in results)
  if lacking:
    notes.append(f'{lacking} retrained archs have no {accuracy_key!r} in result.json')
  unscored = sum(r['arch'] not in scored for r in results)
  if candidates and unscored:
    notes.append(
        f'{unscored} retrained archs have no one-shot score (All-On or '
        'config.retrain.archs): left out of the correlations'
    )
  selected = {a for archs in groups.values() for a in archs}
  pending = len(selected - {r['arch'] for r in results})
  if pending:
    notes.append(f'{pending} of {len(selected)} selected archs are not retrained yet')
  if truth and truth['missing']:
    notes.append(
        f"{truth['missing']} of {truth['scored']} scored candidates are not in "
        f"{truth['file']} (e.g. {truth['missing_examples'][0]!r}): left out of the "
        'ground-truth statistics'
    )
  return notes


def build_summary(
    candidates: Sequence[dict[str, Any]],
    groups: dict[str, list[str]],
    results: Sequence[dict[str, Any]],
    accuracy_key: str,
    truth: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
  """summary.json's object, less 'figures': counts, Table 1, correlations, best archs.

  `truth` is the ground-truth comparison (None when off or nothing is scored); `limits`
  the search's config.search.max_params / max_flops (None: none recorded).
  """
  scored = {c['arch'] for c in candidates}
  return {
      'accuracy_key': accuracy_key,
      'accuracy_units': 'fraction (summary.md and the figures show %)',
      'counts': {
          'candidates_scored': len(candidates),
          'candidates_with_kl': sum(is_number(c.get('kl')) for c in candidates),
          'groups': len(groups),
          'selected': len({a for archs in groups.values() for a in archs}),
          'retrained': len(results),
          'retrained_with_accuracy': sum(is_number(r.get(accuracy_key)) for r in results),
          'retrained_with_one_shot': sum(r['arch'] in scored for r in results),
      },
      'missing': _missing(candidates, groups, results, accuracy_key, truth),
      'table': tables.group_table(groups, candidates, results, accuracy_key),
      'correlations': tables.correlations(candidates, results, accuracy_key),
      'best_candidate': tables.best_candidate(candidates),
      'best_retrained': tables.best_retrained(results, accuracy_key, candidates),
      'ground_truth': truth,
      'search_limits': limits or {},
      'selected_cost': tables.selected_cost(groups, candidates),
  }


def run(config, workdir: str, mesh) -> None:
  """Reads DIR/search and DIR/retrain, writes DIR/report/ (on process 0 only)."""
  del mesh  # Nothing here touches a device.
  if jax.process_index() != 0:
    return
  section, root = config.report, epath.Path(workdir)
  candidates = search_results.read(str(root / 'search' / 'candidates.jsonl'))
  groups = tables.order_groups(loading.load_selection(root / 'search' / 'selection.json'))
  results = loading.load_results(root / 'retrain', section.accuracy_key)
  # The search stage records the ranking it selected by; older workdirs ranked by accuracy.
  selection = read_json(root / 'search' / 'selection.json') or {}
  options = dict(
      rank_by=selection.get('rank_by', 'accuracy'),
      space_name=config.space.name,
      seed=config.seed,
      bootstrap=section.bootstrap,
      also=tuple(section.get('also_rank_by', ())),
      top_k=config.get('select', {}).get('top_n', 0),
  )
  truth, joined = None, None  # joined: None when off, else the points of the figure.
  if section.get('ground_truth') is not None:
    truth, joined = ground_truth.evaluate(
        candidates,
        section.ground_truth,
        section.ground_truth_arch_column,
        section.ground_truth_accuracy_column,
        **options,
    )
  summary = build_summary(
      candidates, groups, results, section.accuracy_key, truth, selection.get('limits')
  )
  by_arch = {c['arch']: c for c in candidates}
  retrained = [
      (by_arch[r['arch']], r[section.accuracy_key])
      for r in results
      if r['arch'] in by_arch and is_number(r.get(section.accuracy_key))
  ]
  # No top-k column: a few retrained archs say nothing of the pool One-Shot Top is drawn
  # from; top_pools measures that over every scored candidate.
  summary['rankings'] = rankings.table(
      [c for c, _ in retrained], [a for _, a in retrained], **{**options, 'top_k': 0}
  )
  summary['top_pools'] = rankings.top_pools(
      candidates,
      options['rank_by'],
      [*options['also'], *config.get('select', {}).get('top_by', ())],
      options['top_k'],
  )
  out = root / 'report'
  out.mkdir(parents=True, exist_ok=True)
  if section.figures:
    summary['figures'] = figures.write_all(
        out,
        candidates,
        groups,
        results,
        summary['correlations'],
        section.accuracy_key,
        section.dpi,
        truth,
        joined,
    )
  else:
    names = figures.ALL + ((figures.GROUND_TRUTH,) if joined is not None else ())
    summary['figures'] = {
        'written': [],
        'skipped': dict.fromkeys(names, 'config.report.figures=False'),
    }
  # allow_nan=False: a NaN that slipped through must fail here, not write invalid JSON.
  write_atomic(out / 'summary.json', json.dumps(summary, indent=2, allow_nan=False) + '\n')
  write_atomic(out / 'summary.md', markdown.render(summary))
  logging.info(
      'report: %d candidates, %d retrained, figures %s -> %s',
      len(candidates),
      len(results),
      summary['figures']['written'],
      out,
  )
  for note in summary['missing']:
    logging.warning('report: %s', note)
