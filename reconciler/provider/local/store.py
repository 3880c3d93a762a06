"""SQLite storage of the local provider: one file, WAL, objects stored as JSON text.

This module only stores and fetches; it knows nothing of validation, defaults or HTTP.

Tables:
    objects         one row per live object (agents, environments, vaults, credentials,
                    sessions, deployments, deployment runs). ``data`` is the response JSON
                    (never a secret), ``secrets`` the write-only fields. ``seq`` is an
                    autoincrement that orders lists and anchors page cursors, so pages stay
                    stable while others insert.
    agent_versions  immutable snapshots of every agent version.
    events          session events, ordered by their own autoincrement ``seq``.
    files           uploaded file contents by owner (a skill version's files, byte for
                    byte, in upload order).

Several processes may open the same file (a CLI and a test): WAL plus a busy timeout, and
writes take ``BEGIN IMMEDIATE`` so two writers queue instead of deadlocking. Inside one
process, every statement runs under one re-entrant lock; statements are sub-millisecond, so
async handlers call them directly instead of hopping to a thread pool.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    parent_id  TEXT,
    archived   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    data       TEXT NOT NULL,
    secrets    TEXT
);
CREATE INDEX IF NOT EXISTS objects_kind_seq ON objects(kind, archived, seq);
-- a list that includes archived objects (every plan's refresh) walks this one in seq order;
-- without it every page read and sorted every object of its kind
CREATE INDEX IF NOT EXISTS objects_kind_all_seq ON objects(kind, seq);
CREATE INDEX IF NOT EXISTS objects_parent_seq ON objects(kind, parent_id, seq);
CREATE TABLE IF NOT EXISTS agent_versions (
    agent_id TEXT NOT NULL,
    version  INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (agent_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    session_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_session_seq ON events(session_id, seq);
CREATE TABLE IF NOT EXISTS files (
    owner_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    path     TEXT NOT NULL,
    content  BLOB NOT NULL,
    PRIMARY KEY (owner_id, position)
) WITHOUT ROWID;
"""


def dumps(value: Any) -> str:
    """Compact JSON; ASCII-escaped so that any text, even a lone surrogate, round-trips."""
    return json.dumps(value, separators=(",", ":"))


@dataclass(slots=True)
class Record:
    """One stored object."""

    seq: int
    id: str
    kind: str
    parent_id: str | None
    archived: bool
    data: dict[str, Any]
    secrets: dict[str, Any]


#: the ``objects`` columns a ``Record`` is read from (``_record``), in its fields' order
_RECORD_COLUMNS = "seq, id, kind, parent_id, archived, data, secrets"


def _record(row: Sequence[Any]) -> Record:
    """The ``Record`` of a row of ``_RECORD_COLUMNS``."""
    return Record(
        row[0],
        row[1],
        row[2],
        row[3],
        bool(row[4]),
        json.loads(row[5]),
        json.loads(row[6]) if row[6] else {},
    )


#: how long a write waits for another process's write transaction on the same file (seconds)
BUSY_TIMEOUT = 30.0
#: the mode of a database file this store creates: it holds credential secrets
DB_FILE_MODE = 0o600
#: SQLite's page cache per connection (KiB). Its default, 2 MiB, fills up in any walk over
#: the objects (a plan lists each of them once) and stays: ~1.7 MiB of an embedded plan's
#: peak. The file itself is in the OS's cache; B-tree interior pages fit in 256 KiB, and
#: listing, lookups and writes run as fast (bench/RESULTS.md, issue #12 session 8).
CACHE_KIB = 256


class StoreError(Exception):
    """The database file cannot be used (locked, damaged, unwritable); one sentence that
    names the file and what to do. Never a bug of the provider, so never a traceback."""

    def __init__(self, message: str, *, locked: bool = False) -> None:
        super().__init__(message)
        self.locked = locked


