"""A secret field the plan shows is added, removed or changed as it is: a credential whose
auth type changes from ``environment_variable`` to ``static_bearer`` gains a ``token`` and
loses its ``secret_value``; the plan must not read ``~ auth.token: (sensitive) -> (sensitive)``
as if the live credential had held a token (found while probing convergence by hand).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok, plan_is_clean

ENV_VAR = (
    "{type: environment_variable, secret_name: GH, secret_value: {from_env: TOK},"
    " networking: {type: unrestricted}}"
)
BEARER = "{type: static_bearer, mcp_server_url: https://gh.example.com/mcp, token: {from_env: TOK}}"


def _vault(tmp_path: Path, auth: str) -> None:
    (tmp_path / "manifests" / "vault.yaml").write_text(
        f"kind: Vault\nname: v\nspec:\n  credentials:\n    - name: c\n      auth: {auth}\n"
    )


@pytest.mark.parametrize(
    ("before", "after", "added", "removed"),
    [
        (ENV_VAR, BEARER, "auth.token", "auth.secret_value"),
        (BEARER, ENV_VAR, "auth.secret_value", "auth.token"),
    ],
)
def test_a_secret_field_that_comes_or_goes_is_an_add_or_a_remove(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before: str,
    after: str,
    added: str,
    removed: str,
) -> None:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    monkeypatch.setenv("TOK", "first-secret-value")
    (tmp_path / "manifests").mkdir()
    _vault(tmp_path, before)
    ok("apply", "--auto-approve")
    _vault(tmp_path, after)

    result = cli("plan", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (action,) = [a for a in json.loads(result.stdout)["actions"] if a["type"] != "noop"]
    secrets = {c["path"]: c for c in action["changes"] if c["sensitive"]}
    assert secrets == {
        added: {"op": "add", "path": added, "old": None, "new": "(sensitive)", "sensitive": True},
        removed: {
            "op": "remove",
            "path": removed,
            "old": "(sensitive)",
            "new": None,
            "sensitive": True,
        },
    }
    text = cli("plan").stdout
    assert f"+ {added}: (sensitive)" in text, text
    assert f"- {removed}" in text, text
    assert "first-secret-value" not in text

    ok("apply", "--auto-approve")
    plan_is_clean()
