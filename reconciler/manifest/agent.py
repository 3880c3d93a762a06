"""The ``spec`` of an Agent manifest: the provider's agent create fields, typed and checked.

Field names and shapes follow the wire (``provider-wire.md`` sections 4.1, 5.1-5.3); limits are
the provider's, so a manifest that validates here is not rejected for shape at apply time.
No defaults are filled in: what the manifest omits stays ``None`` (the engine normalises).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import get_close_matches
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from reconciler.kinds import ID_PREFIXES

from .fields import (
    HttpUrl,
    Metadata,
    NonEmptyStr,
    ResourceName,
    SpecModel,
    checked_by,
    fail,
    fail_each,
    int_or_str_schema,
    int_to_str,
    repeats,
    string_or_object,
)
from .hosts import FETCH_DOMAIN_PATTERN, SEARCH_DOMAIN_PATTERN, web_domain_problem
from .textfile import FILE_FORM_SCHEMA

EffortLevel = Literal["low", "medium", "high", "xhigh", "max"]
BUILTIN_TOOL_NAMES = ("bash", "edit", "read", "write", "glob", "grep")
BuiltinToolName = Literal["bash", "edit", "read", "write", "glob", "grep"]

MAX_TOOLS = 256  # tools across all toolsets, the built-in toolset counting all of these:
BUILTIN_TOOLSET_TOOLS = (*BUILTIN_TOOL_NAMES, "web_fetch", "web_search")
MAX_MCP_SERVERS = 20
MAX_DOMAINS = 64
#: the provider's limits (the local provider's ``schemas.py``), refused at validate rather
#: than by a 400 at apply after the resources before this one were changed
MAX_MODEL_ID = 256
MAX_SKILLS = 64
MAX_SKILL_VERSION = 64


# --------------------------------------------------------------------------- model


class Effort(SpecModel):
    """Reasoning effort in object form, e.g. ``{type: high}``."""

    type: EffortLevel


EffortRef = string_or_object(
    EffortLevel, Effort, "an effort level (low, medium, high, xhigh, max) or {type: LEVEL}"
)


class ModelConfig(SpecModel):
    """The model in object form; the string form ``claude-sonnet-4-6`` is the same as ``{id: ...}``."""

    id: Annotated[NonEmptyStr, Field(max_length=MAX_MODEL_ID)] = Field(
        description="Model id, e.g. claude-sonnet-4-6."
    )
    effort: EffortRef | None = None  # type: ignore[valid-type]
    inference_geo: Annotated[str, Field(max_length=64)] | None = None
    speed: Literal["standard", "fast"] | None = None


ModelRef = string_or_object(
    Annotated[str, Field(min_length=1, max_length=MAX_MODEL_ID)],
    ModelConfig,
    "a model id such as claude-sonnet-4-6, or a mapping {id, effort, inference_geo, speed}",
)


# --------------------------------------------------------------------------- tools


class PermissionPolicy(SpecModel):
    """Whether tool calls run without asking (always_allow), ask (always_ask) or let the server judge (auto)."""

    type: Literal["always_allow", "always_ask", "auto"]


class ToolDefaultConfig(SpecModel):
    """Settings applied to every tool of a toolset unless a per-tool config overrides them."""

    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class BuiltinToolConfig(SpecModel):
    """Per-tool settings for bash, edit, read, write, glob or grep."""

    name: BuiltinToolName
    type: BuiltinToolName | None = Field(default=None, description="Optional; equals name.")
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None

    @model_validator(mode="after")
    def _type_matches_name(self) -> BuiltinToolConfig:
        if self.type is not None and self.type != self.name:
            fail(f"type must equal name ('{self.name}') or be omitted", "type")
        return self


class ToolReference(SpecModel):
    """A tool named in a web_fetch url_sources filter."""

    type: Literal["tool_reference"]
    name: NonEmptyStr


class UrlSourceAll(SpecModel):
    type: Literal["all"]


class UrlSourceNone(SpecModel):
    type: Literal["none"]


class UrlSourceOnly(SpecModel):
    type: Literal["only"]
    tools: list[ToolReference]


class UrlSourceExcept(SpecModel):
    type: Literal["except"]
    tools: list[ToolReference]


UrlSourceFilter = Annotated[
    UrlSourceAll | UrlSourceNone | UrlSourceOnly | UrlSourceExcept, Field(discriminator="type")
]
UserInputSource = string_or_object(
    Literal["all", "none"],
    Annotated[UrlSourceAll | UrlSourceNone, Field(discriminator="type")],
    "'all', 'none' or {type: all|none}",
)
ToolResultsSource = string_or_object(
    Literal["all", "none"], UrlSourceFilter, "'all', 'none' or {type: all|none|only|except}"
)


class UrlSources(SpecModel):
    """Which already-seen URLs web_fetch may fetch; each source defaults to "all"."""

    user_input: UserInputSource | None = None  # type: ignore[valid-type]
    client_tool_results: ToolResultsSource | None = None  # type: ignore[valid-type]
    server_tool_results: ToolResultsSource | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _not_all_none(self) -> UrlSources:
        def is_none(value: Any) -> bool:
            return value == "none" or isinstance(value, UrlSourceNone)

        if all(
            is_none(v)
            for v in (self.user_input, self.client_tool_results, self.server_tool_results)
        ):
            fail("setting all three url_sources to 'none' is rejected; disable web_fetch instead")
        server = self.server_tool_results
        if isinstance(server, UrlSourceOnly | UrlSourceExcept):
            for index, ref in enumerate(server.tools):
                if ref.name not in ("web_search", "web_fetch"):
                    fail(
                        f"server_tool_results may name only web_search or web_fetch, not "
                        f"'{ref.name}'",
                        "server_tool_results",
                        "tools",
                        index,
                        "name",
                    )
        return self


def _fetch_domain(text: str) -> str | None:
    return web_domain_problem(text, path_allowed=False)


def _search_domain(text: str) -> str | None:
    return web_domain_problem(text, path_allowed=True)


#: a web tool's domains, each entry checked as the API states (``manifest.hosts``):
#: web_fetch's are plain hostnames, web_search's may carry a path after the host
Domains = Annotated[
    list[
        Annotated[
            str,
            checked_by(_fetch_domain),
            Field(json_schema_extra={"pattern": FETCH_DOMAIN_PATTERN}),
        ]
    ],
    Field(min_length=1, max_length=MAX_DOMAINS),
]
SearchDomains = Annotated[
    list[
        Annotated[
            str,
            checked_by(_search_domain),
            Field(json_schema_extra={"pattern": SEARCH_DOMAIN_PATTERN}),
        ]
    ],
    Field(min_length=1, max_length=MAX_DOMAINS),
]
ALLOWED_DOMAINS = "Only these hosts (<= 64; not with blocked_domains)."
BLOCKED_DOMAINS = "Never these hosts (<= 64; not with allowed_domains)."


class _DomainFilter(SpecModel):
    allowed_domains: Domains | None = Field(default=None, description=ALLOWED_DOMAINS)
    blocked_domains: Domains | None = Field(default=None, description=BLOCKED_DOMAINS)

    @model_validator(mode="after")
    def _exclusive(self) -> _DomainFilter:
        if self.allowed_domains is not None and self.blocked_domains is not None:
            fail(
                "allowed_domains and blocked_domains cannot be combined; keep one",
                "blocked_domains",
                point="key",
            )
        return self


class WebFetchToolConfig(_DomainFilter):
    """Per-tool settings for web_fetch."""

    name: Literal["web_fetch"]
    type: Literal["web_fetch"] | None = None
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None
    max_content_tokens: Annotated[int, Field(ge=1)] | None = None
    url_sources: UrlSources | None = None


class UserLocation(SpecModel):
    """Approximate user location for web_search results."""

    type: Literal["approximate"]
    city: str | None = None
    region: str | None = None
    country: str | None = None
    timezone: str | None = None


class WebSearchToolConfig(_DomainFilter):
    """Per-tool settings for web_search."""

    allowed_domains: SearchDomains | None = Field(default=None, description=ALLOWED_DOMAINS)
    blocked_domains: SearchDomains | None = Field(default=None, description=BLOCKED_DOMAINS)

    name: Literal["web_search"]
    type: Literal["web_search"] | None = None
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None
    user_location: UserLocation | None = None


AgentToolConfig = Annotated[
    BuiltinToolConfig | WebFetchToolConfig | WebSearchToolConfig, Field(discriminator="name")
]


def _named_once(label: str) -> AfterValidator:
    """A check that a toolset's ``configs`` name each tool once (``label``: what a tool is
    called in the message)."""

    def check(configs: list[Any]) -> list[Any]:
        names = [config.name for config in configs]
        fail_each(
            (f"{label} '{name}' is configured twice; merge the two entries", (index, "name"))
            for index, name in ((index, names[index]) for index in repeats(names))
        )
        return configs

    return AfterValidator(check)


class AgentToolset(SpecModel):
    """The built-in tools (bash, edit, read, write, glob, grep, web_fetch, web_search)."""

    type: Literal["agent_toolset_20260401"]
    configs: Annotated[list[AgentToolConfig], _named_once("tool")] | None = None
    default_config: ToolDefaultConfig | None = None


class McpToolConfig(SpecModel):
    """Per-tool settings for one tool of an MCP server."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class McpToolset(SpecModel):
    """The tools of one MCP server declared in mcp_servers."""

    type: Literal["mcp_toolset"]
    mcp_server_name: Annotated[str, Field(min_length=1, max_length=255)]
    configs: Annotated[list[McpToolConfig], _named_once("MCP tool")] | None = None
    default_config: ToolDefaultConfig | None = None


