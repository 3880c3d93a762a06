"""``state rm`` and ``state mv`` under ``--backend``, as a platform team's engineer types them.

One database holds the state of many projects (``--project``); a command run without the
right ``--project`` (or with a typo in it) reads a project that holds no state. ``state
list`` and ``state show`` say so and name the flags to check; ``state rm`` and ``state mv``
said "no entry for ADDR in the lockfile; the lockfile has no entries", which names no
database and no project, and reads as if the entry had been lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok
from support.postgres import PostgresServer

from reconciler.state.postgres.conninfo import redact

pytestmark = pytest.mark.tcp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "command", [("state", "rm", "agent.coder"), ("state", "mv", "agent.coder", "agent.x")]
)
def test_an_edit_in_a_project_without_state_names_the_project_and_the_flags(
    workdir: Path, postgres_server: PostgresServer, command: tuple[str, ...]
) -> None:
    url = postgres_server.new_database()
    ok("--backend", url, "apply", "--auto-approve")
    result = cli("--backend", url, "--project", "web", *command)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no entry for agent.coder: {redact(url)} (project web) does not exist: no "
        "entries (nothing was applied with it yet; check --backend and --project)\n"
    )
    # nothing written for the project typed, and the project applied is untouched
    dbname = url.rsplit("/", 1)[1]
    rows = postgres_server.execute(
        "SELECT (SELECT count(*) FROM reconciler_states WHERE project = 'web'), "
        "(SELECT count(*) FROM reconciler_history WHERE project = 'web'), "
        "(SELECT count(*) FROM reconciler_leases)",
        dbname,
    )
    assert rows == [(0, 0, 0)]
    assert "agent.coder" in ok("--backend", url, "state", "list").stdout


def test_a_schema_the_connection_names_but_that_does_not_exist_is_told_how_to_make(
    workdir: Path, postgres_server: PostgresServer
) -> None:
    # the README's way to keep another state in the same database: a search_path schema
    url = postgres_server.new_database()
    infra = url + "?options=-csearch_path%3Dinfra"
    ok("apply", "--auto-approve")
    result = cli("state", "migrate", "--to", infra)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        f"Error: {redact(url)} (schema infra): cannot create or migrate the state tables "
        "(nothing was changed): no schema has been selected to create in; the schema infra "
        "that the connection's search_path names does not exist: create it (CREATE SCHEMA "
        "infra) or fix options=-csearch_path\n"
    )


def test_unlock_without_the_backend_says_where_it_looked(
    workdir: Path, postgres_server: PostgresServer
) -> None:
    # the lease id copied from a CI job's log (which set RECONCILER_BACKEND), run on a laptop
    # without it: "state/reconciler.lock is not locked" read as "the lease is gone already"
    from reconciler.state.postgres.lease import PgLease

    url = postgres_server.new_database()
    lease = PgLease(url, "default", ttl=60)
    info = lease.acquire("apply")
    try:
        result = cli("unlock", info.id)
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: state/reconciler.lock does not exist, so it holds no lock: nothing was "
            "applied with it (check --lockfile). A lease in a PostgreSQL database is cleared "
            "with --backend (or RECONCILER_BACKEND) set to it\n"
        )
        assert lease.held
        ok("--backend", url, "unlock", "--force", info.id)
    finally:
        lease.release()
