"""The apply executor against the real local provider (in-process).

Plans are built by hand from the model's action types, as the planner would build them,
and run through ``ClientBackedProvider``; assertions look at the report *and* at what is
live on the provider afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.engine.executor import Outcome, apply_plan
from reconciler.engine.model import (
    Action,
    Archive,
    Create,
    Delete,
    NoOp,
    Plan,
    Replace,
    Target,
    Update,
)
from reconciler.errors import (
    ApplyError,
    BadRequestError,
    NotFoundError,
    PlanError,
)
from reconciler.kinds import ADDRESS_KEY, OWNER_KEY, PROJECT_KEY, kind_of
from reconciler.provider import ProviderClient
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.provider.asgi_transport import StreamingASGITransport
from reconciler.provider.embedded import EMBEDDED_BASE_URL
from reconciler.provider.local import create_app

# marked here (not only by conftest) so parametrized coroutine tests collect correctly
pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "ab" * 32
SECRET = "tok-3c7e-very-secret-value"
MESSAGE = [{"type": "user.message", "content": [{"type": "text", "text": "run the checks"}]}]


# -- building plans by hand -------------------------------------------------------------------


def target(**kw: Any) -> Target:
    return Target(spec_digest=DIGEST, **kw)


def create(address: str, body: dict[str, Any], **kw: Any) -> Create:
    kw.setdefault("target", target())
    return Create(address=address, kind=kind_of(address), reason="not live yet", body=body, **kw)


def agent_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "model": "claude-sonnet-4-6", **extra}


def deployment_body(
    name: str, agent: str, env: str, version: int | None = None, vaults: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "name": name,
        "agent": {"$pin": agent, "version": version},
        "environment_id": {"$ref": env},
        "vault_ids": [{"$ref": v} for v in vaults],
        "initial_events": MESSAGE,
    }


def plan(*actions: Action, project: str = "default") -> Plan:
    return Plan(project=project, actions=actions)


def secrets(address: str, path: str) -> str:
    return SECRET


async def run(p: Plan, writer: Any, **kw: Any) -> Any:
    kw.setdefault("resolve_secret", secrets)
    return await apply_plan(p, writer, **kw)


# -- writers that watch or break the real one -------------------------------------------------


class Watching:
    """Delegates to the real writer; records calls and how many overlap."""

    def __init__(self, inner: ClientBackedProvider, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.calls: list[tuple[str, str, str | None]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        fn = getattr(self.inner, name)

        async def call(*args: Any, **kw: Any) -> Any:
            body = next((a for a in args if isinstance(a, dict)), {})
            self.calls.append((name, args[0], (body.get("metadata") or {}).get(ADDRESS_KEY)))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.delay:
                    await asyncio.sleep(self.delay)
                return await fn(*args, **kw)
            finally:
                self.in_flight -= 1

        return call

    def order(self, method: str = "create") -> list[str | None]:
        return [addr for m, _, addr in self.calls if m == method]


class Breaking(Watching):
    """Fails chosen calls once: ``script[(method, address)] = [(error, applied), ...]``.

    The error comes from the writer, i.e. after the client's retries: the executor takes it
    as final. Lost answers the client must resolve are ``Lossy``'s job.
    """

    def __init__(
        self,
        inner: ClientBackedProvider,
        script: dict[tuple[str, str], list[tuple[Exception, bool]]],
    ) -> None:
        super().__init__(inner)
        self.script = script

    async def create(self, kind: str, body: dict[str, Any], **kw: Any) -> Any:
        return await self._maybe_break(
            "create", body["metadata"][ADDRESS_KEY], lambda: self.inner.create(kind, body, **kw)
        )

    async def update(self, kind: str, remote_id: str, body: dict[str, Any], **kw: Any) -> Any:
        return await self._maybe_break(
            "update", remote_id, lambda: self.inner.update(kind, remote_id, body, **kw)
        )

    async def _maybe_break(self, method: str, key: str, send: Callable[[], Awaitable[Any]]) -> Any:
        self.calls.append((method, "", key))
        steps = self.script.get((method, key))
        if steps:
            error, applied = steps.pop(0)
            if applied:
                await send()
            raise error
        return await send()


class Lossy(httpx.AsyncBaseTransport):
    """The local provider's transport, losing chosen answers on the wire.

    ``script[(method, key)] = [fate, ...]``, one fate per request of that key in turn:
    ``"before"`` answers 503 without the provider seeing the request (``"429"``: a 429),
    ``"after"`` answers
    503 after the provider committed it (the answer is lost), ``"dropped"`` drops the
    connection after the provider committed it. A create's key is its address (from the
    ownership tags), an update's the id it updates. ``sent`` lists every key in order.
    """

    def __init__(self, db: Path, script: dict[tuple[str, str], list[str]]) -> None:
        self.inner = StreamingASGITransport(create_app(db))
        self.script = script
        self.sent: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = _key(request)
        self.sent.append(key)
        steps = self.script.get(key)
        fate = steps.pop(0) if steps else None
        if fate is None:
            return await self.inner.handle_async_request(request)
        if fate == "429":
            error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
            return httpx.Response(429, json=error, headers={"retry-after-ms": "1"})
        if fate in ("after", "dropped"):
            response = await self.inner.handle_async_request(request)
            await response.aread()
            await response.aclose()
            if fate == "dropped":
                raise httpx.RemoteProtocolError("peer closed the connection", request=request)
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
        return httpx.Response(503, json=error)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, key: tuple[str, str]) -> int:
        return self.sent.count(key)


def _key(request: httpx.Request) -> tuple[str, str]:
    segments = request.url.path.split("/")[2:]
    if request.method == "POST" and len(segments) % 2 == 1:  # a collection: a create
        body = json.loads(request.content or b"{}")
        return ("create", str((body.get("metadata") or {}).get(ADDRESS_KEY)))
    if request.method == "POST" and len(segments) % 2 == 0:
        return ("update", segments[-1])
    return (request.method, request.url.path)


@pytest.fixture
async def lossy(provider_db: Path) -> AsyncIterator[tuple[ClientBackedProvider, Lossy]]:
    """A writer over the local provider whose wire loses the answers ``Lossy.script`` says."""
    transport = Lossy(provider_db, {})
    fast = {"backoff_base": 0.001, "backoff_max": 0.005}
    async with ProviderClient(EMBEDDED_BASE_URL, "test", transport=transport, **fast) as client:
        yield ClientBackedProvider(client), transport


@pytest.fixture
def provider(client: Any) -> ClientBackedProvider:
    return ClientBackedProvider(client)


async def owned(provider: ClientBackedProvider, kind: str, address: str) -> list[dict[str, Any]]:
    return [
        o
        for o in await provider.list_all(kind)
        if (o.get("metadata") or {}).get(ADDRESS_KEY) == address and not o.get("archived_at")
    ]


# -- ordering and placeholders ----------------------------------------------------------------


async def test_creates_follow_references_and_resolve_them(provider: ClientBackedProvider) -> None:
    writer = Watching(provider)
    p = plan(
        # listed backwards on purpose: order comes from references, not from the tuple
        create(
            "deployment.nightly",
            deployment_body("nightly", "agent.coder", "environment.py", vaults=("vault.gh",)),
            depends_on=("agent.coder", "environment.py", "vault.gh"),
            target=target(pins={"agent.coder": None}),
        ),
        create("agent.coder", agent_body("coder")),
        create(
            "vault.gh.credential.token",
            {
                "auth": {
                    "type": "static_bearer",
                    "mcp_server_url": "https://mcp.example.com/mcp",
                    "token": {"$secret": "auth.token"},
                }
            },
            parent="vault.gh",
            depends_on=("vault.gh",),
        ),
        create("vault.gh", {"display_name": "gh"}),
        create("environment.py", {"name": "py"}),
    )
    report = await run(p, writer)

    assert report.ok, report.failures
    assert report.counts == {
        "created": 5,
        "updated": 0,
        "replaced": 0,
        "archived": 0,
        "deleted": 0,
        "unchanged": 0,
        "failed": 0,
    }
    assert [o.address for o in report.outcomes] == sorted(a.address for a in p.actions)
    order = writer.order()
    for dep in ("agent.coder", "environment.py", "vault.gh"):
        assert order.index(dep) < order.index("deployment.nightly")
    assert order.index("vault.gh") < order.index("vault.gh.credential.token")

    ids = {o.address: o.remote_id for o in report.outcomes}
    live = await provider.retrieve("deployment", ids["deployment.nightly"])
    assert live["agent"] == {"type": "agent", "id": ids["agent.coder"], "version": 1}
    assert live["environment_id"] == ids["environment.py"]
    assert live["vault_ids"] == [ids["vault.gh"]]
    assert report.outcome("deployment.nightly").pins == {"agent.coder": 1}
    assert report.outcome("agent.coder").version == 1

    credential = report.outcome("vault.gh.credential.token")
    assert credential.parent_id == ids["vault.gh"]
    creds = await provider.list_all("credential", parent_id=ids["vault.gh"])
    assert [c["id"] for c in creds] == [credential.remote_id]
    # every create carries the ownership metadata
    assert live["metadata"] == {
        OWNER_KEY: "reconciler",
        PROJECT_KEY: "default",
        ADDRESS_KEY: "deployment.nightly",
    }


async def test_latest_pin_follows_the_version_this_apply_creates(
    provider: ClientBackedProvider,
) -> None:
    first = await run(
        plan(create("agent.coder", agent_body("coder")), create("environment.py", {"name": "py"})),
        provider,
    )
    agent_id = first.outcome("agent.coder").remote_id
    env_id = first.outcome("environment.py").remote_id

    p = plan(
        Update(
            address="agent.coder",
            kind="agent",
            reason="system changed",
            remote_id=agent_id,
            changes=(),
            body={"system": "Be terse.", "version": 1},
            target=target(),
            from_version=1,
            to_version=2,
        ),
        NoOp(address="environment.py", kind="environment", reason="in sync", remote_id=env_id),
        create(
            "deployment.latest",
            deployment_body("latest", "agent.coder", "environment.py"),
            depends_on=("agent.coder", "environment.py"),
            target=target(pins={"agent.coder": None}),
        ),
        create(
            "deployment.pinned",
            deployment_body("pinned", "agent.coder", "environment.py", 1),
            depends_on=("agent.coder", "environment.py"),
            target=target(pins={"agent.coder": 1}),
        ),
    )
    report = await run(p, provider)

    assert report.ok, report.failures
    assert report.counts["updated"] == 1 and report.counts["unchanged"] == 1
    assert report.outcome("agent.coder").version == 2
    assert report.outcome("deployment.latest").pins == {"agent.coder": 2}
    assert report.outcome("deployment.pinned").pins == {"agent.coder": 1}
    latest = await provider.retrieve("deployment", report.outcome("deployment.latest").remote_id)
    assert latest["agent"]["version"] == 2
    assert latest["environment_id"] == env_id
    assert report.outcome("environment.py").remote_id == env_id


async def test_noop_supplies_ids_and_versions(provider: ClientBackedProvider) -> None:
    first = await run(
        plan(create("agent.coder", agent_body("coder")), create("environment.py", {"name": "py"})),
        provider,
    )
    ids = {o.address: o.remote_id for o in first.outcomes}
    p = plan(
        NoOp(
            address="agent.coder",
            kind="agent",
            reason="in sync",
            remote_id=ids["agent.coder"],
            version=1,
        ),
        NoOp(
            address="environment.py",
            kind="environment",
            reason="in sync",
            remote_id=ids["environment.py"],
        ),
        create(
            "deployment.d",
            deployment_body("d", "agent.coder", "environment.py"),
            target=target(pins={"agent.coder": None}),
        ),
    )
    seen: list[Outcome] = []
    report = await run(p, provider, on_outcome=seen.append)
    assert report.ok, report.failures
    assert sorted(o.address for o in seen) == ["agent.coder", "deployment.d", "environment.py"]
    assert report.outcome("agent.coder").version == 1
    assert report.outcome("deployment.d").pins == {"agent.coder": 1}


# -- concurrency ------------------------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 4])
async def test_parallelism_bounds_requests_in_flight(
    provider: ClientBackedProvider, parallelism: int
) -> None:
    writer = Watching(provider, delay=0.01)
    p = plan(*(create(f"agent.a{i:02}", agent_body(f"a{i:02}")) for i in range(20)))
    report = await run(p, writer, parallelism=parallelism)
    assert report.ok, report.failures
    assert writer.max_in_flight == parallelism


async def test_rejects_a_plan_with_two_actions_for_one_address(
    provider: ClientBackedProvider,
) -> None:
    p = plan(create("agent.a", agent_body("a")), create("agent.a", agent_body("a")))
    with pytest.raises(PlanError, match="two actions for agent.a"):
        await run(p, provider)
    assert await provider.list_all("agent") == []


# -- agent version preconditions --------------------------------------------------------------


async def test_stale_agent_version_fails_and_overwrites_nothing(
    provider: ClientBackedProvider, client: Any
) -> None:
    first = await run(plan(create("agent.coder", agent_body("coder", system="v1"))), provider)
    agent_id = first.outcome("agent.coder").remote_id
    await client.agents.update(agent_id, {"system": "edited by hand"})  # now version 2

    p = plan(
        Update(
            address="agent.coder",
            kind="agent",
            reason="system changed",
            remote_id=agent_id,
            changes=(),
            body={"system": "from git", "version": 1},
            target=target(),
            from_version=1,
            to_version=2,
        )
    )
    report = await run(p, provider)

    assert not report.ok
    error = report.failures["agent.coder"]
    assert re.fullmatch(
        r"agent\.coder was changed outside this plan: live version is now 2 \(updated \S+\), "
        r"the plan expected 1; changed: system; nothing was overwritten\. "
        r"Run `reconciler plan` again\.",
        error,
    ), error
    live = await provider.retrieve("agent", agent_id)
    assert (live["version"], live["system"]) == (2, "edited by hand")


async def test_agent_update_sends_the_plan_version_as_precondition(
    provider: ClientBackedProvider,
) -> None:
    first = await run(plan(create("agent.coder", agent_body("coder"))), provider)
    agent_id = first.outcome("agent.coder").remote_id
    sent: list[dict[str, Any]] = []

    class Recording(Watching):
        async def update(self, kind: str, remote_id: str, body: dict[str, Any], **kw: Any) -> Any:
            sent.append(body)
            return await self.inner.update(kind, remote_id, body, **kw)

    writer = Recording(provider)
    p = plan(
        Update(
            address="agent.coder",
            kind="agent",
            reason="x",
            remote_id=agent_id,
            changes=(),
            body={"system": "s"},
            target=target(),
            from_version=1,
            to_version=2,
        )
    )
    report = await run(p, writer)
    assert report.ok, report.failures
    assert sent == [{"system": "s", "version": 1}]


async def test_ambiguous_agent_update_that_went_through_is_not_repeated(
    lossy: tuple[ClientBackedProvider, Lossy],
) -> None:
    provider, wire = lossy
    first = await run(plan(create("agent.coder", agent_body("coder"))), provider)
    agent_id = first.outcome("agent.coder").remote_id
    wire.script[("update", agent_id)] = ["dropped"]
    p = plan(
        Update(
            address="agent.coder",
            kind="agent",
            reason="x",
            remote_id=agent_id,
            changes=(),
            body={"system": "s", "version": 1},
            target=target(),
            from_version=1,
            to_version=2,
        )
    )
    report = await run(p, provider)
    assert report.ok, report.failures
    assert report.outcome("agent.coder").version == 2
    assert wire.count(("update", agent_id)) == 1  # read back, not sent again
    assert (await provider.retrieve("agent", agent_id))["version"] == 2


async def test_ambiguous_agent_update_that_did_not_happen_is_sent_again(
    lossy: tuple[ClientBackedProvider, Lossy],
) -> None:
    provider, wire = lossy
    first = await run(plan(create("agent.coder", agent_body("coder"))), provider)
    agent_id = first.outcome("agent.coder").remote_id
    wire.script[("update", agent_id)] = ["before"]
    p = plan(
        Update(
            address="agent.coder",
            kind="agent",
            reason="x",
            remote_id=agent_id,
            changes=(),
            body={"system": "s", "version": 1},
            target=target(),
            from_version=1,
            to_version=2,
        )
    )
    report = await run(p, provider)
    assert report.ok, report.failures
    assert wire.count(("update", agent_id)) == 2
    live = await provider.retrieve("agent", agent_id)
    assert (live["version"], live["system"]) == (2, "s")


# -- creates whose answer is lost -------------------------------------------------------------


async def test_lost_create_response_is_adopted_not_repeated(
    lossy: tuple[ClientBackedProvider, Lossy],
) -> None:
    provider, wire = lossy
    wire.script[("create", "agent.coder")] = ["dropped"]
    wire.script[("create", "environment.py")] = ["after"]
    p = plan(create("agent.coder", agent_body("coder")), create("environment.py", {"name": "py"}))
    report = await run(p, provider)

    assert report.ok, report.failures
    assert report.adopted == ("agent.coder", "environment.py")
    assert wire.count(("create", "agent.coder")) == 1  # never sent twice
    assert wire.count(("create", "environment.py")) == 1
    assert len(await owned(provider, "agent", "agent.coder")) == 1
    assert len(await owned(provider, "environment", "environment.py")) == 1
    assert (
        report.outcome("agent.coder").remote_id
        == (await owned(provider, "agent", "agent.coder"))[0]["id"]
    )


async def test_create_that_never_arrived_is_sent_again(
    lossy: tuple[ClientBackedProvider, Lossy],
) -> None:
    provider, wire = lossy
    wire.script[("create", "agent.coder")] = ["before", "429"]
    report = await run(plan(create("agent.coder", agent_body("coder"))), provider)
    assert report.ok, report.failures
    assert report.adopted == ()
    assert wire.count(("create", "agent.coder")) == 3
    assert len(await owned(provider, "agent", "agent.coder")) == 1


async def test_a_lost_create_never_adopts_a_same_name_environment_without_our_tags(
    lossy: tuple[ClientBackedProvider, Lossy],
) -> None:
    """Issue 11.1: an environment made by hand holds the name; the create's answer is lost
    (nothing was written). The lookup finds no object with our tags, the resend meets the
    name's 409, and the hand-made environment is refused, never adopted."""
    provider, wire = lossy
    hand = await provider.client.environments.create(
        {"name": "py", "description": "hand-made", "metadata": {"owner": "ops"}}
    )
    wire.script[("create", "environment.py")] = ["before"]
    report = await run(plan(create("environment.py", {"name": "py"})), provider)
    assert report.adopted == ()
    failure = report.failures["environment.py"]
    assert "409" in failure and hand["id"] in failure, failure
    assert f"reconciler import environment.py {hand['id']}" in failure
    assert "belongs to nobody" in failure
    live = await provider.retrieve("environment", hand["id"])
    assert live["metadata"] == {"owner": "ops"} and live["description"] == "hand-made"


