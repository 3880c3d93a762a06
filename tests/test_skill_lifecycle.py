"""``kind: Skill`` through the CLI, what happens around a skill: drift (a version uploaded
out of band, a skill deleted behind git's back) and prune (delete only with ``--prune``,
never a protected skill, never one an agent outside the prune still uses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import (
    drift_json,
    items,
    lockfile,
    ok,
    out_of_band,
    plan_is_clean,
)
from support.skills import SKILL_MD, SKILLS, skill_workdir

from reconciler.provider import ProviderClient, SkillUpload

AGENT = """\
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  skills: [{ref: pdf-tools}]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = skill_workdir(tmp_path, monkeypatch)
    return root


def skill_id() -> str:
    return str(lockfile()["resources"]["skill.pdf-tools"]["id"])


def live_skills() -> list[dict[str, Any]]:
    async def read(client: ProviderClient) -> list[dict[str, Any]]:
        return list(await client.skills.list().to_list())

    return out_of_band(read)


def upload_by_hand(skill: str, files: dict[str, str]) -> str:
    upload = SkillUpload(tuple((f"pdf-tools/{p}", t.encode()) for p, t in files.items()))

    async def run(client: ProviderClient) -> str:
        return str((await client.skills.versions.create(skill, upload))["id"])

    return out_of_band(run)


def delete_by_hand(skill: str) -> None:
    async def run(client: ProviderClient) -> None:
        await client.skills.delete(skill)

    out_of_band(run)


# --------------------------------------------------------------------------- drift


