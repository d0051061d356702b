"""The report's figures as PNG files: the paper's Figures 5 and 6, one-shot vs ground truth."""

from __future__ import annotations

import io
from typing import Any, Sequence

from etils import epath
import matplotlib
from matplotlib.figure import Figure  # Not pyplot: no backend, no global figure state.
from matplotlib.ticker import MaxNLocator
import numpy as np

from osas.report import tables
from osas.search.results import is_number
from osas.workdir import write_atomic

FIGSIZE = (6.0, 4.5)  # Inches: fits a page column or a slide at the default 120 dpi.
ONE_SHOT_VS_STANDALONE = 'one_shot_vs_standalone.png'
SCORE_HISTOGRAM = 'score_histogram.png'
KL_VS_ACCURACY = 'kl_vs_accuracy.png'
ALL = (ONE_SHOT_VS_STANDALONE, SCORE_HISTOGRAM, KL_VS_ACCURACY)
GROUND_TRUTH = 'ground_truth.png'  # Only when config.report.ground_truth is set.
_ONE_SHOT_AXIS = 'One-shot validation accuracy (%)'
_RC = {f'{k}size': 11 for k in ('font.', 'axes.title', 'axes.label')}
_RC |= {'legend.fontsize': 8.5, 'xtick.labelsize': 10, 'ytick.labelsize': 10}
_CORE_STYLES = {'one_shot_top': ('tab:red', '^'), 'one_shot_small': ('tab:orange', 's')}
_CORE_STYLES |= {'random': ('tab:blue', 'o'), 'all_on': ('black', '*')}
_OTHER_COLORS = ('tab:green', 'tab:purple', 'tab:brown', 'tab:pink', 'tab:olive', 'tab:cyan')
_UNGROUPED = 'not in a group'  # Retrained archs named only in config.retrain.archs.
_CLOUD = dict(alpha=0.5, linewidths=0)  # Many points: no edges, see-through.
_MARKED = dict(edgecolors='white', linewidths=0.5, zorder=3)  # Few points, drawn on top.


def _styles(names: Sequence[str]) -> dict[str, tuple[Any, str]]:
  """A (color, marker) per group: fixed for the paper's, a colormap ramp for the buckets."""
  buckets = sorted(b for b in map(tables.bucket_index, names) if b is not None)
  ramp = matplotlib.colormaps['viridis']
  styles, others = {_UNGROUPED: ('tab:gray', 'x')}, iter(_OTHER_COLORS * len(names))
  for name in names:
    bucket = tables.bucket_index(name)
    if name in _CORE_STYLES:
      styles[name] = _CORE_STYLES[name]
    elif bucket is not None:
      styles[name] = (ramp(0.9 * buckets.index(bucket) / max(len(buckets) - 1, 1)), 'D')
    else:
      styles[name] = (next(others), 'P')
  return styles


def _pct(values: Sequence[float]) -> np.ndarray:
  return 100.0 * np.asarray(values, np.float64)


def _point_size(n: int) -> float:
  return float(np.clip(4000 / n, 4, 30))  # Thousands of points must not merge.


def _axes(title: str, ylabel: str, xlabel: str = _ONE_SHOT_AXIS) -> tuple[Figure, Any]:
  fig = Figure(figsize=FIGSIZE, layout='constrained')
  ax = fig.add_subplot()
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  ax.grid(alpha=0.3)
  return fig, ax


def correlation_text(corr: dict[str, Any], kendall: bool = True) -> str:
  """'Kendall τ = 0.52, Spearman ρ = 0.71 (n = 20)', or why they are undefined."""
  if corr['spearman'] is None:
    return f"rank correlation undefined: {corr['reason']}"
  text = f"Spearman ρ = {corr['spearman']:.2f} (n = {corr['n']})"
  return f"Kendall τ = {corr['kendall']:.2f}, {text}" if kendall else text


