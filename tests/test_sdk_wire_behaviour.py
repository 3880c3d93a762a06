"""What the local provider does, judged by the official SDK (``anthropic`` 2.10.0) in strict mode.

``test_sdk_strict.py`` checks the shape of every answer; this file checks behaviour the SDK
relies on, over loopback TCP with ``_strict_response_validation=True``: how the SDK's own
retry policy meets each refusal (a deterministic 409 is sent once, a 429 is waited out), the
request ids it reads, every list walked by its auto-pagination one item per page (each item
once, the last page's ``next_page`` null, a cursor of one list refused by another), the
``limit`` bounds each list declares, the request size limit (413), and the SDK's own helpers
(``files_from_dir``, the skill download and the memory-store sync of ``anthropic.lib``)
run end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.lib import async_files_from_dir, files_from_dir

from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

pytestmark = pytest.mark.tcp

MESSAGE: Any = {"type": "user.message", "content": [{"type": "text", "text": "ping"}]}


class Counting(httpx2.HTTPTransport):
    """Counts the requests the SDK really sends (its retries included)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, int]] = []
        self.headers: list[httpx2.Headers] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        self.sent.append((request.method, request.url.path, response.status_code))
        self.headers.append(request.headers)
        return response


def strict_sdk(url: str, transport: httpx2.BaseTransport | None = None, **kw: Any) -> Any:
    """The SDK as a careful user builds it, validating every answer strictly."""
    http = httpx2.Client(transport=transport) if transport is not None else None
    return anthropic.Anthropic(
        base_url=url, api_key="test", _strict_response_validation=True, http_client=http, **kw
    )


@pytest.fixture
def counting() -> Counting:
    return Counting()


@pytest.fixture
def sdk(tcp_provider: str, counting: Counting) -> Iterator[anthropic.Anthropic]:
    """The SDK with its default retries (2): a refusal it retries shows in ``counting``."""
    with strict_sdk(tcp_provider, counting) as client:
        yield client


# -- request size -----------------------------------------------------------------------------


def test_a_body_over_32_mb_is_a_413_before_it_is_read(
    sdk: anthropic.Anthropic, counting: Counting
) -> None:
    """The API refuses a request body over 32 MB with a 413 (the SDK's ContentTooLargeError,
    not retried). Four 9 MB messages pass every field limit: only the size can refuse them."""
    agent = sdk.beta.agents.create(name="a", model="claude-haiku-4-5")
    env = sdk.beta.environments.create(name="e")
    session = sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
    text = "x" * (9 * 1024 * 1024)
    big = [{"type": "user.message", "content": [{"type": "text", "text": text}]}] * 4
    del counting.sent[:]
    with pytest.raises(anthropic.ContentTooLargeError) as refused:
        sdk.beta.sessions.events.send(session.id, events=big)  # type: ignore[arg-type]
    assert refused.value.status_code == 413
    assert "32" in refused.value.message and refused.value.request_id
    assert len(counting.sent) == 1
    assert list(sdk.beta.sessions.events.list(session.id)) == []
    # just under the limit is read and judged on its fields as before
    assert len(sdk.beta.sessions.events.send(session.id, events=big[:3]).data or []) == 3  # type: ignore[arg-type]


# -- retries and request ids ------------------------------------------------------------------


