"""Shared fixtures: the local provider in-process and over loopback TCP.

Every test runs against the real local provider; nothing mocks the HTTP layer.
Coroutine tests run on asyncio through anyio's pytest plugin (no marker needed).
"""

from __future__ import annotations

import inspect
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts a background job (``pytest ... &``) with SIGINT ignored, and children
    # inherit that: the Ctrl-C tests' ``reconciler`` processes would never see their SIGINT
    # and run to the end. Give this process (and so its children) the ordinary disposition.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Mark coroutine tests before anyio's own hook sees them (parametrized ones included).
    if inspect.iscoroutinefunction(obj) and collector.istestfunction(obj, name):  # type: ignore[attr-defined]
        pytest.mark.anyio(obj)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def provider_db(tmp_path: Path) -> Path:
    return tmp_path / "provider.db"


@pytest.fixture
async def client(provider_db: Path) -> AsyncIterator[object]:
    """A ProviderClient over the local provider, in-process (ASGI transport)."""
    from reconciler.provider import embedded_client

    async with embedded_client(provider_db) as c:
        yield c


@pytest.fixture
def app(provider_db: Path) -> object:
    """The local provider's ASGI app over ``provider_db`` (test_local_provider*.py)."""
    from reconciler.provider.local import create_app

    return create_app(provider_db)


@pytest.fixture
async def http(app: object) -> AsyncIterator[object]:
    """Plain httpx to ``app`` in-process, with the beta header (test_local_provider*.py)."""
    from support.local_provider import local_client

    async with local_client(app) as c:
        yield c


@pytest.fixture
def tcp_provider(provider_db: Path) -> Iterator[str]:
    """The local provider served by uvicorn on 127.0.0.1 at a random port; yields its URL."""
    from reconciler.provider.local import BackgroundServer, create_app

    with BackgroundServer(create_app(provider_db)) as server:
        yield server.url


@pytest.fixture(params=["in-process", pytest.param("tcp", marks=pytest.mark.tcp)])
def provider_url(request: pytest.FixtureRequest) -> str | None:
    """None for the in-process provider, else the URL of the provider served over TCP: a
    test taking it (or ``api``) runs once each way."""
    if request.param == "in-process":
        return None
    url: str = request.getfixturevalue("tcp_provider")
    return url


@pytest.fixture
async def api(provider_url: str | None, provider_db: Path) -> AsyncIterator[object]:
    """A ``ProviderClient`` of the local provider, in-process or over TCP (``provider_url``)."""
    from reconciler.provider import ProviderClient, embedded_client

    client = (
        embedded_client(provider_db)
        if provider_url is None
        else ProviderClient(provider_url, "test")
    )
    async with client:
        yield client


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-golden`` rewrites tests/golden/ (see support/golden.py)."""
    from support.golden import add_golden_option

    add_golden_option(parser)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL server for this test session (``support.postgres``).

    Skipped with the reason when the binaries are missing, except under CI (``CI`` set),
    where a missing server fails the test instead.
    """
    import os

    from support.postgres import PostgresServer, missing_reason

    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: object) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    from support.postgres import PostgresServer

    assert isinstance(postgres_server, PostgresServer)
    return postgres_server.new_database()
