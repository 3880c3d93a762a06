"""An address, name or id given empty (``reconciler state show "$ADDR"`` with ADDR unset in a
CI script) was taken as a name: the messages then read "no entry for  in the lockfile",
"--target : no such address", "no Agent or Deployment named  in the manifests", with the
empty value unseen between two spaces. Each is a usage error naming the argument, before
anything is read or sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import LOCKFILE, cli, make_workdir, ok


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["plan", "--target", ""], "'--target'"),
        (["plan", "--target", "agent.coder", "--target", " "], "'--target'"),
        (["apply", "--auto-approve", "--target", ""], "'--target'"),
        (["state", "show", ""], "'ADDRESS'"),
        (["state", "rm", ""], "'ADDRESS'"),
        (["state", "mv", "agent.coder", ""], "'NEW'"),
        (["state", "history", ""], "'[ADDRESS]'"),
        (["run", "", "-m", "hi"], "'AGENT|DEPLOYMENT'"),
        (["rollback", "", "--auto-approve"], "'deployment.NAME'"),
        (["import", "", "agent_01"], "'[ADDR]'"),
        (["unlock", ""], "'LOCK_ID'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_an_empty_address_is_a_usage_error_naming_the_argument(
    workdir: Path, args: list[str], named: str
) -> None:
    ok("apply", "--auto-approve")
    before = Path(LOCKFILE).read_bytes()
    result = cli(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert f"Invalid value for {named}: is empty" in result.stderr, result.stderr
    assert "  " not in result.stderr.splitlines()[-1], result.stderr
    assert Path(LOCKFILE).read_bytes() == before
