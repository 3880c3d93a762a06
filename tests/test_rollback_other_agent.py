"""`rollback` of a deployment someone pointed at another agent in the console.

The rollback's move kept the agent id the deployment runs: `rollback --to N` pinned the other
agent at version N (and the lockfile recorded it as agent.reviewer@N), or said "runs
agent.reviewer@1 already" of a deployment that does not run agent.reviewer at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok, out_of_band
from test_rollout import AGENT, DEPLOYMENT, PASSING, entry, gate, new_version

from reconciler.provider import ProviderClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


@pytest.mark.parametrize("to", [None, "1", "2"])
def test_rollback_of_a_deployment_set_to_another_agent_refuses_and_says_why(
    workdir: Path, to: str | None
) -> None:
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")  # agent.reviewer@2 after its checks
    deployment_id = entry()["id"]

    async def intrude(client: ProviderClient) -> str:
        other = await client.agents.create({"name": "intruder", "model": "claude-sonnet-4-6"})
        other = await client.agents.update(other["id"], {"version": 1, "description": "v2"})
        pin = {"type": "agent", "id": other["id"], "version": 1}
        await client.deployments.update(deployment_id, {"agent": pin})
        return str(other["id"])

    other = out_of_band(intrude)
    before = entry()
    result = cli("rollback", DEPLOYMENT, "--auto-approve", *(["--to", to] if to else []))
    assert result.exit_code == 1, result.stdout
    assert f"runs agent {other}" in result.stderr, result.stderr
    assert f"not {AGENT}" in result.stderr, result.stderr
    assert "`reconciler apply` puts it back" in result.stderr, result.stderr
    live = out_of_band(lambda c: c.deployments.retrieve(deployment_id))
    assert live["agent"] == {"type": "agent", "id": other, "version": 1}, "nothing moved"
    assert entry() == before


def test_plan_says_it_puts_back_a_deployment_set_to_another_agent(workdir: Path) -> None:
    """A deployment pointed at another agent in the console planned as
    ``pin agent.reviewer@1 -> @1  (follows latest)``, which reads as a no-op, while apply puts
    the deployment back from that other agent; the text plan now says so."""
    ok("apply", "--auto-approve")
    deployment_id = entry()["id"]

    async def intrude(client: ProviderClient) -> str:
        other = await client.agents.create({"name": "intruder", "model": "claude-sonnet-4-6"})
        await client.deployments.update(
            deployment_id, {"agent": {"type": "agent", "id": other["id"], "version": 1}}
        )
        return str(other["id"])

    other = out_of_band(intrude)
    result = cli("plan")
    assert result.exit_code == 0, result.stdout
    said = f"update  pin {AGENT}@1, put back from agent {other}@1  (follows latest)"
    assert said in result.stdout, result.stdout
    assert "@1 -> @1" not in result.stdout
    markdown = cli("plan", "--format", "markdown").stdout
    assert f"put back from agent {other}@1" in markdown, markdown
