"""One retry policy: the client's budgets bound the requests of every action.

Issue 13.8: the client retried and the executor backed off again on top (up to 5 x 5
attempts of a create under a 429 storm). Now the client alone decides whether and when a
request is sent again; the executor only says how to look up a write whose answer was lost.
Under a 429 storm or a 5xx storm of the local provider's fault flags, every request an action
makes is counted on the wire (a count, never a timing). ``max_retries`` bounds the retries
of every failure, except 429s that say when to come back: refused unprocessed, they have a
larger budget of their own (``max_rate_limit_retries``).
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
from reconciler.provider.ratelimit import AdaptiveRateLimiter

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
async def test_a_429_storm_delays_creates_but_spends_none_of_max_retries(
    provider_db: Path, max_retries: int
) -> None:
    """Four requests a second get through; eight creates arrive at once. The refused ones
    were not processed and were told when to come back (``retry-after``): the client sends
    them again - never the executor - under its rate-limit budget, not ``max_retries``, so
    even ``max_retries=0`` loses none (it lost the refused ones before: a limit shared with
    other clients failed applies)."""
    addresses = [f"agent.a{i}" for i in range(8)]
    plan = Plan(
        project="storm",
        actions=tuple(create(a, {"name": a[6:], "model": "claude-sonnet-4-6"}) for a in addresses),
    )
    async with stormy(provider_db, FaultConfig(rate_limit=4.0), max_retries) as (writer, wire):
        report = await run(plan, writer)
        stats = writer.client.stats
        budget = writer.client.policy.max_rate_limit_retries

    assert stats.rate_limited >= 4  # the storm happened
    assert report.failures == {}
    attempts = {a: wire.sent[("POST", a)] for a in addresses}
    assert all(1 <= n <= 1 + budget for n in attempts.values()), attempts
    assert max(attempts.values()) > 1 + max_retries  # past max_retries, within its own budget
    assert sum(attempts.values()) == stats.requests


def always_429(*, retry_after: bool) -> Any:
    """An ASGI app that refuses every request with 429 (saying when to come back, or not)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json")]
        if retry_after:
            headers.append((b"retry-after-ms", b"1"))
        body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("retry_after", [True, False])
async def test_a_429_that_never_ends_fails_a_create_at_its_budget_naming_the_429(
    retry_after: bool,
) -> None:
    """A limit that never lets the request through: a 429 with ``retry-after`` is sent
    again ``max_rate_limit_retries`` times, one without it ``max_retries`` times (the
    server gave no pace to follow); then the create fails, saying it was rate limited."""
    wire = CountingTransport(always_429(retry_after=retry_after))
    client = ProviderClient(
        EMBEDDED_BASE_URL,
        "test",
        transport=wire,
        max_retries=2,
        max_rate_limit_retries=5,
        rate_limiter=AdaptiveRateLimiter(),
        **FAST,
    )
    plan = Plan(project="storm", actions=(create("agent.a", {"name": "a", "model": "m"}),))
    async with client:
        report = await run(plan, ClientBackedProvider(client))
    budget = 5 if retry_after else 2
    assert wire.sent[("POST", "agent.a")] == 1 + budget
    assert report.failures["agent.a"].startswith("create failed: rate limited on POST /v1/agents")
    assert f"gave up after {budget} retries" in report.failures["agent.a"]


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


@pytest.mark.slow
def test_the_examples_apply_in_one_go_under_a_limit_shared_by_every_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's case: the example manifests, applied at the default parallelism against a
    provider allowing 2 requests a second over all routes. Creates meet 429s again and
    again while the client learns the pace; with 429s spending ``max_retries`` some
    create ran out of retries now and then and the apply failed."""
    from click.testing import CliRunner
    from support.gitops import make_workdir

    from reconciler.cli import main
    from reconciler.provider.local import BackgroundServer

    work = make_workdir(tmp_path, monkeypatch)
    app = create_app(work / "provider.db", faults=FaultConfig(rate_limit=2.0))
    with BackgroundServer(app) as server:
        args = ["--provider-url", server.url, "--api-key", "test", "apply", "--auto-approve"]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Apply complete: 8 created" in result.stdout + result.stderr
