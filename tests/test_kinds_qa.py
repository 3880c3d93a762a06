"""Skills, memory stores, renames and prompt files as a demanding new user drives them
through the CLI (embedded provider): each test is a case that was wrong once (found by a QA
pass in session 8) and stays fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok, out_of_band, plan_is_clean
from support.skills import SKILLS, skill_workdir

from reconciler.provider import ProviderClient, SkillUpload

PINNED_AGENT = """\
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  skills: [{{ref: {ref}, version: {version}}}]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return skill_workdir(tmp_path, monkeypatch)


def pin_first_version(workdir: Path) -> str:
    """Apply the skill, upload a second version, and pin an agent to the first one."""
    ok("apply", "--auto-approve")
    first = str(next(iter(lockfile()["resources"]["skill.pdf-tools"]["uploaded"])))
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(PINNED_AGENT.format(ref="pdf-tools", version=first))
    ok("apply", "--auto-approve")
    plan_is_clean()
    return first


def test_a_pinned_skill_version_is_found_after_the_skill_is_renamed_with_moved_from(
    workdir: Path,
) -> None:
    # the pin named a version of the skill's old address: 'does not exist (its versions:
    # none yet: it is uploaded by this apply)', though the move keeps the same skill
    first = pin_first_version(workdir)
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf\nmoved_from: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
    )
    (workdir / "manifests/agents.yaml").write_text(PINNED_AGENT.format(ref="pdf", version=first))
    shown = ok("plan").stdout
    assert "skill.pdf-tools -> skill.pdf  moved" in shown, shown
    ok("apply", "--auto-approve")
    assert lockfile()["resources"]["agent.coder"]["skills"] == {"skill.pdf": first}
    plan_is_clean()


def test_a_pinned_skill_version_is_found_after_a_lost_lockfile(workdir: Path) -> None:
    # the skill is found again by its slug, and so is the version the agent pins
    first = pin_first_version(workdir)
    Path("state/reconciler.lock").unlink()
    shown = ok("plan").stdout
    assert "found again by its slug pdf-tools" in shown, shown
    ok("apply", "--auto-approve")
    assert lockfile()["resources"]["agent.coder"]["skills"] == {"skill.pdf-tools": first}
    plan_is_clean()


def test_a_pin_to_a_version_that_does_not_exist_is_still_refused_after_a_move(
    workdir: Path,
) -> None:
    pin_first_version(workdir)
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf\nmoved_from: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
    )
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(PINNED_AGENT.format(ref="pdf", version="skillver_nope"))
    result = cli("plan")
    assert result.exit_code == 1
    assert (
        "manifests/agents.yaml:5:23: agent.coder pins skill.pdf version skillver_nope, which "
        "does not exist (its versions: skillver_"
    ) in result.stderr, result.stderr


def test_an_imported_stores_seeds_are_written_when_absent_as_the_import_note_says(
    workdir: Path,
) -> None:
    # the note said seeds are written only when a store is created, and the plan agreed:
    # the imported entry counted every seed as written, so a seed added to the imported
    # store's manifest was never written (README: a seed added to a live store's manifest
    # is written by the next apply)
    async def hand_made(client: ProviderClient) -> None:
        await client.memory_stores.create({"name": "scratch", "description": "by hand"})

    out_of_band(hand_made)
    said = ok("import", "--all-unmanaged", "--out", "manifests/imported").stdout
    assert (
        "Memory stores are imported without their memories: the agents own that content.\n"
    ) in said, said
    assert "only when a store is created" not in said
    stores = workdir / "manifests/imported/memory_stores.yaml"
    stores.write_text(stores.read_text() + "  memories: [{path: /a.md, content: seeded}]\n")
    assert "+ memories[/a.md]" in ok("plan").stdout
    ok("apply", "--auto-approve")
    plan_is_clean()

    async def read(client: ProviderClient) -> list[str]:
        stores = await client.memory_stores.list().to_list()
        (store,) = [s for s in stores if s["name"] == "scratch"]
        memories = await client.memory_stores.memories.list(store["id"]).to_list()
        return [m["path"] for m in memories]

    assert out_of_band(read) == ["/a.md"]


