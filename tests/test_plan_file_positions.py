"""A saved plan file that is not valid JSON (cut short by a full disk or a copy, garbled) is
named by ``file:line:col:``, as the lockfile's errors are (session 14); it read
"x.plan: not a saved plan (Expecting value: line 16 column 23 (char 431))"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, make_workdir, ok, position

LOCKFILE = Path("state/reconciler.lock")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_a_truncated_plan_file_is_named_by_line_and_column(workdir: Path) -> None:
    ok("plan", "--out", "x.plan")
    text = Path("x.plan").read_text()
    cut = text[: text.index(": ", len(text) // 2) + 2]  # ends right after a key's colon
    Path("x.plan").write_text(cut)
    refused = cli("apply", "x.plan")
    assert refused.exit_code == 1, (refused.stdout, refused.stderr)
    assert refused.stderr.startswith(
        f"Error: x.plan:{position(cut, len(cut))}: not a saved plan (not valid JSON: "
        "Expecting value"
    ), refused.stderr
    assert "(char " not in refused.stderr
    assert not LOCKFILE.exists(), "nothing applied"


def test_a_plan_file_with_a_bad_byte_is_named_by_line_and_column(workdir: Path) -> None:
    ok("plan", "--out", "x.plan")
    raw = Path("x.plan").read_bytes()
    at = raw.index(b'"plan"')
    Path("x.plan").write_bytes(raw[:at] + b"\xff" + raw[at + 1 :])
    refused = cli("apply", "x.plan")
    assert refused.exit_code == 1, (refused.stdout, refused.stderr)
    assert refused.stderr.startswith(
        f"Error: x.plan:{position(raw.decode(), at)}: not a saved plan (not valid UTF-8"
    ), refused.stderr
    json.loads(raw)  # the original was fine


def test_a_plan_file_nested_too_deeply_is_named_by_line_and_column(workdir: Path) -> None:
    """JSON nested deeper than the parser goes read "x.plan: not a saved plan (JSON nested
    too deeply)", no place; now it names where the nesting is deepest."""
    text = '{"kind": "reconciler-plan",\n "plan": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    Path("x.plan").write_text(text)
    refused = cli("apply", "x.plan")
    assert refused.exit_code == 1, (refused.stdout, refused.stderr)
    deepest = text.index("[]")
    assert refused.stderr.startswith(
        f"Error: x.plan:{position(text, deepest)}: not a saved plan (JSON nested too deeply"
    ), refused.stderr
    assert not LOCKFILE.exists(), "nothing applied"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('\n  [1, 2]\n', "  [1, 2]"),  # not an object: the value itself
        ('{"a": 1}\n', '{"a": 1}'),  # no "kind": the object
        ('{"plan": {},\n "kind": "reconciler-lock"}\n', '"kind"'),  # another kind: its key
    ],
    ids=["array", "no-kind", "other-kind"],
)
def test_json_that_is_not_a_plan_is_named_by_line_and_column(
    workdir: Path, text: str, where: str
) -> None:
    """Valid JSON that is not a plan file read "x.plan: not a saved plan (write one with
    `reconciler plan --out`)", no place; now it names the value or key that makes it not one."""
    Path("x.plan").write_text(text)
    refused = cli("apply", "x.plan")
    assert refused.exit_code == 1, (refused.stdout, refused.stderr)
    at = text.index(where.strip())
    assert refused.stderr.startswith(
        f"Error: x.plan:{position(text, at)}: not a saved plan ("
    ), refused.stderr
    assert "reconciler plan --out" in refused.stderr
    assert not LOCKFILE.exists(), "nothing applied"


@pytest.mark.parametrize(
    "edit",
    [
        lambda plan: plan.update(actions="none"),
        lambda plan: plan["actions"][0].update(type="obliterate"),
        lambda plan: plan.pop("actions"),
    ],
)
def test_a_plan_file_edited_out_of_shape_is_said_to_be_edited(workdir: Path, edit: Any) -> None:
    """A saved plan whose JSON was edited into something that is no plan (an action type
    made up, a list made a string) said "unreadable plan (ValidationError); plan again",
    where an edit that kept its shape says it was edited after `plan --out` wrote it."""
    ok("plan", "--out", "x.plan")
    data = json.loads(Path("x.plan").read_text())
    edit(data["plan"])
    Path("x.plan").write_text(json.dumps(data, indent=2))
    refused = cli("apply", "x.plan")
    assert refused.exit_code == 1, (refused.stdout, refused.stderr)
    assert "x.plan: the plan was edited after `reconciler plan --out` wrote it" in (
        refused.stderr
    ), refused.stderr
    assert "ValidationError" not in refused.stderr
    assert not LOCKFILE.exists(), "nothing applied"
