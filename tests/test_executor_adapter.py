"""``ClientBackedProvider``: the engine's kind-based view over the client, every kind."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.errors import NotFoundError, ProviderError
from reconciler.provider.adapter import ClientBackedProvider

pytestmark = pytest.mark.anyio


@pytest.fixture
def provider(client: Any) -> ClientBackedProvider:
    return ClientBackedProvider(client)


async def test_agents_round_trip_with_versions(provider: ClientBackedProvider) -> None:
    agent = await provider.create("agent", {"name": "a", "model": "claude-sonnet-4-6"})
    updated = await provider.update("agent", agent["id"], {"system": "s", "version": 1})
    assert updated["version"] == 2
    assert [v["version"] for v in await provider.list_versions(agent["id"])] in ([1, 2], [2, 1])
    archived = await provider.archive("agent", agent["id"])
    assert archived["archived_at"] is not None
    # list_all includes archived objects
    assert [a["id"] for a in await provider.list_all("agent")] == [agent["id"]]
    assert (await provider.retrieve("agent", agent["id"]))["system"] == "s"


@pytest.mark.parametrize(
    ("kind", "body"),
    [("environment", {"name": "e"}), ("vault", {"display_name": "v"})],
)
async def test_deletable_kinds_round_trip(
    provider: ClientBackedProvider, kind: str, body: dict[str, Any]
) -> None:
    obj = await provider.create(kind, body)
    await provider.update(kind, obj["id"], {"metadata": {"team": "infra"}})
    assert (await provider.retrieve(kind, obj["id"]))["metadata"] == {"team": "infra"}
    await provider.archive(kind, obj["id"])
    assert len(await provider.list_all(kind)) == 1
    await provider.delete(kind, obj["id"])
    assert await provider.list_all(kind) == []
    with pytest.raises(NotFoundError):
        await provider.retrieve(kind, obj["id"])


async def test_credentials_live_in_their_vault(provider: ClientBackedProvider) -> None:
    vault = await provider.create("vault", {"display_name": "v"})
    body = {
        "auth": {"type": "static_bearer", "mcp_server_url": "https://m.example.com", "token": "t"}
    }
    cred = await provider.create("credential", body, parent_id=vault["id"])
    await provider.update("credential", cred["id"], {"display_name": "d"}, parent_id=vault["id"])
    got = await provider.retrieve("credential", cred["id"], parent_id=vault["id"])
    assert got["display_name"] == "d" and "token" not in got["auth"]
    await provider.archive("credential", cred["id"], parent_id=vault["id"])
    assert len(await provider.list_all("credential", parent_id=vault["id"])) == 1
    await provider.delete("credential", cred["id"], parent_id=vault["id"])
    assert await provider.list_all("credential", parent_id=vault["id"]) == []
    with pytest.raises(ValueError, match="parent_id"):
        await provider.list_all("credential")


async def test_deployments_and_what_cannot_be_deleted(provider: ClientBackedProvider) -> None:
    agent = await provider.create("agent", {"name": "a", "model": "claude-sonnet-4-6"})
    env = await provider.create("environment", {"name": "e"})
    deployment = await provider.create(
        "deployment",
        {
            "name": "d",
            "agent": agent["id"],
            "environment_id": env["id"],
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "x"}]}
            ],
        },
    )
    assert deployment["agent"] == {"type": "agent", "id": agent["id"], "version": 1}
    await provider.archive("deployment", deployment["id"])
    assert [d["id"] for d in await provider.list_all("deployment")] == [deployment["id"]]
    for kind, remote_id in (("agent", agent["id"]), ("deployment", deployment["id"])):
        with pytest.raises(ProviderError, match=f"{kind}s cannot be deleted"):
            await provider.delete(kind, remote_id)


async def test_unknown_kind_is_a_programming_error(provider: ClientBackedProvider) -> None:
    with pytest.raises(ValueError, match="unknown resource kind 'session'"):
        await provider.list_all("session")
