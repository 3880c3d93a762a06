"""The ``spec`` of a Vault manifest: the vault's create fields plus its credentials.

A vault's credentials are declared inline; each has a document-local ``name`` that forms its
address ``vault.<vault>.credential.<name>``. Secret fields are ``SecretRef`` values, never
strings (``provider-wire.md`` sections 4.3, 4.4, 5.5).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from .fields import (
    MAX_URL,
    HttpUrl,
    Metadata,
    NonEmptyStr,
    ResourceName,
    SpecModel,
    checked_by,
    fail,
    fail_each,
)
from .hosts import CREDENTIAL_HOST_PATTERN, credential_host_problem
from .secret import SecretRef

MAX_CREDENTIALS = 20
MAX_CREDENTIAL_HOSTS = 16
DisplayName = Annotated[str, Field(min_length=1, max_length=255)]


class TokenEndpointAuthNone(SpecModel):
    """The token endpoint needs no client authentication."""

    type: Literal["none"]


class TokenEndpointAuthSecret(SpecModel):
    """Client secret sent as HTTP basic auth or in the POST body."""

    type: Literal["client_secret_basic", "client_secret_post"]
    client_secret: SecretRef


TokenEndpointAuth = Annotated[
    TokenEndpointAuthNone | TokenEndpointAuthSecret, Field(discriminator="type")
]


class OAuthRefresh(SpecModel):
    """How the provider refreshes an MCP OAuth access token."""

    client_id: Annotated[NonEmptyStr, Field(max_length=1024)]
    refresh_token: SecretRef
    token_endpoint: HttpUrl
    token_endpoint_auth: TokenEndpointAuth
    resource: Annotated[str, Field(max_length=MAX_URL)] | None = None
    scope: Annotated[str, Field(max_length=4096)] | None = None


class StaticBearerAuth(SpecModel):
    """A bearer token sent to one MCP server."""

    type: Literal["static_bearer"]
    token: SecretRef
    mcp_server_url: HttpUrl


class McpOAuthAuth(SpecModel):
    """An OAuth access token (optionally refreshable) for one MCP server."""

    type: Literal["mcp_oauth"]
    access_token: SecretRef
    mcp_server_url: HttpUrl
    expires_at: str | None = Field(
        default=None,
        description="RFC 3339 timestamp with its zone, e.g. 2026-06-01T00:00:00Z.",
        # a date, a time, and a zone at the end, as _rfc3339 wants
        json_schema_extra={
            "pattern": "^[^Tt ]+[Tt ].*(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?"
            "(?::?[0-9]{2}(?:[.,][0-9]+)?)?)$"
        },
    )
    refresh: OAuthRefresh | None = None

    @field_validator("expires_at")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                fail("expires_at must be an RFC 3339 timestamp such as 2026-06-01T00:00:00Z")
            if parsed.tzinfo is None:
                fail("expires_at needs a time zone, e.g. 2026-06-01T00:00:00Z")
        return value


class UnrestrictedCredentialNetworking(SpecModel):
    type: Literal["unrestricted"]


class LimitedCredentialNetworking(SpecModel):
    """The secret may be sent only to these hosts (bare host, IPv4 or *.example.com)."""

    type: Literal["limited"]
    allowed_hosts: Annotated[
        list[
            Annotated[
                NonEmptyStr,
                checked_by(credential_host_problem),
                Field(json_schema_extra={"pattern": CREDENTIAL_HOST_PATTERN}),
            ]
        ],
        Field(max_length=MAX_CREDENTIAL_HOSTS),
    ]


CredentialNetworking = Annotated[
    UnrestrictedCredentialNetworking | LimitedCredentialNetworking, Field(discriminator="type")
]


class InjectionLocation(SpecModel):
    """Where the secret may be injected into outgoing requests."""

    model_config = ConfigDict(
        # as _one_enabled checks: not both places switched off
        json_schema_extra={
            "not": {
                "required": ["body", "header"],
                "properties": {"body": {"const": False}, "header": {"const": False}},
            }
        }
    )

    body: bool | None = None
    header: bool | None = None

    @model_validator(mode="after")
    def _one_enabled(self) -> InjectionLocation:
        if self.body is False and self.header is False:
            fail("at least one of body or header must stay enabled")
        return self


_ENV_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvironmentVariableAuth(SpecModel):
    """A secret exposed to the agent's container as an environment variable."""

    type: Literal["environment_variable"]
    secret_name: NonEmptyStr = Field(
        description="Name of the environment variable.",
        json_schema_extra={"pattern": _ENV_VAR_RE.pattern},
    )
    secret_value: SecretRef
    networking: CredentialNetworking
    injection_location: InjectionLocation | None = None

    @field_validator("secret_name")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_VAR_RE.match(value):
            fail("secret_name must be an environment variable name (letters, digits, '_')")
        return value