def test_deterministic_conflicts_are_sent_once_by_the_sdks_default_retries(
    sdk: anthropic.Anthropic, counting: Counting
) -> None:
    """The SDK retries every 409 twice unless told not to: each conflict the provider answers
    is one that retrying cannot fix, so each says ``x-should-retry: false`` and goes out once."""
    b = sdk.beta
    agent = b.agents.create(name="a", model="claude-haiku-4-5")
    b.agents.update(agent.id, system="v2")
    b.environments.create(name="taken")
    vault = b.vaults.create(display_name="v")
    bearer = {"type": "static_bearer", "token": "t", "mcp_server_url": "https://mcp.x"}
    b.vaults.credentials.create(vault.id, auth=bearer)  # type: ignore[arg-type]
    env = b.environments.create(name="e")
    session = b.sessions.create(agent=agent.id, environment_id=env.id)
    b.sessions.archive(session.id)
    store = b.memory_stores.create(name="notes")
    memory = b.memory_stores.memories.create(store.id, path="/a.md", content="a")
    stale = "0" * 64
    conflicts: list[Callable[[], object]] = [
        lambda: b.agents.update(agent.id, version=1, system="v3"),
        lambda: b.environments.create(name="taken"),
        lambda: b.vaults.credentials.create(vault.id, auth=bearer),  # type: ignore[arg-type]
        lambda: b.sessions.events.send(session.id, events=[MESSAGE]),
        lambda: b.memory_stores.memories.create(store.id, path="/a.md", content="b"),
        lambda: b.memory_stores.memories.update(
            memory.id,
            memory_store_id=store.id,
            content="c",
            precondition={"type": "content_sha256", "content_sha256": stale},
        ),
        lambda: b.memory_stores.memories.delete(
            memory.id, memory_store_id=store.id, expected_content_sha256=stale
        ),
    ]
    for call in conflicts:
        del counting.sent[:]
        with pytest.raises(anthropic.ConflictError) as conflict:
            call()
        assert conflict.value.response.headers["x-should-retry"] == "false"
        assert [status for _, _, status in counting.sent] == [409]
    assert b.agents.retrieve(agent.id).version == 2
    assert b.memory_stores.memories.retrieve(memory.id, memory_store_id=store.id).content == "a"


def test_the_sdk_waits_out_a_429_and_its_retry_succeeds(provider_db: Path) -> None:
    """A 429 says when to come back (``retry-after``, ``retry-after-ms``): the SDK's own retry
    waits that long and gets the answer; with retries off it raises RateLimitError."""
    counting = Counting()
    with (
        BackgroundServer(create_app(provider_db, FaultConfig(rate_limit=1))) as server,
        strict_sdk(server.url, counting) as sdk,
        strict_sdk(server.url, max_retries=0) as impatient,
    ):
        for i in range(4):
            sdk.beta.vaults.create(display_name=f"v{i}")
        statuses = [status for _, _, status in counting.sent]
        assert statuses.count(200) == 4 and set(statuses) == {200, 429}
        with pytest.raises(anthropic.RateLimitError) as limited:
            for _ in range(4):
                impatient.beta.vaults.list()
        headers = limited.value.response.headers
        assert float(headers["retry-after"]) >= 1 and float(headers["retry-after-ms"]) > 0
        assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert len(list(sdk_list_after(provider_db))) == 4


def test_an_injected_overload_is_the_apis_529_the_sdk_reads_as_overloaded(
    provider_db: Path,
) -> None:
    """The fault injector's overload is the API's: 529 ``overloaded_error``, which the SDK
    raises as OverloadedError (a 503 would be its ServiceUnavailableError)."""
    with (
        BackgroundServer(create_app(provider_db, FaultConfig(fault_rate=1.0, seed=1))) as server,
        strict_sdk(server.url, max_retries=0) as sdk,
    ):
        overloaded = []
        for _ in range(12):
            try:
                sdk.beta.vaults.list()
            except anthropic.OverloadedError as exc:
                overloaded.append(exc)
            except anthropic.APIConnectionError:
                pass  # the injected dropped connection
        assert overloaded, "twelve faults and no overload"
        for exc in overloaded:
            assert exc.status_code == 529
            assert exc.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def sdk_list_after(db: Path) -> list[str]:
    """The vaults in ``db``, read by a fresh provider without faults."""
    with BackgroundServer(create_app(db)) as server, strict_sdk(server.url) as sdk:
        return [v.id for v in sdk.beta.vaults.list()]


