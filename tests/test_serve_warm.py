"""A served local provider is warm before its first request.

FastAPI built every route's dependants when an app routed its first request (about 50 ms
for the provider's routes). Served cold, the first requests of the first client (a
benchmark's lists, an SDK's first call) took that on top of the modelled latency. Both
``BackgroundServer`` and ``provider serve`` route one request through the app's router
before they take traffic; it goes beneath the fault injector and any wrapping middleware.
Since the app serves its routes as declared instead of including their routers (what FastAPI
built again on the first request), no app builds them then, warmed up or not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

pytestmark = pytest.mark.tcp

HEADERS = {
    "x-api-key": "local-provider",
    "anthropic-beta": "managed-agents-2026-04-01",
    "anthropic-version": "2026-10-21",
}


# The routes' dependants are built once per process (the route objects are shared by every
# app), so whether a first request builds them is asked of a fresh Python process.
FIRST_REQUEST = """
import asyncio, sys, httpx, fastapi.routing
from reconciler.provider.local import BackgroundServer, create_app

built = []
original = fastapi.routing.get_dependant

def counting(*args, **kwargs):
    built.append(kwargs.get("path"))
    return original(*args, **kwargs)

headers = {"x-api-key": "k", "anthropic-beta": "managed-agents-2026-04-01", "anthropic-version": "2026-10-21"}
app = create_app(sys.argv[1])
if sys.argv[2] == "included":  # the provider's routes as an included router would serve them
    from reconciler.provider.local import routes_agents

    provider = app.state.provider
    app = fastapi.FastAPI()
    app.include_router(routes_agents.router)
    app.state.provider = provider
if sys.argv[2] == "served":
    with BackgroundServer(app) as server:
        fastapi.routing.get_dependant = counting
        answer = httpx.get(server.url + "/v1/agents", headers=headers)
else:
    async def first():
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as http:
            return await http.get("/v1/agents", headers=headers)

    fastapi.routing.get_dependant = counting
    answer = asyncio.run(first())
assert answer.status_code == 200, answer.text
print(len(built))
"""


def dependants_built_by_first_request(db: Path, how: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST, str(db), how],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_the_first_request_finds_the_routes_built(provider_db: Path) -> None:
    assert dependants_built_by_first_request(provider_db, "served") == 0


def test_a_cold_app_finds_them_built_too(provider_db: Path) -> None:
    """The app serves the routes as they were declared, which FastAPI analysed on import
    (``provider/local/app.py``): even an app that was never warmed up (the embedded
    provider) builds nothing on its first request."""
    assert dependants_built_by_first_request(provider_db, "in-process") == 0


def test_an_app_including_the_routers_builds_them_on_its_first_request(provider_db: Path) -> None:
    """The checks above can fail: FastAPI analyses an included router's routes again when
    an app routes its first request."""
    assert dependants_built_by_first_request(provider_db, "included") > 0


class Meter:
    """ASGI middleware keeping the provider as ``.app``, as the benchmark's request meter."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def test_the_warm_up_is_not_seen_by_middleware_or_the_fault_injector(
    provider_db: Path,
) -> None:
    app = create_app(provider_db, FaultConfig(rate_limit=1000.0))
    meter = Meter(app)
    with BackgroundServer(meter) as server:
        assert meter.paths == []
        assert app.state.faults.stats.requests == 0
        answer = httpx.get(server.url + "/v1/agents", headers=HEADERS)
    assert answer.status_code == 200
    assert meter.paths == ["/v1/agents"]
    assert app.state.faults.stats.requests == 1
