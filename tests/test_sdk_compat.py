"""The official ``anthropic`` SDK (2.10.0) drives the local provider over loopback TCP.

The SDK is the judge of wire compatibility: its typed models must parse every response,
its auto-pagination must walk every page, and its own error classes must come back.
``max_retries=0`` so that a wrong status is never papered over by a retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types.beta import (
    BetaEnvironment,
    BetaEnvironmentArchivedError,
    BetaInvalidConfigTypeChangeError,
    BetaInvalidMetadataError,
    BetaManagedAgentsAgent,
    BetaManagedAgentsDeployment,
    BetaManagedAgentsDeploymentRun,
    BetaManagedAgentsSession,
    BetaManagedAgentsVault,
)
from anthropic.types.beta.vaults import BetaManagedAgentsCredential

from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

# anyio at collection time keeps coroutine tests on the asyncio backend only.
pytestmark = [pytest.mark.tcp, pytest.mark.anyio]

MESSAGE = {"type": "user.message", "content": [{"type": "text", "text": "ping"}]}


@pytest.fixture
def sdk(tcp_provider: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=tcp_provider, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def env_id(sdk: anthropic.Anthropic) -> str:
    return sdk.beta.environments.create(name="sdk-env").id


def test_agents_round_trip_through_sdk_types(sdk: anthropic.Anthropic) -> None:
    agent = sdk.beta.agents.create(
        name="coder",
        model="claude-sonnet-4-6",
        system="You code.",
        tools=[
            {
                "type": "agent_toolset_20260401",
                "configs": [{"name": "web_fetch", "enabled": False}],
            },
            {"type": "mcp_toolset", "mcp_server_name": "gh"},
        ],
        mcp_servers=[{"type": "url", "name": "gh", "url": "https://mcp.example.com"}],
        skills=[{"type": "anthropic", "skill_id": "xlsx"}],
        metadata={"owner": "infra"},
    )
    assert isinstance(agent, BetaManagedAgentsAgent)
    assert agent.version == 1 and isinstance(agent.created_at, datetime)
    assert agent.model.effort is not None and agent.model.effort.type == "high"
    assert agent.tools[0].type == "agent_toolset_20260401"
    assert agent.skills[0].version == "20251013"
    assert agent.execution_identity.type == "service_account"

    v2 = sdk.beta.agents.update(agent.id, version=1, description="now described")
    assert v2.version == 2 and v2.description == "now described"
    assert sdk.beta.agents.retrieve(agent.id, version=1).description is None
    assert [v.version for v in sdk.beta.agents.versions.list(agent.id, limit=1)] == [2, 1]

    with pytest.raises(anthropic.ConflictError) as conflict:
        sdk.beta.agents.update(agent.id, version=1, description="stale")
    assert conflict.value.status_code == 409
    assert conflict.value.response.headers["x-should-retry"] == "false"

    archived = sdk.beta.agents.archive(agent.id)
    assert archived.archived_at is not None
    assert agent.id not in [a.id for a in sdk.beta.agents.list()]
    assert agent.id in [a.id for a in sdk.beta.agents.list(include_archived=True)]


def test_auto_pagination_walks_every_page(sdk: anthropic.Anthropic) -> None:
    made = [sdk.beta.agents.create(name=f"a{i}", model="claude-haiku-4-5").id for i in range(23)]
    assert [a.id for a in sdk.beta.agents.list(limit=5)] == made
    first = sdk.beta.agents.list(limit=20)
    assert len(first.data) == 20 and first.has_next_page()
    last = first.get_next_page()
    assert len(last.data) == 3 and not last.has_next_page() and last.next_page is None
    since = sdk.beta.agents.list(created_at_gte=datetime(2000, 1, 1))
    assert len(list(since)) == 23


def test_environments_through_sdk(sdk: anthropic.Anthropic) -> None:
    env = sdk.beta.environments.create(
        name="data",
        config={
            "type": "cloud",
            "networking": {
                "type": "limited",
                "allowed_hosts": ["pypi.org"],
                "allow_package_managers": True,
            },
            "packages": {"pip": ["pandas==2.2.0"]},
        },
        metadata={"team": "data"},
    )
    assert isinstance(env, BetaEnvironment) and env.id.startswith("env_")
    assert env.config.type == "cloud" and env.config.packages.pip == ["pandas==2.2.0"]
    updated = sdk.beta.environments.update(env.id, description="desc", metadata={"team": None})
    assert updated.description == "desc" and updated.metadata == {}
    assert sdk.beta.environments.retrieve(env.id).description == "desc"
    with pytest.raises(BetaInvalidConfigTypeChangeError):
        sdk.beta.environments.update(env.id, config={"type": "self_hosted"})
    with pytest.raises(anthropic.ConflictError):
        sdk.beta.environments.create(name="data")
    assert [e.id for e in sdk.beta.environments.list()] == [env.id]
    sdk.beta.environments.archive(env.id)
    with pytest.raises(BetaEnvironmentArchivedError) as archived:
        sdk.beta.environments.update(env.id, name="renamed")
    assert archived.value.error_code == "environment_archived"
    deleted = sdk.beta.environments.delete(env.id)
    assert deleted.id == env.id and deleted.type == "environment_deleted"
    with pytest.raises(anthropic.NotFoundError):
        sdk.beta.environments.retrieve(env.id)


def test_vaults_and_credentials_through_sdk(sdk: anthropic.Anthropic) -> None:
    vault = sdk.beta.vaults.create(display_name="github", metadata={"k": "v"})
    assert isinstance(vault, BetaManagedAgentsVault) and vault.id.startswith("vlt_")
    assert sdk.beta.vaults.update(vault.id, display_name="gh").display_name == "gh"
    creds = sdk.beta.vaults.credentials
    bearer = creds.create(
        vault.id,
        display_name="gh",
        auth={"type": "static_bearer", "token": "s3cret", "mcp_server_url": "https://mcp.gh"},
    )
    assert isinstance(bearer, BetaManagedAgentsCredential)
    assert bearer.auth.type == "static_bearer" and not hasattr(bearer.auth, "token")
    oauth = creds.create(
        vault.id,
        auth={
            "type": "mcp_oauth",
            "access_token": "a",
            "mcp_server_url": "https://mcp.other",
            "refresh": {
                "client_id": "c",
                "refresh_token": "r",
                "token_endpoint": "https://t",
                "token_endpoint_auth": {"type": "none"},
            },
        },
    )
    env_var = creds.create(
        vault.id,
        auth={
            "type": "environment_variable",
            "secret_name": "TOKEN",
            "secret_value": "v",
            "networking": {"type": "unrestricted"},
        },
    )
    assert env_var.auth.type == "environment_variable"
    rotated = creds.update(
        bearer.id, vault_id=vault.id, auth={"type": "static_bearer", "token": "new"}
    )
    assert rotated.auth == bearer.auth
    assert creds.retrieve(bearer.id, vault_id=vault.id).id == bearer.id
    assert {c.id for c in creds.list(vault.id)} == {bearer.id, oauth.id, env_var.id}
    check = creds.mcp_oauth_validate(oauth.id, vault_id=vault.id)
    assert check.status == "unknown" and check.has_refresh_token
    with pytest.raises(anthropic.ConflictError):
        creds.create(
            vault.id,
            auth={"type": "static_bearer", "token": "x", "mcp_server_url": "https://mcp.gh"},
        )
    with pytest.raises(BetaInvalidMetadataError):
        sdk.beta.vaults.create(display_name="v", metadata={f"k{i}": "v" for i in range(17)})
    assert creds.archive(bearer.id, vault_id=vault.id).archived_at is not None
    assert creds.delete(env_var.id, vault_id=vault.id).type == "vault_credential_deleted"
    assert sdk.beta.vaults.archive(vault.id).archived_at is not None
    assert sdk.beta.vaults.delete(vault.id).type == "vault_deleted"


def test_sessions_events_and_stream_through_sdk(sdk: anthropic.Anthropic, env_id: str) -> None:
    agent = sdk.beta.agents.create(name="echo", model="claude-haiku-4-5")
    session = sdk.beta.sessions.create(agent=agent.id, environment_id=env_id, title="t")
    assert isinstance(session, BetaManagedAgentsSession)
    assert session.status == "idle" and session.agent.version == 1
    assert session.id.startswith("sesn_")

    with sdk.beta.sessions.events.stream(session.id) as stream:
        sent = sdk.beta.sessions.events.send(session.id, events=[MESSAGE])
        assert sent.data is not None and sent.data[0].type == "user.message"
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "session.status_idle":
                break
    assert [e.type for e in seen] == [
        "user.message",
        "session.status_running",
        "agent.message",
        "session.status_idle",
    ]
    reply = seen[2]
    assert reply.type == "agent.message" and reply.content[0].text == "echo: ping"  # type: ignore[union-attr]
    assert seen[3].stop_reason.type == "end_turn"  # type: ignore[union-attr]

    listed = list(sdk.beta.sessions.events.list(session.id, limit=1))
    assert [e.id for e in listed] == [e.id for e in seen]
    updated = sdk.beta.sessions.update(session.id, title="renamed", metadata={"a": "b"})
    assert updated.title == "renamed" and updated.metadata == {"a": "b"}
    assert sdk.beta.sessions.retrieve(session.id).title == "renamed"

    more = [sdk.beta.sessions.create(agent=agent.id, environment_id=env_id).id for _ in range(4)]
    walked = [s.id for s in sdk.beta.sessions.list(limit=2, order="asc")]
    assert walked == [session.id, *more]
    assert len(list(sdk.beta.sessions.list(statuses=["idle"], agent_id=agent.id))) == 5

    assert sdk.beta.sessions.archive(session.id).archived_at is not None
    with pytest.raises(anthropic.ConflictError):
        sdk.beta.sessions.events.send(session.id, events=[MESSAGE])
    assert sdk.beta.sessions.delete(session.id).type == "session_deleted"
    with pytest.raises(anthropic.NotFoundError):
        sdk.beta.sessions.events.send(session.id, events=[MESSAGE])


def test_a_session_update_that_changes_something_is_a_session_updated_event(
    sdk: anthropic.Anthropic, env_id: str
) -> None:
    """The SDK's ``session.updated``: "Emitted when an UpdateSession request changed at least
    one field", carrying only the fields that changed (``metadata`` only while not empty,
    ``budget`` null when removed, ``agent`` the whole new snapshot). None was ever emitted,
    so a client watching the stream never saw a session's configuration change."""
    agent = sdk.beta.agents.create(name="watched", model="claude-haiku-4-5")
    budget: Any = {"type": "limit", "max_list_cost": {"amount": "500", "currency": "USD"}}
    session = sdk.beta.sessions.create(
        agent=agent.id, environment_id=env_id, title="t", budget=budget
    )
    with sdk.beta.sessions.events.stream(session.id) as stream:
        sdk.beta.sessions.update(session.id, title="t2", metadata={"team": "infra"})
        sdk.beta.sessions.update(session.id, title="t2")  # changes nothing: no event
        sdk.beta.sessions.update(session.id, metadata={"team": None}, budget=None)
        sdk.beta.sessions.update(session.id, agent={"tools": [{"type": "agent_toolset_20260401"}]})
        sdk.beta.sessions.events.send(session.id, events=[MESSAGE])
        streamed = []
        for event in stream:
            if event.type == "session.status_idle":
                break
            if event.type == "session.updated":
                streamed.append(event)
    listed = [e for e in sdk.beta.sessions.events.list(session.id) if e.type == "session.updated"]
    assert [e.id for e in streamed] == [e.id for e in listed]
    shown = [e.model_dump(exclude={"id", "processed_at", "type"}) for e in listed]
    new_agent = sdk.beta.sessions.retrieve(session.id).agent
    assert shown == [
        {"agent": None, "budget": None, "metadata": {"team": "infra"}, "title": "t2"},
        {"agent": None, "budget": None, "metadata": None, "title": None},
        {"agent": new_agent.model_dump(), "budget": None, "metadata": None, "title": None},
    ]
    fields = [set(e.model_fields_set) - {"id", "processed_at", "type"} for e in listed]
    assert fields == [{"metadata", "title"}, {"budget"}, {"agent"}]


