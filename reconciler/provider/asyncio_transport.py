"""The client's HTTP transport: httpx and httpcore, with sockets driven by asyncio directly.

httpx sends requests through httpcore's connection pool, and httpcore reaches the network
through anyio by default. Measured in ``bench/`` (1,100 creates, 10 in flight, loopback),
the anyio layer costs about a quarter of the client's CPU per request: each time the pool
looks at an idle connection it asks whether the socket is readable, and anyio answers by
building a dictionary of every socket attribute (``getpeername``, address parsing) first.

``AsyncioBackend`` is an ``httpcore.AsyncNetworkBackend`` (httpcore's public extension
point) on a small ``asyncio.Protocol``: bytes are read eagerly into a buffer, so "readable"
is a look at that buffer. Everything above it - the pool, keep-alive, HTTP/1.1 (h11), TLS
settings, timeouts and the exceptions httpx maps - is httpcore's and httpx's own.

``http_transport`` returns httpx's ``AsyncHTTPTransport`` on this backend; when proxy
variables are set it returns None, so that httpx's default transport honours them.

``BEFORE_WRITE``: a callable the client sets (in the sending task's context) for a request that
may change something; the first write of that request's bytes calls it right before they go
to the socket, with no await in between, and an exception it raises keeps them unsent. An
apply frozen between the client's own check and the socket write would otherwise send one
more write after it lost its lock.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import urllib.request
from collections.abc import Callable, Coroutine, Iterable
from contextvars import ContextVar
from typing import Any, cast

import httpcore
import httpx

__all__ = ["BEFORE_WRITE", "AsyncioBackend", "http_transport"]

#: Called (once, then cleared) right before the next request's first bytes are written.
BEFORE_WRITE: ContextVar[Callable[[], None] | None] = ContextVar(
    "reconciler_before_write", default=None
)

#: Reading pauses while this many received bytes wait to be read (a fast SSE stream).
_HIGH_WATER = 1 << 20
_LOW_WATER = _HIGH_WATER // 4

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


def http_transport(
    *, verify: ssl.SSLContext, limits: httpx.Limits
) -> httpx.AsyncHTTPTransport | None:
    """httpx's HTTP transport on ``AsyncioBackend``; None when proxy variables are set.

    Args:
        verify: the TLS context for ``https://`` URLs.
        limits: the pool's limits, as ``httpx.AsyncClient(limits=...)`` takes them.
    """
    if urllib.request.getproxies():
        return None  # httpx's own transport knows HTTPS_PROXY, ALL_PROXY and NO_PROXY
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    if type(getattr(transport, "_pool", None)) is not httpcore.AsyncConnectionPool:
        return transport  # an httpx that builds its pool differently: keep its own
    pool_class = _Pool if _POOL_KNOWN else httpcore.AsyncConnectionPool
    transport._pool = pool_class(
        ssl_context=verify,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=AsyncioBackend(),
    )
    return transport


#: ``_Pool`` overrides one method of httpcore's pool; it is used only with the httpcore
#: releases it was written against (1.0.x), otherwise httpcore's own pool is.
_POOL_KNOWN = httpcore.__version__.startswith("1.0.")


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool with a linear ``_assign_requests_to_connections``.

    httpcore 1.0's version rebuilds a list of every connection for each idle connection it
    looks at, and another for each queued request: O(connections^2) on every request sent
    and every response closed. At 32 requests in flight that was ~2 ms of CPU per request,
    so a higher ``--parallelism`` made an apply slower. Same decisions, in one pass each:
    drop closed and expired connections and surplus idle ones, then hand queued requests
    an available connection, or a new one while under ``max_connections``, or replace an
    idle one. (httpcore 1.0 counts *all* connections against ``max_keepalive_connections``;
    this counts the idle ones, as the limit says.)
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        keep: list[httpcore.AsyncConnectionInterface] = []
        idle = 0
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.has_expired():
                closing.append(connection)
            elif connection.is_idle():
                if idle >= self._max_keepalive_connections:
                    closing.append(connection)
                else:
                    idle += 1
                    keep.append(connection)
            else:
                keep.append(connection)
        self._connections[:] = keep
        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            chosen = next(
                (c for c in self._connections if c.can_handle_request(origin) and c.is_available()),
                None,
            )
            if chosen is None:
                if len(self._connections) >= self._max_connections:
                    idle_one = next((c for c in self._connections if c.is_idle()), None)
                    if idle_one is None:
                        continue  # stays queued until a connection frees up
                    self._connections.remove(idle_one)
                    closing.append(idle_one)
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            pool_request.assign_to_connection(chosen)
        return closing


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP (and Unix socket) connections with asyncio's event loop."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        # Happy eyeballs only races several addresses of a name; an IP literal has one, and
        # Python 3.11's staggered race can leak the winning socket when the connect is
        # cancelled (a ResourceWarning seen once in the slow suite under a 0.4 s timeout).
        # Only asyncio's own loops race: uvloop (a library user's loop, or the runtime API
        # inside a uvicorn app) has no ``happy_eyeballs_delay`` and connects in order.
        race = not _is_ip_literal(host) and isinstance(loop, asyncio.BaseEventLoop)
        kwargs: dict[str, Any] = {"happy_eyeballs_delay": 0.25} if race else {}
        opening = loop.create_connection(_Protocol, host, port, local_addr=local, **kwargs)
        return await _connect(opening, timeout, f"{host}:{port}", socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        opening = asyncio.get_running_loop().create_unix_connection(_Protocol, path)
        return await _connect(opening, timeout, path, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def _connect(
    opening: Coroutine[Any, Any, tuple[asyncio.BaseTransport, _Protocol]],
    timeout: float | None,
    where: str,
    options: Iterable[SocketOption] | None,
) -> _Stream:
    """Await a connection, as httpcore's exceptions; then set the socket options."""
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await opening
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"connecting to {where} timed out") from None
    except OSError as e:
        raise httpcore.ConnectError(str(e) or type(e).__name__) from e
    sock: socket.socket | None = transport.get_extra_info("socket")
    for option in options or ():
        if sock is not None:
            sock.setsockopt(*option)
    return _Stream(protocol)