class CustomTool(SpecModel):
    """A tool your client implements; calls arrive as agent.custom_tool_use events."""

    type: Literal["custom"]
    name: Annotated[
        str,
        Field(min_length=1, max_length=128, json_schema_extra={"pattern": "^[A-Za-z0-9_-]+$"}),
    ]
    description: Annotated[str, Field(max_length=10_000)]
    input_schema: dict[str, Any] = Field(
        description="JSON Schema of the tool input; its type must be 'object'.",
        json_schema_extra={"required": ["type"], "properties": {"type": {"const": "object"}}},
    )

    @field_validator("name")
    @classmethod
    def _tool_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            fail("custom tool names may use only letters, digits, '_' and '-'")
        return value

    @field_validator("input_schema")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            fail("input_schema must be a JSON Schema with type: object", "type")
        return value


Tool = Annotated[AgentToolset | McpToolset | CustomTool, Field(discriminator="type")]


# --------------------------------------------------------------------------- the rest


class McpServer(SpecModel):
    """An MCP server the agent may use; each must be referenced by an mcp_toolset."""

    type: Literal["url"]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    url: HttpUrl


class Skill(SpecModel):
    """A skill: an Anthropic skill id (e.g. xlsx) or a custom skill_... id."""

    type: Literal["anthropic", "custom"]
    skill_id: Annotated[NonEmptyStr, Field(max_length=256)]
    version: (
        Annotated[
            str,
            BeforeValidator(int_to_str),
            Field(max_length=MAX_SKILL_VERSION),
            WithJsonSchema(int_or_str_schema({})),
        ]
        | None
    ) = Field(default=None, description="Omit for the latest version.")


