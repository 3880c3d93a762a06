"""A plan posted as a pull-request comment (``plan --format markdown``) shows names users
control (skill file names, messages quoting them) as text: never as a link, an image or
emphasis, in the table, the skill rollouts or a details ``<summary>``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok

from reconciler.render.markdown import _text

HOSTILE = ("[link](http:evil).md", "![img](x).md", "*emph*.md", "_under_.md", "~~gone~~.md")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_skill_file_names_do_not_render_as_markdown(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    for name in HOSTILE:
        (workdir / "manifests/skills/review-checklist" / name).write_text("x\n")
    result = cli("plan", "--format", "markdown")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    outside_code = re.sub(r"```diff\n.*?\n```", "", result.stdout, flags=re.S)
    for raw in HOSTILE:
        assert raw not in outside_code  # each shows escaped, wherever it appears
    lines = outside_code.splitlines()
    what = next(line for line in lines if "| `skill.review-checklist` |" in line)
    assert r"[link\](http:evil).md" in what and r"\*emph\*.md" in what
    rollout = next(line for line in outside_code.splitlines() if line.startswith("- `skill."))
    assert r"![img\](x).md" in rollout and r"\~\~gone\~\~.md" in rollout
    summary = next(line for line in outside_code.splitlines() if "<summary>skill." in line)
    assert "[link&#93;(http:evil).md" in summary and "&#42;emph&#42;.md" in summary
    assert "&#95;under&#95;.md" in summary
    # ordinary words stay as they were: the version arrow, snake_case ids, the labels
    assert "| `agent.reviewer` | agent | update version 1 -&gt; 2 [skills] |" in outside_code


def test_ordinary_text_is_left_readable() -> None:
    assert _text("update version 1 -> 2") == "update version 1 -&gt; 2"
    assert _text("skill_0187 in review_notes [skills]") == "skill_0187 in review_notes [skills]"
    assert _text("a `cmd *x*` b") == "a `cmd *x*` b"  # a quoted command stays code
    hostile = "see www.evil.com or https://evil.com"
    assert _text(hostile) == r"see www\.evil.com or https\://evil.com"
