"""``import`` of hand-made skills through the CLI against the embedded provider: the latest
version is downloaded beside the manifests with its document, the skill is recorded (nothing
is sent: a skill carries no tags), and the next plan shows no change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, lockfile, make_workdir, ok, out_of_band, plan_is_clean

from reconciler.provider import ProviderClient, SkillUpload

SKILL_MD = "---\nname: pdf-tools\ndescription: Fill PDF forms.\n---\nUse fill.py.\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch, manifests=False)
    (root / ".git").mkdir()
    (root / "manifests").mkdir()
    (root / "manifests/env.yaml").write_text(
        "kind: Environment\nname: dev\nspec: {config: {type: cloud}}\n"
    )
    ok("apply", "--auto-approve")
    return root


def hand_made(display_name: str | None = None, *, only_skill_md: bool = False) -> dict[str, Any]:
    files = {"SKILL.md": SKILL_MD, "fill.py": "print(1)\n", "forms/w9.json": "{}\n"}
    if only_skill_md:
        files = {"SKILL.md": SKILL_MD}
    upload = SkillUpload(tuple((f"pdf-tools/{p}", t.encode()) for p, t in files.items()))

    async def run(client: ProviderClient) -> dict[str, Any]:
        return dict(await client.skills.create(upload, display_name=display_name))

    return out_of_band(run)


def versions(skill_id: str) -> int:
    async def run(client: ProviderClient) -> int:
        return len(await client.skills.versions.list(skill_id).to_list())

    return out_of_band(run)


def test_import_of_one_skill_downloads_it_writes_its_document_and_records_it(
    workdir: Path,
) -> None:
    skill = hand_made()
    result = ok("import", "skill.pdf-kit", skill["id"])
    assert "recorded with its latest version (a skill carries no tags)" in result.stdout
    assert "(the 3 files of its latest version" in result.stdout + result.stderr
    root = workdir / "manifests/skills"
    assert (root / "pdf-kit/fill.py").read_text() == "print(1)\n"
    assert (root / "pdf-kit/forms/w9.json").read_text() == "{}\n"
    assert "source: pdf-kit" in (root / "pdf-kit.yaml").read_text()
    entry = lockfile()["resources"]["skill.pdf-kit"]
    assert (entry["id"], entry["slug"]) == (skill["id"], "pdf-tools")
    assert list(entry["uploaded"]) == [skill["latest_version_id"]]
    plan_is_clean()
    # managed from now on: a change in git is a new version of that same skill
    (root / "pdf-kit/fill.py").write_text("print(2)\n")
    ok("apply", "--auto-approve")
    assert versions(skill["id"]) == 2
    plan_is_clean()
    # importing it again changes nothing; into a taken directory is refused
    assert cli("import", "skill.pdf-kit", skill["id"]).exit_code == 0
    other = hand_made()
    (workdir / "manifests/skills/pdf-kit.yaml").rename(workdir / "kept.yaml")
    refused = cli("import", "skill.pdf-kit", other["id"], "--force")
    assert refused.exit_code == 1 and "already exists" in refused.stderr


def test_import_of_a_one_file_skill_says_so_in_the_singular(workdir: Path) -> None:
    skill = hand_made(only_skill_md=True)
    result = ok("import", "skill.notes", skill["id"])
    said = result.stdout + result.stderr
    assert "(the one file of its latest version" in said and "1 files" not in said


def test_import_all_unmanaged_writes_every_hand_made_skill_with_its_files(
    workdir: Path,
) -> None:
    first, second = hand_made(), hand_made(display_name="PDF (team B)")
    assert [i["type"] for i in json.loads(cli("drift", "--format", "json").stdout)["items"]] == [
        "unmanaged",
        "unmanaged",
    ]
    ok("import", "--all-unmanaged", "--out", "manifests/imported")
    out = workdir / "manifests/imported"
    text = (out / "skills.yaml").read_text()
    assert "name: pdf-tools\n" in text and "name: pdf-tools-2\n" in text
    assert "display_name: PDF (team B)" in text
    assert (out / "skills/pdf-tools/SKILL.md").read_text() == SKILL_MD
    assert (out / "skills/pdf-tools-2/forms/w9.json").exists()
    ids = {e["id"] for e in lockfile()["resources"].values() if e["kind"] == "skill"}
    assert ids == {first["id"], second["id"]}
    plan_is_clean()
    assert json.loads(cli("drift", "--format", "json").stdout)["items"] == []


def test_import_all_unmanaged_names_a_skill_imported_with_its_agents(workdir: Path) -> None:
    skill = hand_made()
    first = skill["latest_version_id"]

    async def make_agents(client: ProviderClient) -> str:
        files = (("pdf-tools/SKILL.md", SKILL_MD.encode()), ("pdf-tools/fill.py", b"print(2)\n"))
        second = str((await client.skills.versions.create(skill["id"], SkillUpload(files)))["id"])
        for name, version in (("follower", None), ("pinned", first)):
            ref: dict[str, Any] = {"type": "custom", "skill_id": skill["id"]}
            if version is not None:
                ref["version"] = version
            await client.agents.create(
                {"name": name, "model": "claude-sonnet-4-6", "skills": [ref]}
            )
        return second

    out_of_band(make_agents)
    ok("import", "--all-unmanaged", "--out", "manifests/imported")
    text = (workdir / "manifests/imported/agents.yaml").read_text()
    follower, pinned = text.split("---")
    assert "  skills:\n    - ref: pdf-tools\n" in follower and "version" not in follower, text
    assert f"  skills:\n    - ref: pdf-tools\n      version: {first}\n" in pinned, text
    assert "skill_id" not in text
    plan_is_clean()


def test_import_of_an_agent_pinning_an_older_version_of_an_imported_skill_plans_clean(
    workdir: Path,
) -> None:
    """One by one, as a team adopts what it clicked together: the skill, then an agent that
    pins its first version while a second one is the latest. The agent's document says
    ``{ref: pdf-tools, version: FIRST}``, and the next plan has nothing to do (it used to
    record the agent again: "whose lockfile entry is out of date", exit 2)."""
    skill = hand_made()
    first = skill["latest_version_id"]

    async def make_agent(client: ProviderClient) -> str:
        files = (("pdf-tools/SKILL.md", SKILL_MD.encode()), ("pdf-tools/fill.py", b"print(2)\n"))
        await client.skills.versions.create(skill["id"], SkillUpload(files))
        ref = {"type": "custom", "skill_id": skill["id"], "version": first}
        made = await client.agents.create(
            {"name": "pinned", "model": "claude-sonnet-4-6", "skills": [ref]}
        )
        return str(made["id"])

    agent = out_of_band(make_agent)
    ok("import", "skill.pdf-tools", skill["id"])
    ok("import", "agent.pinned", agent)
    text = (workdir / "manifests/agents/pinned.yaml").read_text()
    assert f"  skills:\n    - ref: pdf-tools\n      version: {first}\n" in text, text
    plan_is_clean()
    # imported again, now that its document declares it: clean as well
    ok("state", "rm", "agent.pinned")
    ok("import", "agent.pinned", agent)
    plan_is_clean()


def test_the_imported_skills_document_says_where_it_came_from(workdir: Path) -> None:
    """The document of a single skill's import had no "Imported by" header, which every
    other kind's imported document opens with."""
    skill = hand_made()
    ok("import", "skill.pdf-kit", skill["id"])
    text = (workdir / "manifests/skills/pdf-kit.yaml").read_text()
    assert text.startswith(
        f"# Imported by `reconciler import skill.pdf-kit {skill['id']}`: the live resource.\n"
        "# Review and commit; `reconciler plan` should show no changes.\n"
    ), text
    plan_is_clean()


