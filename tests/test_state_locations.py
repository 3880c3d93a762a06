"""State as a team shares it (QA session 16).

- ``state migrate --to OTHER.lock`` (lockfile to lockfile) left the source lockfile live:
  two lockfiles of one lineage, so two engineers (one on each) could both apply the same
  resources. The source is now marked as moved, as a move between a lockfile and a database
  already was: every command refuses it naming the new lockfile, and the way back replaces
  the marker without ``--force``.
- ``--backend 'postgresql://...?sslmod=require'`` (a misspelt option in the URL's query) said
  only "postgresql://(unparsable connection string): not a valid PostgreSQL connection
  string", with no word of what was wrong; it now names the database and the option, with
  the option it may be a typo of, and still never the password. ``POSTGRESQL://...`` (taken
  for a database, which libpq then refuses) says to write the scheme in lower case.
- ``state migrate --to /dev/null`` (or a FIFO) said "pass another --lockfile" (the source's
  flag) and left ``/dev/null.guard`` behind: the target's lock was taken before the target
  was found not to be a file. It is now refused first, naming ``--to``, leaving nothing.
  ``--lockfile FIFO apply`` (or ``state rm``, ``rollback``) left ``FIFO.guard`` the same way.
- ``--lockfile state/reconciler apply`` (the ``.lock`` left out) took the real lockfile,
  ``state/reconciler.lock``, for the apply lock of ``state/reconciler``: unreadable as a lock,
  it was "stale" once 30 s old, so the apply took it over and deleted it at its end - the
  team's lockfile gone, the state rebuilt in ``state/reconciler``. (``state migrate --to
  state/reconciler`` said to delete it "if no apply is running".) A lockfile where a lock
  should be is now refused, naming the lockfile meant, and nothing is written.
- ``state migrate --to state/reconciler.lock.journal`` (or ``.lock``, ``.history``,
  ``.backup``, ``.guard``: a file the source lockfile keeps beside it) copied the state there
  and then, marking the source, deleted its journal - the copy: the source said "moved to
  state/reconciler.lock.journal", a file that no longer existed. The others failed with
  "restore it from git" or overwrote the backup. Such a target is now refused first.
- ``reconciler unlock ID`` run against a lockfile whose state was moved (into a database,
  say: the lease id copied from a CI log, ``--backend`` forgotten) said only
  "state/reconciler.lock is not locked: no lock is held"; it now says where the state went,
  as every other command does.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok

LOCKFILE = Path("state/reconciler.lock")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_a_lockfile_migrated_to_another_lockfile_is_marked_and_refused(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "ops").mkdir()
    said = " ".join(ok("state", "migrate", "--to", "ops/state.lock").stdout.split())
    assert "was left as it was" not in said, said
    assert f"{LOCKFILE} now only says where the state went" in said, said
    assert json.loads(LOCKFILE.read_text())["migrated_to"]["backend"] == "ops/state.lock"
    before = LOCKFILE.read_bytes()
    for args in (("plan",), ("apply", "--auto-approve"), ("state", "list")):
        refused = cli(*args)
        assert refused.exit_code == 1, (args, refused.stdout, refused.stderr)
        message = " ".join(refused.stderr.split())
        assert f"{LOCKFILE}: its state was moved to ops/state.lock" in message, message
        assert "--lockfile ops/state.lock" in message, message
        assert "RECONCILER_BACKEND" not in message, message  # no database is involved
    assert LOCKFILE.read_bytes() == before
    # the new lockfile is the state: nothing to do
    assert cli("--lockfile", "ops/state.lock", "plan", "--detailed-exitcode").exit_code == 0
    # the way back needs no --force, and marks the copy it leaves
    ok("--lockfile", "ops/state.lock", "state", "migrate", "--to", str(LOCKFILE))
    assert cli("plan", "--detailed-exitcode").exit_code == 0
    refused = cli("--lockfile", "ops/state.lock", "plan")
    assert refused.exit_code == 1 and "its state was moved to" in refused.stderr



@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("?sslmod=require", "unknown option 'sslmod' in the URL's query; did you mean sslmode?"),
        ("?sslmode=require&Connect_Timeout=5", "unknown option 'Connect_Timeout'"),
        ("?bogus=1", "unknown option 'bogus' in the URL's query (libpq's options"),
    ],
)
def test_a_misspelt_option_in_the_database_url_is_named(
    workdir: Path, query: str, said: str
) -> None:
    url = f"postgresql://ci:Pa55word@127.0.0.1:1/state{query}"
    result = cli("--backend", url, "plan")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: postgresql://ci@127.0.0.1:1/state: "), result.stderr
    assert said in result.stderr, result.stderr
    assert "Pa55word" not in result.stdout + result.stderr
    assert not LOCKFILE.exists()


def test_migrate_to_a_device_names_to_and_leaves_nothing_beside_it(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    fifo = workdir / "pipe"
    os.mkfifo(fifo)
    before = LOCKFILE.read_bytes()
    for target in (str(fifo), os.devnull):
        result = cli("state", "migrate", "--to", target)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert result.stderr == (
            f"Error: state migrate --to {target}: not a regular file, so not a lockfile; give a "
            f"lockfile's path, e.g. --to {Path(target).parent / 'reconciler.lock'}\n"
        ), result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == [".reconciler", "manifests", "pipe", "state"]
    assert not Path(os.devnull + ".guard").exists()
    assert LOCKFILE.read_bytes() == before


@pytest.mark.parametrize(
    "command",
    [("apply", "--auto-approve"), ("state", "rm", "agent.coder"), ("state", "migrate", "--to", "x.lock")],
)
def test_a_fifo_as_the_lockfile_is_refused_leaving_no_guard(
    workdir: Path, command: tuple[str, ...]
) -> None:
    fifo = workdir / "pipe"
    os.mkfifo(fifo)
    result = cli("--lockfile", str(fifo), *command)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "not a regular file, so not a lockfile" in result.stderr, result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["manifests", "pipe"]


def _lockfile_aged() -> bytes:
    old = time.time() - 120  # past the 30 s after which an unreadable lock counts as stale
    os.utime(LOCKFILE, (old, old))
    return LOCKFILE.read_bytes()


@pytest.mark.parametrize(
    "command",
    [
        ("--lockfile", "state/reconciler", "apply", "--auto-approve"),
        ("--lockfile", "state/reconciler", "unlock", "0123abcd"),
        ("state", "migrate", "--to", "state/reconciler"),
    ],
)
def test_a_lockfile_is_never_taken_for_the_apply_lock_of_another(
    workdir: Path, command: tuple[str, ...]
) -> None:
    ok("apply", "--auto-approve")
    before = _lockfile_aged()
    files = sorted(p.name for p in (workdir / "state").iterdir())
    result = cli(*command)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    message = " ".join(result.stderr.split())
    assert f"{LOCKFILE} is a lockfile, not the apply lock of state/reconciler" in message, message
    assert "delete it" not in message, message
    assert LOCKFILE.read_bytes() == before
    assert sorted(p.name for p in (workdir / "state").iterdir()) == files


@pytest.mark.parametrize("suffix", [".journal", ".lock", ".history", ".backup", ".guard"])
def test_migrate_to_a_file_the_lockfile_keeps_beside_it_is_refused(
    workdir: Path, suffix: str
) -> None:
    ok("apply", "--auto-approve")
    before = LOCKFILE.read_bytes()
    files = {p.name: p.read_bytes() for p in (workdir / "state").iterdir()}
    target = f"{LOCKFILE}{suffix}"
    for force in ((), ("--force",)):
        result = cli("state", "migrate", "--to", target, *force)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert result.stderr.startswith(
            f"Error: state migrate --to {target}: that is a file {LOCKFILE} keeps beside it"
        ), result.stderr
    assert LOCKFILE.read_bytes() == before
    assert {p.name: p.read_bytes() for p in (workdir / "state").iterdir()} == files


def test_unlock_on_a_moved_lockfile_says_where_the_state_went(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "ops").mkdir()
    ok("state", "migrate", "--to", "ops/state.lock")
    result = cli("unlock", "0123abcd")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith(
        f"Error: {LOCKFILE}: its state was moved to ops/state.lock"
    ), result.stderr


def test_an_upper_case_scheme_in_the_database_url_is_named(workdir: Path) -> None:
    result = cli("--backend", "POSTGRESQL://ci:Pa55word@127.0.0.1:1/state", "plan")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        "Error: postgresql://ci@127.0.0.1:1/state: libpq reads 'POSTGRESQL://' only in lower "
        "case: write postgresql://\n"
    ), result.stderr


def test_a_moved_lockfile_is_replaced_without_force_only_by_its_own_state(
    workdir: Path,
) -> None:
    """The marker of a lockfile moved elsewhere was replaced by any state migrated to it,
    also another lineage's (another repository's lockfile): the runners still pointed at it
    then planned their manifests against that other state, where the marker was there to
    stop them. Only the state that left (its lineage) comes back without ``--force``."""
    ok("apply", "--auto-approve")
    (workdir / "ops").mkdir()
    ok("state", "migrate", "--to", "ops/state.lock")
    marked = LOCKFILE.read_bytes()
    other = workdir / "other"
    other.mkdir()
    (other / "manifests").mkdir()
    (other / "manifests/a.yaml").write_text(
        "kind: Agent\nname: x\nspec: {model: claude-haiku-4-5}\n"
    )
    ok("-f", "other/manifests", "--lockfile", "other/x.lock", "apply", "--auto-approve")
    refused = cli("--lockfile", "other/x.lock", "state", "migrate", "--to", str(LOCKFILE))
    assert refused.exit_code == 1, refused.stdout
    said = " ".join(refused.stderr.split())
    assert f"{LOCKFILE} holds the state of another lineage" in said, said
    assert "moved to ops/state.lock" in said and "--force" in said, said
    assert LOCKFILE.read_bytes() == marked
    assert json.loads(Path("other/x.lock").read_text()).get("migrated_to") is None
    ok("--lockfile", "other/x.lock", "state", "migrate", "--to", str(LOCKFILE), "--force")
