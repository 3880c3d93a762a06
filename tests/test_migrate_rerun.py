"""``state migrate --to`` run again after it was killed between the copy and the marker
(session 14).

Killed once the database held the copy but before the lockfile was marked ``migrated_to``,
the re-run refused ("already holds N entries ... pass --force") although the database held
exactly this lockfile's lineage and serial. It now finishes the job: the lockfile is marked.
A database that holds anything else (another serial, another lineage) is still refused. The
same holds the other way round (a database's state into a lockfile).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok

from reconciler.state.location import FileLocation
from reconciler.state.postgres.location import PgLocation

pytestmark = pytest.mark.tcp

LOCKFILE = Path("state/reconciler.lock")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _killed_before_the_marker(monkeypatch: pytest.MonkeyPatch, cls: type, *args: str) -> None:
    """``reconciler ARGS`` stopped (SIGTERM) right after the copy, before the source's marker."""

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(cls, "mark_migrated", killed)
        stopped = cli(*args)
    assert stopped.exit_code != 0, (stopped.stdout, stopped.stderr)


def test_a_rerun_after_a_kill_before_the_marker_marks_the_lockfile(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("apply", "--auto-approve")
    listed = ok("state", "list").stdout
    _killed_before_the_marker(monkeypatch, FileLocation, "state", "migrate", "--to", pg_url)
    assert "migrated_to" not in json.loads(LOCKFILE.read_text())  # the kill left it unmarked
    again = cli("state", "migrate", "--to", pg_url)
    assert again.exit_code == 0, (again.stdout, again.stderr)
    assert "already holds this state" in again.stdout, again.stdout
    assert json.loads(LOCKFILE.read_text())["migrated_to"]["serial"] > 0
    refused = cli("state", "list")  # the old copy is refused from now on, naming the database
    assert refused.exit_code == 1 and "its state was moved to" in refused.stderr, refused.stderr
    assert ok("--backend", pg_url, "state", "list").stdout == listed


def test_a_rerun_is_still_refused_when_the_database_went_on(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("apply", "--auto-approve")
    _killed_before_the_marker(monkeypatch, FileLocation, "state", "migrate", "--to", pg_url)
    ok("--backend", pg_url, "state", "rm", "agent.reviewer")  # another serial there now
    before = LOCKFILE.read_bytes()
    again = cli("state", "migrate", "--to", pg_url)
    assert again.exit_code == 1, (again.stdout, again.stderr)
    assert "pass --force" in again.stderr, again.stderr
    assert LOCKFILE.read_bytes() == before
    assert "agent.reviewer " not in ok("--backend", pg_url, "state", "list").stdout


def test_a_rerun_is_still_refused_when_the_lockfile_went_on(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("apply", "--auto-approve")
    _killed_before_the_marker(monkeypatch, FileLocation, "state", "migrate", "--to", pg_url)
    ok("state", "rm", "agent.reviewer")  # the lockfile's serial moves on
    again = cli("state", "migrate", "--to", pg_url)
    assert again.exit_code == 1, (again.stdout, again.stderr)
    assert "pass --force" in again.stderr, again.stderr
    assert "migrated_to" not in json.loads(LOCKFILE.read_text())


def test_the_way_back_rerun_after_a_kill_marks_the_database(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    listed = ok("--backend", pg_url, "state", "list").stdout
    args = ("--backend", pg_url, "state", "migrate", "--to", str(LOCKFILE))
    _killed_before_the_marker(monkeypatch, PgLocation, *args)
    ok(*args)
    refused = cli("--backend", pg_url, "state", "list")
    assert refused.exit_code == 1 and "its state was moved to" in refused.stderr, refused.stderr
    assert ok("state", "list").stdout == listed


def test_a_second_copy_into_a_lockfile_is_refused_naming_where_the_state_went(
    workdir: Path,
) -> None:
    """Lockfile to lockfile marks the source (session 16; it was left live, two lockfiles of
    one lineage): run twice, the second is refused naming the lockfile the state went to."""
    ok("apply", "--auto-approve")
    (workdir / "ops").mkdir()
    ok("state", "migrate", "--to", "ops/state.lock")
    again = cli("state", "migrate", "--to", "ops/state.lock")
    assert again.exit_code == 1, (again.stdout, again.stderr)
    assert "its state was moved to ops/state.lock" in again.stderr, again.stderr