async def test_a_name_clash_adopts_our_own_twin_but_never_a_hand_made_environment(
    provider: ClientBackedProvider, client: Any
) -> None:
    await client.environments.create({"name": "by-hand"})
    ours = {OWNER_KEY: "reconciler", PROJECT_KEY: "default", ADDRESS_KEY: "environment.twin"}
    twin = await client.environments.create({"name": "twin", "metadata": ours})
    p = plan(
        create("environment.by-hand", {"name": "by-hand"}),
        create("environment.twin", {"name": "twin"}),
    )
    report = await run(p, provider)
    assert report.outcome("environment.twin").remote_id == twin["id"]
    assert report.adopted == ("environment.twin",)
    failure = report.failures["environment.by-hand"]
    assert failure.startswith("create refused by the provider (409)"), failure
    assert "reconciler import environment.by-hand env_" in failure


async def test_a_create_gives_up_when_the_clients_retries_run_out(
    lossy: tuple[ClientBackedProvider, Lossy],
) -> None:
    """The client's ``max_retries`` (4) bounds the sends; the executor adds none."""
    provider, wire = lossy
    wire.script[("create", "agent.coder")] = ["before"] * 10
    report = await run(plan(create("agent.coder", agent_body("coder"))), provider)
    failure = report.failures["agent.coder"]
    assert failure.startswith("create failed: POST /v1/agents (agent) may or may not"), failure
    assert "gave up after 4 retries" in failure
    assert failure.endswith("the next apply looks for it by its metadata before creating it again")
    assert wire.count(("create", "agent.coder")) == 5
    assert await owned(provider, "agent", "agent.coder") == []


