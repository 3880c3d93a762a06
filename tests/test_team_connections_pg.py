"""A platform team's state database is shared by every CI runner and laptop: a command opens
one connection to it, never one per question it asks (a PostgreSQL behind PgBouncer or a
small ``max_connections`` counts each, and each costs a TLS handshake and authentication).

Counted at the server: ``log_connections`` makes PostgreSQL log a line per connection it
authorises, naming the database; each test's database is fresh, so its lines are the test's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.gitops import DB, cli, edit, make_workdir, ok, out_of_band
from support.postgres import PostgresServer
from support.reliability import provider

from reconciler.provider import ProviderClient
from reconciler.provider.local import FaultConfig
from reconciler.state.postgres.lease import PgLease

pytestmark = pytest.mark.tcp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


@pytest.fixture
def counted(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """The session's server, logging every connection it authorises (reset afterwards)."""
    postgres_server.execute("ALTER SYSTEM SET log_connections = on")
    postgres_server.execute("SELECT pg_reload_conf()")
    try:
        yield postgres_server
    finally:
        postgres_server.execute("ALTER SYSTEM RESET log_connections")
        postgres_server.execute("SELECT pg_reload_conf()")


def connections(server: PostgresServer, url: str) -> int:
    """How many connections to the database of ``url`` the server has authorised so far."""
    dbname = url.rsplit("/", 1)[1]
    log = server.log.read_text(errors="replace")
    return sum(
        1
        for line in log.splitlines()
        if "connection authorized" in line and f"database={dbname} " in line + " "
    )


def test_plan_warning_of_a_held_lease_reuses_the_plans_connection(
    workdir: Path, counted: PostgresServer
) -> None:
    url = counted.new_database()
    ok("--backend", url, "apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be specific.")
    lease = PgLease(url, "default", ttl=60)  # a teammate's apply, in progress
    info = lease.acquire("apply")
    try:
        before = connections(counted, url)
        result = cli("--backend", url, "plan")
        after = connections(counted, url)
    finally:
        lease.release()
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert f"Warning: {info.describe()} holds the lock of" in result.stderr
    # one connection read the state and then asked who holds the lease
    assert after - before == 1


def test_drift_asks_about_the_lease_on_the_connection_that_read_the_state(
    workdir: Path, counted: PostgresServer
) -> None:
    url = counted.new_database()
    ok("--backend", url, "apply", "--auto-approve")
    before = connections(counted, url)
    ok("--backend", url, "drift")  # no drift: the state read, the lease asked twice
    assert connections(counted, url) - before == 1

    out_of_band(by_hand)
    lease = PgLease(url, "default", ttl=60)  # a teammate's apply, in progress
    info = lease.acquire("apply")
    try:
        before = connections(counted, url)
        result = cli("--backend", url, "drift")
        after = connections(counted, url)
    finally:
        lease.release()
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"{info.describe()} holds the lock of" in result.stdout + result.stderr
    assert after - before == 1


async def by_hand(client: ProviderClient) -> None:
    envs = [e async for e in client.environments.list()]
    await client.environments.update(envs[0]["id"], {"description": "by hand"})


def test_a_connection_the_server_closed_while_idle_is_reopened_without_a_word(
    workdir: Path, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # a pooler, a proxy or idle_session_timeout closes a connection left idle (here while
    # plan refreshes and drift lists, the provider answering slowly): reopening it is
    # routine, not a warning in CI logs
    url = postgres_server.new_database()
    dbname = url.rsplit("/", 1)[1]
    slow = {"left": 0}

    def pause(method: str, path: str) -> bool:
        if method == "GET" and slow["left"] > 0:
            slow["left"] -= 1
            time.sleep(4)  # longer than the server lets a connection idle (3 s, for load)
        return False

    with provider(workdir / DB, FaultConfig(latency_ms=0)) as (provider_url, tap):
        tap.after = pause
        given = ("--backend", url, "--provider-url", provider_url)
        ok(*given, "apply", "--auto-approve")
        postgres_server.execute(f"ALTER DATABASE {dbname} SET idle_session_timeout = '3s'")
        edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be specific.")
        lease = PgLease(url, "default", ttl=600)  # no heartbeat during the test
        info = lease.acquire("apply")
        try:
            with caplog.at_level("WARNING", logger="reconciler.state"):
                slow["left"] = 1
                planned = cli(*given, "plan")
                slow["left"] = 1
                drifted = cli(*given, "drift")
        finally:
            lease.release()
    # (the reopening is logged for --debug: a DEBUG record, as release's below may be)
    said = [
        r.getMessage()
        for r in caplog.records
        if r.name == "reconciler.state" and r.levelno >= logging.WARNING
    ]
    assert said == []
    assert planned.exit_code == 0, (planned.stdout, planned.stderr)
    assert planned.stderr.startswith(f"Warning: {info.describe()} holds the lock of")
    assert planned.stderr.count("\n") == 1, planned.stderr
    assert drifted.exit_code == 0, (drifted.stdout, drifted.stderr)
    assert drifted.stderr == ""
