"""Serving the local provider over HTTP: ``BackgroundServer`` for tests, ``serve`` for the CLI.

Uvicorn only. ``BackgroundServer`` binds 127.0.0.1 on a free port chosen by the OS, runs
uvicorn in a daemon thread and stops it on exit (ending open SSE streams first, so shutdown
never hangs on them). ``serve`` blocks, for ``reconciler provider serve``. Both warm the app
up before it takes traffic (``warm_up``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any, Self

import uvicorn
from fastapi import FastAPI

from .app import create_app
from .context import Provider
from .faults import FaultConfig, InjectedDisconnect


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port) and listening.

    Listening before uvicorn starts means a client that connects as soon as the address is
    announced waits in the backlog instead of being refused.

    Raises:
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets when the
    # listening socket names its protocol; without it every response stalls ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError:
        sock.close()
        raise
    return sock


class _InjectedDropsInOneLine(logging.Filter):
    """Uvicorn logs an app that raises mid-response as "Exception in ASGI application" with
    its traceback; a connection ``--fault-rate`` drops on purpose (``InjectedDisconnect``)
    is said in one line instead, so a served provider's log does not look like a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, InjectedDisconnect):
            record.msg, record.args, record.exc_info = "%s", (error,), None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_injected_drops() -> None:
    """Install ``_InjectedDropsInOneLine`` on uvicorn's error log (once; after uvicorn's
    ``Config``, which configures its loggers afresh)."""
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _InjectedDropsInOneLine) for f in log.filters):
        log.addFilter(_InjectedDropsInOneLine())


def provider_app(app: Any) -> FastAPI | None:
    """The local provider's FastAPI app in ``app``, which may wrap it in ASGI middleware that
    keeps it as ``.app`` (as the benchmark's request meter does); None when there is none."""
    while not isinstance(app, FastAPI):
        app = getattr(app, "app", None)
        if app is None:
            return None
    return app


async def warm_up(app: FastAPI) -> None:
    """Route one request through ``app``'s router before the server takes traffic.

    FastAPI builds an included router's routes again when an app routes its first request:
    about 50 ms for the provider's routes, in one burst on the server's loop, which the
    first requests of the first client took on top of the modelled latency
    (``--latency-ms``). The provider's app now serves its routes as declared
    (``app._all_routes``), so nothing is left to build; the warm-up stays, at the cost of
    one unmatched routing, for whatever a router built on first use. The request goes to
    the router itself, beneath the fault injector and the request context, so it is not
    counted, delayed or rate limited, and matches no route.
    """

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    path = "/__warm-up__"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    await app.router(scope, receive, send)


class _ProviderServer(uvicorn.Server):
    """Uvicorn that warms the provider up before it listens (``warm_up``) and ends the open
    SSE streams when it shuts down (Ctrl-C, SIGTERM, ``BackgroundServer.stop``).

    Uvicorn's graceful shutdown waits for every response to finish, and an event stream
    (a ``reconciler run``, a ``follow=True`` tail, the SDK's ``events.stream``) never does by
    itself: the server said "Waiting for connections to close" and did not exit. Answers
    that ``--latency-ms`` holds back are released at once for the same reason.
    """

    def served_provider(self) -> Provider | None:
        app = provider_app(self.config.app)
        provider: Provider | None = getattr(app.state, "provider", None) if app else None
        return provider

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        app = provider_app(self.config.app)
        if app is not None:
            await warm_up(app)
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        provider = self.served_provider()
        if provider is not None:
            provider.hub.close()  # in the server's loop, not in the signal handler
        app = provider_app(self.config.app)
        faults = getattr(app.state, "faults", None) if app is not None else None
        if faults is not None:
            faults.release()  # answers held back by --latency-ms go out now
        await super().shutdown(sockets)


class BackgroundServer:
    """Run an ASGI app with uvicorn in a background thread.

    Example:
        with BackgroundServer(create_app(tmp_path / "p.db")) as server:
            httpx.get(server.url + "/openapi.json")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _ProviderServer | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        sock = listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            ws="none",
        )
        self._server = _ProviderServer(config)
        quiet_injected_drops()
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"local-provider-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local provider failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            provider = self._server.served_provider()
            if provider is not None:
                provider.hub.close()  # ends open SSE streams so shutdown does not wait on them

            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    db_path: str | Path = ".reconciler/provider.db",
    faults: FaultConfig | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve the local provider until interrupted (Ctrl-C).

    ``ready`` is called once the database is open and the port listens: a caller announcing
    the server says nothing when the database cannot be used (``StoreError``) or the port
    cannot be bound (``OSError``), and a client that connects at once is not refused.
    """
    app = create_app(db_path, faults)
    sock = listening_socket(host, port)
    try:
        if ready is not None:
            ready()
        config = uvicorn.Config(app, lifespan="off", log_level="info", ws="none")
        quiet_injected_drops()
        _ProviderServer(config).run(sockets=[sock])
    finally:
        sock.close()
