"""The PostgreSQL state backend against a real server (issue #17): schema, CAS, history,
leases, projects, redaction. A throwaway cluster per test session (``support.postgres``)."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from support.postgres import PostgresServer, wait_for

from reconciler.errors import LockfileError, LockHeld, LockLost
from reconciler.state import LockEntry, Lockfile, PendingIntent, RunInfo, json_digest
from reconciler.state.model import utc_timestamp
from reconciler.state.postgres.conninfo import DatabaseError, redact, scrub
from reconciler.state.postgres.db import Database
from reconciler.state.postgres.lease import PgLease
from reconciler.state.postgres.location import PgLocation
from reconciler.state.postgres.schema import SCHEMA_VERSION
from reconciler.state.postgres.store import PgStateStore, StateConflict


def entry(i: int, kind: str = "agent") -> LockEntry:
    now = utc_timestamp()
    return LockEntry(
        kind=kind, id=f"{kind}_{i:05d}", version=i, spec_digest=json_digest(i),
        created_at=now, updated_at=now,
    )  # fmt: skip


def read_db(url: str, project: str = "p") -> Lockfile:
    location = PgLocation(url, project)
    try:
        return location.read()
    finally:
        location.close()


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql.encode()).fetchall())


def test_the_tool_creates_its_schema_once(pg_url: str) -> None:
    location = PgLocation(pg_url, "p")
    try:
        assert not location.exists()
        assert location.read().serial == 0
        # reading creates nothing (tests/test_team_readonly_pg.py); the first write does
        assert rows(pg_url, "SELECT to_regclass('reconciler_schema') IS NULL") == [(True,)]
        location.db.create_schema()
    finally:
        location.close()
    assert rows(pg_url, "SELECT version FROM reconciler_schema") == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in rows(pg_url, "SELECT tablename FROM pg_tables WHERE "
                                 "tablename LIKE 'reconciler_%'")}  # fmt: skip
    assert tables == {
        "reconciler_schema", "reconciler_states", "reconciler_resources",
        "reconciler_pending", "reconciler_history", "reconciler_leases",
    }  # fmt: skip
    again = PgLocation(pg_url, "p")  # a second open finds it and changes nothing
    try:
        again.read()
    finally:
        again.close()
    assert rows(pg_url, "SELECT version FROM reconciler_schema") == [(SCHEMA_VERSION,)]


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str) -> None:
    db = Database(pg_url)
    db.create_schema()
    db.close()
    rows(pg_url, "UPDATE reconciler_schema SET version = 99 RETURNING version")
    before = rows(pg_url, "SELECT tablename FROM pg_tables ORDER BY 1")
    location = PgLocation(pg_url, "p")
    with pytest.raises(DatabaseError, match=r"schema version 99, newer than this reconciler"):
        location.read()
    location.close()
    assert rows(pg_url, "SELECT tablename FROM pg_tables ORDER BY 1") == before
    assert rows(pg_url, "SELECT version FROM reconciler_schema") == [(99,)]


def test_a_write_touches_only_the_changed_rows(pg_url: str) -> None:
    db = Database(pg_url)
    store = PgStateStore(db, "p")
    store.load()
    resources = {f"agent.a{i:04d}": entry(i) for i in range(500)}
    store.commit(lambda lf: lf.model_copy(update={"resources": resources}))
    before = dict(rows(pg_url, "SELECT address, row_version FROM reconciler_resources"))
    sent_before = store.bytes_written
    store.commit(lambda lf: lf.with_entry("agent.a0007", entry(10_007)))
    one_change = store.bytes_written - sent_before
    after = dict(rows(pg_url, "SELECT address, row_version FROM reconciler_resources"))
    changed = {a for a in after if after[a] != before[a]}
    assert changed == {"agent.a0007"} and after["agent.a0007"] == 2
    assert one_change < 1000, "a one-entry write sends about one entry, not the whole state"
    db.close()
    lf = read_db(pg_url)
    assert lf.serial == 2 and len(lf.resources) == 500
    assert lf.resources["agent.a0007"].id == "agent_10007"


def test_a_stale_compare_and_swap_is_refused(pg_url: str) -> None:
    first, second = PgStateStore(Database(pg_url), "p"), PgStateStore(Database(pg_url), "p")
    first.load()
    first.commit(lambda lf: lf.with_entry("agent.a", entry(1)).with_entry("agent.b", entry(2)))
    first.load()
    second.load()
    first.commit(lambda lf: lf.with_entry("agent.a", entry(11)))
    with pytest.raises(StateConflict, match=r"agent\.a changed in the database since"):
        second.commit(lambda lf: lf.with_entry("agent.a", entry(21)))
    # the refused transaction wrote nothing, not even its other rows
    with pytest.raises(StateConflict):
        second.commit(
            lambda lf: lf.with_entry("agent.a", entry(22)).with_entry("agent.c", entry(3))
        )
    # and a removal of a row someone else changed is refused as well
    with pytest.raises(StateConflict):
        second.commit(lambda lf: lf.without("agent.a"))
    # a write to another row does not overwrite the first writer's change
    second.commit(lambda lf: lf.with_entry("agent.b", entry(12)))
    lf = read_db(pg_url)
    assert lf.resources["agent.a"].id == "agent_00011"
    assert lf.resources["agent.b"].id == "agent_00012"
    assert "agent.c" not in lf.resources
    # two creates of one address: the second is refused too
    third = PgStateStore(Database(pg_url), "p")
    third.load()
    first.commit(lambda lf: lf.with_pending("agent.d", intent()))
    with pytest.raises(StateConflict, match="pending intent of agent.d"):
        third.commit(lambda lf: lf.with_pending("agent.d", intent()))
    for store in (first, second, third):
        store.db.close()


def intent() -> PendingIntent:
    return PendingIntent(kind="agent", operation="create", started_at=utc_timestamp())


def test_projects_share_one_database_without_seeing_each_other(pg_url: str) -> None:
    for project, n in (("alpha", 3), ("beta", 5)):
        store = PgStateStore(Database(pg_url), project)
        store.load()
        store.commit(
            lambda lf, n=n: lf.model_copy(
                update={"resources": {f"agent.x{i}": entry(i) for i in range(n)}}
            )
        )
        store.db.close()
    alpha, beta = PgLocation(pg_url, "alpha"), PgLocation(pg_url, "beta")
    assert len(alpha.read().resources) == 3 and len(beta.read().resources) == 5
    assert alpha.read().lineage != beta.read().lineage
    lease = alpha.new_lock()
    lease.acquire()
    try:
        other = beta.new_lock()  # another project's lease is free
        other.acquire()
        other.release()
    finally:
        lease.release()
        alpha.close()
        beta.close()


def test_history_is_append_only_and_names_the_actor(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/infra")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")
    store = PgStateStore(Database(pg_url), "p", run=RunInfo(plan_digest="sha256:" + "ab" * 32))
    store.load()
    store.commit(lambda lf: lf.with_pending("agent.a", intent()))  # an intent: no history
    store.commit(lambda lf: lf.with_entry("agent.a", entry(1)).without_pending("agent.a"))
    store.commit(lambda lf: lf.with_entry("agent.b", entry(2)))
    store.commit(lambda lf: lf.with_entry("agent.a", entry(3)))
    store.commit(lambda lf: lf.without("agent.b"))
    store.db.close()
    location = PgLocation(pg_url, "p")
    records = location.history()
    assert [r.serial for r in records] == [2, 3, 4, 5]
    first = records[0]
    assert first.ci_run == "github acme/infra run 4242 attempt 2"
    assert "@" in first.actor and first.plan_digest == "sha256:" + "ab" * 32
    assert [(c.address, c.change) for c in first.changes] == [("agent.a", "created")]
    of_a = location.history("agent.a")
    # agent.a's entry 3 names another object, written without a create: found again
    assert [(r.serial, r.changes[0].change, r.changes[0].version) for r in of_a] == [
        (2, "created", 1),
        (4, "healed", 3),
    ]
    assert [c.change for r in location.history("agent.b") for c in r.changes] == [
        "healed",
        "removed",
    ]
    location.close()
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        rows(pg_url, "UPDATE reconciler_history SET actor = 'x' RETURNING 1")
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        rows(pg_url, "DELETE FROM reconciler_history RETURNING 1")


def test_a_second_lease_fails_at_once_naming_the_holder(pg_url: str) -> None:
    first = PgLease(pg_url, "p", ttl=60)
    info = first.acquire("apply")
    try:
        with pytest.raises(LockHeld) as refused:
            PgLease(pg_url, "p", ttl=60).acquire("apply")
        text = str(refused.value)
        assert f"apply {info.id} (pid {info.pid} on host {info.host}" in text
        assert f"reconciler unlock {info.id}" in text
        assert refused.value.holder["id"] == info.id
        first.ensure_held()
    finally:
        first.release()
    again = PgLease(pg_url, "p", ttl=60)  # released: free at once
    again.acquire()
    again.release()


def test_an_expired_lease_is_taken_over_and_its_holder_stops(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead = PgLease(pg_url, "p", ttl=1)
    info = dead.acquire()
    dead._stop.set()  # the holder freezes: no more heartbeats
    location = PgLocation(pg_url, "p")
    store = location.store(dead, RunInfo())
    store.load()
    store.commit(lambda lf: lf.with_entry("agent.a", entry(1)))  # fenced, and still ours

    def expired() -> bool:
        return bool(
            rows(pg_url, "SELECT expires_at < clock_timestamp() FROM reconciler_leases")[0][0]
        )

    wait_for("the lease expired", expired)
    with caplog.at_level(logging.WARNING, logger="reconciler.state"):
        successor = PgLease(pg_url, "p", ttl=60)
        successor.acquire()
    assert f"took over expired lease apply {info.id}" in caplog.text
    try:
        with pytest.raises(LockLost, match="taken over or cleared"):
            store.commit(lambda lf: lf.with_entry("agent.b", entry(2)))
        with pytest.raises(LockLost, match=f"lease lost to apply {successor.info.id}"):  # type: ignore[union-attr]
            dead.ensure_held()
    finally:
        successor.release()
        dead.release()
        location.close()
    assert set(read_db(pg_url).resources) == {"agent.a"}


def test_unlock_by_id_and_the_holder_notices(pg_url: str) -> None:
    holder = PgLease(pg_url, "p", ttl=60)
    info = holder.acquire()
    location = PgLocation(pg_url, "p")
    try:
        with pytest.raises(
            LockfileError, match=f"no lease with id nope; the current lease is apply {info.id}"
        ):
            location.unlock("nope")
        assert location.read_lock() == info.model_copy(
            update={
                "heartbeat_at": location.read_lock().heartbeat_at,
                "expires_at": location.read_lock().expires_at,
            }
        )  # type: ignore[union-attr]
        with pytest.raises(LockfileError, match="may still be running .* pass --force"):
            location.unlock(info.id)  # a lease not expired: its holder may be alive
        removed = location.unlock(info.id, force=True)
        assert removed.id == info.id and location.read_lock() is None
        holder._verified_at = 0  # the next check reads the row at once
        with pytest.raises(LockLost, match="lease lost to nobody"):
            holder.ensure_held()
        with pytest.raises(LockfileError, match="is not locked"):
            location.unlock(info.id)
    finally:
        holder.release()
        location.close()


def test_a_lease_survives_a_dropped_connection(
    pg_url: str, postgres_server: PostgresServer
) -> None:
    holder = PgLease(pg_url, "p", ttl=2)
    info = holder.acquire()
    location = PgLocation(pg_url, "p")
    store = location.store(holder, RunInfo())
    store.load()
    dbname = pg_url.rsplit("/", 1)[1]
    assert postgres_server.terminate(dbname) >= 1
    beat = rows(pg_url, "SELECT heartbeat_at FROM reconciler_leases")[0][0]
    wait_for(
        "a heartbeat over a new connection",
        lambda: rows(pg_url, "SELECT heartbeat_at FROM reconciler_leases")[0][0] != beat,
    )
    holder._verified_at = 0
    holder.ensure_held()
    store.commit(lambda lf: lf.with_entry("agent.a", entry(1)))  # reconnects too
    assert rows(pg_url, "SELECT id FROM reconciler_leases") == [(info.id,)]
    holder.release()
    location.close()


def test_passwords_never_reach_a_message() -> None:
    url = "postgresql://alice:s3cret-canary@db.example.com:5433/state?sslmode=require"
    assert redact(url) == "postgresql://alice@db.example.com:5433/state"
    words = "host=/run/postgresql dbname=state user=bob password=s3cret-canary"
    assert redact(words) == "postgresql://bob@[/run/postgresql]/state"
    assert "s3cret-canary" not in scrub(f"failed for {url}: s3cret-canary", url)
    assert redact("postgresql://%zz") == "postgresql://(unparsable connection string)"


def test_an_unreachable_database_is_named_without_its_password(
    postgres_server: PostgresServer,
) -> None:
    url = f"postgresql://alice:s3cret-canary@127.0.0.1:{postgres_server.port}/nosuchdb"
    with pytest.raises(DatabaseError) as failed:
        read_db(url)
    text = str(failed.value)
    assert "s3cret-canary" not in text
    assert f"postgresql://alice@127.0.0.1:{postgres_server.port}/nosuchdb" in text


def test_migrate_round_trip_keeps_lineage_serial_and_history(pg_url: str, tmp_path: Path) -> None:
    from reconciler.app import Settings
    from reconciler.app.state import migrate_state, state_history
    from reconciler.state import StateStore

    lockfile = tmp_path / "state" / "reconciler.lock"
    store = StateStore(lockfile, project="p")
    store.load()
    store.commit(lambda lf: lf.with_entry("agent.a", entry(1)))
    store.commit(
        lambda lf: lf.with_entry("vault.v", entry(2, "vault")).with_pending("agent.b", intent())
    )
    store.close()
    original = store.lockfile
    file_settings = Settings(lockfile=lockfile, project="p")
    result = migrate_state(file_settings, pg_url)
    assert (result.entries, result.pending, result.history, result.serial) == (2, 1, 2, 2)
    db_settings = Settings(lockfile=tmp_path / "unused.lock", project="p", backend=pg_url)
    in_db = read_db(pg_url)
    assert in_db == original
    assert [r.serial for r in state_history(db_settings)] == [1, 2]
    # the lockfile moved now says where its state went, and is refused as a source
    with pytest.raises(LockfileError, match="its state was moved to postgresql://"):
        migrate_state(file_settings, pg_url)
    # forced, it is copied all the same: over a non-empty target
    migrate_state(file_settings, pg_url, force=True)
    back = tmp_path / "back" / "reconciler.lock"
    migrate_state(db_settings, str(back))
    from reconciler.state import read_lockfile

    assert read_lockfile(back, project="p") == original
    # the database moved into a lockfile says where its state went, and is refused too
    with pytest.raises(LockfileError, match=r"its state was moved to \S*back"):
        migrate_state(db_settings, str(back))
    migrate_state(db_settings, str(back), force=True)
    assert [r.serial for r in state_history(Settings(lockfile=back, project="p"))] == [1, 2]


def test_lockfile_state_equals_database_state_after_the_same_edits(
    pg_url: str, tmp_path: Path
) -> None:
    """The two implementations of one interface agree, edit for edit."""
    from reconciler.state import StateStore

    file_store = StateStore(tmp_path / "x.lock", project="p")
    db_store = PgStateStore(Database(pg_url), "p")
    base = file_store.load()
    db_store._current = base  # the same lineage and salt on both sides
    # made once: each edit runs on both stores, and entries carry the time they were made
    pending, one, two, env = intent(), entry(1), entry(2), entry(3, "environment")
    edits = [
        lambda lf: lf.with_pending("agent.a", pending),
        lambda lf: lf.with_entry("agent.a", one).without_pending("agent.a"),
        lambda lf: lf.model_copy(update={"origin": "local:provider.db"}),
        lambda lf: lf.with_entry("agent.a", two).with_entry("environment.e", env),
        lambda lf: lf.without("agent.a"),
    ]
    for edit in edits:
        assert file_store.commit(edit) == db_store.commit(edit)
    db_store.db.close()
    assert read_db(pg_url) == file_store.lockfile
