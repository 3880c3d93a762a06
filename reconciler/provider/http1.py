"""One HTTP/1.1 client connection on asyncio, its responses parsed by httptools (C).

``Connection`` is an ``asyncio.Protocol``: what arrives is fed to httptools' parser at once,
so "has the server closed this idle connection" is a look at a flag, and a response's head
and body wait in the connection until the request's task reads them. It sends one request
at a time (no pipelining) and knows nothing of pools, timeouts' sources or httpx's models
beyond the exceptions it raises: ``asyncio_transport`` pools connections and builds httpx
responses from them.

Failures, as httpx names them (its default transport, httpcore + h11, raises the same):
a response that does not parse, or a connection closed cleanly before a response ended, is a
``RemoteProtocolError``; a connection reset is a ``ReadError``; waiting longer than the read
or write timeout is a ``ReadTimeout`` or ``WriteTimeout``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Callable
from typing import cast

import httptools
import httpx

__all__ = ["Connection", "Origin", "request_head"]

#: ``(scheme, host, port)``: requests to one origin may share a connection.
Origin = tuple[str, str, int]

#: Reading pauses while this many received body bytes wait to be read (a fast SSE stream).
_HIGH_WATER = 1 << 20
#: An answer whose status line and headers exceed this is refused (h11 allows 64 KiB).
_MAX_HEAD = 256 * 1024
#: A streamed request body is sent in writes of at least this many bytes (its head with it).
_WRITE_SIZE = 64 * 1024


def request_head(request: httpx.Request) -> bytes:
    """The request line and headers, ``Host`` first (as RFC 9110 asks and h11 does).

    Raises:
        httpx.LocalProtocolError: a header with a line break or NUL in it, which would
            otherwise split the request (header injection).
    """
    raw = request.headers.raw
    host = [b"%s: %s\r\n" % (k, v) for k, v in raw if k.lower() == b"host"]
    rest = [b"%s: %s\r\n" % (k, v) for k, v in raw if k.lower() != b"host"]
    target = request.url.raw_path
    head = b"%s %s HTTP/1.1\r\n%s%s\r\n" % (
        request.method.encode("ascii"),
        target,
        b"".join(host),
        b"".join(rest),
    )
    lines = len(raw) + 2
    if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
        raise httpx.LocalProtocolError("a header name or value has a line break or NUL in it")
    if b" " in target or not target:
        raise httpx.LocalProtocolError(f"the request target {target!r} is not valid")
    return head


class Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, then collects its response."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.tls = origin[0] == "https"
        self.closed = False  # the connection is gone (lost, or closed by us)
        self.reusable = True  # false once anything happens that another request must not see
        self.error: Exception | None = None  # connection_lost's exception (a reset)
        self.idle_since = 0.0
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._reading_paused = False
        self._begin(head_request=False)

    def _begin(self, *, head_request: bool) -> None:
        """Ready for the next response."""
        self.active = False
        self.head_request = head_request
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.failure: httpx.TransportError | None = None
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self._informational = False
        self._head_size = 0
        self._until_close = False  # no content-length, not chunked: the body ends at EOF

    # -- asyncio's callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's stream transports subclass ``asyncio.Transport``; uvloop's have the same
        # methods without the base class, so this is a cast, not a check
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active or self.complete:
            self.reusable = False  # bytes nobody asked for: this connection is out of step
            return
        if not self.headers_done:
            self._head_size += len(data)
            if self._head_size > _MAX_HEAD:
                self.reusable = False
                self.failure = httpx.RemoteProtocolError("the response's head is too large")
                self._wake()
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self.reusable = False
            if not self.complete:
                self.failure = httpx.RemoteProtocolError(f"the response did not parse: {e}")
        if self.buffered > _HIGH_WATER and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> None:
        self._ended(None)
        # returning None lets the transport close itself: HTTP/1.1 never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended(exc)
        self._writing_paused = False
        if not self.lost.done():
            self.lost.set_result(None)

    def _ended(self, exc: Exception | None) -> None:
        self.reusable = False
        self.error = self.error or exc
        if self.active and not self.complete and self.failure is None:
            if self._until_close and self.headers_done and exc is None:
                self.complete = True  # a body delimited by the end of the connection
            elif exc is not None:
                self.failure = httpx.ReadError(str(exc) or type(exc).__name__)
            elif self.headers_done:
                self.failure = httpx.RemoteProtocolError(
                    "the server closed the connection before the response's body ended"
                )
            else:
                self.failure = httpx.RemoteProtocolError(
                    "Server disconnected without sending a response."
                )
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    # -- httptools' callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: stop parsing (HttpParserError)
            raise RuntimeError("more bytes than the response")
        self.headers = []
        self.reason = b""

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._informational = True  # e.g. 103 Early Hints: the answer follows it
            return
        self.status = status
        self.headers_done = True
        names = {name.lower() for name, _ in self.headers}
        self._until_close = b"content-length" not in names and b"transfer-encoding" not in names
        if self.head_request or status == 101:
            # no body follows a HEAD's answer, whatever its content-length says; httptools
            # cannot be told, so the connection is not used again
            self.complete = True
            self.reusable = False

    def on_body(self, body: bytes) -> None:
        if body and not self.complete:  # (a HEAD's answer is complete at its head)
            self.body.append(body)
            self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True
        if not self._parser.should_keep_alive():
            self.reusable = False

    # -- used by the transport -------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float | None) -> None:
        """Until the next event (data, EOF, writing resumed); TimeoutError after ``timeout``."""
        waiter = self._waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def _next_event(self, timeout: float | None, late: httpx.TimeoutException) -> None:
        """``_wait``, raising ``late`` after ``timeout``: a request cut short leaves the
        connection out of step, so it is not used again."""
        try:
            await self._wait(timeout)
        except TimeoutError:
            self.reusable = False
            raise late from None

    async def send(
        self,
        request: httpx.Request,
        timeout: float | None,
        guard: Callable[[], None] | None,
    ) -> None:
        """Write ``request`` (head and body in one write when the body is known).

        ``guard`` is called right before the first bytes are handed to the socket, with no
        await in between; raising keeps them unsent. A connection that closes while the
        request is written is not an error here: ``wait_head`` reports it, as httpcore does
        (the server may have answered before it closed).
        """
        self._begin(head_request=request.method == "HEAD")
        self.active = True
        if b"close" in request.headers.get("connection", "").lower().encode():
            self.reusable = False  # the server closes it after this answer
        head = request_head(request)
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None
        if body is not None:
            if len(body) < _WRITE_SIZE:
                self._write(head + body, guard)  # one packet: one wake-up of the server
            else:
                self._write(head, guard)  # a large upload: not copied to join its head
                self._write(body, None)
            await self._drain(timeout)
            return
        chunked = b"chunked" in request.headers.get("transfer-encoding", "").lower().encode()
        held, size = [head], len(head)
        stream = cast(AsyncIterable[bytes], request.stream)
        async for chunk in stream:
            if not chunk:
                continue
            held.append(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            size += len(held[-1])
            if size >= _WRITE_SIZE:
                self._write(b"".join(held), guard)
                guard, held, size = None, [], 0
                await self._drain(timeout)
        if chunked:
            held.append(b"0\r\n\r\n")
        if held:
            self._write(b"".join(held), guard)
            await self._drain(timeout)

    def _write(self, data: bytes, guard: Callable[[], None] | None) -> None:
        if guard is not None:
            guard()
        if self.closed or self.transport is None or self.transport.is_closing():
            return  # the read that follows says how it ended
        self.transport.write(data)

    async def _drain(self, timeout: float | None) -> None:
        while self._writing_paused and not self.closed:
            await self._next_event(
                timeout, httpx.WriteTimeout("the request could not be sent in time")
            )

    async def wait_head(self, timeout: float | None) -> None:
        """Until the response's status and headers arrived."""
        while not self.headers_done:
            if self.failure is not None:
                raise self.failure
            await self._next_event(
                timeout, httpx.ReadTimeout("the response did not arrive in time")
            )

    async def read_body(self, timeout: float | None) -> bytes:
        """The next piece of the body; b"" once it ended."""
        while not self.body:
            if self.complete:
                return b""
            if self.failure is not None:
                raise self.failure
            await self._next_event(
                timeout, httpx.ReadTimeout("the response's body did not arrive in time")
            )
        data = self.body.popleft() if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        """Close now; ``lost`` resolves once asyncio has let go of the socket."""
        self.reusable = False
        transport = self.transport
        if transport is None or self.closed:
            if not self.lost.done():
                self.lost.set_result(None)
            return
        self.closed = True
        if self.tls:
            transport.abort()  # no close_notify round trip: nothing more is sent on it
        else:
            transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
