"""What a platform team is told to do next when a rollout does not go through.

A held candidate ends an apply with exit 1; the message must say the ways on (a fixed agent
version, `--retry-held`, and in an emergency `--skip-checks --retry-held`), not only that the
candidate is held.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok
from test_rollout import FAILING, gate, new_version


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_an_apply_that_holds_a_candidate_says_what_to_do_next(workdir: Path) -> None:
    gate(FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1
    out = result.stdout
    held = next(line for line in out.splitlines() if " held: 1 of 1 checks failed on v2" in line)
    assert "fix agent.reviewer" in held, held
    assert "`reconciler apply --retry-held`" in held, held
    assert "--skip-checks --retry-held" in held, held