# -- failures ---------------------------------------------------------------------------------


async def test_a_failure_skips_dependents_but_not_independents(
    provider: ClientBackedProvider,
) -> None:
    p = plan(
        create("agent.bad", {"name": "bad"}),  # no model: the provider says 400
        create("environment.py", {"name": "py"}),
        create(
            "deployment.d",
            deployment_body("d", "agent.bad", "environment.py"),
            depends_on=("agent.bad", "environment.py"),
        ),
        create("vault.after", {"display_name": "after"}, depends_on=("deployment.d",)),
        create("agent.good", agent_body("good")),
    )
    report = await run(p, provider)

    assert report.counts["created"] == 2 and report.counts["failed"] == 3
    failures = report.failures
    assert failures["agent.bad"].startswith("create failed: ")
    assert "400" in failures["agent.bad"] and "model" in failures["agent.bad"]
    assert failures["deployment.d"] == "not attempted: depends on agent.bad, which failed"
    assert failures["vault.after"] == (
        "not attempted: depends on deployment.d, which was not attempted (agent.bad failed)"
    )
    assert report.outcome("agent.good").ok and report.outcome("environment.py").ok
    assert report.summary == "Apply: 2 created, 0 updated, 0 archived, 3 failed."
    with pytest.raises(ApplyError) as info:
        report.raise_for_failures()
    assert info.value.failures == failures
    assert str(info.value).splitlines()[0] == report.summary
    assert await provider.list_all("deployment") == []
    assert await provider.list_all("vault") == []