def test_importing_a_declared_store_writes_its_absent_seeds_and_never_overwrites_one(
    workdir: Path,
) -> None:
    async def hand_made(client: ProviderClient) -> str:
        made = await client.memory_stores.create({"name": "scratch"})
        await client.memory_stores.memories.create(made["id"], "/kept.md", "the agent's")
        return str(made["id"])

    store_id = out_of_band(hand_made)
    (workdir / "manifests/stores.yaml").write_text(
        "kind: MemoryStore\nname: scratch\nspec:\n  memories:\n"
        "    - {path: /kept.md, content: seed}\n    - {path: /new.md, content: seed}\n"
    )
    imported = ok("import", "memory_store.scratch", store_id)
    assert "the seed /kept.md differs" in imported.stderr, imported.stderr
    shown = ok("plan").stdout  # only what apply writes: /kept.md holds the agent's memory
    assert "/kept.md" not in shown and "+ memories[/new.md]" in shown, shown
    ok("apply", "--auto-approve")
    plan_is_clean()

    async def read(client: ProviderClient) -> dict[str, str]:
        memories = client.memory_stores.memories
        listed = await memories.list(store_id).to_list()
        return {m["path"]: (await memories.retrieve(store_id, m["id"]))["content"] for m in listed}

    assert out_of_band(read) == {"/kept.md": "the agent's", "/new.md": "seed"}


def test_a_seed_added_with_a_stores_rename_is_written(workdir: Path) -> None:
    # the move read the seeds the state records under the new address (none), so the
    # seed added in the same commit was neither planned nor written, and then recorded as
    # written: it never reached the store
    stores = workdir / "manifests/stores.yaml"
    stores.write_text(
        "kind: MemoryStore\nname: notes\nspec:\n  memories:\n    - {path: /a.md, content: a}\n"
    )
    ok("apply", "--auto-approve")
    store_id = lockfile()["resources"]["memory_store.notes"]["id"]
    stores.write_text(
        "kind: MemoryStore\nname: team-notes\nmoved_from: notes\nspec:\n  memories:\n"
        "    - {path: /a.md, content: a}\n    - {path: /b.md, content: b}\n"
    )
    shown = ok("plan").stdout
    assert "memory_store.notes -> memory_store.team-notes  moved" in shown, shown
    assert "+ memories[/b.md]" in shown and "/a.md" not in shown, shown
    ok("apply", "--auto-approve")
    plan_is_clean()

    async def paths(client: ProviderClient) -> list[str]:
        memories = await client.memory_stores.memories.list(store_id).to_list()
        return sorted(m["path"] for m in memories)

    assert out_of_band(paths) == ["/a.md", "/b.md"]
    assert lockfile()["resources"]["memory_store.team-notes"]["id"] == store_id


def test_a_skill_renamed_with_a_file_changed_shows_the_move_on_its_line(workdir: Path) -> None:
    # the headline read '~ skill.pdf  new version (...)' while the summary counted '1
    # moved': the move was only in the reason, unlike every other kind's moved headline
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf\nmoved_from: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
    )
    (workdir / "manifests/skills/pdf-tools/fill.py").write_text("print(2)\n")
    shown = ok("plan").stdout
    assert (
        "  ~ skill.pdf-tools -> skill.pdf  moved  new version (1 file changed: fill.py)\n"
    ) in shown, shown
    assert "Plan: 0 to create, 1 to update, 0 to archive, 1 moved." in shown
    markdown = ok("plan", "--format", "markdown").stdout
    assert "skill.pdf-tools -&gt; skill.pdf" in markdown or "skill.pdf-tools -> skill.pdf" in (
        markdown
    ), markdown


MOUNTED = """\
kind: Environment
name: dev
spec: {config: {type: cloud}}
---
kind: Agent
name: coder
spec: {model: claude-sonnet-4-6}
---
kind: MemoryStore
name: notes
spec: {description: Team notes}
---
kind: Deployment
name: nightly
spec:
  agent: {ref: coder}
  environment: dev
  initial_events: [{type: user.message, content: [{type: text, text: hi}]}]
  resources: [{memory_store: notes, access: read_only}]
"""


def test_a_changed_memory_store_names_the_deployments_that_mount_it(workdir: Path) -> None:
    # a store's description is what the agent is shown, its name the directory it is
    # mounted at: the plan named the deployments an environment or vault change reaches,
    # but never those of a memory store
    stores = workdir / "manifests/agents.yaml"
    stores.write_text(MOUNTED)
    ok("apply", "--auto-approve")
    stores.write_text(MOUNTED.replace("Team notes", "Team notes for 2027"))
    plan = json.loads(ok("plan", "--format", "json").stdout)
    assert plan["blast_radius"] == [
        {
            "address": "memory_store.notes",
            "deployments": [
                {"deployment": "deployment.nightly", "follows_latest": True, "pinned_version": None}
            ],
        }
    ], plan["blast_radius"]
    shown = ok("plan").stdout
    assert "memory_store.notes (update) is used by 1 deployment:" in shown, shown