CredentialAuth = Annotated[
    StaticBearerAuth | McpOAuthAuth | EnvironmentVariableAuth, Field(discriminator="type")
]


class CredentialSpec(SpecModel):
    """One credential of a vault; ``name`` is its manifest-local key."""

    name: ResourceName = Field(description="Local key; the address is vault.VAULT.credential.NAME.")
    display_name: DisplayName | None = Field(
        default=None, description="Remote display name; defaults to name."
    )
    metadata: Metadata | None = None
    auth: CredentialAuth

    @property
    def remote_name(self) -> str:
        """The display name sent to the provider."""
        return self.display_name or self.name

    @property
    def key(self) -> str:
        """The provider's uniqueness key within a vault: the MCP server URL or secret name."""
        auth = self.auth
        return (
            auth.secret_name if isinstance(auth, EnvironmentVariableAuth) else auth.mcp_server_url
        )


class VaultSpec(SpecModel):
    """Desired state of a vault and its credentials."""

    display_name: DisplayName | None = Field(
        default=None, description="Remote display name; defaults to the document name."
    )
    metadata: Metadata | None = None
    credentials: Annotated[list[CredentialSpec], Field(max_length=MAX_CREDENTIALS)] = Field(
        default_factory=list, description="At most 20; names unique."
    )

    # a field validator: it runs (and is said) beside the errors of the other fields
    @field_validator("credentials")
    @classmethod
    def _unique_credentials(cls, credentials: list[CredentialSpec]) -> list[CredentialSpec]:
        fail_each(
            credential_clashes(
                [
                    (
                        c.name,
                        "secret_name"
                        if isinstance(c.auth, EnvironmentVariableAuth)
                        else "mcp_server_url",
                        c.key,
                    )
                    for c in credentials
                ]
            )
        )
        return credentials


def credential_clashes(
    credentials: Sequence[tuple[str | None, str | None, str | None]],
) -> list[tuple[str, tuple[str | int, ...]]]:
    """``(message, path below credentials)`` of every credential whose name, or whose key
    (``secret_name`` or ``mcp_server_url``, the provider's one-per-vault key), an earlier one
    of ``credentials`` has; each is ``(name, key field, key)``, None where not known (a
    document that did not validate, ``rawchecks``)."""
    names: dict[str, int] = {}
    keys: dict[str, int] = {}
    problems: list[tuple[str, tuple[str | int, ...]]] = []
    for index, (name, what, key) in enumerate(credentials):
        if name is not None and name in names:
            problems.append(
                (
                    (
                        f"credential name '{name}' is used twice in this vault "
                        f"(also credentials[{names[name]}]); names must be unique"
                    ),
                    (index, "name"),
                )
            )
        if name is not None:
            names.setdefault(name, index)
        if what is None or key is None:
            continue
        same = key
        if what == "mcp_server_url":  # one server, any case
            parts = urlsplit(key)
            same = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
        if same in keys:
            problems.append(
                (
                    (
                        f"{what} {key} is already used by credentials[{keys[same]}]"
                        "; the provider allows one active credential per key in a vault"
                    ),
                    (index, "auth", what),
                )
            )
        keys.setdefault(same, index)
    return problems