async def test_skip_refuses_stale_actions_with_their_reason(
    provider: ClientBackedProvider,
) -> None:
    p = plan(
        create("environment.py", {"name": "py"}),
        create("agent.coder", agent_body("coder")),
        create("deployment.d", deployment_body("d", "agent.coder", "environment.py")),
    )
    reason = "environment.py changed since the plan was saved (updated_at moved); plan again"
    report = await run(p, provider, skip={"environment.py": reason})
    assert report.failures == {
        "environment.py": reason,
        "deployment.d": "not attempted: depends on environment.py, which failed",
    }
    assert report.outcome("agent.coder").ok
    assert await provider.list_all("environment") == []


async def test_dependency_cycle_fails_its_members(provider: ClientBackedProvider) -> None:
    p = plan(
        create("vault.a", {"display_name": "a"}, depends_on=("vault.b",)),
        create("vault.b", {"display_name": "b"}, depends_on=("vault.a",)),
        create("vault.c", {"display_name": "c"}),
    )
    report = await run(p, provider)
    assert report.failures == {
        "vault.a": "not attempted: its dependencies form a cycle (vault.b)",
        "vault.b": "not attempted: its dependencies form a cycle (vault.a)",
    }
    assert report.outcome("vault.c").ok


async def test_unexpected_exception_fails_only_that_action(
    provider: ClientBackedProvider,
) -> None:
    class Buggy(Watching):
        async def create(self, kind: str, body: dict[str, Any], **kw: Any) -> Any:
            if body["name"] == "boom":
                raise KeyError("model")
            return await self.inner.create(kind, body, **kw)

    p = plan(create("agent.boom", agent_body("boom")), create("agent.fine", agent_body("fine")))
    report = await run(p, Buggy(provider))
    assert report.failures == {"agent.boom": "create failed unexpectedly: KeyError: 'model'"}
    assert report.outcome("agent.fine").ok