@pytest.mark.parametrize(
    ("skill_md", "said"),
    [
        (
            b"---\nname: pdf-tools\ndescription: Fill PDF forms.\n: not: yaml: [\n---\n",
            (
                "manifests/skills.yaml:4:11: spec.source: manifests/skills/pdf-tools/SKILL.md:4:1: "
                "its frontmatter is not valid YAML: expected <block end>, but found ':'\n"
            ),
        ),
        (
            b"---\nname: pdf-tools\ndescription: F\xfcllt PDF-Formulare.\n---\n",
            (
                "manifests/skills.yaml:4:11: spec.source: manifests/skills/pdf-tools/SKILL.md is "
                "not UTF-8 text\n"
            ),
        ),
        (
            b"---\nname: [pdf, tools]\ndescription: Fill PDF forms.\n---\n",
            (
                "manifests/skills.yaml:4:11: spec.source: manifests/skills/pdf-tools/SKILL.md: its "
                "frontmatter's name is not text: write the skill's slug, e.g. name: pdf-tools\n"
            ),
        ),
    ],
    ids=["bad-yaml", "not-utf8", "name-not-text"],
)
def test_a_broken_skill_md_says_what_is_wrong_in_one_line(
    workdir: Path, skill_md: bytes, said: str
) -> None:
    # the YAML error was the parser's multi-line dump about '<unicode string>', a Latin-1
    # SKILL.md was said to have no frontmatter, and a list name to have no name
    (workdir / "manifests/skills/pdf-tools/SKILL.md").write_bytes(skill_md)
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr == f"Error: 1 error in manifests:\n  {said}", result.stderr


def test_state_mv_of_a_skill_does_not_promise_a_retag(workdir: Path) -> None:
    # it said the next apply retags the skill (its reconciler-address metadata) and renames
    # it: a skill has neither, and the next apply sends nothing
    ok("apply", "--auto-approve")
    skill_id = lockfile()["resources"]["skill.pdf-tools"]["id"]
    said = ok("state", "mv", "skill.pdf-tools", "skill.pdf").stdout
    assert "retags" not in said and "reconciler-address" not in said, said
    assert (
        f"The remote object (skill {skill_id}) was NOT touched, and the next apply sends "
        "nothing for it: a skill carries no ownership metadata and no name that follows the "
        "document; the entry alone says it is skill.pdf."
    ) in said, said
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf\nspec:\n  source: skills/pdf-tools\n"
    )
    ok("apply", "--auto-approve")
    assert lockfile()["resources"]["skill.pdf"]["id"] == skill_id
    plan_is_clean()


def test_ignore_changes_on_a_skill_is_refused_instead_of_ignored(workdir: Path) -> None:
    # 'ignore_changes: [source]' was accepted and did nothing: the next file edit still
    # uploaded a new version that every following agent moved to
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf-tools\nignore_changes: [source]\nspec:\n"
        "  source: skills/pdf-tools\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/skills.yaml:3:18: ignore_changes[0]: a Skill has nothing ignore_changes can "
        "leave alone: a change of its files (source) is a new version, and display_name is "
        "fixed when it is created; remove ignore_changes"
    ) in result.stderr, result.stderr


PROMPTED = "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"
PROMPTED += "  system: {from_file: prompts/coder.md}\n"


@pytest.mark.parametrize(
    ("before", "after", "shown", "marker"),
    [
        (
            b"one\ntwo\nthree",
            b"one\ntwo\nthree\n",
            ["-three", "\\ No newline at end of file", "+three"],
            "\\ No newline at end of file",
        ),
        (
            b"one\ntwo\n",
            b"one\r\ntwo\r\n",
            ["-one", "-two", "+one\\x0d", "+two\\x0d"],
            "two\\x0d",
        ),
    ],
    ids=["final-newline", "crlf"],
)
def test_a_prompt_file_that_differs_only_in_line_ends_shows_the_difference(
    workdir: Path, before: bytes, after: bytes, shown: list[str], marker: str
) -> None:
    # an editor adding the final newline (or a checkout writing CRLF) planned a new agent
    # version under an empty '~ system:' diff: the change was there, and invisible
    prompt = workdir / "manifests/prompts/coder.md"
    prompt.parent.mkdir()
    prompt.write_bytes(before)
    (workdir / "manifests/agents.yaml").write_text(PROMPTED)
    ok("apply", "--auto-approve")
    prompt.write_bytes(after)
    text = ok("plan").stdout
    assert "~ agent.coder  update  version 1 -> 2  [system prompt]" in text, text
    diff = "\n".join(line.strip() for line in text.split("~ system:\n", 1)[1].splitlines())
    assert "\n".join(shown) in diff, text
    markdown = ok("plan", "--format", "markdown").stdout
    assert marker in markdown, markdown


