"""Commands that only read the state never create tables in the database they are pointed at.

A ``--backend`` with a wrong database name (the application's database, a colleague's) or a
first look at a new one: ``state list`` said "does not exist: no entries; check --backend"
after it had created six ``reconciler_*`` tables, a function and a trigger there. Reading
commands (``state list|show|history``, ``plan``, ``drift``, ``unlock``) now read an absent
schema as an empty state; the first write (``apply``, ``state migrate``) creates it. A user
who may only read (no CREATE on the schema) can run them too.
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


def tables(server: PostgresServer, url: str) -> list[str]:
    rows = server.execute(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'reconciler%' ORDER BY 1",
        url.rsplit("/", 1)[1],
    )
    return [str(name) for (name,) in rows]


def test_reading_commands_leave_a_database_without_state_as_it_was(
    workdir: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database()
    name = f"{redact(url)} (project default)"
    listed = ok("--backend", url, "state", "list")
    assert listed.stderr == (
        f"{name} does not exist: no entries (nothing was applied with it yet; check --backend "
        "and --project).\n"
    )
    shown = cli("--backend", url, "state", "show", "agent.coder")
    assert shown.exit_code == 1 and f"{name} does not exist" in shown.stderr
    assert ok("--backend", url, "state", "history").stderr == f"{name} has no history.\n"
    unlocked = cli("--backend", url, "unlock", "0123abcd")
    assert unlocked.exit_code == 1
    assert unlocked.stderr == f"Error: {name} is not locked: no lease is held\n"
    planned = cli("--backend", url, "plan", "--detailed-exitcode")
    assert planned.exit_code == 2, (planned.stdout, planned.stderr)
    assert "Plan: 8 to create" in planned.stdout
    drifted = cli("--backend", url, "drift")
    assert drifted.exit_code == 0, (drifted.stdout, drifted.stderr)
    assert tables(postgres_server, url) == []
    # the first write creates the schema
    ok("--backend", url, "apply", "--auto-approve")
    assert "reconciler_states" in tables(postgres_server, url)
    assert "agent.coder" in ok("--backend", url, "state", "list").stdout


def test_a_user_who_may_only_read_reads_and_is_told_why_apply_cannot_write(
    workdir: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database_for_a_new_role()
    listed = ok("--backend", url, "state", "list")
    assert "does not exist: no entries" in listed.stderr
    result = cli("--backend", url, "apply", "--auto-approve")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith(
        f"Error: {redact(url)}: cannot create or migrate the state tables (nothing was "
        "changed): permission denied for schema public; "
    ), result.stderr
    assert "LINE 1" not in result.stderr


@pytest.mark.parametrize(
    "edit",
    [("state", "rm", "agent.coder"), ("state", "mv", "agent.coder", "agent.writer")],
    ids=["rm", "mv"],
)
def test_state_edits_of_a_database_without_state_create_nothing_there(
    workdir: Path, postgres_server: PostgresServer, edit: tuple[str, ...]
) -> None:
    # a wrong --backend (or a first look at a new database): `state rm|mv` took the lease,
    # creating the reconciler_* tables, before it said there was no state
    url = postgres_server.new_database()
    result = cli("--backend", url, *edit)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert f"{redact(url)} (project default) does not exist: no entries" in result.stderr
    assert tables(postgres_server, url) == []


def test_a_reader_of_a_database_an_older_reconciler_wrote_reads_it_as_it_is(
    workdir: Path, postgres_server: PostgresServer
) -> None:
    # schema 2 added a column: every reader of a schema-1 database migrated it first, so a
    # drift job whose role may only read failed after the upgrade until a writer ran
    url = postgres_server.new_database()
    ok("--backend", url, "apply", "--auto-approve")
    db = url.rsplit("/", 1)[1]
    postgres_server.execute(
        "ALTER TABLE reconciler_states DROP COLUMN migrated_to; "
        "UPDATE reconciler_schema SET version = 1",
        db,
    )
    role = "r_" + db[2:10]
    postgres_server.execute(f"CREATE ROLE {role} LOGIN")
    postgres_server.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}", db)
    reader = url.replace("postgresql://postgres@", f"postgresql://{role}@")
    planned = cli("--backend", reader, "plan", "--detailed-exitcode")
    assert planned.exit_code == 0, (planned.stdout, planned.stderr)
    assert "No changes" in planned.stdout
    assert cli("--backend", reader, "drift").exit_code == 0
    assert "agent.coder" in ok("--backend", reader, "state", "list").stdout
    assert postgres_server.execute("SELECT version FROM reconciler_schema", db) == [(1,)]
    # the next writer migrates it
    ok("--backend", url, "apply", "--auto-approve")
    assert postgres_server.execute("SELECT version FROM reconciler_schema", db) == [(2,)]
