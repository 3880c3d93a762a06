"""The one state interface: what the application asks of a state backend.

``StateStore`` (the lockfile: one JSON file, atomic replace) implements it; a PostgreSQL
backend will implement it too. ``Journal`` (``journal.py``) groups an apply's edits over it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from reconciler.state.model import Lockfile

#: an edit of the state: the new lockfile made from the current one (pure)
Edit = Callable[[Lockfile], Lockfile]


class StateBackend(Protocol):
    """The state of one project: loaded once, then changed by atomic, durable edits."""

    @property
    def lockfile(self) -> Lockfile:
        """The state as last loaded or committed."""
        ...

    def load(self) -> Lockfile:
        """Read the state (an empty one when there is none yet)."""
        ...

    def commit(self, edit: Edit) -> Lockfile:
        """Apply ``edit`` and make the result durable before returning it (thread-safe).

        Raises:
            LockfileWriteError: the state could not be written; it is unchanged.
        """
        ...
