"""Credential updates clear what a manifest removed: the wire keeps an omitted field, so the
update must say "clear" in the wire's own way (``refresh.scope: ""``).

Found by the slow round-trip property (``test_properties``): a credential whose manifest
dropped ``auth.refresh.scope`` was updated, yet the next plan still showed the old scope.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok

VAULT = """\
kind: Vault
name: keys
spec:
  display_name: Keys
  credentials:
    - name: oauth
      auth:
        type: mcp_oauth
        mcp_server_url: https://mcp.example.com/
        access_token: {from_env: OAUTH_ACCESS}
        refresh:
          client_id: client-1
          refresh_token: {from_env: OAUTH_REFRESH}
          token_endpoint: https://auth.example.com/token
          token_endpoint_auth: {type: none}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch, manifests=False)
    (root / "manifests").mkdir()
    monkeypatch.setenv("OAUTH_ACCESS", "access-token-1")
    monkeypatch.setenv("OAUTH_REFRESH", "refresh-token-1")
    return root


def _plan_actions() -> list[dict[str, object]]:
    result = cli("plan", "--format", "json")
    assert result.exit_code == 0, result.stderr
    actions: list[dict[str, object]] = json.loads(result.stdout)["actions"]
    return [a for a in actions if a["type"] != "noop"]


def test_removing_the_refresh_scope_clears_it(workdir: Path) -> None:
    manifest = workdir / "manifests/vault.yaml"
    manifest.write_text(VAULT + "          scope: repo read:org\n")
    ok("apply", "--auto-approve")
    assert _plan_actions() == []

    manifest.write_text(VAULT)  # the scope is gone from the manifest
    ok("apply", "--auto-approve")
    assert _plan_actions() == [], "the provider kept the old scope"


ENV_VAULT = """\
kind: Vault
name: keys
spec:
  display_name: Keys
  credentials:
    - name: db
      auth:
        type: environment_variable
        secret_name: PGPASSWORD
        secret_value: {from_env: OAUTH_ACCESS}
        networking: {type: unrestricted}
"""


def test_an_injection_location_with_one_place_set_converges(workdir: Path) -> None:
    """The provider chooses the place the manifest leaves out (and an update keeps it), so
    only the place the manifest sets is compared: not an update at every plan, nor a plan
    that shows the other place removed."""
    manifest = workdir / "manifests/vault.yaml"
    manifest.write_text(ENV_VAULT + "        injection_location: {header: true}\n")
    ok("apply", "--auto-approve")
    assert _plan_actions() == []

    manifest.write_text(ENV_VAULT + "        injection_location: {body: false}\n")
    [update] = _plan_actions()
    changes = [(c["path"], c["old"], c["new"]) for c in update["changes"]]  # type: ignore[union-attr]
    assert changes == [("auth.injection_location.body", True, False)]
    ok("apply", "--auto-approve")
    assert _plan_actions() == []


def test_an_empty_refresh_scope_converges(workdir: Path) -> None:
    """``scope: ""`` (the wire's own word for "no scope") was applied, and the provider
    stores no scope: every plan after showed ``auth.refresh.scope: null -> ""`` again."""
    manifest = workdir / "manifests/vault.yaml"
    manifest.write_text(VAULT + "          scope: repo\n")
    ok("apply", "--auto-approve")
    manifest.write_text(VAULT + '          scope: ""\n')
    [update] = _plan_actions()
    changes = [(c["path"], c["old"], c["new"]) for c in update["changes"]]  # type: ignore[union-attr]
    assert changes == [("auth.refresh.scope", "repo", None)]
    ok("apply", "--auto-approve")
    assert _plan_actions() == []
