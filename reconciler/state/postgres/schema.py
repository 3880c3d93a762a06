"""The backend's tables, created and migrated by the tool itself.

``reconciler_schema`` holds one row: the schema version. ``ensure_schema`` brings a database
up to ``SCHEMA_VERSION`` by running each missing migration in order, in one transaction,
under a transaction-scoped advisory lock (so two runners starting at once do not both
migrate, and no session lock survives into a connection pooler). A database whose version is
newer than this reconciler knows is refused and left exactly as it is.

Tables (every row is scoped by ``project``, so projects share one database):

    reconciler_states     one row per project: lineage, serial, salt, origin, version, and
                          where ``state migrate`` moved it (``migrated_to``, schema 2)
    reconciler_resources  one row per address: the entry (jsonb) and its ``row_version``
    reconciler_pending    one row per pending intent, with its ``row_version``
    reconciler_history    one row per write (serial, time, actor, CI run, operation, plan
                          digest, changes); UPDATE and DELETE are refused by a trigger
    reconciler_leases     one row per project while an apply holds its lease

Tables are created in the connection's first ``search_path`` schema (``public`` by default;
``options=-csearch_path=NAME`` in the connection string picks another).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.state.postgres.conninfo import DatabaseError, refusal

if TYPE_CHECKING:
    from reconciler.state.postgres.conninfo import Conn

#: the schema this reconciler reads and writes
SCHEMA_VERSION = 2

#: key of the advisory lock taken (per transaction) while migrating
_MIGRATION_LOCK = 0x7265636F6E63  # "reconc"

#: migration N brings a database from version N-1 to N
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """
        CREATE TABLE reconciler_states (
            project          text PRIMARY KEY,
            lineage          text NOT NULL,
            serial           bigint NOT NULL,
            lockfile_version integer NOT NULL,
            salt             text NOT NULL,
            origin           text,
            last_write       text,
            updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """,
        """
        CREATE TABLE reconciler_resources (
            project        text NOT NULL REFERENCES reconciler_states ON DELETE CASCADE,
            address        text NOT NULL,
            kind           text NOT NULL,
            entry          jsonb NOT NULL,
            row_version    bigint NOT NULL,
            updated_serial bigint NOT NULL,
            PRIMARY KEY (project, address)
        )
        """,
        """
        CREATE TABLE reconciler_pending (
            project     text NOT NULL REFERENCES reconciler_states ON DELETE CASCADE,
            address     text NOT NULL,
            intent      jsonb NOT NULL,
            row_version bigint NOT NULL,
            PRIMARY KEY (project, address)
        )
        """,
        """
        CREATE TABLE reconciler_history (
            project     text NOT NULL,
            lineage     text NOT NULL,
            serial      bigint NOT NULL,
            at          timestamptz NOT NULL,
            actor       text NOT NULL,
            ci_run      text,
            operation   text NOT NULL,
            plan_digest text,
            changes     jsonb NOT NULL,
            PRIMARY KEY (project, lineage, serial)
        )
        """,
        """
        CREATE INDEX reconciler_history_changes ON reconciler_history
        USING gin (changes jsonb_path_ops)
        """,
        """
        CREATE FUNCTION reconciler_history_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'reconciler_history is append-only';
        END
        $$
        """,
        """
        CREATE TRIGGER reconciler_history_append_only
        BEFORE UPDATE OR DELETE ON reconciler_history
        FOR EACH ROW EXECUTE FUNCTION reconciler_history_append_only()
        """,
        """
        CREATE TABLE reconciler_leases (
            project      text PRIMARY KEY,
            id           text NOT NULL,
            pid          integer NOT NULL,
            host         text NOT NULL,
            username     text NOT NULL,
            ci_run       text,
            operation    text NOT NULL,
            started_at   timestamptz NOT NULL,
            heartbeat_at timestamptz NOT NULL,
            expires_at   timestamptz NOT NULL
        )
        """,
    ),
    # a project's state moved into a lockfile: the row says where (``MigratedTo``), and
    # every command refuses it
    2: ("ALTER TABLE reconciler_states ADD COLUMN migrated_to jsonb",),
}


def _version(conn: Conn) -> int:
    """The schema version of the database (0: none yet)."""
    row = conn.execute("SELECT to_regclass('reconciler_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT version FROM reconciler_schema WHERE id = 1").fetchone()
    return int(str(got[0])) if got else 0


def schema_version(conn: Conn, name: str) -> int:
    """The schema version found (0: no tables yet), without creating anything.

    Raises:
        DatabaseError: the schema is newer than this reconciler knows.
    """
    found = _version(conn)
    check_version(found, name)
    return found


def check_version(version: int, name: str) -> None:
    """Refuse a schema newer than this reconciler knows.

    Raises:
        DatabaseError: ``version`` > ``SCHEMA_VERSION``.
    """
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{name}: the state database has schema version {version}, newer than this "
            f"reconciler knows ({SCHEMA_VERSION}); upgrade reconciler (the database was not "
            "changed)"
        )


def ensure_schema(conn: Conn, name: str) -> int:
    """Create or migrate the tables up to ``SCHEMA_VERSION``; return the version found.

    Raises:
        DatabaseError: the schema is newer than this reconciler knows (nothing is changed),
            or the database refused a migration (it is rolled back).
    """
    import psycopg

    found = _version(conn)
    check_version(found, name)
    if found == SCHEMA_VERSION:
        return found
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS reconciler_schema ("
                " id integer PRIMARY KEY CHECK (id = 1),"
                " version integer NOT NULL,"
                " migrated_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            current = _version(conn)  # another runner may have migrated meanwhile
            check_version(current, name)
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO reconciler_schema (id, version) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                "migrated_at = clock_timestamp()",
                (SCHEMA_VERSION,),
            )
    except psycopg.Error as e:
        raise DatabaseError(
            f"{name}: cannot create or migrate the state tables (nothing was changed): "
            f"{refusal(e, conn.info.dsn)}"  # the dsn holds no password
        ) from None
    return found
