"""Traps a new user meets in plan, validate and friends, each driven through the CLI.

A pin move read as two changes, one typo reported three times, long values cut off with no
way to read them, a host list diffed by index, a manifests directory that may hold no other
YAML, and the small words of the help texts. Every test works in a copy of the example
manifests with the embedded local provider, as the README's quick start does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_gitops_support import make_workdir

from reconciler.cli import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def headlines(text: str, address: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(rf"^ *[-~+/]+ {re.escape(address)}  ", line)]


# --- a pin move is one change --------------------------------------------------------------


def test_a_deployment_whose_pin_follows_a_new_agent_version_is_shown_once(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be specific, brief and kind.")
    out = ok("plan").stdout
    [line] = headlines(out, "deployment.nightly-review")
    assert line == (
        "  ~ deployment.nightly-review  update  pin agent.reviewer@1 -> @2  (follows latest)"
    )
    assert "which will be version 2" in out
    assert "agent.version" not in out
    assert out.rstrip().endswith("Plan: 0 to create, 2 to update, 0 to archive.")
    markdown = ok("plan", "--format", "markdown").stdout
    assert markdown.count("| `deployment.nightly-review` |") == 1


def test_a_changed_pin_alone_is_one_update(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be kind.")
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/deployments.yaml", "{ref: reviewer}", "{ref: reviewer, version: 1}")
    out = ok("plan").stdout
    [line] = headlines(out, "deployment.nightly-review")
    assert "update  pin agent.reviewer@2 -> @1  (pinned)" in line
    assert "reason: the manifest pins agent.reviewer@1" in out
    assert out.rstrip().endswith("Plan: 0 to create, 1 to update, 0 to archive.")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    assert plan["summary"]["update"] == 1
    assert [m["deployment"] for m in plan["pin_moves"]] == ["deployment.nightly-review"]
