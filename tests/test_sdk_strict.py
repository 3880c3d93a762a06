"""Every route of the local provider answers what the official SDK declares, strictly.

The SDK (``anthropic`` 2.10.0) drives each route over loopback TCP; a recording transport
under it keeps every response body, and each is checked against the SDK's own model of that
route with strict validation and no undeclared field anywhere inside
(``Model.model_validate_json(body, strict=True)``: JSON mode, because a strict check of a
parsed dict would refuse every timestamp, which JSON can only carry as a string). Error
bodies are checked against the SDK's ``BetaErrorResponse`` the same way.

One ``Route`` entry per route (skills and memory stores included): its method and path as the
app declares them, the SDK model of its answer and a ``drive`` that calls it through the SDK.
A route the app serves without an entry fails ``test_every_route_of_the_app_has_an_entry``,
so a new route comes with its entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import BetaErrorResponse
from anthropic.types.beta import (
    BetaDeletedFile,
    BetaDeletedSkill,
    BetaEnvironment,
    BetaEnvironmentDeleteResponse,
    BetaFileMetadata,
    BetaManagedAgentsAgent,
    BetaManagedAgentsCustomToolInputSchema,
    BetaManagedAgentsDeletedMemoryStore,
    BetaManagedAgentsDeletedSession,
    BetaManagedAgentsDeletedVault,
    BetaManagedAgentsDeployment,
    BetaManagedAgentsDeploymentRun,
    BetaManagedAgentsMemoryStore,
    BetaManagedAgentsMultiagent,
    BetaManagedAgentsSession,
    BetaManagedAgentsVault,
    BetaSkill,
)
from anthropic.types.beta.memory_stores import (
    BetaManagedAgentsDeletedMemory,
    BetaManagedAgentsMemory,
    BetaManagedAgentsMemoryListItem,
    BetaManagedAgentsMemoryVersion,
)
from anthropic.types.beta.sessions import (
    BetaManagedAgentsDeleteSessionResource,
    BetaManagedAgentsFileResource,
    BetaManagedAgentsSendSessionEvents,
    BetaManagedAgentsSessionEvent,
    BetaManagedAgentsSessionResource,
    BetaManagedAgentsStreamSessionEvents,
    ResourceRetrieveResponse,
    ResourceUpdateResponse,
)
from anthropic.types.beta.skills import BetaDeletedSkillVersion, BetaSkillVersion
from anthropic.types.beta.vaults import (
    BetaManagedAgentsCredential,
    BetaManagedAgentsCredentialValidation,
    BetaManagedAgentsDeletedCredential,
)
from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler.provider.local import BackgroundServer, create_app

pytestmark = pytest.mark.tcp


@dataclass(frozen=True)
class Zip:
    """A binary answer (a skill version's content): a zip archive, not JSON."""


@dataclass(frozen=True)
class Raw:
    """A binary answer (a file's content): exactly these bytes."""

    content: bytes


FILE_BYTES = b"id,score\n1,0.5\n"


MESSAGE = {"type": "user.message", "content": [{"type": "text", "text": "ping"}]}


# -- what the SDK declares ------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A list answer: ``data`` of ``item`` plus the cursor fields (``prev_page`` when
    ``bidirectional``)."""

    item: Any
    bidirectional: bool = False


#: Objects the SDK declares open: a custom tool's ``input_schema`` is a JSON Schema, whose other
#: keywords (``additionalProperties``...) its params declare as ``extra_items=object``.
OPEN_MODELS = (BetaManagedAgentsCustomToolInputSchema,)


def undeclared(value: Any, where: str = "") -> list[str]:
    """Paths of the fields inside a validated SDK object that its models do not declare
    (the SDK's models allow extras, so a strict validation alone lets them through)."""
    found: list[str] = []
    if isinstance(value, OPEN_MODELS):
        return found
    if isinstance(value, BaseModel):
        for name in value.__pydantic_extra__ or {}:
            found.append(f"{where}.{name}".lstrip("."))
        for name in type(value).model_fields:
            found.extend(undeclared(getattr(value, name), f"{where}.{name}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(undeclared(item, f"{where}[{i}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(undeclared(item, f"{where}.{key}"))
    return found


def strictly(model: Any, body: str | bytes) -> Any:
    """``body`` validated as ``model`` in strict mode, refusing undeclared fields."""
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    value = adapter.validate_json(body, strict=True)
    extra = undeclared(value)
    assert not extra, f"fields the SDK does not declare: {extra}"
    return value


def check_body(model: Any, body: bytes) -> None:
    if isinstance(model, Zip):
        assert body.startswith(b"PK"), "not a zip archive"
    elif isinstance(model, Raw):
        assert body == model.content, "not the uploaded bytes"
    elif isinstance(model, Page):
        page = TypeAdapter(dict[str, Any]).validate_json(body)
        keys = {"data", "next_page"} | ({"prev_page"} if model.bidirectional else set())
        assert set(page) == keys, f"page fields {sorted(page)}, expected {sorted(keys)}"
        assert page["next_page"] is None or isinstance(page["next_page"], str)
        strictly(list[model.item], TypeAdapter(Any).dump_json(page["data"]).decode())
    else:
        strictly(model, body)


def _key(resource: Any) -> str:
    """The id a session resource is addressed by (a memory store's carries none: its store's)."""
    return str(getattr(resource, "id", None) or resource.memory_store_id)


def sse_payloads(text: str) -> list[str]:
    """The ``data`` of every SSE frame but pings (the SDK skips those)."""
    payloads = []
    for frame in text.split("\n\n"):
        lines = frame.splitlines()
        event = next((ln[6:].strip() for ln in lines if ln.startswith("event:")), None)
        data = "\n".join(ln[5:].lstrip() for ln in lines if ln.startswith("data:"))
        if data and event != "ping":
            payloads.append(data)
    return payloads


# -- recording what the provider sent ----------------------------------------------------------


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes


class _Tee(httpx2.SyncByteStream):
    """A streamed body passed through as it arrives and recorded when it is closed."""

    def __init__(self, inner: httpx2.SyncByteStream, done: Callable[[bytes], None]) -> None:
        self.inner, self.done, self.chunks = inner, done, bytearray()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.chunks.extend(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()
        self.done(bytes(self.chunks))


class Recorder(httpx2.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx2.HTTPTransport()
        self.seen: list[Exchange] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        ctype = response.headers.get("content-type", "")

        def record(body: bytes) -> None:
            self.seen.append(
                Exchange(request.method, request.url.path, response.status_code, ctype, body)
            )

        if "text/event-stream" in ctype:
            assert isinstance(response.stream, httpx2.SyncByteStream)
            response.stream = _Tee(response.stream, record)
            return response
        body = response.read()
        record(body)
        return httpx2.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    def close(self) -> None:
        self.inner.close()


# -- the objects the routes need, made on first use ------------------------------------------------


@dataclass
class World:
    sdk: anthropic.Anthropic
    made: dict[str, str] = field(default_factory=dict)

    def _once(self, key: str, make: Callable[[], str]) -> str:
        if key not in self.made:
            self.made[key] = make()
        return self.made[key]

    def helper(self) -> str:
        return self._once(
            "helper",
            lambda: (
                self.sdk.beta.agents.create(
                    name="helper",
                    model="claude-haiku-4-5",
                    system="You help.",
                    tools=[
                        {
                            "type": "custom",
                            "name": "lookup",
                            "description": "d",
                            "input_schema": {"type": "object", "properties": {}},
                        }
                    ],
                ).id
            ),
        )

    def agent(self) -> str:
        """A coordinator (``self`` in its roster) with the fields that have nested shapes."""
        return self._once(
            "agent",
            lambda: (
                self.sdk.beta.agents.create(
                    name="lead",
                    model={"id": "claude-sonnet-4-6", "effort": "medium"},
                    system="You lead.\nlocal-reply: done {text}",
                    tools=[
                        {
                            "type": "agent_toolset_20260401",
                            "default_config": {"permission_policy": {"type": "auto"}},
                            "configs": [
                                {
                                    "name": "web_fetch",
                                    "enabled": False,
                                    "url_sources": {
                                        "user_input": "all",
                                        "client_tool_results": "none",
                                        "server_tool_results": {
                                            "type": "only",
                                            "tools": [
                                                {"type": "tool_reference", "name": "web_search"}
                                            ],
                                        },
                                    },
                                    "max_content_tokens": 1000,
                                },
                                {
                                    "name": "web_search",
                                    "allowed_domains": ["example.com"],
                                    "user_location": {"type": "approximate", "city": "Paris"},
                                },
                                {"name": "bash", "permission_policy": {"type": "always_ask"}},
                            ],
                        },
                        {
                            "type": "mcp_toolset",
                            "mcp_server_name": "gh",
                            "configs": [{"name": "create_issue", "enabled": False}],
                        },
                        {
                            "type": "custom",
                            "name": "lookup",
                            "description": "Looks things up.",
                            "input_schema": {
                                "type": "object",
                                "properties": {"q": {"type": "string"}},
                                "required": ["q"],
                                "additionalProperties": False,
                            },
                        },
                    ],
                    execution_identity={
                        "type": "aws_role",
                        "role_arn": "arn:aws:iam::123456789012:role/agent",
                    },
                    mcp_servers=[{"type": "url", "name": "gh", "url": "https://mcp.example.com"}],
                    skills=[{"type": "anthropic", "skill_id": "xlsx"}],
                    multiagent={
                        "type": "coordinator",
                        "agents": [
                            self.helper(),
                            {"type": "self"},
                            {"type": "advisor", "model": "claude-opus-4-6"},
                        ],
                    },
                    metadata={"team": "infra"},
                ).id
            ),
        )

    def modern(self) -> str:
        """An agent with a ``multiagent_20261001`` config naming a predefined agent."""
        return self._once(
            "modern",
            lambda: (
                self.sdk.beta.agents.create(
                    name="modern",
                    model="claude-sonnet-4-6",
                    multiagent={
                        "type": "multiagent_20261001",
                        "advisor": {"type": "enabled", "model": "claude-opus-4-6"},
                        "subagents": {"type": "enabled", "predefined_agents": [self.helper()]},
                        "workflows": {"type": "disabled"},
                    },
                ).id
            ),
        )

    def env(self) -> str:
        return self._once("env", lambda: self.sdk.beta.environments.create(name="strict").id)

    def vault(self) -> str:
        return self._once("vault", lambda: self.sdk.beta.vaults.create(display_name="v").id)

    def credential(self) -> str:
        return self._once(
            "credential",
            lambda: (
                self.sdk.beta.vaults.credentials.create(
                    self.vault(),
                    display_name="oauth",
                    auth={
                        "type": "mcp_oauth",
                        "access_token": "a",
                        "mcp_server_url": "https://mcp.strict",
                        "refresh": {
                            "client_id": "c",
                            "refresh_token": "r",
                            "token_endpoint": "https://t",
                            "token_endpoint_auth": {"type": "none"},
                        },
                    },
                ).id
            ),
        )

    def session(self, key: str = "session", agent: str | None = None) -> str:
        return self._once(
            key,
            lambda: (
                self.sdk.beta.sessions.create(
                    agent=agent or self.agent(),
                    environment_id=self.env(),
                    vault_ids=[self.vault()],
                    resources=[
                        {
                            "type": "github_repository",
                            "url": "https://github.com/o/r",
                            "authorization_token": "t",
                            "checkout": {"type": "branch", "name": "main"},
                        },
                        {
                            "type": "memory_store",
                            "memory_store_id": self.store(),
                            "access": "read_only",
                            "instructions": "Read the notes first.",
                        },
                        {"type": "file", "file_id": self.file()},
                    ],
                    title="strict",
                ).id
            ),
        )

    def deployment(self) -> str:
        return self._once(
            "deployment",
            lambda: (
                self.sdk.beta.deployments.create(
                    name="nightly",
                    agent=self.agent(),
                    environment_id=self.env(),
                    vault_ids=[self.vault()],
                    initial_events=[
                        {
                            "type": "system.message",
                            "content": [{"type": "text", "text": "Be brief."}],
                        },
                        MESSAGE,
                        {
                            "type": "user.define_outcome",
                            "description": "a report",
                            "rubric": {"type": "text", "content": 'Says "done".'},
                            "max_iterations": 2,
                        },
                    ],
                    resources=[
                        {
                            "type": "github_repository",
                            "url": "https://github.com/o/r",
                            "authorization_token": "secret",
                            "checkout": {"type": "commit", "sha": "0123abcd"},
                            "mount_path": "/workspace/r",
                        },
                        {"type": "file", "file_id": self.file(), "mount_path": "/data/s.csv"},
                    ],
                    budget={"type": "limit", "max_list_cost": {"amount": "500", "currency": "USD"}},
                    schedule={"type": "cron", "expression": "0 3 * * *", "timezone": "UTC"},
                ).id
            ),
        )

    def skill(self, slug: str = "tidy-data") -> str:
        return self._once(
            f"skill:{slug}",
            lambda: self.sdk.beta.skills.create(files=[skill_file(slug)], display_name=slug).id,
        )

    def skill_version(self) -> str:
        return self._once(
            "skill_version",
            lambda: (
                self.sdk.beta.skills.versions.create(
                    self.skill(), files=[skill_file("tidy-data", "Now tidier.")]
                ).id
            ),
        )

    def file(self, key: str = "file") -> str:
        return self._once(
            key,
            lambda: self.sdk.beta.files.upload(file=("scores.csv", FILE_BYTES, "text/csv")).id,
        )

    def store(self) -> str:
        return self._once(
            "store",
            lambda: (
                self.sdk.beta.memory_stores.create(
                    name="notes", description="What the team learned.", metadata={"team": "infra"}
                ).id
            ),
        )

    def memory(self) -> str:
        return self._once(
            "memory",
            lambda: (
                self.sdk.beta.memory_stores.memories.create(
                    self.store(), path="/notes/first.md", content="first"
                ).id
            ),
        )

    def memory_version(self) -> str:
        self.memory()
        return next(iter(self.sdk.beta.memory_stores.memory_versions.list(self.store()))).id

    def run(self) -> str:
        return self._once("run", lambda: self.sdk.beta.deployments.run(self.deployment()).id)


# -- one entry per route ---------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    model: Any
    drive: Callable[[World], object]

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def matches(self, method: str, path: str) -> bool:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", self.path)
        return method == self.method and re.fullmatch(pattern, path) is not None


def skill_file(slug: str, description: str = "Does a thing.") -> tuple[str, bytes]:
    md = f"---\nname: {slug}\ndescription: {description}\n---\n# {slug}\n"
    return (f"{slug}/SKILL.md", md.encode())


def _stream(w: World) -> None:
    sid = w.session("streamed", w.helper())
    with w.sdk.beta.sessions.events.stream(sid) as stream:
        w.sdk.beta.sessions.events.send(sid, events=[MESSAGE])
        for event in stream:
            if event.type == "session.status_idle":
                break


def _outcome(w: World) -> None:
    sid = w.session()
    w.sdk.beta.sessions.events.send(
        sid,
        events=[
            MESSAGE,
            {
                "type": "user.define_outcome",
                "description": "a reply",
                "rubric": {"type": "text", "content": 'Says "done".'},
            },
        ],
    )


def _events(w: World) -> None:
    _outcome(w)
    list(w.sdk.beta.sessions.events.list(w.session(), limit=3))


A, E, V = "/v1/agents", "/v1/environments", "/v1/vaults"
C = "/v1/vaults/{vault_id}/credentials"
S, D = "/v1/sessions", "/v1/deployments"
K, M, F = "/v1/skills", "/v1/memory_stores", "/v1/files"

ROUTES: tuple[Route, ...] = (
    Route("POST", A, BetaManagedAgentsAgent, lambda w: (w.agent(), w.modern())),
    Route(
        "GET",
        A + "/{agent_id}",
        BetaManagedAgentsAgent,
        lambda w: (
            w.sdk.beta.agents.retrieve(w.agent()),
            w.sdk.beta.agents.retrieve(w.modern(), version=1),
        ),
    ),
    Route(
        "POST",
        A + "/{agent_id}",
        BetaManagedAgentsAgent,
        lambda w: w.sdk.beta.agents.update(w.agent(), description="updated"),
    ),
    Route(
        "GET",
        A,
        Page(BetaManagedAgentsAgent),
        lambda w: (w.agent(), w.modern(), list(w.sdk.beta.agents.list(limit=2))),
    ),
    Route(
        "POST",
        A + "/{agent_id}/archive",
        BetaManagedAgentsAgent,
        lambda w: w.sdk.beta.agents.archive(
            w.sdk.beta.agents.create(name="gone", model="claude-haiku-4-5").id
        ),
    ),
    Route(
        "GET",
        A + "/{agent_id}/versions",
        Page(BetaManagedAgentsAgent),
        lambda w: list(w.sdk.beta.agents.versions.list(w.agent())),
    ),
    Route(
        "POST",
        E,
        BetaEnvironment,
        lambda w: w.sdk.beta.environments.create(
            name="limited",
            config={
                "type": "cloud",
                "networking": {
                    "type": "limited",
                    "allowed_hosts": ["pypi.org"],
                    "allow_package_managers": True,
                },
                "packages": {"pip": ["pandas"]},
            },
        ),
    ),
    Route(
        "GET",
        E + "/{environment_id}",
        BetaEnvironment,
        lambda w: w.sdk.beta.environments.retrieve(w.env()),
    ),
    Route(
        "POST",
        E + "/{environment_id}",
        BetaEnvironment,
        lambda w: w.sdk.beta.environments.update(w.env(), description="d"),
    ),
    Route(
        "GET", E, Page(BetaEnvironment), lambda w: (w.env(), list(w.sdk.beta.environments.list()))
    ),
    Route(
        "POST",
        E + "/{environment_id}/archive",
        BetaEnvironment,
        lambda w: w.sdk.beta.environments.archive(
            w.sdk.beta.environments.create(name="archived").id
        ),
    ),
    Route(
        "DELETE",
        E + "/{environment_id}",
        BetaEnvironmentDeleteResponse,
        lambda w: w.sdk.beta.environments.delete(w.sdk.beta.environments.create(name="deleted").id),
    ),
    Route("POST", V, BetaManagedAgentsVault, lambda w: w.vault()),
    Route(
        "GET",
        V + "/{vault_id}",
        BetaManagedAgentsVault,
        lambda w: w.sdk.beta.vaults.retrieve(w.vault()),
    ),
    Route(
        "POST",
        V + "/{vault_id}",
        BetaManagedAgentsVault,
        lambda w: w.sdk.beta.vaults.update(w.vault(), metadata={"k": "v"}),
    ),
    Route(
        "GET",
        V,
        Page(BetaManagedAgentsVault),
        lambda w: (w.vault(), list(w.sdk.beta.vaults.list())),
    ),
    Route(
        "POST",
        V + "/{vault_id}/archive",
        BetaManagedAgentsVault,
        lambda w: w.sdk.beta.vaults.archive(w.sdk.beta.vaults.create(display_name="a").id),
    ),
    Route(
        "DELETE",
        V + "/{vault_id}",
        BetaManagedAgentsDeletedVault,
        lambda w: w.sdk.beta.vaults.delete(w.sdk.beta.vaults.create(display_name="d").id),
    ),
    Route(
        "POST",
        C,
        BetaManagedAgentsCredential,
        lambda w: (
            w.credential(),
            w.sdk.beta.vaults.credentials.create(
                w.vault(),
                auth={
                    "type": "environment_variable",
                    "secret_name": "TOKEN",
                    "secret_value": "s",
                    "networking": {"type": "limited", "allowed_hosts": ["api.x"]},
                },
            ),
        ),
    ),
    Route(
        "GET",
        C + "/{credential_id}",
        BetaManagedAgentsCredential,
        lambda w: w.sdk.beta.vaults.credentials.retrieve(w.credential(), vault_id=w.vault()),
    ),
    Route(
        "POST",
        C + "/{credential_id}",
        BetaManagedAgentsCredential,
        lambda w: w.sdk.beta.vaults.credentials.update(
            w.credential(), vault_id=w.vault(), display_name="renamed"
        ),
    ),
    Route(
        "GET",
        C,
        Page(BetaManagedAgentsCredential),
        lambda w: (w.credential(), list(w.sdk.beta.vaults.credentials.list(w.vault()))),
    ),
    Route(
        "POST",
        C + "/{credential_id}/archive",
        BetaManagedAgentsCredential,
        lambda w: w.sdk.beta.vaults.credentials.archive(
            w.sdk.beta.vaults.credentials.create(
                w.vault(),
                auth={"type": "static_bearer", "token": "t", "mcp_server_url": "https://a"},
            ).id,
            vault_id=w.vault(),
        ),
    ),
    Route(
        "DELETE",
        C + "/{credential_id}",
        BetaManagedAgentsDeletedCredential,
        lambda w: w.sdk.beta.vaults.credentials.delete(
            w.sdk.beta.vaults.credentials.create(
                w.vault(),
                auth={"type": "static_bearer", "token": "t", "mcp_server_url": "https://d"},
            ).id,
            vault_id=w.vault(),
        ),
    ),
    Route(
        "POST",
        C + "/{credential_id}/mcp_oauth_validate",
        BetaManagedAgentsCredentialValidation,
        lambda w: w.sdk.beta.vaults.credentials.mcp_oauth_validate(
            w.credential(), vault_id=w.vault()
        ),
    ),
    Route(
        "POST",
        S,
        BetaManagedAgentsSession,
        lambda w: (
            w.session(),
            w.session("modern", w.modern()),
            w.sdk.beta.sessions.create(
                agent={"type": "agent_with_overrides", "id": w.helper(), "system": "overridden"},
                environment_id=w.env(),
                initial_events=[MESSAGE],
            ),
        ),
    ),
    Route(
        "GET",
        S + "/{session_id}",
        BetaManagedAgentsSession,
        lambda w: (_outcome(w), w.sdk.beta.sessions.retrieve(w.session())),
    ),
    Route(
        "POST",
        S + "/{session_id}",
        BetaManagedAgentsSession,
        lambda w: w.sdk.beta.sessions.update(w.session(), title="t2", metadata={"a": "b"}),
    ),
    Route(
        "GET",
        S,
        Page(BetaManagedAgentsSession, bidirectional=True),
        lambda w: (w.session(), list(w.sdk.beta.sessions.list(limit=1))),
    ),
    Route(
        "POST",
        S + "/{session_id}/archive",
        BetaManagedAgentsSession,
        lambda w: w.sdk.beta.sessions.archive(w.session("archived", w.helper())),
    ),
    Route(
        "DELETE",
        S + "/{session_id}",
        BetaManagedAgentsDeletedSession,
        lambda w: w.sdk.beta.sessions.delete(w.session("deleted", w.helper())),
    ),
    Route("POST", S + "/{session_id}/events", BetaManagedAgentsSendSessionEvents, _outcome),
    Route("GET", S + "/{session_id}/events", Page(BetaManagedAgentsSessionEvent), _events),
    Route(
        "GET",
        S + "/{session_id}/resources",
        Page(BetaManagedAgentsSessionResource),
        lambda w: list(w.sdk.beta.sessions.resources.list(w.session("resourced"), limit=1)),
    ),
    Route(
        "GET",
        S + "/{session_id}/resources/{resource_id}",
        ResourceRetrieveResponse,
        lambda w: [
            w.sdk.beta.sessions.resources.retrieve(_key(r), session_id=w.session("resourced"))
            for r in w.sdk.beta.sessions.resources.list(w.session("resourced"))
        ],
    ),
    Route(
        "POST",
        S + "/{session_id}/resources",
        BetaManagedAgentsFileResource,
        lambda w: w.sdk.beta.sessions.resources.add(
            w.session("resourced"), type="file", file_id=w.file(), mount_path="/mnt/extra.csv"
        ),
    ),
    Route(
        "POST",
        S + "/{session_id}/resources/{resource_id}",
        ResourceUpdateResponse,
        lambda w: w.sdk.beta.sessions.resources.update(
            w.sdk.beta.sessions.retrieve(w.session("resourced")).resources[0].id,  # type: ignore[union-attr]
            session_id=w.session("resourced"),
            authorization_token="rotated",
        ),
    ),
    Route(
        "DELETE",
        S + "/{session_id}/resources/{resource_id}",
        BetaManagedAgentsDeleteSessionResource,
        lambda w: w.sdk.beta.sessions.resources.delete(
            w.sdk.beta.sessions.resources.add(
                w.session("resourced"), type="file", file_id=w.file(), mount_path="/mnt/gone.csv"
            ).id,
            session_id=w.session("resourced"),
        ),
    ),
    Route("GET", S + "/{session_id}/events/stream", BetaManagedAgentsStreamSessionEvents, _stream),
    Route("POST", D, BetaManagedAgentsDeployment, lambda w: w.deployment()),
    Route(
        "GET",
        D + "/{deployment_id}",
        BetaManagedAgentsDeployment,
        lambda w: (w.run(), w.sdk.beta.deployments.retrieve(w.deployment())),
    ),
    Route(
        "POST",
        D + "/{deployment_id}",
        BetaManagedAgentsDeployment,
        lambda w: w.sdk.beta.deployments.update(w.deployment(), description="d"),
    ),
    Route(
        "GET",
        D,
        Page(BetaManagedAgentsDeployment),
        lambda w: (w.deployment(), list(w.sdk.beta.deployments.list())),
    ),
    Route(
        "POST",
        D + "/{deployment_id}/archive",
        BetaManagedAgentsDeployment,
        lambda w: w.sdk.beta.deployments.archive(
            w.sdk.beta.deployments.create(
                name="gone", agent=w.helper(), environment_id=w.env(), initial_events=[MESSAGE]
            ).id
        ),
    ),
    Route(
        "POST",
        D + "/{deployment_id}/pause",
        BetaManagedAgentsDeployment,
        lambda w: w.sdk.beta.deployments.pause(w.deployment()),
    ),
    Route(
        "POST",
        D + "/{deployment_id}/unpause",
        BetaManagedAgentsDeployment,
        lambda w: w.sdk.beta.deployments.unpause(w.deployment()),
    ),
    Route(
        "POST",
        D + "/{deployment_id}/run",
        BetaManagedAgentsDeploymentRun,
        lambda w: w.sdk.beta.deployments.run(w.deployment()),
    ),
    Route(
        "GET",
        "/v1/deployment_runs/{deployment_run_id}",
        BetaManagedAgentsDeploymentRun,
        lambda w: w.sdk.beta.deployment_runs.retrieve(w.run()),
    ),
    Route(
        "GET",
        "/v1/deployment_runs",
        Page(BetaManagedAgentsDeploymentRun),
        lambda w: (w.run(), list(w.sdk.beta.deployment_runs.list())),
    ),
    Route("POST", K, BetaSkill, lambda w: w.skill("fresh-skill")),
    Route("GET", K + "/{skill_id}", BetaSkill, lambda w: w.sdk.beta.skills.retrieve(w.skill())),
    Route("GET", K, Page(BetaSkill), lambda w: (w.skill(), list(w.sdk.beta.skills.list()))),
    Route(
        "DELETE",
        K + "/{skill_id}",
        BetaDeletedSkill,
        lambda w: w.sdk.beta.skills.delete(w.skill("gone-skill")),
    ),
    Route(
        "POST",
        K + "/{skill_id}/versions",
        BetaSkillVersion,
        lambda w: w.sdk.beta.skills.versions.create(
            w.skill(), files=[skill_file("tidy-data", "Another.")]
        ),
    ),
    Route(
        "GET",
        K + "/{skill_id}/versions/{version}",
        BetaSkillVersion,
        lambda w: w.sdk.beta.skills.versions.retrieve(w.skill_version(), skill_id=w.skill()),
    ),
    Route(
        "GET",
        K + "/{skill_id}/versions",
        Page(BetaSkillVersion),
        lambda w: (w.skill_version(), list(w.sdk.beta.skills.versions.list(w.skill()))),
    ),
    Route(
        "DELETE",
        K + "/{skill_id}/versions/{version}",
        BetaDeletedSkillVersion,
        lambda w: w.sdk.beta.skills.versions.delete(
            w.sdk.beta.skills.versions.create(
                w.skill(), files=[skill_file("tidy-data", "Short-lived.")]
            ).id,
            skill_id=w.skill(),
        ),
    ),
    Route(
        "GET",
        K + "/{skill_id}/versions/{version}/content",
        Zip(),
        lambda w: w.sdk.beta.skills.versions.download(w.skill_version(), skill_id=w.skill()).read(),
    ),
    Route(
        "POST",
        F,
        BetaFileMetadata,
        lambda w: w.sdk.beta.files.upload(
            file=("raw/fresh.json", b"{}", "application/json"), expires_in_seconds=3600
        ),
    ),
    Route(
        "GET",
        F,
        Page(BetaFileMetadata),
        lambda w: (
            w.file(),
            w.file("second"),
            list(w.sdk.beta.files.list(limit=1)),
            w.sdk.beta.files.list(ids=[w.file()]),
        ),
    ),
    Route(
        "GET",
        F + "/{file_id}",
        BetaFileMetadata,
        lambda w: w.sdk.beta.files.retrieve_metadata(w.file()),
    ),
    Route(
        "GET",
        F + "/{file_id}/content",
        Raw(FILE_BYTES),
        lambda w: w.sdk.beta.files.download(w.file()).read(),
    ),
    Route(
        "DELETE",
        F + "/{file_id}",
        BetaDeletedFile,
        lambda w: w.sdk.beta.files.delete(w.file("gone")),
    ),
    Route(
        "POST",
        M,
        BetaManagedAgentsMemoryStore,
        lambda w: w.sdk.beta.memory_stores.create(name="fresh", metadata={"k": "v"}),
    ),
    Route(
        "GET",
        M + "/{memory_store_id}",
        BetaManagedAgentsMemoryStore,
        lambda w: w.sdk.beta.memory_stores.retrieve(w.store()),
    ),
    Route(
        "POST",
        M + "/{memory_store_id}",
        BetaManagedAgentsMemoryStore,
        lambda w: w.sdk.beta.memory_stores.update(w.store(), description=""),
    ),
    Route(
        "GET",
        M,
        Page(BetaManagedAgentsMemoryStore),
        lambda w: (w.store(), list(w.sdk.beta.memory_stores.list())),
    ),
    Route(
        "POST",
        M + "/{memory_store_id}/archive",
        BetaManagedAgentsMemoryStore,
        lambda w: w.sdk.beta.memory_stores.archive(
            w.sdk.beta.memory_stores.create(name="archived").id
        ),
    ),
    Route(
        "DELETE",
        M + "/{memory_store_id}",
        BetaManagedAgentsDeletedMemoryStore,
        lambda w: w.sdk.beta.memory_stores.delete(w.sdk.beta.memory_stores.create(name="gone").id),
    ),
    Route(
        "POST",
        M + "/{memory_store_id}/memories",
        BetaManagedAgentsMemory,
        lambda w: w.sdk.beta.memory_stores.memories.create(
            w.store(), path="/notes/fresh.md", content="fresh"
        ),
    ),
    Route(
        "GET",
        M + "/{memory_store_id}/memories/{memory_id}",
        BetaManagedAgentsMemory,
        lambda w: w.sdk.beta.memory_stores.memories.retrieve(w.memory(), memory_store_id=w.store()),
    ),
    Route(
        "POST",
        M + "/{memory_store_id}/memories/{memory_id}",
        BetaManagedAgentsMemory,
        lambda w: w.sdk.beta.memory_stores.memories.update(
            w.memory(), memory_store_id=w.store(), content="second"
        ),
    ),
    Route(
        "GET",
        M + "/{memory_store_id}/memories",
        Page(BetaManagedAgentsMemoryListItem),
        lambda w: (w.memory(), list(w.sdk.beta.memory_stores.memories.list(w.store()))),
    ),
    Route(
        "DELETE",
        M + "/{memory_store_id}/memories/{memory_id}",
        BetaManagedAgentsDeletedMemory,
        lambda w: w.sdk.beta.memory_stores.memories.delete(
            w.sdk.beta.memory_stores.memories.create(
                w.store(), path="/notes/gone.md", content="x"
            ).id,
            memory_store_id=w.store(),
        ),
    ),
    Route(
        "GET",
        M + "/{memory_store_id}/memory_versions",
        Page(BetaManagedAgentsMemoryVersion),
        lambda w: (w.memory(), list(w.sdk.beta.memory_stores.memory_versions.list(w.store()))),
    ),
    Route(
        "GET",
        M + "/{memory_store_id}/memory_versions/{memory_version_id}",
        BetaManagedAgentsMemoryVersion,
        lambda w: w.sdk.beta.memory_stores.memory_versions.retrieve(
            w.memory_version(), memory_store_id=w.store()
        ),
    ),
    Route(
        "POST",
        M + "/{memory_store_id}/memory_versions/{memory_version_id}/redact",
        BetaManagedAgentsMemoryVersion,
        lambda w: w.sdk.beta.memory_stores.memory_versions.redact(
            w.memory_version(), memory_store_id=w.store()
        ),
    ),
)


# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Recorder]]:
    db: Path = tmp_path_factory.mktemp("strict") / "provider.db"
    recorder = Recorder()
    with (
        BackgroundServer(create_app(db)) as server,
        anthropic.Anthropic(
            base_url=server.url,
            api_key="test",
            max_retries=0,
            # the SDK's own strict parse too: a model it cannot validate raises at the call
            _strict_response_validation=True,
            http_client=httpx2.Client(transport=recorder, base_url=server.url),
        ) as sdk,
    ):
        yield World(sdk), recorder


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route ``app`` serves under ``/v1/`` (included routers too)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
                continue
            path = getattr(route, "path", "")
            for method in getattr(route, "methods", None) or ():
                if path.startswith("/v1/") and method != "HEAD":
                    found.add((method, path))

    walk(app.routes)
    return found


def test_every_route_of_the_app_has_an_entry(tmp_path: Path) -> None:
    served = app_routes(create_app(tmp_path / "p.db"))
    assert len(served) >= len(ROUTES) // 2  # the walk found routes at all
    listed = {(r.method, r.path) for r in ROUTES}
    assert served - listed == set(), "routes without an entry in ROUTES"
    assert listed - served == set(), "entries for routes the app does not serve"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_the_sdk_strictly_accepts_every_answer(route: Route, world: tuple[World, Recorder]) -> None:
    w, recorder = world
    del recorder.seen[:]
    route.drive(w)
    mine = [x for x in recorder.seen if route.matches(x.method, x.path)]
    assert any(x.status == 200 for x in mine), f"{route.name} was not answered 200"
    for exchange in recorder.seen:
        where = f"{exchange.method} {exchange.path} ({exchange.status})"
        if exchange.status >= 400:
            pytest.fail(f"{where} failed while driving {route.name}: {exchange.body!r}")
        if not route.matches(exchange.method, exchange.path):
            continue
        if "text/event-stream" in exchange.content_type:
            payloads = sse_payloads(exchange.body.decode())
            assert payloads, f"{where}: no event frames"
            for data in payloads:
                check_body(route.model, data.encode())
        else:
            check_body(route.model, exchange.body)


def test_error_bodies_are_the_sdks_error_response(world: tuple[World, Recorder]) -> None:
    w, recorder = world
    del recorder.seen[:]
    with pytest.raises(anthropic.NotFoundError):
        w.sdk.beta.agents.retrieve("agent_011CZkYpogX7uDKUyvBTophP")
    with pytest.raises(anthropic.BadRequestError):
        w.sdk.beta.agents.create(name="", model="m")
    with pytest.raises(anthropic.NotFoundError):
        w.sdk.get("/v1/no_such_route", cast_to=object)
    assert [x.status for x in recorder.seen] == [404, 400, 404]
    for exchange in recorder.seen:
        strictly(BetaErrorResponse, exchange.body)


def test_the_check_refuses_what_the_sdk_does_not_declare() -> None:
    """The check itself can fail: an undeclared field, an unresolved ``self`` member, a
    timestamp that is no timestamp and a page with a stray field are all refused."""
    vault = {
        "id": "vlt_1",
        "type": "vault",
        "display_name": "v",
        "metadata": {},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "archived_at": None,
    }
    strictly(BetaManagedAgentsVault, json.dumps(vault))
    for bad in ({**vault, "bogus": 1}, {**vault, "created_at": 1}, {**vault, "metadata": {"k": 1}}):
        with pytest.raises((AssertionError, ValidationError)):
            strictly(BetaManagedAgentsVault, json.dumps(bad))
    with pytest.raises((AssertionError, ValidationError)):
        check_body(
            Page(BetaManagedAgentsVault),
            json.dumps({"data": [vault], "next_page": None, "total": 1}),
        )
    roster = {"type": "coordinator", "agents": [{"type": "self"}]}
    with pytest.raises(ValidationError):
        strictly(BetaManagedAgentsMultiagent, json.dumps(roster))