def test_every_answer_carries_the_request_id_the_sdk_reads(
    sdk: anthropic.Anthropic, tcp_provider: str
) -> None:
    """Objects, pages, binary downloads, errors and event streams all carry ``request-id``;
    the SDK exposes it as ``_request_id`` / ``request_id``, and an error's body names it too."""
    b = sdk.beta
    agent = b.agents.create(name="a", model="claude-haiku-4-5")
    page = b.agents.list()
    upload = b.files.upload(file=("a.txt", b"a", "text/plain"))
    raw = b.files.with_raw_response.download(upload.id)
    ids = [agent._request_id, page._request_id, raw.request_id, upload._request_id]
    assert all(rid and rid.startswith("req_") for rid in ids) and len(set(ids)) == 4
    with pytest.raises(anthropic.NotFoundError) as missing:
        b.vaults.retrieve("vlt_011CZkYpogX7uDKUyvBTophP")
    assert missing.value.request_id == missing.value.body["request_id"]  # type: ignore[index]
    env = b.environments.create(name="e")
    session = b.sessions.create(agent=agent.id, environment_id=env.id)
    with b.sessions.events.with_streaming_response.stream(session.id) as stream:
        assert stream.request_id and stream.request_id.startswith("req_")
        assert stream.headers["content-type"].startswith("text/event-stream")


# -- every list, walked by the SDK ------------------------------------------------------------------


def skill_files(slug: str, description: str = "Does a thing.") -> list[Any]:
    md = f"---\nname: {slug}\ndescription: {description}\n---\n# {slug}\n"
    return [(f"{slug}/SKILL.md", md.encode())]


@dataclass(frozen=True)
class Listing:
    """One list endpoint: how the SDK pages it (``call(**params)``), the largest ``limit`` it
    declares (None: not stated) and the ids the world made in it, in the list's order."""

    name: str
    call: Callable[..., Any]
    max_limit: int | None
    expected: list[str]


def _world(sdk: anthropic.Anthropic) -> list[Listing]:
    """Three or more objects in every list of the API, and how to list each."""
    b = sdk.beta
    three = range(3)
    agents = [b.agents.create(name=f"a{i}", model="claude-haiku-4-5").id for i in three]
    for i in three:
        b.agents.update(agents[0], system=f"v{i + 2}")
    envs = [b.environments.create(name=f"e{i}").id for i in three]
    vaults = [b.vaults.create(display_name=f"v{i}").id for i in three]
    creds = [
        b.vaults.credentials.create(
            vaults[0],
            auth={"type": "static_bearer", "token": "t", "mcp_server_url": f"https://m{i}"},
        ).id
        for i in three
    ]
    sessions = [b.sessions.create(agent=agents[1], environment_id=envs[0]).id for _ in three]
    b.sessions.events.send(sessions[0], events=[MESSAGE])
    events = [e.id for e in b.sessions.events.list(sessions[0], limit=100)]
    deployments = [
        b.deployments.create(
            name=f"d{i}", agent=agents[2], environment_id=envs[1], initial_events=[MESSAGE]
        ).id
        for i in three
    ]
    fired = [b.deployments.run(deployments[0]) for _ in three]
    runs = [run.id for run in fired]
    sessions += [str(run.session_id) for run in fired]  # each run made one
    skills = [b.skills.create(files=skill_files(f"skill-{i}")).id for i in three]
    for i in three:
        b.skills.versions.create(skills[0], files=skill_files("skill-0", f"Take {i}."))
    files = [b.files.upload(file=(f"f{i}.txt", b"x", "text/plain")).id for i in three]
    stores = [b.memory_stores.create(name=f"s{i}").id for i in three]
    memories = [
        b.memory_stores.memories.create(stores[0], path=f"/m{i}.md", content="x").id for i in three
    ]
    b.memory_stores.memories.update(memories[0], memory_store_id=stores[0], content="y")
    versions_of = [v.id for v in b.memory_stores.memory_versions.list(stores[0], limit=100)]
    skill_versions = [v.id for v in b.skills.versions.list(skills[0], limit=100)]
    resources = [
        b.sessions.resources.add(sessions[1], type="file", file_id=file_id).id for file_id in files
    ]
    return [
        Listing("agents", b.agents.list, 100, agents),
        Listing(
            "agent versions",
            lambda **kw: b.agents.versions.list(agents[0], **kw),
            100,
            [agents[0]] * 4,
        ),
        Listing("environments", b.environments.list, None, envs),
        Listing("vaults", b.vaults.list, 100, vaults),
        Listing("credentials", lambda **kw: b.vaults.credentials.list(vaults[0], **kw), 100, creds),
        Listing(
            "sessions, oldest first",
            lambda **kw: b.sessions.list(order="asc", **kw),
            None,
            sessions,
        ),
        Listing("sessions, newest first", b.sessions.list, None, sessions[::-1]),
        # not stated, but the SDK's session tool runner asks for 1,000 a page
        Listing("events", lambda **kw: b.sessions.events.list(sessions[0], **kw), 1000, events),
        Listing(
            "events, newest first",
            lambda **kw: b.sessions.events.list(sessions[0], order="desc", **kw),
            1000,
            events[::-1],
        ),
        Listing("deployments", b.deployments.list, 100, deployments),
        Listing("deployment runs", b.deployment_runs.list, 1000, runs[::-1]),
        # the custom skills, then the Anthropic ones every workspace sees
        Listing("skills", b.skills.list, 1000, skills + ["docx", "pdf", "pptx", "xlsx"]),
        Listing(
            "session resources",
            lambda **kw: b.sessions.resources.list(sessions[1], **kw),
            1000,
            resources,
        ),
        Listing(
            "skill versions",
            lambda **kw: b.skills.versions.list(skills[0], **kw),
            1000,
            skill_versions,
        ),
        Listing("files", b.files.list, 1000, files[::-1]),
        Listing("memory stores", b.memory_stores.list, 100, stores),
        Listing(
            "memories",
            lambda **kw: b.memory_stores.memories.list(stores[0], **kw),
            100,
            memories,
        ),
        Listing(
            "memory versions",
            lambda **kw: b.memory_stores.memory_versions.list(stores[0], **kw),
            100,
            versions_of,
        ),
    ]


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Listing]]:
    db = tmp_path_factory.mktemp("lists") / "provider.db"
    with BackgroundServer(create_app(db)) as server, strict_sdk(server.url, max_retries=0) as sdk:
        yield _world(sdk)


