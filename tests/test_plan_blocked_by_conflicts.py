"""plan never lists an action that apply will refuse because it waits for a "not ours" entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok


def test_state_mv_of_a_vault_without_renaming_its_document_plans_nothing_apply_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``state mv vault.github vault.gh`` (document not renamed), plan listed
    "+ vault.github.credential.github-mcp create" and "~ deployment.nightly-review vault_ids
    (known after apply)", both of which apply then failed as "not attempted": the plan did
    not show what apply does. They are now left out of the plan with a note naming the entry
    they wait for, and apply changes nothing."""
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    ok("state", "mv", "vault.github", "vault.gh")
    before = lockfile()["resources"]
    plan = json.loads(ok("plan", "--format", "json").stdout)
    changed = [a["address"] for a in plan["actions"] if a["type"] != "noop"]
    assert changed == [], changed
    notes = {n["address"]: n["message"] for n in plan["notes"]}
    for blocked in ("vault.github.credential.github-mcp", "deployment.nightly-review"):
        assert "waits for vault.github" in notes[blocked], notes
    text = ok("plan").stdout
    assert "+ vault.github.credential.github-mcp" not in text, text
    assert "known after apply" not in text, text
    applied = cli("apply", "--auto-approve")
    assert applied.exit_code == 1
    assert "not attempted" not in applied.stdout + applied.stderr
    assert lockfile()["resources"] == before
