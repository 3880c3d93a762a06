"""A work directory holding one skill, ``pdf-tools``: the start of the Skill kind's CLI tests.

It holds no tests. ``skill_workdir`` makes the directory (a git repository, as a skill's
files must stay inside one) with the skill's files under ``manifests/skills/pdf-tools`` and,
unless told otherwise, its document in ``manifests/skills.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.gitops import make_workdir

SKILL_MD = "---\nname: pdf-tools\ndescription: Fill PDF forms.\n---\nUse fill.py.\n"
SKILLS = "kind: Skill\nname: pdf-tools\nspec:\n  source: skills/pdf-tools\n"
FILES = {"SKILL.md": SKILL_MD, "fill.py": "print(1)\n"}


def write_skill(
    root: Path, files: dict[str, str], where: str = "manifests/skills/pdf-tools"
) -> None:
    """Write ``files`` (relative path -> text) into the skill directory ``where``."""
    for rel, text in files.items():
        path = root / where / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def skill_workdir(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str] | None = None,
    *,
    document: bool = True,
) -> Path:
    """A work directory (the current one) with the skill ``pdf-tools`` (``files``, FILES by
    default) and, when ``document``, its Skill document."""
    root = make_workdir(tmp_path, monkeypatch, manifests=False)
    (root / ".git").mkdir()  # the repository a skill's files must stay in
    write_skill(root, FILES if files is None else files)
    if document:
        (root / "manifests/skills.yaml").write_text(SKILLS)
    return root
