"""The in-memory lockfile of one run, committed to disk after every action.

``StateStore`` is what the apply executor's callback talks to: it holds the current
``Lockfile``, applies an edit and makes the result durable, one edit at a time. It does
not lock against other processes (hold an ``ApplyLock`` for that) and does not decide what to
record (the engine does).

A small lockfile is rewritten whole at every commit (atomic replace). Once the file is larger
than ``journal_above`` bytes (256 KiB by default, about 500 resources; the environment
variable ``RECONCILER_JOURNAL_ABOVE`` overrides it), a commit appends only what changed to
``PATH.journal`` (``journalfile.py``) and ``close()`` rewrites the lockfile once at the end
(also whenever the journal outgrows the lockfile): a commit costs O(the changed resources)
instead of O(all state). Every commit that changes entries also appends a history record to
``PATH.history`` (``history.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.state.backend import EditedState
from reconciler.state.delta import Delta
from reconciler.state.history import RunInfo, append_history, history_path, record_for
from reconciler.state.journalfile import append_record, journal_path, replay_journal
from reconciler.state.lockfile import (
    FileStamp,
    LockfileEncoder,
    LockfileWriteError,
    check_on_disk,
    check_project,
    read_stamped,
    remove_stale_temp_files,
    write_bytes_atomic,
)
from reconciler.state.model import Lockfile

#: lockfiles larger than this (bytes) are journaled instead of rewritten at every commit
JOURNAL_ABOVE = 256 * 1024


def journal_threshold() -> int:
    """``JOURNAL_ABOVE``, or ``RECONCILER_JOURNAL_ABOVE`` when set to a number of bytes."""
    value = os.environ.get("RECONCILER_JOURNAL_ABOVE", "").strip()
    try:
        return max(0, int(value)) if value else JOURNAL_ABOVE
    except ValueError:
        return JOURNAL_ABOVE


class StateStore(EditedState):
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

    def __init__(
        self,
        path: str | os.PathLike[str],
        project: str = "default",
        *,
        run: RunInfo | None = None,
        journal_above: int | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.project = project
        self.run = run or RunInfo()
        self.journal_above = journal_threshold() if journal_above is None else journal_above
        #: bytes this store wrote to the lockfile and its journal (for ``bench/``)
        self.bytes_written = 0
        self._encoder = LockfileEncoder()
        self._stamp: FileStamp | None = None
        self._on_file: Lockfile | None = None  # the lockfile file as last read or written
        self._size = 0  # its size in bytes
        self._journal_bytes = 0  # bytes in the journal beside it

    @property
    def name(self) -> str:
        """The lockfile's path, for messages."""
        return str(self.path)

    def load(self) -> Lockfile:
        """(Re)read the lockfile from disk; a missing file gives a new, empty lockfile.

        Also sweeps temp files that writes killed more than an hour ago left behind.

        Raises:
            LockfileError: the file is unreadable or newer (see ``read_lockfile``), or belongs
                to another project.
        """
        with self._mutex:
            on_file, stamp = read_stamped(self.path, project=self.project)
            check_project(on_file, self.path, self.project)
            lockfile = replay_journal(self.path, on_file)
            remove_stale_temp_files(self.path)
            self._current, self._stamp, self._on_file = lockfile, stamp, on_file
            self._size = stamp[2] if stamp is not None else 0
            try:
                self._journal_bytes = journal_path(self.path).stat().st_size
            except OSError:
                self._journal_bytes = 0
            return lockfile

    def _write_delta(self, current: Lockfile, written: Lockfile, delta: Delta) -> Lockfile:
        """Append ``delta`` to the journal, or (small lockfile, long journal, first write)
        write the whole lockfile atomically; then the history.

        Raises:
            LockfileError: the file on disk changed behind this store or is unreadable;
                nothing was written and the current lockfile is unchanged.
        """
        # a lockfile never written has its lineage and salt in memory only: the first
        # write creates the file, whatever its size
        if self._stamp is not None and self._size >= self.journal_above:
            self._check_file()
            try:
                size = append_record(
                    journal_path(self.path), written.lineage, written.serial, delta
                )
            except OSError as exc:
                raise LockfileWriteError(
                    self.path, exc, doing="append to the journal of the lockfile"
                ) from exc
            self._journal_bytes += size
            self.bytes_written += size
            self._current = written
            if self._journal_bytes > max(self.journal_above, self._size):
                self._write_whole(written)
        else:
            self._write_whole(written)
            self._current = written
        record = record_for(current, delta, written.serial, self.run)
        if record is not None:
            try:
                append_history(history_path(self.path), [record])
            except OSError:
                pass  # the history is an audit log: a full disk must not fail the apply
        return written

    def close(self) -> None:
        """Fold the journal into the lockfile (one atomic rewrite), if there is one."""
        with self._mutex:
            current = self._current
            if current is not None and self._journal_bytes:
                self._write_whole(current)

    def _check_file(self) -> None:
        """Refuse to go on when the lockfile file changed behind this store."""
        assert self._on_file is not None
        check_on_disk(self.path, self._on_file, self._stamp)

    def _write_whole(self, lockfile: Lockfile) -> None:
        """Replace the lockfile file by ``lockfile`` (exactly) and drop the journal."""
        self._check_file()
        data = self._encoder.encode(lockfile).encode("utf-8")
        try:
            stamp = write_bytes_atomic(self.path, data)
        except OSError as exc:
            raise LockfileWriteError(self.path, exc) from exc
        self.bytes_written += len(data)
        self._stamp, self._on_file, self._size = stamp, lockfile, len(data)
        if self._journal_bytes:
            try:
                os.unlink(journal_path(self.path))
            except FileNotFoundError:
                pass
            self._journal_bytes = 0
