"""A skill's slug proves no ownership: through the CLI against the embedded provider, a plan
for a Skill document the state does not record never adopts a live skill with its slug (a
hand-made one, another project's) unless the state was lost (never written: a deleted
lockfile, a fresh PostgreSQL backend) or an upload of it is pending. Anywhere else it is a
plan error at the document, naming the skill and the command that adopts it; nothing
changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, drift_json, lockfile, ok, out_of_band, plan_is_clean
from support.skills import FILES, skill_workdir

from reconciler.provider import ProviderClient, SkillUpload

SKILL_DOC = "kind: Skill\nname: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
ENV_DOC = "kind: Environment\nname: dev\nspec: {config: {type: cloud}}\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = skill_workdir(tmp_path, monkeypatch, document=False)
    (root / "manifests/env.yaml").write_text(ENV_DOC)
    return root


def declare_skill(root: Path) -> None:
    (root / "manifests/skills.yaml").write_text(SKILL_DOC)


def hand_made(files: dict[str, str] = FILES) -> dict[str, Any]:
    upload = SkillUpload(tuple((f"pdf-tools/{p}", t.encode()) for p, t in files.items()))

    async def run(client: ProviderClient) -> dict[str, Any]:
        return dict(await client.skills.create(upload))

    return out_of_band(run)


def live_skills() -> list[dict[str, Any]]:
    async def run(client: ProviderClient) -> list[dict[str, Any]]:
        return list(await client.skills.list().to_list())

    return out_of_band(run)


def version_count(skill_id: str) -> int:
    async def run(client: ProviderClient) -> int:
        return len(await client.skills.versions.list(skill_id).to_list())

    return out_of_band(run)


def assert_refused(skill: dict[str, Any], *state: str) -> None:
    """plan and apply exit 1 at the document, naming the skill and ``import``; nothing
    changed (the state as it was, the hand-made skill alone with its one version)."""
    before = [p.read_bytes() for p in map(Path, state)]
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.stdout)
        assert (
            f"manifests/skills.yaml:1:1: skill.pdf-tools: a skill with the slug 'pdf-tools' "
            f"exists already ({skill['id']}), and this project's state does not record it"
        ) in result.stderr, result.stderr
        assert f"`reconciler import skill.pdf-tools {skill['id']}` adopts it" in result.stderr
    assert [p.read_bytes() for p in map(Path, state)] == before
    assert [s["id"] for s in live_skills()] == [skill["id"]]
    assert version_count(skill["id"]) == 1


def test_a_hand_made_skill_with_the_slug_is_a_plan_error_not_a_takeover(workdir: Path) -> None:
    ok("apply", "--auto-approve")  # the state exists: nothing was lost
    skill = hand_made()
    declare_skill(workdir)
    assert_refused(skill, "state/reconciler.lock")
    # the command the error names adopts it; the next plan is clean, then it is ours
    ok("import", "skill.pdf-tools", skill["id"])
    assert lockfile()["resources"]["skill.pdf-tools"]["id"] == skill["id"]
    plan_is_clean()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    assert [s["id"] for s in live_skills()] == [skill["id"]] and version_count(skill["id"]) == 2


def test_another_projects_skill_is_never_taken_over(workdir: Path) -> None:
    declare_skill(workdir)
    team_a = ("--project", "team-a", "--lockfile", "a.lock", "-f", "manifests/skills.yaml")
    ok(*team_a, "apply", "--auto-approve")
    [skill] = live_skills()
    (workdir / "manifests/skills.yaml").unlink()
    ok("apply", "--auto-approve")  # this project's state exists, without the skill
    declare_skill(workdir)
    assert_refused(skill, "state/reconciler.lock", "a.lock")


def test_a_recorded_skill_deleted_and_made_again_by_hand_is_not_adopted(workdir: Path) -> None:
    declare_skill(workdir)
    ok("apply", "--auto-approve")
    [ours] = live_skills()

    async def delete(client: ProviderClient) -> None:
        await client.skills.delete(ours["id"])

    out_of_band(delete)
    skill = hand_made()
    assert_refused(skill, "state/reconciler.lock")


def test_a_lost_lockfile_still_finds_the_skill_by_its_slug(workdir: Path) -> None:
    declare_skill(workdir)
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    Path("state/reconciler.lock").unlink()
    assert "found again by its slug" in ok("plan").stdout
    ok("apply", "--auto-approve")
    assert live_skills() == [skill]
    assert lockfile()["resources"]["skill.pdf-tools"]["id"] == skill["id"]
    plan_is_clean()


def test_drift_heals_by_slug_only_a_lost_lockfile(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    skill = hand_made()
    declare_skill(workdir)
    report = json.loads(cli("drift", "--format", "json").stdout)
    assert not report.get("warnings"), report  # nothing healed: the slug proves nothing
    assert [i["remote_id"] for i in report["items"] if i["type"] == "unmanaged"] == [skill["id"]]
    Path("state/reconciler.lock").unlink()
    report = json.loads(cli("drift", "--format", "json").stdout)
    assert [i for i in report["items"] if i["type"] == "unmanaged"] == []


@pytest.mark.tcp
def test_the_postgres_backend_finds_by_slug_only_while_it_was_never_written(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_BACKEND", pg_url)
    skill = hand_made()
    declare_skill(workdir)
    # a backend no run wrote to is a lost state: the skill is found again, never a twin
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["type"] == "noop" and "found by its slug pdf-tools" in action["reason"]
    ok("apply", "--auto-approve")
    assert live_skills() == [skill]
    plan_is_clean()
    # once written, an unrecorded skill with the slug is someone else's
    ok("state", "rm", "skill.pdf-tools")
    result = cli("plan")
    assert result.exit_code == 1, result.stdout
    assert f"`reconciler import skill.pdf-tools {skill['id']}` adopts it" in result.stderr
    assert not Path("state/reconciler.lock").exists()


# --- a state never written (a new project, a lost lockfile): whose skill is it? -------------
#
# A skill carries no tags, but the agents that use it do: a skill another project's agents
# use is that project's, one this project's agents use is this project's. Where neither
# tells, a skill whose latest version holds the manifest's files is recorded (nothing is
# written to it); one that differs is refused, as a new version would change it for whoever
# owns it.

AGENT_DOC = (
    "kind: Agent\nname: helper\nspec:\n  model: claude-sonnet-4-6\n  skills: [{ref: pdf-tools}]\n"
)
TEAM_A = ("--project", "team-a", "--lockfile", "a.lock", "-f", "team-a")


def team_a_applies(root: Path, *, with_agent: bool) -> dict[str, Any]:
    (root / "team-a/skills").mkdir(parents=True)
    (root / "team-a/skills.yaml").write_text(SKILL_DOC)
    if with_agent:
        (root / "team-a/agents.yaml").write_text(AGENT_DOC)
    (root / "team-a/skills/pdf-tools").symlink_to(root / "manifests/skills/pdf-tools")
    ok(*TEAM_A, "apply", "--auto-approve")
    [skill] = live_skills()
    return skill


def test_a_new_project_leaves_another_projects_skill_alone(workdir: Path) -> None:
    # a new project (its state never written) with a skill of the same slug found team-a's
    # skill "again" and planned a new version of it: team-a's agents would have run it
    skill = team_a_applies(workdir, with_agent=True)
    declare_skill(workdir)
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")  # ours differs
    team_a_files = {"fill.py": "print(1)\n"}
    (workdir / "team-a/skills/pdf-tools").unlink()
    (workdir / "team-a/skills/pdf-tools").mkdir()
    for name, text in {**FILES, **team_a_files}.items():
        (workdir / "team-a/skills/pdf-tools" / name).write_text(text)
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["type"] == "create", action
    assert (
        f"a live skill with the slug pdf-tools ({skill['id']}) is another project's "
        '(agent.helper of project "team-a" uses it): left alone'
    ) in action["reason"]
    ok("apply", "--auto-approve")
    ours = lockfile()["resources"]["skill.pdf-tools"]["id"]
    assert ours != skill["id"] and version_count(skill["id"]) == 1
    plan_is_clean()
    assert json.loads(ok(*TEAM_A, "plan", "--format", "json").stdout)["has_changes"] is False


def test_a_lost_state_never_uploads_into_a_skill_no_agent_tells_the_owner_of(
    workdir: Path,
) -> None:
    skill = team_a_applies(workdir, with_agent=False)
    declare_skill(workdir)
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.stdout)
        assert (
            f"manifests/skills.yaml:1:1: skill.pdf-tools: a live skill with the slug "
            f"'pdf-tools' ({skill['id']}) is not recorded in this project's state (lost, or "
            "never written)"
        ) in result.stderr, result.stderr
        assert f"`reconciler import skill.pdf-tools {skill['id']}` adopts it" in result.stderr
    assert not Path("state/reconciler.lock").exists()
    assert [s["id"] for s in live_skills()] == [skill["id"]] and version_count(skill["id"]) == 1


def test_a_lost_lockfile_finds_a_changed_skill_its_own_agents_use(workdir: Path) -> None:
    declare_skill(workdir)
    (workdir / "manifests/agents.yaml").write_text(AGENT_DOC)
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    Path("state/reconciler.lock").unlink()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["type"] == "update" and action["remote_id"] == skill["id"], action
    ok("apply", "--auto-approve")
    assert [s["id"] for s in live_skills()] == [skill["id"]] and version_count(skill["id"]) == 2
    plan_is_clean()


def test_drift_agrees_with_plan_on_a_skill_no_agent_tells_the_owner_of(workdir: Path) -> None:
    # plan refuses to take the skill with the slug (its files differ, no agent of this
    # project uses it); drift found it "by its slug" and reported it as this project's
    skill = team_a_applies(workdir, with_agent=False)
    declare_skill(workdir)
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    assert cli("plan").exit_code == 1
    report = drift_json()
    assert not any(i["address"] == "skill.pdf-tools" for i in report["items"]), report
    assert not any("slug" in w for w in report.get("warnings", ())), report
    [item] = [i for i in report["items"] if i["remote_id"] == skill["id"]]
    assert item["type"] == "unmanaged", item
    assert f"`reconciler import skill.pdf-tools {skill['id']}`" in item["message"], item
    text = cli("drift")
    assert text.exit_code == 2
    assert f"`reconciler import skill.pdf-tools {skill['id']}`" in text.stdout, text.stdout
    assert not Path("state/reconciler.lock").exists()


def test_import_of_another_projects_skill_is_refused_unless_forced(workdir: Path) -> None:
    """``import agent.X ID`` of another project's agent is refused without ``--force``; a
    skill (no tags) whose users are another project's agents was imported without a word,
    and both projects then recorded it: one's next upload is a version the other's agents
    did not apply. Refused the same way, naming the agent that uses it; ``--force`` takes it
    and says whose it was."""
    skill = team_a_applies(workdir, with_agent=True)
    result = cli("import", "skill.pdf", skill["id"])
    assert result.exit_code == 1, result.stdout
    assert (
        f"{skill['id']} is used by agent.helper of project \"team-a\": it is that project's "
        "skill; pass that --project to manage it there, or --force to take it over"
    ) in result.stderr, result.stderr
    assert not Path("state/reconciler.lock").exists()
    assert not (workdir / "manifests/skills/pdf").exists()
    forced = ok("import", "--force", "skill.pdf", skill["id"])
    assert 'agent.helper of project "team-a" uses it' in forced.stderr, forced.stderr
    assert lockfile()["resources"]["skill.pdf"]["id"] == skill["id"]
