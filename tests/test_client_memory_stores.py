"""The memory-stores client under lost answers, stale preconditions and injected faults.

A lost answer is made deterministically by ``LoseFirst``, an ASGI wrapper around the real
local provider that answers the first matching request with a 503 - after the handler ran
(the write happened) or instead of it (it did not). The fault-flag tests use the provider's
own ``FaultConfig`` (fault rate, latency, per-bucket rate limits) over the new routes, in
process and over loopback TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.errors import AmbiguousWriteError, ConflictError
from reconciler.provider import ProviderClient, StreamingASGITransport, embedded_client
from reconciler.provider.local import BackgroundServer, FaultConfig, create_app
from reconciler.provider.local.faults import bucket_of
from reconciler.provider.memory_stores import content_sha256
from reconciler.provider.retry import is_idempotent
from reconciler.provider.wire import rate_bucket

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"backoff_base": 0.001, "backoff_max": 0.005}
LOST = b'{"type":"error","error":{"type":"overloaded_error","message":"answer lost"}}'


class LoseFirst:
    """Answer the first ``method`` request whose path ends with ``suffix`` with a 503."""

    def __init__(self, app: ASGIApp, method: str, suffix: str, *, after: bool) -> None:
        self.app, self.method, self.suffix, self.after = app, method, suffix, after
        self.armed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = (
            scope["type"] == "http"
            and scope["method"] == self.method
            and str(scope["path"]).endswith(self.suffix)
        )
        if not (hit and self.armed):
            await self.app(scope, receive, send)
            return
        self.armed = False
        if self.after:  # the write happens; its answer is dropped

            async def swallow(message: Message) -> None:
                pass

            await self.app(scope, receive, swallow)
        await Response(LOST, 503, media_type="application/json")(scope, receive, send)


@contextlib.asynccontextmanager
async def losing(
    db: Path, method: str, suffix: str, *, after: bool = True
) -> AsyncIterator[ProviderClient]:
    app = LoseFirst(create_app(db), method, suffix, after=after)
    async with ProviderClient(
        "http://local", "test", transport=StreamingASGITransport(app), **FAST
    ) as client:
        yield client


async def test_a_memory_create_whose_answer_was_lost_is_found_by_its_path(
    provider_db: Path,
) -> None:
    async with embedded_client(provider_db) as clean:
        sid = (await clean.memory_stores.create({"name": "notes"}))["id"]
    async with losing(provider_db, "POST", "/memories") as client:
        memory = await client.memory_stores.memories.create(sid, "/dir/a.md", "hello")
        posts = client.stats.by_method["POST"]
    assert posts == 1, "found by its path, never sent twice"
    assert memory["path"] == "/dir/a.md" and memory["content_sha256"] == content_sha256("hello")
    async with embedded_client(provider_db) as clean:
        assert [m["id"] for m in await clean.memory_stores.memories.list(sid).to_list()] == [
            memory["id"]
        ]
        history = await clean.memory_stores.versions.list(sid).to_list()
    assert [v["operation"] for v in history] == ["created"]


async def test_a_lost_create_that_did_not_happen_is_sent_again(provider_db: Path) -> None:
    async with embedded_client(provider_db) as clean:
        sid = (await clean.memory_stores.create({"name": "notes"}))["id"]
    async with losing(provider_db, "POST", "/memories", after=False) as client:
        memory = await client.memory_stores.memories.create(sid, "/a.md", "hello", view="full")
        assert client.stats.by_method["POST"] == 2
    assert memory["content"] == "hello"


async def test_someone_elses_memory_at_the_path_is_not_taken_for_ours(provider_db: Path) -> None:
    async with embedded_client(provider_db) as clean:
        sid = (await clean.memory_stores.create({"name": "notes"}))["id"]
        theirs = await clean.memory_stores.memories.create(sid, "/a.md", "theirs")
    async with losing(provider_db, "POST", "/memories", after=False) as client:
        with pytest.raises(ConflictError) as taken:
            await client.memory_stores.memories.create(sid, "/a.md", "ours")
    assert taken.value.error_type == "memory_path_conflict_error"
    assert theirs["id"] in str(taken.value)


async def test_a_preconditioned_update_whose_answer_was_lost_is_read_back(
    provider_db: Path,
) -> None:
    async with embedded_client(provider_db) as clean:
        sid = (await clean.memory_stores.create({"name": "notes"}))["id"]
        memory = await clean.memory_stores.memories.create(sid, "/a.md", "one")
    async with losing(provider_db, "POST", memory["id"]) as client:
        updated = await client.memory_stores.memories.update(
            sid, memory["id"], content="two", expected_sha256=memory["content_sha256"]
        )
        assert client.stats.by_method["POST"] == 1, "a resend would have met a stale 409"
    assert updated["content_sha256"] == content_sha256("two")
    async with embedded_client(provider_db) as clean:
        history = await clean.memory_stores.versions.list(sid).to_list()
    assert [v["operation"] for v in history] == ["modified", "created"]


async def test_stale_preconditions_are_conflicts_and_are_never_retried(provider_db: Path) -> None:
    async with embedded_client(provider_db, **FAST) as client:
        sid = (await client.memory_stores.create({"name": "notes"}))["id"]
        memories = client.memory_stores.memories
        memory = await memories.create(sid, "/a.md", "one")
        await memories.update(sid, memory["id"], content="two")
        with pytest.raises(ConflictError) as stale:
            await memories.update(
                sid, memory["id"], content="x", expected_sha256=memory["content_sha256"]
            )
        assert stale.value.status == 409
        assert stale.value.error_type == "memory_precondition_failed_error"
        assert f"memory {memory['id']}" in str(stale.value)
        with pytest.raises(ConflictError):
            await memories.delete(sid, memory["id"], expected_sha256=memory["content_sha256"])
        assert client.stats.retries == 0
        assert (await memories.retrieve(sid, memory["id"]))["content"] == "two"


async def test_a_store_create_is_looked_up_by_its_metadata_only(provider_db: Path) -> None:
    body = {"name": "prefs", "metadata": {"owner": "project/a"}}
    async with losing(provider_db, "POST", "/v1/memory_stores") as client:
        resolve = client.memory_stores.resolver(body)
        made = await client.memory_stores.create(body, resolve=resolve)
        assert client.stats.by_method["POST"] == 1
        assert made["metadata"] == {"owner": "project/a"}
        assert client.memory_stores.resolver({"name": "prefs"}) is None, "names are not unique"
    async with losing(provider_db, "POST", "/v1/memory_stores") as client:
        with pytest.raises(AmbiguousWriteError, match="may or may not have been applied"):
            await client.memory_stores.create({"name": "no-lookup"})
    async with embedded_client(provider_db) as clean:
        names = Counter(s["name"] for s in await clean.memory_stores.list().to_list())
    assert names == {"prefs": 1, "no-lookup": 1}


def test_the_new_routes_have_their_rate_buckets_and_retry_rules() -> None:
    for method, path, bucket in [
        ("POST", "/v1/memory_stores", "memory_stores create"),
        ("POST", "/v1/memory_stores/ms/memories", "memory_stores create"),
        ("POST", "/v1/memory_stores/ms/memories/m", "memory_stores"),
        ("GET", "/v1/memory_stores/ms/memory_versions", "memory_stores"),
        ("POST", "/v1/memory_stores/ms/memory_versions/v/redact", "memory_stores"),
    ]:
        assert rate_bucket(method, path) == bucket_of(method, path) == bucket, path
    assert not is_idempotent("POST", "/v1/memory_stores/ms/memories")
    assert is_idempotent("POST", "/v1/memory_stores/ms/memories/m", {"content": "x"})
    assert not is_idempotent(
        "POST", "/v1/memory_stores/ms/memories/m", {"content": "x", "precondition": {}}
    )
    assert is_idempotent("POST", "/v1/memory_stores/ms/memory_versions/v/redact")
    assert is_idempotent("POST", "/v1/memory_stores/ms/archive")
    assert is_idempotent("POST", "/v1/memory_stores/ms", {"name": "n"})


# --------------------------------------------------------------------------- fault flags


@pytest.fixture(params=["in-process", pytest.param("tcp", marks=pytest.mark.tcp)])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def faulty(kind: str, db: Path, faults: FaultConfig, **kw: Any) -> AsyncIterator[Any]:
    """(client, app) of a provider with ``faults``."""
    app = create_app(db, faults=faults)
    if kind == "in-process":
        client = ProviderClient(
            "http://local", "test", transport=StreamingASGITransport(app), **FAST, **kw
        )
        async with client:
            yield client, app
    else:
        with BackgroundServer(app) as server:
            async with ProviderClient(server.url, "test", **FAST, **kw) as client:
                yield client, app


async def test_memory_writes_converge_under_a_fault_rate(
    transport_kind: str, provider_db: Path
) -> None:
    faults = FaultConfig(fault_rate=0.3, seed=5, latency_ms=1)
    async with faulty(transport_kind, provider_db, faults, max_retries=8) as (client, app):
        body = {"name": "notes", "metadata": {"owner": "test"}}
        store = await client.memory_stores.create(body, resolve=client.memory_stores.resolver(body))
        sid = store["id"]
        made = {}
        for i in range(25):
            path = f"/d{i % 3}/m{i:02d}.md"
            made[path] = await client.memory_stores.memories.create(sid, path, f"text {i}")
        first = made["/d0/m00.md"]
        await client.memory_stores.memories.update(sid, first["id"], content="changed")
        await client.memory_stores.memories.update(
            sid, first["id"], content="again", expected_sha256=content_sha256("changed")
        )
        await client.memory_stores.versions.redact(sid, first["memory_version_id"])
        listed = await client.memory_stores.memories.list(sid).to_list()
        prefixes = await client.memory_stores.memories.list(sid, depth=1).to_list()
        history = await client.memory_stores.versions.list(sid).to_list()
        stats = app.state.faults.stats
    assert stats.before + stats.after > 0, "the faults must actually have been met"
    assert [s for s in await _stores(provider_db)] == [sid], "the store was created once"
    assert sorted(m["path"] for m in listed) == sorted(made)
    for memory in listed:
        assert memory["id"] == made[memory["path"]]["id"], "each memory was created once"
    assert [p["path"] for p in prefixes] == ["/d0/", "/d1/", "/d2/"]
    assert Counter(v["operation"] for v in history) == {"created": 25, "modified": 2}


async def _stores(db: Path) -> list[str]:
    async with embedded_client(db) as clean:
        return [s["id"] for s in await clean.memory_stores.list(include_archived=True).to_list()]


async def test_per_bucket_rate_limits_cover_memory_store_creates(
    transport_kind: str, provider_db: Path
) -> None:
    faults = FaultConfig(bucket_limits={"memory_stores create": 2.0})
    async with faulty(transport_kind, provider_db, faults, max_retries=20) as (client, app):
        stores = await asyncio.gather(
            *(client.memory_stores.create({"name": f"s{i}"}) for i in range(6))
        )
        sid = stores[0]["id"]
        await asyncio.gather(
            *(client.memory_stores.memories.create(sid, f"/m{i}", "x") for i in range(4))
        )
        reads = [await client.memory_stores.retrieve(s["id"]) for s in stores]
        limited = client.stats.rate_limited
        injected = app.state.faults.stats.rate_limited
    assert limited > 0 and injected == limited, "creates met the bucket's 429s"
    assert len({s["id"] for s in stores}) == 6 and len(reads) == 6
    assert len(await _stores(provider_db)) == 6, "a 429 is retried without a duplicate"