async def test_a_failing_callback_aborts_the_apply(provider: ClientBackedProvider) -> None:
    def commit(outcome: Outcome) -> None:
        raise OSError("disk full")

    p = plan(*(create(f"agent.a{i}", agent_body(f"a{i}")) for i in range(5)))
    with pytest.raises(OSError, match="disk full"):
        await run(p, provider, on_outcome=commit, parallelism=1)
    assert len(await provider.list_all("agent")) == 1


async def test_cancellation_propagates(provider: ClientBackedProvider) -> None:
    writer = Watching(provider, delay=5)
    task = asyncio.create_task(run(plan(create("agent.a", agent_body("a"))), writer))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writer.in_flight == 0


# -- secrets ----------------------------------------------------------------------------------


async def test_secrets_reach_the_provider_but_never_the_report(
    provider: ClientBackedProvider, client: Any
) -> None:
    vault = await client.vaults.create({"display_name": "gh"})

    def credential(address: str, auth: dict[str, Any]) -> Create:
        return create(address, {"auth": auth}, parent_id=vault["id"])

    good = {
        "type": "static_bearer",
        "mcp_server_url": "https://a.example.com/mcp",
        "token": {"$secret": "auth.token"},
    }
    bad = {"type": "static_bearer", "mcp_server_url": 12345, "token": {"$secret": "auth.token"}}
    p = plan(
        credential("vault.gh.credential.good", good),
        credential("vault.gh.credential.bad", bad),
        create("vault.x.credential.missing", {"auth": good}, parent_id="vlt_missing"),
    )
    report = await run(p, provider)

    assert report.outcome("vault.gh.credential.good").ok
    assert set(report.failures) == {"vault.gh.credential.bad", "vault.x.credential.missing"}
    assert SECRET not in repr(report)
    assert SECRET not in repr(report.failures)


