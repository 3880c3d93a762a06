"""``PgLease``: the apply lease of one project, a row with a holder, a heartbeat and an expiry.

Not a session-bound advisory lock: those vanish behind connection poolers, name no owner and
never expire. The lease is a row of ``reconciler_leases`` (holder id, pid, host, user, CI
run, operation, start, heartbeat, expiry), so:

* ``acquire`` takes it in one statement that only succeeds when there is no row or the row
  has expired (the database's clock decides, so runners' clocks need not agree); otherwise
  ``LockHeld`` names the holder at once. An expired lease is taken over with a warning on the
  ``reconciler.state`` logger naming the previous holder: no ``unlock`` is needed after a
  crash, only patience (the TTL: ``RECONCILER_LEASE_TTL`` seconds, default 60).
* a daemon thread renews it every TTL/4 on a connection of its own; a dropped connection is
  reopened and the lease goes on (it is not tied to a session).
* ``ensure_held`` (before every provider write) reads the row at most every second and
  raises ``LockLost`` once it is gone, or when no renewal succeeded for 3/4 of the TTL. The
  state writes themselves check the lease in their transaction (``PgStateStore``'s fence).
* ``reconciler unlock ID`` deletes the row (``unlock``).
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import threading
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler.errors import LockfileError, LockHeld, LockLost
from reconciler.state.history import ci_run, user_at_host
from reconciler.state.lock import HeartbeatLock, LockInfo, gone_from_this_host, live_lock_refusal
from reconciler.state.postgres.conninfo import DatabaseError
from reconciler.state.postgres.db import Database

if TYPE_CHECKING:
    from reconciler.state.postgres.conninfo import Conn

logger = logging.getLogger("reconciler.state")

#: default seconds a lease lives without a heartbeat
DEFAULT_TTL = 60.0
#: most seconds between two reads of the lease row by ``ensure_held``
VERIFY_EVERY = 1.0

_COLUMNS = (
    "id, pid, host, username, ci_run, operation, started_at, heartbeat_at, expires_at, "
    "expires_at <= clock_timestamp() AS expired, "
    "extract(epoch FROM clock_timestamp() - heartbeat_at) AS silent_for"
)


def lease_ttl() -> float:
    """The lease TTL in seconds: ``RECONCILER_LEASE_TTL`` when set, else 60.

    Raises:
        LockfileError: the variable is set to something that is not a positive number.
    """
    raw = os.environ.get("RECONCILER_LEASE_TTL", "").strip()
    if not raw:
        return DEFAULT_TTL
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0.5 <= value <= 86400:
        raise LockfileError(
            f"RECONCILER_LEASE_TTL={raw!r}: expected the seconds a lease lives without a "
            "heartbeat, from 0.5 to 86400 (default 60)"
        )
    return value


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def _info(row: tuple[object, ...]) -> LockInfo:
    return LockInfo(
        id=str(row[0]),
        pid=int(str(row[1])),
        host=str(row[2]),
        user=str(row[3]),
        ci_run=None if row[4] is None else str(row[4]),
        operation=str(row[5]),
        started_at=_iso(row[6]),
        heartbeat_at=_iso(row[7]),
        expires_at=_iso(row[8]),
    )


def read_lease(conn: Conn, project: str) -> tuple[LockInfo, bool, float] | None:
    """The lease row of ``project``: (holder, expired, seconds since its heartbeat)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM reconciler_leases WHERE project = %s",
        (project,),
    ).fetchone()
    if row is None:
        return None
    return _info(row), bool(row[9]), float(str(row[10]))