def with_ignored_files() -> dict[str, Any]:
    """A hand-made skill whose latest version holds files a skill directory never uploads:
    ``run.log`` (the repository's .gitignore), ``__pycache__`` and ``.DS_Store`` (always)."""
    files = {
        "SKILL.md": SKILL_MD.encode(),
        "fill.py": b"print(1)\n",
        "run.log": b"log\n",
        "__pycache__/fill.cpython-311.pyc": b"\x00pyc",
        ".DS_Store": b"\x00ds",
    }
    upload = SkillUpload(tuple((f"pdf-tools/{p}", b) for p, b in files.items()))

    async def run(client: ProviderClient) -> dict[str, Any]:
        return dict(await client.skills.create(upload))

    return out_of_band(run)


@pytest.mark.parametrize("everything", [False, True], ids=["one", "all-unmanaged"])
def test_import_says_which_downloaded_files_the_next_upload_leaves_out(
    workdir: Path, everything: bool
) -> None:
    """The import cannot promise a clean plan when the skill holds files its directory never
    uploads (git ignores them): it names them, says the next plan shows a new version without
    them, and does not say the plan should show no change."""
    (workdir / ".gitignore").write_text("*.log\n")
    skill = with_ignored_files()
    if everything:
        result = ok("import", "--all-unmanaged", "--out", "manifests")
    else:
        result = ok("import", "skill.pdf-tools", skill["id"])
    said = result.stdout + result.stderr
    assert "should show no change" not in said, said
    assert (
        "skill.pdf-tools: 3 of the files of its latest version are left out of every upload "
        "of manifests/skills/pdf-tools (.DS_Store, __pycache__/fill.cpython-311.pyc, run.log: "
        "git ignores them); the next plan shows a new version without them"
    ) in said, said
    # the document's header, read at review, says so too (it promised no changes)
    name = "skills.yaml" if everything else "skills/pdf-tools.yaml"
    written = workdir / "manifests" / name
    header = "".join(line for line in written.read_text().splitlines(True) if line[:1] == "#")
    assert "should show no changes.\n" not in header, header
    assert "should show no changes, except:\n# - skill.pdf-tools: 3 of the files" in header, header
    assert "#   git ignores them); the next plan shows a new version without them.\n" in header
    plan = json.loads(ok("plan", "--format", "json").stdout)
    (action,) = [a for a in plan["actions"] if a["address"] == "skill.pdf-tools"]
    assert action["type"] == "update"
    assert sorted(c["path"] for c in action["changes"]) == [
        ".DS_Store",
        "__pycache__/fill.cpython-311.pyc",
        "run.log",
    ]


