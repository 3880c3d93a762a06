"""State: the lockfile (read, atomic write), the apply lock, and secret fingerprints.

Layer 4: imports only the standard library, pydantic and ``reconciler.errors``.

    model.py      Lockfile, LockEntry, PendingIntent (frozen data) and queries over them
    lockfile.py   read_lockfile / write_lockfile: atomic, versioned, never overwrites garbage
    store.py      StateStore: the current lockfile of a run, committed after every action
    lock.py       ApplyLock / unlock: one apply per lockfile, with heartbeat and takeover
    backend.py    StateBackend: the one state interface (StateStore implements it)
    location.py   StateLocation: where the state lives (the lockfile, or PostgreSQL with
                  ``postgres/``), as the application uses it: read, lock, store, history
    delta.py      what an edit changed (written instead of the whole state)
    journalfile.py  the append-only journal of a large lockfile, folded in at the end
    history.py    HistoryRecord, RunInfo: the append-only history (``state history``)
    journal.py    Journal: an apply's edits written in groups; commit() awaits durability
    planfile.py   write_plan_file / decode_plan_file: the plan file's JSON envelope
    files.py      write_text_atomic: temp file, fsync, rename (manifests, plan files)
    digest.py     json_digest and fingerprint_secret (salted scrypt; never the value)

Files beside the lockfile ``PATH`` (default ``state/reconciler.lock``): ``PATH.backup`` (the
previous version), ``PATH.lock`` (the apply lock while held), ``PATH.guard`` (an empty flock
file), ``PATH.history`` (the local history), ``PATH.journal`` (while a run writes a large
lockfile, or after a crash) and, only after a crash, ``PATH.tmp-*``. All but ``PATH`` belong in ``.gitignore``
(pattern ``PATH.*``).
"""

from __future__ import annotations

from reconciler.state.backend import Edit, StateBackend
from reconciler.state.digest import (
    canonical_json,
    fingerprint_matches,
    fingerprint_secret,
    json_digest,
    new_salt,
)
from reconciler.state.files import write_text_atomic
from reconciler.state.history import (
    HistoryChange,
    HistoryRecord,
    RunInfo,
    history_path,
    of_current_state,
)
from reconciler.state.journal import Journal
from reconciler.state.location import (
    ClosableBackend,
    StateLocation,
    StateLock,
    is_database,
    kept_beside,
    open_location,
    real_lockfile,
)
from reconciler.state.lock import ApplyLock, LockInfo, lock_path, read_lock, unlock
from reconciler.state.lockfile import (
    LockfileEncoder,
    LockfileWriteError,
    MigratedDatabase,
    MigratedLockfile,
    MigratedState,
    backup_path,
    check_project,
    read_lockfile,
    read_project_lockfile,
    remove_stale_temp_files,
    write_lockfile,
)
from reconciler.state.model import (
    LOCKFILE_VERSION,
    MAX_PIN_HISTORY,
    HeldVersion,
    LockEntry,
    Lockfile,
    MigratedTo,
    PendingIntent,
    PinCause,
    PinRecord,
    UploadedSkillVersion,
    check_address,
    credentials_of,
    list_entries,
    move_entry,
    new_lockfile,
    show_entry,
    utc_timestamp,
)
from reconciler.state.planfile import PLAN_FILE_KIND, decode_plan_file, write_plan_file
from reconciler.state.store import StateStore

__all__ = [
    "LOCKFILE_VERSION",
    "MAX_PIN_HISTORY",
    "PLAN_FILE_KIND",
    "ApplyLock",
    "ClosableBackend",
    "Edit",
    "HeldVersion",
    "HistoryChange",
    "HistoryRecord",
    "Journal",
    "LockEntry",
    "LockInfo",
    "Lockfile",
    "LockfileEncoder",
    "LockfileWriteError",
    "PendingIntent",
    "PinCause",
    "PinRecord",
    "RunInfo",
    "StateBackend",
    "StateLocation",
    "StateLock",
    "StateStore",
    "UploadedSkillVersion",
    "backup_path",
    "canonical_json",
    "check_address",
    "MigratedDatabase",
    "MigratedLockfile",
    "MigratedState",
    "MigratedTo",
    "check_project",
    "decode_plan_file",
    "fingerprint_matches",
    "fingerprint_secret",
    "history_path",
    "of_current_state",
    "is_database",
    "json_digest",
    "list_entries",
    "kept_beside",
    "lock_path",
    "credentials_of",
    "move_entry",
    "new_lockfile",
    "new_salt",
    "open_location",
    "read_lock",
    "read_lockfile",
    "read_project_lockfile",
    "real_lockfile",
    "remove_stale_temp_files",
    "show_entry",
    "unlock",
    "utc_timestamp",
    "write_lockfile",
    "write_plan_file",
    "write_text_atomic",
]
