"""``run()``: the ``reconciler`` command's process entry (console script and ``python -m``).

It owns the whole process, so it may trim what a library must not: before the command line is
imported it stops two optional imports nothing in the command uses, ~0.1 s of CPU per run
(``bench/RESULTS.md``, start-up):

* ``trio``: httpcore imports it whenever it is installed, to support trio event loops; the
  reconciler runs on asyncio only. (httpcore serves only when proxy variables are set: the
  client's own transport, ``provider.asyncio_transport``, does not use it.)
* ``httpx._main``: httpx imports its own command line (pygments and more) on import.

It keeps the cyclic garbage collector off while the command's modules are imported, then
freezes what they made (``gc.freeze``): ~100,000 modules, classes and functions that live as
long as the process, which the collector's first passes would otherwise walk twice (~15 ms
of start-up). It freezes the heap again once the command is done: the interpreter's last
collections at exit then skip what the command left (an apply of 1,100 creates: ~50 ms
less between its last request and the process's end). Shutdown is otherwise as usual:
``atexit`` handlers, flushes, the exit code. ``reconciler.cli.main``, as used by tests
through click's runner, is unchanged.
"""

from __future__ import annotations

import gc
import sys
import types


def _trim_imports() -> None:
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]  # "import trio" then fails
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
    finally:
        gc.freeze()  # the modules stay for good: no collection needs to walk them
        if enabled:
            gc.enable()
    try:
        main(prog_name="reconciler")
    finally:
        # The process ends now: what it holds goes with it. Everything it writes is closed
        # and flushed by then (files by ``with``, streams and logging at exit as usual).
        gc.freeze()


if __name__ == "__main__":
    run()
