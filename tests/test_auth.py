"""API keys on the wire: the local provider refuses a request without one (401), as the API
does, and the clients a new user gets without an account send the fixed local key.

In-process (the embedded client) and over loopback TCP (``reconciler provider serve``).
"""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx
import pytest

from reconciler.errors import AuthenticationError
from reconciler.provider import ProviderClient, connect_client, embedded_client
from reconciler.provider.local import BackgroundServer, create_app
from reconciler.provider.wire import LOCAL_API_KEY, is_loopback

pytestmark = pytest.mark.anyio


async def test_the_embedded_client_sends_the_local_key(provider_db: Path) -> None:
    async with embedded_client(provider_db) as client:
        assert client._http.headers["x-api-key"] == LOCAL_API_KEY
        assert await client.agents.list().to_list() == []


async def test_an_explicit_key_wins_over_the_local_one(provider_db: Path) -> None:
    async with embedded_client(provider_db, api_key="sk-mine") as client:
        assert client._http.headers["x-api-key"] == "sk-mine"
        await client.agents.list().to_list()


@pytest.mark.tcp
async def test_a_served_local_provider_needs_no_key_from_the_user(provider_db: Path) -> None:
    with BackgroundServer(create_app(provider_db)) as server:
        async with connect_client(server.url, None) as client:
            made = await client.agents.create({"name": "a", "model": "claude-haiku-4-5"})
            assert made["version"] == 1
        # the same server refuses a client that sends no key at all, with the typed error
        async with ProviderClient(server.url, max_retries=0) as bare:
            with pytest.raises(AuthenticationError) as refused:
                await bare.agents.list().to_list()
        assert "--api-key" in str(refused.value)
        # a bearer token is a key too (the SDK's auth_token)
        with anthropic.Anthropic(base_url=server.url, auth_token="tok", max_retries=0) as sdk:
            assert [a.id for a in sdk.beta.agents.list()] == [made["id"]]
        with anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0) as sdk:
            assert sdk.beta.agents.retrieve(made["id"]).name == "a"


def test_only_loopback_urls_get_the_local_key() -> None:
    assert is_loopback("http://127.0.0.1:8787") and is_loopback("http://localhost:1")
    assert is_loopback("http://[::1]:9")
    for remote in ("https://api.anthropic.com", "http://10.0.0.2:80", "http://127.example.com"):
        assert not is_loopback(remote), remote

    def headers(url: str, key: str | None) -> httpx.Headers:
        client = connect_client(url, key)
        return client._http.headers

    assert headers("http://127.0.0.1:8787", None)["x-api-key"] == LOCAL_API_KEY
    assert headers("http://127.0.0.1:8787", "sk-x")["x-api-key"] == "sk-x"
    assert "x-api-key" not in headers("https://api.anthropic.com", None)
