"""Session 14's QA of crash safety and of the commands a platform team runs after one
(embedded and served local provider, the lockfile and PostgreSQL), driven through the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok
from test_rollout import DEPLOYMENT, entry, new_version


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_rollback_takes_the_allow_origin_change_its_refusal_asks_for(workdir: Path) -> None:
    # The state was applied to the embedded provider; the same objects are now reached
    # another way (here a copy of its database; `provider serve` of it is the same). The
    # rollback was refused with "pass --allow-origin-change", which rollback did not take:
    # "No such option", in the one command run in an emergency.
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    assert entry()["pins"] == {"agent.reviewer": 2}
    shutil.copy(workdir / ".reconciler/provider.db", workdir / "staging.db")
    before = lockfile()

    refused = cli("--provider-db", "staging.db", "rollback", DEPLOYMENT, "--auto-approve")
    assert refused.exit_code == 1
    assert "pass --allow-origin-change" in refused.stderr
    assert lockfile() == before

    done = cli(
        "--provider-db", "staging.db", "rollback", DEPLOYMENT, "--auto-approve",
        "--allow-origin-change",
    )  # fmt: skip
    assert done.exit_code == 0, (done.stdout, done.stderr)
    assert "agent.reviewer@2 -> @1 rolled back" in done.stdout
    # like apply, the state now follows the provider it changed
    assert lockfile()["origin"] == "local:../staging.db"
    assert entry()["pins"] == {"agent.reviewer": 1}
    ok("--provider-db", "staging.db", "plan")


@pytest.mark.parametrize(
    ("edit", "key", "said"),
    [
        # a value of the wrong type, three levels down
        (('"version": 1', '"version": -3'), '"version"', "resources.agent.coder.version: Input"),
        # a key no lockfile has (a typo of a hand edit)
        (('"protect": false', '"protect": false, "protected": true'), '"protected"', ": Extra"),
        # a top-level value
        (('"serial": ', '"serial": "x", "_": '), '"serial"', "serial: Input should be"),
    ],
)
def test_a_lockfile_edited_by_hand_into_a_wrong_shape_is_named_by_line_and_column(
    workdir: Path, edit: tuple[str, str], key: str, said: str
) -> None:
    # valid JSON that is no lockfile: the error named the file and the field path, never
    # the line and column, which every other error about a file the user edits names
    ok("apply", "--auto-approve")
    path = workdir / "state/reconciler.lock"
    text = path.read_text()
    coder = text.index('"agent.coder"')  # the first entry: the edit is made in it
    at = text.index(edit[0], coder if edit[0] != '"serial": ' else 0)
    edited = text[:at] + edit[1] + text[at + len(edit[0]) :]
    edited = re.sub(r'"_": \d+', '"_": 0', edited)  # the serial's old value, as an extra key
    path.write_text(edited)
    spot = edited.index(key, coder if key != '"serial"' else 0)
    line = edited.count("\n", 0, spot) + 1
    column = spot - (edited.rfind("\n", 0, spot) + 1) + 1
    for command in (("plan",), ("apply", "--auto-approve"), ("state", "list")):
        refused = cli(*command)
        assert refused.exit_code == 1, refused.stdout
        assert refused.stderr.startswith(
            f"Error: state/reconciler.lock:{line}:{column}: not a valid lockfile: "
        ), refused.stderr
        assert said in refused.stderr
    assert path.read_text() == edited, "nothing written"
