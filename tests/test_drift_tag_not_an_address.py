"""drift never suggests an import command the CLI refuses (a tag edited into no address)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, drift_json, items, make_workdir, ok, out_of_band

from reconciler.provider import ProviderClient


@pytest.mark.parametrize("tag", ["agent.BAD NAME!", "agent.a.b", "agent"])
def test_drift_of_an_object_whose_address_tag_is_no_address_suggests_a_valid_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str
) -> None:
    """An agent whose reconciler-address tag was edited into ``agent.BAD NAME!``: drift said
    "`reconciler import agent.BAD NAME! ID`", a command import refuses (and a shell splits).
    It now says the tag names no agent address and suggests ``agent.NAME``, which works."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    Path("manifests").mkdir()
    Path("manifests/env.yaml").write_text("kind: Environment\nname: box\nspec: {}\n")
    ok("apply", "--auto-approve")
    tags = {"managed-by": "reconciler", "reconciler-project": "default"}

    async def create(c: ProviderClient) -> str:
        metadata = {**tags, "reconciler-address": tag}
        made = await c.agents.create({"name": "x", "model": "claude-haiku-4-5", "metadata": metadata})
        return str(made["id"])

    agent = out_of_band(create)
    [item] = [i for i in items(drift_json(), "unmanaged") if i["remote_id"] == agent]
    assert f"reconciler import {tag} " not in item["message"], item["message"]
    assert f"`reconciler import agent.NAME {agent}`" in item["message"], item["message"]
    assert "is no agent address" in item["message"], item["message"]
    adopted = cli("import", "agent.fixed", agent)  # the suggested form works
    assert adopted.exit_code == 0, adopted.stderr
