"""The in-memory lockfile of one run, committed to disk after every action.

``StateStore`` is what the apply executor's callback talks to: it holds the current
``Lockfile``, applies an edit and writes the result atomically, one edit at a time. It does
not lock against other processes (hold an ``ApplyLock`` for that) and does not decide what to
record (the engine does).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from reconciler.errors import LockfileError
from reconciler.state.lockfile import (
    FileStamp,
    LockfileEncoder,
    check_project,
    read_stamped,
    remove_stale_temp_files,
    write_checked,
)
from reconciler.state.model import Lockfile


class StateStore:
    """The lockfile at ``path``, loaded once and committed after every change.

    Example::

        store = StateStore("state/reconciler.lock", project="default")
        store.load()
        store.commit(lambda lf: lf.with_pending("agent.coder", intent))
        ...  # send the create
        store.commit(lambda lf: lf.with_entry("agent.coder", entry).without_pending("agent.coder"))

    ``commit`` is synchronous, thread-safe and takes a few milliseconds (one fsync), so it
    may be called from asyncio code directly.
    """

    def __init__(self, path: str | os.PathLike[str], project: str = "default") -> None:
        self.path = Path(path)
        self.project = project
        self._mutex = threading.Lock()
        self._encoder = LockfileEncoder()
        self._current: Lockfile | None = None
        self._stamp: FileStamp | None = None

    def load(self) -> Lockfile:
        """(Re)read the lockfile from disk; a missing file gives a new, empty lockfile.

        Also sweeps temp files that writes killed more than an hour ago left behind.

        Raises:
            LockfileError: the file is unreadable or newer (see ``read_lockfile``), or belongs
                to another project.
        """
        with self._mutex:
            lockfile, stamp = read_stamped(self.path, project=self.project)
            check_project(lockfile, self.path, self.project)
            remove_stale_temp_files(self.path)
            self._current, self._stamp = lockfile, stamp
            return lockfile

    @property
    def lockfile(self) -> Lockfile:
        """The current lockfile (loaded on first use)."""
        current = self._current
        if current is None:
            return self.load()
        return current

    def commit(self, edit: Callable[[Lockfile], Lockfile]) -> Lockfile:
        """Apply ``edit`` to the current lockfile and write the result atomically.

        Args:
            edit: a pure function from the current lockfile to the new one, e.g.
                ``lambda lf: lf.without("agent.old")``. Returning the very same object
                writes nothing.

        Returns:
            The lockfile as written (serial increased by one), now the current one.

        Raises:
            LockfileError: the file on disk changed behind this store, is unreadable, or
                ``edit`` returned a lockfile of another lineage. Nothing was written and the
                current lockfile is unchanged.
            Exception: whatever ``edit`` raised; nothing was written.
        """
        if self._current is None:
            self.load()
        with self._mutex:
            current = self._current
            assert current is not None
            updated = edit(current)
            if updated is current:
                return current
            if not isinstance(updated, Lockfile):
                raise TypeError(f"commit edit must return a Lockfile, got {type(updated).__name__}")
            if (updated.lineage, updated.serial) != (current.lineage, current.serial):
                raise LockfileError(
                    f"{self.path}: a commit must edit the current lockfile (lineage "
                    f"{current.lineage} serial {current.serial}), not another one"
                )
            written, stamp = write_checked(
                self.path, updated, encoder=self._encoder, expected=self._stamp
            )
            self._current, self._stamp = written, stamp
            return written
