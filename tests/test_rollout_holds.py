"""Held candidates through what a platform team's week does to them: a lockfile lost while a
deployment was archived behind git's back, a runner whose clock is off, rollbacks forward,
and the history that says what happened (embedded provider, driven through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import LOCKFILE, cli, make_workdir, ok, out_of_band
from test_rollout import AGENT, FAILING, entry, gate, live_pin, new_version


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _lose_the_lockfile() -> None:
    Path(LOCKFILE).unlink()
    Path(LOCKFILE + ".backup").unlink(missing_ok=True)


def test_a_lost_lockfile_keeps_the_hold_of_a_deployment_archived_behind_our_back(
    workdir: Path,
) -> None:
    # v2 failed its checks and is held, the pin stays at @1; the deployment is archived in
    # the console and the lockfile is lost. The healing plan read the rollout records of live
    # deployments only: it created the deployment again at @latest, the failed candidate
    gate(FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    assert cli("apply", "--auto-approve").exit_code == 1  # v2 held
    archived = entry()["id"]
    out_of_band(lambda c: c.deployments.archive(archived))
    _lose_the_lockfile()

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert "+ agent: agent.reviewer@1\n" in plan.stdout
    assert "agent.reviewer v2 held: 1 of 1 checks failed on " in plan.stdout
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert [(h["version"], h["stays_at"]) for h in data["held"]] == [(2, 1)]

    ok("apply", "--auto-approve")
    assert entry()["id"] != archived
    assert live_pin() == 1 and entry()["pins"] == {AGENT: 1}
    assert [(h["version"], h["reason"]) for h in entry()["held"]] == [(2, "checks")]
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")
