"""``create_app``: assemble the local provider's FastAPI app over one SQLite file.

Wires the store, the event hub, the route modules, the envelope error handlers, the
optional fault injector and the OpenAPI document. The database is opened here, not in a
lifespan hook, because ``httpx.ASGITransport`` never runs lifespan events.

Middleware order, outermost first: RequestContext (request id, API key, body size, route,
version and beta headers, 500 safety net)
-> FaultInjector (only when faults are configured) -> FastAPI's router.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from . import (
    memory_db,
    routes_agents,
    routes_deployments,
    routes_environments,
    routes_files,
    routes_memories,
    routes_memory_stores,
    routes_session_resources,
    routes_sessions,
    routes_skills,
    routes_vaults,
)
from .context import Provider
from .errors import RequestContext, install_exception_handlers
from .faults import FaultConfig, FaultInjector, bucket_of
from .openapi import install_openapi
from .sessions import PING_INTERVAL
from .store import Store


def _all_routes() -> list[BaseRoute]:
    """The route modules' own route objects, in order. Not ``include_router``: FastAPI keeps an
    included router as one route that builds every route of it again (dependencies, body
    validators) on the first request it is asked to match, ~1 MiB per process (an embedded
    plan pays it on its first list)."""
    routes: list[BaseRoute] = []
    for module in (
        routes_agents,
        routes_environments,
        routes_vaults,
        routes_sessions,
        routes_session_resources,
        routes_deployments,
        routes_memory_stores,
        routes_memories,
        routes_skills,
        routes_files,
    ):
        routes.extend(module.router.routes)
    return routes


_ROUTES = _all_routes()


def rate_buckets() -> frozenset[str]:
    """Every rate-limit bucket a request can fall in (``faults.bucket_of`` of each route):
    the names ``FaultConfig.bucket_limits`` (``--bucket-limit``) may limit."""
    return frozenset(
        bucket_of(method, route.path)
        for route in _ROUTES
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )


DESCRIPTION = """\
A local, persistent emulator of Anthropic's Managed Agents API (beta
`managed-agents-2026-04-01`). Every `/v1/` request needs an API key (`x-api-key` or
`Authorization: Bearer`; any value is accepted), an `anthropic-version` header (any value)
and, on the routes that take one, the `anthropic-beta` header. Sessions run a deterministic
echo agent.
"""


def create_app(
    db_path: str | Path,
    faults: FaultConfig | None = None,
    *,
    ping_interval: float = PING_INTERVAL,
) -> FastAPI:
    """Build the local provider app over the SQLite file ``db_path`` (created if missing).

    Args:
        db_path: the database file; several apps (and processes) may share it.
        faults: latency / failures / rate limit to inject; None for none.
        ping_interval: seconds between SSE ``ping`` frames.

    Returns:
        The ASGI app. ``app.state.provider`` holds the store and event hub;
        ``app.state.faults`` the ``FaultInjector`` (with ``.stats``) or None.
    """
    provider = Provider(store=Store(db_path), ping_interval=ping_interval)
    memory_db.install(provider.store)
    app = FastAPI(
        title="Managed Agents API (local provider)",
        version="2026-04-01",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        # The wire has no trailing-slash paths: ``/v1/agents/`` is an unknown route (404 in
        # the error envelope), not a bodiless 307 to ``/v1/agents``.
        redirect_slashes=False,
    )
    app.state.provider = provider
    # Shared route objects: analysing ~45 FastAPI routes costs ~0.2 s, so it happens once
    # per process (``_ROUTES``), not once per app; handlers reach their app's store via the
    # request (``context.provider_of``).
    app.router.routes.extend(_ROUTES)
    install_exception_handlers(app)
    install_openapi(app)

    app.state.faults = None
    if faults is not None and faults.active:
        # Built now rather than by Starlette's lazy middleware stack, so that tests can
        # read ``app.state.faults.stats`` at any time.
        injector = FaultInjector(None, faults)
        app.state.faults = injector
        app.add_middleware(injector.bind)
    app.add_middleware(RequestContext)
    return app
