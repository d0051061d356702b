"""Stage `report`: Table 1, rank correlations and figures from a finished (or partial) workdir."""

import ml_collections


def default_report_config() -> ml_collections.ConfigDict:
  """The fields of config.report, with their defaults (copied into configs/default.py)."""
  section = ml_collections.ConfigDict()
  section.figures = True  # Write the PNG figures next to summary.md.
  section.accuracy_key = 'test_accuracy'  # The result.json field read as stand-alone accuracy.
  section.dpi = 120  # Resolution of the figures (6 x 4.5 in).
  return section
