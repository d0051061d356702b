"""config.search.bn: score with ghost-batch or with each candidate's recalibrated BN statistics."""

from __future__ import annotations

from typing import Any

from osas import data
from osas import parallel
from osas.search.results import BN_FIELDS as FIELDS

# 'ghost': every held-out ghost batch normalised by its own statistics (the paper, as in
# training); 'recalibrate': by the candidate's statistics on training images (SPOS).
MODES = ('ghost', 'recalibrate')


def mode(section) -> str:
  return section.get('bn', 'ghost')


def check(section) -> None:
  """ValueError naming the field unless config.search.bn and recalibration_images work."""
  if mode(section) not in MODES:
    raise ValueError(f"config.search.bn: unknown {mode(section)!r}; known: {', '.join(MODES)}")
  if mode(section) == 'ghost':
    return
  images = section.get('recalibration_images')
  if isinstance(images, bool) or not isinstance(images, int) or images <= 0:
    raise ValueError(f'config.search.recalibration_images={images!r} must be a positive integer')
  if images % section.batch_size:
    raise ValueError(
        f'config.search.recalibration_images={images} must be a multiple of '
        f'config.search.batch_size={section.batch_size} (it runs in batches of that size)'
    )


def record_fields(section) -> dict[str, Any]:
  """The FIELDS of the records scored under `section`: none for 'ghost' (as before them)."""
  if mode(section) == 'ghost':
    return {}
  return {'bn': mode(section), 'recalibration_images': section.recalibration_images}


def check_records(records: list[dict[str, Any]], section, path: str) -> None:
  """ValueError when records already in `path` were scored with another batch norm.

  A resumed search keeps the records it finds, so scores of two kinds would mix.
  """
  want = record_fields(section)
  other = [r for r in records if {k: r[k] for k in FIELDS if k in r} != want]
  if other:
    have = {k: other[0][k] for k in FIELDS if k in other[0]} or {'bn': 'ghost'}
    raise ValueError(
        f'config.search.bn: {path} holds {len(other)} candidates scored with {have}, '
        f"not {want or {'bn': 'ghost'}}; use a new --workdir (or move search/ away)"
    )


def inputs(config, mesh) -> tuple[Any, int] | None:
  """(training images, batch size) the candidates' statistics come from; None for 'ghost'.

  The first config.search.recalibration_images of the training split's order for
  config.seed, without augmentation: the held-out images they prepare for have none.
  """
  section = config.search
  if mode(section) == 'ghost':
    return None
  batch, _ = data.first_batch(
      config.data, 'train', size=section.recalibration_images, seed=config.seed
  )
  return parallel.global_batch(batch['image'], mesh), section.batch_size