def one_shot_vs_standalone(points, corr, accuracy_key: str, group_names: list[str]) -> Figure:
  """Figure 5 left: (group, one-shot accuracy, stand-alone accuracy) points, by group."""
  title = f'One-shot vs stand-alone accuracy\n{correlation_text(corr)}'
  fig, ax = _axes(title, f"Stand-alone {accuracy_key.replace('_', ' ')} (%)")
  styles = _styles(group_names)
  for name in [*group_names, _UNGROUPED]:
    mine = [(x, y) for group, x, y in points if group == name]
    if mine:
      color, marker = styles[name]
      label = f'{tables.group_label(name) if name != _UNGROUPED else name} ({len(mine)})'
      style = dict(_MARKED, marker=marker, edgecolors=None if marker == 'x' else 'white')
      size = 70 if marker == '*' else 40
      ax.scatter(*_pct(mine).T, s=size, color=color, alpha=0.85, label=label, **style)
  ax.legend(loc='best', ncol=2 if len(group_names) > 5 else 1, framealpha=0.8)
  return fig


def score_histogram(scores, marks: dict[str, list[float]], threshold: float | None) -> Figure:
  """Figure 5 right: the one-shot accuracies of all candidates.

  Below, where each group's picks lie; a dashed line at the lowest One-Shot Top pick (the
  top-k threshold).
  """
  fig = Figure(figsize=FIGSIZE, layout='constrained')
  ratios = {'height_ratios': (3.0, 0.6 + 0.2 * len(marks))}
  axes = fig.subplots(2, 1, sharex=True, gridspec_kw=ratios) if marks else [fig.add_subplot()]
  hist_ax, bottom_ax = axes[0], axes[-1]
  bins = int(np.clip(np.sqrt(len(scores)), 10, 60))
  hist_ax.hist(_pct(scores), bins=bins, color='tab:blue', alpha=0.75, ec='white', lw=0.5)
  hist_ax.set(ylabel='Candidates', title=f'One-shot accuracy of {len(scores)} scored candidates')
  hist_ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # Counts: no 0.2 ticks.
  hist_ax.grid(axis='y', alpha=0.3)
  bottom_ax.set_xlabel(_ONE_SHOT_AXIS)
  if threshold is not None:
    for ax in axes:
      label = 'lowest One-Shot Top pick' if ax is hist_ax else None
      ax.axvline(100 * threshold, color='tab:red', linestyle='--', linewidth=1.2, label=label)
    hist_ax.legend(loc='upper left')
  if marks:
    styles = _styles(list(marks))
    for row, (name, values) in enumerate(marks.items()):
      y = np.full(len(values), row)
      bottom_ax.scatter(_pct(values), y, marker='|', s=150, linewidths=2, color=styles[name][0])
    bottom_ax.set_yticks(range(len(marks)), map(tables.group_label, marks), fontsize=8)
    bottom_ax.set_ylim(len(marks) - 0.5, -0.5)  # The first group on top, as in the table.
    bottom_ax.grid(axis='x', alpha=0.3)
  return fig


def kl_vs_accuracy(kl: Sequence[float], accuracy: Sequence[float], corr: dict[str, Any]) -> Figure:
  """Figure 6: the label-free KL score against one-shot accuracy, one point a candidate."""
  title = f'Label-free KL score vs one-shot accuracy\n{correlation_text(corr, False)}'
  xlabel = 'Symmetrized KL to the all-on model (nats; lower = closer)'
  fig, ax = _axes(title, _ONE_SHOT_AXIS, xlabel)
  kl = np.asarray(kl, np.float64)
  ax.scatter(kl, _pct(accuracy), s=_point_size(len(kl)), color='tab:purple', **_CLOUD)
  # KL spans decades between near-all-on and degenerate cells: log spreads them out.
  if kl.min() > 0 and kl.max() / kl.min() >= 20:
    ax.set_xscale('log')
  ax.grid(alpha=0.1, which='minor')
  return fig