def explain(path: Path | str, exc: BaseException) -> StoreError:
    """The ``StoreError`` telling what ``exc`` (a ``sqlite3.Error`` or ``OSError``) means."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return StoreError(
            f"the local provider database {path} is locked by another process (another "
            "reconciler command or `reconciler provider serve` using this file); wait for it "
            "to finish or stop it, then run again",
            locked=True,
        )
    if os.path.isdir(path):
        return StoreError(
            f"the local provider database {path} is a folder; pass a file with --provider-db"
        )
    special = _not_a_regular_file(path)
    if special is not None:
        return special
    if os.path.islink(path) and not os.path.exists(path):
        return StoreError(
            f"the local provider database {path} is a symbolic link loop or leads nowhere; "
            "fix the link or choose another file with --provider-db"
        )
    if isinstance(exc, sqlite3.OperationalError) and (
        "readonly" in text or "unable to open" in text or "disk I/O" in text
    ):
        return StoreError(
            f"cannot write the local provider database {path} ({text}); make its folder "
            "writable or choose another file with --provider-db"
        )
    if isinstance(exc, sqlite3.OperationalError) and "full" in text:
        return StoreError(
            f"cannot write the local provider database {path}: the disk is full; free some "
            "space and run again"
        )
    if isinstance(exc, sqlite3.DatabaseError):
        return StoreError(
            f"the local provider database {path} is damaged ({text}); move it away to start "
            "an empty local provider, or restore it from a backup"
        )
    if isinstance(exc, PermissionError):
        return StoreError(
            f"cannot create the local provider database {path}: {exc.strerror}; make "
            f"{Path(path).parent} writable or choose another file with --provider-db"
        )
    if isinstance(exc, OSError):
        return StoreError(
            f"cannot open the local provider database {path}: {exc.strerror or exc}; fix the "
            "path or choose another file with --provider-db"
        )
    return StoreError(f"the local provider database {path} failed: {text}")


def _not_a_regular_file(path: Path | str) -> StoreError | None:
    """The error of a database path that is a FIFO, a device or a socket (SQLite says only
    "disk I/O error" of one), or None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    what = (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a file"
    )
    return StoreError(
        f"the local provider database {path} is {what}, not a regular file; pass a file "
        "with --provider-db"
    )


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite would use 0644)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DB_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


