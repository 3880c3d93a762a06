"""``kind: Skill`` driven through the CLI against the embedded provider: a skill directory is
checked at load (each problem at ``spec.source``), uploaded at apply, and a content change
is a new version recorded in the lockfile with its digest and files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, lockfile, ok, out_of_band, plan_is_clean
from support.skills import SKILL_MD, SKILLS, skill_workdir, write_skill

from reconciler.provider import ProviderClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    files = {"SKILL.md": SKILL_MD, "fill.py": "print(1)\n", "forms/w9.json": "{}\n"}
    return skill_workdir(tmp_path, monkeypatch, files)


def live_skills() -> list[dict[str, Any]]:
    async def read(client: ProviderClient) -> list[dict[str, Any]]:
        return list(await client.skills.list().to_list())

    return out_of_band(read)


def versions(skill_id: str) -> list[dict[str, Any]]:
    async def read(client: ProviderClient) -> list[dict[str, Any]]:
        return list(await client.skills.versions.list(skill_id).to_list())

    return out_of_band(read)


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", "skill source manifests/skills/nope does not exist"),
        ("no-name", "its frontmatter has no 'name'"),
        ("too-many", "holds more than 500 files"),
        ("symlink", "is a symlink to"),
        ("outside", "is outside the repository"),
        # 508 characters in the directory, 518 as uploaded (pdf-tools/...): the provider's
        # limit counts the skill directory's name its paths are sent under
        ("long-path", "its path as uploaded (pdf-tools/aaa"),
        ("long-frontmatter", "frontmatter is 70"),
        ("spaced-name", "name ' pdf-tools ' is not a skill slug"),
        # YAML reads it as a number: it is there, but not text
        ("number-description", "its frontmatter's description is not text (2024)"),
    ],
)
def test_a_bad_skill_directory_is_one_error_at_spec_source(
    workdir: Path, change: str, message: str
) -> None:
    skill = workdir / "manifests/skills/pdf-tools"
    if change == "missing":
        (workdir / "manifests/skills.yaml").write_text(SKILLS.replace("pdf-tools\n", "nope\n"))
    elif change == "no-name":
        (skill / "SKILL.md").write_text("---\ndescription: no name\n---\n")
    elif change == "too-many":
        for i in range(501):
            (skill / f"f{i}.txt").write_text("x")
    elif change == "long-frontmatter":
        big = "y" * 70_000
        (skill / "SKILL.md").write_text(SKILL_MD.replace("---\nUse", f"notes: '{big}'\n---\nUse"))
    elif change == "number-description":
        (skill / "SKILL.md").write_text(SKILL_MD.replace("Fill PDF forms.", "2024"))
    elif change == "spaced-name":
        (skill / "SKILL.md").write_text(SKILL_MD.replace("name: pdf-tools", "name: ' pdf-tools '"))
    elif change == "long-path":
        write_skill(workdir, {f"{'a' * 250}/{'b' * 250}/c1.txt": "x"})
    elif change == "symlink":
        (workdir / "secret.txt").write_text("s")
        os.symlink(workdir / "secret.txt", skill / "leak.txt")
    else:
        outside = workdir.parent / f"{workdir.name}-elsewhere"
        write_skill(outside, {"SKILL.md": SKILL_MD}, where="s")
        os.symlink(outside / "s", workdir / "manifests/skills/linked")
        (workdir / "manifests/skills.yaml").write_text(SKILLS.replace("pdf-tools\n", "linked\n"))
    for command in (("validate",), ("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.stdout)
        lines = [line for line in result.stderr.splitlines() if "skills.yaml" in line]
        assert len(lines) == 1, result.stderr
        assert lines[0].strip().startswith("manifests/skills.yaml:4:11: spec.source: "), lines
        assert message in lines[0]
    assert not Path(".reconciler/provider.db").exists() or live_skills() == []
    assert not Path("state/reconciler.lock").exists()


def test_a_missing_skill_directory_is_said_beside_the_documents_other_error(
    workdir: Path,
) -> None:
    """A typo beside a wrong source: both in one run (the directory was checked only once
    the document validated, so the second run said what the first could have)."""
    (workdir / "manifests/skills.yaml").write_text(
        SKILLS.replace("pdf-tools\n", "nope\n") + "  displayname: PDF\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "2 errors in manifests" in result.stderr, result.stderr
    assert "manifests/skills.yaml:4:11: spec.source: skill source manifests/skills/nope" in (
        result.stderr
    )
    assert "spec.displayname: unknown field 'displayname'" in result.stderr


def test_an_agent_may_refer_to_a_skill_whose_directory_is_wrong_without_a_second_error(
    workdir: Path,
) -> None:
    (workdir / "manifests/agents.yaml").write_text(
        "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"
        "  skills: [{ref: pdf-tools}]\n"
    )
    (workdir / "manifests/skills/pdf-tools/SKILL.md").unlink()
    result = cli("validate")
    assert result.exit_code == 1
    assert "1 error in manifests" in result.stderr, result.stderr
    assert "manifests/skills.yaml:4:11: spec.source: " in result.stderr
    assert "has no SKILL.md" in result.stderr
    (workdir / "manifests/skills/pdf-tools/SKILL.md").write_text(SKILL_MD)
    (workdir / "manifests/agents.yaml").write_text(
        "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n  skills: [{ref: pdf-tool}]\n"
    )
    result = cli("validate")
    assert (
        "manifests/agents.yaml:5:18: spec.skills[0].ref: unknown skill 'pdf-tool': no Skill "
        "manifest has this name; did you mean 'pdf-tools'?"
    ) in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["xlsx", "pdf"])
def test_a_ref_to_one_of_anthropics_skills_says_how_to_write_it(workdir: Path, name: str) -> None:
    """``{ref: xlsx}`` names a Skill manifest; Anthropic's own skills are written in the wire
    form. The error says so, rather than asking for a Skill manifest named xlsx (or guessing
    the declared pdf-tools for pdf)."""
    (workdir / "manifests/agents.yaml").write_text(
        "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"
        f"  skills: [{{ref: {name}}}]\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        f"manifests/agents.yaml:5:18: spec.skills[0].ref: unknown skill '{name}': no Skill "
        f"manifest has this name; {name} is one of Anthropic's skills: write "
        f"{{type: anthropic, skill_id: {name}}}"
    ) in result.stderr, result.stderr


def test_an_agents_custom_skill_id_that_names_no_skill_fails_the_plan_at_its_line(
    workdir: Path,
) -> None:
    """``{type: custom, skill_id}`` names a skill kept elsewhere; one that does not exist (a
    typo, a deleted skill) is refused at its line by plan, not by the provider halfway through
    apply."""
    (workdir / "manifests/agents.yaml").write_text(
        "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"
        "  skills: [{type: custom, skill_id: skill_01nope}]\n"
    )
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert (
            "manifests/agents.yaml:5:27: agent.coder: custom skill skill_01nope does not exist"
        ) in result.stderr, result.stderr
    assert not Path("state/reconciler.lock").exists()


def test_two_skill_documents_with_the_very_same_files_are_refused_at_the_second(
    workdir: Path,
) -> None:
    """Two Skill documents uploading identical files (one directory named twice, or a copy)
    under one display name make two live skills nothing tells apart: a lost lockfile finds
    each by its slug and files and could swap them under the agents. validate refuses the
    second, nothing is sent."""
    files = {"SKILL.md": SKILL_MD, "fill.py": "print(1)\n", "forms/w9.json": "{}\n"}
    write_skill(workdir, files, "manifests/skills/copy")
    (workdir / "manifests/skills.yaml").write_text(
        SKILLS + "---\nkind: Skill\nname: pdf-copy\nspec:\n  source: skills/copy\n"
    )
    for command in (("validate",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert (
            "manifests/skills.yaml:9:11: spec.source: skill.pdf-copy holds exactly the files of "
            "skill.pdf-tools (manifests/skills.yaml:4:11)"
        ) in result.stderr, result.stderr
    assert not Path("state/reconciler.lock").exists()
    # another display name tells them apart (two hand-made copies import as such)
    (workdir / "manifests/skills.yaml").write_text(
        SKILLS + "---\nkind: Skill\nname: pdf-copy\nspec:\n  source: skills/copy\n"
        "  display_name: PDF (team B)\n"
    )
    assert cli("validate").exit_code == 0


def test_a_misspelt_anthropic_skill_id_fails_the_plan_at_its_line(workdir: Path) -> None:
    """``{type: anthropic, skill_id: xlsxx}`` planned with exit 0 and only the provider refused
    it, halfway through apply; plan now checks it against Anthropic's skills list, at its
    line, with the id it most likely means, and apply creates nothing."""
    (workdir / "manifests/agents.yaml").write_text(
        "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"
        "  skills:\n    - {type: anthropic, skill_id: pdf}\n"
        "    - {type: anthropic, skill_id: xlsxx}\n"
    )
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert (
            "manifests/agents.yaml:7:25: agent.coder: Anthropic skill 'xlsxx' does not exist; "
            "did you mean 'xlsx'?"
        ) in result.stderr, result.stderr
        assert "'pdf'" not in result.stderr
    assert not Path("state/reconciler.lock").exists()


def test_the_manifests_anthropic_skills_are_the_ones_the_local_provider_serves() -> None:
    from reconciler.manifest.skill import ANTHROPIC_SKILLS
    from reconciler.provider.local.anthropic_skills import IDS

    assert ANTHROPIC_SKILLS == IDS


def test_schema_and_fmt_know_the_skill_kind(workdir: Path) -> None:
    schema = json.loads(ok("schema").stdout)
    assert "Skill" in schema["properties"]["kind"]["enum"]
    spec = schema["$defs"]["SkillSpec"]
    assert spec["required"] == ["source"] and set(spec["properties"]) == {"source", "display_name"}
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf-tools\nspec:   {display_name: PDF tools,   source: skills/pdf-tools}\n"
    )
    assert cli("fmt", "--check").exit_code != 0
    ok("fmt")
    assert ok("fmt", "--check").exit_code == 0
    text = (workdir / "manifests/skills.yaml").read_text()
    assert text.index("source") < text.index("display_name"), text
    ok("validate")


# --------------------------------------------------------------------------- apply


def skill_entry() -> dict[str, Any]:
    entry: dict[str, Any] = lockfile()["resources"]["skill.pdf-tools"]
    return entry


def test_apply_uploads_the_skill_and_records_its_id_versions_digest_and_files(
    workdir: Path,
) -> None:
    (workdir / "manifests/skills/pdf-tools/__pycache__").mkdir()
    (workdir / "manifests/skills/pdf-tools/__pycache__/fill.cpython-311.pyc").write_text("x")
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    entry = skill_entry()
    assert entry["id"] == skill["id"] and entry["slug"] == "pdf-tools"
    assert list(entry["uploaded"]) == [skill["latest_version_id"]]
    [version] = entry["uploaded"].values()
    assert version["digest"].startswith("sha256:")
    assert sorted(version["files"]) == ["SKILL.md", "fill.py", "forms/w9.json"]
    assert "metadata" not in json.dumps(entry)
    plan_is_clean()
    # what git ignores is never uploaded, and changing it is no change
    (workdir / "manifests/skills/pdf-tools/__pycache__/fill.cpython-311.pyc").write_text("y")
    plan_is_clean()


def test_a_content_change_is_a_new_version_that_names_the_files_never_their_content(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    first = skill_entry()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print('SECRET-ISH BODY')\n")
    (workdir / "manifests/skills/pdf-tools/forms/w9.json").write_text('{"w9": true}\n')
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.stdout
    assert "~ skill.pdf-tools  new version (2 files changed: fill.py, forms/w9.json)" in (
        result.stdout
    ), result.stdout
    for fmt in ("text", "json", "markdown"):
        shown = ok("plan", "--format", fmt).stdout
        assert "SECRET-ISH" not in shown and '"w9": true' not in shown
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    assert len(versions(skill["id"])) == 2
    entry = skill_entry()
    assert entry["id"] == first["id"]
    assert list(entry["uploaded"]) == [*first["uploaded"], skill["latest_version_id"]]
    plan_is_clean()


def test_a_lost_lockfile_finds_the_skill_by_its_slug_and_uploads_nothing(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    Path("state/reconciler.lock").unlink()
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["type"] == "noop" and "found by its slug pdf-tools" in action["reason"]
    assert "found again by its slug" in ok("plan").stdout
    ok("apply", "--auto-approve")
    assert live_skills() == [skill] and len(versions(skill["id"])) == 1
    assert skill_entry()["id"] == skill["id"]
    plan_is_clean()
    # changed meanwhile, and no agent of this project uses it: it cannot be told from
    # another project's skill of that slug, so nothing is written to it (nor a twin
    # uploaded) until `import` says it is ours; then a new version of the same skill
    Path("state/reconciler.lock").unlink()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    refused = cli("plan")
    assert refused.exit_code == 1
    assert f"`reconciler import skill.pdf-tools {skill['id']}` adopts it" in refused.stderr
    ok("import", "skill.pdf-tools", skill["id"])
    shown = ok("plan").stdout
    assert "new version" in shown and "fill.py" in shown, shown
    ok("apply", "--auto-approve")
    assert [s["id"] for s in live_skills()] == [skill["id"]]
    assert len(versions(skill["id"])) == 2
    plan_is_clean()


def test_an_upload_whose_lockfile_write_was_lost_is_recorded_not_uploaded_again(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    state = Path("state/reconciler.lock")
    # a create killed after its upload: the intent stands, the entry was never written
    data = json.loads(state.read_text())
    del data["resources"]["skill.pdf-tools"]
    data["pending"]["skill.pdf-tools"] = {
        "kind": "skill",
        "operation": "create",
        "started_at": "2026-12-06T00:00:00Z",
    }
    state.write_text(json.dumps(data))
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["type"] == "noop" and "found by its slug" in action["reason"]
    ok("apply", "--auto-approve")
    assert len(live_skills()) == 1 and lockfile()["pending"] == {}
    plan_is_clean()
    # a new version killed after its upload: the live latest holds the manifest's files
    before = state.read_text()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    state.write_text(before)
    assert "skill.pdf-tools" not in cli("plan").stdout.split("Plan:")[0].split("Apply would")[0]
    ok("apply", "--auto-approve")
    assert len(versions(skill["id"])) == 2
    assert skill["latest_version_id"] in skill_entry()["uploaded"]
    plan_is_clean()


def test_the_slug_of_an_existing_skill_cannot_change(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills/pdf-tools/SKILL.md").write_text(
        SKILL_MD.replace("name: pdf-tools", "name: pdf-kit")
    )
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert "manifests/skills.yaml:4:3: skill.pdf-tools: SKILL.md names the skill 'pdf-kit'" in (
            result.stderr
        ), result.stderr
    [skill] = live_skills()
    assert len(versions(skill["id"])) == 1


def test_skills_over_tcp(workdir: Path, tcp_provider: str) -> None:
    url = ("--provider-url", tcp_provider)
    ok(*url, "apply", "--auto-approve")
    plan_is_clean(*url)
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    assert "new version (1 file changed: fill.py)" in ok(*url, "plan").stdout
    ok(*url, "apply", "--auto-approve")
    plan_is_clean(*url)
    assert len(skill_entry()["uploaded"]) == 2


# --------------------------------------------------------------------------- agents

AGENTS = """\
kind: Environment
name: dev
spec: {config: {type: cloud}}
---
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  skills:
    - {ref: pdf-tools}
    - {type: anthropic, skill_id: xlsx}
