"""Skills, memory stores, renames and prompt files as a demanding new user drives them
through the CLI (embedded provider): each test is a case that was wrong once (found by a QA
pass in session 8) and stays fixed."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, lockfile, ok, plan_is_clean
from support.skills import skill_workdir

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
