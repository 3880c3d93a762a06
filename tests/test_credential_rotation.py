"""A vault credential whose secret was rotated behind git's back.

The provider never returns a secret, so a colleague who rotates a token with the official SDK
changes nothing a diff can see: only the credential's ``updated_at`` moves. The lockfile
records the ``updated_at`` apply left, so ``drift`` reports the credential (exit 2) and
``plan`` shows the update that writes the manifest's secret again; after that apply both are
clean. The colleague works over loopback TCP on the same provider database, as one would with
``reconciler provider serve``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from support.gitops import DB, cli, edit, lockfile, make_workdir, ok, plan_is_clean

from reconciler.provider.local import create_app
from reconciler.provider.local.server import BackgroundServer

CREDENTIAL = "vault.github.credential.github-mcp"


@pytest.fixture
def colleague(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[anthropic.Anthropic]:
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    with (
        BackgroundServer(create_app(tmp_path / DB)) as server,
        anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0) as sdk,
    ):
        yield sdk


def rotate(sdk: anthropic.Anthropic) -> None:
    state = lockfile()["resources"]
    sdk.beta.vaults.credentials.update(
        state[CREDENTIAL]["id"],
        vault_id=state["vault.github"]["id"],
        auth={"type": "static_bearer", "token": "rotated-by-hand"},
    )


def drift() -> tuple[int, dict[str, Any]]:
    result = cli("drift", "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def test_a_rotated_secret_is_drift_and_the_plan_writes_it_back(
    colleague: anthropic.Anthropic,
) -> None:
    assert drift()[0] == 0
    rotate(colleague)

    code, report = drift()
    assert code == 2
    (item,) = report["items"]
    assert (item["type"], item["address"]) == ("changed", CREDENTIAL)
    assert item["changes"] == [
        {
            "op": "change",
            "path": "auth.token",
            "old": "(sensitive)",
            "new": "(sensitive)",
            "sensitive": True,
        }
    ]
    assert item["changed_at"] is not None
    assert "rotated-by-hand" not in json.dumps(report)
    text = cli("drift")
    assert text.exit_code == 2 and CREDENTIAL in text.stdout

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert f"~ {CREDENTIAL}  update" in plan.stdout
    assert "auth.token: (sensitive) -> (sensitive)" in plan.stdout
    assert "outside the reconciler" in plan.stdout

    ok("apply", "--auto-approve")
    assert drift()[0] == 0
    plan_is_clean()


def test_an_apply_records_where_it_left_the_credential(
    colleague: anthropic.Anthropic,
) -> None:
    # nothing rotated: the credential apply created is no drift, whatever the clocks say
    entry = lockfile()["resources"][CREDENTIAL]
    raw = colleague.beta.vaults.credentials.with_raw_response.retrieve(
        entry["id"], vault_id=lockfile()["resources"]["vault.github"]["id"]
    )
    assert entry["live_updated_at"] == raw.http_response.json()["updated_at"]
    plan_is_clean()


OAUTH_VAULT = """---
kind: Vault
name: linear
spec:
  credentials:
    - name: linear
      auth:
        type: mcp_oauth
        mcp_server_url: https://mcp.linear.app/mcp
        access_token: {from_env: LINEAR_ACCESS}
        refresh:
          client_id: client
          refresh_token: {from_env: LINEAR_REFRESH}
          token_endpoint: https://linear.app/oauth/token
          token_endpoint_auth: {type: none}