def test_a_target_naming_the_old_address_of_a_move_says_where_it_moved(workdir: Path) -> None:
    # it said 'no such address in the manifests or lockfile' of an address the lockfile
    # holds until the move is applied
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills.yaml").write_text(
        "kind: Skill\nname: pdf\nmoved_from: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
    )
    result = cli("plan", "--target", "skill.pdf-tools")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --target skill.pdf-tools: the manifests move it to skill.pdf (moved_from); "
        "target skill.pdf\n"
    ), result.stderr
    assert "skill.pdf-tools -> skill.pdf" in ok("plan", "--target", "skill.pdf").stdout


def test_a_lost_lockfile_finds_a_skill_whose_display_name_the_manifest_left_out(
    workdir: Path,
) -> None:
    # display_name is optional and fixed at create, so leaving it out later changes nothing;
    # but a lost lockfile then looked for the skill only under its slug as display name,
    # missed it, and planned a twin upload (and the agents moved to the twin)
    skills = workdir / "manifests/skills.yaml"
    skills.write_text(SKILLS + "  display_name: PDF tools\n")
    (workdir / "manifests/agents.yaml").write_text(
        "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"
        "  skills: [{ref: pdf-tools}]\n"
    )
    ok("apply", "--auto-approve")
    skill_id = lockfile()["resources"]["skill.pdf-tools"]["id"]
    skills.write_text(SKILLS)
    ok("apply", "--auto-approve")  # records the new spec digest; sends nothing
    plan_is_clean()
    Path("state/reconciler.lock").unlink()
    plan = json.loads(ok("plan", "--format", "json").stdout)
    changed = [(a["address"], a["type"]) for a in plan["actions"] if a["type"] != "noop"]
    assert changed == [], changed
    ok("apply", "--auto-approve")
    assert lockfile()["resources"]["skill.pdf-tools"]["id"] == skill_id
    plan_is_clean()


def test_import_of_a_skill_over_an_existing_directory_says_what_the_user_can_do(
    workdir: Path,
) -> None:
    # it said 'or import into another directory', which import skill.NAME ID has no option
    # for: the ways out are another name, or a Skill document naming the directory
    async def hand_made(client: ProviderClient) -> str:
        upload = SkillUpload((("notes/SKILL.md", b"---\nname: notes\ndescription: d\n---\n"),))
        return str((await client.skills.create(upload))["id"])

    skill_id = out_of_band(hand_made)
    (workdir / "manifests/skills/notes").mkdir()
    result = cli("import", "skill.notes", skill_id)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: manifests/skills/notes already exists; nothing was imported. Move it away, "
        f"import the skill under another name (reconciler import skill.OTHER {skill_id}), or "
        "write a Skill document for it first (import then keeps the directory it names)\n"
    ), result.stderr


def test_a_skill_version_changing_many_files_names_a_few_in_its_headline(
    workdir: Path,
) -> None:
    # the headline, its reason and the rollout listed every changed file on one line (a
    # vendored library: hundreds of names); the plan lists each file below it anyway
    ok("apply", "--auto-approve")
    for i in range(12):
        (workdir / f"manifests/skills/pdf-tools/lib/m{i:02}.py").parent.mkdir(exist_ok=True)
        (workdir / f"manifests/skills/pdf-tools/lib/m{i:02}.py").write_text(f"x = {i}\n")
    words = (
        "new version (12 files changed: lib/m00.py, lib/m01.py, lib/m02.py, lib/m03.py, "
        "lib/m04.py and 7 more)"
    )
    text = ok("plan").stdout
    assert f"  ~ skill.pdf-tools  {words}\n      reason: {words}\n" in text, text
    assert "lib/m11.py" in text  # its own line below
    plan = json.loads(ok("plan", "--format", "json").stdout)
    (action,) = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["reason"] == words
    assert len(action["changes"]) == 12


