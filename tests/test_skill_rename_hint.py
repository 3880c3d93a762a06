"""A Skill document renamed without ``moved_from`` (``pdf-tools`` -> ``forms``, references
updated) planned ``+ skill.forms create`` with the same files and left ``skill.pdf-tools``
alone with no word: apply made a second skill of the same slug. The create now says the
skill left alone has the same slug and that ``moved_from`` keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import ok, plan_is_clean
from support.skills import SKILLS, skill_workdir

AGENT = "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n  skills: [{ref: %s}]\n"
RENAMED = SKILLS.replace("name: pdf-tools", "name: forms")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = skill_workdir(tmp_path, monkeypatch)
    (root / "manifests/agents.yaml").write_text(AGENT % "pdf-tools")
    return root


def test_a_skill_renamed_without_moved_from_is_told_how_to_keep_it(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/skills.yaml").write_text(RENAMED)
    (workdir / "manifests/agents.yaml").write_text(AGENT % "forms")
    shown = ok("plan").stdout
    assert "+ skill.forms  create" in shown, shown
    hint = (
        "skill.pdf-tools, no longer in the manifests, is a skill of the same slug pdf-tools: "
        "if this is a rename, `moved_from: pdf-tools` keeps that skill"
    )
    assert hint in " ".join(shown.split()), shown
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [create] = [a for a in plan["actions"] if a["address"] == "skill.forms"]
    assert hint in create["reason"]
    # as told: the same skill, moved; nothing created
    (workdir / "manifests/skills.yaml").write_text(RENAMED + "moved_from: pdf-tools\n")
    shown = ok("plan").stdout
    assert "skill.pdf-tools -> skill.forms" in shown and "moved_from: pdf-tools" not in shown
    assert "Apply complete: 0 created" in ok("apply", "--auto-approve").stdout
    plan_is_clean()


def test_no_hint_when_the_old_skill_is_still_declared(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    other = RENAMED + "  display_name: Forms\n"
    (workdir / "manifests/skills.yaml").write_text(SKILLS + "---\n" + other)
    shown = ok("plan").stdout
    assert "+ skill.forms  create" in shown and "moved_from" not in shown, shown
