"""A short secret is masked where it appears, never inside other words or the live object.

Apply masks each secret it sends wherever the provider might echo it (a failure message, the
object it answers with). Masking every occurrence of the text garbled everything around a short
secret: with the token ``2`` the credential's ``updated_at`` went to the lockfile as
``***0***6-1***-...``, so every later plan showed an update and drift reported the credential as
written out of band; with the token ``a`` a failure read ``cre***te f***iled``, which also told
any reader the secret. A secret is now masked only where it stands as a whole (not inside a
longer word or number), and a field of the live object only when it holds the secret itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok, out_of_band, plan_is_clean

from reconciler.engine.masking import mask_json, mask_text

CREDENTIAL = "vault.v.credential.token"


def write_vault(tmp_path: Path, auth: str) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "vault.yaml").write_text(
        "kind: Vault\nname: v\nspec:\n  display_name: V\n  credentials:\n"
        f"    - name: token\n      auth: {auth}\n"
    )


def test_a_short_secret_leaves_the_recorded_time_alone_and_the_next_plan_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    write_vault(
        tmp_path,
        "{type: static_bearer, mcp_server_url: https://m.example.com/mcp, "
        "token: {from_env: T}}",
    )
    monkeypatch.setenv("T", "2")
    ok("apply", "--auto-approve")

    recorded = lockfile()["resources"][CREDENTIAL]["live_updated_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", recorded), recorded
    plan_is_clean()
    drift = cli("drift")
    assert drift.exit_code == 0, drift.stdout


def test_a_failure_stays_readable_when_the_secret_is_a_letter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch, manifests=False)
    auth = "{type: static_bearer, mcp_server_url: https://m.example.com/mcp, token: {from_env: T}}"
    write_vault(tmp_path, auth)
    monkeypatch.setenv("T", "e")  # in most words of the message, none of them alone
    manifest = tmp_path / "manifests" / "vault.yaml"
    with_credential = manifest.read_text()
    manifest.write_text(with_credential.split("  credentials:")[0])
    ok("apply", "--auto-approve")
    vault = lockfile()["resources"]["vault.v"]["id"]
    # a colleague's credential for the same server, made by hand: the create is refused (409)
    out_of_band(
        lambda c: c.credentials.create(
            vault,
            {"auth": {"type": "static_bearer", "mcp_server_url": "https://m.example.com/mcp",
                      "token": "other"}},
        )
    )  # fmt: skip
    manifest.write_text(with_credential)
    result = cli("apply", "--auto-approve")

    assert result.exit_code == 1
    assert (
        f"{CREDENTIAL}: create refused by the provider (409): a credential for "
        "https://m.example.com/mcp in this vault already exists" in result.output
    ), result.output
    assert "***" not in result.output


@pytest.mark.parametrize(
    ("text", "secret", "masked"),
    [
        ("token abc refused", "abc", "token *** refused"),
        ("token=abc&x=1", "abc", "token=***&x=1"),
        ('"abc"', "abc", '"***"'),
        ("create failed", "a", "create failed"),
        ("2026-12-07T15:49:53Z", "2", "2026-12-07T15:49:53Z"),
        ('bad "q${x} value', '"q${x}', "bad *** value"),
        ("key -----BEGIN\nA\n-----END refused", "-----BEGIN\nA\n-----END", "key *** refused"),
    ],
)
def test_a_secret_is_masked_where_it_stands_as_a_whole(text: str, secret: str, masked: str) -> None:
    assert mask_text(text, [secret]) == masked


def test_a_live_field_is_masked_only_when_it_is_the_secret() -> None:
    live = {"updated_at": "2026-12-07T15:49:53Z", "auth": {"token": "2"}, "tags": ["2", "x"]}
    assert mask_json(live, ["2"]) == {
        "updated_at": "2026-12-07T15:49:53Z",
        "auth": {"token": "***"},
        "tags": ["***", "x"],
    }
