"""Metric logs without TensorFlow: TensorBoard event files, metrics.jsonl, progress lines."""

from __future__ import annotations

import itertools
import json
import os
import socket
import struct
import time
from typing import Any, Callable, Iterator, Mapping

from absl import logging
from etils import epath
import jax
import numpy as np

try:
  import google_crc32c  # pylint: disable=g-import-not-at-top
except ImportError:
  google_crc32c = None

_CASTAGNOLI = 0x82F63B78  # CRC-32C polynomial, bit-reversed.


def _crc_table() -> tuple[int, ...]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (_CASTAGNOLI if crc & 1 else 0)
    table.append(crc)
  return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli) of `data`, as TFRecord framing needs it."""
  if google_crc32c is not None:
    return google_crc32c.value(data)
  crc = 0xFFFFFFFF
  for byte in data:  # Records are a few hundred bytes: pure Python is fast enough.
    crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(data: bytes) -> bytes:
  """One TFRecord: length, its masked CRC, the data, its masked CRC."""
  length = struct.pack('<Q', len(data))
  return (length + struct.pack('<I', _masked_crc(length)) + data
          + struct.pack('<I', _masked_crc(data)))


# Protobuf wire format, by hand: the few message types an event file needs.
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(value: int) -> bytes:
  value &= (1 << 64) - 1  # Negative int64s are ten-byte two's complement.
  out = bytearray()
  while value > 0x7F:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


def _field(number: int, wire_type: int, payload: Any) -> bytes:
  """One field: its key, then the payload encoded as `wire_type` says."""
  key = _varint(number << 3 | wire_type)
  if wire_type == _VARINT:
    return key + _varint(payload)
  if wire_type == _FIXED64:
    return key + struct.pack('<d', payload)
  if wire_type == _FIXED32:
    return key + struct.pack('<f', payload)
  data = payload.encode() if isinstance(payload, str) else payload
  return key + _varint(len(data)) + data


def _event(step: int, *, summary: bytes | None = None, file_version: str | None = None) -> bytes:
  """An Event: wall_time = 1, step = 2, file_version = 3, summary = 5."""
  out = _field(1, _FIXED64, time.time()) + _field(2, _VARINT, step)
  if file_version is not None:
    out += _field(3, _BYTES, file_version)
  if summary is not None:
    out += _field(5, _BYTES, summary)
  return out


def _text_value(name: str, text: str) -> bytes:
  """A Summary.Value as TensorBoard's text plugin reads it: a scalar DT_STRING tensor."""
  plugin = _field(1, _BYTES, _field(1, _BYTES, 'text'))  # SummaryMetadata.plugin_data.
  tensor = _field(1, _VARINT, 7) + _field(2, _BYTES, b'') + _field(8, _BYTES, text)
  return _field(1, _BYTES, name) + _field(8, _BYTES, tensor) + _field(9, _BYTES, plugin)


def _parse(data: bytes) -> dict[int, list[Any]]:
  """Field number -> values: ints for varints, raw bytes for every other wire type."""
  fields, pos = {}, 0
  while pos < len(data):
    key, pos = _read_varint(data, pos)
    wire_type = key & 7
    if wire_type == _VARINT:
      value, pos = _read_varint(data, pos)
    elif wire_type in (_FIXED64, _FIXED32):
      size = 8 if wire_type == _FIXED64 else 4
      value, pos = data[pos:pos + size], pos + size
    elif wire_type == _BYTES:
      size, pos = _read_varint(data, pos)
      value, pos = data[pos:pos + size], pos + size
    else:
      raise ValueError(f'unsupported protobuf wire type {wire_type}')
    fields.setdefault(key >> 3, []).append(value)
  return fields


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
  value = shift = 0
  while True:
    byte = data[pos]
    value |= (byte & 0x7F) << shift
    pos, shift = pos + 1, shift + 7
    if not byte & 0x80:
      return value, pos


def _records(path: epath.Path) -> Iterator[bytes]:
  """The data of each record, CRCs checked; a truncated last record (a killed writer) ends it."""
  data = path.read_bytes()
  pos = 0
  while pos < len(data):
    if pos + 12 > len(data):
      logging.warning('%s: truncated record at byte %d ignored', path, pos)
      return
    length_bytes = data[pos:pos + 8]
    (length,) = struct.unpack('<Q', length_bytes)
    (length_crc,) = struct.unpack('<I', data[pos + 8:pos + 12])
    if length_crc != _masked_crc(length_bytes):
      raise ValueError(f'{path}: corrupted record length at byte {pos} (CRC mismatch)')
    end = pos + 12 + length + 4
    if end > len(data):
      logging.warning('%s: truncated record at byte %d ignored', path, pos)
      return
    record = data[pos + 12:end - 4]
    if struct.unpack('<I', data[end - 4:end])[0] != _masked_crc(record):
      raise ValueError(f'{path}: corrupted record data at byte {pos} (CRC mismatch)')
    yield record
    pos = end


def _value(value: Mapping[int, list[Any]]) -> float | str | None:
  """A Summary.Value's simple_value, or the string of a text tensor; None for other kinds."""
  if 2 in value:
    return struct.unpack('<f', value[2][0])[0]
  if 8 in value:
    strings = _parse(value[8][0]).get(8)
    if strings:
      return strings[0].decode()
  return None


