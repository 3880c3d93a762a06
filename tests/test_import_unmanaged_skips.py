"""``import --all-unmanaged`` that leaves an unmanaged object behind says so by its exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, out_of_band

from reconciler.provider import ProviderClient


def test_import_all_unmanaged_exits_1_when_it_skips_an_object_nothing_owns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent with 15 metadata keys has no room for the 3 ownership tags: the import
    skipped it, exited 0 although its --help says "Exit 0 when everything was imported",
    and the reason read ``spec.Agent.metadata: ...``, a path inside the program. Now the
    others are still imported, the reason is in the user's words, and the exit code is 1."""
    make_workdir(tmp_path, monkeypatch, manifests=False)

    async def create(c: ProviderClient) -> str:
        metadata = {f"k{i}": "v" for i in range(15)}
        agent = await c.agents.create(
            {"name": "full", "model": "claude-haiku-4-5", "metadata": metadata}
        )
        await c.environments.create({"name": "shared"})
        return str(agent["id"])

    agent = out_of_band(create)
    result = cli("import", "--all-unmanaged", "--out", "manifests")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert set(lockfile()["resources"]) == {"environment.shared"}
    assert f"Skipped agent {agent}: " in result.stderr, result.stderr
    assert "spec.Agent" not in result.stderr, result.stderr
    assert "metadata" in result.stderr
    assert "Recorded 1 resource" in result.stdout
