"""``state`` and ``unlock``: inspect and edit the lockfile (never the provider).

The lockfile's own operations live in ``reconciler.state``; this module is the use case's
entry for the command line, which imports nothing below the application layer.
"""

from __future__ import annotations

from reconciler.state import (
    ApplyLock,
    Lockfile,
    StateStore,
    list_entries,
    move_entry,
    read_project_lockfile,
    show_entry,
    unlock,
)

__all__ = [
    "ApplyLock",
    "Lockfile",
    "StateStore",
    "list_entries",
    "move_entry",
    "read_project_lockfile",
    "show_entry",
    "unlock",
]
