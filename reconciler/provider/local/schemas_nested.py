"""Nested request shapes, as the SDK (2.10.0) declares them: content blocks, rubrics,
repository checkouts, multiagent configs, a custom tool's ``input_schema`` and the web tools'
options.

Validation only, like ``schemas``: every object refuses fields the SDK does not declare
(``extra="forbid"``), and the shorthands the SDK accepts in requests are turned into the
objects its responses declare (a web fetch ``url_sources`` filter ``"all"`` is stored as
``{"type": "all"}``), so what is echoed back passes the SDK's strict validation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


class Body(BaseModel):
    """A request body (or a part of one): unknown fields are a 400."""

    model_config = ConfigDict(extra="forbid")


Str = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ModelId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
LongText = Annotated[str, StringConstraints(max_length=10_000_000)]

# -- content blocks ------------------------------------------------------------------------


class TextBlockIn(Body):
    type: Literal["text"]
    text: LongText


class Base64SourceIn(Body):
    type: Literal["base64"]
    data: LongText
    media_type: Str


class UrlSourceIn(Body):
    type: Literal["url"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class FileSourceIn(Body):
    type: Literal["file"]
    file_id: Id


class PlainTextSourceIn(Body):
    type: Literal["text"]
    data: LongText
    media_type: Literal["text/plain"]


class ImageBlockIn(Body):
    type: Literal["image"]
    source: Annotated[Base64SourceIn | UrlSourceIn | FileSourceIn, Field(discriminator="type")]


class DocumentBlockIn(Body):
    type: Literal["document"]
    source: Annotated[
        Base64SourceIn | PlainTextSourceIn | UrlSourceIn | FileSourceIn,
        Field(discriminator="type"),
    ]
    context: LongText | None = None
    title: Annotated[str, StringConstraints(max_length=4096)] | None = None


class RedactedBlockIn(Body):
    type: Literal["redacted"]


class SearchResultTextIn(Body):
    type: Literal["text"]
    text: LongText


class CitationsIn(Body):
    enabled: bool


class SearchResultBlockIn(Body):
    type: Literal["search_result"]
    citations: CitationsIn
    content: Annotated[list[SearchResultTextIn], Field(max_length=1000)]
    source: Str
    title: Str


MessageBlock = Annotated[
    TextBlockIn | ImageBlockIn | DocumentBlockIn | RedactedBlockIn, Field(discriminator="type")
]
ResultBlock = Annotated[
    TextBlockIn | ImageBlockIn | DocumentBlockIn | SearchResultBlockIn,
    Field(discriminator="type"),
]
MessageBlocks = Annotated[list[MessageBlock], Field(min_length=1, max_length=1000)]
ResultBlocks = Annotated[list[ResultBlock], Field(max_length=1000)]
SystemBlocks = Annotated[list[TextBlockIn], Field(min_length=1, max_length=1000)]

# -- outcomes --------------------------------------------------------------------------------


class TextRubricIn(Body):
    type: Literal["text"]
    content: Annotated[str, StringConstraints(min_length=1, max_length=262_144)]


class FileRubricIn(Body):
    type: Literal["file"]
    file_id: Id


RubricIn = Annotated[TextRubricIn | FileRubricIn, Field(discriminator="type")]

# -- session resources -----------------------------------------------------------------------


class BranchCheckoutIn(Body):
    type: Literal["branch"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]


class CommitCheckoutIn(Body):
    type: Literal["commit"]
    sha: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{4,64}$")]


CheckoutIn = Annotated[BranchCheckoutIn | CommitCheckoutIn, Field(discriminator="type")]

# -- tools -----------------------------------------------------------------------------------


class InputSchemaIn(Body):
    """A custom tool's JSON Schema: an object schema; other JSON Schema keywords pass."""

    model_config = ConfigDict(extra="allow")

    type: Literal["object"]
    properties: dict[str, Any] | None = None
    required: list[str] | None = None


