"""An OAuth credential's ``expires_at`` in the past is refused by plan, at its place.

The provider takes only a future ``expires_at`` (provider-wire.md 5.5). A manifest with one in
the past (a copied example, a rotated token whose expiry was not moved with it) passed
``validate`` and ``plan``, and ``apply`` failed at the credential with a 400 after the vault and
the other resources were created. Plan now refuses exactly the writes that would send such an
expiry, naming ``file:line:col``, before anything is sent; a write that sends no expiry (a
display name changed) is not held back by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok, out_of_band, position

from reconciler.app import expiry

MANIFEST = """\
kind: Vault
name: v
spec:
  display_name: V
  credentials:
    - name: plain
      auth: {type: static_bearer, mcp_server_url: "https://a.example.com/mcp", token: {from_env: T}}
    - name: oauth
      auth:
        type: mcp_oauth
        mcp_server_url: https://b.example.com/mcp
        access_token: {from_env: T}
        expires_at: "2099-01-01T00:00:00Z"
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    (tmp_path / "manifests").mkdir()
    monkeypatch.setenv("T", "token-one")
    return tmp_path / "manifests" / "vault.yaml"


def test_a_past_expiry_fails_plan_and_apply_at_its_place_with_nothing_sent(workdir: Path) -> None:
    text = MANIFEST.replace("2099-01-01", "2020-01-01")
    workdir.write_text(text)
    where = "manifests/vault.yaml:" + position(text, text.index('expires_at: "2020'))

    for command in (["plan"], ["plan", "--format", "json"], ["apply", "--auto-approve"]):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.output)
        assert (
            f"{where}: vault.v.credential.oauth: auth.expires_at 2020-01-01T00:00:00Z is in the "
            "past" in result.stderr
        ), result.stderr

    assert not Path("state/reconciler.lock").exists()

    async def vaults(client: object) -> list[object]:
        return [v async for v in client.vaults.list()]  # type: ignore[attr-defined]

    assert out_of_band(vaults) == []


def test_once_the_expiry_passed_only_a_write_that_sends_it_is_refused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir.write_text(MANIFEST)
    ok("apply", "--auto-approve")
    monkeypatch.setattr(expiry, "_now", lambda: datetime(2100, 1, 1, tzinfo=UTC))

    # the display name changes: the update sends no expiry, so nothing holds it back
    renamed = MANIFEST.replace("- name: oauth\n", "- name: oauth\n      display_name: OAuth\n")
    workdir.write_text(renamed)
    plan = cli("plan")
    assert plan.exit_code == 0, plan.output
    assert '~ display_name: "oauth" -> "OAuth"' in plan.stdout

    # the token is rotated: its update sends the expiry with it, which the provider refuses
    monkeypatch.setenv("T", "token-two")
    plan = cli("plan")
    assert plan.exit_code == 1, plan.output
    assert "vault.v.credential.oauth: auth.expires_at 2099-01-01T00:00:00Z is in the past" in (
        plan.stderr
    )


def test_a_saved_plan_whose_expiry_passed_since_is_refused_before_anything_is_sent(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir.write_text(MANIFEST)
    ok("plan", "--out", "plan.json")
    monkeypatch.setattr(expiry, "_now", lambda: datetime(2100, 1, 1, tzinfo=UTC))
    result = cli("apply", "plan.json")
    assert result.exit_code == 1, result.output
    assert "vault.v.credential.oauth: auth.expires_at 2099-01-01T00:00:00Z is in the past" in (
        result.stderr
    ), result.stderr

    async def vaults(client: object) -> list[object]:
        return [v async for v in client.vaults.list()]  # type: ignore[attr-defined]

    assert out_of_band(vaults) == []