def test_a_sessions_duration_is_the_time_since_it_was_created(
    sdk: anthropic.Anthropic, env_id: str
) -> None:
    """``stats.duration_seconds``: "Elapsed time since session creation in seconds". It
    stayed 0.0 for a session's whole life, so a job that archives sessions by age saw none
    grow old."""
    import time

    agent = sdk.beta.agents.create(name="aging", model="claude-haiku-4-5")
    session = sdk.beta.sessions.create(agent=agent.id, environment_id=env_id)
    assert session.stats.duration_seconds is not None and session.stats.duration_seconds < 1
    time.sleep(1.2)
    for seen in (
        sdk.beta.sessions.retrieve(session.id),
        next(s for s in sdk.beta.sessions.list() if s.id == session.id),
        sdk.beta.sessions.update(session.id, title="old"),
        sdk.beta.sessions.archive(session.id),
    ):
        assert seen.stats.duration_seconds is not None
        assert 1.2 <= seen.stats.duration_seconds < 60


def test_deployments_and_runs_through_sdk(sdk: anthropic.Anthropic, env_id: str) -> None:
    agent = sdk.beta.agents.create(name="cron", model="claude-haiku-4-5")
    deployment = sdk.beta.deployments.create(
        name="nightly",
        agent=agent.id,
        environment_id=env_id,
        initial_events=[MESSAGE],
        schedule={"type": "cron", "expression": "0 3 * * *", "timezone": "UTC"},
    )
    assert isinstance(deployment, BetaManagedAgentsDeployment)
    assert deployment.agent.version == 1 and deployment.status == "active"
    assert deployment.schedule is not None and len(deployment.schedule.upcoming_runs_at or []) == 5
    sdk.beta.agents.update(agent.id, system="v2")
    repinned = sdk.beta.deployments.update(deployment.id, agent=agent.id, description="d")
    assert repinned.agent.version == 2 and repinned.description == "d"
    paused = sdk.beta.deployments.pause(deployment.id)
    assert paused.status == "paused" and paused.paused_reason is not None
    assert sdk.beta.deployments.unpause(deployment.id).status == "active"
    run = sdk.beta.deployments.run(deployment.id)
    assert isinstance(run, BetaManagedAgentsDeploymentRun)
    assert run.trigger_context.type == "manual" and run.session_id is not None
    assert sdk.beta.deployment_runs.retrieve(run.id).id == run.id
    assert [r.id for r in sdk.beta.deployment_runs.list(deployment_id=deployment.id)] == [run.id]
    assert [d.id for d in sdk.beta.deployments.list(agent_id=agent.id)] == [deployment.id]
    assert sdk.beta.sessions.retrieve(run.session_id).deployment_id == deployment.id
    assert sdk.beta.deployments.retrieve(deployment.id).agent.version == 2
    assert sdk.beta.deployments.archive(deployment.id).archived_at is not None


