"""The local provider takes the request shapes the SDK declares, and nothing else, and answers
the response shapes it declares (multiagent members resolved and expanded).

In-process over the ASGI app; ``test_sdk_strict.py`` checks the answers through the SDK over
TCP for every route.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from anthropic.types.beta import BetaManagedAgentsAgent, BetaManagedAgentsSession
from support.local_provider import TEXT, assert_error, new_agent, new_env, ok

from reconciler.engine.normalize import normalize

pytestmark = pytest.mark.anyio


async def refused(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> str:
    r = await http.post(path, json=body)
    assert_error(r, 400, "invalid_request_error")
    return str(r.json()["error"]["message"])


async def test_scope_account_is_refused(http: httpx.AsyncClient) -> None:
    message = await refused(http, "/v1/environments", {"name": "e", "scope": "account"})
    assert "account" in message and "organization" in message
    env = await new_env(http, scope="organization")
    assert env["scope"] == "organization"
    await refused(http, f"/v1/environments/{env['id']}", {"scope": "account"})


async def test_session_thread_id_is_taken_only_where_the_sdk_declares_it(
    http: httpx.AsyncClient,
) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    session = await ok(
        http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
    )
    path = f"/v1/sessions/{session['id']}/events"
    thread = {"session_thread_id": "sthr_1"}
    for event in (
        {"type": "user.tool_result", "tool_use_id": "t1", **thread},
        {"type": "user.custom_tool_result", "custom_tool_use_id": "t1", **thread},
        {"type": "user.tool_confirmation", "tool_use_id": "t1", "result": "allow", **thread},
    ):
        message = await refused(http, path, {"events": [event]})
        assert "session_thread_id" in message
    await ok(http.post(path, json={"events": [{"type": "user.interrupt", **thread}]}))


@pytest.mark.parametrize(
    "block",
    [
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}},
        {"type": "text"},
        {"type": "image", "source": {"type": "base64", "data": "AA=="}},
        {"type": "image", "source": {"type": "ftp", "url": "ftp://x"}},
        {"type": "document", "source": {"type": "text", "data": "d", "media_type": "text/html"}},
        {
            "type": "search_result",
            "source": "s",
            "title": "t",
            "content": [],
            "citations": {"enabled": True},
        },
        {"type": "redacted", "data": "x"},
    ],
)
async def test_content_blocks_are_validated(http: httpx.AsyncClient, block: dict[str, Any]) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    body = {
        "agent": agent["id"],
        "environment_id": env["id"],
        "initial_events": [{"type": "user.message", "content": [block]}],
    }
    await refused(http, "/v1/sessions", body)


async def test_declared_blocks_pass_and_search_results_only_in_tool_results(
    http: httpx.AsyncClient, app: Any
) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    session = await ok(
        http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
    )
    path = f"/v1/sessions/{session['id']}/events"
    blocks = [
        {"type": "text", "text": "see"},
        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}},
        {
            "type": "document",
            "source": {"type": "text", "data": "d", "media_type": "text/plain"},
            "title": "t",
        },
        {"type": "redacted"},
    ]
    await ok(http.post(path, json={"events": [{"type": "user.message", "content": blocks}]}))
    search = {
        "type": "search_result",
        "source": "s",
        "title": "t",
        "content": [{"type": "text", "text": "r"}],
        "citations": {"enabled": False},
    }
    await refused(http, path, {"events": [{"type": "user.message", "content": [search]}]})
    # the echo agent uses no tools: plant the tool use this result answers
    use = {"id": "sevt_t1", "type": "agent.tool_use", "processed_at": session["created_at"]}
    app.state.provider.store.append_event(session["id"], use)
    result = {"type": "user.tool_result", "tool_use_id": "sevt_t1", "content": [search]}
    await ok(http.post(path, json={"events": [result]}))
    system = {"type": "system.message", "content": [blocks[1]]}
    await refused(http, path, {"events": [system]})


@pytest.mark.parametrize(
    "rubric",
    [
        {"type": "text"},
        {"type": "text", "content": "x", "extra": 1},
        {"type": "file"},
        {"type": "url", "url": "https://x"},
    ],
)
async def test_rubrics_are_validated(http: httpx.AsyncClient, rubric: dict[str, Any]) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    outcome = {"type": "user.define_outcome", "description": "d", "rubric": rubric}
    body = {"agent": agent["id"], "environment_id": env["id"], "initial_events": [outcome]}
    await refused(http, "/v1/sessions", body)


@pytest.mark.parametrize(
    "checkout",
    [
        {"type": "branch"},
        {"type": "tag", "name": "v1"},
        {"type": "commit", "sha": "zz"},
        {"type": "branch", "name": "main", "depth": 1},
    ],
)
async def test_checkouts_are_validated(http: httpx.AsyncClient, checkout: dict[str, Any]) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    repo = {"type": "github_repository", "url": "https://github.com/o/r", "checkout": checkout}
    body = {"agent": agent["id"], "environment_id": env["id"], "resources": [repo]}
    await refused(http, "/v1/sessions", body)


async def test_input_schema_is_an_object_schema(http: httpx.AsyncClient) -> None:
    def tool(schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": "a",
            "model": "m",
            "tools": [{"type": "custom", "name": "t", "description": "d", "input_schema": schema}],
        }

    await refused(http, "/v1/agents", tool({"type": "string"}))
    await refused(http, "/v1/agents", tool({"properties": {}}))
    await refused(http, "/v1/agents", tool({"type": "object", "required": "x"}))
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string"}},
        "required": ["q"],
        "additionalProperties": False,
    }
    agent = await ok(http.post("/v1/agents", json=tool(schema)))
    assert agent["tools"][0]["input_schema"] == schema


@pytest.mark.parametrize(
    "multiagent",
    [
        {"type": "coordinator", "agents": [{"type": "agent"}]},
        {"type": "coordinator", "agents": [{"type": "self"}, {"type": "self"}]},
        {"type": "coordinator", "agents": []},
        {"type": "coordinator", "agents": [{"type": "advisor"}]},
        {"type": "multiagent_20261001", "planner": {"type": "enabled"}},
        {"type": "multiagent_20261001", "advisor": {"type": "enabled"}},
        {"type": "multiagent_20261001", "subagents": {"type": "on"}},
        {"type": "multiagent_20261001", "workflows": {"type": "disabled", "predefined_agents": []}},
        {"type": "swarm"},
    ],
)
async def test_multiagent_params_are_validated(
    http: httpx.AsyncClient, multiagent: dict[str, Any]
) -> None:
    await refused(http, "/v1/agents", {"name": "a", "model": "m", "multiagent": multiagent})


async def test_a_roster_names_each_agent_once(http: httpx.AsyncClient) -> None:
    helper = await new_agent(http, name="helper")
    ref = {"type": "agent", "id": helper["id"]}
    message = await refused(
        http,
        "/v1/agents",
        {
            "name": "a",
            "model": "m",
            "multiagent": {"type": "coordinator", "agents": [helper["id"], ref]},
        },
    )
    assert helper["id"] in message


async def test_web_fetch_shorthands_come_back_as_the_objects_the_sdk_declares(
    http: httpx.AsyncClient,
) -> None:
    config = {
        "name": "web_fetch",
        "url_sources": {"user_input": "all", "client_tool_results": "none"},
    }
    search = {"name": "web_search", "user_location": {"type": "approximate", "city": "Paris"}}
    agent = await new_agent(
        http, tools=[{"type": "agent_toolset_20260401", "configs": [config, search]}]
    )
    fetch = agent["tools"][0]["configs"][0]
    assert fetch["url_sources"] == {
        "user_input": {"type": "all"},
        "client_tool_results": {"type": "none"},
    }
    BetaManagedAgentsAgent.model_validate_json(httpx.Response(200, json=agent).text, strict=True)
    bad = {"name": "web_fetch", "url_sources": {"user_input": "some"}}
    await refused(
        http,
        "/v1/agents",
        {
            "name": "b",
            "model": "m",
            "tools": [{"type": "agent_toolset_20260401", "configs": [bad]}],
        },
    )


async def test_session_snapshots_expand_multiagent_members(http: httpx.AsyncClient) -> None:
    helper = await new_agent(http, name="helper", system="I help.")
    lead = await new_agent(
        http,
        name="lead",
        multiagent={
            "type": "coordinator",
            "agents": [
                helper["id"],
                {"type": "self"},
                {"type": "advisor", "model": "claude-opus-4-6"},
            ],
        },
    )
    modern = await new_agent(
        http,
        name="modern",
        multiagent={
            "type": "multiagent_20261001",
            "subagents": {"type": "enabled", "predefined_agents": [helper["id"], {"type": "self"}]},
        },
    )
    assert modern["multiagent"]["subagents"]["predefined_agents"] == [
        {"type": "agent", "id": helper["id"], "version": 1},
        {"type": "agent", "id": modern["id"], "version": 1},
    ]
    env = await new_env(http)
    session = await ok(
        http.post("/v1/sessions", json={"agent": lead["id"], "environment_id": env["id"]})
    )
    members = session["agent"]["multiagent"]["agents"]
    assert [m.get("name") for m in members] == ["helper", "lead", None]
    assert members[0]["system"] == "I help." and members[0]["version"] == 1
    assert members[1]["id"] == lead["id"] and "multiagent" not in members[1]
    assert members[2] == {"type": "advisor", "model": "claude-opus-4-6"}
    other = await ok(
        http.post("/v1/sessions", json={"agent": modern["id"], "environment_id": env["id"]})
    )
    predefined = other["agent"]["multiagent"]["subagents"]["predefined_agents"]
    assert [p["name"] for p in predefined] == ["helper", "modern"]
    assert other["agent"]["multiagent"]["workflows"]["predefined_agents"] == []
    for answer in (session, other):
        BetaManagedAgentsSession.model_validate_json(
            httpx.Response(200, json=answer).text, strict=True
        )


async def test_deployment_run_sessions_expand_members_too(http: httpx.AsyncClient) -> None:
    helper = await new_agent(http, name="helper")
    lead = await new_agent(
        http, name="lead", multiagent={"type": "coordinator", "agents": [helper["id"]]}
    )
    env = await new_env(http)
    dep = await ok(
        http.post(
            "/v1/deployments",
            json={
                "name": "d",
                "agent": lead["id"],
                "environment_id": env["id"],
                "initial_events": [TEXT],
            },
        )
    )
    assert "last_run_at" not in dep and "upcoming_runs_at" not in dep
    run = await ok(http.post(f"/v1/deployments/{dep['id']}/run"))
    session = await ok(http.get(f"/v1/sessions/{run['session_id']}"))
    assert session["agent"]["multiagent"]["agents"][0]["name"] == "helper"


async def test_the_engine_reads_a_resolved_self_back_as_self(http: httpx.AsyncClient) -> None:
    """A manifest's ``{"type": "self"}`` member stays in step with the resolved reference
    the provider answers, so a plan after apply shows no change."""
    spec = {
        "name": "lead",
        "model": "claude-sonnet-4-6",
        "multiagent": {
            "type": "coordinator",
            "agents": [{"type": "self"}, {"type": "advisor", "model": "claude-opus-4-6"}],
        },
    }
    live = await ok(http.post("/v1/agents", json=spec))
    assert live["multiagent"]["agents"][0]["id"] == live["id"]
    assert normalize("agent", live)["multiagent"] == normalize("agent", spec)["multiagent"]
    other = {**live, "id": "agent_someone_else"}
    assert normalize("agent", other)["multiagent"] != normalize("agent", spec)["multiagent"]


async def test_the_engine_reads_expanded_url_sources_back_as_the_shorthand(
    http: httpx.AsyncClient,
) -> None:
    config = {
        "name": "web_fetch",
        "url_sources": {"user_input": "all", "client_tool_results": "none"},
    }
    spec = {
        "name": "web",
        "model": "claude-sonnet-4-6",
        "tools": [{"type": "agent_toolset_20260401", "configs": [config]}],
    }
    live = await ok(http.post("/v1/agents", json=spec))
    assert live["tools"][0]["configs"][0]["url_sources"]["user_input"] == {"type": "all"}
    assert normalize("agent", live)["tools"] == normalize("agent", spec)["tools"]
