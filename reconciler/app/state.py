"""``state`` and ``unlock``: inspect, edit and move the state (never the provider).

The state's own operations live in ``reconciler.state``; this module is the use cases' entry
for the command line, which imports nothing below the application layer. Every function takes
the ``Settings``, so it works the same on the lockfile and on a PostgreSQL ``--backend``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.app.workspace import (
    Settings,
    locked_state,
    read_state,
    state_exists,
    state_location,
)
from reconciler.errors import LockfileError, LockHeld, ReconcilerError
from reconciler.kinds import DEFAULT_LOCKFILE, Address
from reconciler.manifest import load_manifests
from reconciler.provider.origin import LOCAL_PREFIX, local_origin
from reconciler.state import (
    ApplyLock,
    HistoryRecord,
    LockEntry,
    Lockfile,
    LockInfo,
    MigratedState,
    MigratedTo,
    PendingIntent,
    StateStore,
    credentials_of,
    history_path,
    is_database,
    kept_beside,
    list_entries,
    lock_path,
    move_entry,
    of_current_state,
    open_location,
    read_project_lockfile,
    real_lockfile,
    show_entry,
    unlock,
    utc_timestamp,
)

__all__ = [
    "ApplyLock",
    "HistoryRecord",
    "LockEntry",
    "Lockfile",
    "MigrateResult",
    "StateStore",
    "close_addresses",
    "declared",
    "list_entries",
    "migrate_state",
    "missing_local_history",
    "move_entry",
    "move_state_entry",
    "read_project_lockfile",
    "read_state",
    "remove_entry",
    "running_apply",
    "show_entry",
    "state_history",
    "state_snapshot",
    "unlock",
    "unlock_state",
]


def state_snapshot(settings: Settings) -> tuple[Lockfile, bool]:
    """The state and whether it was ever written (``state list``, ``state show``).

    Raises:
        LockfileError: unreadable, newer, another project's, or the database unreachable.
    """
    with state_location(settings) as location:
        lockfile = location.read()
    return lockfile, state_exists(settings, lockfile)


def running_apply(settings: Settings) -> LockInfo | None:
    """Who holds the state's lock (or lease) while it may be alive, else None: a plan made
    meanwhile may show what that run is changing right now.

    Raises:
        LockfileError: the database is unreachable.
    """
    with state_location(settings) as location:
        return location.running_lock()


def remove_entry(
    settings: Settings, address: str
) -> tuple[LockEntry | None, PendingIntent | None, list[str]]:
    """Forget ``address`` (``state rm``) under the apply lock; return the entry and the
    pending intent removed (either may be None, not both), and the addresses of a vault's
    credentials removed with it (as ``state mv`` takes them along).

    Raises:
        LockfileError: there is no state, or no entry and no intent for ``address``.
        LockHeld: an apply holds the lock.
    """
    if settings.lockfile_missing:
        raise LockfileError(f"{settings.lockfile} does not exist; there is nothing to remove")
    _check_before_lock(settings, address, lambda lf: lf.without_tree(address))
    with locked_state(settings, "state rm") as (_lock, store):
        loaded = store.load()
        _refuse_unwritten(settings, loaded, address)
        entry, intent = loaded.resources.get(address), loaded.pending.get(address)
        inside = credentials_of(loaded, address)
        store.commit(lambda lf: lf.without_tree(address))
    return entry, intent, inside


def move_state_entry(settings: Settings, old: str, new: str) -> LockEntry | None:
    """Move the entry of ``old`` to ``new`` (``state mv``) under the apply lock; return the
    entry moved.

    Raises:
        LockfileError: there is no state, ``old`` has no entry, or ``new`` is taken or of
            another kind (``move_entry``).
        LockHeld: an apply holds the lock.
    """
    if settings.lockfile_missing:
        raise LockfileError(f"{settings.lockfile} does not exist; there is nothing to move")
    _check_before_lock(settings, old, lambda lf: move_entry(lf, old, new))
    with locked_state(settings, "state mv") as (_lock, store):
        loaded = store.load()
        _refuse_unwritten(settings, loaded, old)
        entry = loaded.resources.get(old)
        store.commit(lambda lf: move_entry(lf, old, new))
    return entry


def declared(settings: Settings, address: str) -> bool | None:
    """Whether a document of the manifests declares ``address`` (a credential: as an item of
    its vault's document); None when the manifests cannot be read (``state mv`` says what
    the next plan does with the address it moved an entry to)."""
    try:
        manifests = load_manifests(settings.manifests)
    except ReconcilerError:
        return None
    return address in manifests or any(a == address for a, _, _ in manifests.credentials())


def _check_before_lock(
    settings: Settings, address: str, edit: Callable[[Lockfile], Lockfile]
) -> None:
    """Refuse an edit of a database state that cannot succeed (no state there: a wrong
    --backend or --project; no such entry) from a read, before the lease is taken: taking it
    creates the tables in whatever database --backend names. The edit is checked again
    under the lease."""
    if not settings.backend:
        return
    with state_location(settings) as location:
        lockfile = location.read()
        if not lockfile.written and location.running_lock() is not None:
            return  # a first apply runs there, nothing written yet: taking the lease names it
    _refuse_unwritten(settings, lockfile, address)
    edit(lockfile)


def _refuse_unwritten(settings: Settings, lockfile: Lockfile, address: str) -> None:
    """A state never written (under --backend: a project nothing was applied with, often a
    missing or mistyped --project) has no entry to edit: say which, as ``state show`` does,
    rather than "the lockfile has no entries"."""
    if settings.backend and not lockfile.written and not lockfile.resources:
        raise LockfileError(
            f"no entry for {address}: {settings.state_name} does not exist: no entries "
            "(nothing was applied with it yet; check --backend and --project)"
        )


def unlock_state(settings: Settings, lock_id: str, *, force: bool = False) -> LockInfo:
    """Clear the apply lock (or lease) ``lock_id`` by hand (``reconciler unlock``); one whose
    holder may still be running only with ``force``.

    Raises:
        LockfileError: nothing is locked, the lock has another id, or its holder may be
            alive and ``force`` is not given.
    """
    if settings.backend is None and not lock_path(real_lockfile(settings.lockfile)).exists():
        # said without opening the state, which would make its folder (a wrong --lockfile)
        if settings.lockfile_missing:
            # often a lease id from a CI log, run here without that job's --backend
            raise LockfileError(
                f"{settings.lockfile} does not exist, so it holds no lock: nothing was applied "
                "with it (check --lockfile). A lease in a PostgreSQL database is cleared with "
                "--backend (or RECONCILER_BACKEND) set to it"
            )
        with state_location(settings) as location:
            try:
                location.read()
            except MigratedState:  # moved (a lease id from a CI log, --backend forgotten)
                raise
            except LockfileError:
                pass
        raise LockfileError(f"{settings.lockfile} is not locked: no lock is held")
    with state_location(settings) as location:
        if settings.backend is not None and location.read_lock() is None:
            try:
                location.read()
            except MigratedState:  # moved into a lockfile: say so, not only "not locked"
                raise
            except LockfileError:
                pass
        return location.unlock(lock_id, force=force)


def state_history(settings: Settings, address: str | None = None) -> list[HistoryRecord]:
    """The history of the state, oldest first; only the records touching ``address`` when
    given (``state history [ADDR]``).

    Raises:
        LockfileError: ``address`` is not an address (``coder`` for ``agent.coder``); the
            message names the recorded addresses close to it.
    """
    with state_location(settings) as location:
        if address is not None:
            try:
                Address.parse(address)
            except ValueError:
                close = _close(address, location.read(), location.history())
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise LockfileError(
                    f"{address!r} is not an address; write it as KIND.NAME, e.g. agent.coder{hint}"
                ) from None
        return location.history(address)


def missing_local_history(settings: Settings) -> Path | None:
    """The lockfile's history file when the lockfile exists and it does not (a fresh clone:
    ``PATH.history`` is kept out of git, so it holds only the writes made in this checkout);
    None otherwise, and always with ``--backend`` (the database's history is everyone's)."""
    if settings.backend is not None or not Path(settings.lockfile).exists():
        return None
    path = history_path(real_lockfile(settings.lockfile))
    return None if path.exists() else path


def close_addresses(settings: Settings, address: str) -> list[str]:
    """The addresses in the state or its history that ``address`` may be a typo of."""
    with state_location(settings) as location:
        return _close(address, location.read(), location.history())


def _close(address: str, lockfile: Lockfile, history: list[HistoryRecord]) -> list[str]:
    known = sorted(
        (set(lockfile.resources) | {c.address for r in history for c in r.changes}) - {address}
    )
    # the same name (`coder`, `agent.Coder`, `agents.coder`) first, then near spellings
    name = address.lower().split(".")[-1]
    same = [k for k in known if k.split(".")[-1] == name]
    return same or difflib.get_close_matches(address, known, n=3, cutoff=0.8)


@dataclass(frozen=True)
class MigrateResult:
    source: str
    target: str
    lineage: str
    serial: int
    entries: int
    pending: int
    history: int
    #: the target is a PostgreSQL database (else a lockfile): what to point runs at next
    to_database: bool = False
    #: history records of states the source's replaced (a lockfile lost and healed, or
    #: restored from git), not copied to a database: they stay where they were
    history_left: int = 0
    #: where they stay (the source's history file)
    history_left_in: str = ""
    #: the source lockfile now only says where its state went (moved into a database)
    marked: bool = False
    #: the target already held this lineage and serial (a migration stopped before it
    #: marked its source): nothing was copied, the source was only marked
    already_there: bool = False


def _rebased(origin: str | None, source_dir: Path, target_dir: Path | None) -> str | None:
    """``local:../.reconciler/provider.db`` (relative to ``source_dir``) as the same file
    relative to ``target_dir`` (absolute when None: a database has no folder); any other
    origin (a URL) unchanged."""
    if origin is None or not origin.startswith(LOCAL_PREFIX):
        return origin
    return local_origin(source_dir / origin.removeprefix(LOCAL_PREFIX), target_dir)


#: the scheme of a URL (``pg://...``, ``jdbc:postgresql://...``), which no lockfile path
#: starts with
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*(?::[A-Za-z][A-Za-z0-9+.-]*)*):[\\/]{2}")


def _check_lockfile_path(to: str) -> None:
    """Refuse a ``--to`` that names no lockfile: nothing, a URL of another scheme, a folder
    (``state/``, ``.``), or a device or FIFO.

    Raises:
        LockfileError: saying to give the lockfile's path, e.g. ``state/reconciler.lock``.
    """
    if not to.strip():
        raise LockfileError(
            "state migrate --to needs a PostgreSQL connection string or a lockfile's path, "
            f"e.g. --to {DEFAULT_LOCKFILE}"
        )
    scheme = _URL_SCHEME.match(to)
    if scheme is not None:
        # a URL, but not PostgreSQL's (pg://, jdbc:postgresql://, postgresql+psycopg://):
        # never a lockfile path, and never echoed (it may hold a password)
        raise LockfileError(
            f"state migrate --to: a URL of scheme {scheme.group(1)!r} is not a PostgreSQL "
            "connection string; write it as postgresql://USER@HOST:PORT/DBNAME (or libpq's "
            "key=value words), or give a lockfile's path"
        )
    path = Path(to)
    if to.endswith(("/", os.sep)) or path.name in ("", ".", "..") or path.is_dir():
        example = Path(to.rstrip("/" + os.sep) or ".") / Path(DEFAULT_LOCKFILE).name
        raise LockfileError(
            f"state migrate --to {to}: a folder, not a lockfile; give the lockfile's path, "
            f"e.g. --to {example}"
        )
    if path.exists() and not path.is_file():
        # a device or a FIFO (/dev/null): refused before its lock is taken beside it
        raise LockfileError(
            f"state migrate --to {to}: not a regular file, so not a lockfile; give a "
            f"lockfile's path, e.g. --to {path.parent / Path(DEFAULT_LOCKFILE).name}"
        )


def migrate_state(settings: Settings, to: str, *, force: bool = False) -> MigrateResult:
    """Copy the state of ``settings`` to ``to`` (a PostgreSQL URL or a lockfile path),
    keeping its lineage, serial, salt, origin, entries, pending intents and history.
    An embedded provider's origin is relative to the lockfile's folder (for a database,
    the default lockfile's, as runners with ``--backend`` alone compute it): it is rebased
    onto the target's, so the same provider is still the same origin there.

    Both sides are locked while it runs. The source (a lockfile or a database's state,
    whatever the target's kind) is marked as moved (``MigratedTo``): it keeps its content,
    and every command refuses it naming the target, so a runner that was not pointed at the
    new state cannot go on with the old copy, and no two live states of one lineage exist;
    ``force`` migrates a marked state all the same, and a state moved back into it replaces
    it.

    Raises:
        LockfileError: the target is the source, or a folder, or it holds entries and
            ``force`` is False.
        LockHeld: either side is locked by a run.
    """
    if settings.lockfile_missing:  # said before the lock, which would make its folder
        raise LockfileError(
            f"{settings.lockfile} holds no state yet: nothing to migrate (check --backend, "
            "--lockfile and --project)"
        )
    target_is_db = is_database(to)
    if not target_is_db:
        _check_lockfile_path(to)
        if settings.backend is None and os.path.realpath(to) in {
            os.path.realpath(p) for p in kept_beside(settings.lockfile)
        }:  # its lock (held by this command), journal (removed as the source is marked) ...
            raise LockfileError(
                f"state migrate --to {to}: that is a file {settings.lockfile} keeps beside it "
                "(its lock, journal, history or backup), not a lockfile; give another path, "
                f"e.g. --to {Path(to).parent / 'moved.lock'}"
            )
    target_lockfile = settings.lockfile if target_is_db else Path(to)
    target = open_location(to if target_is_db else None, target_lockfile, settings.project)
    marked = False
    copied = True
    try:
        with state_location(settings) as source:
            # a database's name leaves out its options (a search_path: another schema, so
            # another state); the same database and schema is found by its lease below
            if not target_is_db and target.name == source.name:
                raise LockfileError(
                    f"state migrate --to {target.name}: that is where the state already is"
                )
            lock = source.new_lock()
            lock.acquire("state migrate")
            try:
                try:
                    lockfile = source.read()
                    history = source.history()
                except MigratedState as gone:
                    if not force:
                        raise
                    lockfile = gone.lockfile.model_copy(update={"migrated_to": None})
                    # its history too, which every other reader refuses with it
                    history = source.moved_history()
                left: list[HistoryRecord] = []
                if target_is_db:  # keyed by serial there: only the current state's records
                    history, left = of_current_state(history, lockfile.serial)
                if not state_exists(settings, lockfile):
                    raise LockfileError(
                        f"{source.name} holds no state yet: nothing to migrate (check "
                        "--backend, --lockfile and --project)"
                    )
                target_lock = target.new_lock()
                try:
                    target_lock.acquire("state migrate")
                except LockHeld as held:
                    # the lock this command holds on the source: the same state, spelled
                    # another way (an absolute path, a symlink, another host alias)
                    if lock.info is not None and held.holder.get("id") == lock.info.id:
                        same = "" if target.name == source.name else f"{source.name}, "
                        raise LockfileError(
                            f"state migrate --to {target.name}: that is {same}where the state "
                            "already is"
                        ) from None
                    raise
                try:
                    db_dir = Path(DEFAULT_LOCKFILE).parent
                    origin = _rebased(
                        lockfile.origin,
                        db_dir if settings.backend else settings.lockfile.parent,
                        None if target_is_db else target_lockfile.parent,
                    )
                    moved = lockfile.model_copy(update={"origin": origin})
                    copied = target.replace(moved, history, force=force)
                    # the source says where it went (into any backend, of its kind too: two
                    # live copies of one lineage would let two applies own the same resources)
                    at = utc_timestamp()
                    where = MigratedTo(backend=target.name, at=at, serial=lockfile.serial)
                    source.mark_migrated(lockfile, where)
                    marked = True
                finally:
                    target_lock.release()
            finally:
                lock.release()
            name = source.name
    finally:
        target.close()
    return MigrateResult(
        source=name,
        target=target.name,
        lineage=lockfile.lineage,
        serial=lockfile.serial,
        entries=len(lockfile.resources),
        pending=len(lockfile.pending),
        history=len(history),
        to_database=target_is_db,
        history_left=len(left),
        history_left_in=str(history_path(real_lockfile(settings.lockfile))) if left else "",
        marked=marked,
        already_there=not copied,
    )
