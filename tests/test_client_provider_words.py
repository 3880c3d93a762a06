"""The client against the local provider, in-process and over TCP: ``credentials.
mcp_oauth_validate`` (named in ``wire.py``, the SDK's route) and errors that keep the
provider's own words (a missing agent version is said as such, never as a missing
deployment).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reconciler.errors import BadRequestError, NotFoundError
from reconciler.provider import ProviderClient, connect_client

pytestmark = pytest.mark.anyio

HELLO = {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
OAUTH = {
    "type": "mcp_oauth",
    "access_token": "a-secret",
    "mcp_server_url": "https://mcp.example.com",
    "refresh": {
        "client_id": "c",
        "refresh_token": "r-secret",
        "token_endpoint": "https://auth.example.com/token",
        "token_endpoint_auth": {"type": "none"},
    },
}


@pytest.fixture(params=["in-process", pytest.param("tcp", marks=pytest.mark.tcp)])
async def api(request: pytest.FixtureRequest, provider_db: Path) -> AsyncIterator[ProviderClient]:
    url = None if request.param == "in-process" else request.getfixturevalue("tcp_provider")
    async with connect_client(url, None, db_path=provider_db, max_retries=0) as client:
        yield client


async def test_mcp_oauth_validate(api: ProviderClient) -> None:
    vault = await api.vaults.create({"display_name": "v"})
    oauth = await api.credentials.create(vault["id"], {"auth": OAUTH})
    check = await api.credentials.mcp_oauth_validate(vault["id"], oauth["id"])
    assert check["type"] == "vault_credential_validation"
    assert check["credential_id"] == oauth["id"] and check["vault_id"] == vault["id"]
    assert check["status"] == "unknown" and check["has_refresh_token"] is True
    assert "secret" not in str(check)

    bearer = await api.credentials.create(
        vault["id"],
        {"auth": {"type": "static_bearer", "token": "t", "mcp_server_url": "https://b"}},
    )
    with pytest.raises(BadRequestError) as not_oauth:
        await api.credentials.mcp_oauth_validate(vault["id"], bearer["id"])
    assert "not an mcp_oauth credential" in str(not_oauth.value)
    with pytest.raises(NotFoundError) as missing:
        await api.credentials.mcp_oauth_validate(vault["id"], "vcrd_011CZkYpogX7uDKUyvBTophP")
    assert "vcrd_011CZkYpogX7uDKUyvBTophP" in str(missing.value)


async def test_a_missing_agent_version_is_said_in_the_providers_words(
    api: ProviderClient,
) -> None:
    agent = await api.agents.create({"name": "a", "model": "claude-haiku-4-5"})
    env = await api.environments.create({"name": "e"})
    deployment = await api.deployments.create(
        {"name": "d", "agent": agent["id"], "environment_id": env["id"], "initial_events": [HELLO]}
    )
    pin = {"type": "agent", "id": agent["id"], "version": 7}
    with pytest.raises(NotFoundError) as on_update:
        await api.deployments.update(deployment["id"], {"agent": pin})
    said = str(on_update.value)
    assert f"agent version {agent['id']} v7 not found" in said
    assert f"deployment {deployment['id']} not found" not in said
    with pytest.raises(NotFoundError) as on_create:
        await api.deployments.create(
            {"name": "d2", "agent": pin, "environment_id": env["id"], "initial_events": [HELLO]}
        )
    assert f"agent version {agent['id']} v7 not found" in str(on_create.value)
    with pytest.raises(NotFoundError) as on_session:
        await api.sessions.create({"agent": pin, "environment_id": env["id"]})
    assert f"agent version {agent['id']} v7 not found" in str(on_session.value)
