"""``state rm vault.X`` forgets the vault's credentials too, as ``state mv`` moves them."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import lockfile, make_workdir, ok


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
