"""summary.md: the report's numbers as a short human-readable Markdown page."""

from __future__ import annotations

from typing import Any

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


def _table(rows: list[dict[str, Any]], accuracy_key: str) -> list[str]:
  lines = [f'| Group | Retrained / selected | Params (stand-alone) | '
           f'Stand-alone {accuracy_key} (%) | One-shot accuracy (%) |',
           '|---|---:|---:|---:|---:|']
  for row in rows:
    lines.append(f"| {_cell(tables.group_label(row['group']))} | "
                 f"{row['retrained']} / {row['selected']} | {_stat(row['params'], False)} | "
                 f"{_stat(row['standalone_accuracy'], True)} | "
                 f"{_stat(row['one_shot_accuracy'], True)} |")
  return lines


def _p(value: float | None) -> str:
  """'=0.012', '=3.4e-07', or '<1e-300' where the p-value underflowed to 0."""
  if value is None:
    return ' n/a'
  if value == 0:
    return '<1e-300'
  return '=' + (f'{value:.2g}' if value >= 1e-3 else f'{value:.1e}')


def _correlations(corrs: dict[str, dict[str, Any]]) -> list[str]:
  lines = ['| Pair | n | Spearman ρ (p) | Kendall τ (p) |', '|---|---:|---:|---:|']
  for corr in corrs.values():
    pair = f"{corr['x']} vs {corr['y']}"
    if corr['spearman'] is None:
      lines.append(f"| {pair} | {corr['n']} | n/a: {corr['reason']} | n/a |")
    else:
      lines.append(f"| {pair} | {corr['n']} | {corr['spearman']:.3f} "
                   f"(p{_p(corr['spearman_p'])}) | {corr['kendall']:.3f} "
                   f"(p{_p(corr['kendall_p'])}) |")
  return lines


def _best(summary: dict[str, Any]) -> list[str]:
  key, lines = summary['accuracy_key'], []
  best = summary['best_candidate']
  if best:
    kl = '' if best['kl'] is None else f", KL {best['kl']:.4g}"
    params = '' if best['params'] is None else f", {_count(best['params'])} params"
    lines.append(f"- Best candidate by one-shot accuracy: `{best['arch']}` "
                 f"({100 * best['accuracy']:.2f}% one-shot{params}{kl})")
  best = summary['best_retrained']
  if best:
    one_shot = ('' if best['one_shot_accuracy'] is None
                else f", {100 * best['one_shot_accuracy']:.2f}% one-shot")
    params = '' if best['params'] is None else f", {_count(best['params'])} params"
    lines.append(f"- Best retrained by stand-alone {key}: `{best['arch']}` "
                 f"(id {best['arch_id']}: {100 * best['accuracy']:.2f}%{params}{one_shot})")
  return lines or ['- None yet: nothing scored or retrained.']


def _ground_truth(truth: dict[str, Any]) -> list[str]:
  """The one-shot ranking against the table: correlation, precision@k, picks vs random."""
  def pct(value: float) -> str:
    return f'{100 * value:.2f}'
  top, rand = truth['one_shot_top'], truth['random']
  first, n = truth['one_shot_top1'], truth['joined']
  precision = ', '.join(f'@{k} {p:.2f}' for k, p in truth['precision_at_k'].items())
  rows = [
      (f"One-shot top-1 `{first['arch']}`",
       f"{pct(first['accuracy'])} (rank {first['rank']} of {n})"),
      (f"One-shot top-{top['k']}: mean", pct(top['mean'])),
      (f"One-shot top-{top['k']}: best", pct(top['best'])),
      ('Random pick: mean (expected)', pct(rand['mean'])),
      (f"Best of {rand['draws']} random picks (expected)", pct(rand['expected_best'])),
      (f"Optimum of the scored set `{truth['optimum_joined']['arch']}`",
       pct(truth['optimum_joined']['accuracy'])),
      (f"Optimum of the table `{truth['optimum_table']['arch']}`",
       pct(truth['optimum_table']['accuracy'])),
  ]
  return [f"{n} of {truth['scored']} scored candidates are in `{truth['file']}` "
          f"({truth['table_size']} archs); true accuracy: its column "
          f"`{truth['accuracy_column']}`; {truth['tie_break']}.", '',
          *_correlations({'': truth['correlation']}), '',
          '- Precision@k (share of the one-shot top-k in the true top-k of the scored set): '
          + (precision or f'none: n = {n} is below the smallest k'), '',
          f"| Pick | True {truth['accuracy_column']} (%) |", '|---|---:|',
          *(f'| {_cell(pick)} | {value} |' for pick, value in rows)]


def render(summary: dict[str, Any]) -> str:
  """The whole page, from the summary.json object."""
  counts = summary['counts']
  lines = ['# One-shot architecture search report', '',
           f"- Candidates scored: {counts['candidates_scored']} "
           f"({counts['candidates_with_kl']} with a KL score)",
           f"- Architectures selected: {counts['selected']} in {counts['groups']} groups; "
           f"retrained: {counts['retrained']} ({counts['retrained_with_accuracy']} with a "
           f"{summary['accuracy_key']}, {counts['retrained_with_one_shot']} with a one-shot "
           'score)', '']
  if summary['missing']:
    lines += ['## Missing', '', *(f'- {note}' for note in summary['missing']), '']
  lines += ['## Groups (Table 1)', '',
            'Mean ± sample std. Params and stand-alone accuracy: over the retrained archs; '
            'one-shot accuracy: over the selected archs that were scored.', '',
            *_table(summary['table'], summary['accuracy_key']), '',
            '## Rank correlations', '', *_correlations(summary['correlations']), '',
            *(['## Ground truth', '', *_ground_truth(summary['ground_truth']), '']
              if summary.get('ground_truth') else []),
            '## Best architectures', '', *_best(summary), '', '## Figures', '']
  figures = summary['figures']
  for name in figures['written']:
    lines += [f'![{name}]({name})', '']  # A blank line apart: each its own paragraph.
  lines += [f'- {name}: not drawn ({why})' for name, why in figures['skipped'].items()]
  return '\n'.join(lines) + '\n'