class SkillRef(SpecModel):
    """A Skill manifest by name: the newest version (one this apply uploads included), or
    the version ``version`` names; resolved to ``{type: custom, skill_id, version}``."""

    ref: ResourceName = Field(description="Name of a Skill manifest.")
    version: Annotated[NonEmptyStr, Field(max_length=MAX_SKILL_VERSION)] | None = Field(
        default=None,
        description="A version id (skillver_...) to pin; omit (or latest) to follow the "
        "newest version.",
    )

    @model_validator(mode="before")
    @classmethod
    def _latest(cls, data: Any) -> Any:
        # ``version: latest`` follows the newest, as a Deployment's agent pin does: the same
        # as leaving it out (dropped, so both spell one spec and one digest)
        if isinstance(data, dict) and data.get("version") == "latest":
            return {k: v for k, v in data.items() if k != "version"}
        return data


def _skill_tag(value: Any) -> str:
    """``ref`` for a Skill manifest by name, else the wire form (whose errors then say what
    a wire skill needs). A mapping with none of ``ref``, ``type`` and ``skill_id`` (``{rf:
    pdf-tools}``) is read as the by-name form DESIGN.md gives first, so its errors say
    ``did you mean 'ref'?`` instead of asking for the wire form's fields."""
    if isinstance(value, SkillRef):
        return "ref"
    if isinstance(value, dict) and ("ref" in value or not {"type", "skill_id"} & set(value)):
        return "ref"
    return "wire"