async def test_a_secret_echoed_by_the_provider_is_masked(
    provider: ClientBackedProvider, client: Any
) -> None:
    vault = await client.vaults.create({"display_name": "gh"})
    echo = BadRequestError(f"token {SECRET} is malformed", status=400)
    writer = Breaking(provider, {("create", "vault.gh.credential.t"): [(echo, False)]})
    auth = {
        "type": "static_bearer",
        "mcp_server_url": "https://a.example.com/mcp",
        "token": {"$secret": "auth.token"},
    }
    report = await run(
        plan(create("vault.gh.credential.t", {"auth": auth}, parent_id=vault["id"])), writer
    )
    assert report.failures == {
        "vault.gh.credential.t": "create failed: token *** is malformed (400)"
    }


async def test_a_secret_that_cannot_be_read_fails_before_anything_is_sent(
    provider: ClientBackedProvider, client: Any
) -> None:
    vault = await client.vaults.create({"display_name": "gh"})

    def unreadable(address: str, path: str) -> str:
        raise LookupError("environment variable GITHUB_TOKEN is not set")

    writer = Watching(provider)
    p = plan(
        create(
            "vault.gh.credential.token",
            {
                "auth": {
                    "type": "static_bearer",
                    "mcp_server_url": "https://a.example.com",
                    "token": {"$secret": "auth.token"},
                }
            },
            parent_id=vault["id"],
        )
    )
    intents: list[Action] = []
    report = await run(p, writer, resolve_secret=unreadable, on_intent=intents.append)
    assert report.failures == {
        "vault.gh.credential.token": (
            "not attempted: could not read the secret auth.token of vault.gh.credential.token: "
            "LookupError: environment variable GITHUB_TOKEN is not set"
        )
    }
    assert writer.calls == [] and intents == []


