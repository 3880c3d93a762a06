"""The HTTP/1.1 transport's edges (``provider.http1``, ``provider.asyncio_transport``).

Each test talks over real loopback TCP to a small asyncio server that behaves as the test
needs - drops the connection at a chosen moment, stalls, answers in pieces, writes what
nobody asked for - and checks what httpx's own transport (httpcore + h11) would do too:
the same exception classes, the same framing, and a pool that never hands out a connection
another request could trip over.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from reconciler.provider.asyncio_transport import BEFORE_WRITE, Http1Transport, http_transport
from reconciler.provider.http1 import request_head

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """An asyncio server on 127.0.0.1: yields its URL and a one-item list counting connections."""
    count = [0]

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count[0] += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", count
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def client(
    url: str, **options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Http1Transport]]:
    limits = options.pop("limits", httpx.Limits())
    transport = http_transport(verify=ssl.create_default_context(), limits=limits)
    assert transport is not None
    async with httpx.AsyncClient(transport=transport, base_url=url, **options) as http:
        yield http, transport


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    first, *lines = head.split("\r\n")
    return first, {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    first, headers = await read_head(reader)
    length = int(headers.get("content-length", "0"))
    return first, await reader.readexactly(length) if length else b""


def answer(body: bytes = b"{}", status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode() + body


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line, body = await read_request(reader)
        writer.write(answer(json.dumps({"line": line, "body": body.decode()}).encode()))
        await writer.drain()


async def test_a_connection_dropped_before_the_answer_is_a_remote_protocol_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serve(hang_up) as (url, _), client(url) as (http, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/v1/agents", json={"name": "a"})


async def test_a_connection_dropped_during_the_body_is_a_remote_protocol_error() -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()

    async with serve(half) as (url, _), client(url) as (http, transport):
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/v1/agents")
        assert transport.connections == []


async def test_a_reset_connection_is_a_read_error() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")  # linger 0: closing sends an RST, not a FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with serve(reset) as (url, _), client(url) as (http, _):
        with pytest.raises(httpx.ReadError):
            await http.get("/v1/agents")


async def test_a_garbled_answer_is_a_remote_protocol_error() -> None:
    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with serve(garble) as (url, _), client(url) as (http, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/v1/agents")


async def test_a_body_that_stalls_is_a_read_timeout() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()

    async with serve(stall) as (url, _), client(url, timeout=0.2) as (http, transport):
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/v1/agents")
        assert transport.connections == []  # half a response: that connection is done for


async def test_a_server_that_does_not_read_is_a_write_timeout() -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    big = b"x" * (64 << 20)  # more than the socket buffers on both sides hold
    async with serve(deaf) as (url, _), client(url, timeout=0.3) as (http, _):
        with pytest.raises(httpx.WriteTimeout):
            await http.post("/v1/files", content=big)


async def test_a_bounded_pool_that_stays_full_is_a_pool_timeout() -> None:
    timeout = httpx.Timeout(5.0, pool=0.2)
    limits = httpx.Limits(max_connections=1)
    async with (
        serve(keep_answering) as (url, _),
        client(url, timeout=timeout, limits=limits) as (http, _),
    ):
        request = http.build_request("GET", "/v1/agents")
        held = await http.send(request, stream=True)  # its connection stays busy until read
        with pytest.raises(httpx.PoolTimeout):
            await http.get("/v1/vaults")
        await held.aread()
        await held.aclose()
        assert (await http.get("/v1/vaults")).json()["line"] == "GET /v1/vaults HTTP/1.1"


async def test_an_idle_connection_past_its_expiry_is_not_reused() -> None:
    limits = httpx.Limits(keepalive_expiry=5.0)
    async with serve(keep_answering) as (url, count), client(url, limits=limits) as (http, pool):
        await http.get("/a")
        await http.get("/b")  # within its expiry: the same connection
        assert count == [1]
        (idle,) = pool.connections
        idle.idle_since -= 6.0  # idle for longer than keepalive_expiry
        await http.get("/c")
        assert count == [2] and idle not in pool.connections


async def test_stray_bytes_on_an_idle_connection_retire_it() -> None:
    connections = 0

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections > 1:
            return await keep_answering(reader, writer)
        await read_request(reader)
        writer.write(answer())
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(answer())  # an answer to nothing
        await writer.drain()
        await keep_answering(reader, writer)

    async with serve(chatty) as (url, count), client(url) as (http, pool):
        await http.get("/a")
        (idle,) = pool.connections
        for _ in range(500):  # until the stray answer has arrived
            if not idle.reusable:
                break
            await asyncio.sleep(0.01)
        assert (await http.get("/b")).json()["line"] == "GET /b HTTP/1.1"
        assert count == [2]


async def test_a_response_closed_before_its_end_closes_its_connection() -> None:
    async with serve(keep_answering) as (url, count), client(url) as (http, transport):
        async with http.stream("GET", "/a"):
            pass  # not read
        assert transport.connections == []
        await http.get("/b")
        assert count == [2]


async def test_informational_answers_no_body_and_a_body_until_close() -> None:
    async def varied(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + answer(b'{"n": 1}'))
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        writer.write(b"the end")

    async with serve(varied) as (url, count), client(url) as (http, _):
        first = await http.get("/a")
        assert (first.status_code, first.json(), first.headers.get("link")) == (200, {"n": 1}, None)
        second = await http.delete("/b")
        assert (second.status_code, second.content) == (204, b"")
        third = await http.get("/c")
        assert (third.status_code, third.text, third.reason_phrase) == (200, "until the end", "OK")
        assert count == [1]


async def test_a_head_request_reads_no_body_and_retires_its_connection() -> None:
    connections = 0

    async def heads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections > 1:
            return await keep_answering(reader, writer)
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n")
        await writer.drain()
        await keep_answering(reader, writer)

    async with serve(heads) as (url, count), client(url) as (http, _):
        head = await http.head("/a")
        assert (head.status_code, head.headers["content-length"], head.content) == (
            200,
            "5000",
            b"",
        )
        await http.get("/b")
        assert count == [2]


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    received: list[bytes] = []

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers = await read_head(reader)
        assert headers["transfer-encoding"] == "chunked"
        received.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(answer())
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        yield b"hello "
        await asyncio.sleep(0)
        yield b""
        yield b"x" * 70_000  # over the size sent in one write

    async with serve(chunked) as (url, _), client(url) as (http, _):
        assert (await http.post("/v1/skills", content=parts())).status_code == 200
    assert received == [b"6\r\nhello \r\n" + b"11170\r\n" + b"x" * 70_000 + b"\r\n0\r\n\r\n"]


async def test_the_request_head_is_what_h11_writes() -> None:
    request = httpx.Request(
        "POST", "http://h:1/v1/agents?beta=true", json={"a": 1}, headers={"X-Key": "k"}
    )
    assert request_head(request) == (
        b"POST /v1/agents?beta=true HTTP/1.1\r\nHost: h:1\r\nX-Key: k\r\n"
        b"Content-Length: 7\r\nContent-Type: application/json\r\n\r\n"
    )
    smuggled = httpx.Request("GET", "http://h/", headers={"x-a": "1\r\nx-b: 2"})
    with pytest.raises(httpx.LocalProtocolError):
        request_head(smuggled)


async def test_the_write_guard_runs_before_any_byte_and_can_stop_them() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read())

    def refuse() -> None:
        raise RuntimeError("the lock was taken over")

    async with serve(record) as (url, _), client(url) as (http, _):
        with pytest.raises(RuntimeError, match="taken over"):
            await http.post("/v1/agents", json={"name": "a"}, extensions={BEFORE_WRITE: refuse})
    await asyncio.sleep(0.05)
    assert seen == [b""]  # the connection opened, and closed with nothing sent on it


async def test_an_answer_saying_connection_close_retires_its_connection() -> None:
    connections = 0

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections > 1:
            return await keep_answering(reader, writer)
        await read_request(reader)
        writer.write(answer(extra="connection: close\r\n"))
        await writer.drain()
        await asyncio.sleep(1)  # says close, but has not closed yet

    async with serve(closing) as (url, count), client(url) as (http, _):
        await http.get("/a")
        assert (await http.get("/b")).json()["line"] == "GET /b HTTP/1.1"
        assert count == [2]


async def test_an_endless_head_is_refused() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(10_000):
            writer.write(b"x-filler-%d: %s\r\n" % (i, b"y" * 100))
            await writer.drain()

    async with serve(endless) as (url, _), client(url) as (http, transport):
        with pytest.raises(httpx.RemoteProtocolError, match="too large"):
            await http.get("/v1/agents")
        assert transport.connections == []


async def test_a_large_body_in_memory_arrives_whole() -> None:
    big = "".join(chr(97 + i % 26) for i in range(300_000)).encode()  # over one write's size
    async with serve(keep_answering) as (url, _), client(url) as (http, _):
        echoed = (await http.post("/v1/files", content=big)).json()
        small = (await http.post("/v1/files", content=b"tiny")).json()  # same connection
    assert echoed["body"].encode() == big and small["body"] == "tiny"


async def test_two_answers_to_one_request_retire_the_connection() -> None:
    connections = 0

    async def double(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        if connections > 1:
            return await keep_answering(reader, writer)
        await read_request(reader)
        writer.write(answer(b'{"n": 1}') + answer(b'{"n": 2}'))  # in one packet
        await writer.drain()
        await keep_answering(reader, writer)

    async with serve(double) as (url, count), client(url) as (http, _):
        assert (await http.get("/a")).json() == {"n": 1}
        assert (await http.get("/b")).json()["line"] == "GET /b HTTP/1.1"
        assert count == [2]
