"""The timed steps of the benchmark: our apply and plan, the SDK's create loop and listing.

Each function runs one step against a provider placement of ``provider.py`` and returns what
the table needs (seconds, requests as the provider counted them). Our side is driven through
the library API (``reconciler.app``), exactly what ``reconciler plan`` / ``apply`` run
minus rendering; the SDK side through the official ``anthropic`` SDK (2.10.0).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.provider import ChildProcess, InProcess
from bench.workload import PROJECT, Workload, sdk_bodies
from reconciler.app import Settings, apply, make_plan

Provider = InProcess | ChildProcess


@dataclass
class Step:
    """One measured step."""

    seconds: float
    requests: dict[str, int] = field(default_factory=dict)
    #: calls actually made when the time is extrapolated from a sample
    sample: int | None = None
    note: str = ""

    @property
    def extrapolated(self) -> bool:
        return self.sample is not None


def settings_for(provider: Provider, manifests: Path, work: Path) -> Settings:
    return Settings(
        manifests=manifests,
        lockfile=work / "state" / "reconciler.lock",
        project=PROJECT,
        provider_url=provider.url,
        api_key="bench",
        db_path=work / "unused.db",
        client_options=provider.client_options(),
    )


# -- ours --------------------------------------------------------------------------------------


@dataclass
class ApplyStep(Step):
    ok: int = 0
    failed: int = 0
    #: first request sent -> last outcome, seconds (the executing phase, after planning)
    execute_seconds: float = 0.0


def our_apply(provider: Provider, manifests: Path, work: Path, parallelism: int) -> ApplyStep:
    """``reconciler apply --auto-approve`` of the whole workload (planning included)."""
    settings = settings_for(provider, manifests, work)
    marks: dict[str, float] = {}

    def started(_action: Any) -> None:
        marks.setdefault("first", time.perf_counter())

    def finished(_outcome: Any) -> None:
        marks["last"] = time.perf_counter()

    provider.reset()
    t0 = time.perf_counter()
    result = asyncio.run(
        apply(settings, parallelism=parallelism, on_start=started, on_outcome=finished)
    )
    seconds = time.perf_counter() - t0
    assert result is not None
    outcomes = result.report.outcomes
    ok = sum(1 for o in outcomes if o.ok)
    return ApplyStep(
        seconds=seconds,
        requests=provider.stats(),
        ok=ok,
        failed=len(outcomes) - ok,
        execute_seconds=marks.get("last", t0) - marks.get("first", t0),
    )


def our_plan(provider: Provider, manifests: Path, work: Path) -> Step:
    """``reconciler plan`` after the apply: load, refresh (one paged list per kind), diff."""
    settings = settings_for(provider, manifests, work)
    provider.reset()
    t0 = time.perf_counter()
    result = asyncio.run(make_plan(settings))
    seconds = time.perf_counter() - t0
    changes = "" if not result.plan.has_changes else f"unexpected: {result.plan.summary}"
    return Step(seconds=seconds, requests=provider.stats(), note=changes)


def our_list_agents(provider: InProcess) -> Step:
    """Issue #2: every agent through ``client.agents.list(include_archived=True)``."""
    from reconciler.provider import ProviderClient

    async def run() -> int:
        async with ProviderClient(provider.url, "bench", **provider.client_options()) as client:
            return len(await client.agents.list(include_archived=True).to_list())

    provider.reset()
    t0 = time.perf_counter()
    count = asyncio.run(run())
    return Step(seconds=time.perf_counter() - t0, requests=provider.stats(), note=f"{count}")


# -- the official SDK --------------------------------------------------------------------------


def _sync_sdk(provider: ChildProcess) -> Any:
    import anthropic

    return anthropic.Anthropic(base_url=provider.url, api_key="bench", max_retries=0)


def _async_sdk(provider: InProcess) -> Any:
    import anthropic
    import httpx2

    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=provider.app), base_url=provider.url
    )
    return anthropic.AsyncAnthropic(
        base_url=provider.url, api_key="bench", max_retries=0, http_client=http
    )


def sdk_create_loop(provider: Provider, workload: Workload, sample: int | None) -> Step:
    """A sequential loop of ``client.beta.{agents,environments}.create`` (one at a time).

    Args:
        sample: make only this many calls (same kind mix) and scale the time up to the
            whole workload; the step then says it is extrapolated.
    """
    calls = sdk_bodies(workload, limit=sample)
    provider.reset()
    # Timed from the client's construction, as our side is (a script starts the same way).
    if isinstance(provider, ChildProcess):
        t0 = time.perf_counter()
        with _sync_sdk(provider) as client:
            for kind, body in calls:
                resource = client.beta.agents if kind == "agent" else client.beta.environments
                resource.create(**body)
            seconds = time.perf_counter() - t0
    else:

        async def run() -> float:
            t0 = time.perf_counter()
            async with _async_sdk(provider) as client:
                for kind, body in calls:
                    resource = client.beta.agents if kind == "agent" else client.beta.environments
                    await resource.create(**body)
                return time.perf_counter() - t0

        seconds = asyncio.run(run())
    requests = provider.stats()
    if len(calls) < workload.resources:
        per_call = seconds / len(calls)
        return Step(seconds=per_call * workload.resources, requests=requests, sample=len(calls))
    return Step(seconds=seconds, requests=requests)


def sdk_list_all(provider: Provider, workload: Workload) -> Step:
    """The SDK's auto-paged listing of every agent and environment (100 per page)."""
    provider.reset()
    if isinstance(provider, ChildProcess):
        t0 = time.perf_counter()
        with _sync_sdk(provider) as client:
            agents = sum(1 for _ in client.beta.agents.list(limit=100, include_archived=True))
            envs = sum(1 for _ in client.beta.environments.list(limit=100, include_archived=True))
            seconds = time.perf_counter() - t0
    else:

        async def run() -> tuple[float, int, int]:
            t0 = time.perf_counter()
            async with _async_sdk(provider) as client:
                n_agents = n_envs = 0
                async for _ in client.beta.agents.list(limit=100, include_archived=True):
                    n_agents += 1
                async for _ in client.beta.environments.list(limit=100, include_archived=True):
                    n_envs += 1
                return time.perf_counter() - t0, n_agents, n_envs

        seconds, agents, envs = asyncio.run(run())
    return Step(seconds=seconds, requests=provider.stats(), note=f"{agents}+{envs}")


# -- rate limit --------------------------------------------------------------------------------


@dataclass
class RateStep(Step):
    creates: int = 0
    rate_limit: float = 0.0
    #: successful creates per second over the executing phase
    achieved: float = 0.0
    #: the same without the creates the provider's initial one-second burst let through
    steady: float = 0.0


def rate_limited_apply(
    provider: ChildProcess,
    manifests: Path,
    work: Path,
    workload: Workload,
    rate: float,
    parallelism: int,
) -> RateStep:
    """Apply against a provider that allows ``rate`` requests per second."""
    step = our_apply(provider, manifests, work, parallelism)
    creates = step.ok
    achieved = creates / step.execute_seconds if step.execute_seconds > 0 else 0.0
    # The provider's bucket starts full with one second of requests; past it, the rate
    # the client sustains is what counts.
    burst = max(1.0, rate)
    steady = (creates - burst) / step.execute_seconds if step.execute_seconds > 0 else 0.0
    return RateStep(
        seconds=step.seconds,
        requests=step.requests,
        creates=creates,
        rate_limit=rate,
        achieved=achieved,
        steady=max(0.0, steady),
        note=f"{step.failed} failed" if step.failed else "",
    )
