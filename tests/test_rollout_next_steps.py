"""What a platform team is told to do next when a rollout does not go through.

A held candidate ends an apply with exit 1; the message must say the ways on (a fixed agent
version, `--retry-held`, and in an emergency `--skip-checks --retry-held`), not only that the
candidate is held. `--skip-checks` alone moves no held candidate: a plan or apply given it
must say that `--retry-held` is what reaches one, instead of a bare "No changes".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok
from test_rollout import FAILING, candidate_held, gate, live_pin, new_version


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


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_skip_checks_alone_says_a_held_candidate_needs_retry_held(
    workdir: Path, command: str
) -> None:
    candidate_held()
    args = [command, "--skip-checks"] + (["--auto-approve"] if command == "apply" else [])
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert live_pin() == 1
    assert "--skip-checks moves no held candidate" in result.stderr, result.stderr
    assert "--skip-checks --retry-held" in result.stderr, result.stderr
