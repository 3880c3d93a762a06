"""Serving the local provider over HTTP: ``BackgroundServer`` for tests, ``serve`` for the CLI.

Uvicorn only. ``BackgroundServer`` binds 127.0.0.1 on a free port chosen by the OS, runs
uvicorn in a daemon thread and stops it on exit (ending open SSE streams first, so shutdown
never hangs on them). ``serve`` blocks, for ``reconciler provider serve``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from .app import create_app
from .faults import FaultConfig


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
        self._server: uvicorn.Server | None = None
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
        self._server = uvicorn.Server(config)
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
        provider = getattr(getattr(self.app, "state", None), "provider", None)
        if provider is not None:
            provider.hub.close()  # ends open SSE streams so shutdown does not wait on them
        if self._server is not None:
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _EndingStreamsServer(uvicorn.Server):
    """Uvicorn that ends the open SSE streams when it shuts down (Ctrl-C, SIGTERM).

    Uvicorn's graceful shutdown waits for every response to finish, and an event stream
    (a ``reconciler run``, a ``follow=True`` tail, the SDK's ``events.stream``) never does by
    itself: the server said "Waiting for connections to close" and did not exit.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        provider = getattr(getattr(self.config.app, "state", None), "provider", None)
        if provider is not None:
            provider.hub.close()  # in the server's loop, not in the signal handler
        await super().shutdown(sockets)


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
        _EndingStreamsServer(config).run(sockets=[sock])
    finally:
        sock.close()
