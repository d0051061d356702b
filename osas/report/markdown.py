"""summary.md: the report's numbers as a short human-readable Markdown page."""

from __future__ import annotations

from typing import Any

from osas.report import rankings
from osas.report import tables


def _count(value: float) -> str:
  """12345678 -> '12.35M', 41234 -> '41.2K': parameter counts at a glance."""
  for scale, suffix, digits in ((1e6, 'M', 2), (1e3, 'K', 1)):
    if abs(value) >= scale:
      return f'{value / scale:.{digits}f}{suffix}'
  return f'{value:.0f}'


def _stat(stat: dict[str, Any], percent: bool) -> str:
  """'93.12 ± 0.40' (mean ± std), just the mean for one value, '–' for none."""
  if not stat['n']:
    return '–'
  show = (lambda v: f'{100 * v:.2f}') if percent else _count
  return show(stat['mean']) + ('' if stat['std'] is None else f" ± {show(stat['std'])}")


def _cell(text: str) -> str:
  return text.replace('|', r'\|')  # Arch strings hold '|', a Markdown table's separator.


def _rows(header: str, align: str, rows) -> str:
  """A Markdown table: the header, the alignment row, then one line per row's cells."""
  return '\n'.join([header, align, *('| ' + ' | '.join(map(str, row)) + ' |' for row in rows)])


def _table(rows: list[dict[str, Any]], accuracy_key: str) -> str:
  header = '| Group | Retrained / selected | Params (stand-alone) | '
  header += f'Stand-alone {accuracy_key} (%) | One-shot accuracy (%) |'
  stats = ('params', 'standalone_accuracy', 'one_shot_accuracy')
  cells = [
      (_cell(tables.group_label(row['group'])), f"{row['retrained']} / {row['selected']}")
      + tuple(_stat(row[k], k != 'params') for k in stats)
      for row in rows
  ]
  return _rows(header, '|---|---:|---:|---:|---:|', cells)


def _p(value: float | None) -> str:
  """'=0.012', '=3.4e-07', or '<1e-300' where the p-value underflowed to 0."""
  if value is None:
    return ' n/a'
  if value == 0:
    return '<1e-300'
  return '=' + (f'{value:.2g}' if value >= 1e-3 else f'{value:.1e}')


def _correlation(corr: dict[str, Any]) -> tuple[Any, ...]:
  pair = f"{corr['x']} vs {corr['y']}"
  if corr['spearman'] is None:
    return pair, corr['n'], f"n/a: {corr['reason']}", 'n/a'
  ranks = (f"{corr[k]:.3f} (p{_p(corr[k + '_p'])})" for k in ('spearman', 'kendall'))
  return pair, corr['n'], *ranks


def _correlations(corrs) -> str:
  header = '| Pair | n | Spearman ρ (p) | Kendall τ (p) |'
  return _rows(header, '|---|---:|---:|---:|', map(_correlation, corrs))


def _params(best: dict[str, Any]) -> str:
  return '' if best['params'] is None else f", {_count(best['params'])} params"


def _best(summary: dict[str, Any]) -> list[str]:
  lines = []
  if best := summary['best_candidate']:
    kl = '' if best['kl'] is None else f", KL {best['kl']:.4g}"
    lines.append(
        f"- Best candidate by one-shot accuracy: `{best['arch']}` "
        f"({100 * best['accuracy']:.2f}% one-shot{_params(best)}{kl})"
    )
  if best := summary['best_retrained']:
    one_shot = best['one_shot_accuracy']
    one_shot = '' if one_shot is None else f', {100 * one_shot:.2f}% one-shot'
    lines.append(
        f"- Best retrained by stand-alone {summary['accuracy_key']}: `{best['arch']}` "
        f"(id {best['arch_id']}: {100 * best['accuracy']:.2f}%{_params(best)}{one_shot})"
    )
  return lines or ['- None yet: nothing scored or retrained.']


def _limits(summary: dict[str, Any]) -> list[str]:
  """The search's cost limits and the cost range of the selected archs."""
  limits, cost = summary.get('search_limits') or {}, summary.get('selected_cost') or {}
  bound = lambda field: f'at most {_count(limits[field])}' if limits.get(field) else 'no limit'
  span = lambda key: 'unknown' if not cost[key] else ' to '.join(map(_count, cost[key]))
  lines = [
      '- Limits on the stand-alone model (config.search.max_params / max_flops): '
      f"params {bound('max_params')}, FLOPs {bound('max_flops')}"
  ]
  if cost.get('n'):
    lines.append(
        f"- The {cost['n']} selected archs that were scored: params {span('params')}, "
        f"FLOPs {span('flops')}"
    )
  return ['\n'.join(lines)]


