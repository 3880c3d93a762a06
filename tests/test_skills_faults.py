"""Skills under faults: lost answers of uploads, the provider's fault flags, rate limits.

An upload is not idempotent, so a lost answer must be looked up (by content) before the
upload is sent again: it is never resent blind and never leaves a twin version or skill.
``LoseAnswers`` (tests/support/lossy.py) loses chosen answers on the wire in front of the real local provider;
``FaultConfig`` makes the provider itself fail, slow down or rate limit every route.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import httpx
from support.lossy import FAST, faulty, lossy

from reconciler.errors import AmbiguousWriteError
from reconciler.provider import ProviderClient, SkillUpload, embedded_client
from reconciler.provider.asgi_transport import StreamingASGITransport
from reconciler.provider.embedded import EMBEDDED_BASE_URL
from reconciler.provider.local import FaultConfig, create_app
from reconciler.provider.skills import LOOKUP_DOWNLOADS


def upload(slug: str, body: str = "v1", *, folder: str | None = None) -> SkillUpload:
    top = folder or slug
    return SkillUpload(
        (
            (f"{top}/SKILL.md", f"---\nname: {slug}\ndescription: {body}\n---\n".encode()),
            (f"{top}/notes.txt", body.encode()),
        )
    )


async def seed(db: Path, slug: str = "tidy-data") -> dict[str, Any]:
    async with embedded_client(db) as clean:
        return await clean.skills.create(upload(slug))


# --------------------------------------------------------------------------- lost answers


@pytest.mark.parametrize("fate", ["after", "dropped"])
async def test_a_version_upload_whose_answer_is_lost_is_found_not_resent(
    provider_db: Path, fate: str
) -> None:
    skill = await seed(provider_db)
    path = f"/v1/skills/{skill['id']}/versions"
    async with lossy(provider_db, {("POST", path): [fate]}) as (client, wire):
        version = await client.skills.versions.create(
            skill["id"], upload("tidy-data", "v2"), after_version=skill["latest_version_id"]
        )
        listed = await client.skills.versions.list(skill["id"]).to_list()
    assert wire.sent[("POST", path)] == 1, "the upload was never sent a second time"
    assert [v["id"] for v in listed] == [version["id"], skill["latest_version_id"]]
    assert version["description"] == "v2"


async def test_a_version_upload_that_never_arrived_is_sent_again(provider_db: Path) -> None:
    skill = await seed(provider_db)
    path = f"/v1/skills/{skill['id']}/versions"
    async with lossy(provider_db, {("POST", path): ["before"]}) as (client, wire):
        version = await client.skills.versions.create(skill["id"], upload("tidy-data", "v2"))
        listed = await client.skills.versions.list(skill["id"]).to_list()
    assert wire.sent[("POST", path)] == 2, "looked up, not found, then sent again"
    assert [v["id"] for v in listed] == [version["id"], skill["latest_version_id"]]
    content = f"/v1/skills/{skill['id']}/versions/{skill['latest_version_id']}/content"
    assert wire.sent[("GET", content)] == 1, "the newest version was compared by content"


async def test_the_lookup_stops_at_the_version_known_before(provider_db: Path) -> None:
    skill = await seed(provider_db)
    same = upload("tidy-data", "v1")  # the very files of the first version
    path = f"/v1/skills/{skill['id']}/versions"
    async with lossy(provider_db, {("POST", path): ["before"]}) as (client, wire):
        version = await client.skills.versions.create(
            skill["id"], same, after_version=skill["latest_version_id"]
        )
    # identical to the old version, but older than the upload: not its result
    assert version["id"] != skill["latest_version_id"]
    assert wire.sent[("POST", path)] == 2
    assert sum(n for (m, p), n in wire.sent.items() if p.endswith("/content")) == 0


async def test_a_skill_upload_whose_answer_is_lost_is_found_not_resent(
    provider_db: Path,
) -> None:
    before = await seed(provider_db, "older")
    async with lossy(provider_db, {("POST", "/v1/skills"): ["dropped"]}) as (client, wire):
        skill = await client.skills.create(upload("tidy-data"), existing={before["id"]})
        every = await client.skills.list().to_list()
    assert wire.sent[("POST", "/v1/skills")] == 1
    assert [s["id"] for s in every] == [before["id"], skill["id"]]
    assert skill["display_name"] == "tidy-data"


class _OthersLandFirst(httpx.AsyncBaseTransport):
    """The first skill upload commits; before its answer is lost (dropped), ``others`` more
    skills land, as the other uploads of one apply (side by side) do."""

    def __init__(self, db: Path, others: int) -> None:
        self.inner = StreamingASGITransport(create_app(db))
        self.db, self.others = db, others
        self.sent: Counter[tuple[str, str]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        self.sent[key] += 1
        response = await self.inner.handle_async_request(request)
        if key != ("POST", "/v1/skills") or self.sent[key] > 1:
            return response
        await response.aread()
        for i in range(self.others):
            await seed(self.db, f"other-{i}")
        raise httpx.RemoteProtocolError("peer closed the connection", request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_lost_skill_upload_is_found_though_more_uploads_landed_after_it(
    provider_db: Path,
) -> None:
    """An apply uploads its new skills side by side (and the executor knows no ids to leave
    out): the lookup of one lost answer must find it among more than LOOKUP_DOWNLOADS newer
    skills, by the name the provider derives from SKILL.md, never upload a twin."""
    wire = _OthersLandFirst(provider_db, LOOKUP_DOWNLOADS + 2)
    async with ProviderClient(
        EMBEDDED_BASE_URL, api_key="k", transport=wire, max_retries=2, **FAST
    ) as client:
        skill = await client.skills.create(upload("tidy-data"))
    assert wire.sent[("POST", "/v1/skills")] == 1, "the upload was never sent a second time"
    async with embedded_client(provider_db) as clean:
        every = await clean.skills.list().to_list()
    assert Counter(s["display_name"] for s in every)["tidy-data"] == 1
    assert skill["display_name"] == "tidy-data"


async def test_a_skill_upload_that_never_arrived_is_sent_again(provider_db: Path) -> None:
    async with lossy(provider_db, {("POST", "/v1/skills"): ["before"]}) as (client, wire):
        skill = await client.skills.create(upload("tidy-data"), existing=())
        every = await client.skills.list().to_list()
    assert wire.sent[("POST", "/v1/skills")] == 2
    assert [s["id"] for s in every] == [skill["id"]]


async def test_when_the_lookup_fails_too_the_upload_stays_ambiguous(provider_db: Path) -> None:
    skill = await seed(provider_db)
    path = f"/v1/skills/{skill['id']}/versions"
    script: dict[tuple[str, str], list[str | None]] = {
        ("POST", path): ["after"],
        ("GET", path): ["before"] * 10,  # the lookup's list fails on every retry
    }
    async with lossy(provider_db, script, max_retries=2) as (client, wire):
        with pytest.raises(AmbiguousWriteError, match="looking it up failed too") as caught:
            await client.skills.versions.create(skill["id"], upload("tidy-data", "v2"))
    assert (caught.value.method, caught.value.path) == ("POST", path)
    assert wire.sent[("POST", path)] == 1, "never resent while its fate is unknown"


async def test_a_retry_budget_spent_on_lost_answers_says_ambiguous(provider_db: Path) -> None:
    skill = await seed(provider_db)
    path = f"/v1/skills/{skill['id']}/versions"
    async with lossy(provider_db, {("POST", path): ["before"] * 5}, max_retries=2) as (c, wire):
        with pytest.raises(AmbiguousWriteError, match="gave up after 2 retries"):
            await c.skills.versions.create(skill["id"], upload("tidy-data", "v2"))
    assert wire.sent[("POST", path)] == 3


# --------------------------------------------------------------------------- fault flags


@pytest.fixture(params=["in-process", pytest.param("tcp", marks=pytest.mark.tcp)])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_skill_reads_ride_through_a_30_percent_fault_rate(
    transport_kind: str, provider_db: Path
) -> None:
    seeded = [await seed(provider_db, f"s-{i}") for i in range(12)]
    faults = FaultConfig(fault_rate=0.3, seed=5, latency_ms=1)
    async with faulty(transport_kind, provider_db, faults, max_retries=8) as (client, injected):
        listed = await client.skills.list().to_list()
        for skill in seeded[:6]:
            assert (await client.skills.retrieve(skill["id"]))["id"] == skill["id"]
            versions = await client.skills.versions.list(skill["id"]).to_list()
            archive = await client.skills.versions.download(skill["id"], versions[0]["id"])
            assert upload(skill["display_name"]).same_as_zip(archive)
        stats = client.stats
    assert [s["id"] for s in listed] == [s["id"] for s in seeded]
    assert stats.retries > 0 and injected.stats.before + injected.stats.after > 0


async def test_uploads_under_a_fault_rate_never_leave_a_twin(
    transport_kind: str, provider_db: Path
) -> None:
    faults = FaultConfig(fault_rate=0.3, seed=23)
    outcomes: dict[str, str] = {}
    async with faulty(transport_kind, provider_db, faults, max_retries=6) as (client, injected):
        known: list[str] = []
        for i in range(16):
            slug = f"skill-{i:02d}"
            try:
                made = await client.skills.create(upload(slug), existing=known)
                known.append(made["id"])
                await client.skills.versions.create(
                    made["id"], upload(slug, "v2"), after_version=made["latest_version_id"]
                )
                outcomes[slug] = "done"
            except AmbiguousWriteError:
                outcomes[slug] = "ambiguous"
    assert injected.stats.after > 0, "some answers were lost after the provider committed"
    async with embedded_client(provider_db) as clean:
        skills = await clean.skills.list().to_list()
        slugs = Counter(s["display_name"] for s in skills)
        assert max(slugs.values()) == 1, "no skill was uploaded twice"
        for skill in skills:
            versions = await clean.skills.versions.list(skill["id"]).to_list()
            descriptions = Counter(v["description"] for v in versions)
            assert max(descriptions.values()) == 1, f"a twin version of {skill['display_name']}"
            if outcomes.get(skill["display_name"]) == "done":
                assert sorted(descriptions) == ["v1", "v2"]
    assert list(outcomes.values()).count("done") >= 12


async def test_skills_have_their_own_rate_limit_buckets(
    transport_kind: str, provider_db: Path
) -> None:
    faults = FaultConfig(bucket_limits={"skills create": 2.0, "agents": 1000.0})
    async with faulty(transport_kind, provider_db, faults) as (client, injected):
        made = [await client.skills.create(upload(f"r-{i}")) for i in range(6)]
        for skill in made:
            await client.skills.retrieve(skill["id"])  # the "skills" bucket: unlimited
        stats = client.stats
    assert injected.stats.rate_limited > 0 and stats.rate_limited > 0
    assert stats.by_method["POST"] == 6 + stats.rate_limited, "a 429'd upload was resent"
    async with embedded_client(provider_db) as clean:
        assert len(await clean.skills.list().to_list()) == 6


async def test_a_callers_own_lookup_replaces_the_built_in_one(provider_db: Path) -> None:
    skill = await seed(provider_db)
    path = f"/v1/skills/{skill['id']}/versions"
    asked: list[bool] = []

    async def not_there() -> dict[str, Any] | None:
        asked.append(True)
        return None  # "it did not happen": the client may send it again

    async with lossy(provider_db, {("POST", path): ["after"]}) as (client, wire):
        version = await client.skills.versions.create(
            skill["id"], upload("tidy-data", "v2"), resolve=not_there
        )
    assert asked == [True] and wire.sent[("POST", path)] == 2
    assert version["description"] == "v2"
    assert not any(p.endswith("/content") for _, p in wire.sent), "the built-in one never ran"
