"""Where the state lives: the one interface the application uses, and its two implementations.

``open_location(backend, lockfile, project)`` returns a ``StateLocation``: the lockfile at
``lockfile`` when ``backend`` is None (the default, unchanged behaviour), or the PostgreSQL
database that ``backend`` names (``postgresql://...`` or libpq ``key=value`` words). The
application asks it for what every command needs, never knowing which one it has:

    name          how messages name it (a path, or the database without its password)
    exists()      whether any state was ever written
    read()        the state as a ``Lockfile`` (read-only use: plan, drift, run, state list)
    new_lock()    the apply lock (``ApplyLock``) or lease (``PgLease``), not yet acquired
    store(lock, run)  the ``StateBackend`` an apply commits to, fenced by ``lock``
    unlock(id)    ``reconciler unlock ID``
    history(addr) the records of ``state history``
    replace(lockfile, history, force)  ``state migrate``'s target side
    mark_migrated(lockfile, moved)     ``state migrate``'s source side, moved to another
                                       backend: every command refuses it from then on
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from reconciler.errors import LockfileError
from reconciler.state.backend import StateBackend
from reconciler.state.history import (
    HistoryRecord,
    RunInfo,
    history_path,
    read_history,
    select,
)
from reconciler.state.journalfile import journal_path
from reconciler.state.lock import (
    GUARD_SUFFIX,
    ApplyLock,
    LockInfo,
    lock_path,
    read_lock,
    running_lock,
    unlock,
)
from reconciler.state.lockfile import (
    LockfileEncoder,
    LockfileWriteError,
    MigratedLockfile,
    backup_path,
    check_project,
    read_lockfile,
    write_bytes_atomic,
)
from reconciler.state.model import Lockfile, MigratedTo, check_moved_back
from reconciler.state.store import StateStore


class StateLock(Protocol):
    """The apply lock or lease: one writer per state at a time."""

    @property
    def info(self) -> LockInfo | None: ...

    @property
    def held(self) -> bool: ...

    def acquire(self, operation: str = "apply") -> LockInfo: ...

    def ensure_held(self) -> None: ...

    def release(self) -> None: ...


class ClosableBackend(StateBackend, Protocol):
    """A ``StateBackend`` a run opens and closes, stamping its writes' history with ``run``."""

    run: RunInfo

    @property
    def name(self) -> str: ...

    def close(self) -> None: ...


class StateLocation(Protocol):
    """A state backend as the application sees it (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def project(self) -> str: ...

    def exists(self) -> bool: ...

    def read(self) -> Lockfile: ...

    def new_lock(self) -> StateLock: ...

    def store(self, lock: StateLock | None, run: RunInfo) -> ClosableBackend: ...

    def read_lock(self) -> LockInfo | None: ...

    def running_lock(self) -> LockInfo | None:
        """The lock's holder while it is alive (a stale or expired lock is None)."""
        ...

    def unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        """Remove the lock ``lock_id``; one whose holder may be alive only with ``force``."""
        ...

    def history(self, address: str | None = None) -> list[HistoryRecord]: ...

    def replace(self, lockfile: Lockfile, history: Sequence[HistoryRecord], *, force: bool) -> bool:
        """Make ``lockfile`` the state here; False when it already was (the same lineage and
        serial: a migration stopped before it marked its source), nothing written."""
        ...

    def mark_migrated(self, lockfile: Lockfile, moved: MigratedTo) -> None: ...

    def moved_history(self, address: str | None = None) -> list[HistoryRecord]: ...

    def close(self) -> None: ...


def is_empty(lockfile: Lockfile) -> bool:
    """True when the state holds no entry and no pending intent."""
    return not lockfile.resources and not lockfile.pending


