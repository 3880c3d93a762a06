"""A lockfile entry edited by hand so that its ``kind`` contradicts its address (session 14).

``"agent.coder": {"kind": "environment", ...}`` was accepted and never corrected. It is now
refused at read, at file:line:col of the ``kind`` key (as every other lockfile error), with
exit 1 and nothing written; so is a pending intent's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok, position

LOCKFILE = Path("state/reconciler.lock")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)



def test_an_entry_whose_kind_contradicts_its_address_is_refused_at_its_place(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    text = LOCKFILE.read_text()
    coder = text.index('"agent.coder"')
    kind = text.index('"kind": "agent"', coder)
    edited = text[:kind] + '"kind": "environment"' + text[kind + len('"kind": "agent"') :]
    LOCKFILE.write_text(edited)
    for command in (("plan",), ("apply", "--auto-approve"), ("state", "list"), ("drift",)):
        refused = cli(*command)
        assert refused.exit_code == 1, (command, refused.stdout, refused.stderr)
        assert refused.stderr.startswith(
            f"Error: state/reconciler.lock:{position(edited, kind)}: not a valid lockfile: "
            "resources.agent.coder.kind: "
        ), refused.stderr
        assert "'environment'" in refused.stderr and "agent" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert LOCKFILE.read_text() == edited, "nothing written"


def test_a_credential_entry_keeps_its_kind(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    text = LOCKFILE.read_text()
    assert ".credential." in text
    ok("plan")
