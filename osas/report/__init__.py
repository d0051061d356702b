"""Stage `report`: Table 1, rank correlations and figures from a finished (or partial) workdir."""

import ml_collections


def default_report_config() -> ml_collections.ConfigDict:
  """The fields of config.report, with their defaults (copied into configs/default.py)."""
  section = ml_collections.ConfigDict()
  section.figures = True  # Write the PNG figures next to summary.md.
  section.accuracy_key = 'test_accuracy'  # The result.json field read as stand-alone accuracy.
  section.dpi = 120  # Resolution of the figures (6 x 4.5 in).
  # A CSV of true accuracies per arch (e.g. NAS-Bench-201's) to judge the ranking; None: off.
  section.ground_truth = ml_collections.config_dict.placeholder(str)
  section.ground_truth_arch_column = 'arch'  # Its column of arch strings, matched exactly ...
  section.ground_truth_accuracy_column = 'test_acc_200ep'  # ... and of accuracies (% or 0-1).
  return section