def test_import_of_one_of_anthropics_skills_is_refused_and_writes_nothing(workdir: Path) -> None:
    """Anthropic's skills are read-only and every workspace's: adopting one would record it
    as this project's (a later plan would upload into it, --prune would delete it). Agents
    name it in the wire form; the import says so and changes nothing."""
    before = (workdir / "state/reconciler.lock").read_text()
    result = cli("import", "skill.sheets", "xlsx")
    assert result.exit_code == 1, result.stdout
    assert "xlsx is one of Anthropic's skills" in result.stderr, result.stderr
    assert "{type: anthropic, skill_id: xlsx}" in result.stderr
    assert not (workdir / "manifests/skills").exists()
    assert (workdir / "state/reconciler.lock").read_text() == before


def test_import_of_a_skill_never_writes_a_document_the_manifests_leave_out(
    workdir: Path,
) -> None:
    """``skills/*.yaml`` in ``.reconcilerignore``: the skill's document would not be read
    by the next plan (which then offered to delete the skill with ``--prune``); refused
    before anything is written or recorded."""
    Path("manifests/.reconcilerignore").write_text("skills/*.yaml\n")
    skill = hand_made()
    before = Path("state/reconciler.lock").read_text()
    result = cli("import", "skill.pdf-tools", skill["id"])
    assert result.exit_code == 1, result.stdout
    assert (
        "manifests/skills/pdf-tools.yaml would be left out by manifests/.reconcilerignore"
    ) in result.stderr, result.stderr
    assert not Path("manifests/skills").exists()
    assert Path("state/reconciler.lock").read_text() == before