AgentSkill = Annotated[
    Annotated[SkillRef, Tag("ref")] | Annotated[Skill, Tag("wire")],
    Discriminator(_skill_tag),
]


class ServiceAccountIdentity(SpecModel):
    type: Literal["service_account"]


class AwsRoleIdentity(SpecModel):
    type: Literal["aws_role"]
    role_arn: Annotated[str, Field(min_length=1, max_length=2048)]


ExecutionIdentity = Annotated[ServiceAccountIdentity | AwsRoleIdentity, Field(discriminator="type")]


class AgentVersionRef(SpecModel):
    """A provider agent (by id), optionally at a version."""

    type: Literal["agent"]
    id: NonEmptyStr
    version: Annotated[int, Field(ge=1)] | None = None


class SelfRef(SpecModel):
    type: Literal["self"]


class AdvisorRef(SpecModel):
    type: Literal["advisor"]
    model: NonEmptyStr


#: an agent named by its provider id in a multiagent roster (the loader refuses any other
#: word there, a manifest name above all: the provider would answer 404 at apply)
AgentId = Annotated[
    str,
    Field(
        min_length=1,
        json_schema_extra={"pattern": f"^{re.escape(ID_PREFIXES['agent'])}"},
        description="A provider agent id (agent_...), not a manifest name.",
    ),
]

RosterEntry = string_or_object(
    AgentId,
    Annotated[AgentVersionRef | SelfRef | AdvisorRef, Field(discriminator="type")],
    "an agent id or a mapping {type: agent|self|advisor, ...}",
)
PredefinedAgent = string_or_object(
    AgentId,
    Annotated[AgentVersionRef | SelfRef, Field(discriminator="type")],
    "an agent id or a mapping {type: agent|self, ...}",
)


class Coordinator(SpecModel):
    """Legacy multiagent roster (prefer multiagent_20261001)."""

    type: Literal["coordinator"]
    agents: Annotated[list[RosterEntry], Field(min_length=1, max_length=20)]  # type: ignore[valid-type]


class InlineAgents(SpecModel):
    type: Literal["enabled", "disabled"]


class MultiagentAdvisor(SpecModel):
    type: Literal["enabled", "disabled"]
    model: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _model_when_enabled(self) -> MultiagentAdvisor:
        if self.type == "enabled" and self.model is None:
            fail("an enabled advisor needs a model")
        if self.type == "disabled" and self.model is not None:
            fail("a disabled advisor takes no model", "model", point="key")
        return self


class MultiagentMembers(SpecModel):
    """Subagents or workflows: enabled (with inline/predefined agents) or disabled."""

    type: Literal["enabled", "disabled"]
    inline_agents: InlineAgents | None = None
    predefined_agents: Annotated[list[PredefinedAgent], Field(max_length=20)] | None = None  # type: ignore[valid-type]


class Multiagent20261001(SpecModel):
    """Multiagent settings: advisor (default disabled), subagents and workflows (default enabled)."""

    type: Literal["multiagent_20261001"]
    advisor: MultiagentAdvisor | None = None
    subagents: MultiagentMembers | None = None
    workflows: MultiagentMembers | None = None


Multiagent = Annotated[Coordinator | Multiagent20261001, Field(discriminator="type")]


