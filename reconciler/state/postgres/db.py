"""One connection to the state database, reopened when it drops.

``Database.run(work)`` runs ``work(connection)``; when the connection is lost (the server
restarted, a pooler or a firewall cut it, ``pg_terminate_backend``) it reconnects and runs
``work`` again, up to ``ATTEMPTS`` times. A write whose COMMIT answer was lost may have
happened: ``run(..., landed=...)`` asks ``landed(connection)`` first and does not write twice.
Any other database error becomes a ``DatabaseError`` naming the database, password removed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from reconciler.state.postgres.conninfo import (
    DatabaseError,
    DatabaseUnreachable,
    connect,
    redact,
    refusal,
    schema_of,
    scrub,
)
from reconciler.state.postgres.schema import SCHEMA_VERSION, ensure_schema, schema_version

if TYPE_CHECKING:
    from reconciler.state.postgres.conninfo import Conn

T = TypeVar("T")

logger = logging.getLogger("reconciler.state")

#: how many times a piece of work is tried over fresh connections
ATTEMPTS = 4
#: seconds between two attempts (the n-th waits n times this)
BACKOFF = 0.25


class Database:
    """The state database named by ``conninfo`` (connected on first use)."""

    def __init__(self, conninfo: str, *, purpose: str = "", create: bool = True) -> None:
        self.conninfo = conninfo
        #: create the tables on first use; False: a reader, which finds a database without
        #: them empty (``has_schema``) and leaves it as it is until ``create_schema``
        self.create = create
        schema = schema_of(conninfo)
        # another schema is another state: name it, or two states read the same
        self.name = redact(conninfo) + (f" (schema {schema})" if schema else "")
        self.purpose = purpose
        self.mutex = threading.RLock()
        self._conn: Conn | None = None
        #: the schema version seen (0: no tables yet); a reader reads an older one as it is,
        #: the first write (``create_schema``) migrates it
        self.version = 0

    def connection(self) -> Conn:
        """The open connection (opened, and the schema checked, on first use)."""
        with self.mutex:
            conn = self._conn
            if conn is None or conn.closed:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = connect(self.conninfo, purpose=self.purpose)
                try:
                    self._check_schema(conn)
                except BaseException:
                    conn.close()
                    raise
                self._conn = conn
            elif not self.version:
                self._check_schema(conn)  # a reader's: the first write may have created it
            return conn

    def _check_schema(self, conn: Conn, *, create: bool | None = None) -> None:
        """Create or migrate the tables (a writer), or only see which version is there (a
        reader: a role that may only read can read a schema an older reconciler wrote)."""
        if self.version == SCHEMA_VERSION:
            return
        if self.create if create is None else create:
            ensure_schema(conn, self.name)
            self.version = SCHEMA_VERSION
        elif not self.version:
            self.version = schema_version(conn, self.name)

    def has_schema(self) -> bool:
        """Whether the state tables exist (always, once created). Creates nothing for a
        reader (``create=False``): a database nothing was written to stays as it is.

        Raises:
            DatabaseError: unreachable, or a schema newer than this reconciler knows.
        """
        return self.run(lambda _conn: self.version > 0, what="read the state")

    def create_schema(self) -> None:
        """Create (or migrate) the tables now: before a reader's first write.

        Raises:
            DatabaseError: unreachable, or the role may not create them.
        """

        def create(conn: Conn) -> None:
            self._check_schema(conn, create=True)

        self.run(create, what="create the state tables")

    def drop(self) -> None:
        """Forget the connection (after it failed); the next use opens a new one."""
        with self.mutex:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is already broken
                conn.close()

    close = drop

    def run(
        self,
        work: Callable[[Conn], T],
        *,
        what: str,
        landed: Callable[[Conn], T | None] | None = None,
        attempts: int = ATTEMPTS,
    ) -> T:
        """``work(connection)``, again over a new connection when the connection drops.

        Args:
            what: what the work does, for messages ("read the state").
            landed: for a write: after a dropped connection, returns the write's result if it
                was committed after all (then it is not sent again), else None.
            attempts: how many connections to try (a heartbeat tries once: it runs again
                soon anyway, and must not hold up a release).

        Raises:
            DatabaseError: the database stayed unreachable, or refused the work.
        """
        import psycopg

        lost: BaseException | None = None
        for attempt in range(max(1, attempts)):
            if attempt:
                time.sleep(BACKOFF * attempt)
            reused = False
            try:
                with self.mutex:
                    reused = self._conn is not None and not self._conn.closed
                    conn = self.connection()
                    if lost is not None and landed is not None:
                        done = landed(conn)
                        if done is not None:
                            return done
                    return work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                if isinstance(e, psycopg.errors.QueryCanceled):
                    raise self.error(what, e) from None
                lost = e
                self.drop()
                # A connection kept open between uses that fails at once was mostly closed
                # while idle (idle_session_timeout, a pooler, a firewall): for a read,
                # reopening it is routine, not news for a CI log. A write whose commit may
                # have landed, a drop again, or of a new connection, is said.
                routine = attempt == 0 and reused and landed is None
                logger.log(
                    logging.DEBUG if routine else logging.WARNING,
                    "%s: the connection to the state database dropped (%s); reconnecting",
                    self.name,
                    scrub(str(e).strip() or type(e).__name__, self.conninfo),
                )
            except DatabaseUnreachable as e:
                lost = e
                self.drop()
            except psycopg.Error as e:
                raise self.error(what, e) from None
        assert lost is not None
        if isinstance(lost, DatabaseError):
            raise lost
        raise self.error(what, lost) from None

    def error(self, what: str, e: BaseException) -> DatabaseError:
        return DatabaseError(f"{self.name}: could not {what}: {refusal(e, self.conninfo)}")
