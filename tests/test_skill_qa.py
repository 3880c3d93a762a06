"""Skills and memory stores as a careful new user drives them through the CLI (embedded
provider): each test is a case that was wrong once (found by trying the features as a user
would) and stays fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import (
    cli,
    drift_json,
    lockfile,
    ok,
    out_of_band,
    plan_is_clean,
)
from support.skills import SKILL_MD, SKILLS, skill_workdir

from reconciler.provider import ProviderClient

TWO_AGENTS = """\
kind: Environment
name: dev
spec: {config: {type: cloud}}
---
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  skills: [{ref: pdf-tools}]
---
kind: Agent
name: reviewer
spec:
  model: claude-sonnet-4-6
  skills: [{ref: pdf-tools}]
---
kind: Deployment
name: d-coder
spec:
  agent: {ref: coder}
  environment: dev
  initial_events: [{type: user.message, content: [{type: text, text: hi}]}]
---
kind: Deployment
name: d-reviewer
spec:
  agent: {ref: reviewer}
  environment: dev
  initial_events: [{type: user.message, content: [{type: text, text: hi}]}]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = skill_workdir(tmp_path, monkeypatch)
    (root / "manifests/agents.yaml").write_text(TWO_AGENTS)
    return root


def test_drift_after_a_targeted_skill_apply_does_not_call_the_following_agents_edited(
    workdir: Path,
) -> None:
    # the skill's new version is applied alone; the agents that follow it have not moved
    # yet: that is a pending change of the manifests (plan shows it), not an edit behind
    # git's back
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve", "--target", "skill.pdf-tools")
    assert drift_json(code=0)["items"] == []
    shown = ok("plan").stdout
    assert "~ agent.coder  update  version 1 -> 2  [skills]" in shown


def test_a_skill_deleted_behind_gits_back_is_not_also_an_edit_of_the_agents_that_use_it(
    workdir: Path,
) -> None:
    # the agents still name the deleted skill's id: a consequence of the skill's own drift
    # (reported at the skill), not an edit of the agents outside git
    ok("apply", "--auto-approve")
    gone = lockfile()["resources"]["skill.pdf-tools"]["id"]

    async def delete(client: ProviderClient) -> None:
        await client.skills.delete(gone)

    out_of_band(delete)
    report = drift_json()
    assert [(i["address"], i["type"]) for i in report["items"]] == [("skill.pdf-tools", "deleted")]
    shown = ok("plan").stdout
    assert "+ skill.pdf-tools  create" in shown
    assert "~ agent.coder  update" in shown and "~ agent.reviewer  update" in shown
    ok("apply", "--auto-approve")
    plan_is_clean()


def test_yaml_files_inside_a_skill_directory_are_the_skills_files_not_manifests(
    workdir: Path,
) -> None:
    # a skill often holds YAML data; under manifests/ (where import writes skills) the
    # loader and fmt must leave it to the skill: not parsed as manifests, never rewritten
    data = workdir / "manifests/skills/pdf-tools/forms/w9.yaml"
    data.parent.mkdir()
    data.write_text("fields:   [ssn,  name]\n")
    ok("validate")
    assert "forms/w9.yaml" not in cli("fmt", "--check").stdout
    ok("fmt")
    assert data.read_text() == "fields:   [ssn,  name]\n"
    shown = ok("plan").stdout
    assert "+ forms/w9.yaml" in shown
    ok("apply", "--auto-approve")
    plan_is_clean()


STORE = """\
kind: MemoryStore
name: notes
spec:
  description: Team notes
  memories:
    - path: /style.md
      from_file: seeds/style.md
    - path: /inline.md
      content: inline
"""


def store_memories(store_id: str) -> dict[str, str]:
    async def read(client: ProviderClient) -> dict[str, str]:
        return {
            m["path"]: m["content"]
            async for m in client.memory_stores.memories.list(store_id, view="full")
        }

    return out_of_band(read)


