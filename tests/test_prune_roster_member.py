"""plan --prune never archives an agent another live agent's multiagent roster names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok

MEMBER = "kind: Agent\nname: member\nspec:\n  model: claude-haiku-4-5\n"
LEAD = "kind: Agent\nname: lead\nspec:\n  model: claude-haiku-4-5\n"


@pytest.mark.parametrize("roster", ["coordinator", "multiagent_20261001"])
def test_prune_leaves_a_roster_member_alone_while_a_live_agent_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, roster: str
) -> None:
    """``plan --prune`` archived an agent that another live agent's roster names by id: the
    provider refuses an archived agent as a roster member (and re-validates the roster at
    every deployment fire), so the lead broke. It is now left alone with a note naming the
    agent whose roster names it, until that roster drops it."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    Path("manifests").mkdir()
    Path("manifests/member.yaml").write_text(MEMBER)
    Path("manifests/lead.yaml").write_text(LEAD)
    ok("apply", "--auto-approve")
    member = lockfile()["resources"]["agent.member"]["id"]
    if roster == "coordinator":
        multiagent = f"  multiagent:\n    type: coordinator\n    agents: [{member}]\n"
    else:
        multiagent = (
            "  multiagent:\n    type: multiagent_20261001\n    subagents:\n      type: enabled\n"
            f"      predefined_agents: [{member}]\n"
        )
    Path("manifests/lead.yaml").write_text(LEAD + multiagent)
    ok("apply", "--auto-approve")
    Path("manifests/member.yaml").unlink()

    plan = json.loads(ok("plan", "--prune", "--format", "json").stdout)
    assert [a["address"] for a in plan["actions"] if a["type"] == "archive"] == []
    [note] = [n for n in plan["notes"] if n["address"] == "agent.member"]
    assert "agent.lead names it in its multiagent roster" in note["message"], note
    ok("apply", "--prune", "--auto-approve")
    assert "agent.member" in lockfile()["resources"]

    # once the lead's roster drops it, the member is archived
    Path("manifests/lead.yaml").write_text(LEAD)
    plan = json.loads(ok("plan", "--prune", "--format", "json").stdout)
    assert [a["address"] for a in plan["actions"] if a["type"] == "archive"] == ["agent.member"]
    result = cli("apply", "--prune", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
