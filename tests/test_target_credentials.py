"""``--target`` of one credential plans that credential (and its vault), not its siblings.

``plan --target vault.github.credential.gh`` (rotating one token) planned the updates of the
vault's other credentials too and needed their secrets: the credential brought its vault,
and a vault brought all its credentials, whether it was a target or only what the target
needs. A vault brings its credentials when it is targeted itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok

VAULT = """\
kind: Vault
name: v
spec:
  credentials:
    - name: a
      auth: {type: static_bearer, mcp_server_url: "https://a.example.com/mcp", token: {from_env: A}}
    - name: b
      auth: {type: static_bearer, mcp_server_url: "https://b.example.com/mcp", token: {from_env: B}}
"""


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/vault.yaml").write_text(VAULT)
    monkeypatch.setenv("A", "a-1")
    monkeypatch.setenv("B", "b-1")
    ok("apply", "--auto-approve")
    return monkeypatch


def test_a_targeted_credential_leaves_its_siblings_and_their_secrets_alone(
    applied: pytest.MonkeyPatch,
) -> None:
    applied.setenv("A", "a-2")  # both rotated in the environment; only a is targeted
    applied.setenv("B", "b-2")
    result = cli("plan", "--target", "vault.v.credential.a")
    assert result.exit_code == 0, result.output
    assert "~ vault.v.credential.a  update" in result.stdout
    assert "vault.v.credential.b" not in result.stdout.split("Plan:")[0]

    applied.delenv("B")  # a sibling's secret is not needed either
    result = cli("apply", "--target", "vault.v.credential.a", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "1 updated" in result.stdout


def test_a_targeted_vault_still_brings_its_credentials(applied: pytest.MonkeyPatch) -> None:
    applied.setenv("B", "b-2")
    result = cli("plan", "--target", "vault.v")
    assert result.exit_code == 0, result.output
    assert "~ vault.v.credential.b  update" in result.stdout
