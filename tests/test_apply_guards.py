"""The pieces that stop an apply, one at a time, in-process (the real processes are in
``test_apply_stops``): the lock's ``ensure_held``, the client's ``write_guard``, the
executor's circuit breaker, and what ``leftover_intents`` says of intents nobody plans."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from reconciler.engine.breaker import CircuitBreaker
from reconciler.engine.executor import apply_plan
from reconciler.engine.intents import leftover_intents
from reconciler.engine.model import Action, Create, Plan, Target
from reconciler.engine.refresh import Observed
from reconciler.errors import (
    BadRequestError,
    LockLost,
    ProviderConnectionError,
)
from reconciler.provider import ProviderClient, StreamingASGITransport
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.provider.local import create_app
from reconciler.state import ApplyLock, Lockfile, PendingIntent
from reconciler.state import lock as lock_module
from reconciler.state.lock import unlock

DIGEST = "sha256:" + "ab" * 32
NOW = "2026-05-01T12:00:00Z"


# --- the lock -------------------------------------------------------------------------------


def test_ensure_held_names_whoever_took_the_lock(tmp_path: Path) -> None:
    lockfile = tmp_path / "reconciler.lock"
    mine = ApplyLock(lockfile)
    info = mine.acquire()
    try:
        mine.ensure_held()  # ours: passes
        unlock(lockfile, info.id, force=True)  # the holder is this process: alive
        other = ApplyLock(lockfile)
        theirs = other.acquire()
        try:
            mine._verified_at -= 1  # as if the last read was a while ago
            with pytest.raises(LockLost, match=rf"^lock lost to apply {theirs.id} \(pid "):
                mine.ensure_held()
            assert mine.lost and not mine.held
            with pytest.raises(LockLost):  # and it stays lost
                mine.ensure_held()
        finally:
            other.release()
        with pytest.raises(LockLost, match="^lock lost to nobody"):
            mine.ensure_held()
    finally:
        mine.release()


def test_ensure_held_reads_the_lock_at_most_every_half_second(tmp_path: Path) -> None:
    lockfile = tmp_path / "reconciler.lock"
    mine = ApplyLock(lockfile)
    info = mine.acquire()
    try:
        unlock(lockfile, info.id, force=True)  # the holder is this process: alive
        mine.ensure_held()  # just verified (at acquire): no read yet, so no news
        mine._verified_at -= lock_module.VERIFY_EVERY
        with pytest.raises(LockLost):
            mine.ensure_held()
    finally:
        mine.release()


def test_after_a_pause_ensure_held_renews_the_heartbeat(tmp_path: Path) -> None:
    """A gap longer than the heartbeat interval (a SIGSTOP) renews the heartbeat under the
    guard, so nobody finds the lock stale between the check and the write after it."""
    lockfile = tmp_path / "reconciler.lock"
    mine = ApplyLock(lockfile, stale_after=30, heartbeat_interval=5)
    mine.acquire()
    try:
        before = lock_module.read_lock(lockfile)
        assert before is not None
        time.sleep(0.01)
        mine._verified_at -= 10  # paused for 10 s
        mine.ensure_held()
        after = lock_module.read_lock(lockfile)
        assert after is not None and after.heartbeat_at > before.heartbeat_at
    finally:
        mine.release()


# --- the client's write guard -------------------------------------------------------------


async def test_the_write_guard_runs_before_writes_only(tmp_path: Path) -> None:
    calls: list[str] = []

    def guard() -> None:
        calls.append("guard")
        if len(calls) > 1:
            raise LockLost("lock lost to nobody")

    transport = StreamingASGITransport(create_app(tmp_path / "provider.db"))
    async with ProviderClient("http://local", "test", transport=transport) as client:
        client.write_guard = guard
        await client.agents.list().to_list()
        assert calls == []  # reads are never guarded
        await client.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
        assert calls == ["guard"]
        with pytest.raises(LockLost):
            await client.agents.create({"name": "b", "model": "claude-sonnet-4-6"})
        names = [a["name"] for a in await client.agents.list().to_list()]
    assert names == ["a"]  # the refused create never left


@pytest.mark.tcp
async def test_the_write_guard_is_checked_again_right_at_the_socket(tcp_provider: str) -> None:
    """Over HTTP the guard runs twice: in the client, and in the transport right before the
    request's bytes are written (no await in between), so a pause after the first check
    cannot let the write out."""
    calls: list[str] = []

    def guard() -> None:
        calls.append("guard")
        if len(calls) == 2:  # the client's check passed; the socket's refuses
            raise LockLost("lock lost to nobody")

    async with ProviderClient(tcp_provider, "test") as client:
        client.write_guard = guard
        with pytest.raises(LockLost):
            await client.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
        client.write_guard = None
        assert await client.agents.list().to_list() == []  # it never reached the provider
        await client.agents.create({"name": "b", "model": "claude-sonnet-4-6"})  # pool is fine
    assert calls == ["guard", "guard"]


# --- the circuit breaker ------------------------------------------------------------------


def _creates(n: int) -> Plan:
    actions: list[Action] = [
        Create(
            address=f"agent.a{i:02}",
            kind="agent",
            reason="new",
            body={"name": f"a{i:02}", "model": "claude-sonnet-4-6"},
            target=Target(spec_digest=DIGEST),
        )
        for i in range(n)
    ]
    return Plan(project="p", actions=tuple(actions))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nobody listens: every connect is refused


async def test_a_dead_provider_stops_the_apply_after_a_few_actions() -> None:
    """Connection refused: the client retries each request (4 retries); the executor does
    not retry on top, and after 3 actions in a row it starts no new one."""
    url = f"http://127.0.0.1:{_closed_port()}"
    async with ProviderClient(url, "test", backoff_base=0.001, backoff_max=0.004) as client:
        report = await apply_plan(
            _creates(30),
            ClientBackedProvider(client),
            resolve_secret=lambda a, p: "",
            parallelism=4,
        )
        attempts = client.stats.requests
    assert not report.ok
    tried = [o for o in report.outcomes if o.address not in report.not_sent]
    # those in flight when the breaker opened finish, and count too
    assert report.stopped == f"{len(tried)} actions in a row got no answer from the provider"
    assert 3 <= len(tried) <= 4 + 2  # those in flight, and the ones started before the 3rd
    assert len(report.not_sent) == 30 - len(tried)
    assert attempts == 5 * len(tried)  # one request each, with the client's retries
    for o in tried:
        assert o.error is not None and "could not reach the provider at" in o.error
    for address in report.not_sent:
        failure = report.failures[address]
        assert failure == "not attempted: apply stopped, the provider is unreachable"


def test_any_answer_resets_the_breaker() -> None:
    breaker = CircuitBreaker(threshold=3)
    down = ProviderConnectionError("could not reach the provider")
    breaker.failed(down)
    breaker.failed(down)
    breaker.failed(BadRequestError("no", status=400))  # the provider answered
    breaker.failed(down)
    breaker.failed(None)  # e.g. a missing secret: says nothing about the provider
    breaker.failed(down)
    assert not breaker.open
    breaker.failed(down)
    assert breaker.open
    breaker.answered()  # an in-flight action that finished well does not close it again
    assert breaker.open


# --- intents nobody plans -----------------------------------------------------------------


def test_leftover_intents_say_what_became_of_each_create() -> None:
    lockfile = Lockfile().model_copy(
        update={
            "pending": {
                "agent.kept": PendingIntent(kind="agent", operation="create", started_at=NOW),
                "agent.made": PendingIntent(kind="agent", operation="create", started_at=NOW),
                "agent.lost": PendingIntent(kind="agent", operation="create", started_at=NOW),
            }
        }
    )
    tags = {"managed-by": "reconciler", "reconciler-project": "p"}
    observed = Observed(
        objects={
            "agent": (
                {"id": "agent_1", "metadata": {**tags, "reconciler-address": "agent.made"}},
                {"id": "agent_2", "metadata": {**tags, "reconciler-address": "agent.kept"}},
                # another project's object at the same address is not ours
                {
                    "id": "agent_3",
                    "metadata": {
                        **tags,
                        "reconciler-project": "q",
                        "reconciler-address": "agent.lost",
                    },
                },
            )
        }
    )
    left = leftover_intents(lockfile, {"agent.kept"}, observed, "p")
    assert left == {
        "agent.lost": "never created",
        "agent.made": "created as agent_1 (not in the manifests: left alone; --prune archives it)",
    }
