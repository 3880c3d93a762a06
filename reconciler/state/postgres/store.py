"""``PgStateStore``: the state of one project in PostgreSQL, one row per resource.

It implements ``StateBackend`` like the lockfile's ``StateStore``: ``load`` reads the project,
``commit(edit)`` applies a pure edit and makes it durable. A commit is one transaction that
writes only what the edit changed (``delta.diff``): each changed resource or pending intent
is an UPDATE / DELETE guarded by the ``row_version`` this store read (compare-and-swap) or an
INSERT that must not find a row, plus the project row (serial + 1) and one history row.
If any guard fails, another writer changed that row: the transaction is rolled back and
``StateConflict`` names the address; nothing is silently overwritten.

With a ``lease`` (the apply's ``PgLease``), the transaction first checks, under a share lock
on the lease row, that the lease is still this run's and unexpired: a holder that lost its
lease can never write (a fencing check, not just a timer).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.errors import LockfileError, LockLost
from reconciler.state.backend import EditedState
from reconciler.state.delta import Delta
from reconciler.state.history import HistoryRecord, RunInfo, record_for
from reconciler.state.lockfile import MigratedDatabase
from reconciler.state.model import (
    LOCKFILE_VERSION,
    LockEntry,
    Lockfile,
    MigratedTo,
    PendingIntent,
    new_lockfile,
)
from reconciler.state.postgres.db import Database

if TYPE_CHECKING:
    from reconciler.state.postgres.conninfo import Conn

#: what a row of a state table holds: a resource's entry or a pending intent
Row = TypeVar("Row", LockEntry, PendingIntent)


class StateConflict(LockfileError):
    """A compare-and-swap failed: another writer changed a row since this run read it."""


class PgStateStore(EditedState):
    """The state of ``project`` in the database ``db`` (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        project: str,
        *,
        run: RunInfo | None = None,
        lease_id: str | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.project = project
        self.run = run or RunInfo()
        self.lease_id = lease_id
        #: bytes of row data this store sent (entries, intents, history), for ``bench/``
        self.bytes_written = 0
        self._exists = False  # the project row exists
        self._versions: dict[str, int] = {}  # resource address -> row_version read
        self._pending_versions: dict[str, int] = {}

    @property
    def name(self) -> str:
        return f"{self.db.name} (project {self.project})"

    def load(self) -> Lockfile:
        """Read the project's state (an empty one with a fresh lineage when there is none).

        Raises:
            LockfileError: the database is unreachable, or holds a state written by a newer
                reconciler.
            MigratedDatabase: ``state migrate`` moved the project's state into a lockfile.
        """
        with self._mutex:
            lockfile, exists, versions, pending_versions = self.db.run(
                self._read, what="read the state"
            )
            self._current, self._exists = lockfile, exists
            self._versions, self._pending_versions = versions, pending_versions
            return lockfile

    def _read(self, conn: Conn) -> tuple[Lockfile, bool, dict[str, int], dict[str, int]]:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # a schema before 2 (an older reconciler's, read as it is) has no migrated_to
            moved = "migrated_to" if self.db.version >= 2 else "NULL"
            head = conn.execute(
                f"SELECT lineage, serial, lockfile_version, salt, origin, {moved} "
                "FROM reconciler_states WHERE project = %s",
                (self.project,),
            ).fetchone()
            if head is None:
                return new_lockfile(self.project), False, {}, {}
            lineage, serial, version, salt, origin, migrated_to = head
            if int(str(version)) > LOCKFILE_VERSION:
                raise LockfileError(
                    f"{self.name}: written by a newer reconciler (lockfile_version {version} > "
                    f"{LOCKFILE_VERSION}); upgrade reconciler"
                )
            resources, versions = self._read_rows(conn, "reconciler_resources", "entry", LockEntry)
            pending, pending_versions = self._read_rows(
                conn, "reconciler_pending", "intent", PendingIntent
            )
        lockfile = Lockfile(
            lockfile_version=int(str(version)),
            lineage=str(lineage),
            serial=int(str(serial)),
            salt=str(salt),
            project=self.project,
            origin=None if origin is None else str(origin),
            resources=resources,
            pending=pending,
            migrated_to=None if migrated_to is None else MigratedTo.model_validate(migrated_to),
        )
        if lockfile.migrated_to is not None:
            raise MigratedDatabase(self.name, lockfile)
        return lockfile, True, versions, pending_versions

    def _read_rows(
        self, conn: Conn, table: str, column: str, model: type[Row]
    ) -> tuple[dict[str, Row], dict[str, int]]:
        """Every row of ``table`` in address order: its ``column`` as a ``model``, and its
        row version (what ``_write_rows`` guards each write of it with)."""
        from psycopg import sql

        values: dict[str, Row] = {}
        versions: dict[str, int] = {}
        rows = conn.execute(
            sql.SQL(
                "SELECT address, {c}, row_version FROM {t} WHERE project = %s ORDER BY address"
            ).format(t=sql.Identifier(table), c=sql.Identifier(column)),
            (self.project,),
        )
        for address, value, row_version in rows:
            values[str(address)] = model.model_validate(value)
            versions[str(address)] = int(str(row_version))
        return values, versions

    def _write_delta(self, current: Lockfile, written: Lockfile, delta: Delta) -> Lockfile:
        """Write what ``delta`` changed, and its history record, in one transaction.

        Raises:
            StateConflict: another writer changed a row this edit touches; nothing written.
            LockLost: this run's lease expired or was taken over; nothing written.
            LockfileError: the database is unreachable or refused the write.
        """
        token = uuid.uuid4().hex
        record = record_for(current, delta, written.serial, self.run)
        serial, versions, pending_versions = self.db.run(
            lambda conn: self._write(conn, current, written, delta, record, token),
            what="write the state",
            landed=lambda conn: self._landed(conn, token),
        )
        self._exists = True
        for address, entry in delta.entries.items():
            if entry is None:
                self._versions.pop(address, None)
        for address, intent in delta.pending.items():
            if intent is None:
                self._pending_versions.pop(address, None)
        self._versions.update(versions)
        self._pending_versions.update(pending_versions)
        if serial != written.serial:
            written = written.model_copy(update={"serial": serial})
        self._current = written
        return written

    def _landed(self, conn: Conn, token: str) -> tuple[int, dict[str, int], dict[str, int]] | None:
        """After a dropped connection: the result of the write ``token`` if it committed."""
        row = conn.execute(
            "SELECT serial, last_write FROM reconciler_states WHERE project = %s",
            (self.project,),
        ).fetchone()
        if row is None or row[1] != token:
            return None
        serial = int(str(row[0]))
        versions = {
            str(a): int(str(v))
            for a, v in conn.execute(
                "SELECT address, row_version FROM reconciler_resources "
                "WHERE project = %s AND updated_serial = %s",
                (self.project, serial),
            )
        }
        return serial, versions, self._reread_pending(conn)

    def _reread_pending(self, conn: Conn) -> dict[str, int]:
        return {
            str(a): int(str(v))
            for a, v in conn.execute(
                "SELECT address, row_version FROM reconciler_pending WHERE project = %s",
                (self.project,),
            )
        }

    def _write(
        self,
        conn: Conn,
        before: Lockfile,
        after: Lockfile,
        delta: Delta,
        record: HistoryRecord | None,
        token: str,
    ) -> tuple[int, dict[str, int], dict[str, int]]:
        with conn.transaction():
            if self.lease_id is not None:
                self._fence(conn)
            serial = self._write_head(conn, before, after, token)
            versions = self._write_rows(
                conn, "reconciler_resources", "entry", delta.entries, self._versions, serial
            )
            pending_versions = self._write_rows(
                conn, "reconciler_pending", "intent", delta.pending, self._pending_versions, None
            )
            if record is not None:
                self._write_history(
                    conn, after.lineage, record.model_copy(update={"serial": serial})
                )
        return serial, versions, pending_versions

    def _fence(self, conn: Conn) -> None:
        row = conn.execute(
            "SELECT expires_at > clock_timestamp() FROM reconciler_leases "
            "WHERE project = %s AND id = %s FOR SHARE",
            (self.project, self.lease_id),
        ).fetchone()
        if row is None or not row[0]:
            holder = conn.execute(
                "SELECT id, host, pid, username FROM reconciler_leases WHERE project = %s",
                (self.project,),
            ).fetchone()
            now = (
                f"apply {holder[0]} (pid {holder[2]} on host {holder[1]}, user {holder[3]})"
                if holder
                else "nobody"
            )
            why = "expired" if row is not None else f"taken over or cleared (now: {now})"
            raise LockLost(
                f"lease {self.lease_id} of {self.name} was {why}; this run stopped before "
                "writing the state. Run `reconciler plan` once the other apply is done"
            )

    def _write_head(self, conn: Conn, before: Lockfile, after: Lockfile, token: str) -> int:
        values = (
            after.lineage,
            after.lockfile_version,
            after.salt,
            after.origin,
            token,
        )
        # Either statement returns no row when another writer got there first: for the
        # INSERT one that created the project, for the UPDATE one that replaced or removed
        # its lineage.
        if not self._exists:
            query = (
                "INSERT INTO reconciler_states "
                "(lineage, lockfile_version, salt, origin, last_write, project, serial) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (project) DO NOTHING "
                "RETURNING serial"
            )
            params: tuple[Any, ...] = (*values, self.project, after.serial)
            conflict = f"another writer created the state of project {self.project!r} meanwhile"
        else:
            query = (
                "UPDATE reconciler_states SET lineage = %s, lockfile_version = %s, salt = %s, "
                "origin = %s, last_write = %s, serial = serial + 1, updated_at = clock_timestamp() "
                "WHERE project = %s AND lineage = %s AND migrated_to IS NULL RETURNING serial"
            )
            params = (*values, self.project, before.lineage)
            conflict = (
                f"the state of project {self.project!r} was replaced, removed or moved since "
                f"this run read it (lineage {before.lineage})"
            )
        row = conn.execute(query, params).fetchone()
        if row is None:
            raise StateConflict(
                f"{self.name}: {conflict}; nothing was written; run again to start from it"
            )
        return int(str(row[0]))

    def _write_rows(
        self,
        conn: Conn,
        table: str,
        column: str,
        changes: dict[str, Any],
        known: dict[str, int],
        serial: int | None,
    ) -> dict[str, int]:
        """Write the changed rows of ``table``, each guarded by its row version."""
        if not changes:
            return {}
        from psycopg import sql

        removed = [a for a, v in changes.items() if v is None]
        updated = [a for a, v in changes.items() if v is not None and a in known]
        added = [a for a, v in changes.items() if v is not None and a not in known]
        out: dict[str, int] = {}
        ident = sql.Identifier(table)
        col = sql.Identifier(column)
        extra_set = (
            sql.SQL(", updated_serial = {}").format(sql.Literal(serial))
            if serial is not None
            else sql.SQL("")
        )

        def body(address: str) -> str:
            value = changes[address]
            text = json.dumps(value.model_dump(mode="json"), separators=(",", ":"))
            self.bytes_written += len(text) + len(address)
            return text

        def kinds(addresses: list[str]) -> list[str]:
            return [str(getattr(changes[a], "kind", "")) for a in addresses]

        if removed:
            rows = conn.execute(
                sql.SQL(
                    "DELETE FROM {t} r USING unnest(%s::text[], %s::bigint[]) AS v(address, expected) "
                    "WHERE r.project = %s AND r.address = v.address AND r.row_version = v.expected "
                    "RETURNING r.address"
                ).format(t=ident),
                (removed, [known.get(a, -1) for a in removed], self.project),
            ).fetchall()
            self._check(table, removed, {str(r[0]) for r in rows})
        if updated:
            kind_set = (
                sql.SQL(", kind = v.kind") if table == "reconciler_resources" else sql.SQL("")
            )
            rows = conn.execute(
                sql.SQL(
                    "UPDATE {t} r SET {c} = v.body::jsonb, row_version = r.row_version + 1"
                    "{kind}{extra} FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) "
                    "AS v(address, body, kind, expected) "
                    "WHERE r.project = %s AND r.address = v.address AND r.row_version = v.expected "
                    "RETURNING r.address, r.row_version"
                ).format(t=ident, c=col, kind=kind_set, extra=extra_set),
                (
                    updated,
                    [body(a) for a in updated],
                    kinds(updated),
                    [known[a] for a in updated],
                    self.project,
                ),
            ).fetchall()
            self._check(table, updated, {str(r[0]) for r in rows})
            out.update((str(r[0]), int(str(r[1]))) for r in rows)
        if added:
            if table == "reconciler_resources":
                query = sql.SQL(
                    "INSERT INTO reconciler_resources "
                    "(project, address, entry, kind, row_version, updated_serial) "
                    "SELECT %s, v.address, v.body::jsonb, v.kind, 1, %s "
                    "FROM unnest(%s::text[], %s::text[], %s::text[]) AS v(address, body, kind) "
                    "ON CONFLICT (project, address) DO NOTHING RETURNING address, row_version"
                )
                params: tuple[Any, ...] = (
                    self.project,
                    serial,
                    added,
                    [body(a) for a in added],
                    kinds(added),
                )
            else:
                query = sql.SQL(
                    "INSERT INTO reconciler_pending (project, address, intent, row_version) "
                    "SELECT %s, v.address, v.body::jsonb, 1 "
                    "FROM unnest(%s::text[], %s::text[]) AS v(address, body) "
                    "ON CONFLICT (project, address) DO NOTHING RETURNING address, row_version"
                )
                params = (self.project, added, [body(a) for a in added])
            rows = conn.execute(query, params).fetchall()
            self._check(table, added, {str(r[0]) for r in rows})
            out.update((str(r[0]), int(str(r[1]))) for r in rows)
        return out

    def _check(self, table: str, wanted: list[str], done: set[str]) -> None:
        missed = [a for a in wanted if a not in done]
        if missed:
            what = "pending intent of " if table == "reconciler_pending" else ""
            shown = ", ".join(missed[:5]) + (
                f" and {len(missed) - 5} more" if len(missed) > 5 else ""
            )
            raise StateConflict(
                f"{self.name}: the {what}{shown} changed in the database since this run read "
                "it (row version compare-and-swap failed): another writer got there first. "
                "Nothing was written; run again to start from the new state"
            )

    def _write_history(self, conn: Conn, lineage: str, record: HistoryRecord) -> None:
        changes = json.dumps([c.model_dump(mode="json") for c in record.changes])
        self.bytes_written += len(changes)
        conn.execute(
            "INSERT INTO reconciler_history (project, lineage, serial, at, actor, ci_run, "
            "operation, plan_digest, changes) "
            "VALUES (%s, %s, %s, clock_timestamp(), %s, %s, %s, %s, %s::jsonb)",
            (
                self.project,
                lineage,
                record.serial,
                record.actor,
                record.ci_run,
                record.operation,
                record.plan_digest,
                changes,
            ),
        )

    def close(self) -> None:
        """Nothing to fold: every commit is already in place (the connection is the
        location's)."""
