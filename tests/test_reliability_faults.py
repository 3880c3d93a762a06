"""Fault matrix: apply converges on a provider that fails, loses answers, throttles and stalls.

Each case serves the local provider over loopback TCP with fault injection (``--fault-rate``:
5xx and dropped connections, half of them *after* the write happened, so the answer to a
create is lost; ``--rate-limit`` below the rate apply sends at; latency and latency spikes)
and runs ``reconciler apply --auto-approve`` on a generated fleet of some sixty resources
(memory stores with seed memories, and skills that agents follow, among them), at most three
times. Then, through a
fault-free view of the same database:

* the last run exited 0 and no run printed a traceback;
* every address is live exactly once, was never created twice, and is recorded in the
  lockfile with the live id; no owned object is unknown to the manifests; nothing is pending;
  each memory store holds each of its seeds, written once; each skill is one live skill (by
  slug), its latest version holds the manifest's files, and no version was uploaded twice;
* ``reconciler plan --detailed-exitcode`` exits 0;
* unmanaged objects, and another project's objects of the same names, were left alone.

Every case runs twice (issue #17): with the state in the lockfile and in PostgreSQL (a
real throwaway server, ``pg_url``), except ``provider serve``'s, which tests that command's
flags. The default run keeps issue #4's case (``--fault-rate 0.2``); the rest of the matrix
is ``slow``.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.reliability import (
    Fleet,
    Zygote,
    assert_converged,
    clean_env,
    owned_objects,
    provider,
    provider_skills,
    provider_snapshot,
    seed_noise,
    shared_zygote,
    write_fleet,
)

PROJECT = "faults"
#: every fault case runs with the state in the lockfile and in PostgreSQL (issue #17)
BACKENDS = ["lockfile", "postgresql"]
#: memory stores (two seed memories each) in every fleet (issue #15)
STORES = 3
#: skills (three files each, some agents following them) in every fleet (issue #15)
SKILLS = 2


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


def _db(work: Path) -> Path:
    # where the embedded provider of a CLI run in ``work`` looks: the fault-free view
    return work / ".reconciler" / "provider.db"


def converge(
    zygote: Zygote, work: Path, url: str, env: dict[str, str], *extra: str, max_runs: int = 3
) -> list[Any]:
    """``apply --auto-approve`` until it exits 0, at most ``max_runs`` times."""
    runs = []
    for _ in range(max_runs):
        run = zygote.run(
            ["--project", PROJECT, "--provider-url", url, "apply", "--auto-approve", *extra],
            cwd=work,
            env=env,
        )
        runs.append(run)
        assert "Traceback" not in run.stderr + run.stdout, run.stderr
        if run.code == 0:
            break
        assert run.code == 1, (run.code, run.stderr[-2000:])
        assert run.stderr.startswith("Error: ") or "failed" in run.stdout, run.stderr[-2000:]
    assert runs[-1].code == 0, (
        f"no convergence in {max_runs} runs; last stdout:\n{runs[-1].stdout[-3000:]}\n"
        f"stderr:\n{runs[-1].stderr[-3000:]}"
    )
    return runs


def check_clean(zygote: Zygote, work: Path, env: dict[str, str], fleet: Fleet) -> None:
    """Converged: exactly once, no orphans, and ``plan --detailed-exitcode`` exits 0."""
    backend = env.get("RECONCILER_BACKEND")  # the state in PostgreSQL, or the lockfile
    lockfile = work / "state/reconciler.lock"
    assert_converged(
        lockfile,
        _db(work),
        PROJECT,
        fleet.addresses,
        backend=backend,
        seeds=fleet.seeds,
        skills=fleet.skills,
    )
    # the embedded provider over the database the faulty server used: another origin
    args = ["--project", PROJECT, "plan", "--detailed-exitcode", "--allow-origin-change"]
    plan = zygote.run(args, cwd=work, env=env)
    assert plan.code == 0, (plan.stdout[-3000:], plan.stderr[-2000:])
    drift = zygote.run(
        ["--project", PROJECT, "drift", "--ignore-unmanaged", "--allow-origin-change"],
        cwd=work,
        env=env,
    )
    assert drift.code == 0, (drift.stdout[-3000:], drift.stderr[-2000:])


def noise_untouched(db: Path, before: dict[str, Any]) -> None:
    """The unmanaged and foreign objects ``seed_noise`` made are exactly as they were."""
    assert _noise(db) == before


def _noise(db: Path) -> dict[str, Any]:
    import json
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        # skills carry no tags: the fleet's are counted by slug (``assert_converged``)
        rows = con.execute(
            "SELECT id, archived, data FROM objects WHERE kind NOT IN ('skill', 'skill_version')"
        ).fetchall()
    finally:
        con.close()
    out = {}
    for oid, archived, data in rows:
        obj = json.loads(data)
        md = obj.get("metadata") or {}
        if md.get("reconciler-project") != PROJECT:
            out[oid] = (archived, data)
    return out


def _fleet_case(
    zygote: Zygote,
    tmp_path: Path,
    faults: Any,
    *,
    size: dict[str, int] | None = None,
    wrap: Any = None,
    update: bool = False,
    prune: bool = False,
    backend: str | None = None,
) -> None:
    work = tmp_path / "work"
    # memory stores with seeds in every case: a store create, then one request per seed
    size = {"memory_stores": STORES, "skills": SKILLS, **(size or {})}
    fleet = write_fleet(work / "manifests", **size)
    env = clean_env(**fleet.env, **({"RECONCILER_BACKEND": backend} if backend else {}))
    db = _db(work)
    asyncio.run(seed_noise(db, PROJECT))
    noise = _noise(db)
    with provider(db, faults, wrap=wrap) as (url, tap):
        converge(zygote, work, url, env)
        check_clean(zygote, work, env, fleet)
        noise_untouched(db, noise)
        if update:
            fleet = write_fleet(work / "manifests", **size, tag=" Updated.")
            converge(zygote, work, url, env)
            check_clean(zygote, work, env, fleet)
            _each_agent_updated_exactly_once(work, fleet, backend)
            noise_untouched(db, noise)
        if prune:
            kept = dict(
                size, agents=size.get("agents", 40) // 2, deployments=2, memory_stores=1, skills=1
            )
            fleet = write_fleet(work / "manifests", **kept, tag=" Updated." if update else "")
            converge(zygote, work, url, env, "--prune")
            check_clean(zygote, work, env, fleet)
            noise_untouched(db, noise)
        # the run really was disturbed (otherwise the case proves nothing)
        statuses = [s for _, _, s in tap.answers]
        assert any(s >= 429 for s in statuses) or faults.latency_ms or wrap is not None, statuses


def _each_agent_updated_exactly_once(work: Path, fleet: Fleet, backend: str | None) -> None:
    """A lost answer to an update must not update twice: every agent is at version 2, and
    every skill has two versions (its create, and the new version the update uploaded)."""
    from reconciler.state import open_location

    live = owned_objects(_db(work), PROJECT)
    location = open_location(backend, work / "state/reconciler.lock", PROJECT)
    try:
        lf = location.read()
    finally:
        location.close()
    for address in fleet.addresses:
        if address.startswith("agent."):
            assert live[address][0]["version"] == 2, (address, live[address][0]["version"])
            assert lf.resources[address].version == 2, address
    for address in fleet.addresses:
        if not address.startswith("deployment."):
            continue
        index = int(address.rsplit("-", 1)[1])
        pinned = index % 2 == 1
        assert live[address][0]["agent"]["version"] == (1 if pinned else 2), address
    skills = provider_skills(_db(work))
    for address in fleet.skills:
        (skill,) = skills[address.split(".", 1)[1]]
        assert len(skill["versions"]) == 2, (address, sorted(skill["versions"]))


# --- the default run: issue #4 --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_converges_under_fault_rate_0_2_with_every_resource_once(
    zygote: Zygote, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    from reconciler.provider.local import FaultConfig

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    _fleet_case(zygote, tmp_path, FaultConfig(fault_rate=0.2, seed=4), backend=url)


# --- the matrix, on both backends -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("rate", "seed"), [(0.1, 1), (0.3, 1), (0.3, 2)])
def test_fault_rate_matrix_create_update_prune(
    zygote: Zygote,
    tmp_path: Path,
    rate: float,
    seed: int,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    from reconciler.provider.local import FaultConfig

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    faults = FaultConfig(fault_rate=rate, seed=seed)
    _fleet_case(zygote, tmp_path, faults, update=True, prune=True, backend=url)


def _backend(name: str, request: pytest.FixtureRequest) -> str | None:
    """The state backend of a case: None for the lockfile, else a fresh database's URL."""
    return str(request.getfixturevalue("pg_url")) if name == "postgresql" else None


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rps", [8.0])
def test_rate_limit_below_the_apply_rate(
    zygote: Zygote, tmp_path: Path, rps: float, backend: str, request: pytest.FixtureRequest
) -> None:
    """Apply sends at up to 10 requests in flight; the provider allows far fewer per second."""
    from reconciler.provider.local import FaultConfig

    url = _backend(backend, request)
    _fleet_case(zygote, tmp_path, FaultConfig(rate_limit=rps), update=True, backend=url)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_providers_documented_limits(
    zygote: Zygote, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """Each family limited on its own, as the real provider does (environments 60/min)."""
    from reconciler.provider.local import DOCUMENTED_LIMITS, FaultConfig

    _fleet_case(
        zygote,
        tmp_path,
        FaultConfig(bucket_limits=DOCUMENTED_LIMITS),
        size={"agents": 24, "environments": 3, "credentials": 3, "deployments": 3},
        update=True,
        backend=_backend(backend, request),
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_under_the_documented_limits_few_requests_meet_a_429(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """The client as it talks to the Anthropic API (documented limits known) against a
    provider enforcing them: it starts below them, so at most 3% of requests are answered
    429 (a count, not a timing: the provider's one second of burst absorbs jitter)."""
    import os

    url_of_state = _backend(backend, request)

    from reconciler.app import Settings, apply
    from reconciler.provider import RateLimits
    from reconciler.provider.local import DOCUMENTED_LIMITS, FaultConfig
    from reconciler.provider.wire import DOCUMENTED_RATE_LIMITS

    work = tmp_path / "work"
    size = {
        "agents": 30,
        "environments": 4,
        "credentials": 3,
        "deployments": 4,
        "memory_stores": 3,
        "skills": 2,
    }
    old = dict(os.environ)
    try:
        with provider(_db(work), FaultConfig(bucket_limits=DOCUMENTED_LIMITS)) as (url, tap):
            for tag in ("", " Updated."):  # creates, then an update of every agent
                fleet = write_fleet(work / "manifests", **size, tag=tag)
                os.environ.update(fleet.env)
                settings = Settings(
                    manifests=work / "manifests",
                    lockfile=work / "state/reconciler.lock",
                    project=PROJECT,
                    provider_url=url,
                    backend=url_of_state,
                    client_options={"rate_limiter": RateLimits(documented=DOCUMENTED_RATE_LIMITS)},
                )
                result = await apply(settings)
                assert result is not None and not result.report.failures
        statuses = [s for _, path, s in tap.answers if path.startswith("/v1/")]
        assert len(statuses) > 80
        limited = statuses.count(429)
        assert limited <= 0.03 * len(statuses), (limited, len(statuses))
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert_converged(
        work / "state/reconciler.lock",
        _db(work),
        PROJECT,
        fleet.addresses,
        backend=url_of_state,
        seeds=fleet.seeds,
        skills=fleet.skills,
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_everything_at_once(
    zygote: Zygote, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    from reconciler.provider.local import FaultConfig

    _fleet_case(
        zygote,
        tmp_path,
        FaultConfig(latency_ms=15, fault_rate=0.3, rate_limit=25, seed=11),
        size={"agents": 50, "environments": 8, "credentials": 6, "deployments": 10},
        update=True,
        prune=True,
        backend=_backend(backend, request),
    )


class Spikes:
    """Latency spikes: a random share of requests stalls for ``spike_s`` before the provider
    sees it or after it answered (the answer then arrives late, or never, if the client gave
    up)."""

    def __init__(self, app: Any, *, share: float, spike_s: float, seed: int) -> None:
        self.app, self.share, self.spike_s = app, share, spike_s
        self.rng = random.Random(seed)
        self.spiked = 0

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        draw = self.rng.random()
        if draw >= self.share:
            await self.app(scope, receive, send)
            return
        self.spiked += 1
        if draw < self.share / 2:
            await asyncio.sleep(self.spike_s)
            await self.app(scope, receive, send)
            return

        async def late(message: Any) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(self.spike_s)
            await send(message)

        await self.app(scope, receive, late)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_latency_spikes(
    zygote: Zygote, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    from reconciler.provider.local import FaultConfig

    spikes: list[Spikes] = []

    def wrap(app: Any) -> Any:
        spikes.append(Spikes(app, share=0.15, spike_s=1.5, seed=5))
        return spikes[0]

    url = _backend(backend, request)
    _fleet_case(zygote, tmp_path, FaultConfig(latency_ms=10), wrap=wrap, update=True, backend=url)
    assert spikes[0].spiked > 5


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_latency_spikes_beyond_the_client_timeout_are_lost_answers(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """With a 0.4 s client timeout, a 1 s spike after the provider answered is a lost answer
    (the write happened, the client timed out): the library API must still converge."""
    from reconciler.app import PlanChoices, Settings, apply, make_plan

    url_of_state = _backend(backend, request)

    work = tmp_path / "work"
    fleet = write_fleet(
        work / "manifests",
        agents=30,
        environments=4,
        credentials=3,
        deployments=4,
        memory_stores=3,
        skills=2,
    )
    db = _db(work)
    holder: list[Spikes] = []

    def wrap(app: Any) -> Any:
        holder.append(Spikes(app, share=0.2, spike_s=1.0, seed=9))
        return holder[0]

    import os

    old = dict(os.environ)
    os.environ.update(fleet.env)
    try:
        with provider(db, None, wrap=wrap) as (url, _tap):
            settings = Settings(
                manifests=work / "manifests",
                lockfile=work / "state/reconciler.lock",
                project=PROJECT,
                provider_url=url,
                backend=url_of_state,
                client_options={"timeout": 0.4, "backoff_base": 0.05, "backoff_max": 0.2},
            )
            for _ in range(3):
                result = await apply(settings)
                assert result is not None
                if not result.report.failures:
                    break
            assert not result.report.failures, result.report.failures
        assert_converged(
            work / "state/reconciler.lock",
            db,
            PROJECT,
            fleet.addresses,
            backend=url_of_state,
            seeds=fleet.seeds,
            skills=fleet.skills,
        )
        plan = (
            await make_plan(
                Settings(
                    manifests=work / "manifests",
                    lockfile=work / "state/reconciler.lock",
                    project=PROJECT,
                    db_path=db,
                    backend=url_of_state,
                ),
                # the embedded provider over the server's database
                PlanChoices(allow_origin_change=True),
            )
        ).plan
        assert not plan.has_changes, plan.summary
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert holder[0].spiked > 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_through_reconciler_provider_serve_with_fault_flags(zygote: Zygote, tmp_path: Path) -> None:
    """The same, against ``reconciler provider serve --fault-rate --rate-limit --seed`` as a
    separate process (the flags CI and the benchmarks use)."""
    work = tmp_path / "work"
    fleet = write_fleet(
        work / "manifests",
        agents=30,
        environments=6,
        credentials=4,
        deployments=6,
        memory_stores=3,
        skills=2,
    )
    env = clean_env(**fleet.env)
    db = _db(work)
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.cli",
            "provider",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
            "--fault-rate",
            "0.25",
            "--rate-limit",
            "30",
            "--seed",
            "3",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "provider serve did not start"
                time.sleep(0.1)
        before = provider_snapshot(db)
        assert before == []
        converge(zygote, work, f"http://127.0.0.1:{port}", env)
    finally:
        server.kill()  # only the server this test started, by its pid
        server.wait()
        log.close()
    check_clean(zygote, work, env, fleet)
    text = (tmp_path / "serve.log").read_text()
    assert "fault rate 0.25" in text
