"""State as a team shares it in PostgreSQL (QA session 16), through the command line against
a real server (``support.postgres``):

- ``state migrate --to`` another database (a new server, say) left the old database's state
  live: two states of one lineage, which two runners could both apply from. The old one is
  now marked as moved, as a move into a lockfile already marked it, and refused naming the
  new database (``--backend``), not a lockfile.
- ``state rm ADDR`` (or ``state mv``) while the project's first apply was still refreshing
  (the lease held, nothing written yet) said "... does not exist: no entries (nothing was
  applied with it yet; check --backend and --project)", sending the engineer after a wrong
  --project; it now says the state is locked by that apply, naming it.
- ``--backend DB unlock ID`` on a database state moved into a lockfile said only "... is not
  locked: no lease is held"; it now says where the state went.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok
from support.postgres import PostgresServer

from reconciler.state.postgres.lease import PgLease

pytestmark = pytest.mark.tcp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_a_database_state_migrated_to_another_database_is_marked_and_refused(
    workdir: Path, pg_url: str, postgres_server: PostgresServer
) -> None:
    old = pg_url.replace("postgres@", "postgres:Pa55-old@")
    new = postgres_server.new_database().replace("postgres@", "postgres:Pa55-new@")
    ok("--backend", old, "apply", "--auto-approve")
    moved = ok("--backend", old, "state", "migrate", "--to", new)
    said = " ".join(moved.stdout.split())
    assert "was left as it was" not in said, said
    assert "now only says where the state went" in said, said
    for args in (("plan",), ("apply", "--auto-approve"), ("state", "list")):
        refused = cli("--backend", old, *args)
        assert refused.exit_code == 1, (args, refused.stdout, refused.stderr)
        message = " ".join(refused.stderr.split())
        assert "its state was moved to postgresql://" in message, message
        assert "Set RECONCILER_BACKEND (or --backend) to that database" in message, message
        assert "--lockfile" not in message, message
        assert "Pa55" not in refused.stdout + refused.stderr
    assert "Pa55" not in moved.stdout + moved.stderr
    assert cli("--backend", new, "plan", "--detailed-exitcode").exit_code == 0
    # the way back needs no --force; then the new database is the marked one
    ok("--backend", new, "state", "migrate", "--to", old)
    assert cli("--backend", old, "plan", "--detailed-exitcode").exit_code == 0
    assert cli("--backend", new, "plan").exit_code == 1



@pytest.mark.parametrize(
    "command", [("state", "rm", "agent.coder"), ("state", "mv", "agent.coder", "agent.other")]
)
def test_state_rm_while_a_first_apply_runs_names_that_apply(
    workdir: Path, pg_url: str, command: tuple[str, ...]
) -> None:
    running = PgLease(pg_url, "default")  # the first apply of the project, refreshing still
    held = running.acquire("apply")
    try:
        result = cli("--backend", pg_url, *command)
    finally:
        running.release()
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert f"is locked by apply {held.id}" in result.stderr, result.stderr
    assert "check --backend and --project" not in result.stderr, result.stderr


def test_unlock_on_a_database_state_moved_into_a_lockfile_says_where_it_went(
    workdir: Path, pg_url: str
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    ok("--backend", pg_url, "state", "migrate", "--to", "state/reconciler.lock")
    result = cli("--backend", pg_url, "unlock", "0123abcd")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "its state was moved to state/reconciler.lock" in result.stderr, result.stderr


def test_a_moved_database_state_is_replaced_without_force_only_by_its_own_state(
    workdir: Path, pg_url: str, tmp_path: Path
) -> None:
    """As a moved lockfile: a database state moved into a lockfile keeps its marker against
    another lineage's state migrated in (runners still pointed at the database would plan
    against it); its own state comes back without ``--force``."""
    ok("--backend", pg_url, "apply", "--auto-approve")
    ok("--backend", pg_url, "state", "migrate", "--to", "state/reconciler.lock")
    other = tmp_path / "other.lock"
    ok("--lockfile", str(other), "apply", "--auto-approve")  # another lineage, same project
    refused = cli("--lockfile", str(other), "state", "migrate", "--to", pg_url)
    assert refused.exit_code == 1, refused.stdout
    said = " ".join(refused.stderr.split())
    assert "holds the state of another lineage" in said, said
    assert "moved to state/reconciler.lock" in said and "--force" in said, said
    refused = cli("--backend", pg_url, "plan")  # still refused, naming the lockfile
    assert refused.exit_code == 1 and "its state was moved to" in refused.stderr
    ok("state", "migrate", "--to", pg_url)  # its own state: no --force needed
    assert cli("--backend", pg_url, "plan", "--detailed-exitcode").exit_code == 0
