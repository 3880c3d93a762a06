"""Request bodies of the control plane: agents, environments, vaults, credentials.

Pydantic models used only to validate what clients send (and to document it in OpenAPI);
handlers read ``model_dump(exclude_unset=True)`` so that "omitted" and "sent as null" stay
distinct, as update semantics need. Unknown fields are rejected (``extra="forbid"``); the
official SDK sends only documented fields. Limits that FastAPI can check are declared here;
cross-field and stateful rules live in ``defaults`` and the routes. Responses are plain dicts.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    model_validator,
)

from .hosts import credential_host, mcp_server_url, web_domain
from .schemas_nested import Body, InputSchemaIn, MultiagentIn, UrlSourcesIn, UserLocationIn

MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetaValue = Annotated[str, StringConstraints(max_length=512)]
Metadata = Annotated[dict[MetaKey, MetaValue], Field(max_length=16)]
# A patch may delete keys, so it is checked for size only after merging.
MetadataPatch = Annotated[dict[MetaKey, MetaValue | None], Field(max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=2048)]
#: How a body sends ``metadata``: the whole map on create (``Metadata``), a patch on update
#: (``MetadataPatch``). A resource's create and update bodies share one generic class of its
#: fields, all optional there; the create body narrows the ones it requires (pydantic keeps a
#: narrowed field where the shared class puts it, so the wire order stays the SDK's).
MetadataT = TypeVar("MetadataT")

# -- agents -----------------------------------------------------------------------------

EffortLevel = Literal["low", "medium", "high", "xhigh", "max"]


class EffortIn(Body):
    type: EffortLevel


class ModelConfigIn(Body):
    id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    effort: EffortLevel | EffortIn | None = None
    inference_geo: Annotated[str, StringConstraints(max_length=64)] | None = None
    speed: Literal["standard", "fast"] | None = None


ModelIn = Annotated[str, StringConstraints(min_length=1, max_length=256)] | ModelConfigIn


class AlwaysAllow(Body):
    type: Literal["always_allow"]


class AlwaysAsk(Body):
    type: Literal["always_ask"]


class AutoPolicy(Body):
    type: Literal["auto"]


PermissionPolicy = Annotated[AlwaysAllow | AlwaysAsk | AutoPolicy, Field(discriminator="type")]


class DefaultConfigIn(Body):
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


ToolName = Literal["bash", "edit", "read", "write", "glob", "grep", "web_fetch", "web_search"]
Domains = Annotated[
    list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1, max_length=64)
]


class AgentToolConfigIn(Body):
    """One built-in tool's config; web tools take their extra fields."""

    name: ToolName
    type: ToolName | None = None
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None
    allowed_domains: Domains | None = None
    blocked_domains: Domains | None = None
    max_content_tokens: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    url_sources: UrlSourcesIn | None = None
    user_location: UserLocationIn | None = None

    @model_validator(mode="after")
    def _check(self) -> AgentToolConfigIn:
        if self.type is not None and self.type != self.name:
            raise ValueError(f"config type {self.type!r} must equal its name {self.name!r}")
        sent = self.model_fields_set
        web = {
            "allowed_domains",
            "blocked_domains",
            "user_location",
            "url_sources",
            "max_content_tokens",
        }
        allowed = {
            "web_fetch": {
                "allowed_domains",
                "blocked_domains",
                "max_content_tokens",
                "url_sources",
            },
            "web_search": {"allowed_domains", "blocked_domains", "user_location"},
        }.get(self.name, set())
        extra = (sent & web) - allowed
        if extra:
            raise ValueError(f"{self.name} does not take {', '.join(sorted(extra))}")
        if self.allowed_domains is not None and self.blocked_domains is not None:
            raise ValueError("allowed_domains and blocked_domains are mutually exclusive")
        for key in ("allowed_domains", "blocked_domains"):
            for domain in getattr(self, key) or ():
                try:
                    web_domain(domain, path_allowed=self.name == "web_search")
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return self


class AgentToolsetIn(Body):
    type: Literal["agent_toolset_20260401"]
    configs: list[AgentToolConfigIn] | None = None
    default_config: DefaultConfigIn | None = None


