"""The local provider's control plane over plain httpx (in-process ASGI).

Agents, environments, vaults and credentials: server defaults, versions, update semantics,
limits, archive/delete, uniqueness, pagination and the error envelope. Each test reads like
the wire reference: a request, and what the API answers.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from support.local_provider import (
    BETA,
    HEADERS,
    TS,
    assert_error,
    local_client,
    new_agent,
    new_env,
    new_skill,
    ok,
    walk,
)

from reconciler.provider.local.ids import now_ts

# Module-level: parametrized coroutine tests need the marker at collection time.
pytestmark = pytest.mark.anyio


# -- agents ----------------------------------------------------------------------------


async def test_agent_create_fills_the_server_defaults(http: httpx.AsyncClient) -> None:
    skill = await new_skill(http)
    agent = await new_agent(
        http,
        description="",
        tools=[
            {"type": "agent_toolset_20260401", "configs": [{"name": "bash", "enabled": False}]},
            {
                "type": "mcp_toolset",
                "mcp_server_name": "github",
                "configs": [{"name": "create_issue"}],
            },
            {
                "type": "custom",
                "name": "lookup",
                "description": "d",
                "input_schema": {"type": "object"},
            },
        ],
        mcp_servers=[{"type": "url", "name": "github", "url": "https://mcp.example.com"}],
        skills=[
            {"type": "anthropic", "skill_id": "xlsx"},
            {"type": "custom", "skill_id": skill["id"], "version": "latest"},
            {"type": "anthropic", "skill_id": "pdf", "version": "20251013"},
        ],
    )
    assert re.fullmatch(r"agent_01[1-9A-HJ-NP-Za-km-z]{22}", agent["id"])
    assert agent["type"] == "agent" and agent["version"] == 1
    assert agent["model"] == {
        "id": "claude-sonnet-4-6",
        "effort": {"type": "high"},
        "inference_geo": None,
        "speed": "standard",
    }
    assert agent["description"] is None and agent["system"] is None
    toolset, mcp, custom = agent["tools"]
    assert toolset == {
        "type": "agent_toolset_20260401",
        "default_config": {"enabled": True, "permission_policy": {"type": "always_allow"}},
        "configs": [
            {
                "name": "bash",
                "type": "bash",
                "enabled": False,
                "permission_policy": {"type": "always_allow"},
            }
        ],
    }
    assert mcp == {
        "type": "mcp_toolset",
        "mcp_server_name": "github",
        "default_config": {"enabled": True, "permission_policy": {"type": "always_ask"}},
        "configs": [
            {"name": "create_issue", "enabled": True, "permission_policy": {"type": "always_ask"}}
        ],
    }
    assert custom == {
        "type": "custom",
        "name": "lookup",
        "description": "d",
        "input_schema": {"type": "object"},
    }
    assert [s["version"] for s in agent["skills"]] == [
        "20251013",
        skill["latest_version_id"],
        "20251013",
    ]
    assert agent["execution_identity"] == {"type": "service_account"}
    assert agent["multiagent"] is None and agent["metadata"] == {}
    assert TS.match(agent["created_at"]) and agent["created_at"] == agent["updated_at"]
    assert agent["archived_at"] is None
    assert await ok(http.get(f"/v1/agents/{agent['id']}")) == agent


async def test_agent_versions_grow_only_when_the_object_changes(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http, system="v1")
    aid = agent["id"]
    v2 = await ok(http.post(f"/v1/agents/{aid}", json={"system": "v2", "version": 1}))
    assert v2["version"] == 2 and v2["system"] == "v2"
    same = await ok(http.post(f"/v1/agents/{aid}", json={"system": "v2", "name": "coder"}))
    assert same == v2  # a no-op update neither bumps the version nor touches updated_at
    v3 = await ok(http.post(f"/v1/agents/{aid}", json={"metadata": {"team": "infra"}}))
    assert v3["version"] == 3

    old = await ok(http.get(f"/v1/agents/{aid}", params={"version": 1}))
    assert old["version"] == 1 and old["system"] == "v1"
    assert_error(await http.get(f"/v1/agents/{aid}", params={"version": 9}), 404, "not_found_error")
    assert_error(
        await http.get(f"/v1/agents/{aid}", params={"version": 0}), 400, "invalid_request_error"
    )

    versions = await walk(http, f"/v1/agents/{aid}/versions", limit=2)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[2]["system"] == "v1"

    stale = await http.post(f"/v1/agents/{aid}", json={"system": "v4", "version": 2})
    assert_error(stale, 409, "invalid_request_error")
    assert stale.headers["x-should-retry"] == "false"
    assert (await ok(http.get(f"/v1/agents/{aid}")))["version"] == 3


async def test_agent_update_semantics(http: httpx.AsyncClient) -> None:
    agent = await new_agent(
        http,
        description="d",
        system="s",
        metadata={"a": "1", "b": "2"},
        model={"id": "claude-opus-4-6", "effort": "low", "inference_geo": "us", "speed": "fast"},
        tools=[{"type": "agent_toolset_20260401"}],
    )
    aid = agent["id"]
    updated = await ok(
        http.post(
            f"/v1/agents/{aid}",
            json={
                "description": None,
                "system": "",
                "metadata": {"a": None, "c": "3"},
                "model": {"id": "claude-sonnet-4-6"},
                "tools": [],
            },
        )
    )
    assert updated["name"] == "coder"  # omitted: kept
    assert updated["description"] is None and updated["system"] is None
    assert updated["metadata"] == {"b": "2", "c": "3"}
    # Whole-object replacement, except that an omitted effort keeps the stored one.
    assert updated["model"] == {
        "id": "claude-sonnet-4-6",
        "effort": {"type": "low"},
        "inference_geo": None,
        "speed": "standard",
    }
    assert updated["tools"] == []
    again = await ok(
        http.post(f"/v1/agents/{aid}", json={"model": "claude-haiku-4-5", "tools": None})
    )
    assert again["model"]["effort"] == {"type": "low"} and again["tools"] == []
    assert_error(
        await http.post(f"/v1/agents/{aid}", json={"name": None}), 400, "invalid_request_error"
    )


async def test_agent_mcp_servers_must_be_unique_and_referenced(http: httpx.AsyncClient) -> None:
    server = {"type": "url", "name": "gh", "url": "https://x"}
    r = await http.post("/v1/agents", json={"name": "a", "model": "m", "mcp_servers": [server]})
    assert_error(r, 400, "invalid_request_error")
    toolset = {"type": "mcp_toolset", "mcp_server_name": "gh"}
    r = await http.post(
        "/v1/agents",
        json={"name": "a", "model": "m", "tools": [toolset], "mcp_servers": [server, server]},
    )
    assert_error(r, 400, "invalid_request_error")
    r = await http.post("/v1/agents", json={"name": "a", "model": "m", "tools": [toolset]})
    assert_error(r, 400, "invalid_request_error")
    await ok(
        http.post(
            "/v1/agents",
            json={"name": "a", "model": "m", "tools": [toolset], "mcp_servers": [server]},
        )
    )


async def test_agent_multiagent_roster_resolves_versions(http: httpx.AsyncClient) -> None:
    helper = await new_agent(http, name="helper")
    boss = await new_agent(
        http,
        name="boss",
        multiagent={"type": "coordinator", "agents": [helper["id"], {"type": "self"}]},
    )
    # ``self`` is resolved to the agent version shown, never echoed (the SDK has no such entry)
    assert boss["multiagent"]["agents"] == [
        {"type": "agent", "id": helper["id"], "version": 1},
        {"type": "agent", "id": boss["id"], "version": 1},
    ]
    v2 = await ok(http.post(f"/v1/agents/{boss['id']}", json={"description": "v2"}))
    assert v2["multiagent"]["agents"][1] == {"type": "agent", "id": boss["id"], "version": 2}
    v1 = await ok(http.get(f"/v1/agents/{boss['id']}", params={"version": 1}))
    assert v1["multiagent"]["agents"][1]["version"] == 1
    same = await ok(
        http.post(
            f"/v1/agents/{boss['id']}",
            json={
                "multiagent": {"type": "coordinator", "agents": [helper["id"], {"type": "self"}]}
            },
        )
    )
    assert same["version"] == 2  # the same roster again is no change
    r = await http.post(
        "/v1/agents",
        json={
            "name": "x",
            "model": "m",
            "multiagent": {"type": "coordinator", "agents": [boss["id"]]},
        },
    )
    assert_error(r, 400, "invalid_request_error")  # depth 1 only
    modern = await new_agent(http, name="m2", multiagent={"type": "multiagent_20261001"})
    assert modern["multiagent"]["advisor"] == {"type": "disabled"}
    merged = await ok(
        http.post(
            f"/v1/agents/{modern['id']}",
            json={
                "multiagent": {
                    "type": "multiagent_20261001",
                    "advisor": {"type": "enabled", "model": "claude-opus-4-6"},
                }
            },
        )
    )
    assert merged["multiagent"]["advisor"] == {"type": "enabled", "model": "claude-opus-4-6"}
    assert merged["multiagent"]["subagents"]["type"] == "enabled"


# -- limits and envelopes --------------------------------------------------------------

LONG = "x" * 100


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (
            "/v1/agents",
            {"name": "a", "model": "m", "metadata": {f"k{i}": "v" for i in range(17)}},
            "invalid_metadata",
        ),
        (
            "/v1/agents",
            {"name": "a", "model": "m", "metadata": {"k" * 65: "v"}},
            "invalid_metadata",
        ),
        (
            "/v1/agents",
            {"name": "a", "model": "m", "metadata": {"k": "v" * 513}},
            "invalid_metadata",
        ),
        ("/v1/agents", {"name": "a", "model": "m", "metadata": {"k": 1}}, "invalid_metadata"),
        ("/v1/vaults", {"display_name": "v", "metadata": {"k": None}}, "invalid_metadata"),
        ("/v1/agents", {"name": "", "model": "m"}, None),
        ("/v1/agents", {"name": "n" * 257, "model": "m"}, None),
        ("/v1/agents", {"name": "a", "model": "m", "description": "d" * 2049}, None),
        ("/v1/agents", {"name": "a", "model": "m", "system": "s" * 100_001}, None),
        (
            "/v1/agents",
            {"name": "a", "model": "m", "tools": [{"type": "agent_toolset_20260401"}] * 257},
            None,
        ),
        (
            "/v1/agents",
            {
                "name": "a",
                "model": "m",
                "mcp_servers": [
                    {"type": "url", "name": f"s{i}", "url": "https://x"} for i in range(21)
                ],
            },
            None,
        ),
        ("/v1/agents", {"name": "a", "model": "m", "colour": "red"}, None),
        ("/v1/agents", {"name": "a", "model": {"id": "m", "speed": "warp"}}, None),
        ("/v1/vaults", {"display_name": ""}, None),
        ("/v1/vaults", {"display_name": "v" * 256}, None),
        ("/v1/environments", {"name": "e", "config": {"type": "moon"}}, None),
    ],
)
async def test_limits_are_400_invalid_request_errors(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], code: str | None
) -> None:
    assert_error(await http.post(path, json=body), 400, "invalid_request_error", code)


async def test_agent_metadata_patch_beyond_16_keys_is_rejected(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http, metadata={f"k{i}": "v" for i in range(16)})
    r = await http.post(f"/v1/agents/{agent['id']}", json={"metadata": {"one_more": "v"}})
    assert_error(r, 400, "invalid_request_error", "invalid_metadata")
    swapped = await ok(
        http.post(f"/v1/agents/{agent['id']}", json={"metadata": {"k0": None, "one_more": "v"}})
    )
    assert len(swapped["metadata"]) == 16


async def test_list_limit_bounds(http: httpx.AsyncClient) -> None:
    for path in ("/v1/agents", "/v1/environments", "/v1/vaults", "/v1/sessions", "/v1/deployments"):
        assert_error(await http.get(path, params={"limit": 0}), 400, "invalid_request_error")
        assert_error(await http.get(path, params={"limit": 101}), 400, "invalid_request_error")
        await ok(http.get(path, params={"limit": 100}))
    await ok(http.get("/v1/deployment_runs", params={"limit": 1000}))
    assert_error(
        await http.get("/v1/deployment_runs", params={"limit": 1001}), 400, "invalid_request_error"
    )


async def test_errors_use_the_envelope_and_never_422(http: httpx.AsyncClient) -> None:
    bad_json = await http.post(
        "/v1/agents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(bad_json, 400, "invalid_request_error")
    assert_error(await http.post("/v1/agents"), 400, "invalid_request_error")
    assert_error(await http.post("/v1/agents", json=[1, 2]), 400, "invalid_request_error")
    assert_error(
        await http.post("/v1/agents", json={"name": 5, "model": []}), 400, "invalid_request_error"
    )
    missing = await http.get("/v1/agents/agent_01nothere")
    assert_error(missing, 404, "not_found_error")
    assert "agent_01nothere" in missing.json()["error"]["message"]
    assert_error(await http.get("/v1/nowhere"), 404, "not_found_error")
    wrong = await http.delete("/v1/agents/agent_01x")
    assert_error(wrong, 405, "invalid_request_error")
    # every method the path takes (it said only the first route's: "GET")
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    assert (await http.put("/v1/agents")).headers["allow"] == "GET, HEAD, POST"
    assert_error(
        await http.get("/v1/agents", params={"page": "garbage"}), 400, "invalid_request_error"
    )
    assert_error(
        await http.get("/v1/agents", params={"created_at[gte]": "yesterday"}),
        400,
        "invalid_request_error",
    )
    lone = b'{"name": "\\ud800", "model": "m"}'
    r = await http.post(
        "/v1/environments", content=lone, headers={"content-type": "application/json"}
    )
    assert r.status_code in (200, 400) and r.status_code != 422


async def test_beta_header_is_required_and_any_key_is_accepted(app: Any) -> None:
    key = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    async with local_client(app, headers={}) as bare:
        assert_error(await bare.get("/v1/agents", headers=key), 400, "invalid_request_error")
        assert_error(
            await bare.get("/v1/agents", headers={**key, "anthropic-beta": "other-beta"}),
            400,
            "invalid_request_error",
        )
        combined = {"anthropic-beta": "files-api-2025-04-14,managed-agents-2026-04-01", **key}
        await ok(bare.get("/v1/agents", headers=combined))
        for auth in ({"x-api-key": "k"}, {"authorization": "Bearer k"}):
            r = await bare.get(
                "/v1/agents",
                params={"beta": "true"},
                headers={**BETA, **auth, "anthropic-version": "1999-01-01"},
            )
            assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
        assert (await bare.get("/openapi.json")).status_code == 200


async def test_a_request_without_a_key_is_401_on_every_v1_path(app: Any) -> None:
    async with local_client(app, headers={}) as bare:
        for method, path, headers in (
            ("GET", "/v1/agents", BETA),
            ("GET", "/v1/agents", {}),
            ("POST", "/v1/sessions", BETA),
            ("GET", "/v1/no_such_route", {}),
            ("GET", "/v1/agents", {**BETA, "x-api-key": ""}),
            ("GET", "/v1/agents", {**BETA, "authorization": "Basic dTpw"}),
            ("GET", "/v1/agents", {**BETA, "authorization": "Bearer "}),
        ):
            r = await bare.request(method, path, headers=headers)
            assert_error(r, 401, "authentication_error")
            assert "key" in r.json()["error"]["message"].lower() or "Bearer" in r.text


async def test_routing_comes_before_the_beta_header(app: Any) -> None:
    """An unknown route is a 404 and a wrong method a 405 whatever the headers say; a known
    route without its beta is the 400 naming the beta, without anthropic-version the API's
    400 saying it is required."""
    async with local_client(app, headers={}) as bare:
        for headers in ({"x-api-key": "k"}, HEADERS):
            for path in ("/v1/no_such_route", "/v1/agents/agent_1/nope", "/v2/agents"):
                assert_error(await bare.get(path, headers=headers), 404, "not_found_error")
            r = await bare.delete("/v1/agents", headers=headers)
            assert_error(r, 405, "invalid_request_error")
        version = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
        r = await bare.get("/v1/agents", headers=version)
        assert_error(r, 400, "invalid_request_error")
        assert "managed-agents-2026-04-01" in r.json()["error"]["message"]
        # no anthropic-version (the API's words), before the beta is looked at
        for headers in ({"x-api-key": "k"}, {**BETA, "x-api-key": "k"}):
            r = await bare.get("/v1/agents", headers=headers)
            assert_error(r, 400, "invalid_request_error")
            assert r.json()["error"]["message"] == "anthropic-version: header is required"


# -- environments ----------------------------------------------------------------------


async def test_environment_defaults_and_update_rules(http: httpx.AsyncClient) -> None:
    env = await new_env(http)
    assert re.fullmatch(r"env_01\w{22}", env["id"])
    assert env["config"] == {
        "type": "cloud",
        "networking": {"type": "unrestricted"},
        "packages": {
            "type": "packages",
            "pip": [],
            "npm": [],
            "apt": [],
            "cargo": [],
            "gem": [],
            "go": [],
        },
    }
    assert env["description"] is None and env["scope"] == "organization"
    eid = env["id"]
    limited = await ok(
        http.post(
            f"/v1/environments/{eid}",
            json={
                "config": {
                    "type": "cloud",
                    "networking": {"type": "limited", "allowed_hosts": ["api.x.com"]},
                }
            },
        )
    )
    assert limited["config"]["networking"] == {
        "type": "limited",
        "allowed_hosts": ["api.x.com"],
        "allow_mcp_servers": False,
        "allow_package_managers": False,
    }
    r = await http.post(
        f"/v1/environments/{eid}",
        json={"config": {"type": "cloud", "packages": {"pip": ["pandas"]}}},
    )
    assert_error(r, 400, "invalid_request_error")  # packages need allow_package_managers
    packed = await ok(
        http.post(
            f"/v1/environments/{eid}",
            json={
                "config": {
                    "type": "cloud",
                    "networking": {"type": "limited", "allow_package_managers": True},
                    "packages": {"pip": ["pandas==2.2.0"]},
                }
            },
        )
    )
    assert packed["config"]["networking"]["allowed_hosts"] == ["api.x.com"]  # kept
    kept = await ok(http.post(f"/v1/environments/{eid}", json={"config": {"type": "cloud"}}))
    assert kept["config"] == packed["config"]
    r = await http.post(f"/v1/environments/{eid}", json={"config": {"type": "self_hosted"}})
    assert_error(r, 400, "invalid_request_error", "invalid_config_type_change")

    meta = await ok(
        http.post(
            f"/v1/environments/{eid}", json={"metadata": {"a": "1", "b": "2"}, "description": ""}
        )
    )
    assert meta["description"] == ""
    meta = await ok(http.post(f"/v1/environments/{eid}", json={"metadata": {"a": "", "b": None}}))
    assert meta["metadata"] == {}


async def test_environment_names_are_unique_among_active(http: httpx.AsyncClient) -> None:
    first = await new_env(http, "data")
    r = await http.post("/v1/environments", json={"name": "data"})
    assert_error(r, 409, "invalid_request_error")
    assert r.headers["x-should-retry"] == "false"
    other = await new_env(http, "other")
    assert_error(
        await http.post(f"/v1/environments/{other['id']}", json={"name": "data"}),
        409,
        "invalid_request_error",
    )
    await ok(http.post(f"/v1/environments/{first['id']}/archive"))
    await new_env(http, "data")  # the archived one no longer holds the name


async def test_archive_is_idempotent_hides_and_freezes(http: httpx.AsyncClient) -> None:
    env = await new_env(http)
    agent = await new_agent(http)
    vault = await ok(http.post("/v1/vaults", json={"display_name": "v"}))
    for path, obj in (("environments", env), ("agents", agent), ("vaults", vault)):
        archived = await ok(http.post(f"/v1/{path}/{obj['id']}/archive"))
        assert TS.match(archived["archived_at"])
        assert await ok(http.post(f"/v1/{path}/{obj['id']}/archive")) == archived
        assert await ok(http.get(f"/v1/{path}/{obj['id']}")) == archived
        assert obj["id"] not in [o["id"] for o in await walk(http, f"/v1/{path}")]
        listed = await walk(http, f"/v1/{path}", include_archived="true")
        assert obj["id"] in [o["id"] for o in listed]
    assert (await ok(http.get(f"/v1/agents/{agent['id']}")))["version"] == 1
    assert_error(
        await http.post(f"/v1/environments/{env['id']}", json={"name": "n"}),
        400,
        "invalid_request_error",
        "environment_archived",
    )
    assert_error(
        await http.post(f"/v1/agents/{agent['id']}", json={"name": "n"}),
        400,
        "invalid_request_error",
    )
    assert_error(
        await http.post(f"/v1/vaults/{vault['id']}", json={"display_name": "n"}),
        400,
        "invalid_request_error",
    )


async def test_delete_where_the_wire_allows_it(http: httpx.AsyncClient) -> None:
    env = await new_env(http)
    assert await ok(http.delete(f"/v1/environments/{env['id']}")) == {
        "id": env["id"],
        "type": "environment_deleted",
    }
    assert_error(await http.get(f"/v1/environments/{env['id']}"), 404, "not_found_error")
    assert_error(await http.delete(f"/v1/environments/{env['id']}"), 404, "not_found_error")
    vault = await ok(http.post("/v1/vaults", json={"display_name": "v"}))
    assert (await ok(http.delete(f"/v1/vaults/{vault['id']}")))["type"] == "vault_deleted"
    agent = await new_agent(http)
    assert_error(await http.delete(f"/v1/agents/{agent['id']}"), 405, "invalid_request_error")


# -- vaults and credentials -------------------------------------------------------------

SECRETS = ("tok-static-123", "tok-access-456", "tok-refresh-789", "tok-client-000", "tok-env-999")


async def test_credentials_never_return_secrets(http: httpx.AsyncClient) -> None:
    vault = await ok(http.post("/v1/vaults", json={"display_name": "github"}))
    base = f"/v1/vaults/{vault['id']}/credentials"
    seen: list[str] = []
    static = await http.post(
        base,
        json={
            "display_name": "gh",
            "auth": {
                "type": "static_bearer",
                "token": SECRETS[0],
                "mcp_server_url": "https://mcp.gh",
            },
        },
    )
    oauth = await http.post(
        base,
        json={
            "auth": {
                "type": "mcp_oauth",
                "access_token": SECRETS[1],
                "mcp_server_url": "https://mcp.other",
                "expires_at": "2099-01-01T00:00:00Z",
                "refresh": {
                    "client_id": "cid",
                    "refresh_token": SECRETS[2],
                    "token_endpoint": "https://t",
                    "token_endpoint_auth": {
                        "type": "client_secret_basic",
                        "client_secret": SECRETS[3],
                    },
                },
            }
        },
    )
    env_var = await http.post(
        base,
        json={
            "auth": {
                "type": "environment_variable",
                "secret_name": "API_KEY",
                "secret_value": SECRETS[4],
                "networking": {"type": "limited", "allowed_hosts": ["api.x.com"]},
            }
        },
    )
    for r in (static, oauth, env_var):
        seen.append(r.text)
    assert static.json()["auth"] == {"type": "static_bearer", "mcp_server_url": "https://mcp.gh"}
    assert oauth.json()["auth"] == {
        "type": "mcp_oauth",
        "mcp_server_url": "https://mcp.other",
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "refresh": {
            "client_id": "cid",
            "token_endpoint": "https://t",
            "token_endpoint_auth": {"type": "client_secret_basic"},
            "resource": None,
            "scope": None,
        },
    }
    assert env_var.json()["auth"] == {
        "type": "environment_variable",
        "secret_name": "API_KEY",
        "injection_location": {"body": True, "header": True},
        "networking": {"type": "limited", "allowed_hosts": ["api.x.com"]},
    }
    assert re.fullmatch(r"vcrd_01\w{22}", static.json()["id"])
    sid = static.json()["id"]
    rotated = await http.post(
        f"{base}/{sid}", json={"auth": {"type": "static_bearer", "token": "tok-new-111"}}
    )
    seen += [rotated.text, (await http.get(f"{base}/{sid}")).text, (await http.get(base)).text]
    check = await ok(http.post(f"{base}/{oauth.json()['id']}/mcp_oauth_validate"))
    assert check["status"] == "unknown" and check["has_refresh_token"] is True
    seen.append((await http.post(f"{base}/{sid}/archive")).text)
    for text in seen:
        for secret in (*SECRETS, "tok-new-111"):
            assert secret not in text


async def test_archive_purges_a_credentials_secrets_and_keeps_a_sessions(
    app: Any, http: httpx.AsyncClient
) -> None:
    store = app.state.provider.store
    vault = await ok(http.post("/v1/vaults", json={"display_name": "v"}))
    auth = {"type": "static_bearer", "token": "tok-1", "mcp_server_url": "https://one"}
    cred = await ok(http.post(f"/v1/vaults/{vault['id']}/credentials", json={"auth": auth}))
    assert store.get(cred["id"], "credential").secrets != {}
    await ok(http.post(f"/v1/vaults/{vault['id']}/credentials/{cred['id']}/archive"))
    assert store.get(cred["id"], "credential").secrets == {}

    repo = {
        "type": "github_repository",
        "url": "https://github.com/o/r",
        "authorization_token": "t",
    }
    agent, env = await new_agent(http), await new_env(http)
    body = {"agent": agent["id"], "environment_id": env["id"], "resources": [repo]}
    session = await ok(http.post("/v1/sessions", json=body))
    await ok(http.post(f"/v1/sessions/{session['id']}/archive"))
    assert store.get(session["id"], "session").secrets == {"resource_tokens": ["t"]}


async def test_deleting_a_vault_deletes_its_credentials(app: Any, http: httpx.AsyncClient) -> None:
    store = app.state.provider.store
    vault = await ok(http.post("/v1/vaults", json={"display_name": "v"}))
    auth = {"type": "static_bearer", "token": "tok-1", "mcp_server_url": "https://one"}
    cred = await ok(http.post(f"/v1/vaults/{vault['id']}/credentials", json={"auth": auth}))
    await ok(http.delete(f"/v1/vaults/{vault['id']}"))
    assert store.get(cred["id"], "credential") is None


async def test_credential_keys_types_and_quota(http: httpx.AsyncClient) -> None:
    vault = await ok(http.post("/v1/vaults", json={"display_name": "v"}))
    base = f"/v1/vaults/{vault['id']}/credentials"
    auth = {"type": "static_bearer", "token": "t", "mcp_server_url": "https://one"}
    first = await ok(http.post(base, json={"auth": auth}))
    r = await http.post(base, json={"auth": {**auth, "token": "other"}})
    assert_error(r, 409, "invalid_request_error")
    r = await http.post(f"{base}/{first['id']}", json={"auth": {"type": "mcp_oauth"}})
    assert_error(r, 400, "invalid_request_error")  # auth.type is immutable
    await ok(http.post(f"{base}/{first['id']}/archive"))
    await ok(http.post(base, json={"auth": auth}))  # archiving freed the key
    for i in range(19):
        await ok(http.post(base, json={"auth": {**auth, "mcp_server_url": f"https://n{i}"}}))
    r = await http.post(base, json={"auth": {**auth, "mcp_server_url": "https://21st"}})
    assert_error(r, 400, "invalid_request_error")
    assert len(await walk(http, base)) == 20
    assert len(await walk(http, base, include_archived="true")) == 21
    other = await ok(http.post("/v1/vaults", json={"display_name": "w"}))
    assert_error(
        await http.get(f"/v1/vaults/{other['id']}/credentials/{first['id']}"),
        404,
        "not_found_error",
    )
    await ok(http.delete(f"/v1/vaults/{vault['id']}"))
    assert_error(await http.get(f"{base}/{first['id']}"), 404, "not_found_error")


# -- pagination ------------------------------------------------------------------------


async def test_pagination_walks_every_page_and_ends_with_null(http: httpx.AsyncClient) -> None:
    ids = [
        (await ok(http.post("/v1/vaults", json={"display_name": f"v{i}"})))["id"] for i in range(45)
    ]
    first = await ok(http.get("/v1/vaults"))
    assert len(first["data"]) == 20 and first["next_page"]
    sizes = []
    page = None
    seen: list[str] = []
    while True:
        body = await ok(
            http.get("/v1/vaults", params={"limit": 20, **({"page": page} if page else {})})
        )
        sizes.append(len(body["data"]))
        seen += [v["id"] for v in body["data"]]
        page = body["next_page"]
        if page is None:
            break
    assert sizes == [20, 20, 5] and seen == ids
    r = await http.get("/v1/agents", params={"page": first["next_page"]})
    assert_error(r, 400, "invalid_request_error")  # a cursor of another list


async def test_pagination_is_stable_under_concurrent_inserts(http: httpx.AsyncClient) -> None:
    originals = [(await new_agent(http, name=f"a{i}"))["id"] for i in range(30)]
    body = await ok(http.get("/v1/agents", params={"limit": 10}))
    seen = [a["id"] for a in body["data"]]
    page = body["next_page"]
    while page:
        await new_agent(http, name="late")  # lands after every cursor
        body = await ok(http.get("/v1/agents", params={"limit": 10, "page": page}))
        seen += [a["id"] for a in body["data"]]
        page = body["next_page"]
    assert seen[:30] == originals
    assert len(seen) == len(set(seen))


async def test_list_created_at_filters(http: httpx.AsyncClient) -> None:
    await new_agent(http)
    cut = now_ts()
    await asyncio.sleep(0.002)
    late = await new_agent(http, name="late")
    after = await walk(http, "/v1/agents", **{"created_at[gte]": cut})
    assert [a["id"] for a in after] == [late["id"]]
    before = await walk(http, "/v1/agents", **{"created_at[lte]": "2000-01-01T00:00:00+00:00"})
    assert before == []
