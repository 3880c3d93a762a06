"""State as a team shares it (QA session 16).

- ``state migrate --to OTHER.lock`` (lockfile to lockfile) left the source lockfile live:
  two lockfiles of one lineage, so two engineers (one on each) could both apply the same
  resources. The source is now marked as moved, as a move between a lockfile and a database
  already was: every command refuses it naming the new lockfile, and the way back replaces
  the marker without ``--force``.
"""

from __future__ import annotations

import json
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