def real_lockfile(path: str | os.PathLike[str]) -> Path:
    """The file a lockfile path names: ``path``, or where it points when it is a symbolic
    link (one lockfile shared by several checkouts). Its lock, journal, history and backup
    live beside that file, and writes replace that file, never the link."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def kept_beside(path: str | os.PathLike[str]) -> tuple[Path, ...]:
    """The files the lockfile at ``path`` keeps beside it: its apply lock and the lock's
    guard, its journal, history and backup."""
    real = real_lockfile(path)
    guard = real.with_name(real.name + GUARD_SUFFIX)
    return (lock_path(real), guard, journal_path(real), history_path(real), backup_path(real))


class FileLocation:
    """The lockfile at ``path`` (the default backend)."""

    def __init__(self, path: str | os.PathLike[str], project: str) -> None:
        self.path = Path(path)
        self._project = project
        self._real = real_lockfile(self.path)  # what is read, locked and written

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def project(self) -> str:
        return self._project

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> Lockfile:
        lockfile = read_lockfile(self._real, project=self._project)
        check_project(lockfile, self._real, self._project)
        return lockfile

    def new_lock(self) -> ApplyLock:
        return ApplyLock(self._real)

    def store(self, lock: StateLock | None, run: RunInfo) -> StateStore:
        return StateStore(self._real, project=self._project, run=run)

    def read_lock(self) -> LockInfo | None:
        return read_lock(self._real)

    def running_lock(self) -> LockInfo | None:
        return running_lock(self._real)

    def unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        return unlock(self._real, lock_id, force=force)

    def history(self, address: str | None = None) -> list[HistoryRecord]:
        if self._real.exists():
            self.read()  # another project's lockfile is refused, its history with it
        return select(read_history(history_path(self._real)), address)

    def moved_history(self, address: str | None = None) -> list[HistoryRecord]:
        """``history`` even of a lockfile ``state migrate`` moved into a database (for
        ``state migrate --force``, which copies it all the same)."""
        return select(read_history(history_path(self._real)), address)

    def replace(self, lockfile: Lockfile, history: Sequence[HistoryRecord], *, force: bool) -> bool:
        """Write ``lockfile`` exactly (lineage and serial kept) and its history (the caller
        holds the apply lock). Without ``force``, a lockfile that already holds this lineage
        and serial (a migration killed before it marked its source) is left as it is: False.

        Raises:
            LockfileError: the lockfile holds entries and ``force`` is False.
        """
        if self._real.exists() and not force:
            try:
                current = self.read()
            except MigratedLockfile as gone:  # a move's marker: the way back replaces it
                assert gone.lockfile.migrated_to is not None
                check_moved_back(
                    self.name, gone.lockfile.lineage, gone.lockfile.migrated_to, lockfile.lineage
                )
                current = Lockfile()
            if (
                not is_empty(current)
                and current.lineage == lockfile.lineage
                and current.serial == lockfile.serial
            ):
                return False
            if not is_empty(current):
                raise LockfileError(
                    f"{self.path} already holds {len(current.resources)} entries "
                    f"(lineage {current.lineage} serial {current.serial}), and the state "
                    f"copied has serial {lockfile.serial}; refusing to overwrite it; pass "
                    "--force to replace it"
                )
        moved = lockfile.model_copy(update={"project": self._project})
        try:
            write_bytes_atomic(self._real, LockfileEncoder().encode(moved).encode("utf-8"))
            journal = journal_path(self._real)
            if journal.exists():
                journal.unlink()
            text = "".join(r.model_dump_json() + "\n" for r in history)
            hist = history_path(self._real)
            if text or hist.exists():
                write_bytes_atomic(hist, text.encode("utf-8"))
        except OSError as exc:
            raise LockfileWriteError(self.path, exc) from exc
        return True

    def mark_migrated(self, lockfile: Lockfile, moved: MigratedTo) -> None:
        """Mark the lockfile as moved (``moved``): it keeps ``lockfile`` as it was, and every
        command refuses it naming where the state went (the caller holds the apply lock)."""
        marked = lockfile.model_copy(update={"migrated_to": moved})
        try:
            write_bytes_atomic(self._real, LockfileEncoder().encode(marked).encode("utf-8"))
            journal = journal_path(self._real)
            if journal.exists():  # its writes are in ``lockfile`` already
                journal.unlink()
        except OSError as exc:
            raise LockfileWriteError(self.path, exc) from exc

    def close(self) -> None:
        pass


def is_database(backend: str) -> bool:
    """True when ``backend`` names a PostgreSQL database (else it is a lockfile path)."""
    from reconciler.state.postgres.conninfo import is_database_url

    return is_database_url(backend)


def open_location(
    backend: str | None, lockfile: str | os.PathLike[str], project: str
) -> StateLocation:
    """The state named by ``--backend`` (a database) or else ``--lockfile`` (a file).

    Raises:
        LockfileError: ``backend`` is set but names no PostgreSQL database.
    """
    if not backend:
        return FileLocation(lockfile, project)
    if not is_database(backend):
        raise LockfileError(
            "--backend (RECONCILER_BACKEND) takes a PostgreSQL connection string "
            "(postgresql://USER@HOST:PORT/DBNAME, or libpq's key=value words); leave it "
            "unset to keep the state in the lockfile (--lockfile)"
        )
    from reconciler.state.postgres.location import PgLocation

    return PgLocation(backend, project)
