"""AdaptiveRateLimiter: pace to the server's limit, back off on 429, climb back on success.

The first tests pin the shape of the controller with an injected clock; the last ones run
``apply``-like bursts against the local provider enforcing ``FaultConfig(rate_limit=R)`` and
check that the client reaches most of R with few 429s instead of a retry storm.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from reconciler.provider import AdaptiveRateLimiter, ProviderClient, RateLimits, embedded_client
from reconciler.provider.local import FaultConfig

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unlimited_by_default() -> None:
    limiter = AdaptiveRateLimiter()
    started = time.monotonic()
    for _ in range(2000):
        await limiter.acquire()
    assert limiter.rate is None
    assert time.monotonic() - started < 0.5


async def test_a_ceiling_paces_concurrent_senders() -> None:
    limiter = AdaptiveRateLimiter(ceiling=200)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(60)))
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 0.6  # 60 requests at 200/s, one token banked


async def test_a_429_pauses_every_sender_for_retry_after() -> None:
    limiter = AdaptiveRateLimiter()
    limiter.on_rate_limited(0.2)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(5)))
    assert time.monotonic() - started >= 0.19


def test_a_429_multiplies_the_rate_down_once_per_burst() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate=100, decrease=0.7, clock=clock)
    sent = clock()
    clock.now += 0.01
    limiter.on_rate_limited(0.05, sent_at=sent)
    assert limiter.rate == pytest.approx(70)
    # More 429s for requests sent before that decrease belong to the same burst.
    limiter.on_rate_limited(0.05, sent_at=sent)
    assert limiter.rate == pytest.approx(70)
    assert limiter.decreases == 1
    clock.now += 0.5
    limiter.on_rate_limited(0.05, sent_at=clock())
    assert limiter.rate == pytest.approx(49)


def test_the_first_429_measures_the_rate_that_got_through() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(clock=clock, window_s=1.0, decrease=0.5)
    limiter._started_at = clock()
    for _ in range(80):  # 80 successes over the last second
        clock.now += 1 / 80
        limiter.on_success()
    limiter.on_rate_limited(0.01, sent_at=clock())
    assert limiter.rate == pytest.approx(40, rel=0.05)


async def test_a_429_at_full_speed_takes_what_got_through_as_the_limit() -> None:
    """A server with burst capacity lets a too-high rate through for a while; when the 429
    comes, the rate that actually got through is the better estimate of its limit."""
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate=10, decrease=0.7, clock=clock)
    for i in range(10):  # one second at the full 10/s; every second request got through
        clock.now += 0.1
        sent = await limiter.acquire()
        if i % 2:
            limiter.on_success(sent)
    limiter.on_rate_limited(0.01, sent_at=clock())
    assert limiter.rate == pytest.approx(5 * 0.7, rel=0.15)
    assert limiter.decreases == 1


async def test_a_pause_in_the_window_is_not_read_as_a_low_limit() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate=10, decrease=0.7, clock=clock)
    for _ in range(5):
        clock.now += 0.1
        limiter.on_success(await limiter.acquire())
    limiter.on_rate_limited(0.8, sent_at=clock())  # paused for most of the next second
    clock.now += 1.0  # 0.2 s after the pause: tokens for one request at 7/s
    sent = await limiter.acquire()
    clock.now += 0.05
    limiter.on_rate_limited(0.01, sent_at=sent)  # too little unpaused time to measure
    assert limiter.rate == pytest.approx(10 * 0.7 * 0.7)


def test_successes_raise_the_rate_back_along_a_cubic_curve() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate=100, ceiling=130, decrease=0.7, recovery_s=2.0, clock=clock)
    limiter.on_rate_limited(None, sent_at=clock())
    rates = []
    for _ in range(12):
        for _ in range(100):  # traffic keeps up with the rate: 200 successes a second
            clock.now += 0.005
            limiter.on_success()
        assert limiter.rate is not None
        rates.append(limiter.rate)
    assert rates == sorted(rates), "the rate only climbs while requests succeed"
    assert rates[1] > 90  # fast at first ...
    assert rates[3] == pytest.approx(100)  # ... back at the last limit after recovery_s ...
    assert rates[5] < 105  # ... flat around it ...
    assert rates[-1] == 130  # ... then probing up to the ceiling, never beyond


def test_a_client_sending_less_than_its_rate_does_not_inflate_it() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate=100, decrease=0.7, recovery_s=1.0, clock=clock)
    limiter.on_rate_limited(None, sent_at=clock())
    for _ in range(200):  # 20 s of 10 successes a second, far below the rate
        clock.now += 0.1
        limiter.on_success()
    assert limiter.rate == pytest.approx(100)  # back to the last limit, not beyond


def test_long_retry_after_slows_the_probing_down() -> None:
    clock = FakeClock()
    quick = AdaptiveRateLimiter(rate=100, recovery_s=1.0, clock=clock)
    slow = AdaptiveRateLimiter(rate=100, recovery_s=1.0, clock=clock)
    quick.on_rate_limited(0.005, sent_at=clock())
    slow.on_rate_limited(2.0, sent_at=clock())  # each 429 costs every sender 2 s
    clock.now += 1.0
    quick.on_success()
    slow.on_success()
    assert quick.rate == pytest.approx(100)  # back after recovery_s
    assert slow.rate is not None and slow.rate < 90  # still climbing: K = 4 x 2 s


def test_rate_never_drops_below_the_floor() -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(rate=1, min_rate=0.5, clock=clock)
    for _ in range(10):
        clock.now += 10
        limiter.on_rate_limited(0.0, sent_at=clock())
    assert limiter.rate == 0.5


# --------------------------------------------------------------------------- against the server


async def _read_burst(client: ProviderClient, agent_id: str, total: int) -> float:
    """Send ``total`` reads from 64 concurrent tasks; return the seconds it took."""
    slots = asyncio.Semaphore(64)

    async def read() -> None:
        async with slots:
            await client.agents.retrieve(agent_id)

    started = time.monotonic()
    await asyncio.gather(*(read() for _ in range(total)))
    return time.monotonic() - started


async def _throttled_run(db: Path, rate: float, total: int) -> tuple[float, float]:
    """One run of ``total`` reads against ``rate_limit=rate`` on a fresh server.

    Returns:
        ``(achieved, capacity)`` in requests per second: the rate achieved past the server's
        one-second burst, and what this machine manages right now with no limit at all.
    """
    async with embedded_client(db) as clean:
        agent = await clean.agents.create({"name": "a", "model": "m"})
        capacity = 100 / await _read_burst(clean, agent["id"], 100)
    async with embedded_client(db, faults=FaultConfig(rate_limit=rate), backoff_base=0.01) as c:
        elapsed = await _read_burst(c, agent["id"], total)
        stats, limiter = c.stats, c.rate_limiter
    # A naive client sends several times `total` (each task retrying on its own); here the
    # first burst may cost up to the 64 requests in flight, then pacing keeps 429s rare.
    assert stats.rate_limited <= 64 + total // 10, stats
    assert stats.requests == total + stats.retries
    if stats.rate_limited:
        assert limiter.rate is not None and 0.5 * rate <= limiter.rate <= 2 * rate
    return (total - rate) / elapsed, capacity


async def test_reaches_90_percent_of_the_servers_rate_with_few_429s(tmp_path: Path) -> None:
    """64 concurrent senders against ``rate_limit=R``: no retry storm, most of R achieved.

    Throughput is wall-clock, so on a machine shared with other work the best of three runs
    counts, and the bar is 90% of R or of what the machine itself manages, if that is less.
    Every run must be free of a retry storm.
    """
    rate, total = 50.0, 250
    runs = []
    for attempt in range(3):
        achieved, capacity = await _throttled_run(tmp_path / f"p{attempt}.db", rate, total)
        runs.append(f"{achieved:.0f}/s (capacity {capacity:.0f}/s)")
        if achieved >= 0.9 * min(rate, capacity):
            return
    pytest.fail(f"never reached 90% of {rate:.0f}/s: {', '.join(runs)}")


# --------------------------------------------------------------------------- one rate per bucket


@pytest.mark.parametrize(
    ("method", "path", "bucket"),
    [
        ("POST", "/v1/agents", "agents create"),
        ("POST", "/v1/agents/agent_1", "agents"),
        ("POST", "/v1/agents/agent_1/archive", "agents"),
        ("GET", "/v1/agents?limit=100", "agents"),
        ("POST", "/v1/vaults/vlt_1/credentials", "vaults create"),
        ("DELETE", "/v1/vaults/vlt_1/credentials/vcrd_1", "vaults"),
        ("POST", "/v1/environments", "environments create"),
        ("POST", "/v1/sessions/sesn_1/events", "sessions"),
        ("POST", "/v1/deployments/depl_1/run", "deployments"),
    ],
)
def test_client_and_local_provider_agree_on_the_buckets(
    method: str, path: str, bucket: str
) -> None:
    from reconciler.provider.local.faults import bucket_of
    from reconciler.provider.wire import rate_bucket

    assert rate_bucket(method, path) == bucket
    assert bucket_of(method, path.split("?")[0]) == bucket


async def test_a_limited_bucket_slows_only_itself(tmp_path: Path) -> None:
    """Environment creates at 2/s, agent creates unlimited, sent side by side.

    The 429s of the environment bucket pause and slow that bucket; the agent creates never
    meet a 429 and are never paced (one limiter for all would have slowed them to ~2/s).
    """
    faults = FaultConfig(bucket_limits={"environments create": 2.0})
    async with embedded_client(tmp_path / "p.db", faults=faults, backoff_base=0.01) as c:
        slots = asyncio.Semaphore(10)

        async def create(kind: str, i: int) -> None:
            async with slots:
                if kind == "env":
                    await c.environments.create({"name": f"env-{i}", "config": {"type": "cloud"}})
                else:
                    await c.agents.create({"name": f"agent-{i}", "model": "m"})

        started = time.monotonic()
        agents = asyncio.gather(*(create("agent", i) for i in range(60)))
        envs = asyncio.gather(*(create("env", i) for i in range(8)))
        await agents
        agents_done = time.monotonic() - started
        await envs
        limits = c.rate_limiter.buckets  # type: ignore[union-attr]
    assert limits["agents create"].decreases == 0 and limits["agents create"].rate is None
    assert limits["environments create"].decreases >= 1
    assert limits["environments create"].rate is not None
    assert c.stats.rate_limited >= 1
    # 60 agent creates at ~2/s would take half a minute; unpaced they take well under that
    assert agents_done < 10, agents_done


def test_the_local_provider_enforces_each_bucket_on_its_own(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from reconciler.provider.local import DOCUMENTED_LIMITS, create_app
    from reconciler.provider.wire import default_headers

    assert DOCUMENTED_LIMITS["environments create"] == 1.0
    app = create_app(tmp_path / "p.db", FaultConfig(bucket_limits={"environments create": 1.0}))
    with TestClient(app, headers=default_headers("k")) as http:
        first = http.post("/v1/environments", json={"name": "e1", "config": {"type": "cloud"}})
        second = http.post("/v1/environments", json={"name": "e2", "config": {"type": "cloud"}})
        agents = [http.post("/v1/agents", json={"name": f"a{i}", "model": "m"}) for i in range(5)]
        listed = http.get("/v1/environments")
    assert first.status_code == 200
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
    assert second.json()["error"]["type"] == "rate_limit_error"
    assert [a.status_code for a in agents] == [200] * 5
    assert listed.status_code == 200  # another bucket: environment reads


def test_bucket_limit_flag_is_checked(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    result = CliRunner().invoke(main, ["provider", "serve", "--bucket-limit", "environments"])
    assert result.exit_code == 1  # bad input, as every usage error of the CLI
    assert "BUCKET=RPS" in result.output


# --- documented limits: start below them, learn upward ----------------------------------------


def test_the_anthropic_api_is_paced_below_its_documented_limits_from_the_first_request() -> None:
    from reconciler.provider.local import DOCUMENTED_LIMITS
    from reconciler.provider.ratelimit import DOCUMENTED_START
    from reconciler.provider.wire import DOCUMENTED_RATE_LIMITS

    assert dict(DOCUMENTED_RATE_LIMITS) == DOCUMENTED_LIMITS  # client and emulator agree
    api = ProviderClient("https://api.anthropic.com", "k").rate_limiter
    assert isinstance(api, RateLimits)
    for bucket, limit in DOCUMENTED_RATE_LIMITS.items():
        rate = api.for_request(bucket).rate
        assert rate is not None and rate < limit
        assert rate == pytest.approx(DOCUMENTED_START * limit)
    assert api.for_request("deployments").rate is None  # not documented: learnt from a 429
    local = ProviderClient("http://127.0.0.1:8787").rate_limiter
    assert isinstance(local, RateLimits) and local.for_request("agents create").rate is None


async def _burst(rate_limiter: RateLimits | None, db: Path) -> int:
    """10 agent and 2 environment creates, 10 in flight, against the documented limits;
    the number of 429 answers."""
    from reconciler.provider.local import DOCUMENTED_LIMITS

    faults = FaultConfig(bucket_limits=DOCUMENTED_LIMITS)
    options = {} if rate_limiter is None else {"rate_limiter": rate_limiter}
    async with embedded_client(db, faults=faults, backoff_base=0.01, **options) as c:
        slots = asyncio.Semaphore(10)

        async def create(kind: str, i: int) -> None:
            async with slots:
                if kind == "env":
                    await c.environments.create({"name": f"env-{i}", "config": {"type": "cloud"}})
                else:
                    await c.agents.create({"name": f"agent-{i}", "model": "m"})

        await asyncio.gather(
            *(create("agent", i) for i in range(10)), *(create("env", i) for i in range(2))
        )
        return c.stats.rate_limited


async def test_starting_below_the_documented_limits_spares_the_first_burst(
    tmp_path: Path,
) -> None:
    from reconciler.provider.wire import DOCUMENTED_RATE_LIMITS

    # unpaced, the first burst overruns the provider's one second of burst (5 agent creates)
    assert await _burst(None, tmp_path / "plain.db") >= 1
    documented = RateLimits(documented=DOCUMENTED_RATE_LIMITS)
    assert await _burst(documented, tmp_path / "documented.db") == 0


async def test_a_starting_rate_grows_only_while_it_holds_senders_back() -> None:
    busy = AdaptiveRateLimiter(rate=40, grow_per_s=1.0)
    for _ in range(30):  # back to back: every sender after the first waits for a token
        await busy.acquire()
        busy.on_success()
    assert busy.rate is not None and busy.rate > 40

    idle = AdaptiveRateLimiter(rate=40, grow_per_s=1.0)
    for _ in range(5):  # far below the rate: nobody waits, nothing to learn
        await idle.acquire()
        idle.on_success()
        await asyncio.sleep(0.05)
    assert idle.rate == 40
    assert AdaptiveRateLimiter(rate=40).rate == 40  # no growth unless asked


async def test_growth_slows_down_past_the_documented_limit() -> None:
    free = AdaptiveRateLimiter(rate=100, grow_per_s=2.0)
    careful = AdaptiveRateLimiter(rate=100, grow_per_s=2.0, known_limit=100)
    for limiter in (free, careful):
        for _ in range(40):
            await limiter.acquire()
            limiter.on_success()
    assert free.rate is not None and careful.rate is not None
    assert 100 < careful.rate < free.rate