def _ids(page: Any) -> list[str]:
    return [item.id for item in page.data]


def test_the_sdk_walks_every_list_one_item_per_page(listed: list[Listing]) -> None:
    """``limit=1`` and the SDK's auto-pagination see each object once, in the order of one big
    page, and the last page says so with ``next_page: null``; the versions of an agent are
    the same id at versions 4, 3, 2, 1."""
    for listing in listed:
        one_page = listing.call(limit=100)
        assert _ids(one_page) == listing.expected, listing.name
        assert one_page.next_page is None, listing.name
        walked = list(listing.call(limit=1))
        assert [item.id for item in walked] == listing.expected, listing.name
        page = listing.call(limit=1)
        pages = 1
        while page.has_next_page():
            page = page.get_next_page()
            pages += 1
        assert pages == len(listing.expected) and page.next_page is None, listing.name
    versions = next(x for x in listed if x.name == "agent versions")
    assert [v.version for v in versions.call(limit=1)] == [4, 3, 2, 1]


def test_a_cursor_belongs_to_its_list(listed: list[Listing]) -> None:
    """A ``next_page`` handed to another list, or altered, is a 400, never a wrong page."""
    cursors = {x.name: x.call(limit=1).next_page for x in listed}
    assert all(cursors.values())
    names = list(cursors)
    for listing, other in zip(listed, names[1:] + names[:1], strict=True):
        with pytest.raises(anthropic.BadRequestError):
            listing.call(limit=1, page=cursors[other])
        with pytest.raises(anthropic.BadRequestError):
            listing.call(limit=1, page=cursors[listing.name] + "x")


def test_limit_is_bounded_as_each_list_declares(listed: list[Listing]) -> None:
    """``limit`` runs from 1 to the maximum the SDK states for that list (100 or 1000)."""
    for listing in listed:
        with pytest.raises(anthropic.BadRequestError):
            listing.call(limit=0)
        if listing.max_limit is not None:
            assert _ids(listing.call(limit=listing.max_limit)) == listing.expected
            with pytest.raises(anthropic.BadRequestError):
                listing.call(limit=listing.max_limit + 1)


# -- the SDK's own helpers, end to end ------------------------------------------------------------


