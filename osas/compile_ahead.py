"""Compiling programs on background threads, while the caller compiles or runs others."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Sequence

import jax


def abstract(tree: Any) -> Any:
  """Shapes, dtypes and shardings of arrays (numpy arrays stay as they are).

  Taken on the calling thread: the arrays themselves may be donated before a background
  compile reads them.
  """
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(
          x.shape, x.dtype, sharding=x.sharding, weak_type=jax.typeof(x).weak_type
      )
      if isinstance(x, jax.Array)
      else x,
      tree,
  )


def start(fn: Callable[[], Any]) -> concurrent.futures.Future:
  """Runs fn on a new thread; the future holds its result or its error.

  Not a daemon: a run that stops early (preemption, an error) waits at exit for a compile
  still running, where killing the thread inside XLA could abort the process.
  """
  future = concurrent.futures.Future()

  def run():
    try:
      future.set_result(fn())
    except BaseException as e:  # Re-raised where the caller asks for the result.
      future.set_exception(e)

  threading.Thread(target=run, name='osas-compile-ahead').start()
  return future


def compile_now(jitted: Any, *args: Any) -> Any:
  """`jitted.lower(*args).compile()`: the compiled program, kept in jitted's cache too.

  A function jitted with explicit `in_shardings` keeps what this compiles, so its later
  call with arguments of the same shapes, dtypes and shardings (`args` may be specs)
  runs without compiling again.
  """
  return jitted.lower(*abstract(args)).compile()


def compile_later(jitted: Any, *args: Any) -> concurrent.futures.Future:
  """Starts `compile_now(jitted, *args)` on a thread; the future's result is the program.

  XLA:CPU compiles one program on one core: on a 2-core CPU a program compiled beside
  another compile, or beside training, costs little wall time.
  """
  args = abstract(args)
  return start(lambda: compile_now(jitted, *args))


def all_of(fns: Sequence[Callable[[], Any]]) -> list[Any]:
  """[fn() for fn in fns], each but the first on its own thread; the first raised error."""
  futures = [start(fn) for fn in fns[1:]]
  first = [fns[0]()] if fns else []
  return first + [f.result() for f in futures]
