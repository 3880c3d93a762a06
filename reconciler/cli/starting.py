"""Ctrl-C while ``python -m reconciler.cli`` starts: "Interrupted.", exit 130, no traceback.

The interpreter imports the package ``reconciler.cli`` - the whole command line, ~0.5 s -
before the package's ``__main__`` runs, so a Ctrl-C then cannot be caught there. The package
imports this module first; while the interpreter is still locating the module (``argv[0]`` is
"-m") it answers SIGINT as the console script's entry (``reconciler.launch``) does while it
imports: nothing is written yet. ``__main__`` restores Python's handler (``restore``) before
the command runs, which then ends a Ctrl-C itself (``failures``). Anywhere else (tests, a
library user, the console script) importing this module changes nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    os.write(2, b"Interrupted.\n")
    os._exit(130)


def _started_as_python_m() -> bool:
    args = sys.orig_argv
    return sys.argv[:1] == ["-m"] and any(
        flag == "-m" and name == "reconciler.cli" for flag, name in zip(args, args[1:])
    )


def restore() -> None:
    """Python's own Ctrl-C (KeyboardInterrupt) again, if this module replaced it."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if _started_as_python_m() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted)