class AgentSpec(SpecModel):
    """Desired state of an agent: the create fields of POST /v1/agents."""

    name: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None, description="Remote name; defaults to the document name."
    )
    model: ModelRef = Field(  # type: ignore[valid-type]
        description="Model id (e.g. claude-sonnet-4-6) or {id, effort, inference_geo, speed}."
    )
    system: (
        Annotated[
            str,
            Field(max_length=100_000),
            WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 100_000}, FILE_FORM_SCHEMA]}),
        ]
        | None
    ) = Field(
        default=None,
        description="System prompt (<= 100,000 characters), or {from_file: PATH} to keep a "
        "long prompt in its own file (relative to this manifest file).",
    )
    description: Annotated[str, Field(max_length=2048)] | None = None
    tools: Annotated[list[Tool], Field(max_length=MAX_TOOLS)] | None = None
    mcp_servers: Annotated[list[McpServer], Field(max_length=MAX_MCP_SERVERS)] | None = None
    skills: Annotated[list[AgentSkill], Field(max_length=MAX_SKILLS)] | None = Field(
        default=None,
        description="{ref: NAME, version?} for a Skill manifest; {type: anthropic, skill_id} "
        "or {type: custom, skill_id, version?} as on the wire.",
    )
    execution_identity: ExecutionIdentity | None = None
    multiagent: Multiagent | None = None
    metadata: Metadata | None = None

    def references(self) -> list[tuple[str, str, tuple[str | int, ...]]]:
        """``(kind, name, spec path)`` of every manifest this agent refers to (its skills)."""
        return [
            ("Skill", s.ref, ("skills", i, "ref"))
            for i, s in enumerate(self.skills or ())
            if isinstance(s, SkillRef)
        ]

    def roster_ids(self) -> list[tuple[str, tuple[str | int, ...]]]:
        """``(agent id, spec path)`` of every agent its multiagent settings name by id."""
        multiagent = self.multiagent
        entries: list[tuple[tuple[str | int, ...], object]]
        if isinstance(multiagent, Coordinator):
            entries = [(("multiagent", "agents", i), e) for i, e in enumerate(multiagent.agents)]
        elif isinstance(multiagent, Multiagent20261001):
            entries = [
                (("multiagent", group, "predefined_agents", i), entry)
                for group in ("subagents", "workflows")
                for members in [getattr(multiagent, group)]
                if members is not None
                for i, entry in enumerate(members.predefined_agents or ())
            ]
        else:
            entries = []
        return [(entry, path) for path, entry in entries if isinstance(entry, str)]

    # a field validator: it runs (and is said) beside the errors of the other fields
    @field_validator("skills")
    @classmethod
    def _skills_once(cls, value: list[AgentSkill] | None) -> list[AgentSkill] | None:
        # the same skill twice is a mistake (which version would the agent load?)
        skills = value or ()
        keys = [
            f"ref:{s.ref}" if isinstance(s, SkillRef) else f"{s.type}:{s.skill_id}" for s in skills
        ]
        fail_each(
            (f"skill {skill.ref} is listed twice; keep one", (index, "ref"))
            if isinstance(skill, SkillRef)
            else (f"skill {skill.skill_id} is listed twice; keep one", (index, "skill_id"))
            for index, skill in ((index, skills[index]) for index in repeats(keys))
        )
        return value

    @model_validator(mode="after")
    def _mcp_servers_match_toolsets(self) -> AgentSpec:
        toolsets = [
            (index, tool.mcp_server_name)
            for index, tool in enumerate(self.tools or ())
            if isinstance(tool, McpToolset)
        ]
        servers = [server.name for server in self.mcp_servers or ()]
        fail_each(mcp_server_problems(servers, toolsets))
        return self

    # a field validator: it runs (and is said) beside the errors of the other fields
    @field_validator("tools")
    @classmethod
    def _custom_tools_unique(cls, tools: list[Tool] | None) -> list[Tool] | None:
        # one entry per tool, so that an index is the tool's place in ``tools``
        custom = [tool.name if isinstance(tool, CustomTool) else None for tool in tools or ()]
        kinds = [tool.type if isinstance(tool, AgentToolset) else None for tool in tools or ()]
        fail_each(tool_repeats(custom, kinds))
        counted = sum(
            len(BUILTIN_TOOLSET_TOOLS)
            if isinstance(tool, AgentToolset)
            else len(tool.configs or ())
            if isinstance(tool, McpToolset)
            else 1
            for tool in tools or ()
        )
        if counted > MAX_TOOLS:
            fail(
                f"an agent has at most {MAX_TOOLS} tools across all toolsets; these declare "
                f"{counted} (the built-in toolset counts its {len(BUILTIN_TOOLSET_TOOLS)} tools)"
            )
        for index, tool in enumerate(tools or ()):
            if not isinstance(tool, AgentToolset):
                continue
            for cindex, config in enumerate(tool.configs or ()):
                sources = config.url_sources if isinstance(config, WebFetchToolConfig) else None
                client = sources.client_tool_results if sources else None
                if not isinstance(client, UrlSourceOnly | UrlSourceExcept):
                    continue
                for rindex, ref in enumerate(client.tools):
                    if ref.name not in custom:
                        fail(
                            f"client_tool_results names '{ref.name}', which is not a custom "
                            "tool of this agent",
                            index,
                            "configs",
                            cindex,
                            "url_sources",
                            "client_tool_results",
                            "tools",
                            rindex,
                            "name",
                        )
        return tools