def read_events(path: str | os.PathLike[str]) -> list[tuple[int, str, float | str]]:
  """(step, tag, value) of every scalar and text summary in an event file, in file order.

  `path` may also be a directory: its event files are read in name (that is, time) order,
  as TensorBoard merges them. Raises ValueError when a record's CRC does not match.
  """
  path = epath.Path(path)
  files = sorted(path.glob('*tfevents*')) if path.is_dir() else [path]
  out = []
  for file in files:
    for record in _records(file):
      event = _parse(record)
      step = event.get(2, [0])[0]
      step -= (step >> 63) << 64  # int64 is two's complement.
      for summary in event.get(5, []):
        for value in _parse(summary).get(1, []):
          value = _parse(value)
          decoded = _value(value)
          if decoded is not None:
            out.append((step, value[1][0].decode(), decoded))
  return out


_file_ids = itertools.count()


class MetricWriter:
  """Writes scalars to TensorBoard event files and metrics.jsonl in `logdir`.

  Only process 0 writes by default; elsewhere every method is a no-op. Each writer starts a
  new event file (TensorBoard merges those of a resumed run) and appends to metrics.jsonl.
  Every write is flushed, so a killed run keeps what it logged.
  """

  def __init__(self, logdir: str | os.PathLike[str], *, enabled: bool | None = None):
    self._enabled = jax.process_index() == 0 if enabled is None else enabled
    self._events = self._jsonl = None
    if not self._enabled:
      return
    directory = epath.Path(logdir)
    directory.mkdir(parents=True, exist_ok=True)
    # TensorFlow's own naming: pid and a counter keep names unique within the same second.
    name = (f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.'
            f'{os.getpid()}.{next(_file_ids):04d}.osas')
    self._events = (directory / name).open('wb')
    self._jsonl = (directory / 'metrics.jsonl').open('a')
    self._write_event(_event(0, file_version='brain.Event:2'))

  def _write_event(self, event: bytes) -> None:
    if self._events is None:
      raise ValueError('MetricWriter: write after close()')
    self._events.write(_record(event))
    self._events.flush()

  def write_scalars(self, step: int, scalars: Mapping[str, float | np.ndarray | jax.Array]) -> None:
    """Logs scalar values (Python, numpy or jax, any float or int dtype) at `step`."""
    if not self._enabled:
      return
    values = {}
    for name, value in scalars.items():
      array = np.asarray(jax.device_get(value))
      if array.size != 1:
        raise ValueError(f'write_scalars: {name!r} has shape {array.shape}, not a scalar')
      values[name] = float(array.reshape(()))
    summary = b''.join(_field(1, _BYTES, _field(1, _BYTES, name) + _field(2, _FIXED32, value))
                       for name, value in values.items())
    self._write_event(_event(int(step), summary=summary))
    self._jsonl.write(json.dumps({'step': int(step), **values}) + '\n')
    self._jsonl.flush()

  def write_text(self, step: int, name: str, text: str) -> None:
    """Logs text (e.g. the config) that TensorBoard's Text tab shows as markdown."""
    if self._enabled:
      self._write_event(_event(int(step), summary=_field(1, _BYTES, _text_value(name, text))))

  def flush(self) -> None:
    for file in (self._events, self._jsonl):
      if file is not None:
        file.flush()

  def close(self) -> None:
    for file in (self._events, self._jsonl):
      if file is not None:
        file.close()
    self._events = self._jsonl = None

  def __enter__(self) -> MetricWriter:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, minutes = seconds // 3600, seconds // 60 % 60
  if hours:
    return f'{hours}h{minutes:02d}m'
  return f'{minutes}m{seconds % 60:02d}s' if minutes else f'{seconds}s'


class Progress:
  """Logs a progress line at most every `every_s` seconds (and at the end): step/total, rate, ETA.

  Speed and ETA come from the steps since the previous line (the first line: since this
  object was made), so they count only steps this process ran and a resumed run's
  numbers are not skewed by the steps done before it started.
  """

  def __init__(self, total_steps: int, *, examples_per_step: int, every_s: float = 30.0,
               start_step: int = 0, name: str = 'train', unit: str = 'examples',
               log_fn: Callable[..., None] = logging.info,
               clock: Callable[[], float] = time.monotonic):
    self._total, self._examples_per_step = total_steps, examples_per_step
    self._every_s, self._name, self._log_fn, self._clock = every_s, name, log_fn, clock
    self._unit = unit  # What a step's `examples_per_step` count: examples, candidates, ...
    self._start_time = self._last_time = clock()
    self._last_step = start_step

  def update(self, step: int) -> str | None:
    """Logs and returns the line when one is due, else returns None."""
    now = self._clock()
    done = step >= self._total
    if not done and now - self._last_time < self._every_s:
      return None
    steps, seconds = step - self._last_step, now - self._last_time
    rate = steps / seconds if steps > 0 and seconds > 0 else None
    line = f'{self._name}: step {step}/{self._total} ({100 * step / max(self._total, 1):.1f}%)'
    if rate is not None:
      line += f', {rate * self._examples_per_step:.1f} {self._unit}/s'
    if done:
      line += f', done in {_duration(now - self._start_time)}'
    elif rate is not None:
      line += f', ETA {_duration((self._total - step) / rate)}'
    self._last_time, self._last_step = now, step
    self._log_fn('%s', line)
    return line