class PgLease(HeartbeatLock):
    """The apply lease of ``project`` in the database ``conninfo`` (ApplyLock's interface)."""

    def __init__(self, conninfo: str, project: str, *, ttl: float | None = None) -> None:
        super().__init__()
        self.db = Database(conninfo, purpose="apply lease")
        self.project = project
        self.ttl = lease_ttl() if ttl is None else ttl
        self.heartbeat_interval = self.ttl / 4
        self.name = f"{self.db.name} (project {project})"
        self._renewed_at = 0.0  # monotonic time a renewal was sent that then succeeded
        self._verified_at = 0.0

    @property
    def id(self) -> str | None:
        return self._info.id if self._info is not None else None

    def acquire(self, operation: str = "apply") -> LockInfo:
        """Take the lease, or fail at once naming its holder.

        Raises:
            LockHeld: an unexpired lease is held by another run.
            LockfileError: the database is unreachable.
        """
        if self._info is not None:
            raise RuntimeError(f"{self.name}: this lease is already held")
        user, _, host = user_at_host().partition("@")
        lease_id = uuid.uuid4().hex[:8]
        params = (
            self.project, lease_id, os.getpid(), socket.gethostname() or host, user,
            ci_run(), operation, self.ttl,
        )  # fmt: skip
        sent = time.monotonic()
        try:
            taken, before = self.db.run(
                lambda conn: self._take(conn, params), what="take the apply lease"
            )
        except BaseException:
            self.db.close()
            raise
        if not taken:
            self.db.close()
            assert before is not None
            holder, _, _ = before
            raise LockHeld(
                f"{self.name} is locked by {holder.describe()}, lease expires at "
                f"{holder.expires_at} unless it heartbeats; wait for it, or run `reconciler "
                f"unlock {holder.id}` if you know it is dead",
                holder=holder.model_dump(),
            )
        info = taken
        if before is not None:
            old, _, silent = before
            logger.warning(
                "%s: took over expired lease %s: no heartbeat for %.0fs (expires after %gs)",
                self.name,
                old.describe(),
                silent,
                self.ttl,
            )
        self._renewed_at = self._verified_at = sent
        self._hold(info, f"lease-{info.id}")
        return info

    def _take(
        self, conn: Conn, params: tuple[object, ...]
    ) -> tuple[LockInfo | None, tuple[LockInfo, bool, float] | None]:
        with conn.transaction():
            before = conn.execute(
                f"SELECT {_COLUMNS} FROM reconciler_leases WHERE project = %s FOR UPDATE",
                (self.project,),
            ).fetchone()
            prior = (
                None if before is None else (_info(before), bool(before[9]), float(str(before[10])))
            )
            if prior is not None and prior[0].id == params[1]:
                return prior[0], None  # our own take, committed before the connection dropped
            if prior is not None and not prior[1]:
                return None, prior
            row = conn.execute(
                "INSERT INTO reconciler_leases (project, id, pid, host, username, ci_run, "
                "operation, started_at, heartbeat_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, clock_timestamp(), clock_timestamp(), "
                "clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (project) DO UPDATE SET id = excluded.id, pid = excluded.pid, "
                "host = excluded.host, username = excluded.username, ci_run = excluded.ci_run, "
                "operation = excluded.operation, started_at = excluded.started_at, "
                "heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at "
                "WHERE reconciler_leases.expires_at <= clock_timestamp() "
                f"RETURNING {_COLUMNS}",
                params,
            ).fetchone()
            if row is None:  # taken by another runner between our look and our insert
                again = read_lease(conn, self.project)
                return None, again
            return _info(row), prior

    def _renew(self, info: LockInfo) -> bool:
        """Push the expiry out; False when the lease is no longer ours (raises on I/O)."""
        sent = time.monotonic()

        def renew(conn: Conn) -> bool:
            row = conn.execute(
                "UPDATE reconciler_leases SET heartbeat_at = clock_timestamp(), "
                "expires_at = clock_timestamp() + make_interval(secs => %s) "
                "WHERE project = %s AND id = %s AND expires_at > clock_timestamp() "
                "RETURNING id",
                (self.ttl, self.project, info.id),
            ).fetchone()
            return row is not None

        ok = self.db.run(renew, what="renew the apply lease", attempts=1)
        if ok:
            self._renewed_at = max(self._renewed_at, sent)
        return ok

    def _beat(self, info: LockInfo, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            try:
                if not self._renew(info):
                    self.lost = True
                    log = logger.debug if self._reported else logger.error
                    log("%s: lost the apply lease %s", self.name, info.id)
                    return
            except (DatabaseError, LockfileError) as e:
                logger.warning("%s: heartbeat of lease %s failed: %s", self.name, info.id, e)

    def ensure_held(self) -> None:
        """Raise ``LockLost`` unless this run still holds its lease (call before each write)."""
        info = self._info
        if info is None:
            raise RuntimeError(f"{self.name}: the apply lease is not held")
        with self._verify_mutex:
            now = time.monotonic()
            fresh = now - self._renewed_at < self.ttl * 0.75
            if not self.lost and fresh and now - self._verified_at < VERIFY_EVERY:
                return
            seen: LockInfo | None = None
            if not self.lost:
                try:
                    current = self.db.run(
                        lambda conn: read_lease(conn, self.project),
                        what="read the apply lease",
                        attempts=1,
                    )
                    seen = current[0] if current else None
                    ours = current is not None and seen is not None and seen.id == info.id
                    if ours and current is not None and not current[1]:
                        if not fresh:
                            ours = self._renew(info)
                        if ours:
                            self._verified_at = now
                            return
                    self.lost = True
                except (DatabaseError, LockfileError):
                    if fresh:
                        return  # the database is away for now; the lease is still ours
                    self.lost = True
            else:  # lost already (the heartbeat found it gone): only to name who holds it
                try:
                    current = self.db.run(
                        lambda conn: read_lease(conn, self.project),
                        what="read the apply lease",
                        attempts=1,
                    )
                    seen = current[0] if current is not None and not current[1] else None
                except (DatabaseError, LockfileError):
                    pass
            self._reported = True
            whom = seen.describe() if seen is not None and seen.id != info.id else "nobody"
            raise LockLost(
                f"lease lost to {whom}: the apply lease {info.id} of {self.name} expired, was "
                "taken over or was cleared by `reconciler unlock`. This apply stopped before "
                "its next write; what it finished is in the state or is found again by its "
                "ownership tags. Run `reconciler plan` once the other apply is done",
                holder=seen.model_dump() if seen is not None else {},
            )

    def _give_up(self, info: LockInfo) -> None:
        """Delete the lease if it is still ours, and close the connection."""
        try:
            self.db.run(
                lambda conn: conn.execute(
                    "DELETE FROM reconciler_leases WHERE project = %s AND id = %s",
                    (self.project, info.id),
                ),
                what="release the apply lease",
                attempts=2,
            )
        except (DatabaseError, LockfileError) as e:
            logger.warning(
                "%s: could not release lease %s (it expires by itself in %gs): %s",
                self.name,
                info.id,
                self.ttl,
                e,
            )
        finally:
            self.db.close()


def unlock_lease(db: Database, project: str, lock_id: str, *, force: bool = False) -> LockInfo:
    """Delete the lease ``lock_id`` of ``project`` by hand (``reconciler unlock``).

    A lease not expired (and whose holder, when on this host, still runs) is deleted only with
    ``force``: the apply holding it stops at its next write.

    Raises:
        LockfileError: no lease is held, its id is not ``lock_id``, or it is live and
            ``force`` is not given.
    """
    where = f"{db.name} (project {project})"

    def remove(conn: Conn) -> tuple[LockInfo | None, LockInfo | None, str | None]:
        if not force:
            live = conn.execute(
                f"SELECT {_COLUMNS} FROM reconciler_leases WHERE project = %s AND id = %s",
                (project, lock_id),
            ).fetchone()
            if live is not None and not bool(live[9]):
                info = _info(live)
                if not gone_from_this_host(info):
                    alive = (
                        f"its process {info.pid} runs on this host"
                        if info.host == socket.gethostname()
                        else f"its lease is renewed until {info.expires_at}"
                    )
                    raise LockfileError(live_lock_refusal(where, info, alive))
        row = conn.execute(
            f"DELETE FROM reconciler_leases WHERE project = %s AND id = %s RETURNING {_COLUMNS}",
            (project, lock_id),
        ).fetchone()
        if row is not None:
            return _info(row), None, None
        current = read_lease(conn, project)
        # the id of another project's lease (copied from a CI job that ran with its own
        # --project): say which, rather than "not locked", which reads as "already gone"
        other = conn.execute(
            "SELECT project FROM reconciler_leases WHERE id = %s AND project <> %s",
            (lock_id, project),
        ).fetchone()
        return None, current[0] if current else None, str(other[0]) if other else None

    removed, current, other = db.run(remove, what="clear the apply lease")
    if removed is not None:
        return removed
    hint = (
        f"; lease {lock_id} is project {other}'s: pass --project {shlex.quote(other)}"
        if other
        else ""
    )
    if current is None:
        raise LockfileError(f"{where} is not locked: no lease is held{hint}")
    raise LockfileError(
        f"{where}: no lease with id {lock_id}; the current lease is {current.describe()}{hint}"
    )
