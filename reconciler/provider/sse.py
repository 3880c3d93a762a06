"""Server-sent events: turn an open ``text/event-stream`` response into event dicts.

Parses frames (``event:``/``data:``/``id:`` lines ended by a blank line, ``:`` comments) as the
official SDK does: frames without an ``event:`` line, ``ping`` frames and (but for ``error``)
frames without data are skipped, every other frame's ``data`` is one JSON event, and an ``event: error`` frame is raised through the
error factory the client supplies (so status mapping stays in the client).

This module neither opens nor retries streams; it only reads the one it is given.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from reconciler.errors import ProviderConnectionError, ProviderError

__all__ = ["EventStream", "SSEFrame", "iter_frames"]


@dataclass(frozen=True)
class SSEFrame:
    """One dispatched server-sent event frame."""

    event: str | None
    data: str
    id: str | None = None


async def iter_frames(lines: AsyncIterator[str]) -> AsyncIterator[SSEFrame]:
    """Group text lines into SSE frames.

    Args:
        lines: decoded lines without their line endings (``httpx.Response.aiter_lines``).

    Yields:
        Each frame that ended with a blank line; a trailing unterminated frame is dropped,
        as the SSE specification says.
    """
    event: str | None = None
    data: list[str] = []
    ident: str | None = None
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if event is not None or data:
                yield SSEFrame(event, "\n".join(data), ident)
            event, data, ident = None, [], None
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            ident = value


ErrorFactory = Callable[[dict[str, Any]], ProviderError]


class EventStream:
    """Async iterator of event dicts from one open SSE response.

    Args:
        response: a streaming ``httpx.Response`` with a 2xx status.
        error_from_frame: builds the typed error for an ``event: error`` frame's JSON.
        describe: names the stream in messages, e.g. ``session sesn_1's event stream``.
    """

    def __init__(
        self, response: httpx.Response, error_from_frame: ErrorFactory, describe: str
    ) -> None:
        self._response = response
        self._lines = response.aiter_lines()
        self._frames = iter_frames(self._lines)
        self._error_from_frame = error_from_frame
        self._describe = describe
        self._closed = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._closed:
            raise StopAsyncIteration
        while True:
            try:
                frame = await self._frames.__anext__()
            except StopAsyncIteration:
                self._closed = True
                raise
            except httpx.TransportError as exc:
                self._closed = True
                raise ProviderConnectionError(
                    f"{self._describe} broke off: {type(exc).__name__}: {exc or 'no detail'}; "
                    "open it again to keep reading"
                ) from exc
            if frame.event is None or frame.event == "ping":
                continue
            if not frame.data and frame.event != "error":
                continue  # as the SDK's Stream: an event without data carries nothing
            try:
                payload = json.loads(frame.data) if frame.data else {}
            except ValueError:
                raise ProviderError(
                    f"{self._describe} sent a {frame.event!r} frame whose data is not JSON: "
                    f"{frame.data[:200]!r}"
                ) from None
            if not isinstance(payload, dict):
                payload = {"type": frame.event, "data": payload}
            if frame.event == "error":
                raise self._error_from_frame(payload)
            payload.setdefault("type", frame.event)
            return payload

    async def abort(self) -> None:
        """Break the connection under a read that another task awaits (closing the
        generators under it would fail, as they are running): that read ends with a
        ``ProviderConnectionError``, and its task closes the rest."""
        self._closed = True
        await self._response.aclose()

    async def aclose(self) -> None:
        """Stop reading; closes the generators over the response (the caller closes it)."""
        self._closed = True
        await self._frames.aclose()  # type: ignore[attr-defined]
        await self._lines.aclose()  # type: ignore[attr-defined]