@pytest.mark.parametrize(
    ("link", "said"),
    [
        (
            "missing.md",
            "is a symlink to missing.md, which does not exist; remove it or copy the file in",
        ),
        ("self.md", "is a symlink loop; remove it"),
    ],
    ids=["dangling", "loop"],
)
def test_a_broken_symlink_in_a_skill_is_an_error_at_its_source_not_a_bug_report(
    workdir: Path, link: str, said: str
) -> None:
    # 'internal error while reading this file (FileNotFoundError); please report this bug'
    # at the manifest's 1:1, for a symlink left behind by a renamed file
    (workdir / "manifests/skills/pdf-tools/self.md").symlink_to(link)
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 error in manifests:\n  manifests/skills.yaml:4:11: spec.source: self.md in "
        f"skill source manifests/skills/pdf-tools {said}\n"
    ), result.stderr


def test_a_deployment_mounting_one_memory_store_twice_is_an_error_at_validate(
    workdir: Path,
) -> None:
    # validate and plan passed; apply then updated the agents and failed on the deployment
    # with the provider's 400 'resources must not name the same memory store twice'
    twice = MOUNTED.replace(
        "resources: [{memory_store: notes, access: read_only}]",
        "resources: [{memory_store: notes}, {memory_store: notes, access: read_only}]",
    )
    (workdir / "manifests/agents.yaml").write_text(twice)
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/agents.yaml:19:53: spec.resources[1].memory_store: memory store 'notes' is "
        "mounted twice; mount it once (with the access it needs)"
    ) in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("display_name", "said"),
    [
        ('"two\\nlines"', "display_name must be one line"),
        ('"   "', "display_name must not be blank; leave it out to use SKILL.md's name"),
    ],
    ids=["two-lines", "blank"],
)
def test_a_skill_display_name_the_provider_refuses_is_an_error_at_validate(
    workdir: Path, display_name: str, said: str
) -> None:
    # validate and plan passed; apply failed on the upload with the provider's 400
    (workdir / "manifests/skills.yaml").write_text(SKILLS + f"  display_name: {display_name}\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert f"manifests/skills.yaml:5:17: spec.display_name: {said}\n" in result.stderr, (
        result.stderr
    )


def test_a_memory_store_name_with_a_control_character_is_an_error_at_validate(
    workdir: Path,
) -> None:
    # validate and plan passed; apply failed on the create with the provider's 400
    (workdir / "manifests/stores.yaml").write_text(
        'kind: MemoryStore\nname: notes\nspec:\n  name: "Team\\tnotes"\n'
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/stores.yaml:4:9: spec.name: a memory store's name must not hold control "
        "characters (a tab, a line break)\n"
    ) in result.stderr, result.stderr


def test_drift_after_a_lost_lockfile_finds_an_object_the_manifests_move(workdir: Path) -> None:
    # plan finds the renamed agent by its old address's tags; drift called the same object
    # unmanaged ('neither the manifests nor the lockfile know that address') and warned that
    # the new address had no live object
    agents = workdir / "manifests/agents.yaml"
    agents.write_text("kind: Agent\nname: coder\nspec: {model: claude-sonnet-4-6}\n")
    ok("apply", "--auto-approve")
    agents.write_text(
        "kind: Agent\nname: engineer\nmoved_from: coder\nspec: {model: claude-sonnet-4-6}\n"
    )
    Path("state/reconciler.lock").unlink()
    result = cli("drift", "--format", "json")
    report = json.loads(result.stdout)
    assert [i["type"] for i in report["items"]] == [], report["items"]
    assert "agent.engineer" not in result.stderr, result.stderr
    assert "agent.coder -> agent.engineer  moved" in ok("plan").stdout


def test_drift_after_a_lost_lockfile_finds_a_renamed_vault_and_its_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_workdir(tmp_path, monkeypatch)  # the example manifests
    ok("apply", "--auto-approve")
    vaults = root / "manifests/vaults.yaml"
    vaults.write_text(
        vaults.read_text().replace("name: github\n", "name: gh\nmoved_from: github\n")
    )
    deployments = root / "manifests/deployments.yaml"
    deployments.write_text(deployments.read_text().replace("vaults: [github]", "vaults: [gh]"))
    Path("state/reconciler.lock").unlink()
    result = cli("drift", "--format", "json")
    assert json.loads(result.stdout)["items"] == [], result.stdout
    assert "vault.gh" not in result.stderr, result.stderr