class UrlSourceAll(Body):
    type: Literal["all"]


class UrlSourceNone(Body):
    type: Literal["none"]


class ToolReferenceIn(Body):
    type: Literal["tool_reference"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _distinct(tools: list[ToolReferenceIn]) -> list[ToolReferenceIn]:
    names = [t.name for t in tools]
    if len(names) != len(set(names)):
        raise ValueError("tools must name each tool once")
    return tools


#: "Between 1 and 128 entries, each with a different name. An empty list is rejected."
ToolRefs = Annotated[
    list[ToolReferenceIn], Field(min_length=1, max_length=128), AfterValidator(_distinct)
]


class UrlSourceOnly(Body):
    type: Literal["only"]
    tools: ToolRefs


class UrlSourceExcept(Body):
    type: Literal["except"]
    tools: ToolRefs


ToolFilter = Annotated[
    UrlSourceAll | UrlSourceNone | UrlSourceOnly | UrlSourceExcept, Field(discriminator="type")
]
UserInputFilter = Annotated[UrlSourceAll | UrlSourceNone, Field(discriminator="type")]


def _expand_shorthand(value: Any) -> Any:
    """``"all"`` / ``"none"`` (the request shorthand) -> the object the response declares."""
    return {"type": value} if value in ("all", "none") else value


class UrlSourcesIn(Body):
    client_tool_results: ToolFilter | None = None
    server_tool_results: ToolFilter | None = None
    user_input: UserInputFilter | None = None

    @field_validator("client_tool_results", "server_tool_results", "user_input", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _expand_shorthand(value)


class UserLocationIn(Body):
    type: Literal["approximate"]
    city: Annotated[str, StringConstraints(max_length=255)] | None = None
    country: Annotated[str, StringConstraints(max_length=255)] | None = None
    region: Annotated[str, StringConstraints(max_length=255)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=255)] | None = None


# -- multiagent ------------------------------------------------------------------------------


class AgentEntryIn(Body):
    type: Literal["agent"]
    id: Id
    version: Annotated[int, Field(ge=1, le=2**31)] | None = None


class SelfEntryIn(Body):
    type: Literal["self"]


class AdvisorEntryIn(Body):
    type: Literal["advisor"]
    model: ModelId


RosterEntry = (
    Id | Annotated[AgentEntryIn | SelfEntryIn | AdvisorEntryIn, Field(discriminator="type")]
)
PredefinedEntry = Id | Annotated[AgentEntryIn | SelfEntryIn, Field(discriminator="type")]


class CoordinatorIn(Body):
    type: Literal["coordinator"]
    agents: Annotated[list[RosterEntry], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _one_self(self) -> CoordinatorIn:
        if sum(isinstance(a, SelfEntryIn) for a in self.agents) > 1:
            raise ValueError('a roster holds {"type": "self"} at most once')
        return self


class InlineAgentsIn(Body):
    type: Literal["enabled", "disabled"]


class MembersEnabledIn(Body):
    type: Literal["enabled"]
    inline_agents: InlineAgentsIn | None = None
    predefined_agents: Annotated[list[PredefinedEntry], Field(max_length=20)] | None = None


class MembersDisabledIn(Body):
    type: Literal["disabled"]


class AdvisorEnabledIn(Body):
    type: Literal["enabled"]
    model: ModelId


class AdvisorDisabledIn(Body):
    type: Literal["disabled"]


MembersIn = Annotated[MembersEnabledIn | MembersDisabledIn, Field(discriminator="type")]


class Multiagent20261001In(Body):
    type: Literal["multiagent_20261001"]
    advisor: Annotated[AdvisorEnabledIn | AdvisorDisabledIn, Field(discriminator="type")] | None = (
        None
    )
    subagents: MembersIn | None = None
    workflows: MembersIn | None = None


MultiagentIn = Annotated[CoordinatorIn | Multiagent20261001In, Field(discriminator="type")]
