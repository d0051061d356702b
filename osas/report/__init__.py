"""Stage `report`: Table 1, correlations, figures (config.report: see configs/default.py)."""