# -- replace, archive, delete -----------------------------------------------------------------


async def test_replace_archives_the_old_object_then_creates_the_new(
    provider: ClientBackedProvider,
) -> None:
    first = await run(plan(create("environment.py", {"name": "py"})), provider)
    old_id = first.outcome("environment.py").remote_id
    events: list[str] = []
    p = plan(
        Replace(
            address="environment.py",
            kind="environment",
            reason="config.type changed",
            remote_id=old_id,
            changes=(),
            body={"name": "py", "config": {"type": "self_hosted"}},
            target=target(),
        )
    )
    report = await run(
        p,
        provider,
        on_intent=lambda a: events.append(f"intent {a.address}"),
        on_outcome=lambda o: events.append(f"outcome {o.address}"),
    )

    assert report.ok, report.failures
    assert report.counts["replaced"] == 1
    new_id = report.outcome("environment.py").remote_id
    assert new_id != old_id
    assert (await provider.retrieve("environment", old_id))["archived_at"] is not None
    assert (await provider.retrieve("environment", new_id))["config"]["type"] == "self_hosted"
    assert events == ["intent environment.py", "outcome environment.py"]


async def test_archive_and_delete_count_a_missing_object_as_done(
    provider: ClientBackedProvider,
) -> None:
    first = await run(
        plan(create("agent.old", agent_body("old")), create("vault.old", {"display_name": "old"})),
        provider,
    )
    agent_id = first.outcome("agent.old").remote_id
    vault_id = first.outcome("vault.old").remote_id
    p = plan(
        Archive(address="agent.old", kind="agent", reason="pruned", remote_id=agent_id),
        Delete(address="vault.old", kind="vault", reason="pruned", remote_id=vault_id),
        Archive(
            address="environment.gone",
            kind="environment",
            reason="pruned",
            remote_id="env_doesnotexist",
        ),
    )
    report = await run(p, provider)
    assert report.ok, report.failures
    assert report.counts["archived"] == 2 and report.counts["deleted"] == 1
    assert all(o.removed for o in report.outcomes)
    assert (await provider.retrieve("agent", agent_id))["archived_at"] is not None
    with pytest.raises(NotFoundError):
        await provider.retrieve("vault", vault_id)


