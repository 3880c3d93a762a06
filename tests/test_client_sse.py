"""Server-sent events through the client: framing, pings, error frames, broken streams.

A tiny ASGI app plays a scripted ``text/event-stream`` (the local provider never sends an
``error`` frame or a malformed one), served in-process by ``StreamingASGITransport``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import pytest

from reconciler.errors import NotFoundError, ProviderConnectionError, ProviderError, ServerError
from reconciler.provider import ProviderClient, StreamingASGITransport
from reconciler.provider.sse import SSEFrame, iter_frames

pytestmark = pytest.mark.anyio

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def sse_app(chunks: list[bytes], *, then_fail: bool = False) -> Any:
    async def app(scope: MutableMapping[str, Any], receive: Any, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if then_fail:
            raise ConnectionResetError("stream cut")
        await send({"type": "http.response.body", "body": b""})

    return app


def client_for(app: Any) -> ProviderClient:
    return ProviderClient("http://sse.test", transport=StreamingASGITransport(app), max_retries=0)


async def read_all(client: ProviderClient) -> list[dict[str, Any]]:
    out = []
    with anyio.fail_after(5):
        async with client.sessions.stream_events("sesn_1") as events:
            async for event in events:
                out.append(event)
    return out


def frame(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


async def test_pings_and_frames_without_an_event_are_skipped() -> None:
    chunks = [
        b": a comment\n\n",
        b"event: ping\ndata: {}\n\n",
        frame(None, {"type": "orphan"}),
        frame("agent.message", {"type": "agent.message", "content": []}),
        b'event: session.status_idle\r\ndata: {"type": "session.status_idle"}\r\n\r\n',
    ]
    async with client_for(sse_app(chunks)) as client:
        events = await read_all(client)
    assert [e["type"] for e in events] == ["agent.message", "session.status_idle"]


async def test_a_frame_without_data_is_skipped_as_the_sdk_skips_it() -> None:
    # the SDK's Stream skips a frame whose data is empty; we yielded it as {"type": EVENT}
    chunks = [
        b"event: session.status_running\n\n",
        b"event: agent.message\ndata:\n\n",
        frame("agent.message", {"type": "agent.message", "content": []}),
    ]
    async with client_for(sse_app(chunks)) as client:
        events = await read_all(client)
    assert events == [{"type": "agent.message", "content": []}]


async def test_frames_split_across_chunks_are_reassembled() -> None:
    whole = frame("agent.message", {"type": "agent.message", "content": [{"text": "x" * 500}]})
    chunks = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    async with client_for(sse_app(chunks)) as client:
        (event,) = await read_all(client)
    assert event["content"][0]["text"] == "x" * 500


async def test_an_error_frame_raises_the_typed_error() -> None:
    error = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "try later"},
        "request_id": "req_sse",
    }
    chunks = [frame("agent.message", {"type": "agent.message"}), frame("error", error)]
    async with client_for(sse_app(chunks)) as client:
        with pytest.raises(ServerError) as caught:
            await read_all(client)
    err = caught.value
    assert (err.status, err.error_type, err.request_id) == (529, "overloaded_error", "req_sse")
    assert "try later" in str(err)


async def test_a_stream_cut_mid_way_is_a_connection_error_not_an_httpx_one() -> None:
    chunks = [frame("agent.message", {"type": "agent.message"})]
    async with client_for(sse_app(chunks, then_fail=True)) as client:
        with pytest.raises(ProviderConnectionError, match="session sesn_1's event stream broke"):
            await read_all(client)


async def test_non_json_data_is_reported() -> None:
    async with client_for(sse_app([b"event: agent.message\ndata: {oops\n\n"])) as client:
        with pytest.raises(ProviderError, match="not JSON"):
            await read_all(client)


async def test_an_error_status_on_open_is_typed() -> None:
    async def app(scope: MutableMapping[str, Any], receive: Any, send: Send) -> None:
        body = {"type": "error", "error": {"type": "not_found_error", "message": "gone"}}
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async with client_for(app) as client:
        with pytest.raises(NotFoundError, match="session sesn_1: gone"):
            await read_all(client)


async def test_iter_frames_follows_the_sse_rules() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in ["event: a", "data: 1", "data: 2", "id: 7", "", "data: tail-without-end"]:
            yield line

    frames = [f async for f in iter_frames(lines())]
    assert frames == [SSEFrame("a", "1\n2", "7")]
