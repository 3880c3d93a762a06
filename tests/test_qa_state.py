"""QA of the shared state, driven through the command line as a user drives it (``CliRunner``
in a fresh project, the embedded local provider):

- ``state migrate --to`` the lockfile it reads, spelled another way (an absolute path,
  ``state/../state/...``, a symlinked folder), says that is where the state already is,
  never "locked by state migrate ID; run `reconciler unlock ID`" with an id that is gone
  once the command exits.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.gitops import LOCKFILE, cli, make_workdir, ok


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


@pytest.mark.parametrize("spelling", ["absolute", "dotdot", "symlink"])
def test_migrate_to_the_same_lockfile_spelled_another_way_says_so(
    workdir: Path, spelling: str
) -> None:
    ok("apply", "--auto-approve")
    before = Path(LOCKFILE).read_bytes()
    if spelling == "symlink":
        os.symlink("state", "alias")
    target = {
        "absolute": str(workdir / LOCKFILE),
        "dotdot": "state/../state/reconciler.lock",
        "symlink": "alias/reconciler.lock",
    }[spelling]
    result = cli("state", "migrate", "--to", target)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        f"Error: state migrate --to {target}: that is {LOCKFILE}, where the state already is\n"
    ), result.stderr
    assert "unlock" not in result.stderr
    assert Path(LOCKFILE).read_bytes() == before
    assert not Path(LOCKFILE + ".lock").exists()