class _Protocol(asyncio.Protocol):
    """Buffers what arrives; wakes the one reader or writer waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.closed = False
        self.error: Exception | None = None
        self.reading_paused = False
        self.writing_paused = False
        self._waiting: dict[str, asyncio.Future[None]] = {}  # "read" / "drain" -> its waiter
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's stream transports subclass ``asyncio.Transport``; uvloop's have the same
        # methods without the base class, so this is a cast, not a check
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and not self.reading_paused and self.transport:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake("read")

    def eof_received(self) -> None:
        self.eof = True
        self._wake("read")
        # returning None lets the transport close itself: HTTP/1.1 never half-closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = self.closed = True
        self.error = exc
        self._wake("read")
        self._wake("drain")
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake("drain")

    def _wake(self, what: str) -> None:
        waiter = self._waiting.get(what)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by _Stream -------------------------------------------------------------------

    async def wait_for(self, what: str, timeout: float | None) -> None:
        """Until ``what`` ("read": data or EOF arrived; "drain": writing resumed) happens."""
        waiter = self._waiting[what] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await waiter
        finally:
            del self._waiting[what]

    async def wait_lost(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._lost)


class _Stream(httpcore.AsyncNetworkStream):
    """One connection, as httpcore sees it."""

    def __init__(self, protocol: _Protocol, *, tls: bool = False) -> None:
        self._protocol = protocol
        self._tls = tls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._protocol
        if not p.buffer and not p.eof:
            try:
                await p.wait_for("read", timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("the response did not arrive in time") from None
        if p.buffer:
            if len(p.buffer) <= max_bytes:
                data = bytes(p.buffer)
                p.buffer.clear()
            else:
                data = bytes(p.buffer[:max_bytes])
                del p.buffer[:max_bytes]
            if p.reading_paused and len(p.buffer) < _LOW_WATER and p.transport is not None:
                p.reading_paused = False
                p.transport.resume_reading()
            return data
        if p.error is not None:
            raise httpcore.ReadError(str(p.error) or type(p.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        p = self._protocol
        if p.closed or p.transport is None or p.transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        guard = BEFORE_WRITE.get()
        if guard is not None:
            BEFORE_WRITE.set(None)  # once per request: its body follows its head
            guard()
        p.transport.write(buffer)
        if p.writing_paused:
            try:
                await p.wait_for("drain", timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("the request could not be sent in time") from None
            if p.closed:
                raise httpcore.WriteError(str(p.error or "the connection was closed"))

    async def aclose(self) -> None:
        p = self._protocol
        transport = p.transport
        if transport is None or p.closed:
            return
        if self._tls:
            transport.abort()  # no close_notify round trip: httpcore is done with it
        else:
            transport.close()  # sends what is still buffered, then closes
        try:
            await p.wait_lost(1.0)
        except TimeoutError:
            transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        p = self._protocol
        assert p.transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    p.transport, p, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as e:
            await self.aclose()
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        if tls is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(tls, asyncio.Transport)
        p.transport = tls
        return _Stream(p, tls=True)

    def get_extra_info(self, info: str) -> Any:
        p = self._protocol
        if info == "is_readable":  # an idle connection with data or EOF waiting is done for
            return bool(p.buffer) or p.eof or p.transport is None or p.transport.is_closing()
        if p.transport is None:
            return None
        name = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }.get(info)
        return p.transport.get_extra_info(name) if name else None
