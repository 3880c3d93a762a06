"""StreamingASGITransport: run an ASGI app in-process and stream its response body.

httpx's own ``ASGITransport`` waits for the app to return before it hands back a response, so a
response that never ends (a server-sent event stream) never arrives. This transport runs the
app call as a task, returns the ``httpx.Response`` as soon as ``http.response.start`` arrives
and feeds body chunks through a queue as the app sends them. Closing the response early tells
the app the client went away (``http.disconnect``) and cancels it if it does not stop.

Failures look the way they would over a socket: an app that raises before it starts a
response gives ``httpx.RemoteProtocolError`` (the server hung up), one that raises mid-body
gives ``httpx.ReadError``, and the client's read timeout gives ``httpx.ReadTimeout``.

This module knows nothing about the provider's API: no retries, no JSON, no status mapping.
It does not run the app's lifespan; apps used with it must work without startup events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

__all__ = ["StreamingASGITransport"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

_END = object()  # queue sentinel: the body is complete
_CLOSE_GRACE_S = 5.0  # how long a finished response's app may take to return
_ABORT_GRACE_S = 0.5  # how long an abandoned app gets to notice http.disconnect


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """An httpx transport that calls an ASGI app in-process and streams the body.

    Args:
        app: the ASGI application (e.g. a FastAPI app).
        root_path: the ASGI ``root_path`` of the mounted app.
        client: the (host, port) the app sees as the peer.
        on_close: called once when the transport closes (after in-flight exchanges are
            stopped), e.g. to release what the app holds.

    Example:
        >>> transport = StreamingASGITransport(app)
        >>> async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        ...     async with c.stream("GET", "/events") as r:
        ...         async for line in r.aiter_lines(): ...
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
        on_close: Callable[[], object] | None = None,
    ) -> None:
        self.app = app
        self.root_path = root_path
        self.client = client
        self._on_close = on_close
        self._live: set[_Exchange] = set()

    async def aclose(self) -> None:
        """Stop exchanges still running (e.g. open streams), then run ``on_close`` once."""
        for exchange in list(self._live):
            await exchange.abort()
        callback, self._on_close = self._on_close, None
        if callback is not None:
            callback()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` to the app; return once the response has started."""
        body = await request.aread()
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": self.root_path,
        }
        timeouts = request.extensions.get("timeout") or {}
        read_timeout: float | None = timeouts.get("read")
        exchange = _Exchange(self.app, scope, body, self._live)
        exchange.start()
        try:
            if read_timeout is None:
                start = await exchange.started
            else:
                start = await asyncio.wait_for(exchange.started, read_timeout)
        except TimeoutError:
            await exchange.abort()
            raise httpx.ReadTimeout(
                f"no response within {read_timeout:g} s", request=request
            ) from None
        except httpx.TransportError as exc:
            exc.request = request
            await exchange.abort()
            raise
        except BaseException:
            await exchange.abort()
            raise
        stream = _ResponseStream(exchange, read_timeout, request)
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=stream,
            request=request,
        )


class _Exchange:
    """One request/response between httpx and the app task."""

    def __init__(
        self, app: ASGIApp, scope: dict[str, Any], body: bytes, live: set[_Exchange]
    ) -> None:
        self._app = app
        self._live = live
        self._scope = scope
        self._body: bytes | None = body
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[Message] = loop.create_future()
        self.chunks: asyncio.Queue[object] = asyncio.Queue()
        self.body_done = False
        self._disconnected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._live.add(self)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"asgi {self._scope['method']} {self._scope['path']}"
        )

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if self.started.cancelled() or (self._closed and not self.body_done):
            raise OSError("the client disconnected")
        if kind == "http.response.start":
            if self.started.done():
                raise RuntimeError("http.response.start sent twice")
            self.started.set_result(message)
        elif kind == "http.response.body":
            if not self.started.done():
                raise RuntimeError("http.response.body sent before http.response.start")
            if self.body_done:
                raise RuntimeError("http.response.body sent after the response completed")
            chunk = message.get("body", b"")
            if chunk:
                self.chunks.put_nowait(bytes(chunk))
            if not message.get("more_body", False):
                self._finish_body(_END)
                self._disconnected.set()

    def _finish_body(self, item: object) -> None:
        if not self.body_done:
            self.body_done = True
            self.chunks.put_nowait(item)

    async def _run(self) -> None:
        try:
            await self._app(self._scope, self._receive, self._send)
        except Exception as exc:  # noqa: BLE001 - any app failure looks like a hang-up
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if not self.started.done():
                self.started.set_exception(
                    httpx.RemoteProtocolError(
                        f"server disconnected without sending a response ({reason})"
                    )
                )
            else:
                self._finish_body(httpx.ReadError(f"connection dropped mid-response ({reason})"))
        finally:
            if not self.started.done():
                self.started.set_exception(
                    httpx.RemoteProtocolError("server returned without sending a response")
                )
            self._finish_body(
                httpx.RemoteProtocolError("peer closed connection without sending complete body")
            )

    async def close(self) -> None:
        """The client is done with the response: let the app finish, or stop it."""
        if self._closed:
            return
        self._closed = True
        self._disconnected.set()
        grace = _CLOSE_GRACE_S if self.body_done else _ABORT_GRACE_S
        await self._reap(grace)

    async def abort(self) -> None:
        """The client gave up before the response started: stop the app now."""
        self._closed = True
        if not self.started.done():
            self.started.cancel()
        self._disconnected.set()
        await self._reap(0.0)

    async def _reap(self, grace: float) -> None:
        self._live.discard(self)
        task = self._task
        if task is None:
            return
        try:
            if not task.done() and grace > 0:
                await asyncio.wait([task], timeout=grace)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio never logs it


class _ResponseStream(httpx.AsyncByteStream):
    """The body of one in-process response, chunk by chunk as the app sends it."""

    def __init__(
        self, exchange: _Exchange, read_timeout: float | None, request: httpx.Request
    ) -> None:
        self._exchange = exchange
        self._read_timeout = read_timeout
        self._request = request
        self._finished = False

    def __aiter__(self) -> _ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        queue = self._exchange.chunks
        if not queue.empty():
            item = queue.get_nowait()
        elif self._read_timeout is None:
            item = await queue.get()
        else:
            try:
                item = await asyncio.wait_for(queue.get(), self._read_timeout)
            except TimeoutError:
                self._finished = True
                raise httpx.ReadTimeout(
                    f"no data within {self._read_timeout:g} s", request=self._request
                ) from None
        if item is _END:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, httpx.TransportError):
            self._finished = True
            item.request = self._request
            raise item
        assert isinstance(item, bytes)
        return item

    async def aclose(self) -> None:
        self._finished = True
        await self._exchange.close()