"""


def test_an_oauth_credential_the_provider_refreshes_is_no_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with `refresh`, the provider writes fresh access tokens itself: a newer updated_at is
    # expected there, and writing the manifest's first token back would undo the refresh
    make_workdir(tmp_path, monkeypatch)
    monkeypatch.setenv("LINEAR_ACCESS", "first-access")
    monkeypatch.setenv("LINEAR_REFRESH", "refresh")
    vaults = Path("manifests/vaults.yaml")
    vaults.write_text(vaults.read_text() + OAUTH_VAULT)
    ok("apply", "--auto-approve")
    with (
        BackgroundServer(create_app(tmp_path / DB)) as server,
        anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0) as sdk,
    ):
        state = lockfile()["resources"]
        sdk.beta.vaults.credentials.update(
            state["vault.linear.credential.linear"]["id"],
            vault_id=state["vault.linear"]["id"],
            auth={"type": "mcp_oauth", "access_token": "refreshed-access"},
        )
    assert drift()[0] == 0
    plan_is_clean()


def test_a_vault_that_ignores_its_credentials_leaves_them_alone(
    colleague: anthropic.Anthropic,
) -> None:
    """``ignore_changes: [credentials]`` on a Vault (validate accepts it, and names
    ``credentials`` as a field it may leave alone): a secret rotated by another job and a
    display name edited by hand are neither drift nor an update; the manifest's own edits to
    the credential are left alone too, as for any ignored field."""
    manifest = Path("manifests/vaults.yaml")
    edit(manifest, "name: github\n", "name: github\nignore_changes: [credentials]\n")
    ok("apply", "--auto-approve")
    rotate(colleague)
    state = lockfile()["resources"]
    colleague.beta.vaults.credentials.update(
        state[CREDENTIAL]["id"], vault_id=state["vault.github"]["id"], display_name="by hand"
    )

    assert drift()[0] == 0
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert f"{CREDENTIAL} (" in plan.stdout and "ignore_changes" in plan.stdout

    edit(manifest, "display_name: GitHub MCP token", "display_name: GitHub token")
    actions = json.loads(ok("plan", "--format", "json").stdout)["actions"]
    assert [a["type"] for a in actions if a["address"] == CREDENTIAL] == ["noop"], actions
    ok("apply", "--auto-approve")
    live = colleague.beta.vaults.credentials.retrieve(
        state[CREDENTIAL]["id"], vault_id=state["vault.github"]["id"]
    )
    assert live.display_name == "by hand"


def test_a_secret_changed_while_ignored_is_written_once_no_longer_ignored(
    colleague: anthropic.Anthropic,
) -> None:
    """``ignore_changes: [credentials]``, then the manifest's token changed and applied: the
    lockfile was re-recorded with the new token's fingerprint though the provider never got
    it, so once ``ignore_changes`` was removed plan said "No changes" and the new token was
    never written. The lockfile keeps the fingerprint of what was written; the plan writes
    the token once the credential is no longer ignored."""
    manifest = Path("manifests/vaults.yaml")
    written = lockfile()["resources"][CREDENTIAL]["secret_fingerprints"]
    edit(manifest, "name: github\n", "name: github\nignore_changes: [credentials]\n")
    Path("manifests/secrets/github-token.txt").write_text("token-never-sent\n")
    ok("apply", "--auto-approve")
    assert lockfile()["resources"][CREDENTIAL]["secret_fingerprints"] == written

    edit(manifest, "name: github\nignore_changes: [credentials]\n", "name: github\n")
    actions = json.loads(ok("plan", "--format", "json").stdout)["actions"]
    [update] = [a for a in actions if a["address"] == CREDENTIAL]
    assert update["type"] == "update", actions
    assert [c["path"] for c in update["changes"]] == ["auth.token"], update
    ok("apply", "--auto-approve")
    plan_is_clean()


def test_a_credential_renamed_by_hand_says_its_secret_only_may_have_been_rotated(
    colleague: anthropic.Anthropic,
) -> None:
    # only the display name changed, but the write moved updated_at: the secret is reported
    # as one that may have been rotated (it cannot be read back), never as a known change
    state = lockfile()["resources"]
    colleague.beta.vaults.credentials.update(
        state[CREDENTIAL]["id"], vault_id=state["vault.github"]["id"], display_name="Renamed"
    )
    code, report = drift()
    assert code == 2
    (item,) = report["items"]
    assert [(c["path"], c["old"], c["new"]) for c in item["changes"]] == [
        ("display_name", "GitHub MCP token", "Renamed"),
        ("auth.token", "(sensitive)", "(sensitive)"),
    ]
    assert "cannot be read back, so it may have been rotated" in item["message"]
    assert "may have been rotated" in cli("drift").stdout
    ok("apply", "--auto-approve")
    assert drift()[0] == 0
    plan_is_clean()
