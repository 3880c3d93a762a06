"""A wire that loses chosen answers in front of the real local provider, and a provider
with fault flags reached in-process or over TCP: the tools of the upload fault tests.

It holds no tests. ``LoseAnswers`` is the transport, ``lossy`` a client over it, ``faulty``
a client of a provider created with a ``FaultConfig``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from reconciler.provider import ProviderClient
from reconciler.provider.asgi_transport import StreamingASGITransport
from reconciler.provider.embedded import EMBEDDED_BASE_URL
from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

#: backoff short enough for tests that retry many times
FAST: dict[str, Any] = {"backoff_base": 0.001, "backoff_max": 0.005}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}


class LoseAnswers(httpx.AsyncBaseTransport):
    """The local provider's transport, losing the answers ``script`` names.

    ``script[(method, path)]`` is a list of fates, one per request to that path in turn:
    ``"before"`` answers 503 without the provider seeing the request, ``"after"`` answers 503
    after the provider committed it, ``"dropped"`` drops the connection after the commit,
    ``None`` passes the request through. ``sent`` counts the requests per (method, path).
    """

    def __init__(self, db: Path, script: dict[tuple[str, str], list[str | None]]) -> None:
        self.inner = StreamingASGITransport(create_app(db))
        self.script = script
        self.sent: Counter[tuple[str, str]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        self.sent[key] += 1
        steps = self.script.get(key)
        fate = steps.pop(0) if steps else None
        if fate is None:
            return await self.inner.handle_async_request(request)
        if fate in ("after", "dropped"):
            response = await self.inner.handle_async_request(request)
            await response.aread()
            await response.aclose()
            if fate == "dropped":
                raise httpx.RemoteProtocolError("peer closed the connection", request=request)
        return httpx.Response(503, json=OVERLOADED)

    async def aclose(self) -> None:
        await self.inner.aclose()


@contextlib.asynccontextmanager
async def lossy(
    db: Path, script: dict[tuple[str, str], list[str | None]], **kw: Any
) -> AsyncIterator[tuple[ProviderClient, LoseAnswers]]:
    """A client whose wire is ``LoseAnswers(db, script)``."""
    wire = LoseAnswers(db, script)
    async with ProviderClient(EMBEDDED_BASE_URL, "test", transport=wire, **FAST, **kw) as client:
        yield client, wire


@contextlib.asynccontextmanager
async def faulty(kind: str, db: Path, faults: FaultConfig, **kw: Any) -> AsyncIterator[Any]:
    """(client, FaultInjector) of a provider with ``faults``, ``kind`` "in-process" or "tcp"."""
    app = create_app(db, faults=faults)
    if kind == "in-process":
        wire = StreamingASGITransport(app)
        async with ProviderClient(
            EMBEDDED_BASE_URL, "test", transport=wire, **FAST, **kw
        ) as client:
            yield client, app.state.faults
    else:
        with BackgroundServer(app) as server:
            async with ProviderClient(server.url, "test", **FAST, **kw) as client:
                yield client, app.state.faults
