"""QA of what users and CI read and feed back: saved plans, JSON/Markdown/text output,
``--detailed-exitcode``, ``validate``, ``fmt`` and ``schema`` (one test per defect found).

Every test drives the CLI in-process (click's runner) from a fresh copy of the example
manifests against the embedded local provider, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import LOCKFILE, cli, edit, make_workdir, ok

REVIEWER = "Be specific and kind."


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_a_saved_plan_is_refused_when_the_lockfile_it_was_made_from_is_missing(
    workdir: Path,
) -> None:
    """A plan made from a lockfile, applied where that lockfile is not (a wrong --lockfile, a
    checkout without it), was carried out and wrote a new lockfile of another lineage holding
    only what it changed: the state the plan was reviewed against was never consulted."""
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")
    ok("plan", "--out", "plan.json")
    lineage = json.loads((workdir / LOCKFILE).read_text())["lineage"]
    result = cli("--lockfile", "elsewhere/reconciler.lock", "apply", "plan.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "the saved plan was made from the lockfile of lineage" in result.stderr
    assert lineage in result.stderr and "elsewhere/reconciler.lock" in result.stderr
    assert not (workdir / "elsewhere/reconciler.lock").exists()  # no new state begun
    # with the lockfile it was made from, the same plan applies
    assert "Apply complete: 0 created, 2 updated" in ok("apply", "plan.json").stdout