def test_a_memory_seed_may_take_its_content_from_a_file(workdir: Path) -> None:
    # the design's seed forms are {path, content} and {path, from_file}
    (workdir / "manifests/seeds").mkdir()
    (workdir / "manifests/seeds/style.md").write_text("- Use ruff.\n")
    (workdir / "manifests/stores.yaml").write_text(STORE)
    ok("validate")
    assert "Use ruff." in ok("plan").stdout
    ok("apply", "--auto-approve")
    stored = store_memories(str(lockfile()["resources"]["memory_store.notes"]["id"]))
    assert stored == {"/style.md": "- Use ruff.\n", "/inline.md": "inline"}
    plan_is_clean()
    schema = json.loads(ok("schema").stdout)
    assert "from_file" in json.dumps(schema["$defs"]["MemorySeed"])


def test_a_memory_seed_file_that_is_missing_is_an_error_at_its_from_file(workdir: Path) -> None:
    (workdir / "manifests/stores.yaml").write_text(STORE)
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/stores.yaml:7:18: spec.memories[0].from_file: text file " in result.stderr
    assert "does not exist" in result.stderr
    both = STORE.replace(
        "      from_file: seeds/style.md\n", "      from_file: x\n      content: y\n"
    )
    (workdir / "manifests/stores.yaml").write_text(both)
    result = cli("plan")
    assert result.exit_code == 1
    assert "manifests/stores.yaml:7:18: spec.memories[0].from_file: give content or " in (
        result.stderr
    )
    assert not Path(".reconciler/provider.db").exists() or lockfile()["resources"] == {}


def test_a_memory_seed_file_over_the_limit_is_an_error_at_its_from_file(workdir: Path) -> None:
    """A seed file over 100 kB was reported at the seed's ``- path:`` line as
    ``spec.memories[0].content``, a key the manifest does not have; it is the file's error,
    at its ``from_file``."""
    (workdir / "manifests/seeds").mkdir()
    (workdir / "manifests/seeds/style.md").write_text("x" * 150_000)
    (workdir / "manifests/stores.yaml").write_text(STORE)
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/stores.yaml:7:18: spec.memories[0].from_file: memory content is " in (
        result.stderr
    ), result.stderr


def test_a_seed_path_given_twice_is_said_beside_another_seeds_error(workdir: Path) -> None:
    """Validation says every error at once: a seed path given twice was said only after
    another seed's error (a path without its leading '/') was fixed."""
    (workdir / "manifests/stores.yaml").write_text(
        "kind: MemoryStore\nname: notes\nspec:\n  memories:\n"
        "    - {path: /a.md, content: one}\n"
        "    - {path: /a.md, content: two}\n"
        "    - {path: b.md, content: three}\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "stores.yaml:7:14: spec.memories[2].path: memory path 'b.md' must start" in (
        result.stderr
    ), result.stderr
    assert "stores.yaml:6:14: spec.memories[1].path: memory path '/a.md' is seeded twice" in (
        result.stderr
    ), result.stderr


def live_skill_ids() -> list[str]:
    async def read(client: ProviderClient) -> list[str]:
        return [s["id"] async for s in client.skills.list()]

    return out_of_band(read)


def test_a_skill_renamed_with_moved_from_keeps_its_skill_instead_of_uploading_a_twin(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    before = lockfile()["resources"]["skill.pdf-tools"]
    assert len(before["uploaded"]) == 2
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf\nmoved_from: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
    )
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("{ref: pdf-tools}", "{ref: pdf}"))
    plan = json.loads(ok("plan", "--format", "json").stdout)
    by_address = {a["address"]: a for a in plan["actions"]}
    assert by_address["skill.pdf"]["type"] == "noop", by_address["skill.pdf"]
    assert by_address["skill.pdf"]["moved_from"] == "skill.pdf-tools"
    assert "skill.pdf-tools" not in by_address
    assert [a for a in plan["actions"] if a["type"] != "noop"] == []
    assert "skill.pdf-tools -> skill.pdf" in ok("plan").stdout
    ok("apply", "--auto-approve")
    assert live_skill_ids() == [before["id"]]
    after = lockfile()["resources"]
    assert "skill.pdf-tools" not in after
    assert after["skill.pdf"]["id"] == before["id"]
    assert after["skill.pdf"]["uploaded"] == before["uploaded"]
    assert after["agent.coder"]["skills"] == {"skill.pdf": max(before["uploaded"])}
    plan_is_clean()
    # and a file changed with the move is a new version of the same skill
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(3)\n")
    ok("apply", "--auto-approve")
    assert live_skill_ids() == [before["id"]]
    plan_is_clean()


