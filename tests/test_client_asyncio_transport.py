"""The client's HTTP transport (``provider.asyncio_transport``) over real sockets.

Every test talks to a server on 127.0.0.1 (a port chosen by the OS): the local provider
under uvicorn, or a small asyncio server where the test needs a server that misbehaves on
purpose (closes idle connections, never answers, sends a large body) or speaks TLS.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trustme

from reconciler.errors import ProviderConnectionError
from reconciler.provider import ProviderClient
from reconciler.provider.asyncio_transport import Http1Transport, http_transport
from reconciler.provider.wire import default_headers

HEADERS = default_headers("test-key")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """An asyncio server on 127.0.0.1; yields its base URL. Counts connections."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    return head.split(b"\r\n")[0].decode(), body


def response(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def test_the_default_client_uses_the_http1_transport(tcp_provider: str) -> None:
    async with ProviderClient(tcp_provider, "test") as client:
        assert isinstance(client._http._transport, Http1Transport)
        created = await client.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
        again = await client.agents.retrieve(created["id"])
        assert again["id"] == created["id"]
        every = await client.agents.list(include_archived=True).to_list()
        assert [a["id"] for a in every] == [created["id"]]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_client_runs_on_a_uvloop_loop(tcp_provider: str, host: str) -> None:
    """A library user's program on uvloop (a uvicorn or FastAPI app calling the runtime API):
    uvloop's transports are not ``asyncio.Transport`` subclasses and its ``create_connection``
    has no ``happy_eyeballs_delay``; a host name takes that path, an IP literal the other."""
    uvloop = pytest.importorskip("uvloop")
    url = tcp_provider.replace("127.0.0.1", host)

    async def use() -> list[str]:
        async with ProviderClient(url, "test", max_connections=4) as client:
            made = await asyncio.gather(
                *(
                    client.agents.create({"name": f"u{i}", "model": "claude-sonnet-4-6"})
                    for i in range(12)
                )
            )
            listed = await client.agents.list(include_archived=True).to_list()
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        return sorted(a["id"] for a in made) + sorted(a["id"] for a in listed)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        ids = runner.run(use())
    assert ids[:12] == ids[12:] and len(set(ids[:12])) == 12


async def test_many_concurrent_requests_share_a_few_connections(tcp_provider: str) -> None:
    async with ProviderClient(tcp_provider, "test", max_connections=8) as client:
        made = await asyncio.gather(
            *(
                client.agents.create({"name": f"a{i}", "model": "claude-sonnet-4-6"})
                for i in range(60)
            )
        )
        assert len({a["id"] for a in made}) == 60
        transport = client._http._transport
        assert isinstance(transport, Http1Transport)
        assert 1 <= len(transport.connections) <= 8


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    """A server that closes every connection after one answer (no ``connection: close``).

    The pool must notice the close before it sends on that connection: a POST sent on a
    dead connection would fail in a way that cannot tell whether the server saw it.
    """
    connections = 0

    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(response(json.dumps({"id": f"agent_{connections}"}).encode()))
        await writer.drain()
        writer.close()

    async with serve(one_answer_then_close) as url, ProviderClient(url) as client:
        for i in range(1, 4):
            made = await client.agents.create({"name": f"a{i}", "model": "m"})
            assert made["id"] == f"agent_{i}"
            await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        assert connections == 3


async def test_a_large_body_is_read_whole_across_paused_reads() -> None:
    big = json.dumps({"data": ["x" * 1000] * 3000, "has_more": False}).encode()  # ~3 MB

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(big))
        await writer.drain()
        writer.close()

    async with serve(large) as url, ProviderClient(url) as client:
        page = await client.request("GET", "/v1/agents")
        assert len(page["data"]) == 3000 and page["data"][0] == "x" * 1000


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            await reader.read()  # until the client gives up and hangs up
        finally:
            writer.close()

    async with (
        serve(silent) as url,
        ProviderClient(url, timeout=0.2, max_retries=1, backoff_base=0.01) as client,
    ):
        with pytest.raises(ProviderConnectionError, match="(?i)time"):
            await client.request("GET", "/v1/agents")


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with serve(lambda r, w: asyncio.sleep(0)) as url:
        pass  # the port is free again: nothing listens there now
    async with ProviderClient(url, max_retries=0) as client:
        with pytest.raises(ProviderConnectionError):
            await client.request("GET", "/v1/agents")
    transport = http_transport(verify=ssl.create_default_context(), limits=httpx.Limits())
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url)