async def test_deleting_an_agent_is_refused_with_a_clear_message(
    provider: ClientBackedProvider,
) -> None:
    first = await run(plan(create("agent.a", agent_body("a"))), provider)
    agent_id = first.outcome("agent.a").remote_id
    report = await run(
        plan(Delete(address="agent.a", kind="agent", reason="x", remote_id=agent_id)), provider
    )
    assert report.failures["agent.a"].startswith(
        "delete failed: agents cannot be deleted: the provider has no delete endpoint"
    )
    assert (await provider.retrieve("agent", agent_id))["archived_at"] is None


async def test_archive_waits_for_the_updates_that_stop_using_it(
    provider: ClientBackedProvider,
) -> None:
    first = await run(
        plan(
            create("agent.coder", agent_body("coder")),
            create("environment.old", {"name": "old"}),
            create("environment.new", {"name": "new"}),
            create("deployment.d", deployment_body("d", "agent.coder", "environment.old")),
        ),
        provider,
    )
    ids = {o.address: o.remote_id for o in first.outcomes}
    writer = Watching(provider, delay=0.01)
    p = plan(
        Archive(
            address="environment.old",
            kind="environment",
            reason="pruned",
            remote_id=ids["environment.old"],
            depends_on=("deployment.d",),
        ),
        NoOp(
            address="environment.new",
            kind="environment",
            reason="in sync",
            remote_id=ids["environment.new"],
        ),
        Update(
            address="deployment.d",
            kind="deployment",
            reason="environment changed",
            remote_id=ids["deployment.d"],
            changes=(),
            body={"environment_id": {"$ref": "environment.new"}},
            target=target(),
        ),
    )
    report = await run(p, writer)
    assert report.ok, report.failures
    assert [m for m, _, _ in writer.calls] == ["update", "archive"]
    live = await provider.retrieve("deployment", ids["deployment.d"])
    assert live["environment_id"] == ids["environment.new"]


# -- callbacks --------------------------------------------------------------------------------


async def test_intent_comes_before_the_create_with_the_parent_resolved(
    provider: ClientBackedProvider,
) -> None:
    log: list[str] = []
    intents: list[Action] = []

    class Logging(Watching):
        async def create(self, kind: str, body: dict[str, Any], **kw: Any) -> Any:
            log.append(f"create {body['metadata'][ADDRESS_KEY]}")
            return await self.inner.create(kind, body, **kw)

    def intent(action: Action) -> None:
        intents.append(action)
        log.append(f"intent {action.address}")

    p = plan(
        create("vault.gh", {"display_name": "gh"}),
        create(
            "vault.gh.credential.t",
            {
                "auth": {
                    "type": "static_bearer",
                    "mcp_server_url": "https://x.example.com",
                    "token": {"$secret": "auth.token"},
                }
            },
            parent="vault.gh",
        ),
    )
    starts: list[str] = []
    report = await run(
        p, Logging(provider), on_intent=intent, on_start=lambda a: starts.append(a.address)
    )
    assert report.ok, report.failures
    assert log == [
        "intent vault.gh",
        "create vault.gh",
        "intent vault.gh.credential.t",
        "create vault.gh.credential.t",
    ]
    assert intents[1].parent_id == report.outcome("vault.gh").remote_id
    assert starts == ["vault.gh", "vault.gh.credential.t"]


async def test_a_credential_key_held_by_a_hand_made_credential_is_refused_not_adopted(
    lossy: tuple[ClientBackedProvider, Lossy],
) -> None:
    """Issue 11.1 for credentials: the key (MCP server URL) is unique in a vault; a credential
    added by hand under it carries no tags of ours, so the create's 409 names it."""
    provider, wire = lossy
    client = provider.client
    vault = await client.vaults.create({"display_name": "gh"})
    url = "https://a.example.com/mcp"
    hand = await client.credentials.create(
        vault["id"], {"auth": {"type": "static_bearer", "mcp_server_url": url, "token": "x"}}
    )
    auth = {"type": "static_bearer", "mcp_server_url": url, "token": {"$secret": "auth.token"}}
    wire.script[("create", "vault.gh.credential.t")] = ["before"]
    report = await run(
        plan(create("vault.gh.credential.t", {"auth": auth}, parent_id=vault["id"])), provider
    )
    assert report.adopted == ()
    failure = report.failures["vault.gh.credential.t"]
    assert f"a credential for {url} in this vault already exists ({hand['id']})" in failure
    assert f"reconciler import vault.gh.credential.t {hand['id']}" in failure
    assert SECRET not in failure