def test_a_new_agents_skills_read_as_the_skill_and_its_version_not_a_placeholder(
    workdir: Path,
) -> None:
    text = ok("plan").stdout
    assert "+ skills: [skill.pdf-tools@latest]" in text, text
    markdown = ok("plan", "--format", "markdown").stdout
    for shown in (text, markdown):
        assert "$skill" not in shown
    # JSON keeps the documented placeholder (docs/json-format.md)
    assert '"$skill": "skill.pdf-tools"' in ok("plan", "--format", "json").stdout
    ok("apply", "--auto-approve")
    pinned = str(next(iter(lockfile()["resources"]["skill.pdf-tools"]["uploaded"])))
    pinned_agent = "kind: Agent\nname: pinned\nspec:\n  model: claude-sonnet-4-6\n"
    pinned_agent += f"  skills: [{{ref: pdf-tools, version: {pinned}}}]\n"
    (workdir / "manifests/pinned.yaml").write_text(pinned_agent)
    assert f"+ skills: [skill.pdf-tools@{pinned}]" in ok("plan").stdout


def test_the_skill_rollout_puts_each_deployment_under_the_agent_it_follows(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    text = ok("plan").stdout
    chain = text.split("Skill rollouts (a skill's new version, the agents that follow it, ")[1]
    assert chain.splitlines()[1:6] == [
        "  skill.pdf-tools  new version (1 file changed: fill.py)",
        "    ~ agent.coder  version 1 -> 2  [skills]",
        "      ~ deployment.d-coder  pin agent.coder@1 -> @2 (follows latest)",
        "    ~ agent.reviewer  version 1 -> 2  [skills]",
        "      ~ deployment.d-reviewer  pin agent.reviewer@1 -> @2 (follows latest)",
    ], chain
    markdown = ok("plan", "--format", "markdown").stdout
    assert (
        "- `skill.pdf-tools` new version (1 file changed: fill.py)\n"
        "  - `agent.coder` version 1 -&gt; 2  [skills]\n"
        "    - `deployment.d-coder` pin agent.coder@1 -&gt; @2 (follows latest)\n"
        "  - `agent.reviewer` version 1 -&gt; 2  [skills]\n"
        "    - `deployment.d-reviewer` pin agent.reviewer@1 -&gt; @2 (follows latest)\n"
    ) in markdown, markdown


def test_a_document_without_kind_and_the_schema_name_every_kind(workdir: Path) -> None:
    (workdir / "manifests/nokind.yaml").write_text("name: x\nspec: {}\n")
    result = cli("validate")
    assert result.exit_code == 1
    hint = "add kind: Agent, Environment, Vault, Deployment, MemoryStore, Skill or Policy"
    assert f"manifests/nokind.yaml:1:1: kind: missing required field 'kind': {hint}" in (
        result.stderr
    )
    described = json.loads(ok("schema").stdout)["description"]
    assert "MemoryStore" in described and "Skill" in described


def test_a_lost_lockfile_says_once_that_the_skill_was_found_by_its_slug(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    Path("state/reconciler.lock").unlink()
    shown = ok("plan").stdout
    assert (
        "skill.pdf-tools was found again by its slug pdf-tools (the lockfile had no entry); "
        "its latest version "
    ) in shown, shown
    assert shown.count("by its slug") == 1, shown


def test_fmt_keeps_the_braces_of_a_one_key_mapping_in_a_flow_list(workdir: Path) -> None:
    # [{ref: pdf-tools}] read back as [ref: pdf-tools]: the same data, but not what anyone
    # writes (and easily misread as a list of strings)
    agents = workdir / "manifests/agents.yaml"
    ok("fmt")
    assert "skills: [{ref: pdf-tools}]" in agents.read_text()
    assert "[ref: pdf-tools]" not in agents.read_text()


def test_a_display_name_changed_under_a_live_skill_is_a_plan_error_at_its_place(
    workdir: Path,
) -> None:
    # the wire has no way to rename a skill: recording the new name as applied would
    # hide the difference for good
    ok("apply", "--auto-approve")
    before = Path("state/reconciler.lock").read_text()
    (workdir / "manifests/skills.yaml").write_text(SKILLS + "  display_name: PDF tools\n")
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert (
            "manifests/skills.yaml:5:3: skill.pdf-tools: display_name 'PDF tools' differs "
            "from the live skill's 'pdf-tools'"
        ) in result.stderr, result.stderr
    assert Path("state/reconciler.lock").read_text() == before
    (workdir / "manifests/skills.yaml").write_text(SKILLS + "  display_name: pdf-tools\n")
    ok("apply", "--auto-approve")
    plan_is_clean()


def test_a_skill_moved_and_given_another_slug_at_once_is_refused_at_plan(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf\nmoved_from: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
    )
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("{ref: pdf-tools}", "{ref: pdf}"))
    skill_md = workdir / "manifests/skills/pdf-tools/SKILL.md"
    skill_md.write_text(SKILL_MD.replace("name: pdf-tools", "name: pdf"))
    result = cli("plan")
    assert result.exit_code == 1
    assert "manifests/skills.yaml:5:3: skill.pdf: SKILL.md names the skill 'pdf', but the " in (
        result.stderr
    )


def upload_file(text: str) -> str:
    async def run(client: ProviderClient) -> str:
        return str((await client.files.upload(text.encode(), filename="brief.md"))["id"])

    return out_of_band(run)


def test_a_deployment_naming_a_file_that_does_not_exist_is_a_plan_error_at_its_place(
    workdir: Path,
) -> None:
    # found by plan, at the line that names it, before anything is created; apply used
    # to create the rest and fail with 'POST /v1/deployments not found'
    agents = workdir / "manifests/agents.yaml"
    with_file = agents.read_text().replace(
        "  environment: dev\n",
        "  environment: dev\n  resources: [{type: file, file_id: file_nope}]\n",
        1,
    )
    agents.write_text(with_file)
    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert (
            "manifests/agents.yaml:22:28: deployment.d-coder: file file_nope does not exist"
        ) in result.stderr, result.stderr
    assert not Path("state/reconciler.lock").exists() or lockfile()["resources"] == {}
    agents.write_text(with_file.replace("file_nope", upload_file("# brief\n")))
    ok("apply", "--auto-approve")
    plan_is_clean()


def test_state_rm_of_a_skill_says_the_next_plan_will_not_take_it_over(workdir: Path) -> None:
    # a skill carries no tags: once forgotten, nothing proves it is this project's, so the
    # next plan refuses it (as for a hand-made skill) and import adopts it again
    ok("apply", "--auto-approve")
    skill_id = lockfile()["resources"]["skill.pdf-tools"]["id"]
    said = ok("state", "rm", "skill.pdf-tools").stdout
    assert "ownership metadata, so while skill.pdf-tools is in the manifests" in said, said
    assert f"`reconciler import skill.pdf-tools {skill_id}` adopts it again" in said
    refused = cli("plan")
    assert refused.exit_code == 1 and f"reconciler import skill.pdf-tools {skill_id}" in (
        refused.stderr
    )
    ok("import", "skill.pdf-tools", skill_id)
    plan_is_clean()


def test_two_skill_documents_with_one_slug_keep_their_own_skills_after_a_lost_lockfile(
    workdir: Path,
) -> None:
    # a skill is found again by its slug (no metadata); two documents may share one (two
    # hand-made skills imported, say): each must find its own skill, never both the newest
    other = workdir / "manifests/skills/pdf-copy"
    other.mkdir()
    (other / "SKILL.md").write_text(SKILL_MD)
    (other / "fill.py").write_text("print('copy')\n")
    (workdir / "manifests/skill2.yaml").write_text(
        "kind: Skill\nname: pdf2\nspec:\n  source: skills/pdf-copy\n  display_name: PDF copy\n"
    )
    ok("apply", "--auto-approve")
    before = {a: e["id"] for a, e in lockfile()["resources"].items() if e["kind"] == "skill"}
    assert len(set(before.values())) == 2
    Path("state/reconciler.lock").unlink()
    assert drift_json(code=0)["items"] == []
    ok("apply", "--auto-approve")
    after = {a: e["id"] for a, e in lockfile()["resources"].items() if e["kind"] == "skill"}
    assert after == before
    assert sorted(live_skill_ids()) == sorted(before.values())
    plan_is_clean()


def test_the_skills_current_version_deleted_behind_gits_back_is_drift_as_plan_uploads_it(
    workdir: Path,
) -> None:
    # two versions applied; the current one is deleted through the API, so the live latest
    # is the older version (ours too): plan uploads the manifest's files again, and drift
    # must say why instead of "No drift"
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    entry = lockfile()["resources"]["skill.pdf-tools"]
    skill_id = entry["id"]

    async def delete_current(client: ProviderClient) -> str:
        current = (await client.skills.retrieve(skill_id))["latest_version_id"]
        await client.skills.versions.delete(skill_id, current)
        return str(current)

    current = out_of_band(delete_current)
    report = drift_json()
    assert [(i["address"], i["type"]) for i in report["items"]] == [("skill.pdf-tools", "changed")]
    assert current in report["items"][0]["message"]
    assert "deleted" in report["items"][0]["message"]
    shown = cli("drift")
    assert shown.exit_code == 2 and "skill.pdf-tools" in shown.stdout and current in shown.stdout
    shown = ok("plan").stdout
    assert "skill.pdf-tools  new version" in shown
    assert f"its latest version {current} was deleted behind git's back" in shown
    ok("apply", "--auto-approve")
    assert drift_json(code=0)["items"] == []
    plan_is_clean()


def test_a_pinned_skill_version_deleted_behind_gits_back_is_drift_and_a_plan_error(
    workdir: Path,
) -> None:
    # agent.coder pins the first version; a second is uploaded; the first is deleted through
    # the API. Plan and drift said nothing (the lockfile's record of the upload was taken as
    # proof that the version exists), and the agent kept a version that is gone.
    ok("apply", "--auto-approve")
    entry = lockfile()["resources"]["skill.pdf-tools"]
    skill_id, first = entry["id"], entry["latest"]
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(
        agents.read_text().replace(
            "name: coder\nspec:\n  model: claude-sonnet-4-6\n  skills: [{ref: pdf-tools}]",
            f"name: coder\nspec:\n  model: claude-sonnet-4-6\n"
            f"  skills: [{{ref: pdf-tools, version: {first}}}]",
        )
    )
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    plan_is_clean()

    async def delete_first(client: ProviderClient) -> None:
        await client.skills.versions.delete(skill_id, first)

    out_of_band(delete_first)
    report = drift_json()
    assert [(i["address"], i["type"]) for i in report["items"]] == [("agent.coder", "changed")]
    assert f"skill.pdf-tools version {first}" in report["items"][0]["message"]
    assert "deleted" in report["items"][0]["message"]
    result = cli("plan")
    assert result.exit_code == 1, result.stdout
    assert (
        f"manifests/agents.yaml:9:29: agent.coder pins skill.pdf-tools version {first}, "
        "which does not exist"
    ) in result.stderr, result.stderr


def test_an_agent_naming_one_skill_twice_is_an_error_at_the_second(workdir: Path) -> None:
    # validate and plan took it; apply sent the skill twice and the plan's blast radius
    # listed every deployment twice
    agents = workdir / "manifests/agents.yaml"
    coder = "name: coder\nspec:\n  model: claude-sonnet-4-6\n  skills: [{ref: pdf-tools}]"
    cases = {
        "[{ref: pdf-tools}, {ref: pdf-tools, version: latest}]": (
            "manifests/agents.yaml:9:36: spec.skills[1].ref: skill pdf-tools is listed twice"
        ),
        "[{type: anthropic, skill_id: xlsx}, {ref: pdf-tools}, "
        "{type: anthropic, skill_id: xlsx}]": "spec.skills[2].skill_id: skill xlsx is listed twice",
    }
    for skills, error in cases.items():
        agents.write_text(TWO_AGENTS.replace(coder, coder.replace("[{ref: pdf-tools}]", skills)))
        for command in (("validate",), ("plan",)):
            result = cli(*command)
            assert result.exit_code == 1, result.stdout
            assert error in result.stderr, result.stderr
    assert not Path(".reconciler/provider.db").exists()


def test_a_skill_source_name_too_long_for_the_system_is_an_error_at_source(
    workdir: Path,
) -> None:
    """``source:`` a name longer than the file system takes (a pasted blob) made validate
    and plan say "internal error while reading this file (OSError); please report this
    bug" at line 1 of the file; it is the source's own error, at its place."""
    (workdir / "manifests/skills.yaml").write_text(
        SKILLS.replace("source: skills/pdf-tools", "source: skills/" + "x" * 300)
    )
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1, (command, result.stdout)
        assert "manifests/skills.yaml:4:11: spec.source: skill source " in result.stderr, (
            command,
            result.stderr,
        )
        assert "File name too long" in result.stderr
        assert "bug" not in result.stderr and "internal error" not in result.stderr


def test_a_gitignore_line_git_skips_is_skipped_for_a_skills_files_too(workdir: Path) -> None:
    """A .gitignore line git cannot read (a trailing backslash, ``[z-a]``) is skipped by
    git; here it made validate and plan say "internal error while reading this file
    (GitIgnorePatternError); please report this bug". The rest of the file still holds."""
    (workdir / "manifests/skills/pdf-tools/.gitignore").write_text("notes\\\n[z-a]\nlocal.txt\n")
    (workdir / "manifests/skills/pdf-tools/local.txt").write_text("not uploaded\n")
    (workdir / ".gitignore").write_text("build\\\n")
    ok("validate")
    result = ok("plan")
    assert "fill.py" in result.stdout and "local.txt" not in result.stdout, result.stdout


def test_a_skill_source_that_is_a_symlink_loop_is_called_one(workdir: Path) -> None:
    """``source:`` naming a symbolic link loop was said to "not exist" (the link is there:
    a user looks for a missing directory instead of the link)."""
    (workdir / "manifests/loop").symlink_to("loop")
    (workdir / "manifests/skills.yaml").write_text(
        SKILLS.replace("source: skills/pdf-tools", "source: loop")
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/skills.yaml:4:11: spec.source: skill source " in result.stderr
    assert "is a symbolic link loop" in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["new\nline.md", "tab\there.md", "back\\slash.md"])
def test_a_skill_file_name_the_provider_refuses_is_an_error_at_source_before_any_upload(
    workdir: Path, name: str
) -> None:
    """A file whose name holds a control character (a newline) or a backslash passed
    validate and plan (the newline split the plan's lines) and only failed at apply with the
    provider's 400; it is the source's error, at its place, and nothing is sent."""
    (workdir / "manifests/skills/pdf-tools" / name).write_text("x\n")
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1, (command, result.stdout)
        assert "manifests/skills.yaml:4:11: spec.source: " in result.stderr, result.stderr
        assert repr(name) in result.stderr, result.stderr
    assert cli("apply", "--auto-approve").exit_code == 1
    assert not Path("state/reconciler.lock").exists()


def test_a_skill_file_name_that_is_not_utf8_is_an_error_at_source_not_a_bug(
    workdir: Path,
) -> None:
    """A file name that is not UTF-8 (copied from an old archive) made validate say
    "internal error while reading this file (UnicodeEncodeError); please report this bug"
    at line 1 of the manifest file."""
    directory = bytes(workdir / "manifests/skills/pdf-tools")
    with open(directory + b"/caf\xe9.md", "wb") as handle:
        handle.write(b"x\n")
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1, (command, result.stdout)
        assert "manifests/skills.yaml:4:11: spec.source: " in result.stderr, result.stderr
        assert "not UTF-8" in result.stderr, result.stderr
        assert "internal error" not in result.stderr