async def test_tls_with_a_verified_certificate() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line, _ = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            writer.write(response(json.dumps({"line": line}).encode()))
            await writer.drain()
        writer.close()

    async with serve(answer, tls=server_ctx) as url:
        transport = http_transport(verify=client_ctx, limits=httpx.Limits())
        assert transport is not None
        async with httpx.AsyncClient(transport=transport, base_url=url) as http:
            first = await http.get("/v1/agents")
            second = await http.get("/v1/vaults")  # on the same TLS connection
            assert first.json() == {"line": "GET /v1/agents HTTP/1.1"}
            assert second.json() == {"line": "GET /v1/vaults HTTP/1.1"}
        # a client that does not trust the CA refuses the server
        strict = http_transport(verify=ssl.create_default_context(), limits=httpx.Limits())
        async with httpx.AsyncClient(transport=strict, base_url=url) as http:
            with pytest.raises(httpx.ConnectError, match="(?i)certificate"):
                await http.get("/v1/agents")


def test_proxy_variables_leave_the_transport_to_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert http_transport(verify=ssl.create_default_context(), limits=httpx.Limits()) is None
    client = ProviderClient("https://api.example.test")
    try:
        assert any(p is not None for p in client._http._mounts.values())  # httpx's proxy
    finally:
        asyncio.run(client.aclose())


@asynccontextmanager
async def pooled(
    url: str, **limits: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Http1Transport]]:
    """An httpx client on ``http_transport`` with these pool limits; yields it and the pool."""
    transport = http_transport(verify=ssl.create_default_context(), limits=httpx.Limits(**limits))
    assert transport is not None
    async with httpx.AsyncClient(transport=transport, base_url=url, headers=HEADERS) as http:
        yield http, transport


async def test_the_pool_keeps_only_its_keepalive_share_of_idle_connections(
    tcp_provider: str,
) -> None:
    async with pooled(tcp_provider, max_connections=None, max_keepalive_connections=2) as (
        http,
        pool,
    ):
        answers = await asyncio.gather(*(http.get("/v1/agents") for _ in range(12)))
        assert {a.status_code for a in answers} == {200}
        assert 1 <= len(pool.connections) <= 2


async def test_requests_queue_for_a_bounded_pool_and_all_complete(tcp_provider: str) -> None:
    async with pooled(tcp_provider, max_connections=2, max_keepalive_connections=2) as (
        http,
        pool,
    ):
        answers = await asyncio.gather(*(http.get("/v1/environments") for _ in range(20)))
        assert {a.status_code for a in answers} == {200}
        assert len(pool.connections) <= 2


async def test_cookies_the_provider_sets_are_sent_back() -> None:
    """The client hands requests to its transport itself (not through ``httpx`` ``send``):
    a cookie a load balancer sets still comes back on the next request, as httpx does it."""
    seen: list[str] = []

    async def sticky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            cookie = [line for line in head.split("\r\n") if line.lower().startswith("cookie:")]
            seen.append(cookie[0] if cookie else "")
            body = b'{"data": [], "has_more": false}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nset-cookie: lb=node-2; Path=/\r\n"
                b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
        writer.close()

    async with serve(sticky) as url, ProviderClient(url) as client:
        await client.request("GET", "/v1/agents")
        await client.request("GET", "/v1/agents")
    assert seen == ["", "Cookie: lb=node-2"]


async def test_a_closed_client_refuses_requests(tcp_provider: str) -> None:
    client = ProviderClient(tcp_provider, "test")
    await client.request("GET", "/v1/agents")
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.request("GET", "/v1/agents")
    assert client._http._transport.connections == []  # type: ignore[attr-defined]
