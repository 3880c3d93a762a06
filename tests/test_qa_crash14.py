"""Session 14's QA of crash safety and of the commands a platform team runs after one
(embedded and served local provider, the lockfile and PostgreSQL), driven through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok
from test_rollout import DEPLOYMENT, entry, new_version


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_rollback_takes_the_allow_origin_change_its_refusal_asks_for(workdir: Path) -> None:
    # The state was applied to the embedded provider; the same objects are now reached
    # another way (here a copy of its database; `provider serve` of it is the same). The
    # rollback was refused with "pass --allow-origin-change", which rollback did not take:
    # "No such option", in the one command run in an emergency.
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    assert entry()["pins"] == {"agent.reviewer": 2}
    shutil.copy(workdir / ".reconciler/provider.db", workdir / "staging.db")
    before = lockfile()

    refused = cli("--provider-db", "staging.db", "rollback", DEPLOYMENT, "--auto-approve")
    assert refused.exit_code == 1
    assert "pass --allow-origin-change" in refused.stderr
    assert lockfile() == before

    done = cli(
        "--provider-db", "staging.db", "rollback", DEPLOYMENT, "--auto-approve",
        "--allow-origin-change",
    )  # fmt: skip
    assert done.exit_code == 0, (done.stdout, done.stderr)
    assert "agent.reviewer@2 -> @1 rolled back" in done.stdout
    # like apply, the state now follows the provider it changed
    assert lockfile()["origin"] == "local:../staging.db"
    assert entry()["pins"] == {"agent.reviewer": 1}
    ok("--provider-db", "staging.db", "plan")
