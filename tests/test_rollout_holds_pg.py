"""Held candidates with the state in PostgreSQL (``support.postgres``): a hold names the agent
object it is of there too, so a runner whose clock is off cannot mistake it for a hold of
another object (tests/test_rollout_holds.py drives the same with the lockfile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok, out_of_band
from test_rollout import AGENT, DEPLOYMENT, FAILING, gate
from test_rollout_holds import _SlowClock

pytestmark = pytest.mark.tcp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _show(pg_url: str, address: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(ok("--backend", pg_url, "state", "show", address).stdout)
    return data


def test_a_hold_in_postgresql_written_by_a_runner_whose_clock_is_slow_still_holds(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate(FAILING)
    ok("--backend", pg_url, "apply", "--auto-approve")
    old_agent = str(_show(pg_url, AGENT)["id"])
    out_of_band(lambda c: c.agents.archive(old_agent))
    with monkeypatch.context() as m:
        m.setattr("reconciler.state.model.datetime", _SlowClock)
        assert cli("--backend", pg_url, "apply", "--auto-approve").exit_code == 1
    new_agent = _show(pg_url, AGENT)["id"]
    held = _show(pg_url, DEPLOYMENT)["held"]
    assert isinstance(held, list)
    assert [(h["version"], h["agent_id"]) for h in held] == [(1, new_agent)]

    plan = cli("--backend", pg_url, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v1 held: 1 of 1 checks failed on " in plan.stdout