def test_an_archived_deployment_reports_active(sdk: anthropic.Anthropic, env_id: str) -> None:
    """The SDK: "Archived deployments report `active` with `archived_at` set", and
    ``paused_reason`` is "non-null exactly when `status` is `paused`". A deployment paused
    and then archived still read ``paused`` with its manual reason."""
    agent = sdk.beta.agents.create(name="paused", model="claude-haiku-4-5")
    deployment = sdk.beta.deployments.create(
        name="paused", agent=agent.id, environment_id=env_id, initial_events=[MESSAGE]
    )
    assert sdk.beta.deployments.pause(deployment.id).status == "paused"
    archived = sdk.beta.deployments.archive(deployment.id)
    for seen in (
        archived,
        sdk.beta.deployments.retrieve(deployment.id),
        next(d for d in sdk.beta.deployments.list(include_archived=True) if d.id == deployment.id),
    ):
        assert seen.archived_at is not None
        assert (seen.status, seen.paused_reason) == ("active", None)


def test_sdk_error_classes_and_bodies(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as bad:
        sdk.beta.agents.create(name="", model="claude-haiku-4-5")
    assert bad.value.status_code == 400
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert bad.value.request_id and bad.value.request_id.startswith("req_")
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.beta.agents.retrieve("agent_011CZkYpogX7uDKUyvBTophP")
    assert "agent_011CZkYpogX7uDKUyvBTophP" in str(missing.value)
    with pytest.raises(anthropic.BadRequestError):
        sdk.beta.agents.list(limit=101)


def test_sdk_honours_injected_rate_limits(provider_db: Path) -> None:
    app = create_app(provider_db, FaultConfig(rate_limit=1))
    with (
        BackgroundServer(app) as server,
        anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0) as client,
    ):
        client.beta.agents.list()
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.beta.agents.list()
        assert int(limited.value.response.headers["retry-after"]) >= 1


async def test_async_sdk_streams_events(tcp_provider: str) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=tcp_provider, api_key="test", max_retries=0
    ) as client:
        env = await client.beta.environments.create(name="async")
        agent = await client.beta.agents.create(name="a", model="claude-haiku-4-5")
        session = await client.beta.sessions.create(agent=agent.id, environment_id=env.id)
        stream = await client.beta.sessions.events.stream(session.id)
        async with stream:
            await client.beta.sessions.events.send(session.id, events=[{"type": "user.interrupt"}])
            async for event in stream:
                assert event.type in ("user.interrupt", "session.status_idle")
                if event.type == "session.status_idle":
                    break
        pages = [s.id async for s in client.beta.sessions.list(limit=1)]
        assert pages == [session.id]
