"""StreamingASGITransport: in-process responses arrive as they are sent, and end cleanly.

Each test drives a tiny raw ASGI app, so the behaviour at the ASGI boundary is explicit:
streams that never end, apps that raise before or after starting a response, read timeouts,
and a client that walks away mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from reconciler.errors import ProviderConnectionError
from reconciler.provider import StreamingASGITransport, embedded_client

pytestmark = pytest.mark.anyio

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://app")


async def start(send: Send, status: int = 200, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )


async def test_request_reaches_the_app_as_sent() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        body = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "beta": dict(scope["headers"]).get(b"anthropic-beta", b"").decode(),
            "body": message["body"].decode(),
        }
        await start(send, 201, b"application/json")
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async with client_for(echo) as client:
        response = await client.post(
            "/v1/agents",
            params=[("statuses[]", "idle")],
            json={"name": "a"},
            headers={"anthropic-beta": "managed-agents-2026-04-01"},
        )
    assert response.status_code == 201
    assert response.json() == {
        "method": "POST",
        "path": "/v1/agents",
        "query": "statuses%5B%5D=idle",
        "beta": "managed-agents-2026-04-01",
        "body": '{"name":"a"}',
    }


async def test_a_never_ending_stream_is_read_incrementally_and_stopped_on_close() -> None:
    outcome: list[str] = []

    async def ticker(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send, content_type=b"text/event-stream")
        try:
            for i in range(10**9):
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"data: {i}\n\n".encode(),
                        "more_body": True,
                    }
                )
                await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        except OSError:
            outcome.append("told the client left")

    async with client_for(ticker) as client, client.stream("GET", "/events") as response:
        assert response.headers["content-type"] == "text/event-stream"
        lines = []
        async for line in response.aiter_lines():
            if line:
                lines.append(line)
            if len(lines) == 3:
                break
    assert lines == ["data: 0", "data: 1", "data: 2"]
    assert outcome, "the app must learn that the client went away"


async def test_an_app_listening_for_disconnect_ends_on_its_own() -> None:
    ended = asyncio.Event()

    async def listener(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the request body
        await start(send)
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        message = await receive()
        assert message["type"] == "http.disconnect"
        ended.set()

    async with client_for(listener) as client, client.stream("GET", "/") as response:
        async for chunk in response.aiter_bytes():
            assert chunk == b"hello"
            break
    assert ended.is_set()


async def test_app_raising_before_the_response_looks_like_a_hang_up() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise ConnectionResetError("fault injected")

    async with client_for(broken) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.get("/")


async def test_app_raising_mid_body_is_a_read_error() -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send)
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise RuntimeError("dropped")

    async with client_for(half) as client:
        with pytest.raises(httpx.ReadError, match="mid-response"):
            await client.get("/")


async def test_app_returning_without_a_response_is_a_protocol_error() -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    async with client_for(silent) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")


async def test_a_complete_response_survives_an_exception_raised_after_it() -> None:
    async def noisy(scope: Scope, receive: Receive, send: Send) -> None:
        await start(send, 500)
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise RuntimeError("re-raised after the 500 was sent, like Starlette does")

    async with client_for(noisy) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


async def test_read_timeout_is_honoured_and_the_app_cancelled() -> None:
    cancelled = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with client_for(slow) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=0.1)
    assert time.monotonic() - started < 2
    assert cancelled.is_set()


async def test_a_cancelled_caller_cancels_the_app() -> None:
    cancelled = asyncio.Event()
    entered = asyncio.Event()

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with client_for(slow) as client:
        task = asyncio.create_task(client.get("/"))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cancelled.is_set()


async def test_many_concurrent_requests_are_independent() -> None:
    async def delayed_echo(scope: Scope, receive: Receive, send: Send) -> None:
        n = int(scope["path"].strip("/"))
        await asyncio.sleep(0.01 * (n % 5))
        await start(send)
        await send({"type": "http.response.body", "body": str(n).encode()})

    async with client_for(delayed_echo) as client:
        responses = await asyncio.gather(*(client.get(f"/{n}") for n in range(200)))
    assert [r.text for r in responses] == [str(n) for n in range(200)]


async def test_closing_the_embedded_client_ends_open_streams_and_releases_the_db(
    provider_db: Path,
) -> None:
    async with embedded_client(provider_db) as client:
        agent = await client.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
        env = await client.environments.create({"name": "e"})
        sid = (await client.sessions.create({"agent": agent["id"], "environment_id": env["id"]}))[
            "id"
        ]
        opened = asyncio.Event()

        async def read_forever() -> None:
            async with client.sessions.stream_events(sid) as events:
                opened.set()
                async for _ in events:
                    pass

        reader = asyncio.create_task(read_forever())
        await opened.wait()
    with anyio.fail_after(5), pytest.raises(ProviderConnectionError, match="broke off"):
        await reader
    async with embedded_client(provider_db) as again:
        assert (await again.sessions.retrieve(sid))["id"] == sid


async def test_connect_client_opens_http_for_a_url_and_the_local_provider_without(
    tmp_path: Path,
) -> None:
    from reconciler.provider import connect_client, open_client
    from reconciler.provider.embedded import EMBEDDED_BASE_URL

    async with connect_client("http://127.0.0.1:9", None) as remote:
        assert remote.base_url == "http://127.0.0.1:9"
    async with connect_client(None, None, db_path=tmp_path / "p.db") as local:
        assert local.base_url == EMBEDDED_BASE_URL
        assert await local.agents.list().to_list() == []
    assert open_client is connect_client  # the deprecated name docs/architecture.md promised