---
kind: Deployment
name: nightly
spec:
  agent: coder
  environment: dev
  initial_events: [{type: user.message, content: [{type: text, text: hi}]}]
"""


def live_agent(agent_id: str) -> dict[str, Any]:
    async def read(client: ProviderClient) -> dict[str, Any]:
        return dict(await client.agents.retrieve(agent_id))

    return out_of_band(read)


def agent_skills() -> list[dict[str, Any]]:
    skills: list[dict[str, Any]] = live_agent(lockfile()["resources"]["agent.coder"]["id"])[
        "skills"
    ]
    return sorted(skills, key=lambda s: str(s["type"]))


def test_an_agent_follows_the_newest_version_one_the_same_apply_uploads_included(
    workdir: Path,
) -> None:
    (workdir / "manifests/app.yaml").write_text(AGENTS)
    ok("apply", "--auto-approve")  # the skill and the agent that uses it, in one apply
    [skill] = live_skills()
    first = skill["latest_version_id"]
    anthropic, custom = agent_skills()
    assert anthropic["skill_id"] == "xlsx"
    assert (custom["skill_id"], custom["version"]) == (skill["id"], first)
    assert lockfile()["resources"]["agent.coder"]["skills"] == {"skill.pdf-tools": first}
    plan_is_clean()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    shown = ok("plan").stdout
    assert "~ skill.pdf-tools  new version (1 file changed: fill.py)" in shown
    assert "~ agent.coder  update  version 1 -> 2  [skills]" in shown, shown
    assert "it follows the newest version of skill.pdf-tools, which this apply uploads" in shown
    assert "~ deployment.nightly  update  pin agent.coder@1 -> @2  (follows latest)" in shown
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    assert skill["latest_version_id"] != first
    assert agent_skills()[1]["version"] == skill["latest_version_id"]
    resources = lockfile()["resources"]
    assert resources["agent.coder"]["skills"] == {"skill.pdf-tools": skill["latest_version_id"]}
    assert resources["deployment.nightly"]["pins"] == {"agent.coder": 2}
    plan_is_clean()


def test_an_agent_pinned_to_a_version_stays_there_and_an_unknown_version_is_an_error(
    workdir: Path,
) -> None:
    (workdir / "manifests/app.yaml").write_text(AGENTS)
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    first = skill["latest_version_id"]
    app = workdir / "manifests/app.yaml"
    app.write_text(AGENTS.replace("{ref: pdf-tools}", f"{{ref: pdf-tools, version: {first}}}"))
    ok("apply", "--auto-approve")  # the same version: only the lockfile's digest changes
    plan_is_clean()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    shown = ok("plan").stdout
    assert "skill.pdf-tools  new version" in shown and "agent.coder" not in shown, shown
    ok("apply", "--auto-approve")
    assert agent_skills()[1]["version"] == first
    plan_is_clean()
    app.write_text(AGENTS.replace("{ref: pdf-tools}", "{ref: pdf-tools, version: skillver_nope}"))
    before = live_agent(lockfile()["resources"]["agent.coder"]["id"])
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert (
            "manifests/app.yaml:10:24: agent.coder pins skill.pdf-tools version skillver_nope, "
            "which does not exist"
        ) in result.stderr, result.stderr
    assert live_agent(before["id"]) == before


def test_version_latest_follows_the_newest_as_a_deployments_pin_does(workdir: Path) -> None:
    """``{ref: pdf-tools, version: latest}``, written as a Deployment's ``agent`` pin is:
    validate took it, and plan refused it as "version latest, which does not exist"."""
    app = workdir / "manifests/app.yaml"
    app.write_text(AGENTS.replace("{ref: pdf-tools}", "{ref: pdf-tools, version: latest}"))
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    assert agent_skills()[1]["version"] == skill["latest_version_id"]
    plan_is_clean()
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    assert "~ agent.coder  update  version 1 -> 2  [skills]" in ok("plan").stdout
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    assert agent_skills()[1]["version"] == skill["latest_version_id"]
    # the same as leaving version out: no change either way
    app.write_text(AGENTS)
    plan_is_clean()


def test_wire_form_skills_stay_as_written(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    [skill] = live_skills()
    (workdir / "manifests/app.yaml").write_text(
        AGENTS.replace("{ref: pdf-tools}", f"{{type: custom, skill_id: {skill['id']}}}")
    )
    ok("apply", "--auto-approve")
    anthropic, custom = agent_skills()
    assert (anthropic["type"], anthropic["skill_id"]) == ("anthropic", "xlsx")
    assert (custom["skill_id"], custom["version"]) == (skill["id"], skill["latest_version_id"])
    assert "skills" not in lockfile()["resources"]["agent.coder"]
    plan_is_clean()


def test_the_plan_shows_the_chain_in_one_place_in_text_json_and_markdown(workdir: Path) -> None:
    (workdir / "manifests/app.yaml").write_text(AGENTS)
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    text = ok("plan").stdout
    chain = text.split("Skill rollouts (a skill's new version, the agents that follow it, ")[1]
    assert chain.splitlines()[1:4] == [
        "  skill.pdf-tools  new version (1 file changed: fill.py)",
        "    ~ agent.coder  version 1 -> 2  [skills]",
        "      ~ deployment.nightly  pin agent.coder@1 -> @2 (follows latest)",
    ], chain
    assert "  skill.pdf-tools (new version) is used by 1 deployment:" in text
    markdown = ok("plan", "--format", "markdown").stdout
    assert (
        "#### Skill rollouts\n\n- `skill.pdf-tools` new version (1 file changed: fill.py)\n"
        "  - `agent.coder` version 1 -&gt; 2  [skills]\n"
        "    - `deployment.nightly` pin agent.coder@1 -&gt; @2 (follows latest)\n"
    ) in markdown, markdown
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [skill_chain] = plan["skill_chains"]
    assert skill_chain["skill"] == "skill.pdf-tools"
    assert skill_chain["summary"] == "new version (1 file changed: fill.py)"
    assert skill_chain["agents"] == [{"agent": "agent.coder", "from_version": 1, "to_version": 2}]
    assert [(m["deployment"], m["old"], m["new"]) for m in skill_chain["pin_moves"]] == [
        ("deployment.nightly", 1, 2)
    ]
    [action] = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["labels"] == ["files"]
    assert [(c["op"], c["path"]) for c in action["changes"]] == [("change", "fill.py")]
    assert action["changes"][0]["new"].startswith("sha256:")
    ok("apply", "--auto-approve")
    assert json.loads(ok("plan", "--format", "json").stdout)["skill_chains"] == []


def test_a_saved_plan_refuses_skill_files_changed_since_it_was_made(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("plan", "--out", "skill.plan")
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(3)\n")
    result = cli("apply", "skill.plan", "--auto-approve")
    assert result.exit_code == 1, result.stdout
    [skill] = live_skills()
    assert len(versions(skill["id"])) == 1
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "skill.plan", "--auto-approve")
    assert len(versions(skill["id"])) == 2
    plan_is_clean()
