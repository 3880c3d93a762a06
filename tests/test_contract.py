"""Contract: every client method against the local provider, in-process and over loopback TCP.

Each test runs twice - once through ``embedded_client`` (``StreamingASGITransport``) and once
through ``ProviderClient(url)`` against uvicorn on 127.0.0.1 - so the two paths cannot drift:
the same calls must give the same JSON, the same pagination and the same typed errors.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from reconciler.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    ProviderError,
)
from reconciler.provider import Pager, ProviderClient

pytestmark = pytest.mark.anyio

MODEL = "claude-sonnet-4-6"
HELLO = {"type": "user.message", "content": [{"type": "text", "text": "hello there"}]}


async def make_agent(api: ProviderClient, name: str = "coder", **spec: Any) -> dict[str, Any]:
    return await api.agents.create({"name": name, "model": MODEL, **spec})


async def make_environment(api: ProviderClient, name: str = "python") -> dict[str, Any]:
    return await api.environments.create({"name": name})


# --------------------------------------------------------------------------- agents


async def test_agent_create_returns_the_wire_object_with_server_defaults(
    api: ProviderClient,
) -> None:
    agent = await make_agent(api, system="You are terse.", metadata={"owner": "infra"})
    assert agent["type"] == "agent"
    assert agent["id"].startswith("agent_")
    assert agent["version"] == 1
    assert agent["model"] == {
        "id": MODEL,
        "effort": {"type": "high"},
        "inference_geo": None,
        "speed": "standard",
    }
    assert (agent["tools"], agent["skills"], agent["archived_at"]) == ([], [], None)
    assert agent["metadata"] == {"owner": "infra"}
    assert await api.agents.retrieve(agent["id"]) == agent


async def test_agent_versions_and_the_version_precondition(api: ProviderClient) -> None:
    agent = await make_agent(api)
    v2 = await api.agents.update(agent["id"], {"system": "v2", "version": 1})
    assert v2["version"] == 2
    v3 = await api.agents.update(agent["id"], {"system": "v3"})  # unconditional
    assert v3["version"] == 3

    with pytest.raises(ConflictError) as caught:
        await api.agents.update(agent["id"], {"system": "lost update", "version": 2})
    err = caught.value
    assert (err.status, err.method, err.path) == (409, "POST", f"/v1/agents/{agent['id']}")
    assert err.request_id and err.request_id.startswith("req_")
    assert agent["id"] in str(err)

    old = await api.agents.retrieve(agent["id"], version=1)
    assert (old["version"], old["system"]) == (1, None)
    versions = await api.agents.versions(agent["id"]).to_list()
    assert sorted(v["version"] for v in versions) == [1, 2, 3]
    assert (await api.agents.retrieve(agent["id"]))["system"] == "v3"


async def test_agent_archive_hides_it_from_the_default_list(api: ProviderClient) -> None:
    kept = await make_agent(api, "kept")
    gone = await make_agent(api, "gone")
    archived = await api.agents.archive(gone["id"])
    assert archived["archived_at"] is not None
    assert await api.agents.archive(gone["id"]) == archived  # archiving twice changes nothing

    assert [a["id"] for a in await api.agents.list().to_list()] == [kept["id"]]
    every = {a["id"] for a in await api.agents.list(include_archived=True).to_list()}
    assert every == {kept["id"], gone["id"]}
    assert (await api.agents.retrieve(gone["id"]))["archived_at"] == archived["archived_at"]


async def test_pagination_walks_every_page_to_the_end(api: ProviderClient) -> None:
    slots = asyncio.Semaphore(8)  # setup only: a loopback server in this process is CPU-bound

    async def make(i: int) -> dict[str, Any]:
        async with slots:
            return await make_agent(api, f"agent-{i:03d}")

    created = await asyncio.gather(*(make(i) for i in range(250)))
    api.stats.reset()

    pager = api.agents.list()
    assert isinstance(pager, Pager)
    listed = await pager.to_list()
    assert len(listed) == 250
    assert {a["id"] for a in listed} == {a["id"] for a in created}
    assert api.stats.by_method == {"GET": 3}  # 100 + 100 + 50, and nothing else

    seen = []
    async for agent in api.agents.list():
        seen.append(agent["id"])
        if len(seen) == 150:
            break  # leaving early is fine and fetches no further page
    assert len(set(seen)) == 150


async def test_created_at_filters_are_bracket_encoded(api: ProviderClient) -> None:
    agent = await make_agent(api)
    since = await api.agents.list(created_at_gte=agent["created_at"]).to_list()
    assert [a["id"] for a in since] == [agent["id"]]
    assert await api.agents.list(created_at_gte="2999-01-01T00:00:00Z").to_list() == []
    assert await api.agents.list(created_at_lte="2000-01-01T00:00:00Z").to_list() == []


# --------------------------------------------------------------------------- environments


async def test_environment_crud_and_delete(api: ProviderClient) -> None:
    env = await make_environment(api)
    assert env["id"].startswith("env_")
    assert env["config"]["networking"] == {"type": "unrestricted"}
    updated = await api.environments.update(env["id"], {"description": "for data work"})
    assert updated["description"] == "for data work"
    assert [e["id"] for e in await api.environments.list().to_list()] == [env["id"]]

    with pytest.raises(ConflictError):
        await make_environment(api)  # names are unique among live environments

    archived = await api.environments.archive(env["id"])
    assert archived["archived_at"] is not None
    assert await api.environments.list().to_list() == []
    assert len(await api.environments.list(include_archived=True).to_list()) == 1

    deleted = await api.environments.delete(env["id"])
    assert deleted == {"id": env["id"], "type": "environment_deleted"}
    with pytest.raises(NotFoundError, match=f"environment {env['id']} not found"):
        await api.environments.retrieve(env["id"])


# --------------------------------------------------------------------------- vaults


async def test_vaults_and_credentials(api: ProviderClient) -> None:
    vault = await api.vaults.create({"display_name": "github", "metadata": {"team": "a"}})
    assert vault["id"].startswith("vlt_")
    vault = await api.vaults.update(vault["id"], {"display_name": "GitHub"})
    assert vault["display_name"] == "GitHub"
    assert [v["id"] for v in await api.vaults.list().to_list()] == [vault["id"]]

    auth = {
        "type": "static_bearer",
        "token": "s3cret",
        "mcp_server_url": "https://mcp.example.com/mcp",
    }
    cred = await api.credentials.create(vault["id"], {"display_name": "gh", "auth": auth})
    assert cred["id"].startswith("vcrd_")
    assert cred["vault_id"] == vault["id"]
    assert "token" not in cred["auth"], "secrets are write-only"
    assert await api.credentials.retrieve(vault["id"], cred["id"]) == cred
    renamed = await api.credentials.update(vault["id"], cred["id"], {"display_name": "GH"})
    assert renamed["display_name"] == "GH"
    assert [c["id"] for c in await api.credentials.list(vault["id"]).to_list()] == [cred["id"]]

    with pytest.raises(ConflictError):  # one active credential per MCP server URL
        await api.credentials.create(vault["id"], {"auth": auth})

    await api.credentials.archive(vault["id"], cred["id"])
    assert await api.credentials.list(vault["id"]).to_list() == []
    assert len(await api.credentials.list(vault["id"], include_archived=True).to_list()) == 1
    deleted = await api.credentials.delete(vault["id"], cred["id"])
    assert deleted["type"] == "vault_credential_deleted"

    await api.vaults.archive(vault["id"])
    assert await api.vaults.list().to_list() == []
    assert (await api.vaults.delete(vault["id"]))["type"] == "vault_deleted"
    with pytest.raises(NotFoundError, match="vault"):
        await api.vaults.retrieve(vault["id"])


# --------------------------------------------------------------------------- deployments


async def test_deployments_and_their_runs(api: ProviderClient) -> None:
    agent = await make_agent(api)
    env = await make_environment(api)
    dep = await api.deployments.create(
        {
            "name": "nightly",
            "agent": agent["id"],
            "environment_id": env["id"],
            "initial_events": [HELLO],
        }
    )
    assert dep["agent"] == {"type": "agent", "id": agent["id"], "version": 1}
    assert (dep["status"], dep["vault_ids"], dep["schedule"]) == ("active", [], None)
    assert await api.deployments.retrieve(dep["id"]) == dep
    dep = await api.deployments.update(dep["id"], {"description": "runs at night"})
    assert dep["description"] == "runs at night"

    paused = await api.deployments.pause(dep["id"])
    assert (paused["status"], paused["paused_reason"]) == ("paused", {"type": "manual"})
    assert [d["id"] for d in await api.deployments.list(status="paused").to_list()] == [dep["id"]]
    assert await api.deployments.list(status="active").to_list() == []
    assert (await api.deployments.unpause(dep["id"]))["status"] == "active"
    assert [d["id"] for d in await api.deployments.list(agent_id=agent["id"]).to_list()] == [
        dep["id"]
    ]

    run = await api.deployments.run(dep["id"])
    assert run["type"] == "deployment_run"
    assert run["trigger_context"] == {"type": "manual"}
    assert run["session_id"] and run["error"] is None
    assert await api.deployment_runs.retrieve(run["id"]) == run
    runs = await api.deployment_runs.list(deployment_id=dep["id"], has_error=False).to_list()
    assert [r["id"] for r in runs] == [run["id"]]
    assert await api.deployment_runs.list(trigger_type="schedule").to_list() == []
    session = await api.sessions.retrieve(run["session_id"])
    assert session["deployment_id"] == dep["id"]

    await api.deployments.archive(dep["id"])
    assert await api.deployments.list().to_list() == []
    assert len(await api.deployments.list(include_archived=True).to_list()) == 1


# --------------------------------------------------------------------------- sessions


async def test_session_lifecycle_and_filters(api: ProviderClient) -> None:
    agent = await make_agent(api)
    env = await make_environment(api)
    session = await api.sessions.create({"agent": agent["id"], "environment_id": env["id"]})
    assert session["id"].startswith("sesn_")
    assert (session["status"], session["agent"]["version"]) == ("idle", 1)
    session = await api.sessions.update(session["id"], {"title": "first"})
    assert session["title"] == "first"

    other = await api.sessions.create({"agent": agent["id"], "environment_id": env["id"]})
    mine = await api.sessions.list(agent_id=agent["id"], statuses=["idle", "running"]).to_list()
    assert {s["id"] for s in mine} == {session["id"], other["id"]}
    assert await api.sessions.list(statuses=["terminated"]).to_list() == []
    oldest_first = await api.sessions.list(order="asc").to_list()
    assert [s["id"] for s in oldest_first] == [session["id"], other["id"]]

    await api.sessions.archive(other["id"])
    assert [s["id"] for s in await api.sessions.list().to_list()] == [session["id"]]
    assert len(await api.sessions.list(include_archived=True).to_list()) == 2
    assert (await api.sessions.delete(other["id"]))["type"] == "session_deleted"
    with pytest.raises(NotFoundError, match=f"session {other['id']} not found"):
        await api.sessions.retrieve(other["id"])


async def test_events_stream_echoes_what_was_sent(api: ProviderClient) -> None:
    agent = await make_agent(api)
    env = await make_environment(api)
    session = await api.sessions.create({"agent": agent["id"], "environment_id": env["id"]})
    sid = session["id"]

    received: list[dict[str, Any]] = []
    with anyio.fail_after(10):
        async with api.sessions.stream_events(sid) as events:
            sent = await api.sessions.send_events(sid, [HELLO])
            async for event in events:
                received.append(event)
                if event["type"] == "session.status_idle":
                    break
    assert [e["type"] for e in sent] == ["user.message"]
    assert [e["type"] for e in received] == [
        "user.message",
        "session.status_running",
        "agent.message",
        "session.status_idle",
    ]
    assert received[0]["id"] == sent[0]["id"]
    assert received[2]["content"] == [{"type": "text", "text": "echo: hello there"}]
    assert "ping" not in {e["type"] for e in received}

    listed = await api.sessions.list_events(sid).to_list()
    assert [e["id"] for e in listed] == [e["id"] for e in received]
    only = await api.sessions.list_events(sid, types=["agent.message"]).to_list()
    assert [e["type"] for e in only] == ["agent.message"]
    assert (await api.sessions.retrieve(sid))["status"] == "idle"


async def test_a_stream_can_be_left_early_and_reopened(api: ProviderClient) -> None:
    agent = await make_agent(api)
    env = await make_environment(api)
    sid = (await api.sessions.create({"agent": agent["id"], "environment_id": env["id"]}))["id"]
    for _ in range(2):
        with anyio.fail_after(10):
            async with api.sessions.stream_events(sid) as events:
                await api.sessions.send_events(sid, [HELLO])
                first = await events.__anext__()
        assert first["type"] == "user.message"
    # The client is still healthy after abandoning two streams.
    assert (await api.sessions.retrieve(sid))["id"] == sid


async def test_streaming_a_missing_session_is_not_found(api: ProviderClient) -> None:
    with pytest.raises(NotFoundError, match="session sesn_missing not found"):
        async with api.sessions.stream_events("sesn_missing"):
            pass


# --------------------------------------------------------------------------- errors


async def test_typed_errors_for_400_404_409(api: ProviderClient) -> None:
    with pytest.raises(BadRequestError) as bad:
        await api.agents.create({"name": "no-model"})
    assert (bad.value.status, bad.value.error_type) == (400, "invalid_request_error")
    assert "model" in str(bad.value)
    assert str(bad.value).startswith("the provider rejected POST /v1/agents: ")

    with pytest.raises(NotFoundError) as missing:
        await api.agents.retrieve("agent_01X")
    assert str(missing.value).startswith(
        "agent agent_01X not found (404 not_found_error, request req_"
    )
    assert (missing.value.status, missing.value.error_type) == (404, "not_found_error")

    agent = await make_agent(api)
    with pytest.raises(ConflictError) as conflict:
        await api.agents.update(agent["id"], {"system": "x", "version": 7})
    assert conflict.value.status == 409
    assert api.stats.retries == 0, "4xx answers are final"


async def test_a_bad_cursor_is_a_bad_request(api: ProviderClient) -> None:
    with pytest.raises(BadRequestError, match="cursor"):
        await api.request("GET", "/v1/agents", params={"page": "garbage"})


async def test_request_is_the_escape_hatch(api: ProviderClient) -> None:
    agent = await make_agent(api)
    raw = await api.request("GET", f"/v1/agents/{agent['id']}")
    assert raw == agent
    with pytest.raises(ProviderError):
        await api.request("GET", "/v1/no-such-endpoint")
