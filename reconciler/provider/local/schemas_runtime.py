"""Request bodies of the runtime plane: sessions, session events, deployments.

Same conventions as ``schemas``: validation and OpenAPI documentation only, unknown fields
rejected, handlers read ``model_dump(exclude_unset=True)``.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal

from pydantic import Field, StringConstraints, model_validator

from .schemas import (
    McpServers,
    Metadata,
    MetadataPatch,
    MetadataT,
    ModelIn,
    Name,
    Skills,
    Text,
    Tools,
)
from .schemas_nested import Body, CheckoutIn, MessageBlocks, ResultBlocks, RubricIn, SystemBlocks

ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Version = Annotated[int, Field(ge=1, le=2**31)]

# -- events ----------------------------------------------------------------------------


class UserMessageIn(Body):
    type: Literal["user.message"]
    content: MessageBlocks


class UserInterruptIn(Body):
    type: Literal["user.interrupt"]
    session_thread_id: ObjectId | None = None


class UserToolConfirmationIn(Body):
    type: Literal["user.tool_confirmation"]
    tool_use_id: ObjectId
    result: Literal["allow", "deny"]
    deny_message: Annotated[str, StringConstraints(max_length=10_000)] | None = None

    @model_validator(mode="after")
    def _deny_only(self) -> UserToolConfirmationIn:
        if self.deny_message is not None and self.result != "deny":
            raise ValueError("deny_message is only allowed when result is 'deny'")
        return self


class UserCustomToolResultIn(Body):
    type: Literal["user.custom_tool_result"]
    custom_tool_use_id: ObjectId
    content: ResultBlocks | None = None
    is_error: bool | None = None


class UserToolResultIn(Body):
    type: Literal["user.tool_result"]
    tool_use_id: ObjectId
    content: ResultBlocks | None = None
    is_error: bool | None = None


class UserDefineOutcomeIn(Body):
    type: Literal["user.define_outcome"]
    description: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    rubric: RubricIn
    max_iterations: Annotated[int, Field(ge=1, le=20)] | None = None


class SystemMessageIn(Body):
    type: Literal["system.message"]
    content: SystemBlocks


EventIn = Annotated[
    UserMessageIn
    | UserInterruptIn
    | UserToolConfirmationIn
    | UserCustomToolResultIn
    | UserToolResultIn
    | UserDefineOutcomeIn
    | SystemMessageIn,
    Field(discriminator="type"),
]


class EventsSend(Body):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=100)]


SessionInitialEvent = Annotated[UserMessageIn | UserDefineOutcomeIn, Field(discriminator="type")]
DeploymentInitialEvent = Annotated[
    UserMessageIn | UserDefineOutcomeIn | SystemMessageIn, Field(discriminator="type")
]

# -- shared pieces ---------------------------------------------------------------------


class AgentRefIn(Body):
    type: Literal["agent"]
    id: ObjectId
    version: Version | None = None


class AgentWithOverridesIn(Body):
    type: Literal["agent_with_overrides"]
    id: ObjectId
    version: Version | None = None
    model: ModelIn | None = None
    system: Annotated[str, StringConstraints(max_length=100_000)] | None = None
    tools: Tools | None = None
    mcp_servers: McpServers | None = None
    skills: Skills | None = None


class MoneyIn(Body):
    amount: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}$")]
    currency: Literal["USD"]


class BudgetIn(Body):
    type: Literal["limit"]
    max_list_cost: MoneyIn


Path_ = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class GithubRepositoryIn(Body):
    type: Literal["github_repository"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    authorization_token: Annotated[str, StringConstraints(max_length=65_536)] | None = None
    checkout: CheckoutIn | None = None
    mount_path: Path_ | None = None


class FileResourceIn(Body):
    type: Literal["file"]
    file_id: ObjectId
    mount_path: Path_ | None = None


class MemoryStoreResourceIn(Body):
    type: Literal["memory_store"]
    memory_store_id: ObjectId
    access: Literal["read_write", "read_only"] | None = None
    instructions: Annotated[str, StringConstraints(max_length=4096)] | None = None


ResourceIn = Annotated[
    GithubRepositoryIn | FileResourceIn | MemoryStoreResourceIn, Field(discriminator="type")
]
VaultIds = Annotated[list[ObjectId], Field(max_length=50)]


class SessionResourceAdd(Body):
    """``POST /v1/sessions/{id}/resources``: only a file is added after creation."""

    type: Literal["file"]
    file_id: ObjectId
    mount_path: Path_ | None = None


class SessionResourceUpdate(Body):
    """``POST /v1/sessions/{id}/resources/{resource_id}``: a GitHub token's rotation."""

    authorization_token: Annotated[str, StringConstraints(min_length=1, max_length=65_536)]


# -- sessions --------------------------------------------------------------------------

SessionAgentIn = (
    ObjectId | Annotated[AgentRefIn | AgentWithOverridesIn, Field(discriminator="type")]
)


class SessionCreate(Body):
    agent: SessionAgentIn
    environment_id: ObjectId
    budget: BudgetIn | None = None
    initial_events: Annotated[list[SessionInitialEvent], Field(max_length=50)] | None = None
    metadata: Metadata | None = None
    resources: Annotated[list[ResourceIn], Field(max_length=100)] | None = None
    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    vault_ids: VaultIds | None = None


class SessionAgentUpdate(Body):
    tools: Tools | None = None
    mcp_servers: McpServers | None = None


class SessionUpdate(Body):
    agent: SessionAgentUpdate | None = None
    budget: BudgetIn | None = None
    metadata: MetadataPatch | None = None
    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    vault_ids: VaultIds | None = None


# -- deployments -----------------------------------------------------------------------


class ScheduleIn(Body):
    type: Literal["cron"]
    expression: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)]


DeploymentAgentIn = ObjectId | AgentRefIn
InitialEvents = Annotated[list[DeploymentInitialEvent], Field(min_length=1, max_length=50)]
Resources = Annotated[list[ResourceIn], Field(max_length=500)]


class _DeploymentFields(Body, Generic[MetadataT]):
    """A deployment's fields, as create and update send them (see ``schemas.MetadataT``)."""

    agent: DeploymentAgentIn | None = None
    environment_id: ObjectId | None = None
    initial_events: InitialEvents | None = None
    name: Name | None = None
    budget: BudgetIn | None = None
    description: Text | None = None
    metadata: MetadataT | None = None
    resources: Resources | None = None
    schedule: ScheduleIn | None = None
    vault_ids: VaultIds | None = None


class DeploymentCreate(_DeploymentFields[Metadata]):
    agent: DeploymentAgentIn
    environment_id: ObjectId
    initial_events: InitialEvents
    name: Name


class DeploymentUpdate(_DeploymentFields[MetadataPatch]):
    pass
