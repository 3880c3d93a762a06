"""``PgLocation``: one project's state in a PostgreSQL database, as the application uses it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.errors import LockfileError
from reconciler.state.delta import Delta
from reconciler.state.history import HistoryChange, HistoryRecord, RunInfo, changes_of
from reconciler.state.lock import LockInfo
from reconciler.state.model import (
    LockEntry,
    Lockfile,
    MigratedTo,
    check_moved_back,
    new_lockfile,
)
from reconciler.state.postgres.db import Database
from reconciler.state.postgres.lease import PgLease, read_lease, unlock_lease
from reconciler.state.postgres.store import PgStateStore

if TYPE_CHECKING:
    from reconciler.state.location import StateLock
    from reconciler.state.postgres.conninfo import Conn


class PgLocation:
    """The state of ``project`` in the database of ``conninfo`` (connected on first use).

    Reading creates nothing: a database without the state tables (a new one, or a wrong
    ``--backend``) reads as holding no state; the tables are made by the first write (the
    lease an apply takes, ``store``, ``replace``).
    """

    def __init__(self, conninfo: str, project: str) -> None:
        self.conninfo = conninfo
        self.db = Database(conninfo, create=False)
        self._project = project

    @property
    def name(self) -> str:
        return f"{self.db.name} (project {self._project})"

    @property
    def project(self) -> str:
        return self._project

    def exists(self) -> bool:
        if not self.db.has_schema():
            return False

        def look(conn: Conn) -> bool:
            row = conn.execute(
                "SELECT 1 FROM reconciler_states WHERE project = %s", (self._project,)
            ).fetchone()
            return row is not None

        return self.db.run(look, what="read the state")

    def read(self) -> Lockfile:
        if not self.db.has_schema():
            return new_lockfile(self._project)
        return PgStateStore(self.db, self._project).load()

    def new_lock(self) -> PgLease:
        return PgLease(self.conninfo, self._project)

    def store(self, lock: StateLock | None, run: RunInfo) -> PgStateStore:
        lease_id = lock.info.id if lock is not None and lock.info is not None else None
        self.db.create_schema()
        return PgStateStore(self.db, self._project, run=run, lease_id=lease_id)

    def read_lock(self) -> LockInfo | None:
        if not self.db.has_schema():
            return None
        found = self.db.run(lambda conn: read_lease(conn, self._project), what="read the lease")
        return found[0] if found else None

    def running_lock(self) -> LockInfo | None:
        if not self.db.has_schema():
            return None
        found = self.db.run(lambda conn: read_lease(conn, self._project), what="read the lease")
        return found[0] if found and not found[1] else None

    def unlock(self, lock_id: str, *, force: bool = False) -> LockInfo:
        if not self.db.has_schema():
            raise LockfileError(f"{self.name} is not locked: no lease is held")
        return unlock_lease(self.db, self._project, lock_id, force=force)

    def history(self, address: str | None = None) -> list[HistoryRecord]:
        if not self.db.has_schema():
            return []
        self.read()  # a state moved into a lockfile is refused, its history with it
        return self.moved_history(address)

    def moved_history(self, address: str | None = None) -> list[HistoryRecord]:
        """``history`` of a state even when ``state migrate`` moved it into a lockfile (for
        ``state migrate --force``, which copies it all the same)."""
        if not self.db.has_schema():
            return []

        def fetch(conn: Conn) -> list[HistoryRecord]:
            head = conn.execute(
                "SELECT lineage FROM reconciler_states WHERE project = %s", (self._project,)
            ).fetchone()
            if head is None:
                return []
            if address is None:
                rows = conn.execute(
                    "SELECT serial, at, actor, ci_run, operation, plan_digest, changes "
                    "FROM reconciler_history WHERE project = %s AND lineage = %s "
                    "ORDER BY serial",
                    (self._project, head[0]),
                )
            else:
                rows = conn.execute(
                    "SELECT serial, at, actor, ci_run, operation, plan_digest, changes "
                    "FROM reconciler_history WHERE project = %s AND lineage = %s "
                    "AND changes @> %s::jsonb ORDER BY serial",
                    (self._project, head[0], json.dumps([{"address": address}])),
                )
            out = []
            for serial, at, actor, ci_run, operation, digest, changes in rows:
                record = HistoryRecord.model_validate(
                    {
                        "serial": serial,
                        "at": _iso(at),
                        "actor": actor,
                        "ci_run": ci_run,
                        "operation": operation,
                        "plan_digest": digest,
                        "changes": changes,
                    }
                )
                out.append(record if address is None else record.only(address))
            return out

        return self.db.run(fetch, what="read the history")

    def replace(self, lockfile: Lockfile, history: Sequence[HistoryRecord], *, force: bool) -> bool:
        """Make ``lockfile`` (lineage, serial, entries, intents) the project's state, with
        ``history``; the caller holds the lease. Without ``force``, a project that already
        holds this lineage and serial (a migration killed before it marked its source, the
        copy committed whole) is left as it is: False.

        Raises:
            LockfileError: the project holds entries and ``force`` is False.
        """

        def write(conn: Conn) -> bool:
            with conn.transaction():
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM reconciler_resources WHERE project = %s), "
                    "(SELECT count(*) FROM reconciler_pending WHERE project = %s)",
                    (self._project, self._project),
                ).fetchone()
                assert counts is not None
                held = conn.execute(
                    "SELECT lineage, serial, migrated_to FROM reconciler_states WHERE project = %s",
                    (self._project,),
                ).fetchone()
                # a state moved into a lockfile, the marker of it: the way back replaces it
                moved = held is not None and held[2] is not None
                if moved and not force and held is not None:
                    marker = MigratedTo.model_validate(held[2])
                    check_moved_back(self.name, str(held[0]), marker, lockfile.lineage)
                if (
                    not force
                    and not moved
                    and held is not None
                    and (str(held[0]), int(str(held[1]))) == (lockfile.lineage, lockfile.serial)
                ):
                    return False  # this very state: the copy landed, only the marker did not
                if (int(str(counts[0])) or int(str(counts[1]))) and not force and not moved:
                    where = f" (lineage {held[0]} serial {held[1]})" if held else ""
                    raise LockfileError(
                        f"{self.name} already holds {counts[0]} entries{where}, and the state "
                        f"copied has serial {lockfile.serial}; refusing to overwrite it; pass "
                        "--force to replace it"
                    )
                # The history is append-only: where it went on past this copy's serial (a
                # copy older than the state it replaces), the copy takes the next serial,
                # recorded as this migration, so the next write never reuses a serial.
                top = conn.execute(
                    "SELECT max(serial) FROM reconciler_history WHERE project = %s AND "
                    "lineage = %s",
                    (self._project, lockfile.lineage),
                ).fetchone()
                serial = lockfile.serial
                if top and top[0] is not None and int(str(top[0])) > serial:
                    serial = int(str(top[0])) + 1
                    run = RunInfo(operation="state migrate")
                    # what the copy puts back or takes away, so `state history ADDR` never
                    # ends on a change this copy undid
                    changes = _changes_over(conn, self._project, lockfile)
                    conn.execute(
                        "INSERT INTO reconciler_history (project, lineage, serial, at, actor, "
                        "ci_run, operation, changes) "
                        "VALUES (%s, %s, %s, clock_timestamp(), %s, %s, %s, %s::jsonb)",
                        (
                            self._project,
                            lockfile.lineage,
                            serial,
                            run.actor,
                            run.ci_run,
                            f"state migrate --force (a copy at serial {lockfile.serial})",
                            json.dumps([c.model_dump(mode="json") for c in changes]),
                        ),
                    )
                conn.execute("DELETE FROM reconciler_states WHERE project = %s", (self._project,))
                conn.execute(
                    "INSERT INTO reconciler_states (project, lineage, serial, lockfile_version, "
                    "salt, origin) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        self._project,
                        lockfile.lineage,
                        serial,
                        lockfile.lockfile_version,
                        lockfile.salt,
                        lockfile.origin,
                    ),
                )
                addresses = sorted(lockfile.resources)
                conn.execute(
                    "INSERT INTO reconciler_resources "
                    "(project, address, entry, kind, row_version, updated_serial) "
                    "SELECT %s, v.address, v.body::jsonb, v.kind, 1, %s "
                    "FROM unnest(%s::text[], %s::text[], %s::text[]) AS v(address, body, kind)",
                    (
                        self._project,
                        serial,
                        addresses,
                        [lockfile.resources[a].model_dump_json() for a in addresses],
                        [lockfile.resources[a].kind for a in addresses],
                    ),
                )
                pending = sorted(lockfile.pending)
                conn.execute(
                    "INSERT INTO reconciler_pending (project, address, intent, row_version) "
                    "SELECT %s, v.address, v.body::jsonb, 1 "
                    "FROM unnest(%s::text[], %s::text[]) AS v(address, body)",
                    (
                        self._project,
                        pending,
                        [lockfile.pending[a].model_dump_json() for a in pending],
                    ),
                )
                for record in history:
                    conn.execute(
                        "INSERT INTO reconciler_history (project, lineage, serial, at, actor, "
                        "ci_run, operation, plan_digest, changes) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) "
                        "ON CONFLICT DO NOTHING",
                        (
                            self._project,
                            lockfile.lineage,
                            record.serial,
                            record.at,
                            record.actor,
                            record.ci_run,
                            record.operation,
                            record.plan_digest,
                            json.dumps([c.model_dump(mode="json") for c in record.changes]),
                        ),
                    )
            return True

        self.db.create_schema()
        return self.db.run(write, what="write the migrated state")

    def mark_migrated(self, lockfile: Lockfile, moved: MigratedTo) -> None:
        """Mark the project's state as moved (``moved``): its rows are kept as they were, and
        every command refuses it naming where the state went (the caller holds the lease,
        and read ``lockfile``: a state written since is not marked).

        Raises:
            LockfileError: the state changed since ``lockfile`` was read; nothing marked.
        """

        def mark(conn: Conn) -> None:
            row = conn.execute(
                "UPDATE reconciler_states SET migrated_to = %s::jsonb, "
                "updated_at = clock_timestamp() "
                "WHERE project = %s AND lineage = %s AND serial = %s RETURNING 1",
                (moved.model_dump_json(), self._project, lockfile.lineage, lockfile.serial),
            ).fetchone()
            if row is None:
                raise LockfileError(
                    f"{self.name}: the state changed while it was copied (it is no longer "
                    f"lineage {lockfile.lineage} serial {lockfile.serial}), so it was not "
                    f"marked as moved to {moved.backend}; run state migrate again"
                )

        self.db.run(mark, what="mark the state as migrated")

    def close(self) -> None:
        self.db.close()


def _changes_over(conn: Conn, project: str, lockfile: Lockfile) -> tuple[HistoryChange, ...]:
    """The history changes of replacing the entries ``project`` holds by ``lockfile``'s."""
    rows = conn.execute(
        "SELECT address, entry FROM reconciler_resources WHERE project = %s", (project,)
    ).fetchall()
    before = {
        str(address): LockEntry.model_validate(
            entry if isinstance(entry, dict) else json.loads(str(entry))
        )
        for address, entry in rows
    }
    after = lockfile.resources
    changed = {
        a: after.get(a) for a in before.keys() | after.keys() if before.get(a) != after.get(a)
    }
    return changes_of(Lockfile(resources=before), Delta(entries=changed))


def _iso(value: object) -> str:
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)