def _ground_truth(truth: dict[str, Any]) -> list[str]:
  """The one-shot ranking against the table: correlation, precision@k, picks vs random."""
  top, rand, first, n = (truth[k] for k in ('one_shot_top', 'random', 'one_shot_top1', 'joined'))
  best_joined, best_table = truth['optimum_joined'], truth['optimum_table']
  precision = ', '.join(f'@{k} {p:.2f}' for k, p in truth['precision_at_k'].items())
  picks = [
      (f"One-shot top-1 `{first['arch']}`", first['accuracy'], f" (rank {first['rank']} of {n})"),
      (f"One-shot top-{top['k']}: mean", top['mean'], ''),
      (f"One-shot top-{top['k']}: best", top['best'], ''),
      ('Random pick: mean (expected)', rand['mean'], ''),
      (f"Best of {rand['draws']} random picks (expected)", rand['expected_best'], ''),
      (f"Optimum of the scored set `{best_joined['arch']}`", best_joined['accuracy'], ''),
      (f"Optimum of the table `{best_table['arch']}`", best_table['accuracy'], ''),
  ]
  column = truth['accuracy_column']
  picks = [(_cell(pick), f'{100 * value:.2f}{rank}') for pick, value, rank in picks]
  return [
      f"{n} of {truth['scored']} scored candidates are in `{truth['file']}` "
      f"({truth['table_size']} archs); true accuracy: its column `{column}`; "
      f"{truth['tie_break']}.",
      _correlations([truth['correlation']]),
      '- Precision@k (share of the one-shot top-k in the true top-k of the scored set): '
      + (precision or f'none: n = {n} is below the smallest k'),
      _rows(f'| Pick | True {column} (%) |', '|---|---:|', picks),
  ]


def render(summary: dict[str, Any]) -> str:
  """The whole page, from the summary.json object."""
  counts, key, truth = summary['counts'], summary['accuracy_key'], summary.get('ground_truth')
  missing = '\n'.join(f'- {note}' for note in summary['missing'])
  sections = {  # Each section's paragraphs; empty ones are left out.
      'Missing': [missing] if missing else [],
      'Search limits': _limits(summary),
      'Groups (Table 1)': [
          'Mean ± sample std. Params and stand-alone accuracy: over the retrained archs; '
          'one-shot accuracy: over the selected archs that were scored.',
          _table(summary['table'], key),
      ],
      'Rank correlations': [_correlations(summary['correlations'].values())],
      'Ground truth': _ground_truth(truth) if truth else [],
      'Ground truth: every score and baseline': (
          ['\n'.join(rankings.render(truth['rankings'], f"true `{truth['accuracy_column']}`"))]
          if truth and truth['rankings']['rows']
          else []
      ),
      'Scores against the retrained archs': (
          ['\n'.join(rankings.render(summary['rankings'], f'stand-alone {key}'))]
          if summary.get('rankings', {}).get('rows')
          else []
      ),
      'One-Shot Top pool by score': (
          ['\n'.join(rankings.render_pools(summary['top_pools']))]
          if summary.get('top_pools', {}).get('k')
          else []
      ),
      'Best architectures': ['\n'.join(_best(summary))],
  }
  figures = summary['figures']
  blocks = [
      '# One-shot architecture search report',
      f"- Candidates scored: {counts['candidates_scored']} "
      f"({counts['candidates_with_kl']} with a KL score)\n"
      f"- Architectures selected: {counts['selected']} in {counts['groups']} groups; "
      f"retrained: {counts['retrained']} ({counts['retrained_with_accuracy']} with a "
      f"{key}, {counts['retrained_with_one_shot']} with a one-shot score)",
      *('\n\n'.join([f'## {title}', *texts]) for title, texts in sections.items() if texts),
      '## Figures',
      *(f'![{name}]({name})' for name in figures['written']),  # Each its own paragraph.
  ]
  skipped = ''.join(f'- {name}: not drawn ({why})\n' for name, why in figures['skipped'].items())
  return '\n\n'.join(blocks) + '\n\n' + skipped
