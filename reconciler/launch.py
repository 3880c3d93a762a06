"""``run()``: the ``reconciler`` command's process entry (the console script, ``python -m reconciler``).

It owns the whole process, so it may trim what a library must not: before the command line is
imported it stops three optional imports nothing in the command uses, ~0.1 s of CPU per run
(``bench/RESULTS.md``, start-up) and ~1.7 MiB of an embedded plan's peak (plan memory):

* ``trio``: httpcore imports it whenever it is installed, to support trio event loops; the
  reconciler runs on asyncio only. (httpcore serves only when proxy variables are set: the
  client's own transport, ``provider.asyncio_transport``, does not use it.)
* ``httpx._main``: httpx imports its own command line (pygments and more) on import.
* ``pydantic.v1``: FastAPI imports pydantic's copy of its first major version (23 modules)
  when the embedded provider's routes are built, only to ask whether a parameter is such a
  model; none is (the reconciler's models are pydantic 2), and FastAPI reads the failed
  import as "no pydantic.v1".

and it turns pydantic's plugins off (``PYDANTIC_DISABLE_PLUGINS``, unless it is set already:
set it empty to keep them): pydantic looks for them in the entry points of every installed
distribution when the first model is built (~8 ms with 160 distributions); the command
uses none, and it starts no other process that would inherit the setting.

It keeps the cyclic garbage collector off while the command's modules are imported, then
freezes what they made (``gc.freeze``): ~100,000 modules, classes and functions that live as
long as the process, which the collector's first passes would otherwise walk twice (~15 ms
of start-up). It freezes the heap again once the command is done, and ends the process
without tearing it down (``_exit_now``): the ``atexit`` handlers, the flushes and the exit
code are as usual. ``reconciler.cli.main``, as used by tests through click's runner, is
unchanged.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import types
from typing import NoReturn


def _trim_imports() -> None:
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]  # "import trio" then fails
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]  # likewise
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if "httpx" not in sys.modules:
        stub = types.ModuleType("httpx._main")

        def main(*_args: object, **_kwargs: object) -> None:
            raise SystemExit("httpx's command line is not available in reconciler's process")

        stub.main = main  # type: ignore[attr-defined]
        sys.modules.setdefault("httpx._main", stub)


def run() -> None:
    """Run ``reconciler`` with ``sys.argv``."""
    _trim_imports()
    enabled = gc.isenabled()
    gc.disable()
    try:
        from reconciler.cli import main
    except KeyboardInterrupt:  # Ctrl-C while the command starts: as a Ctrl-C later ends it
        print("Interrupted.", file=sys.stderr)
        _exit_now(130)
    finally:
        gc.freeze()  # the modules stay for good: no collection needs to walk them
        if enabled:
            gc.enable()
    status = 0
    try:
        main(prog_name="reconciler")
    except SystemExit as stop:
        status = _exit_status(stop.code)
    finally:
        # The process ends now: what it holds goes with it (any other exception ends it
        # the usual way, traceback and all).
        gc.freeze()
    _exit_now(status)


def _exit_status(code: object) -> int:
    """The status ``SystemExit(code)`` ends a process with; a message is printed first."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _exit_now(status: int) -> NoReturn:
    """End the process as the interpreter would, without freeing its objects one by one.

    An interpreter's exit runs the ``atexit`` handlers (logging's flush among them), flushes
    stdout and stderr, then tears down every module and object the command made: ~10 ms
    after an apply of 1,100 creates, for nothing, since the process's memory goes with it.
    Everything the command writes is closed and flushed by then (files by ``with``, the
    state and its lock by their context managers, the event loop's threads by
    ``asyncio.run``); the heartbeat threads are daemons. So the handlers run and the streams
    are flushed here, as at any exit (a flush that fails, the reader gone, turns success
    into the status 120 Python gives it), and ``os._exit`` ends the process.
    """
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            if stream is None:  # closed when the process started (``>&-``): nothing to flush
                continue
            try:
                stream.flush()
            except (OSError, ValueError):
                status = status or 120
        os._exit(status)


if __name__ == "__main__":
    run()
