"""The one state interface: what the application asks of a state backend.

``StateStore`` (the lockfile: one JSON file, atomic replace) implements it; a PostgreSQL
backend will implement it too. ``Journal`` (``journal.py``) groups an apply's edits over it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

from reconciler.state.delta import Delta, diff, next_state
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


class EditedState(ABC):
    """What both backends share: the current state kept in memory, and ``commit`` as
    load if needed -> edit -> diff under a mutex, the backend writing only the delta."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._current: Lockfile | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """The state's location, for messages."""

    @abstractmethod
    def load(self) -> Lockfile:
        """Read the state (an empty one when there is none yet)."""

    @property
    def lockfile(self) -> Lockfile:
        """The current state (loaded on first use)."""
        current = self._current
        return self.load() if current is None else current

    def commit(self, edit: Edit) -> Lockfile:
        """Apply ``edit`` to the current state and write what it changed (thread-safe).

        Args:
            edit: a pure function from the current state to the new one, e.g.
                ``lambda lf: lf.without("agent.old")``.

        Returns:
            The state as written (serial increased by one), now the current one; the
            current one itself when ``edit`` returned it unchanged (nothing is written).

        Raises:
            LockfileError: the write failed or ``edit`` returned another state (another
                lineage); nothing was written and the current state is unchanged.
            Exception: whatever ``edit`` raised; nothing was written.
        """
        if self._current is None:
            self.load()
        with self._mutex:
            current = self._current
            assert current is not None
            written = next_state(current, edit(current), self.name)
            if written is None:
                return current
            return self._write_delta(current, written, diff(current, written))

    @abstractmethod
    def _write_delta(self, current: Lockfile, written: Lockfile, delta: Delta) -> Lockfile:
        """Make ``written`` (``current`` changed by ``delta``) durable and current (the
        mutex is held); the state as written."""
