"""Which share of a step's ghost batches used each supernet parameter (for L2)."""

from __future__ import annotations

from typing import Any

import jax


def usage_fraction(path: tuple[str, ...], masks: Any, space) -> jax.Array | float:
  """Fraction of the ghost batches of masks [G, ...] whose cell uses the parameter at `path`.

  Which parameters a path owns is the space's to say (`space.usage_fraction`); parameters
  outside the searched cells (stem, reductions, head) are always used: 1.
  """
  return space.usage_fraction(path, masks)
