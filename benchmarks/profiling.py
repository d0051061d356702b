"""Per-HLO-op time of a compiled program from a `jax.profiler` trace, grouped for reading.

XLA:CPU records one trace event per executed thunk, named after its HLO instruction. Each
event's self time (its duration less that of the events nested in it, e.g. a while loop's
body) is attributed to the instruction, then to three groups: the HLO opcode (with the
fusion's kind), the JAX primitive that produced it and the supernet module it belongs to
(from the instruction's `op_name` metadata). Times are summed over threads, so they are
thread-seconds, not wall seconds.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import tempfile
from typing import Any, Callable

import jax

_INSTRUCTION = re.compile(r'^\s*(?:ROOT\s+)?%?([\w.\-]+) = .*?\s([a-z][\w\-]*)\(')
_KIND = re.compile(r'kind=(k\w+)')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
# Modules worth naming in a supernet's op_name paths, most specific first.
_MODULES = re.compile(
    r'(op_[a-z0-9_]+|input_\d+|reduce_\d+|stem|head_bn|classifier|shortcut|'
    r'optax|l2|cross_entropy|sampler|masks)'
)


def hlo_instructions(hlo_text: str) -> dict[str, tuple[str, str]]:
  """Instruction name -> (opcode[:fusion kind], op_name metadata) of a compiled HLO module."""
  table = {}
  for line in hlo_text.splitlines():
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, opcode = match.groups()
    kind = _KIND.search(line)
    if opcode == 'fusion' and kind:
      opcode = f'fusion:{kind.group(1)}'
    op_name = _OP_NAME.search(line)
    table[name] = (opcode, op_name.group(1) if op_name else '')
  return table


def _self_times(events: list[dict[str, Any]]) -> collections.Counter:
  """Per event name: summed duration less that of the events nested inside it (same thread)."""
  totals: collections.Counter = collections.Counter()
  by_thread = collections.defaultdict(list)
  for e in events:
    by_thread[(e['pid'], e['tid'])].append(e)
  for thread in by_thread.values():
    thread.sort(key=lambda e: (e['ts'], -e['dur']))
    open_events: list[tuple[float, str]] = []  # (end, name) of enclosing events.
    for e in thread:
      while open_events and open_events[-1][0] <= e['ts']:
        open_events.pop()
      if open_events:
        totals[open_events[-1][1]] -= e['dur']
      totals[e['name']] += e['dur']
      open_events.append((e['ts'] + e['dur'], e['name']))
  return totals


def trace_self_times(fn: Callable[[], Any], calls: int) -> collections.Counter:
  """Self microseconds per trace event name over `calls` calls of fn (already compiled)."""
  with tempfile.TemporaryDirectory() as logdir:
    with jax.profiler.trace(logdir, create_perfetto_trace=True):
      for _ in range(calls):
        jax.block_until_ready(fn())
    (path,) = glob.glob(os.path.join(logdir, '**', 'perfetto_trace.json.gz'), recursive=True)
    with gzip.open(path) as f:
      trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  return _self_times([e for e in events if e.get('ph') == 'X' and 'dur' in e])


def _primitive(op_name: str) -> str:
  """The JAX primitive at the end of an op_name path, transforms stripped."""
  last = op_name.rsplit('/', 1)[-1] if op_name else '(none)'
  return re.sub(r'\[.*', '', last) or '(none)'


def _module(op_name: str) -> str:
  """The innermost supernet module named in an op_name path ('other' if none)."""
  found = _MODULES.findall(op_name)
  if not found:
    return 'other'
  name = found[-1]
  return re.sub(r'_\d+$', '', name) if name.startswith(('input_', 'reduce_')) else name


def breakdown(
    compiled, fn: Callable[[], Any], calls: int = 3
) -> dict[str, list[tuple[str, float]]]:
  """Seconds per call of the program's HLO ops, grouped by opcode, primitive and module.

  `compiled` is the jax `Compiled` that fn runs; trace events that are not its
  instructions (the runtime's own) are left out.
  """
  table = hlo_instructions(compiled.as_text())
  groups = {
      'opcode': collections.Counter(),
      'primitive': collections.Counter(),
      'module': collections.Counter(),
  }
  for name, micros in trace_self_times(fn, calls).items():
    if name not in table or micros <= 0:
      continue
    opcode, op_name = table[name]
    seconds = micros / 1e6 / calls
    groups['opcode'][opcode] += seconds
    groups['primitive'][_primitive(op_name)] += seconds
    groups['module'][_module(op_name)] += seconds
  return {k: v.most_common() for k, v in groups.items()}


def print_breakdown(title: str, groups: dict[str, list[tuple[str, float]]], top: int = 12) -> None:
  """Markdown tables of the largest entries of each group, with shares of the total."""
  for group, rows in groups.items():
    total = sum(s for _, s in rows) or 1.0
    print(f'\n{title}, by {group} (thread-seconds per call; total {total:.3f})\n')
    print(f'| {group} | s | share |')
    print('|---|---:|---:|')
    for name, seconds in rows[:top]:
      print(f'| {name} | {seconds:.3f} | {seconds / total:.0%} |')
