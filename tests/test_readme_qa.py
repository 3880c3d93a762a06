"""The README walked as written by a new user and a platform team, through the CLI (embedded
provider): each test is a case where the tool said something untrue or the README's example
did not run, and stays fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch)
    (root / ".git").mkdir()
    return root


def test_a_skill_found_again_after_a_lost_lockfile_is_said_found_by_its_slug_not_its_tags(
    workdir: Path,
) -> None:
    # a skill carries no metadata: it is found again by its slug, never by ownership tags
    ok("apply", "--auto-approve")
    Path("state/reconciler.lock").unlink()
    only_skill = " ".join(ok("plan", "--target", "skill.review-checklist").stdout.split())
    assert "it records 1 resource (found again by their slug, or their entries" in only_skill
    assert "ownership tags" not in only_skill, only_skill
    both = " ".join(ok("plan", "--target", "agent.reviewer").stdout.split())
    assert (
        "it records 2 resources (found again by their ownership tags, skills by their slug, "
        "or their entries are out of date)"
    ) in both, both
    only_agent = " ".join(ok("plan", "--target", "agent.coder").stdout.split())
    assert "(found again by their ownership tags, or their entries" in only_agent, only_agent
    drift = cli("drift", "--format", "json")
    (warning,) = json.loads(drift.stdout)["warnings"]
    assert (
        "the live objects that this project's ownership tags name, and the skills their slugs name;"
    ) in warning, warning
