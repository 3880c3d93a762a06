"""Files under faults: lost answers of uploads, the provider's fault flags, rate limits.

An upload is not idempotent and the wire gives no key to find it by, so a lost answer is
looked up (name, size, then content) before the upload is sent again: it is never resent
blind and never leaves a twin file. ``LoseAnswers`` loses chosen answers on the wire in
front of the real local provider; ``FaultConfig`` makes the provider itself fail, slow down
or rate limit every route.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.lossy import FAST, LoseAnswers, faulty, lossy

from reconciler.errors import AmbiguousWriteError
from reconciler.provider import ProviderClient, embedded_client
from reconciler.provider.embedded import EMBEDDED_BASE_URL
from reconciler.provider.local import FaultConfig
from reconciler.provider.local.store import Store

UPLOAD = ("POST", "/v1/files")


async def seed(db: Path, name: str = "seed.txt", content: bytes = b"seed") -> dict[str, Any]:
    async with embedded_client(db) as clean:
        return await clean.files.upload(content, filename=name)


async def every_file(db: Path) -> list[dict[str, Any]]:
    async with embedded_client(db) as clean:
        return await clean.files.list().to_list()


def undownloadable(db: Path, made: dict[str, Any]) -> None:
    """Mark a stored file as the API marks a user's upload: ``downloadable: false``."""
    store = Store(db)
    try:
        with store.write():
            store.replace(made["id"], {**made, "downloadable": False})
    finally:
        store.close()


# --------------------------------------------------------------------------- lost answers


@pytest.mark.parametrize("fate", ["after", "dropped"])
async def test_an_upload_whose_answer_is_lost_is_found_not_resent(
    provider_db: Path, fate: str
) -> None:
    older = await seed(provider_db)
    async with lossy(provider_db, {UPLOAD: [fate]}) as (client, wire):
        made = await client.files.upload(b"new bytes", filename="n.txt", existing={older["id"]})
    assert wire.sent[UPLOAD] == 1, "the upload was never sent a second time"
    assert [f["id"] for f in await every_file(provider_db)] == [made["id"], older["id"]]
    assert (made["filename"], made["size_bytes"]) == ("n.txt", 9)
    assert wire.sent[("GET", f"/v1/files/{made['id']}/content")] == 1, "compared by content"


async def test_an_upload_that_never_arrived_is_sent_again(provider_db: Path) -> None:
    async with lossy(provider_db, {UPLOAD: ["before"]}) as (client, wire):
        made = await client.files.upload(b"abc", filename="a.txt", existing=())
    assert wire.sent[UPLOAD] == 2, "looked up, not found, then sent again"
    assert [f["id"] for f in await every_file(provider_db)] == [made["id"]]


async def test_a_same_sized_file_with_other_bytes_is_not_the_answer(provider_db: Path) -> None:
    older = await seed(provider_db, "a.txt", b"old")
    async with lossy(provider_db, {UPLOAD: ["before"]}) as (client, wire):
        made = await client.files.upload(b"new", filename="a.txt")
    assert made["id"] != older["id"] and wire.sent[UPLOAD] == 2
    assert wire.sent[("GET", f"/v1/files/{older['id']}/content")] == 1


async def test_without_existing_an_identical_older_file_is_the_answer(provider_db: Path) -> None:
    older = await seed(provider_db, "a.txt", b"same")
    async with lossy(provider_db, {UPLOAD: ["before"]}) as (client, wire):
        made = await client.files.upload(b"same", filename="dir/a.txt")
    assert made == older and wire.sent[UPLOAD] == 1, "the provider already holds those bytes"
    assert len(await every_file(provider_db)) == 1


class ApiLikeUploads(LoseAnswers):
    """``LoseAnswers`` whose uploads the provider then marks ``downloadable: false``, as the
    API marks every file a user uploads."""

    def __init__(self, db: Path, script: dict[tuple[str, str], list[str | None]]) -> None:
        super().__init__(db, script)
        self.db = db

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        finally:
            if (request.method, request.url.path) == UPLOAD:
                for made in await every_file(self.db):
                    undownloadable(self.db, made)


async def test_an_undownloadable_new_file_of_that_name_and_size_is_the_answer(
    provider_db: Path,
) -> None:
    """Against the API, whose uploads cannot be downloaded: with ``existing``, a new file
    with the upload's name and size is its result, found without a download."""
    older = await seed(provider_db, "s.txt", b"old!!!")
    wire = ApiLikeUploads(provider_db, {UPLOAD: ["dropped"]})
    async with ProviderClient(EMBEDDED_BASE_URL, "test", transport=wire, **FAST) as client:
        made = await client.files.upload(b"secret", filename="s.txt", existing={older["id"]})
    assert wire.sent[UPLOAD] == 1 and made["downloadable"] is False
    assert made["id"] != older["id"]
    assert not any(p.endswith("/content") for _, p in wire.sent), "nothing was downloaded"
    assert len(await every_file(provider_db)) == 2