class McpToolConfigIn(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class McpToolsetIn(Body):
    type: Literal["mcp_toolset"]
    mcp_server_name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    configs: list[McpToolConfigIn] | None = None
    default_config: DefaultConfigIn | None = None


class CustomToolIn(Body):
    type: Literal["custom"]
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    ]
    description: Annotated[str, StringConstraints(max_length=10_000)]
    input_schema: InputSchemaIn


ToolIn = Annotated[AgentToolsetIn | McpToolsetIn | CustomToolIn, Field(discriminator="type")]
Tools = Annotated[list[ToolIn], Field(max_length=256)]


class McpServerIn(Body):
    type: Literal["url"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


McpServers = Annotated[list[McpServerIn], Field(max_length=20)]

SkillVersion = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class AnthropicSkillIn(Body):
    type: Literal["anthropic"]
    skill_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    version: SkillVersion | None = None


class CustomSkillIn(Body):
    type: Literal["custom"]
    skill_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    version: SkillVersion | None = None


SkillIn = Annotated[AnthropicSkillIn | CustomSkillIn, Field(discriminator="type")]
Skills = Annotated[list[SkillIn], Field(max_length=64)]


class ServiceAccountIn(Body):
    type: Literal["service_account"]


class AwsRoleIn(Body):
    type: Literal["aws_role"]
    role_arn: Annotated[str, StringConstraints(min_length=1, max_length=2048)]


ExecutionIdentityIn = Annotated[ServiceAccountIn | AwsRoleIn, Field(discriminator="type")]


class _AgentFields(Body, Generic[MetadataT]):
    """An agent's fields, as create and update send them."""

    name: Name | None = None
    model: ModelIn | None = None
    description: Text | None = None
    system: Annotated[str, StringConstraints(max_length=100_000)] | None = None
    tools: Tools | None = None
    mcp_servers: McpServers | None = None
    skills: Skills | None = None
    execution_identity: ExecutionIdentityIn | None = None
    multiagent: MultiagentIn | None = None
    metadata: MetadataT | None = None


class AgentCreate(_AgentFields[Metadata]):
    name: Name
    model: ModelIn


class AgentUpdate(_AgentFields[MetadataPatch]):
    version: Annotated[int, Field(ge=1, le=2**31)] | None = None


# -- environments -----------------------------------------------------------------------

Host = Annotated[str, StringConstraints(min_length=1, max_length=253)]
PackageList = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=512)]], Field(max_length=256)
]


class UnrestrictedNetIn(Body):
    type: Literal["unrestricted"]


class LimitedNetIn(Body):
    type: Literal["limited"]
    allowed_hosts: Annotated[list[Host], Field(max_length=256)] | None = None
    allow_mcp_servers: bool | None = None
    allow_package_managers: bool | None = None


NetworkingIn = Annotated[UnrestrictedNetIn | LimitedNetIn, Field(discriminator="type")]


class PackagesIn(Body):
    type: Literal["packages"] | None = None
    apt: PackageList | None = None
    cargo: PackageList | None = None
    gem: PackageList | None = None
    go: PackageList | None = None
    npm: PackageList | None = None
    pip: PackageList | None = None


class CloudConfigIn(Body):
    type: Literal["cloud"]
    networking: NetworkingIn | None = None
    packages: PackagesIn | None = None


class SelfHostedConfigIn(Body):
    type: Literal["self_hosted"]


EnvConfigIn = Annotated[CloudConfigIn | SelfHostedConfigIn, Field(discriminator="type")]


def _organization_only(scope: str) -> str:
    if scope == "account":
        raise ValueError("'account' is refused for API organizations; use 'organization'")
    return scope


# The SDK declares both; the API refuses "account" for API organizations (which every API
# key belongs to), so the local provider does too.
Scope = Annotated[Literal["organization", "account"], AfterValidator(_organization_only)]


class _EnvironmentFields(Body, Generic[MetadataT]):
    """An environment's fields, as create and update send them."""

    name: Name | None = None
    config: EnvConfigIn | None = None
    description: Text | None = None
    metadata: MetadataT | None = None
    scope: Scope | None = None