class Store:
    """The SQLite file behind one app. Safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        """Open (or create, mode 0600) the database file.

        Raises:
            StoreError: the file is locked, damaged, unwritable or cannot be created.
        """
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            if str(path) != ":memory:":
                special = _not_a_regular_file(self.path)
                if special is not None:  # SQLite would write beside /dev/null, or say I/O
                    raise special
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _create_private(self.path)
            self._conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise explain(self.path, exc) from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL never corrupts; it may lose the last commits on power loss, which
            # is fine for an emulator and makes each commit ~10x cheaper than FULL.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            with self.write():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
        except sqlite3.Error as exc:
            self._conn.close()
            raise explain(self.path, exc) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write transaction (re-entrant: nested calls join the outer one)."""
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- objects -------------------------------------------------------------------------

    def get(self, object_id: str, kind: str | None = None) -> Record | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM objects WHERE id = ?", (object_id,)
            ).fetchone()
        if row is None or (kind is not None and row[2] != kind):
            return None
        return _record(row)

    def insert(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        parent_id: str | None = None,
        secrets: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO objects (id, kind, parent_id, archived, created_at, data, secrets)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    data["id"],
                    kind,
                    parent_id,
                    1 if data.get("archived_at") else 0,
                    data["created_at"],
                    dumps(data),
                    dumps(secrets) if secrets else None,
                ),
            )

    def insert_many(self, kind: str, items: Sequence[dict[str, Any]]) -> None:
        """Bulk insert without secrets (used by benchmarks and fixtures)."""
        with self._lock:
            self._conn.executemany(
                "INSERT INTO objects (id, kind, parent_id, archived, created_at, data)"
                " VALUES (?, ?, NULL, ?, ?, ?)",
                [
                    (d["id"], kind, 1 if d.get("archived_at") else 0, d["created_at"], dumps(d))
                    for d in items
                ],
            )

    def replace(
        self, object_id: str, data: dict[str, Any], secrets: dict[str, Any] | None = None
    ) -> None:
        """Overwrite an object's data (and its secrets when given)."""
        with self._lock:
            if secrets is None:
                self._conn.execute(
                    "UPDATE objects SET data = ?, archived = ? WHERE id = ?",
                    (dumps(data), 1 if data.get("archived_at") else 0, object_id),
                )
            else:
                self._conn.execute(
                    "UPDATE objects SET data = ?, archived = ?, secrets = ? WHERE id = ?",
                    (
                        dumps(data),
                        1 if data.get("archived_at") else 0,
                        dumps(secrets) if secrets else None,
                        object_id,
                    ),
                )

    def delete(self, object_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM objects WHERE id = ?", (object_id,))

    def delete_children(self, kind: str, parent_id: str) -> None:
        with self._lock:
            self._conn.execute(
                "DELETE FROM objects WHERE kind = ? AND parent_id = ?", (kind, parent_id)
            )

    def find(
        self, kind: str, where: str, params: Sequence[Any], parent_id: str | None = None
    ) -> list[Record]:
        """Active (non-archived) objects of ``kind`` matching a SQL condition on ``data``."""
        sql = f"SELECT {_RECORD_COLUMNS} FROM objects WHERE kind = ? AND archived = 0"
        args: list[Any] = [kind]
        if parent_id is not None:
            sql += " AND parent_id = ?"
            args.append(parent_id)
        if where:
            sql += f" AND ({where})"
            args.extend(params)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_record(r) for r in rows]

    def count(self, kind: str, parent_id: str, active_only: bool = True) -> int:
        sql = "SELECT COUNT(*) FROM objects WHERE kind = ? AND parent_id = ?"
        if active_only:
            sql += " AND archived = 0"
        with self._lock:
            return int(self._conn.execute(sql, (kind, parent_id)).fetchone()[0])

    def page(
        self,
        kind: str,
        *,
        conditions: Sequence[str] = (),
        params: Sequence[Any] = (),
        parent_id: str | None = None,
        include_archived: bool = False,
        after: int | None = None,
        before: int | None = None,
        descending: bool = False,
        limit: int = 20,
    ) -> list[tuple[int, str]]:
        """``(seq, data_json)`` rows of one page, ``limit`` + 1 of them when more follow.

        ``after``/``before`` are exclusive seq bounds in the direction of travel; rows come
        back in list order (ascending or descending seq).
        """
        clauses = ["kind = ?"]
        args: list[Any] = [kind]
        if not include_archived:
            clauses.append("archived = 0")
        if parent_id is not None:
            clauses.append("parent_id = ?")
            args.append(parent_id)
        clauses.extend(conditions)
        args.extend(params)
        return self._page("objects", clauses, args, after, before, descending, limit)

    def _page(
        self,
        table: str,
        clauses: list[str],
        args: list[Any],
        after: int | None,
        before: int | None,
        descending: bool,
        limit: int,
    ) -> list[tuple[int, str]]:
        # A "before" cursor walks backwards: fetch in reverse order, then flip.
        reverse = before is not None
        if after is not None:
            clauses.append("seq < ?" if descending else "seq > ?")
            args.append(after)
        if before is not None:
            clauses.append("seq > ?" if descending else "seq < ?")
            args.append(before)
        ascending = descending == reverse
        sql = (
            f"SELECT seq, data FROM {table} WHERE {' AND '.join(clauses)}"
            f" ORDER BY seq {'ASC' if ascending else 'DESC'} LIMIT ?"
        )
        args.append(limit + 1)
        with self._lock:
            rows = [(int(r[0]), str(r[1])) for r in self._conn.execute(sql, args)]
        if reverse:
            rows.reverse()
        return rows

    # -- agent versions ------------------------------------------------------------------

    def add_version(self, agent_id: str, version: int, data: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO agent_versions (agent_id, version, data) VALUES (?, ?, ?)",
                (agent_id, version, dumps(data)),
            )

    def get_version(self, agent_id: str, version: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT data FROM agent_versions WHERE agent_id = ? AND version = ?",
                (agent_id, version),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def version_page(self, agent_id: str, after: int | None, limit: int) -> list[tuple[int, str]]:
        """Versions newest first; ``after`` is the last version number already returned."""
        sql = "SELECT version, data FROM agent_versions WHERE agent_id = ?"
        args: list[Any] = [agent_id]
        if after is not None:
            sql += " AND version < ?"
            args.append(after)
        sql += " ORDER BY version DESC LIMIT ?"
        args.append(limit + 1)
        with self._lock:
            return [(int(r[0]), str(r[1])) for r in self._conn.execute(sql, args)]

    # -- session events ------------------------------------------------------------------

    def append_event(self, session_id: str, event: dict[str, Any]) -> int:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO events (id, session_id, type, processed_at, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (event["id"], session_id, event["type"], event["processed_at"], dumps(event)),
            )
            return int(cur.lastrowid or 0)

    def last_event_seq(self, session_id: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT MAX(seq) FROM events WHERE session_id = ?", (session_id,)
            ).fetchone()
        return int(row[0] or 0)

    def events_after(self, session_id: str, seq: int) -> list[tuple[int, str]]:
        with self._lock:
            return [
                (int(r[0]), str(r[1]))
                for r in self._conn.execute(
                    "SELECT seq, data FROM events WHERE session_id = ? AND seq > ? ORDER BY seq",
                    (session_id, seq),
                )
            ]

    def event_page(
        self,
        session_id: str,
        *,
        conditions: Sequence[str] = (),
        params: Sequence[Any] = (),
        after: int | None = None,
        descending: bool = False,
        limit: int = 20,
    ) -> list[tuple[int, str]]:
        clauses = ["session_id = ?", *conditions]
        args: list[Any] = [session_id, *params]
        return self._page("events", clauses, args, after, None, descending, limit)

    def delete_events(self, session_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,))

    # -- tables other modules own (memory stores' memories and versions) -----------------

    def ensure_tables(self, schema: str) -> None:
        """Create another module's tables and indexes (``CREATE ... IF NOT EXISTS``)."""
        with self.write():
            for statement in schema.split(";"):
                if statement.strip():
                    with self._lock:
                        self._conn.execute(statement)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one query of those tables."""
        with self._lock:
            return [tuple(r) for r in self._conn.execute(sql, params)]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement on those tables (inside the caller's ``write()``); rows changed."""
        with self._lock:
            return int(self._conn.execute(sql, params).rowcount)

    # -- uploaded files ------------------------------------------------------------------

    def put_files(self, owner_id: str, files: Sequence[tuple[str, bytes]]) -> None:
        """Store ``(path, content)`` pairs of one owner (e.g. a skill version), in order."""
        with self._lock:
            self._conn.executemany(
                "INSERT INTO files (owner_id, position, path, content) VALUES (?, ?, ?, ?)",
                [(owner_id, i, path, content) for i, (path, content) in enumerate(files)],
            )

    def get_files(self, owner_id: str) -> list[tuple[str, bytes]]:
        """The owner's ``(path, content)`` pairs in the order they were stored."""
        with self._lock:
            return [
                (str(r[0]), bytes(r[1]))
                for r in self._conn.execute(
                    "SELECT path, content FROM files WHERE owner_id = ? ORDER BY position",
                    (owner_id,),
                )
            ]

    def delete_files(self, owner_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM files WHERE owner_id = ?", (owner_id,))
