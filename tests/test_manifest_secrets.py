"""Secret references: where secrets are found in a spec, and how their values are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest import (
    CredentialSpec,
    DeploymentSpec,
    SecretRef,
    SourceLocation,
    iter_secret_refs,
    resolve_secret,
)

VALUE = "s3cr3t-value-never-printed"


def test_iter_secret_refs_names_every_secret_of_a_credential() -> None:
    credential = CredentialSpec.model_validate(
        {
            "name": "linear",
            "auth": {
                "type": "mcp_oauth",
                "mcp_server_url": "https://mcp.linear.app/mcp",
                "access_token": {"from_env": "LINEAR_ACCESS"},
                "refresh": {
                    "client_id": "abc",
                    "refresh_token": {"from_file": "secrets/linear-refresh"},
                    "token_endpoint": "https://linear.app/oauth/token",
                    "token_endpoint_auth": {
                        "type": "client_secret_basic",
                        "client_secret": {"from_env": "LINEAR_CLIENT_SECRET"},
                    },
                },
            },
        }
    )
    assert [(path, str(ref)) for path, ref in iter_secret_refs(credential)] == [
        ("auth.access_token", "env:LINEAR_ACCESS"),
        ("auth.refresh.refresh_token", "file:secrets/linear-refresh"),
        ("auth.refresh.token_endpoint_auth.client_secret", "env:LINEAR_CLIENT_SECRET"),
    ]


def test_iter_secret_refs_finds_secrets_in_lists() -> None:
    spec = DeploymentSpec.model_validate(
        {
            "agent": "a",
            "environment": "e",
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "x"}]}
            ],
            "resources": [
                {"type": "file", "file_id": "file_1"},
                {
                    "type": "github_repository",
                    "url": "https://github.com/o/r",
                    "authorization_token": {"from_env": "GH"},
                },
            ],
        }
    )
    assert [p for p, _ in iter_secret_refs(spec)] == ["resources[1].authorization_token"]


def test_secret_ref_validation() -> None:
    with pytest.raises(ValueError, match="inline secret") as info:
        SecretRef.model_validate(VALUE)
    assert VALUE not in str(info.value)
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef.model_validate({})
    with pytest.raises(ValueError, match="environment variable name"):
        SecretRef.model_validate({"from_env": "NOT-A-NAME"})


def test_resolve_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECONCILER_TEST_SECRET", VALUE)
    assert resolve_secret(SecretRef(from_env="RECONCILER_TEST_SECRET"), tmp_path) == VALUE


def test_resolve_from_file_strips_trailing_newlines(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(VALUE + "\r\n")
    assert resolve_secret(SecretRef(from_file="secrets/token"), tmp_path) == VALUE
    absolute = tmp_path / "secrets" / "token"
    assert resolve_secret(SecretRef(from_file=str(absolute)), "/") == VALUE


def test_unset_variable_names_it_and_the_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILER_TEST_MISSING", raising=False)
    where = SourceLocation("manifests/vaults.yaml", 18, 9)
    with pytest.raises(ManifestError) as info:
        resolve_secret(
            SecretRef(from_env="RECONCILER_TEST_MISSING"),
            ".",
            location=where,
            field_path="auth.token",
        )
    assert [str(i) for i in info.value.issues] == [
        (
            "manifests/vaults.yaml:18:9: auth.token: environment variable RECONCILER_TEST_MISSING "
            "is not set; export it with the secret before running"
        )
    ]


def test_empty_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_TEST_EMPTY", "")
    with pytest.raises(ManifestError, match="RECONCILER_TEST_EMPTY is empty"):
        resolve_secret(SecretRef(from_env="RECONCILER_TEST_EMPTY"), ".")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(
        ManifestError,
        match=r"secret file .*nope\.txt not found \(from_file: "
        r"nope\.txt is relative to",
    ):
        resolve_secret(SecretRef(from_file="nope.txt"), tmp_path)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ManifestError, match="is empty"):
        resolve_secret(SecretRef(from_file="empty"), tmp_path)
    (tmp_path / "binary").write_bytes(b"\xff\xfe" + VALUE.encode())
    with pytest.raises(ManifestError, match="not UTF-8") as info:
        resolve_secret(SecretRef(from_file="binary"), tmp_path)
    assert VALUE not in str(info.value)
    with pytest.raises(ManifestError, match="is a directory"):
        resolve_secret(SecretRef(from_file="."), tmp_path)


def test_a_secret_of_white_space_only_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`GH_TOKEN=' '` (a paste that lost the token) or a secret file of spaces was sent to
    the provider as a credential's token: no token is white space only."""
    monkeypatch.setenv("RECONCILER_TEST_BLANK", " \t ")
    with pytest.raises(ManifestError, match="RECONCILER_TEST_BLANK holds only white space"):
        resolve_secret(SecretRef(from_env="RECONCILER_TEST_BLANK"), ".")
    (tmp_path / "blank").write_text("   \n")
    with pytest.raises(ManifestError, match=r"secret file .*blank holds only white space"):
        resolve_secret(SecretRef(from_file="blank"), tmp_path)
