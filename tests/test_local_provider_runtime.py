"""The local provider's runtime plane: sessions, the echo agent, deployments, the SSE stream.

In-process over httpx's ASGI transport, except the SSE stream, which runs over loopback TCP
(the ASGI transport buffers whole responses, so an endless stream would never return).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.local_provider import (
    HEADERS,
    TEXT,
    TS,
    assert_error,
    new_agent,
    new_env,
    ok,
    walk,
)

from reconciler.provider.local import BackgroundServer, create_app

# Module-level: parametrized coroutine tests need the marker at collection time.
pytestmark = pytest.mark.anyio


# -- sessions --------------------------------------------------------------------------


async def test_session_pins_agent_version_and_plays_the_echo_agent(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http, system="v1")
    env = await new_env(http)
    await ok(http.post(f"/v1/agents/{agent['id']}", json={"system": "v2"}))
    session = await ok(
        http.post(
            "/v1/sessions",
            json={
                "agent": {"type": "agent", "id": agent["id"], "version": 1},
                "environment_id": env["id"],
                "title": "t",
            },
        )
    )
    assert re.fullmatch(r"sesn_01\w{22}", session["id"])
    assert session["status"] == "idle" and session["agent"]["version"] == 1
    assert session["agent"]["system"] == "v1" and session["vault_ids"] == []
    latest = await ok(
        http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
    )
    assert latest["agent"]["version"] == 2

    sid = session["id"]
    sent = await ok(
        http.post(
            f"/v1/sessions/{sid}/events",
            json={
                "events": [
                    {
                        "type": "user.message",
                        "content": [
                            {"type": "text", "text": "hi"},
                            {"type": "text", "text": "there"},
                        ],
                    }
                ]
            },
        )
    )
    assert [e["type"] for e in sent["data"]] == ["user.message"]
    assert re.fullmatch(r"sevt_01\w{22}", sent["data"][0]["id"])
    assert TS.match(sent["data"][0]["processed_at"])
    events = await walk(http, f"/v1/sessions/{sid}/events", limit=3)
    assert [e["type"] for e in events] == [
        "user.message",
        "session.status_running",
        "agent.message",
        "session.status_idle",
    ]
    assert events[2]["content"] == [
        {"type": "text", "text": "echo: hi"},
        {"type": "text", "text": "echo: there"},
    ]
    assert events[3]["stop_reason"] == {"type": "end_turn"}
    await ok(http.post(f"/v1/sessions/{sid}/events", json={"events": [{"type": "user.interrupt"}]}))
    tail = await ok(http.get(f"/v1/sessions/{sid}/events", params={"order": "desc", "limit": 1}))
    assert tail["data"][0]["type"] == "session.status_idle"
    only = await walk(http, f"/v1/sessions/{sid}/events", **{"types[]": "agent.message"})
    assert len(only) == 1
    current = await ok(http.get(f"/v1/sessions/{sid}"))
    assert current["status"] == "idle" and current["usage"]["output_tokens"] == 4

    await ok(http.post(f"/v1/sessions/{sid}/archive"))
    assert_error(
        await http.post(f"/v1/sessions/{sid}/events", json={"events": [TEXT]}),
        409,
        "invalid_request_error",
    )
    assert await ok(http.delete(f"/v1/sessions/{sid}")) == {"id": sid, "type": "session_deleted"}
    assert_error(
        await http.post(f"/v1/sessions/{sid}/events", json={"events": [TEXT]}),
        404,
        "not_found_error",
    )


async def test_session_create_checks_references(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    r = await http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": "env_01none"})
    assert_error(r, 404, "not_found_error", "environment_not_found")
    r = await http.post("/v1/sessions", json={"agent": "agent_01none", "environment_id": env["id"]})
    assert_error(r, 404, "not_found_error")
    r = await http.post(
        "/v1/sessions",
        json={"agent": agent["id"], "environment_id": env["id"], "vault_ids": ["vlt_01none"]},
    )
    assert_error(r, 404, "not_found_error")
    await ok(http.post(f"/v1/environments/{env['id']}/archive"))
    r = await http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
    assert_error(r, 400, "invalid_request_error", "environment_archived")


async def test_session_overrides_update_and_initial_events(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http, system="base")
    env = await new_env(http)
    session = await ok(
        http.post(
            "/v1/sessions",
            json={
                "agent": {
                    "type": "agent_with_overrides",
                    "id": agent["id"],
                    "system": "override",
                    "model": {"id": "claude-opus-4-6", "effort": "max"},
                },
                "environment_id": env["id"],
                "initial_events": [TEXT],
                "metadata": {"k": "v"},
                "budget": {"type": "limit", "max_list_cost": {"amount": "2500", "currency": "USD"}},
                "resources": [
                    {
                        "type": "github_repository",
                        "url": "https://github.com/o/repo.git",
                        "authorization_token": "ghp_secret",
                    }
                ],
            },
        )
    )
    assert session["agent"]["system"] == "override"
    assert session["agent"]["model"]["effort"] == {"type": "max"}
    assert session["resources"][0]["mount_path"] == "/workspace/repo"
    assert "ghp_secret" not in json.dumps(session)
    assert len(await walk(http, f"/v1/sessions/{session['id']}/events")) == 4
    sid = session["id"]
    r = await http.post(f"/v1/sessions/{sid}", json={"vault_ids": []})
    assert_error(r, 400, "invalid_request_error")
    updated = await ok(
        http.post(
            f"/v1/sessions/{sid}",
            json={
                "title": "renamed",
                "metadata": {"k": None},
                "budget": None,
                "agent": {"tools": [{"type": "agent_toolset_20260401"}]},
            },
        )
    )
    assert updated["title"] == "renamed" and updated["metadata"] == {}
    assert updated["budget"] is None and updated["agent"]["tools"][0]["configs"] == []
    r = await http.post(
        f"/v1/sessions/{sid}",
        json={"budget": {"type": "limit", "max_list_cost": {"amount": "1", "currency": "USD"}}},
    )
    assert_error(r, 400, "invalid_request_error")  # cannot add a budget back


async def test_session_list_filters_order_and_both_cursors(http: httpx.AsyncClient) -> None:
    a1 = await new_agent(http, name="one")
    a2 = await new_agent(http, name="two")
    env = await new_env(http)
    made = []
    for agent in (a1, a2, a1, a1, a2):
        made.append(
            await ok(
                http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
            )
        )
    await ok(http.post(f"/v1/agents/{a1['id']}", json={"system": "new"}))
    newer = await ok(
        http.post("/v1/sessions", json={"agent": a1["id"], "environment_id": env["id"]})
    )
    ids = [s["id"] for s in made] + [newer["id"]]

    assert [s["id"] for s in await walk(http, "/v1/sessions")] == ids[::-1]  # newest first
    assert [s["id"] for s in await walk(http, "/v1/sessions", order="asc")] == ids
    mine = await walk(http, "/v1/sessions", agent_id=a1["id"])
    assert len(mine) == 4
    pinned = await walk(http, "/v1/sessions", agent_id=a1["id"], agent_version=1)
    assert len(pinned) == 3
    assert_error(
        await http.get("/v1/sessions", params={"agent_version": 1}), 400, "invalid_request_error"
    )
    for key in ("statuses[]", "statuses"):
        assert len(await walk(http, "/v1/sessions", **{key: "idle"})) == 6
        assert await walk(http, "/v1/sessions", **{key: ["running", "terminated"]}) == []

    first = await ok(http.get("/v1/sessions", params={"limit": 2}))
    assert first["prev_page"] is None
    second = await ok(http.get("/v1/sessions", params={"limit": 2, "page": first["next_page"]}))
    assert second["prev_page"]
    back = await ok(http.get("/v1/sessions", params={"limit": 2, "page": second["prev_page"]}))
    assert [s["id"] for s in back["data"]] == [s["id"] for s in first["data"]]


# -- deployments -----------------------------------------------------------------------


async def test_deployments_pin_versions_pause_and_run(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    vault = await ok(http.post("/v1/vaults", json={"display_name": "v"}))
    dep = await ok(
        http.post(
            "/v1/deployments",
            json={
                "name": "nightly",
                "agent": agent["id"],
                "environment_id": env["id"],
                "initial_events": [TEXT],
                "vault_ids": [vault["id"]],
                "schedule": {
                    "type": "cron",
                    "expression": "30 2 * * *",
                    "timezone": "Europe/Paris",
                },
            },
        )
    )
    assert re.fullmatch(r"depl_01\w{22}", dep["id"])
    assert dep["agent"] == {"type": "agent", "id": agent["id"], "version": 1}
    assert dep["status"] == "active" and dep["paused_reason"] is None
    assert dep["description"] is None and "budget" not in dep and dep["resources"] == []
    # run times live inside the schedule only, where the SDK declares them
    assert "last_run_at" not in dep and "upcoming_runs_at" not in dep
    assert dep["schedule"]["last_run_at"] is None
    assert len(dep["schedule"]["upcoming_runs_at"]) == 5
    assert dep["initial_events"] == [TEXT]

    await ok(http.post(f"/v1/agents/{agent['id']}", json={"system": "v2"}))
    same = await ok(http.post(f"/v1/deployments/{dep['id']}", json={"description": "d"}))
    assert same["agent"]["version"] == 1
    repinned = await ok(
        http.post(
            f"/v1/deployments/{dep['id']}",
            json={"agent": agent["id"], "schedule": None, "vault_ids": None},
        )
    )
    assert repinned["agent"]["version"] == 2
    assert repinned["schedule"] is None and "upcoming_runs_at" not in repinned
    assert repinned["vault_ids"] == []
    r = await http.post(f"/v1/deployments/{dep['id']}", json={"name": None})
    assert_error(r, 400, "invalid_request_error")

    paused = await ok(http.post(f"/v1/deployments/{dep['id']}/pause"))
    assert paused["status"] == "paused" and paused["paused_reason"] == {"type": "manual"}
    assert [d["id"] for d in await walk(http, "/v1/deployments", status="paused")] == [dep["id"]]
    active = await ok(http.post(f"/v1/deployments/{dep['id']}/unpause"))
    assert active["status"] == "active" and active["paused_reason"] is None

    run = await ok(http.post(f"/v1/deployments/{dep['id']}/run"))
    assert re.fullmatch(r"drun_01\w{22}", run["id"]) and run["error"] is None
    assert run["trigger_context"] == {"type": "manual"}
    session = await ok(http.get(f"/v1/sessions/{run['session_id']}"))
    assert session["deployment_id"] == dep["id"] and session["agent"]["version"] == 2
    assert len(await walk(http, "/v1/sessions", deployment_id=dep["id"])) == 1
    assert await ok(http.get(f"/v1/deployment_runs/{run['id']}")) == run

    await ok(http.post(f"/v1/environments/{env['id']}/archive"))
    failed = await ok(http.post(f"/v1/deployments/{dep['id']}/run"))
    assert failed["session_id"] is None
    assert failed["error"]["type"] == "environment_archived_error"
    runs = await walk(http, "/v1/deployment_runs", deployment_id=dep["id"])
    assert [r["id"] for r in runs] == [failed["id"], run["id"]]
    assert [r["id"] for r in await walk(http, "/v1/deployment_runs", has_error="true")] == [
        failed["id"]
    ]
    assert await walk(http, "/v1/deployment_runs", deployment_id="depl_01none") == []

    archived = await ok(http.post(f"/v1/deployments/{dep['id']}/archive"))
    assert archived["status"] == "active" and archived["archived_at"]
    assert dep["id"] not in [d["id"] for d in await walk(http, "/v1/deployments")]
    assert_error(await http.post(f"/v1/deployments/{dep['id']}/run"), 400, "invalid_request_error")
    assert_error(await http.delete(f"/v1/deployments/{dep['id']}"), 405, "invalid_request_error")


@pytest.mark.parametrize(
    "body",
    [
        {"initial_events": []},
        {"initial_events": [TEXT] * 51},
        {"schedule": {"type": "cron", "expression": "@daily", "timezone": "UTC"}},
        {"schedule": {"type": "cron", "expression": "61 * * * *", "timezone": "UTC"}},
        {"schedule": {"type": "cron", "expression": "0 9 * * *", "timezone": "Mars/Olympus"}},
    ],
)
async def test_deployment_validation(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    agent = await new_agent(http)
    env = await new_env(http)
    full = {
        "name": "d",
        "agent": agent["id"],
        "environment_id": env["id"],
        "initial_events": [TEXT],
        **body,
    }
    assert_error(await http.post("/v1/deployments", json=full), 400, "invalid_request_error")


# -- SSE over TCP ----------------------------------------------------------------------


async def test_event_stream_delivers_new_events_and_ends_on_delete(provider_db: Path) -> None:
    app = create_app(provider_db, ping_interval=0.2)
    with BackgroundServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=10) as http:
            agent = await new_agent(http)
            env = await new_env(http)
            session = await ok(
                http.post(
                    "/v1/sessions",
                    json={
                        "agent": agent["id"],
                        "environment_id": env["id"],
                        "initial_events": [TEXT],
                    },
                )
            )
            sid = session["id"]
            frames: list[tuple[str, dict[str, Any]]] = []
            async with http.stream("GET", f"/v1/sessions/{sid}/events/stream") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                event = None
                sent = False
                async for line in lines:
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event is not None:
                        frames.append((event, json.loads(line[6:])))
                        if event == "ping" and not sent:
                            sent = True
                            await ok(
                                http.post(f"/v1/sessions/{sid}/events", json={"events": [TEXT]})
                            )
                        if event == "session.status_idle":
                            await ok(http.delete(f"/v1/sessions/{sid}"))
                        if event == "session.deleted":
                            break
            kinds = [k for k, _ in frames if k != "ping"]
            # History (the initial event's turn) is not replayed; only what came after.
            assert kinds == [
                "user.message",
                "session.status_running",
                "agent.message",
                "session.status_idle",
                "session.deleted",
            ]
            assert frames[0][0] == "ping"
            assert all(data["type"] == kind for kind, data in frames)


async def test_stopping_the_server_ends_open_streams(provider_db: Path) -> None:
    app = create_app(provider_db)
    server = BackgroundServer(app).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=10) as http:
            agent = await new_agent(http)
            env = await new_env(http)
            session = await ok(
                http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
            )
            async with http.stream("GET", f"/v1/sessions/{session['id']}/events/stream") as s:
                lines = s.aiter_lines()
                assert await anext(lines) == "event: ping"
                start = time.perf_counter()
                await asyncio.to_thread(server.stop)
                assert time.perf_counter() - start < 5
                with contextlib.suppress(httpx.TransportError):
                    async for _ in lines:  # drains to the end instead of hanging
                        pass
    finally:
        server.stop()
    # The app outlives its server: a new server streams again.
    with BackgroundServer(app) as again:
        async with (
            httpx.AsyncClient(base_url=again.url, headers=HEADERS, timeout=10) as http,
            http.stream("GET", f"/v1/sessions/{session['id']}/events/stream") as s,
        ):
            assert await anext(s.aiter_lines()) == "event: ping"


async def test_a_content_block_whose_type_is_not_a_string_is_a_400(
    http: httpx.AsyncClient,
) -> None:
    """Found by the slow OpenAPI fuzz: ``{"type": {...}}`` in a tool result's content was a
    500 (an unhashable type tested against the allowed block types)."""
    agent = await new_agent(http)
    env = await new_env(http)
    session = await ok(
        http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
    )
    event = {
        "type": "user.tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": {"nested": 1}, "text": "x"}],
    }
    r = await http.post(f"/v1/sessions/{session['id']}/events", json={"events": [event]})
    assert_error(r, 400, "invalid_request_error")
