"""The Skill manifest's spec and the decision of a skill's next step from its lockfile entry
(``reconciler.manifest.skill``): source relative to the manifest file, create / new version /
no-op, the change summary, a foreign latest version."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reconciler.manifest.skill import (
    SkillLock,
    SkillSpec,
    SkillStep,
    UploadedVersion,
    skill_source,
    skill_step,
)
from reconciler.manifest.skilldir import SkillSourceError

SKILL_MD = "---\nname: pdf-tools\ndescription: Fill PDF forms\n---\n# PDF tools\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "manifests").mkdir()
    return tmp_path


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_source_is_relative_to_the_manifest_file(repo: Path) -> None:
    write(repo / "manifests/skills/pdf", {"SKILL.md": SKILL_MD, "fill.py": "x"})
    spec = SkillSpec.model_validate({"source": "skills/pdf"})
    source = skill_source(spec, repo / "manifests/skills.yaml")
    assert source.slug == "pdf-tools"
    assert [f.path for f in source.files] == ["SKILL.md", "fill.py"]


def test_a_missing_source_and_one_outside_the_repository_are_refused(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with pytest.raises(SkillSourceError, match="does not exist"):
        skill_source(SkillSpec(source="nowhere"), repo / "manifests/skills.yaml")
    outside = tmp_path_factory.mktemp("elsewhere")
    write(outside, {"SKILL.md": SKILL_MD})
    spec = SkillSpec(source=str(outside))
    with pytest.raises(SkillSourceError, match="outside the repository"):
        skill_source(spec, repo / "manifests/skills.yaml")


def test_skill_md_without_a_name_is_refused(repo: Path) -> None:
    write(repo / "manifests/s", {"SKILL.md": "---\ndescription: d\n---\n"})
    with pytest.raises(SkillSourceError, match="no 'name'"):
        skill_source(SkillSpec(source="s"), repo / "manifests/skills.yaml")


def test_the_spec_rejects_unknown_keys_and_an_empty_source() -> None:
    with pytest.raises(ValidationError):
        SkillSpec.model_validate({"source": ""})
    with pytest.raises(ValidationError):
        SkillSpec.model_validate({"source": "s", "metadata": {}})
    with pytest.raises(ValidationError):
        SkillSpec.model_validate({"source": "s", "display_name": "x" * 256})


def test_the_next_step_of_a_skill(repo: Path) -> None:
    root = repo / "manifests/pdf"
    write(root, {"SKILL.md": SKILL_MD, "fill.py": "x", "forms/w9.json": "{}"})
    spec = SkillSpec(source="pdf")
    before = skill_source(spec, repo / "manifests/skills.yaml")
    uploaded = UploadedVersion(before.digest, {f.path: f.sha256 for f in before.files})
    lock = SkillLock("skill_01", {"v1": uploaded})

    assert skill_step(None, before, None).action == "create"
    assert skill_step(lock, before, None).action == "create"  # deleted behind our back
    assert skill_step(lock, before, "v1") == SkillStep("none")

    write(root, {"fill.py": "y", "forms/w9.json": "[]", "new.md": "n"})
    (root / "SKILL.md").write_text(SKILL_MD)
    after = skill_source(spec, repo / "manifests/skills.yaml")
    step = skill_step(lock, after, "v1")
    assert step.changed == ("fill.py", "forms/w9.json", "new.md")
    assert step.summary() == "new version (3 files changed: fill.py, forms/w9.json, new.md)"

    (root / "new.md").unlink()
    (root / "forms/w9.json").write_text("{}")
    assert (
        skill_step(lock, skill_source(spec, repo / "manifests/skills.yaml"), "v1").summary()
        == "new version (1 file changed: fill.py)"
    )

    foreign = skill_step(lock, before, "v9")
    assert (foreign.action, foreign.foreign_latest) == ("new_version", True)
    assert "not uploaded by this project" in foreign.summary()
