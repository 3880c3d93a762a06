"""The official SDK (2.10.0) drives every memory-store, memory and memory-version route of
the local provider over loopback TCP, and every response passes the SDK's models with strict
validation (``model_validate_json(..., strict=True)``) and declares no field the model lacks.

The SDK sends only ``anthropic-beta: agent-memory-2026-07-22`` on these routes, so every
call here also shows that the memory beta alone is accepted. ``max_retries=0``: a wrong
status is never papered over by a retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.beta import (
    BetaManagedAgentsDeletedMemoryStore,
    BetaManagedAgentsMemoryStore,
    BetaManagedAgentsMemoryStoreResourceConfig,
)
from anthropic.types.beta.memory_stores import (
    BetaManagedAgentsDeletedMemory,
    BetaManagedAgentsMemory,
    BetaManagedAgentsMemoryPrefix,
    BetaManagedAgentsMemoryVersion,
)
from anthropic.types.beta.sessions import BetaManagedAgentsMemoryStoreResource
from pydantic import BaseModel

pytestmark = pytest.mark.tcp

MESSAGE = {"type": "user.message", "content": [{"type": "text", "text": "ping"}]}


@pytest.fixture
def sdk(tcp_provider: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=tcp_provider, api_key="test", max_retries=0) as client:
        yield client


def undeclared(model: BaseModel, where: str = "") -> list[str]:
    """Every field of a validated model (nested ones too) that its class does not declare."""
    found = [f"{where}.{k}" for k in (model.model_extra or {})]
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = (
            value
            if isinstance(value, list)
            else list(value.values())
            if isinstance(value, dict)
            else [value]
        )
        for item in values:
            if isinstance(item, BaseModel):
                found += undeclared(item, f"{where}.{name}")
    return found


def strict(model: type[BaseModel], raw: Any) -> Any:
    """``raw`` (JSON text or an already decoded object) through ``model`` strictly."""
    text = raw if isinstance(raw, (str, bytes)) else json.dumps(raw)
    parsed = model.model_validate_json(text, strict=True)
    assert undeclared(parsed) == [], f"{model.__name__} does not declare these fields"
    return parsed


def strict_response(model: type[BaseModel], response: Any) -> Any:
    """A raw SDK response: its status, then its body through ``model`` strictly."""
    assert response.status_code == 200, response.text()
    return strict(model, response.text())


def strict_page(models: dict[str, type[BaseModel]], response: Any) -> list[Any]:
    """A list page: the envelope, then each item through the model of its ``type``."""
    assert response.status_code == 200, response.text()
    body = json.loads(response.text())
    assert set(body) == {"data", "next_page"}
    return [strict(models[item["type"]], item) for item in body["data"]]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_memory_store_routes_through_the_sdk(sdk: anthropic.Anthropic) -> None:
    raw = sdk.beta.memory_stores.with_raw_response
    made = strict_response(
        BetaManagedAgentsMemoryStore,
        raw.create(name="User Prefs", description="likes", metadata={"team": "a", "x": "y"}),
    )
    assert made.id.startswith("memstore_") and made.archived_at is None
    got = strict_response(BetaManagedAgentsMemoryStore, raw.retrieve(made.id))
    assert got == made
    updated = strict_response(
        BetaManagedAgentsMemoryStore,
        raw.update(made.id, description="", metadata={"x": None, "new": "1"}, name="Prefs"),
    )
    assert (updated.description, updated.metadata, updated.name) == (
        "",
        {"team": "a", "new": "1"},
        "Prefs",
    )
    others = [sdk.beta.memory_stores.create(name=f"s{i}").id for i in range(4)]
    page = strict_page({"memory_store": BetaManagedAgentsMemoryStore}, raw.list(limit=2))
    assert [s.id for s in page] == [made.id, others[0]]
    assert [s.id for s in sdk.beta.memory_stores.list(limit=2)] == [made.id, *others]

    archived = strict_response(BetaManagedAgentsMemoryStore, raw.archive(others[0]))
    assert archived.archived_at is not None
    assert others[0] not in [s.id for s in sdk.beta.memory_stores.list()]
    assert others[0] in [s.id for s in sdk.beta.memory_stores.list(include_archived=True)]
    with pytest.raises(anthropic.BadRequestError):
        sdk.beta.memory_stores.update(others[0], name="again")
    deleted = strict_response(BetaManagedAgentsDeletedMemoryStore, raw.delete(others[1]))
    assert (deleted.id, deleted.type) == (others[1], "memory_store_deleted")
    with pytest.raises(anthropic.NotFoundError):
        sdk.beta.memory_stores.retrieve(others[1])
    with pytest.raises(anthropic.BadRequestError):
        sdk.beta.memory_stores.create(name="n", description="d" * 1025)


def test_memory_and_version_routes_through_the_sdk(sdk: anthropic.Anthropic) -> None:
    store = sdk.beta.memory_stores.create(name="notes").id
    raw = sdk.beta.memory_stores.memories.with_raw_response
    made = strict_response(
        BetaManagedAgentsMemory, raw.create(store, path="/projects/a/notes.md", content="one")
    )
    assert made.content is None and made.content_sha256 == sha("one")
    full = strict_response(
        BetaManagedAgentsMemory, raw.create(store, path="/top.md", content="", view="full")
    )
    assert full.content == ""
    got = strict_response(BetaManagedAgentsMemory, raw.retrieve(made.id, memory_store_id=store))
    assert got.content == "one"
    changed = strict_response(
        BetaManagedAgentsMemory,
        raw.update(
            made.id,
            memory_store_id=store,
            content="two",
            path="/projects/b.md",
            precondition={"type": "content_sha256", "content_sha256": sha("one")},
            view="full",
        ),
    )
    assert (changed.content, changed.path) == ("two", "/projects/b.md")
    with pytest.raises(anthropic.ConflictError) as stale:
        sdk.beta.memory_stores.memories.update(
            made.id,
            memory_store_id=store,
            content="three",
            precondition={"type": "content_sha256", "content_sha256": sha("one")},
        )
    assert stale.value.body["error"]["type"] == "memory_precondition_failed_error"  # type: ignore[index]
    with pytest.raises(anthropic.ConflictError) as taken:
        sdk.beta.memory_stores.memories.create(store, path="/top.md", content="x")
    assert taken.value.body["error"]["details"]["conflicting_memory_id"] == full.id  # type: ignore[index]

    kinds: dict[str, type[BaseModel]] = {
        "memory": BetaManagedAgentsMemory,
        "memory_prefix": BetaManagedAgentsMemoryPrefix,
    }
    listed = strict_page(kinds, raw.list(store, depth=1, limit=5))
    assert [(i.type, i.path) for i in listed] == [
        ("memory_prefix", "/projects/"),
        ("memory", "/top.md"),
    ]
    deep = strict_page(kinds, raw.list(store, path_prefix="/projects/", view="full"))
    assert [(i.path, i.content) for i in deep] == [("/projects/b.md", "two")]
    walked = list(sdk.beta.memory_stores.memories.list(store, limit=1))
    assert [i.path for i in walked] == ["/projects/b.md", "/top.md"]

    versions = sdk.beta.memory_stores.memory_versions.with_raw_response
    history = strict_page(
        {"memory_version": BetaManagedAgentsMemoryVersion},
        versions.list(store, memory_id=made.id, view="full"),
    )
    assert [(v.operation, v.content) for v in history] == [("modified", "two"), ("created", "one")]
    assert [v.id for v in sdk.beta.memory_stores.memory_versions.list(store, limit=1)] == [
        history[0].id,
        full.memory_version_id,
        history[1].id,
    ]
    one = strict_response(
        BetaManagedAgentsMemoryVersion, versions.retrieve(history[1].id, memory_store_id=store)
    )
    assert one.content == "one" and one.created_by is not None
    redacted = strict_response(
        BetaManagedAgentsMemoryVersion, versions.redact(history[1].id, memory_store_id=store)
    )
    assert redacted.redacted_at is not None and redacted.path is None and redacted.content is None

    with pytest.raises(anthropic.ConflictError):
        sdk.beta.memory_stores.memories.delete(
            made.id, memory_store_id=store, expected_content_sha256=sha("one")
        )
    gone = strict_response(
        BetaManagedAgentsDeletedMemory,
        raw.delete(made.id, memory_store_id=store, expected_content_sha256=sha("two")),
    )
    assert (gone.id, gone.type) == (made.id, "memory_deleted")
    last = strict_page(
        {"memory_version": BetaManagedAgentsMemoryVersion},
        versions.list(store, memory_id=made.id, operation="deleted"),
    )
    assert [v.operation for v in last] == ["deleted"] and last[0].content_sha256 is None
    with pytest.raises(anthropic.NotFoundError):
        sdk.beta.memory_stores.memories.retrieve(made.id, memory_store_id=store)
    with pytest.raises(anthropic.BadRequestError):
        sdk.beta.memory_stores.memories.create(store, path="relative.md", content="x")


def test_sessions_and_deployments_mount_stores_through_the_sdk(sdk: anthropic.Anthropic) -> None:
    env = sdk.beta.environments.create(name="env").id
    agent = sdk.beta.agents.create(name="a", model="claude-haiku-4-5").id
    store = sdk.beta.memory_stores.create(name="Team Notes", description="notes").id
    raw = sdk.beta.sessions.with_raw_response.create(
        agent=agent,
        environment_id=env,
        resources=[{"type": "memory_store", "memory_store_id": store, "instructions": "read it"}],
    )
    resource = json.loads(raw.text())["resources"][0]
    mounted = strict(BetaManagedAgentsMemoryStoreResource, resource)
    assert (mounted.mount_path, mounted.name, mounted.description, mounted.access) == (
        "/mnt/memory/team-notes",
        "Team Notes",
        "notes",
        "read_write",
    )
    sessions = sdk.beta.sessions.list(memory_store_id=store)
    assert [s.id for s in sessions] == [json.loads(raw.text())["id"]]

    deployment = sdk.beta.deployments.with_raw_response.create(
        name="d",
        agent=agent,
        environment_id=env,
        initial_events=[MESSAGE],  # type: ignore[list-item]
        resources=[{"type": "memory_store", "memory_store_id": store, "access": "read_only"}],
    )
    config = json.loads(deployment.text())["resources"][0]
    assert strict(BetaManagedAgentsMemoryStoreResourceConfig, config).access == "read_only"

    with pytest.raises(anthropic.NotFoundError):
        sdk.beta.sessions.create(
            agent=agent,
            environment_id=env,
            resources=[{"type": "memory_store", "memory_store_id": "memstore_missing"}],
        )
    sdk.beta.memory_stores.archive(store)
    with pytest.raises(anthropic.BadRequestError):
        sdk.beta.sessions.create(
            agent=agent,
            environment_id=env,
            resources=[{"type": "memory_store", "memory_store_id": store}],
        )


def test_memory_routes_take_either_beta_and_need_one(tcp_provider: str) -> None:
    base = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=tcp_provider, headers=base) as http:
        for beta in ("agent-memory-2026-07-22", "managed-agents-2026-04-01"):
            r = http.post(
                "/v1/memory_stores", json={"name": beta}, headers={"anthropic-beta": beta}
            )
            assert r.status_code == 200, r.text
        r = http.get("/v1/memory_stores")
        assert r.status_code == 400 and "agent-memory-2026-07-22" in r.json()["error"]["message"]
        r = http.get("/v1/agents", headers={"anthropic-beta": "agent-memory-2026-07-22"})
        assert r.status_code == 400, "the memory beta opens only memory routes"
