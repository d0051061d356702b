"""The config files: `--config=configs/NAME.py[:ARG]`; variants import their base from here."""
