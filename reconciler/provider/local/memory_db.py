"""SQLite tables of memories and memory versions (memory stores themselves are ``objects``).

Tables:
    memories         one row per live memory; ``(store_id, path)`` is unique, and its index
                     orders a store's memories by path (byte order), which is list order.
    memory_versions  the append-only history: one row per change (``created``, ``modified``,
                     ``deleted``); only a redaction rewrites a row. ``seq`` orders it.

Only storage lives here: the routes decide what is valid and what a change records.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .store import Store, dumps

SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    id       TEXT PRIMARY KEY,
    store_id TEXT NOT NULL,
    path     TEXT NOT NULL,
    data     TEXT NOT NULL,
    UNIQUE (store_id, path)
);
CREATE TABLE IF NOT EXISTS memory_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    store_id   TEXT NOT NULL,
    memory_id  TEXT NOT NULL,
    operation  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memory_versions_store_seq ON memory_versions(store_id, seq);
"""


def install(store: Store) -> None:
    """Create the tables in ``store``'s file (a no-op when they exist)."""
    store.ensure_tables(SCHEMA)


def prefix_end(prefix: str) -> str:
    """The smallest string above every path that starts with ``prefix`` (which ends in
    ``/``): ``/`` is followed by ``0`` in byte order, so no path under ``/a/`` reaches
    ``/a0``."""
    return prefix[:-1] + "0"


# -- memories ------------------------------------------------------------------------------


def get_memory(store: Store, store_id: str, memory_id: str) -> dict[str, Any] | None:
    rows = store.rows(
        "SELECT data FROM memories WHERE id = ? AND store_id = ?", (memory_id, store_id)
    )
    return json.loads(rows[0][0]) if rows else None


def memory_at(store: Store, store_id: str, path: str) -> dict[str, Any] | None:
    rows = store.rows("SELECT data FROM memories WHERE store_id = ? AND path = ?", (store_id, path))
    return json.loads(rows[0][0]) if rows else None


def put_memory(store: Store, memory: dict[str, Any]) -> None:
    """Insert or overwrite one memory (inside the caller's write transaction)."""
    store.execute(
        "INSERT INTO memories (id, store_id, path, data) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET path = excluded.path, data = excluded.data",
        (memory["id"], memory["memory_store_id"], memory["path"], dumps(memory)),
    )


def delete_memory(store: Store, memory_id: str) -> None:
    store.execute("DELETE FROM memories WHERE id = ?", (memory_id,))


def memories_from(
    store: Store, store_id: str, low: str, inclusive: bool, high: str, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` memories with ``low <(=) path < high``, in path order."""
    rows = store.rows(
        "SELECT data FROM memories WHERE store_id = ?"
        f" AND path {'>=' if inclusive else '>'} ? AND path < ? ORDER BY path LIMIT ?",
        (store_id, low, high, limit),
    )
    return [json.loads(r[0]) for r in rows]


# -- versions ------------------------------------------------------------------------------


def add_version(store: Store, version: dict[str, Any]) -> None:
    store.execute(
        "INSERT INTO memory_versions (id, store_id, memory_id, operation, created_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            version["id"],
            version["memory_store_id"],
            version["memory_id"],
            version["operation"],
            version["created_at"],
            dumps(version),
        ),
    )


def get_version(store: Store, store_id: str, version_id: str) -> dict[str, Any] | None:
    rows = store.rows(
        "SELECT data FROM memory_versions WHERE id = ? AND store_id = ?", (version_id, store_id)
    )
    return json.loads(rows[0][0]) if rows else None


def replace_version(store: Store, version: dict[str, Any]) -> None:
    store.execute(
        "UPDATE memory_versions SET data = ? WHERE id = ?", (dumps(version), version["id"])
    )


def version_page(
    store: Store,
    store_id: str,
    conditions: Sequence[str],
    params: Sequence[Any],
    after: int | None,
    limit: int,
) -> list[tuple[int, str]]:
    """``(seq, data_json)`` of one page, newest first, ``limit + 1`` when more follow."""
    clauses = ["store_id = ?", *conditions]
    args: list[Any] = [store_id, *params]
    if after is not None:
        clauses.append("seq < ?")
        args.append(after)
    args.append(limit + 1)
    rows = store.rows(
        f"SELECT seq, data FROM memory_versions WHERE {' AND '.join(clauses)}"
        " ORDER BY seq DESC LIMIT ?",
        args,
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def delete_store_contents(store: Store, store_id: str) -> None:
    """Every memory and version of one store (the store is being deleted)."""
    store.execute("DELETE FROM memories WHERE store_id = ?", (store_id,))
    store.execute("DELETE FROM memory_versions WHERE store_id = ?", (store_id,))
