"""QA of the shared state in PostgreSQL, driven through the command line (``CliRunner`` in a
fresh project, the embedded local provider) against a real server (``support.postgres``):

- ``state migrate --to`` the database it reads under another host alias (``localhost`` for
  ``127.0.0.1``) says that is where the state already is, never "locked by state migrate ID;
  run `reconciler unlock ID`"; and to the same database in another schema (libpq's
  ``options=-csearch_path=...``, a separate state) it copies, instead of refusing it as the
  same place because the two URLs name the same database; messages name that schema, so
  the two states never read alike;
- an older copy forced over a database state that went on without it (``state migrate
  --force``) records what it put back and took away: ``state history ADDR`` of an entry
  the copy brought back ends on that migration, not on the ``state rm`` it undid (the
  record had no changes).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from support.gitops import cli, edit, make_workdir, ok

from reconciler.state.postgres.conninfo import redact

pytestmark = pytest.mark.tcp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_migrate_to_the_same_database_under_another_host_alias_says_so(
    workdir: Path, pg_url: str
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    parts = urlsplit(pg_url)
    alias = urlunsplit(parts._replace(netloc=parts.netloc.replace("127.0.0.1", "localhost")))
    result = cli("--backend", pg_url, "state", "migrate", "--to", alias)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        f"Error: state migrate --to {redact(alias)} (project default): that is "
        f"{redact(pg_url)} (project default), where the state already is\n"
    ), result.stderr
    # nothing is left locked
    ok("--backend", pg_url, "state", "rm", "agent.coder")


def test_migrate_to_another_schema_of_the_same_database_copies(workdir: Path, pg_url: str) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA infra")
    infra = pg_url + "?options=-csearch_path%3Dinfra"
    listed = ok("--backend", pg_url, "state", "list").stdout
    moved = cli("--backend", pg_url, "state", "migrate", "--to", infra)
    assert moved.exit_code == 0, (moved.stdout, moved.stderr)
    # the two states are told apart by their schema, not both named alike
    assert (
        f"from {redact(pg_url)} (project default) to {redact(pg_url)} (schema infra) "
        "(project default)."
    ) in moved.stdout, moved.stdout
    assert ok("--backend", infra, "state", "list").stdout == listed
    with psycopg.connect(pg_url) as conn:
        schemas = conn.execute(
            "SELECT DISTINCT table_schema FROM information_schema.tables "
            "WHERE table_name LIKE 'reconciler_%'"
        ).fetchall()
    assert sorted(s for (s,) in schemas) == ["infra", "public"]
    # the same database and schema again is still refused
    again = cli("--backend", infra, "state", "migrate", "--to", infra)
    assert again.exit_code == 1
    assert again.stderr.endswith("that is where the state already is\n"), again.stderr


def test_a_forced_older_copy_records_what_it_changed_in_the_history(
    workdir: Path, pg_url: str
) -> None:
    ok("apply", "--auto-approve")  # the lockfile
    ok("state", "migrate", "--to", pg_url)
    ok("--backend", pg_url, "state", "rm", "agent.reviewer")  # the database goes on alone
    ok("state", "migrate", "--to", pg_url, "--force")  # the old lockfile, forced over it
    history = ok("--backend", pg_url, "state", "history", "agent.reviewer", "--json")
    last = json.loads(history.stdout.splitlines()[-1])
    assert last["operation"].startswith("state migrate --force (a copy at serial"), last
    assert [(c["address"], c["change"]) for c in last["changes"]] == [
        ("agent.reviewer", "recorded")  # put back, not created at the provider
    ], last
    assert "agent.reviewer " in ok("--backend", pg_url, "state", "list").stdout


def test_a_lockfile_healed_after_a_loss_migrates_and_the_database_takes_the_next_apply(
    workdir: Path, pg_url: str
) -> None:
    # the lockfile was lost and healed: its serials started again (the history file holds
    # #2 #3 then #1 #2 of the healed state). Migrated as it is, the database's next write
    # took serial 3 again and every apply failed ("duplicate key ... reconciler_history_pkey")
    # after changing the provider
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "Be specific and kind", "Be specific, brief and kind")
    ok("apply", "--auto-approve")
    (workdir / "state/reconciler.lock").unlink()
    ok("apply", "--auto-approve")  # heals: records everything again from the ownership tags
    serial = json.loads((workdir / "state/reconciler.lock").read_text())["serial"]
    lines = (workdir / "state/reconciler.lock.history").read_text().splitlines()
    assert max(json.loads(line)["serial"] for line in lines) > serial  # the replaced state's
    moved = ok("state", "migrate", "--to", pg_url)
    assert "stay in state/reconciler.lock.history" in moved.stdout, moved.stdout
    edit(workdir / "manifests/agents.yaml", "brief and kind", "brief, kind")
    done = ok("--backend", pg_url, "apply", "--auto-approve")
    assert "Apply complete: 0 created, 2 updated" in done.stdout
    history = ok("--backend", pg_url, "state", "history", "--json").stdout.splitlines()
    serials = [json.loads(line)["serial"] for line in history]
    # the apply's writes follow the migrated state's serial, none taken twice (one write, or
    # two when its two updates finished in separate group commits of the journal)
    after = [s for s in serials if s > serial]
    assert serials == sorted(set(serials)), serials
    assert after == list(range(serial + 1, serial + 1 + len(after))) and 1 <= len(after) <= 2
    assert ok("--backend", pg_url, "plan").stdout.startswith("No changes.")


# --- the lockfile a migration to the database left behind ----------------------------------


@pytest.mark.parametrize(
    "command",
    [("plan",), ("apply", "--auto-approve"), ("state", "list"), ("drift",)],
    ids=lambda c: c[0],
)
def test_the_lockfile_moved_into_the_database_is_refused_naming_it(
    workdir: Path, pg_url: str, command: tuple[str, ...]
) -> None:
    # the README said to `git rm` it; a runner that did not set RECONCILER_BACKEND went on
    # with the old copy silently: plans against an old state, applies that wrote it
    ok("apply", "--auto-approve")
    moved = ok("state", "migrate", "--to", pg_url).stdout
    assert "state/reconciler.lock now only says where the state went" in " ".join(moved.split())
    before = Path("state/reconciler.lock").read_bytes()
    edit(workdir / "manifests/agents.yaml", "Be specific and kind", "Be brief")

    result = cli(*command)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    said = " ".join(result.stderr.split())
    assert (
        f"Error: state/reconciler.lock: its state was moved to {redact(pg_url)} (project "
        "default) by `reconciler state migrate` on " in said
    ), said
    assert "Set RECONCILER_BACKEND (or --backend) to that database in every runner" in said
    assert "`git rm state/reconciler.lock`" in said
    assert pg_url not in said or redact(pg_url) == pg_url  # never the password
    assert Path("state/reconciler.lock").read_bytes() == before
    # the database is the state: it plans the change
    assert "~ agent.reviewer" in ok("--backend", pg_url, "plan").stdout


def test_the_state_moved_back_from_the_database_replaces_the_marked_lockfile(
    workdir: Path, pg_url: str
) -> None:
    ok("apply", "--auto-approve")
    ok("state", "migrate", "--to", pg_url)
    ok("--backend", pg_url, "state", "rm", "agent.coder")  # the database goes on
    ok("--backend", pg_url, "state", "migrate", "--to", "state/reconciler.lock")
    assert "migrated_to" not in Path("state/reconciler.lock").read_text()
    assert "agent.coder " not in ok("state", "list").stdout
    assert "agent.reviewer " in ok("state", "list").stdout


# --- the database a migration back to a lockfile left behind --------------------------------


@pytest.mark.parametrize(
    "command",
    [("plan",), ("apply", "--auto-approve"), ("state", "list"), ("drift",), ("state", "history")],
    ids=lambda c: " ".join(c),
)
def test_the_database_moved_into_a_lockfile_is_refused_naming_it(
    workdir: Path, pg_url: str, command: tuple[str, ...]
) -> None:
    # the other direction marks the lockfile; this one left the database as it was, so a
    # runner still pointed at it planned and applied an old copy while the team used the file
    ok("--backend", pg_url, "apply", "--auto-approve")
    moved = ok("--backend", pg_url, "state", "migrate", "--to", "ops/state.lock").stdout
    said = " ".join(moved.split())
    assert f"{redact(pg_url)} (project default) now only says where the state went" in said, said
    edit(workdir / "manifests/agents.yaml", "Be specific and kind", "Be brief")
    serial = rows_of(pg_url, "SELECT serial FROM reconciler_states")

    result = cli("--backend", pg_url, *command)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    said = " ".join(result.stderr.split())
    assert (
        f"Error: {redact(pg_url)} (project default): its state was moved to ops/state.lock by "
        "`reconciler state migrate` on " in said
    ), said
    assert "Unset RECONCILER_BACKEND (and --backend) in every runner" in said, said
    assert "--lockfile ops/state.lock" in said, said
    assert rows_of(pg_url, "SELECT serial FROM reconciler_states") == serial
    # the lockfile is the state: it plans the change
    assert "~ agent.reviewer" in ok("--lockfile", "ops/state.lock", "plan").stdout


def test_the_marked_database_is_copied_again_only_with_force_and_moved_back_without(
    workdir: Path, pg_url: str
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    ok("--backend", pg_url, "state", "migrate", "--to", "ops/state.lock")
    again = cli("--backend", pg_url, "state", "migrate", "--to", "other.lock")
    assert again.exit_code == 1 and "its state was moved to ops/state.lock" in again.stderr
    assert not Path("other.lock").exists()
    ok("--backend", pg_url, "state", "migrate", "--to", "other.lock", "--force")
    assert "agent.coder " in ok("--lockfile", "other.lock", "state", "list").stdout
    # the way back: the lockfile's state replaces the marked database, no --force needed
    ok("--lockfile", "ops/state.lock", "state", "rm", "agent.coder")
    ok("--lockfile", "ops/state.lock", "state", "migrate", "--to", pg_url)
    listed = ok("--backend", pg_url, "state", "list").stdout
    assert "agent.coder " not in listed and "agent.reviewer " in listed
    assert ok("--backend", pg_url, "plan").exit_code == 0


def rows_of(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(query.encode()).fetchall())
