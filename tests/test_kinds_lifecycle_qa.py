"""Each kind's lifecycle as a platform team lives it (session 14's QA pass): a field changed,
ignored, edited by hand; plan, apply and drift must tell the same story. Each test is a case
that was wrong once and stays fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, drift_json, edit, lockfile, make_workdir, ok, plan_is_clean

DEPLOYMENT = "deployment.nightly-review"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return root


def _actions(*args: str) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = json.loads(ok("plan", "--format", "json", *args).stdout)[
        "actions"
    ]
    return [a for a in actions if a["type"] != "noop"]


def test_a_deployment_that_ignores_its_agent_keeps_its_pin_in_plan_apply_and_drift(
    workdir: Path,
) -> None:
    """``ignore_changes: [agent]``: a new agent version leaves the pin where it is. The plan
    showed the pin move all the same, apply recorded the new version in the lockfile without
    moving the live pin, and drift then reported the pin drifted ("apply pins it")."""
    edit(
        workdir / "manifests/deployments.yaml",
        "name: nightly-review\n",
        "name: nightly-review\nignore_changes: [agent]\n",
    )
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be brief.")
    shown = ok("plan").stdout
    assert "pin agent.reviewer" not in shown, shown
    assert [a["address"] for a in _actions()] == ["agent.reviewer"]
    ok("apply", "--auto-approve")

    assert lockfile()["resources"][DEPLOYMENT]["pins"] == {"agent.reviewer": 1}
    assert lockfile()["resources"]["agent.reviewer"]["version"] == 2
    drift_json(code=0)
    assert _actions() == []
    plan_is_clean()

    # another field of the deployment changed: its update leaves the pin alone too
    edit(workdir / "manifests/deployments.yaml", "every weekday night", "every night")
    edit(workdir / "manifests/agents.yaml", "Be brief.", "Be briefer.")
    assert "pin agent.reviewer" not in ok("plan").stdout
    ok("apply", "--auto-approve")
    assert lockfile()["resources"][DEPLOYMENT]["pins"] == {"agent.reviewer": 1}
    drift_json(code=0)
    plan_is_clean()
