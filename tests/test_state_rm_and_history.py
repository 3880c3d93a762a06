"""``state rm vault.X`` forgets the vault's credentials too, as ``state mv`` moves them."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok


def test_state_rm_of_a_vault_removes_its_credentials_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``state rm vault.github`` left ``vault.github.credential.github-mcp`` in the state,
    an entry of a vault the state no longer knows (while ``state mv`` takes it along)."""
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    assert "vault.github.credential.github-mcp" in lockfile()["resources"]
    result = ok("state", "rm", "vault.github")
    assert (
        "Removed vault.github with its credential vault.github.credential.github-mcp from "
        "state/reconciler.lock."
    ) in result.stdout, result.stdout
    assert not [a for a in lockfile()["resources"] if a.startswith("vault.github")]
    listed = ok("state", "list").stdout
    assert "vault.github" not in listed


def test_state_history_of_an_address_the_state_never_had_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``state history agent.zz`` said "has no history of agent.zz" and exited 0, while
    ``state show agent.zz`` exits 1: a typo looked like a quiet resource."""
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    result = cli("state", "history", "agent.zz")
    assert result.exit_code == 1, result.stdout
    assert "has no history of agent.zz and no entry for it" in result.stderr, result.stderr
    assert "apply" in ok("state", "history", "agent.coder").stdout
    ok("state", "rm", "agent.coder")  # forgotten: its history is still there to read
    assert "agent.coder" in ok("state", "history", "agent.coder").stdout
