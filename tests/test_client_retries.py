"""Retries against the local provider's injected faults, not mocks.

``FaultConfig(fault_rate=P, seed=S)`` makes the provider fail a reproducible share of requests
with a 503 or a dropped connection, before or after the handler committed; ``rate_limit=R``
answers 429 with ``retry-after``. Idempotent reads must ride through all of it; creates must
either succeed or say ``AmbiguousWriteError`` - and never leave a silent duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import (
    AmbiguousWriteError,
    ProviderConnectionError,
    RateLimitError,
    ServerError,
)
from reconciler.provider import ProviderClient, embedded_client
from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"backoff_base": 0.001, "backoff_max": 0.005}


def faulty_app(db: Path, **faults: Any) -> Any:
    return create_app(db, faults=FaultConfig(**faults))


@pytest.fixture(params=["in-process", pytest.param("tcp", marks=pytest.mark.tcp)])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_faulty(kind: str, db: Path, faults: FaultConfig, **kw: Any) -> Any:
    """An async context manager yielding a client of a provider with ``faults``."""

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[ProviderClient]:
        if kind == "in-process":
            async with embedded_client(db, faults=faults, **FAST, **kw) as client:
                yield client
        else:
            with BackgroundServer(create_app(db, faults=faults)) as server:
                async with ProviderClient(server.url, "test", **FAST, **kw) as client:
                    yield client

    return opened()


async def seed_agents(db: Path, count: int) -> list[dict[str, Any]]:
    async with embedded_client(db) as clean:
        return list(
            await asyncio.gather(
                *(
                    clean.agents.create({"name": f"seed-{i:03d}", "model": "m"})
                    for i in range(count)
                )
            )
        )


async def all_agents(db: Path) -> list[dict[str, Any]]:
    async with embedded_client(db) as clean:
        return await clean.agents.list(include_archived=True).to_list()


async def test_idempotent_reads_survive_a_30_percent_fault_rate(
    transport_kind: str, provider_db: Path
) -> None:
    agents = await seed_agents(provider_db, 120)
    faults = FaultConfig(fault_rate=0.3, seed=7)
    async with open_faulty(transport_kind, provider_db, faults, max_retries=8) as client:
        for agent in agents[:15]:
            assert (await client.agents.retrieve(agent["id"]))["id"] == agent["id"]
        listed = await client.agents.list().to_list()
        archived = await client.agents.archive(agents[0]["id"])  # POST, but idempotent
        stats = client.stats
    assert {a["id"] for a in listed} == {a["id"] for a in agents}
    assert archived["archived_at"] is not None
    assert stats.retries > 0, "the faults must actually have been met"
    assert stats.requests == 15 + 2 + 1 + stats.retries


async def test_creates_succeed_or_say_ambiguous_and_never_duplicate(
    transport_kind: str, provider_db: Path
) -> None:
    faults = FaultConfig(fault_rate=0.3, seed=11)
    outcomes: dict[str, str] = {}
    async with open_faulty(transport_kind, provider_db, faults) as client:
        for i in range(40):
            name = f"agent-{i:02d}"
            try:
                await client.agents.create({"name": name, "model": "m"})
                outcomes[name] = "created"
            except AmbiguousWriteError as err:
                assert (err.method, err.path) == ("POST", "/v1/agents")
                assert "may or may not have been applied" in str(err)
                outcomes[name] = "ambiguous"
        stats = client.stats

    assert stats.by_method == {"POST": 40}, "a create is sent once, never blindly retried"
    assert "ambiguous" in outcomes.values() and "created" in outcomes.values()
    live = Counter(a["name"] for a in await all_agents(provider_db))
    assert max(live.values()) == 1, "no create was applied twice"
    for name, outcome in outcomes.items():
        if outcome == "created":
            assert live[name] == 1, f"{name} reported created but is missing"
    # Some ambiguous creates did happen (the fault struck after the commit): the engine
    # must look before it re-creates, which is exactly what the error tells it.
    assert any(live[n] for n, o in outcomes.items() if o == "ambiguous")


async def test_429s_are_honoured_until_the_request_gets_through(provider_db: Path) -> None:
    (agent,) = await seed_agents(provider_db, 1)
    faults = FaultConfig(rate_limit=20)
    async with embedded_client(provider_db, faults=faults, **FAST) as client:
        started = time.monotonic()
        for _ in range(30):  # 20 in the server's burst, then 10 more at 20/s
            await client.agents.retrieve(agent["id"])
        elapsed = time.monotonic() - started
        stats = client.stats
    assert stats.rate_limited >= 1
    assert stats.requests == 30 + stats.retries
    assert elapsed >= 0.4, "the client waited for retry-after instead of hammering"


async def test_a_create_rejected_with_429_is_retried(provider_db: Path) -> None:
    faults = FaultConfig(rate_limit=5)
    async with embedded_client(provider_db, faults=faults, **FAST) as client:
        names = [
            (await client.agents.create({"name": f"a{i}", "model": "m"}))["name"] for i in range(7)
        ]
        assert client.stats.rate_limited >= 1  # 5 in the burst, then 429 (nothing written)
    assert sorted(a["name"] for a in await all_agents(provider_db)) == sorted(names)


async def test_rate_limit_error_when_retries_run_out(provider_db: Path) -> None:
    faults = FaultConfig(rate_limit=1)
    # a 429 with retry-after is retried under max_rate_limit_retries, not max_retries
    options = {"max_retries": 0, "max_rate_limit_retries": 0}
    async with embedded_client(provider_db, faults=faults, **options) as client:
        await client.agents.list().to_list()
        with pytest.raises(RateLimitError) as caught:
            await client.agents.list().to_list()
    err = caught.value
    assert (err.status, err.error_type) == (429, "rate_limit_error")
    assert err.retry_after is not None and 0 < err.retry_after <= 1


@pytest.mark.parametrize("max_retries", [0, 2, 5])
async def test_max_retries_bounds_the_attempts(provider_db: Path, max_retries: int) -> None:
    faults = FaultConfig(fault_rate=1.0, seed=3)
    async with embedded_client(provider_db, faults=faults, max_retries=max_retries, **FAST) as c:
        with pytest.raises((ServerError, ProviderConnectionError)) as caught:
            await c.agents.retrieve("agent_1")
        assert c.stats.requests == max_retries + 1
        assert c.stats.retries == max_retries
    if max_retries:
        assert f"after {max_retries} retries" in str(caught.value)


async def test_connection_failure_says_where_it_tried(provider_db: Path) -> None:
    with BackgroundServer(create_app(provider_db)) as server:
        url = server.url  # the port is free again once the server stops
    async with ProviderClient(url, "test", max_retries=1, **FAST) as client:
        with pytest.raises(ProviderConnectionError) as caught:
            await client.agents.list().to_list()
    assert str(caught.value).startswith(f"could not reach the provider at {url}: ")
    assert client.stats.requests == 2