class EnvironmentCreate(_EnvironmentFields[Metadata]):
    name: Name


class EnvironmentUpdate(_EnvironmentFields[MetadataPatch]):
    pass


# -- vaults and credentials -------------------------------------------------------------

DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class VaultCreate(Body):
    display_name: DisplayName
    metadata: Metadata | None = None


class VaultUpdate(Body):
    display_name: DisplayName | None = None
    metadata: MetadataPatch | None = None


class TokenAuthNone(Body):
    type: Literal["none"]


class TokenAuthBasic(Body):
    type: Literal["client_secret_basic"]
    client_secret: Secret


class TokenAuthPost(Body):
    type: Literal["client_secret_post"]
    client_secret: Secret


TokenEndpointAuthIn = Annotated[
    TokenAuthNone | TokenAuthBasic | TokenAuthPost, Field(discriminator="type")
]


class RefreshIn(Body):
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    refresh_token: Secret
    token_endpoint: Url
    token_endpoint_auth: TokenEndpointAuthIn
    resource: Url | None = None
    scope: Annotated[str, StringConstraints(max_length=4096)] | None = None


class TokenAuthBasicUpdate(Body):
    type: Literal["client_secret_basic"]
    client_secret: Secret | None = None


class TokenAuthPostUpdate(Body):
    type: Literal["client_secret_post"]
    client_secret: Secret | None = None


class RefreshUpdate(Body):
    refresh_token: Secret | None = None
    scope: Annotated[str, StringConstraints(max_length=4096)] | None = None
    token_endpoint_auth: (
        Annotated[TokenAuthBasicUpdate | TokenAuthPostUpdate, Field(discriminator="type")] | None
    ) = None


class CredUnrestrictedNet(Body):
    type: Literal["unrestricted"]


#: "URL of the MCP server this credential authenticates against" (``hosts.mcp_server_url``)
McpServerUrl = Annotated[Url, AfterValidator(mcp_server_url)]
#: "a bare hostname, an IPv4 address, or a ``*.`` wildcard" (``hosts.credential_host``)
CredHost = Annotated[str, AfterValidator(credential_host)]


class CredLimitedNet(Body):
    type: Literal["limited"]
    allowed_hosts: Annotated[list[CredHost], Field(min_length=1, max_length=16)]


CredNetworkingIn = Annotated[CredUnrestrictedNet | CredLimitedNet, Field(discriminator="type")]


class InjectionLocationIn(Body):
    body: bool | None = None
    header: bool | None = None


class StaticBearerCreate(Body):
    type: Literal["static_bearer"]
    token: Secret
    mcp_server_url: McpServerUrl


class McpOAuthCreate(Body):
    type: Literal["mcp_oauth"]
    access_token: Secret
    mcp_server_url: McpServerUrl
    expires_at: str | None = None
    refresh: RefreshIn | None = None


class EnvVarCreate(Body):
    type: Literal["environment_variable"]
    secret_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")]
    secret_value: Secret
    networking: CredNetworkingIn
    injection_location: InjectionLocationIn | None = None


class StaticBearerUpdate(Body):
    type: Literal["static_bearer"]
    token: Secret | None = None


class McpOAuthUpdate(Body):
    type: Literal["mcp_oauth"]
    access_token: Secret | None = None
    expires_at: str | None = None
    refresh: RefreshUpdate | None = None


class EnvVarUpdate(Body):
    type: Literal["environment_variable"]
    secret_value: Secret | None = None
    networking: CredNetworkingIn | None = None
    injection_location: InjectionLocationIn | None = None


class CredentialCreate(Body):
    auth: Annotated[StaticBearerCreate | McpOAuthCreate | EnvVarCreate, Field(discriminator="type")]
    display_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    metadata: Metadata | None = None


class CredentialUpdate(Body):
    auth: (
        Annotated[StaticBearerUpdate | McpOAuthUpdate | EnvVarUpdate, Field(discriminator="type")]
        | None
    ) = None
    display_name: DisplayName | None = None
    metadata: MetadataPatch | None = None