async def test_without_existing_an_undownloadable_candidate_stays_ambiguous(
    provider_db: Path,
) -> None:
    older = await seed(provider_db, "a.txt", b"abc")
    undownloadable(provider_db, older)
    async with lossy(provider_db, {UPLOAD: ["before"]}) as (client, wire):
        with pytest.raises(AmbiguousWriteError, match="cannot be downloaded to compare"):
            await client.files.upload(b"xyz", filename="a.txt")
    assert wire.sent[UPLOAD] == 1, "never resent while its fate is unknown"
    assert len(await every_file(provider_db)) == 1


async def test_when_the_lookup_fails_too_the_upload_stays_ambiguous(provider_db: Path) -> None:
    script: dict[tuple[str, str], list[str | None]] = {
        UPLOAD: ["after"],
        ("GET", "/v1/files"): ["before"] * 10,  # the lookup's list fails on every retry
    }
    async with lossy(provider_db, script, max_retries=2) as (client, wire):
        with pytest.raises(AmbiguousWriteError, match="looking it up failed too") as caught:
            await client.files.upload(b"abc", filename="a.txt", existing=())
    assert (caught.value.method, caught.value.path) == UPLOAD
    assert wire.sent[UPLOAD] == 1


async def test_a_retry_budget_spent_on_lost_answers_says_ambiguous(provider_db: Path) -> None:
    async with lossy(provider_db, {UPLOAD: ["before"] * 5}, max_retries=2) as (client, wire):
        with pytest.raises(AmbiguousWriteError, match="gave up after 2 retries"):
            await client.files.upload(b"abc", filename="a.txt", existing=())
    assert wire.sent[UPLOAD] == 3


# --------------------------------------------------------------------------- fault flags


@pytest.fixture(params=["in-process", pytest.param("tcp", marks=pytest.mark.tcp)])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_file_reads_ride_through_a_30_percent_fault_rate(
    transport_kind: str, provider_db: Path
) -> None:
    seeded = [await seed(provider_db, f"f{i}.txt", f"bytes {i}".encode()) for i in range(12)]
    faults = FaultConfig(fault_rate=0.3, seed=5, latency_ms=1)
    async with faulty(transport_kind, provider_db, faults, max_retries=8) as (client, injected):
        listed = await client.files.list().to_list()
        for i, made in enumerate(seeded[:6]):
            assert await client.files.retrieve(made["id"]) == made
            assert await client.files.download(made["id"]) == f"bytes {i}".encode()
        stats = client.stats
    assert [f["id"] for f in listed] == [f["id"] for f in reversed(seeded)]
    assert stats.retries > 0 and injected.stats.before + injected.stats.after > 0


async def test_uploads_under_a_fault_rate_never_leave_a_twin(
    transport_kind: str, provider_db: Path
) -> None:
    faults = FaultConfig(fault_rate=0.3, seed=23)
    outcomes: dict[str, str] = {}
    async with faulty(transport_kind, provider_db, faults, max_retries=6) as (client, injected):
        known: list[str] = []
        for i in range(16):
            name = f"file-{i:02d}.txt"
            try:
                made = await client.files.upload(name.encode(), filename=name, existing=known)
                known.append(made["id"])
                outcomes[name] = "done"
            except AmbiguousWriteError:
                outcomes[name] = "ambiguous"
    assert injected.stats.after > 0, "some answers were lost after the provider committed"
    names = Counter(f["filename"] for f in await every_file(provider_db))
    assert max(names.values()) == 1, "no file was uploaded twice"
    assert all(names[n] == 1 for n, fate in outcomes.items() if fate == "done")
    assert list(outcomes.values()).count("done") >= 12


async def test_files_have_their_own_rate_limit_buckets(
    transport_kind: str, provider_db: Path
) -> None:
    faults = FaultConfig(bucket_limits={"files create": 2.0, "agents": 1000.0})
    async with faulty(transport_kind, provider_db, faults) as (client, injected):
        made = [await client.files.upload(b"r", filename=f"r-{i}.txt") for i in range(6)]
        for item in made:
            await client.files.retrieve(item["id"])  # the "files" bucket: unlimited
        stats = client.stats
    assert injected.stats.rate_limited > 0 and stats.rate_limited > 0
    assert stats.by_method["POST"] == 6 + stats.rate_limited, "a 429'd upload was resent"
    assert len(await every_file(provider_db)) == 6