async def test_the_sdks_skill_helpers_upload_and_download_a_skill(
    tcp_provider: str, tmp_path: Path
) -> None:
    """``files_from_dir`` uploads a skill directory as the SDK means it to, and
    ``download_session_skills`` (what the SDK's worker runs) finds the session's resolved
    skill version and unpacks the zip the provider serves into ``skills/<name>/``."""
    from anthropic.lib.tools._skills import download_session_skills

    source = tmp_path / "src" / "tidy-data"
    (source / "scripts").mkdir(parents=True)
    skill_md = "---\nname: tidy-data\ndescription: Tidies data.\n---\n# Tidy\n"
    (source / "SKILL.md").write_text(skill_md)
    (source / "scripts" / "run.py").write_text("print('tidy')\n")
    assert sorted(str(item[0]) for item in files_from_dir(source)) == [  # type: ignore[index]
        "tidy-data/SKILL.md",
        "tidy-data/scripts/run.py",
    ]
    async with anthropic.AsyncAnthropic(
        base_url=tcp_provider, api_key="test", max_retries=0, _strict_response_validation=True
    ) as sdk:
        skill = await sdk.beta.skills.create(files=await async_files_from_dir(source))
        assert skill.display_name == "tidy-data" and skill.source.type == "custom"
        agent = await sdk.beta.agents.create(
            name="a",
            model="claude-haiku-4-5",
            skills=[{"type": "custom", "skill_id": skill.id}],
        )
        env = await sdk.beta.environments.create(name="e")
        session = await sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
        assert session.agent.skills[0].version == skill.latest_version_id
        work = tmp_path / "work"
        made = await download_session_skills(sdk, workdir=work, session=session)
    assert made == [(work / "skills" / "tidy-data").resolve()]
    assert (made[0] / "SKILL.md").read_text() == skill_md
    assert (made[0] / "scripts" / "run.py").read_text() == "print('tidy')\n"


async def test_the_sdks_memory_store_sync_round_trips(tcp_provider: str, tmp_path: Path) -> None:
    """``SessionMemoryStores`` (the SDK worker's memory sync) downloads a session's store with
    a full-content listing, then pushes a local edit (an update with a ``content_sha256``
    precondition), a new file (a create) and a deletion (a delete with
    ``expected_content_sha256``). Only the mount path is moved under ``tmp_path``."""
    from anthropic.lib.tools._memories import SessionMemoryStores

    async with anthropic.AsyncAnthropic(
        base_url=tcp_provider, api_key="test", max_retries=0, _strict_response_validation=True
    ) as sdk:
        memories = sdk.beta.memory_stores.memories
        store = await sdk.beta.memory_stores.create(name="notes")
        for path, text in (("/a.md", "A"), ("/dir/b.md", "B"), ("/gone.md", "G")):
            await memories.create(store.id, path=path, content=text)
        agent = await sdk.beta.agents.create(name="a", model="claude-haiku-4-5")
        env = await sdk.beta.environments.create(name="e")
        session = await sdk.beta.sessions.create(
            agent=agent.id,
            environment_id=env.id,
            resources=[{"type": "memory_store", "memory_store_id": store.id}],
        )
        mounted = session.resources[0]
        assert mounted.type == "memory_store" and mounted.mount_path
        root = tmp_path / "mnt" / "notes"
        moved = mounted.model_copy(update={"mount_path": str(root)})
        sync = SessionMemoryStores(sdk, workdir=tmp_path / "work")
        await sync.download(session.model_copy(update={"resources": [moved]}))
        assert (root / "dir" / "b.md").read_text() == "B"
        (root / "a.md").write_text("A2")
        (root / "new.md").write_text("N")
        (root / "gone.md").unlink()
        await sync.finish()
        await sync.dispose()
        found = {m.path: m.content async for m in memories.list(store.id, view="full")}  # type: ignore[union-attr]
    assert found == {"/a.md": "A2", "/dir/b.md": "B", "/new.md": "N"}


