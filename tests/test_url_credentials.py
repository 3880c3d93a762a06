"""A URL in a manifest never carries a user or password: the secret goes in a credential.

``mcp_server_url: https://x-access-token:ghp_...@mcp.example.com/mcp`` (or a token endpoint,
or an agent's MCP server URL written so) passed validate, and plan printed the token on the
terminal, in its JSON and in the CI log, where every secret field says ``(sensitive)``; the
provider URL given with ``--provider-url`` is already shown with its password masked. Such a
URL is now an error at its place that names no part of it, and the JSON Schema refuses it
too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from support.gitops import cli, make_workdir

from reconciler.manifest.fields import HttpUrl

VAULT = """\
kind: Vault
name: v
spec:
  credentials:
    - name: c
      auth:
        type: static_bearer
        mcp_server_url: {url}
        token: {{from_env: T}}
"""


@pytest.mark.parametrize(
    "url",
    [
        "https://x-access-token:ghp_URLSECRET@mcp.example.com/mcp",
        "https://ghp_URLSECRET@mcp.example.com/mcp",
        "HTTP://u:ghp_URLSECRET@[::1]:8080/mcp",
    ],
)
def test_a_url_with_a_user_or_password_is_refused_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/vault.yaml").write_text(VAULT.format(url=url))
    monkeypatch.setenv("T", "token")
    for command in (["validate"], ["plan"], ["plan", "--format", "json"]):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.output)
        assert (
            "manifests/vault.yaml:8:25: spec.credentials[0].auth.mcp_server_url: a URL must "
            "not carry a user or password (user:secret@host)" in result.stderr
        ), result.stderr
        assert "URLSECRET" not in result.output
    assert not Path(".reconciler").exists()


def test_the_schema_refuses_what_validate_refuses_and_keeps_an_at_sign_in_a_path() -> None:
    adapter = TypeAdapter(HttpUrl)
    pattern = adapter.json_schema()["pattern"]
    for url in ("https://u:p@a.example/mcp", "https://u@a.example", "https://a@b@c.example"):
        assert not re.match(pattern, url), url
    for url in ("https://a.example/@scope/mcp", "https://a.example/mcp?to=a@b.example"):
        assert re.match(pattern, url) and adapter.validate_python(url) == url


def test_a_repository_url_with_a_token_is_refused_and_its_token_field_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/all.yaml").write_text(
        "kind: Agent\nname: bot\nspec: {model: claude-sonnet-4-6}\n---\n"
        "kind: Environment\nname: env\nspec: {config: {type: cloud}}\n---\n"
        "kind: Deployment\nname: dep\nspec:\n  agent: {ref: bot}\n  environment: env\n"
        "  initial_events: [{type: user.message, content: [{type: text, text: go}]}]\n"
        "  resources:\n    - type: github_repository\n"
        "      url: https://x-access-token:ghp_URLSECRET@github.com/acme/app\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/all.yaml:17:12: spec.resources[0].url: a URL must not carry a user or "
        "password" in result.stderr
    ), result.stderr
    assert "a repository's authorization_token" in result.stderr
    assert "URLSECRET" not in result.output


def test_import_of_a_credential_whose_url_carries_a_password_says_so_as_validate_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-made vault whose credential's URL carries user:password: import adopts it but
    writes no document (plan would refuse it), and says why at the manifest's own path in
    validate's words, never the URL's secret nor the schema's union tag."""
    from support.gitops import out_of_band

    make_workdir(tmp_path, monkeypatch, manifests=False)
    (tmp_path / "manifests").mkdir()

    async def made(client: Any) -> str:
        vault = await client.request("POST", "/v1/vaults", json={"display_name": "hand"})
        auth = {
            "type": "static_bearer",
            "mcp_server_url": "https://bob:ghp_URLSECRET@mcp.example.com/mcp",
            "token": "tok-secret",
        }
        path = f"/v1/vaults/{vault['id']}/credentials"
        await client.request("POST", path, json={"display_name": "c", "auth": auth})
        return str(vault["id"])

    vault_id = out_of_band(made)
    result = cli("import", "vault.hand", vault_id)
    assert result.exit_code == 0, result.output
    assert (
        "its manifest would be refused (spec.credentials[0].auth.mcp_server_url: a URL must not "
        "carry a user or password" in result.stderr
    ), result.stderr
    assert "static_bearer.mcp_server_url" not in result.stderr
    assert "URLSECRET" not in result.output and "tok-secret" not in result.output
