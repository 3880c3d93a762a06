"""A skill's latest version deleted by hand at the provider: ``drift`` reported the skill
alone, never the agents still pinned to the deleted version (the sessions they start run a
version that is gone). The agents are named now."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, drift_json, items, lockfile, ok, out_of_band, plan_is_clean
from support.skills import skill_workdir

from reconciler.provider import ProviderClient

AGENTS = """\
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  skills: [{ref: pdf-tools}]
"""
PINNED = """\
---
kind: Agent
name: pinned
spec:
  model: claude-sonnet-4-6
  skills: [{{ref: pdf-tools, version: {version}}}]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = skill_workdir(tmp_path, monkeypatch)
    (root / "manifests/agents.yaml").write_text(AGENTS)
    return root


def test_the_agents_on_a_deleted_latest_version_are_named(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    first = lockfile()["resources"]["skill.pdf-tools"]["latest"]
    (workdir / "manifests/agents.yaml").write_text(AGENTS + PINNED.format(version=first))
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    skill = lockfile()["resources"]["skill.pdf-tools"]
    latest = str(skill["latest"])

    async def delete_latest(client: ProviderClient) -> None:
        await client.skills.versions.delete(str(skill["id"]), latest)

    out_of_band(delete_latest)
    report = drift_json()
    [item] = [i for i in items(report) if i["address"] == "skill.pdf-tools"]
    assert f"its latest version {latest} (as the last apply left it) was deleted" in item["message"]
    assert "agent.coder still runs it" in item["message"], item["message"]
    assert "agent.pinned" not in item["message"]  # pinned to another version
    text = cli("drift").stdout
    assert "agent.coder still runs it" in text, text
    ok("apply", "--auto-approve")
    assert drift_json(code=0)["items"] == [], json.dumps(drift_json(code=0))
    plan_is_clean()


def test_the_agents_are_named_when_the_older_upload_holds_the_manifests_files(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    fill = workdir / "manifests/skills/pdf-tools/fill.py"
    before = fill.read_text()
    fill.write_text("print(2)\n")
    ok("apply", "--auto-approve")
    fill.write_text(before)  # git reverted the file; then the latest is deleted by hand
    skill = lockfile()["resources"]["skill.pdf-tools"]

    async def delete_latest(client: ProviderClient) -> None:
        await client.skills.versions.delete(str(skill["id"]), str(skill["latest"]))

    out_of_band(delete_latest)
    [item] = [i for i in items(drift_json()) if i["address"] == "skill.pdf-tools"]
    assert "; agent.coder still runs it; the live latest is" in item["message"], item["message"]
    assert "it holds the manifest's files" in item["message"]
    assert "~ agent.coder" in ok("plan").stdout  # apply moves it off the deleted version
    ok("apply", "--auto-approve")
    assert drift_json(code=0)["items"] == []
    plan_is_clean()