async def test_the_sdks_session_tool_runner_reads_the_history_and_stops_when_idle(
    tcp_provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``sessions.events.tool_runner`` (the SDK's session-side tool loop) reads a session's
    history 1,000 events a page: the provider refused that ``limit`` (over 100), so the
    runner never learnt the session was idle and ran on until killed."""
    import asyncio

    async with anthropic.AsyncAnthropic(
        base_url=tcp_provider, api_key="test", max_retries=0, _strict_response_validation=True
    ) as sdk:
        b = sdk.beta
        agent = await b.agents.create(name="a", model="claude-haiku-4-5")
        env = await b.environments.create(name="e")
        session = await b.sessions.create(agent=agent.id, environment_id=env.id)
        await b.sessions.events.send(session.id, events=[MESSAGE])
        calls = []
        async with asyncio.timeout(20):
            async for call in b.sessions.events.tool_runner(session.id, tools=[], max_idle=0.5):
                calls.append(call)
    assert calls == []  # the local agent calls no tools: the runner only watched it go idle
    assert "reconcile list failed" not in caplog.text


# -- optimistic concurrency ---------------------------------------------------------------------


def test_concurrent_updates_at_one_version_let_exactly_one_through(provider_db: Path) -> None:
    """Eight clients, through two servers sharing one database, update the same agent at
    ``version=1`` at once: one gets version 2, the seven others a 409, and version 2 holds the
    winner's change, nothing else."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    with (
        BackgroundServer(create_app(provider_db)) as one,
        BackgroundServer(create_app(provider_db)) as two,
    ):
        with strict_sdk(one.url) as setup:
            agent = setup.beta.agents.create(name="racer", model="claude-haiku-4-5")
        start = Barrier(8)

        def update(i: int) -> str:
            with strict_sdk((one, two)[i % 2].url) as sdk:
                start.wait()
                try:
                    sdk.beta.agents.update(agent.id, version=1, system=f"writer {i}")
                except anthropic.ConflictError:
                    return "409"
                return f"writer {i}"

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(update, range(8)))
        winners = [o for o in outcomes if o != "409"]
        assert len(winners) == 1 and outcomes.count("409") == 7
        with strict_sdk(two.url) as sdk:
            final = sdk.beta.agents.retrieve(agent.id)
            assert final.version == 2 and final.system == winners[0]
            assert [v.version for v in sdk.beta.agents.versions.list(agent.id)] == [2, 1]


# -- required headers ---------------------------------------------------------------------------


def test_a_request_without_anthropic_version_is_refused_as_the_api_does(
    tcp_provider: str, counting: Counting
) -> None:
    """The API answers a request with no ``anthropic-version`` header 400 ``invalid_request_error``
    "anthropic-version: header is required" (any value is taken here: which versions the API
    knows is not ours to judge). The SDK always sends one; a client that forgets it fails."""
    with strict_sdk(
        tcp_provider, counting, default_headers={"anthropic-version": anthropic.omit}
    ) as bare:
        for call in (
            lambda: bare.beta.agents.list(),
            lambda: bare.beta.vaults.create(display_name="v"),
            lambda: bare.beta.skills.list(),
            lambda: bare.beta.memory_stores.list(),
        ):
            with pytest.raises(anthropic.BadRequestError, match="anthropic-version") as refused:
                call()
            assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        with pytest.raises(anthropic.NotFoundError):  # an unknown route stays a 404
            bare.get("/v1/no_such_route", cast_to=object)
    assert all("anthropic-version" not in h for h in counting.headers)
    with strict_sdk(tcp_provider, default_headers={"anthropic-version": "2023-06-01"}) as old:
        assert old.beta.vaults.list().data == []


# -- paths --------------------------------------------------------------------------------------


def test_a_trailing_slash_is_a_404_in_the_error_envelope_not_a_redirect(
    sdk: anthropic.Anthropic, counting: Counting
) -> None:
    """``GET /v1/agents/`` answered a bodiless 307 to ``/v1/agents``, which the SDK followed, so
    a client with a mistyped path passed here; the wire knows no such path, and an unknown path
    is a 404 ``not_found_error`` in the error envelope (a POST created nothing either)."""
    for call in (
        lambda: sdk.get("/v1/agents/", cast_to=object),
        lambda: sdk.post("/v1/agents/", cast_to=object, body={"name": "a", "model": "m"}),
        lambda: sdk.get("/v1/vaults/", cast_to=object),
    ):
        with pytest.raises(anthropic.NotFoundError) as refused:
            call()
        assert refused.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert [status for *_, status in counting.sent] == [404, 404, 404]
    assert sdk.beta.agents.list().data == []