def one_shot_vs_truth(joined: Sequence[tuple[str, float, float]], truth: dict[str, Any]) -> Figure:
  """Each scored candidate's one-shot accuracy against its accuracy in the ground truth.

  `joined` is in one-shot order; the one-shot top-k are marked; dashed: what the same
  number of random picks would get at best, on average.
  """
  title = f"One-shot vs ground-truth accuracy\n{correlation_text(truth['correlation'])}"
  fig, ax = _axes(title, f"True {truth['accuracy_column'].replace('_', ' ')} (%)")
  x, y = _pct([p[1:] for p in joined]).reshape(-1, 2).T
  top, rand = truth['one_shot_top']['k'], truth['random']
  if len(joined) > top:
    label = f'other scored candidates ({len(joined) - top})'
    size = _point_size(len(joined))
    ax.scatter(x[top:], y[top:], s=size, color='tab:blue', label=label, **_CLOUD)
  label = f'one-shot top-{top}'
  ax.scatter(x[:top], y[:top], s=45, marker='^', color='tab:red', label=label, **_MARKED)
  label = f"best of {rand['draws']} random picks (expected)"
  ax.axhline(100 * rand['expected_best'], color='black', linestyle='--', linewidth=1, label=label)
  ax.legend(loc='best', framealpha=0.8)
  return fig


def write_all(
    out_dir: epath.Path, candidates, groups, results, corrs, accuracy_key, dpi, truth, joined
) -> dict[str, Any]:
  """Writes the figures that the data allow: {'written': [file], 'skipped': {file: why}}.

  `joined` is None when there is no ground truth, else its points for `truth`'s figure.
  """
  groups = tables.order_groups(groups)
  one_shot = {c['arch']: c['accuracy'] for c in candidates}
  first_group = {}
  for name, archs in groups.items():
    for arch in archs:
      first_group.setdefault(arch, name)  # An arch in two groups shows as the first.
  figures, skipped = {}, {}
  scored = [r for r in results if r['arch'] in one_shot and is_number(r.get(accuracy_key))]
  points = [
      (first_group.get(r['arch'], _UNGROUPED), one_shot[r['arch']], r[accuracy_key]) for r in scored
  ]
  if points:
    corr = corrs['one_shot_vs_standalone']
    figures[ONE_SHOT_VS_STANDALONE] = lambda: one_shot_vs_standalone(
        points, corr, accuracy_key, list(groups)
    )
  else:
    why = f'no retrained arch has both a one-shot score and a {accuracy_key}'
    skipped[ONE_SHOT_VS_STANDALONE] = why
  marks = {name: [one_shot[a] for a in archs if a in one_shot] for name, archs in groups.items()}
  marks = {name: values for name, values in marks.items() if values}
  threshold = min(marks['one_shot_top']) if 'one_shot_top' in marks else None
  if candidates:
    figures[SCORE_HISTOGRAM] = lambda: score_histogram(list(one_shot.values()), marks, threshold)
  else:
    skipped[SCORE_HISTOGRAM] = 'no scored candidates'
  with_kl = [c for c in candidates if is_number(c.get('kl'))]
  if with_kl:
    kl, accuracy = zip(*[(c['kl'], c['accuracy']) for c in with_kl])
    figures[KL_VS_ACCURACY] = lambda: kl_vs_accuracy(kl, accuracy, corrs['kl_vs_one_shot'])
  else:
    skipped[KL_VS_ACCURACY] = 'no candidate has a KL score'
  if truth is not None:
    figures[GROUND_TRUTH] = lambda: one_shot_vs_truth(joined, truth)
  elif joined is not None:
    skipped[GROUND_TRUTH] = 'no scored candidates'
  with matplotlib.rc_context(_RC):
    for name, make in figures.items():
      buffer = io.BytesIO()
      make().savefig(buffer, format='png', dpi=dpi)
      write_atomic(out_dir / name, buffer.getvalue())
  return {'written': list(figures), 'skipped': skipped}
