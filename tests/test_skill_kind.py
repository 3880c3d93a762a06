"""``kind: Skill`` driven through the CLI against the embedded provider: a skill directory is
checked at load (each problem at ``spec.source``), uploaded at apply, and a content change
is a new version recorded in the lockfile with its digest and files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, make_workdir, ok, out_of_band

from reconciler.provider import ProviderClient

SKILL_MD = "---\nname: pdf-tools\ndescription: Fill PDF forms.\n---\nUse fill.py.\n"
SKILLS = """\
kind: Skill
name: pdf-tools
spec:
  source: skills/pdf-tools
"""


def write_skill(
    root: Path, files: dict[str, str], where: str = "manifests/skills/pdf-tools"
) -> None:
    for rel, text in files.items():
        path = root / where / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch, manifests=False)
    (root / ".git").mkdir()  # the repository a skill's files must stay in
    (root / "manifests").mkdir()
    (root / "manifests/skills.yaml").write_text(SKILLS)
    write_skill(root, {"SKILL.md": SKILL_MD, "fill.py": "print(1)\n", "forms/w9.json": "{}\n"})
    return root


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