def test_a_version_uploaded_out_of_band_is_drift_and_plan_uploads_the_manifest_again(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    assert drift_json(code=0)["items"] == []
    by_hand = upload_by_hand(skill_id(), {"SKILL.md": SKILL_MD, "fill.py": "print('hand')\n"})
    [item] = items(drift_json(), "changed")
    assert item["address"] == "skill.pdf-tools" and item["kind"] == "skill"
    assert f"its latest version {by_hand} was not uploaded by this project" in item["message"]
    assert [(c["op"], c["path"]) for c in item["changes"]] == [("change", "fill.py")]
    assert "print('hand')" not in json.dumps(item)
    shown = ok("plan").stdout
    assert "~ skill.pdf-tools  new version (1 file changed: fill.py)" in shown
    assert f"the live latest version {by_hand} was not uploaded by this project" in shown
    ok("apply", "--auto-approve")
    assert drift_json(code=0)["items"] == []
    plan_is_clean()


def test_our_latest_deleted_over_a_hand_upload_names_both_versions(workdir: Path) -> None:
    """A version uploaded by hand, then ours on top (apply), then ours deleted by hand: the
    live latest is the hand upload again. Drift (and plan's reason) said only that it "was
    not uploaded by this project", never naming the version of ours that is gone."""
    ok("apply", "--auto-approve")
    by_hand = upload_by_hand(skill_id(), {"SKILL.md": SKILL_MD, "fill.py": "print('hand')\n"})
    ok("apply", "--auto-approve")
    ours = str(lockfile()["resources"]["skill.pdf-tools"]["latest"])
    assert ours != by_hand

    async def delete_ours(client: ProviderClient) -> None:
        await client.skills.versions.delete(skill_id(), ours)

    out_of_band(delete_ours)
    [item] = items(drift_json(), "changed")
    message = item["message"]
    assert f"its latest version {ours} (as the last apply left it) was deleted" in message, message
    assert f"{by_hand}, was not uploaded by this project" in message, message
    # plan's reason named only the upload; it names both facts, as drift does
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert f"its latest version {ours} was deleted behind git's back" in action["reason"], action
    assert f"the live latest version {by_hand} was not uploaded by this project" in action["reason"]
    ok("apply", "--auto-approve")
    assert drift_json(code=0)["items"] == []
    plan_is_clean()


def test_a_skill_deleted_behind_gits_back_is_drift_and_plan_uploads_it_again(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    gone = skill_id()
    delete_by_hand(gone)
    [item] = items(drift_json(), "deleted")
    assert (item["address"], item["remote_id"]) == ("skill.pdf-tools", gone)
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["type"] == "create"
    assert action["reason"] == f"the recorded skill {gone} no longer exists"
    ok("apply", "--auto-approve")
    assert skill_id() != gone and len(live_skills()) == 1
    plan_is_clean()


# --------------------------------------------------------------------------- prune


def removed_from_manifests(workdir: Path) -> None:
    # something stays declared: --prune refuses manifests that declare nothing
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Environment\nname: dev\nspec: {config: {type: cloud}}\n"
    )


def test_a_skill_left_out_of_the_manifests_is_deleted_only_with_prune(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    gone = skill_id()
    removed_from_manifests(workdir)
    shown = ok("plan").stdout
    assert "not in the manifests; left alone. Run with --prune to delete it" in shown
    ok("apply", "--auto-approve")
    assert [s["id"] for s in live_skills()] == [gone]
    shown = ok("plan", "--prune").stdout
    assert "- skill.pdf-tools  delete  (permanent)" in shown, shown
    ok("apply", "--prune", "--auto-approve")
    assert live_skills() == [] and "skill.pdf-tools" not in lockfile()["resources"]
    plan_is_clean()


def test_a_protected_skill_is_never_deleted(workdir: Path) -> None:
    (workdir / "manifests/skills.yaml").write_text(SKILLS + "protect: true\n")
    ok("apply", "--auto-approve")
    removed_from_manifests(workdir)
    shown = ok("plan", "--prune").stdout
    assert "not in the manifests but protected" in shown and "To delete it" in shown
    ok("apply", "--prune", "--auto-approve")
    assert len(live_skills()) == 1


def test_a_skill_an_agent_outside_the_prune_uses_is_not_deleted_and_the_agent_is_named(
    workdir: Path,
) -> None:
    (workdir / "manifests/agents.yaml").write_text(AGENT)
    ok("apply", "--auto-approve")
    sid = skill_id()
    # the agent keeps the skill, by id, while the Skill document goes
    (workdir / "manifests/agents.yaml").write_text(
        AGENT.replace("{ref: pdf-tools}", f"{{type: custom, skill_id: {sid}}}")
    )
    removed_from_manifests(workdir)
    shown = ok("plan", "--prune").stdout
    assert "skill.pdf-tools" in shown and "still used by agent.coder" in shown, shown
    ok("apply", "--prune", "--auto-approve")
    assert [s["id"] for s in live_skills()] == [sid]
    # an agent whose update drops the skill does not keep it: the delete runs after it
    (workdir / "manifests/agents.yaml").write_text(
        AGENT.replace("  skills: [{ref: pdf-tools}]\n", "")
    )
    plan = json.loads(ok("plan", "--prune", "--format", "json").stdout)
    [delete] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert delete["type"] == "delete"
    ok("apply", "--prune", "--auto-approve")
    assert live_skills() == []
    plan_is_clean()


def test_a_skill_gone_already_is_forgotten_with_prune(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    delete_by_hand(skill_id())
    removed_from_manifests(workdir)
    ok("apply", "--prune", "--auto-approve")
    assert "skill.pdf-tools" not in lockfile()["resources"]
    plan_is_clean()


def test_prune_over_tcp(workdir: Path, tcp_provider: str) -> None:
    url = ("--provider-url", tcp_provider)
    ok(*url, "apply", "--auto-approve")
    removed_from_manifests(workdir)
    ok(*url, "apply", "--prune", "--auto-approve")
    assert "skill.pdf-tools" not in lockfile()["resources"]
    plan_is_clean(*url)


def test_agents_pinning_one_old_version_cost_one_version_listing(workdir: Path) -> None:
    """A pin to a version neither recorded nor the live latest is checked against the
    skill's version list: once per skill, however many agents pin it."""
    from support.gitops import DB
    from support.reliability import provider

    with provider(Path(DB)) as (url, tap):
        at = ("--provider-url", url)
        ok(*at, "apply", "--auto-approve")
        old = upload_by_hand(skill_id(), {"SKILL.md": SKILL_MD, "fill.py": "print(2)\n"})
        upload_by_hand(skill_id(), {"SKILL.md": SKILL_MD, "fill.py": "print(3)\n"})
        pinned = AGENT.replace("{ref: pdf-tools}", f"{{ref: pdf-tools, version: {old}}}")
        (workdir / "manifests/agents.yaml").write_text(
            "\n---\n".join(pinned.replace("name: coder", f"name: coder-{i}") for i in range(3))
        )
        before = tap.count("GET", r"/v1/skills/[^/]+/versions$")
        ok(*at, "plan")
        assert tap.count("GET", r"/v1/skills/[^/]+/versions$") - before == 1


def test_after_a_lost_lockfile_the_skills_latest_versions_are_read_side_by_side(
    workdir: Path,
) -> None:
    """Finding skills again by their slug reads each one's latest version: those reads go
    out together, not one skill after another (20 skills, 20 ms each)."""
    from support.gitops import DB
    from support.reliability import provider

    from reconciler.provider.local import FaultConfig

    docs = []
    for i in range(20):
        root = workdir / f"manifests/skills/s{i}"
        root.mkdir(parents=True)
        (root / "SKILL.md").write_text(SKILL_MD.replace("pdf-tools", f"s{i}"))
        docs.append(f"kind: Skill\nname: s{i}\nspec:\n  source: skills/s{i}\n")
    (workdir / "manifests/skills.yaml").write_text("---\n".join(docs))
    in_flight = {"now": 0, "most": 0}

    def counting(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            reading = scope["type"] == "http" and "/versions/" in scope.get("path", "")
            in_flight["now"] += reading
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
            try:
                await app(scope, receive, send)
            finally:
                in_flight["now"] -= reading

        wrapped.state = app.state  # type: ignore[attr-defined]
        return wrapped

    with provider(Path(DB), FaultConfig(latency_ms=20), wrap=counting) as (url, _tap):
        ok("--provider-url", url, "apply", "--auto-approve")
        Path("state/reconciler.lock").unlink()
        in_flight["most"] = 0
        shown = ok("--provider-url", url, "plan").stdout
    assert "found again by its slug" in shown
    assert in_flight["most"] > 1, "the latest versions were read one skill at a time"
