"""The client's HTTP transport: HTTP/1.1 on asyncio, with a keep-alive pool, under httpx.

httpx's default transport is httpcore's pool, h11 (a pure-Python HTTP/1.1 state machine)
and anyio. Measured in ``bench/`` (1,100 creates, 10 in flight, loopback), that stack took
~0.55 ms of CPU per request, so when ten answers arrived together the last waited for the
nine before it, and importing it (httpcore imports trio when installed, anyio its asyncio
backend at the first request) took ~80 ms before the first request. ``Http1Transport`` is an
``httpx.AsyncBaseTransport`` (httpx's public extension point): ``http1.Connection`` parses
answers with httptools (C) as they arrive; everything above it - the client, its headers,
cookies, auth, decoding, the exceptions - is httpx's own.

What it keeps from httpcore's pool: connections are reused per origin (scheme, host, port);
at most ``max_keepalive_connections`` idle ones are kept, each at most ``keepalive_expiry``
seconds; an idle connection the server closed (or wrote to) is never reused; with
``max_connections`` set, a request waits for a free connection at most the ``pool`` timeout
(``PoolTimeout``). The ``connect``/``read``/``write``/``pool`` timeouts come from
``request.extensions["timeout"]``, as httpx sets them. ``https`` connects with the given
``SSLContext`` and SNI. Responses stream (SSE); request bodies stream (chunked when httpx
said so). A response not read to its end closes its connection.

``http_transport`` returns it; when proxy variables are set it returns None, so that httpx's
default transport honours them.

``request.extensions[BEFORE_WRITE]``: a callable the client gives a request that may change
something; it is called right before that request's first bytes go to the socket, with no
await in between, and an exception it raises keeps them unsent. An apply frozen
between the client's own check and the socket write would otherwise send one more write
after it lost its lock.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from reconciler.provider.http1 import Connection, Origin

__all__ = ["BEFORE_WRITE", "Http1Transport", "http_transport"]

#: The request extension (as httpx's own ``timeout``) holding a callable that is called right
#: before the request's first bytes are written.
BEFORE_WRITE = "reconciler.before_write"

_DEFAULT_PORTS = {"http": 80, "https": 443}


def http_transport(*, verify: ssl.SSLContext, limits: httpx.Limits) -> Http1Transport | None:
    """The client's HTTP transport; None when proxy variables are set.

    Args:
        verify: the TLS context for ``https://`` URLs.
        limits: the pool's limits, as ``httpx.AsyncClient(limits=...)`` takes them.
    """
    if urllib.request.getproxies():
        return None  # httpx's own transport knows HTTPS_PROXY, ALL_PROXY and NO_PROXY
    return Http1Transport(verify=verify, limits=limits)


class Http1Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over pooled asyncio connections (see the module's docstring).

    Args:
        verify: the TLS context for ``https://`` URLs.
        limits: ``max_connections`` (None: no bound), ``max_keepalive_connections`` (idle
            connections kept), ``keepalive_expiry`` (seconds an idle one is kept).
    """

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        self._ssl_context = verify
        self._max_connections = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._idle: dict[Origin, deque[Connection]] = {}
        self._idle_count = 0
        self._open: set[Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def connections(self) -> list[Connection]:
        """Every open connection, idle or busy."""
        return list(self._open)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"the URL scheme {scheme!r} is not supported")
        host = url.raw_host.decode("ascii")
        origin = (scheme, host, url.port or _DEFAULT_PORTS[scheme])
        guard: Callable[[], None] | None = request.extensions.get(BEFORE_WRITE)
        connection = await self._acquire(origin, timeouts, request)
        try:
            await connection.send(request, timeouts.get("write"), guard)
            await connection.wait_head(timeouts.get("read"))
        except BaseException:
            self._discard(connection)
            raise
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=_Body(self, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": connection.reason},
        )

    async def aclose(self) -> None:
        """Close every connection, and wait (briefly) until asyncio let go of the sockets."""
        connections = list(self._open)
        self._open.clear()
        self._idle.clear()
        self._idle_count = 0
        for connection in connections:
            connection.close()
        if connections:
            await asyncio.wait([c.lost for c in connections], timeout=1.0)

    # -- the pool --------------------------------------------------------------------------

    async def _acquire(
        self, origin: Origin, timeouts: dict[str, float | None], request: httpx.Request
    ) -> Connection:
        """An idle connection to ``origin`` still fit for use, else a new one."""
        deadline: float | None = None
        while True:
            idle = self._idle.get(origin)
            if idle:
                now = time.monotonic()
                while idle:
                    connection = idle.pop()  # the most recently used: least likely closed
                    self._idle_count -= 1
                    if connection.reusable and not self._expired(connection, now):
                        return connection
                    self._discard(connection)
            limit = self._max_connections
            if limit is None or len(self._open) + self._opening < limit:
                return await self._connect(origin, timeouts.get("connect"), request)
            if self._close_one_idle():
                continue  # room made by closing another origin's idle connection
            if deadline is None:
                pool_timeout = timeouts.get("pool")
                deadline = None if pool_timeout is None else time.monotonic() + pool_timeout
            await self._wait_for_room(deadline)

    async def _wait_for_room(self, deadline: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        woken = False
        try:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            async with asyncio.timeout(remaining):
                await waiter
            woken = True
        except TimeoutError:
            raise httpx.PoolTimeout("no connection became free in time") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif not woken and waiter.done() and not waiter.cancelled():
                self._room_made()  # woken, then timed out or cancelled: pass the room on

    def _room_made(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _expired(self, connection: Connection, now: float) -> bool:
        return self._expiry is not None and now - connection.idle_since > self._expiry

    def _close_one_idle(self) -> bool:
        for idle in self._idle.values():
            if idle:
                self._idle_count -= 1
                self._discard(idle.popleft())
                return True
        return False

    async def _connect(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        connection = Connection(origin)
        kwargs: dict[str, Any] = {}
        if scheme == "https":
            sni = request.extensions.get("sni_hostname")
            kwargs["ssl"] = self._ssl_context
            kwargs["server_hostname"] = sni.decode() if isinstance(sni, bytes) else sni or host
        # Happy eyeballs only races several addresses of a name; an IP literal has one, and
        # Python 3.11's staggered race can leak the winning socket when the connect is
        # cancelled (a ResourceWarning seen once in the slow suite under a 0.4 s timeout).
        # Only asyncio's own loops race: uvloop (a library user's loop, or the runtime API
        # inside a uvicorn app) has no ``happy_eyeballs_delay`` and connects in order.
        if not _is_ip_literal(host) and isinstance(loop, asyncio.BaseEventLoop):
            kwargs["happy_eyeballs_delay"] = 0.25
        self._opening += 1
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: connection, host, port, **kwargs)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as e:  # ssl.SSLError is one
            raise httpx.ConnectError(str(e) or type(e).__name__) from e
        finally:
            self._opening -= 1
            if connection.transport is None:
                self._room_made()
        self._open.add(connection)
        return connection

    def _release(self, connection: Connection) -> None:
        """A response read to its end: keep its connection for the next request, or close."""
        connection.active = False
        now = time.monotonic()
        idle = self._idle.setdefault(connection.origin, deque())
        while idle and (not idle[0].reusable or self._expired(idle[0], now)):
            self._idle_count -= 1  # the oldest first: closed by the server, or expired
            self._discard(idle.popleft())
        if (
            not connection.reusable
            or connection.closed
            or connection not in self._open
            or (self._max_idle is not None and self._idle_count >= self._max_idle)
        ):
            self._discard(connection)
            return
        connection.idle_since = now
        idle.append(connection)
        self._idle_count += 1
        self._room_made()

    def _discard(self, connection: Connection) -> None:
        connection.close()
        if connection in self._open:
            self._open.discard(connection)
            self._room_made()


class _Body(httpx.AsyncByteStream):
    """A response's body as it arrives; its end (or closing it) frees the connection."""

    def __init__(self, pool: Http1Transport, connection: Connection, timeout: float | None):
        self._pool = pool
        self._connection: Connection | None = connection
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        try:
            while chunk := await connection.read_body(self._timeout):
                yield chunk
        except BaseException:
            self._done(keep=False)
            raise
        self._done(keep=True)

    async def aclose(self) -> None:
        self._done(keep=False)

    def _done(self, *, keep: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if keep and connection.complete and not connection.body:
            self._pool._release(connection)
        else:
            self._pool._discard(connection)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