def tool_repeats(
    custom: Sequence[str | None], toolsets: Sequence[str | None]
) -> list[tuple[str, tuple[str | int, ...]]]:
    """``(message, path below tools)`` of each custom tool name (``custom``, by index in
    ``tools``) and each built-in toolset (``toolsets``: its type, by index) declared again."""
    twice = "is declared twice; configure every built-in tool in one entry"
    problems: list[tuple[str, tuple[str | int, ...]]] = [
        (f"custom tool '{custom[i]}' is declared twice", (i, "name")) for i in repeats(custom)
    ]
    return problems + [(f"{toolsets[i]} {twice}", (i, "type")) for i in repeats(toolsets)]


def mcp_server_problems(
    servers: Sequence[str], toolsets: Sequence[tuple[int, str]], *, every_tool: bool = True
) -> list[tuple[str, tuple[str | int, ...]]]:
    """``(message, spec path)`` of each mismatch between an agent's MCP server names
    (``servers``, in order) and the ``(index in tools, mcp_server_name)`` of its MCP
    toolsets: a name declared twice, a toolset naming no server and (when ``toolsets`` are
    ``every_tool`` of them) a server no toolset uses."""
    problems: list[tuple[str, tuple[str | int, ...]]] = [
        (
            f"MCP server name '{servers[index]}' is declared twice; names must be unique",
            ("mcp_servers", index, "name"),
        )
        for index in repeats(servers)
    ]
    twice = set(repeats(servers))  # said once, as declared twice
    problems += [
        (_unknown_server(name, list(dict.fromkeys(servers))), ("tools", index, "mcp_server_name"))
        for index, name in toolsets
        if name not in servers
    ]
    referenced = {name for _, name in toolsets}
    # a server a misspelt name is taken for is said in its did-you-mean, not as unused too
    referenced |= {
        close
        for _, name in toolsets
        if name not in servers
        for close in get_close_matches(name, list(servers), n=1)
    }
    problems += [
        (
            (
                f"MCP server '{name}' is not used by any tool; add "
                f"{{type: mcp_toolset, mcp_server_name: {name}}} to tools or remove it"
            ),
            ("mcp_servers", index),
        )
        for index, name in enumerate(servers)
        if every_tool and name not in referenced and index not in twice
    ]
    return problems


def _unknown_server(name: str, servers: list[str]) -> str:
    message = f"mcp_server_name '{name}' does not match any entry of mcp_servers"
    close = get_close_matches(name, servers, n=1)
    if close:
        return message + f"; did you mean '{close[0]}'?"
    if servers:
        return message + f" (declared: {', '.join(servers)})"
    return message + "; declare it under mcp_servers: [{type: url, name, url}]"
