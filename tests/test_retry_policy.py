"""One retry policy: the client's ``max_retries`` bounds the requests of every action.

Issue 13.8: the client retried and the executor backed off again on top (up to 5 x 5
attempts of a create under a 429 storm). Now the client alone decides whether and when a
request is sent again; the executor only says how to look up a write whose answer was lost.
Under a 429 storm or a 5xx storm of the local provider's fault flags, every request an action
makes is counted on the wire (a count, never a timing).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.engine.executor import apply_plan
from reconciler.engine.model import Archive, Create, Plan, Target, Update
from reconciler.kinds import ADDRESS_KEY
from reconciler.provider import ProviderClient, embedded_client
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.provider.asgi_transport import StreamingASGITransport
from reconciler.provider.embedded import EMBEDDED_BASE_URL
from reconciler.provider.local import FaultConfig, create_app

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "ab" * 32
FAST: dict[str, Any] = {"backoff_base": 0.001, "backoff_max": 0.002}


class CountingTransport(httpx.AsyncBaseTransport):
    """The local provider's transport, counting each request by what it is about."""

    def __init__(self, app: Any) -> None:
        self.inner = StreamingASGITransport(app)
        self.sent: Counter[tuple[str, str]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        address = (
            (body.get("metadata") or {}).get(ADDRESS_KEY) if request.method == "POST" else None
        )
        self.sent[(request.method, address or request.url.path)] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def stormy(
    db: Path, faults: FaultConfig, max_retries: int
) -> AsyncIterator[tuple[ClientBackedProvider, CountingTransport]]:
    wire = CountingTransport(create_app(db, faults=faults))
    client = ProviderClient(
        EMBEDDED_BASE_URL, "test", transport=wire, max_retries=max_retries, **FAST
    )
    async with client:
        yield ClientBackedProvider(client), wire


def create(address: str, body: dict[str, Any]) -> Create:
    kind = address.split(".")[0]
    return Create(
        address=address, kind=kind, reason="new", body=body, target=Target(spec_digest=DIGEST)
    )


async def run(plan: Plan, writer: ClientBackedProvider) -> Any:
    return await apply_plan(plan, writer, resolve_secret=lambda a, p: "", parallelism=10)


@pytest.mark.parametrize("max_retries", [0, 1])
async def test_a_429_storm_costs_each_create_at_most_one_plus_max_retries_attempts(
    provider_db: Path, max_retries: int
) -> None:
    """One request a second gets through; four creates arrive at once. The three refused
    ones are sent again by the client within its budget only, never by the executor."""
    addresses = [f"agent.a{i}" for i in range(4)]
    plan = Plan(
        project="storm",
        actions=tuple(create(a, {"name": a[6:], "model": "claude-sonnet-4-6"}) for a in addresses),
    )
    async with stormy(provider_db, FaultConfig(rate_limit=1.0), max_retries) as (writer, wire):
        report = await run(plan, writer)
        stats = writer.client.stats

    assert stats.rate_limited >= 3  # the storm happened
    attempts = {a: wire.sent[("POST", a)] for a in addresses}
    assert all(1 <= n <= 1 + max_retries for n in attempts.values()), attempts
    assert sum(attempts.values()) == stats.requests
    for address, failure in report.failures.items():
        assert failure.startswith("create failed: rate limited on POST /v1/agents"), failure
        assert attempts[address] == 1 + max_retries  # gave up exactly at the budget
    if max_retries == 0:
        assert len(report.failures) == 3


async def test_a_5xx_storm_costs_each_action_at_most_one_plus_max_retries_of_each_request(
    provider_db: Path,
) -> None:
    """Every request fails (503 or a dropped connection, before or after the provider
    committed). A create whose answer is lost is looked up (a list, retried by the client)
    and never sent blind; idempotent writes use the client's budget and stop there."""
    async with embedded_client(provider_db) as clean:
        env = await clean.environments.create({"name": "old"})
        agent = await clean.agents.create({"name": "keep", "model": "claude-sonnet-4-6"})
    plan = Plan(
        project="storm",
        actions=(
            create("agent.new", {"name": "new", "model": "claude-sonnet-4-6"}),
            Archive(
                address="environment.old", kind="environment", reason="gone", remote_id=env["id"]
            ),
            Update(
                address="agent.keep",
                kind="agent",
                reason="system",
                remote_id=agent["id"],
                changes=(),
                body={"system": "s", "version": 1},
                target=Target(spec_digest=DIGEST),
                from_version=1,
                to_version=2,
            ),
        ),
    )
    budget = 3
    faults = FaultConfig(fault_rate=1.0, seed=7)
    async with stormy(provider_db, faults, budget - 1) as (writer, wire):
        report = await run(plan, writer)

    assert set(report.failures) == {"agent.new", "environment.old", "agent.keep"}
    # the create: sent once, then looked up by its tags (one list, the client's budget)
    assert wire.sent[("POST", "agent.new")] == 1
    assert wire.sent[("GET", "/v1/agents")] == budget
    assert "may or may not have been applied" in report.failures["agent.new"]
    # an archive is idempotent: the client's budget, used up and not exceeded
    assert wire.sent[("POST", f"/v1/environments/{env['id']}/archive")] == budget
    # a versioned agent update: sent once, then read back (the client's budget)
    assert wire.sent[("POST", f"/v1/agents/{agent['id']}")] == 1
    assert wire.sent[("GET", f"/v1/agents/{agent['id']}")] == budget
    assert sum(wire.sent.values()) == 1 + budget + budget + 1 + budget
