"""Contract: memory stores, memories and memory versions through the client, in-process and
over loopback TCP (as ``test_contract.py``): every route, its limits and its typed errors,
and the ``memory_store`` resources of sessions and deployments."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reconciler.errors import BadRequestError, ConflictError, NotFoundError
from reconciler.provider import ProviderClient
from reconciler.provider.memory_stores import content_sha256

pytestmark = pytest.mark.anyio

HELLO = {"type": "user.message", "content": [{"type": "text", "text": "hello there"}]}


async def new_store(api: ProviderClient, name: str = "User Preferences", **body: Any) -> Any:
    return await api.memory_stores.create({"name": name, **body})


# --------------------------------------------------------------------------- stores


async def test_store_create_retrieve_update_with_server_defaults(api: ProviderClient) -> None:
    store = await new_store(api)
    assert store["type"] == "memory_store" and store["id"].startswith("memstore_")
    assert (store["description"], store["metadata"], store["archived_at"]) == ("", {}, None)
    assert store["created_at"] == store["updated_at"]
    assert await api.memory_stores.retrieve(store["id"]) == store

    store = await api.memory_stores.update(
        store["id"], {"description": "what the user likes", "metadata": {"a": "1", "b": "2"}}
    )
    assert (store["description"], store["metadata"]) == (
        "what the user likes",
        {"a": "1", "b": "2"},
    )
    patched = await api.memory_stores.update(
        store["id"], {"metadata": {"a": None, "c": "3"}, "description": ""}
    )
    assert (patched["description"], patched["metadata"]) == ("", {"b": "2", "c": "3"})
    renamed = await api.memory_stores.update(store["id"], {"name": "Prefs", "description": None})
    assert (renamed["name"], renamed["description"]) == ("Prefs", "")
    unchanged = await api.memory_stores.update(store["id"], {})
    assert unchanged == renamed, "an update that changes nothing keeps updated_at"


async def test_store_names_are_not_unique(api: ProviderClient) -> None:
    one, two = await new_store(api, "same"), await new_store(api, "same")
    assert one["id"] != two["id"]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "tab\there"}, "control"),
        ({"name": "n", "description": "d" * 1025}, "description"),
        ({"name": "n", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"name": "n", "metadata": {"k": "v" * 513}}, "metadata"),
        ({"name": "n", "scope": "account"}, "scope"),
    ],
)
async def test_store_limits(api: ProviderClient, body: dict[str, Any], word: str) -> None:
    with pytest.raises(BadRequestError, match=word):
        await api.memory_stores.create(body)
    assert await api.memory_stores.list(include_archived=True).to_list() == []


async def test_store_list_pages_filters_and_archive(api: ProviderClient) -> None:
    slots = asyncio.Semaphore(8)

    async def make(i: int) -> dict[str, Any]:
        async with slots:
            return dict(await new_store(api, f"store-{i:03d}"))

    made = [await make(0), *await asyncio.gather(*(make(i) for i in range(1, 205)))]
    api.stats.reset()
    listed = await api.memory_stores.list().to_list()
    assert [s["id"] for s in listed] == [
        s["id"] for s in sorted(made, key=lambda s: s["created_at"])
    ]
    assert api.stats.requests == 3, "205 stores are 3 pages of 100"

    gone = await api.memory_stores.archive(made[0]["id"])
    assert gone["archived_at"] is not None and gone["updated_at"] == gone["archived_at"]
    assert await api.memory_stores.archive(made[0]["id"]) == gone, "archiving twice is a no-op"
    assert made[0]["id"] not in {s["id"] for s in await api.memory_stores.list().to_list()}
    every = await api.memory_stores.list(include_archived=True).to_list()
    assert len(every) == 205
    since = await api.memory_stores.list(created_at_gte=made[-1]["created_at"]).to_list()
    assert made[-1]["id"] in {s["id"] for s in since} and len(since) < 205
    before = await api.memory_stores.list(created_at_lte=made[1]["created_at"]).to_list()
    assert [s["id"] for s in before] == [made[1]["id"]]


async def test_archive_is_final_and_refuses_writes(api: ProviderClient) -> None:
    store = await new_store(api)
    sid = store["id"]
    kept = await api.memory_stores.memories.create(sid, "/kept.md", "keep me")
    await api.memory_stores.archive(sid)
    with pytest.raises(BadRequestError, match="archived"):
        await api.memory_stores.update(sid, {"name": "again"})
    with pytest.raises(BadRequestError, match="archived") as refused:
        await api.memory_stores.memories.create(sid, "/new.md", "x")
    assert refused.value.error_code == "memory_store_archived"
    with pytest.raises(BadRequestError, match="archived"):
        await api.memory_stores.memories.update(sid, kept["id"], content="changed")
    # still readable, deletable and redactable
    assert (await api.memory_stores.memories.retrieve(sid, kept["id"]))["content"] == "keep me"
    version = await api.memory_stores.versions.redact(sid, kept["memory_version_id"])
    assert version["redacted_at"] is not None
    assert (await api.memory_stores.memories.delete(sid, kept["id"]))["type"] == "memory_deleted"


async def test_delete_removes_the_store_with_every_memory_and_version(
    api: ProviderClient,
) -> None:
    store = await new_store(api)
    memory = await api.memory_stores.memories.create(store["id"], "/a.md", "a")
    deleted = await api.memory_stores.delete(store["id"])
    assert deleted == {"id": store["id"], "type": "memory_store_deleted"}
    with pytest.raises(NotFoundError, match=f"memory store {store['id']} not found"):
        await api.memory_stores.retrieve(store["id"])
    with pytest.raises(NotFoundError):
        await api.memory_stores.memories.retrieve(store["id"], memory["id"])
    with pytest.raises(NotFoundError):
        await api.memory_stores.versions.list(store["id"]).to_list()
    with pytest.raises(NotFoundError):
        await api.memory_stores.delete(store["id"])


# --------------------------------------------------------------------------- memories


async def test_memory_create_retrieve_and_views(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    text = "Always use tabs. ünïcode"
    memory = await api.memory_stores.memories.create(sid, "/prefs/format.md", text)
    assert memory["type"] == "memory" and memory["id"].startswith("mem_")
    assert memory["content"] is None, "create defaults to view=basic"
    assert memory["content_sha256"] == content_sha256(text)
    assert memory["content_size_bytes"] == len(text.encode())
    assert memory["memory_version_id"].startswith("memver_")
    assert memory["memory_store_id"] == sid and memory["path"] == "/prefs/format.md"
    full = await api.memory_stores.memories.retrieve(sid, memory["id"])
    assert full == {**memory, "content": text}, "retrieve defaults to view=full"
    basic = await api.memory_stores.memories.retrieve(sid, memory["id"], view="basic")
    assert basic == memory
    shown = await api.memory_stores.memories.create(sid, "/b.md", "", view="full")
    assert (shown["content"], shown["content_size_bytes"]) == ("", 0)


@pytest.mark.parametrize(
    "path",
    [
        "notes.md",
        "/",
        "/a//b",
        "/a/",
        "/./a",
        "/a/..",
        "/" + "/".join("s" * 21),
        "/bell\x07",
        "/zero\u200bwidth",
        "/line\u2028sep",
        "/e\u0301",  # not NFC
        "/" + "é" * 600,  # 1,201 bytes
    ],
)
async def test_memory_path_rules(api: ProviderClient, path: str) -> None:
    sid = (await new_store(api))["id"]
    with pytest.raises(BadRequestError, match="path"):
        await api.memory_stores.memories.create(sid, path, "x")
    assert await api.memory_stores.memories.list(sid).to_list() == []


async def test_memory_limits_that_hold(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    deep = "/" + "/".join("s" * 20)
    assert (await api.memory_stores.memories.create(sid, deep, "x"))["path"] == deep
    big = "x" * 102_400
    assert (await api.memory_stores.memories.create(sid, "/big", big))[
        "content_size_bytes"
    ] == 102_400
    with pytest.raises(BadRequestError, match="100 kB"):
        await api.memory_stores.memories.create(sid, "/too-big", big + "y")
    with pytest.raises(BadRequestError, match="100 kB"):
        await api.memory_stores.memories.create(sid, "/multi", "é" * 51_201)
    with pytest.raises(BadRequestError, match="content"):
        await api.request("POST", f"/v1/memory_stores/{sid}/memories", json={"path": "/n"})
    deepest = await api.memory_stores.memories.list(sid, depth=100).to_list()
    assert {m["path"] for m in deepest} == {deep, "/big"}
    with pytest.raises(NotFoundError, match="memory store memstore_missing"):
        await api.memory_stores.memories.create("memstore_missing", "/a", "x")


async def test_a_taken_path_is_a_conflict_naming_the_memory(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    first = await api.memory_stores.memories.create(sid, "/a.md", "one")
    other = await api.memory_stores.memories.create(sid, "/A.md", "paths are case-sensitive")
    with pytest.raises(ConflictError) as taken:
        await api.request(
            "POST", f"/v1/memory_stores/{sid}/memories", json={"path": "/a.md", "content": "2"}
        )
    assert taken.value.error_type == "memory_path_conflict_error"
    assert first["id"] in str(taken.value)
    with pytest.raises(ConflictError, match=first["id"]):
        await api.memory_stores.memories.update(sid, other["id"], path="/a.md")
    assert api.stats.retries == 0, "a 409 is final"


async def test_update_renames_and_rewrites_with_a_precondition(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    memories = api.memory_stores.memories
    memory = await memories.create(sid, "/prefs.md", "tabs")
    renamed = await memories.update(sid, memory["id"], path="/archive/prefs.md")
    assert (renamed["id"], renamed["path"]) == (memory["id"], "/archive/prefs.md")
    assert renamed["content_sha256"] == memory["content_sha256"]
    assert renamed["memory_version_id"] != memory["memory_version_id"]
    assert await memories.find(sid, "/prefs.md") is None

    rewritten = await memories.update(
        sid, memory["id"], content="spaces", expected_sha256=content_sha256("tabs"), view="full"
    )
    assert (rewritten["content"], rewritten["path"]) == ("spaces", "/archive/prefs.md")
    with pytest.raises(ConflictError) as stale:
        await memories.update(
            sid, memory["id"], content="lost", expected_sha256=memory["content_sha256"]
        )
    assert stale.value.error_type == "memory_precondition_failed_error"
    assert (await memories.retrieve(sid, memory["id"]))["content"] == "spaces"
    with pytest.raises(BadRequestError, match="precondition"):
        await api.request(
            "POST",
            f"/v1/memory_stores/{sid}/memories/{memory['id']}",
            json={"content": "x", "precondition": {"type": "content_sha256"}},
        )
    with pytest.raises(BadRequestError, match="precondition"):
        await api.request(
            "POST",
            f"/v1/memory_stores/{sid}/memories/{memory['id']}",
            json={"content": "x", "precondition": {"type": "etag", "content_sha256": "0" * 64}},
        )
    same = await memories.update(sid, memory["id"], content="spaces")
    assert same["memory_version_id"] == rewritten["memory_version_id"], "no change, no version"
    with pytest.raises(NotFoundError, match="memory mem_missing"):
        await memories.update(sid, "mem_missing", content="x")


async def test_delete_with_expected_sha256(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    memories = api.memory_stores.memories
    memory = await memories.create(sid, "/a.md", "a")
    with pytest.raises(ConflictError) as stale:
        await memories.delete(sid, memory["id"], expected_sha256=content_sha256("b"))
    assert stale.value.error_type == "memory_precondition_failed_error"
    assert (await memories.retrieve(sid, memory["id"]))["id"] == memory["id"]
    gone = await memories.delete(sid, memory["id"], expected_sha256=content_sha256("a"))
    assert gone == {"id": memory["id"], "type": "memory_deleted"}
    with pytest.raises(NotFoundError, match=memory["id"]):
        await memories.retrieve(sid, memory["id"])
    again = await memories.create(sid, "/a.md", "a")  # the path is free again
    assert again["id"] != memory["id"]


async def test_list_by_prefix_depth_and_view(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    paths = ["/a.md", "/notes/x.md", "/notes/deep/y.md", "/notes-archive/z.md", "/z/1/2/3.md"]
    for path in paths:
        await api.memory_stores.memories.create(sid, path, f"text of {path}")
    memories = api.memory_stores.memories

    def shape(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(i["type"], i["path"]) for i in items]

    every = await memories.list(sid).to_list()
    assert [i["path"] for i in every] == sorted(paths)
    assert all(i["content"] is None for i in every), "list defaults to view=basic"
    assert shape(await memories.list(sid, path_prefix="/notes/").to_list()) == [
        ("memory", "/notes/deep/y.md"),
        ("memory", "/notes/x.md"),
    ]
    assert shape(await memories.list(sid, depth=1).to_list()) == [
        ("memory", "/a.md"),
        ("memory_prefix", "/notes-archive/"),
        ("memory_prefix", "/notes/"),
        ("memory_prefix", "/z/"),
    ]
    assert shape(await memories.list(sid, path_prefix="/notes/", depth=1).to_list()) == [
        ("memory_prefix", "/notes/deep/"),
        ("memory", "/notes/x.md"),
    ]
    assert shape(await memories.list(sid, path_prefix="/z/", depth=2).to_list()) == [
        ("memory_prefix", "/z/1/2/")
    ]
    full = await memories.list(sid, path_prefix="/notes/", view="full").to_list()
    assert [i["content"] for i in full] == ["text of /notes/deep/y.md", "text of /notes/x.md"]
    for bad in ("/notes", "notes/", "/a//"):
        with pytest.raises(BadRequestError, match="path_prefix"):
            await memories.list(sid, path_prefix=bad).to_list()


async def test_list_pages_count_prefixes_and_cap_full_views(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    slots = asyncio.Semaphore(8)

    async def make(path: str) -> None:
        async with slots:
            await api.memory_stores.memories.create(sid, path, "x")

    await asyncio.gather(*(make(f"/m{i:02d}.md") for i in range(45)))
    await asyncio.gather(*(make(f"/dir{i}/inner/x.md") for i in range(5)))
    by_two = await api.request(
        "GET", f"/v1/memory_stores/{sid}/memories", params={"limit": 2, "depth": 1}
    )
    assert len(by_two["data"]) == 2 and by_two["next_page"]
    walked: list[str] = []
    page = None
    while True:
        params: dict[str, Any] = {"limit": 3, "depth": 1, **({"page": page} if page else {})}
        body = await api.request("GET", f"/v1/memory_stores/{sid}/memories", params=params)
        assert len(body["data"]) <= 3
        walked += [i["path"] for i in body["data"]]
        page = body["next_page"]
        if page is None:
            break
    assert walked[:5] == [f"/dir{i}/" for i in range(5)], "prefixes are items of the page"
    assert len(walked) == 50 and len(set(walked)) == 50
    full = await api.request(
        "GET", f"/v1/memory_stores/{sid}/memories", params={"limit": 100, "view": "full"}
    )
    assert len(full["data"]) == 20 and full["next_page"], "a full page holds at most 20"
    api.stats.reset()
    assert len(await api.memory_stores.memories.list(sid, view="full").to_list()) == 50
    assert api.stats.requests == 3
    with pytest.raises(BadRequestError, match="cursor"):
        await api.request(
            "GET",
            f"/v1/memory_stores/{sid}/memories",
            params={"page": by_two["next_page"], "depth": 2},
        )


# --------------------------------------------------------------------------- versions


async def test_versions_are_an_append_only_history_newest_first(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    memories, versions = api.memory_stores.memories, api.memory_stores.versions
    memory = await memories.create(sid, "/a.md", "one")
    await memories.update(sid, memory["id"], content="two")
    moved = await memories.update(sid, memory["id"], path="/b.md")
    other = await memories.create(sid, "/other.md", "x")
    await memories.delete(sid, memory["id"])

    history = await versions.list(sid, memory_id=memory["id"]).to_list()
    assert [v["operation"] for v in history] == ["deleted", "modified", "modified", "created"]
    assert [v["path"] for v in history] == ["/b.md", "/b.md", "/a.md", "/a.md"]
    assert all(v["content"] is None for v in history), "list defaults to view=basic"
    assert history[0]["content_sha256"] is None and history[0]["content_size_bytes"] is None
    assert history[1]["id"] == moved["memory_version_id"]
    assert history[3]["content_sha256"] == content_sha256("one")
    assert history[3]["created_by"]["type"] == "api_actor"
    every = await versions.list(sid).to_list()
    assert len(every) == 5 and every[1]["memory_id"] == other["id"]
    assert [v["id"] for v in await versions.list(sid, operation="created").to_list()] == [
        other["memory_version_id"],
        history[3]["id"],
    ]
    full = await versions.list(sid, memory_id=memory["id"], view="full").to_list()
    assert [v["content"] for v in full] == [None, "two", "two", "one"]
    assert await versions.list(sid, session_id="sesn_none").to_list() == []
    assert (
        len(await versions.list(sid, api_key_id=history[3]["created_by"]["api_key_id"]).to_list())
        == 5
    )
    assert await versions.list(sid, created_at_gte="2999-01-01T00:00:00Z").to_list() == []

    first = await versions.retrieve(sid, history[3]["id"])
    assert (first["content"], first["redacted_at"]) == ("one", None), "retrieve is view=full"
    assert (await versions.retrieve(sid, history[3]["id"], view="basic"))["content"] is None

    redacted = await versions.redact(sid, history[3]["id"])
    assert redacted["redacted_at"] is not None and redacted["redacted_by"]["type"] == "api_actor"
    assert [redacted[k] for k in ("content", "path", "content_sha256", "content_size_bytes")] == [
        None
    ] * 4
    assert (redacted["operation"], redacted["created_by"]) == ("created", first["created_by"])
    assert await versions.redact(sid, history[3]["id"]) == redacted, "redacting is idempotent"
    assert await versions.retrieve(sid, history[3]["id"]) == redacted
    with pytest.raises(NotFoundError, match="memory version memver_missing"):
        await versions.retrieve(sid, "memver_missing")


async def test_versions_page_by_page(api: ProviderClient) -> None:
    sid = (await new_store(api))["id"]
    memory = await api.memory_stores.memories.create(sid, "/a.md", "0")
    for i in range(1, 130):
        await api.memory_stores.memories.update(sid, memory["id"], content=str(i))
    api.stats.reset()
    history = await api.memory_stores.versions.list(sid).to_list()
    assert len(history) == 130 and api.stats.requests == 2
    assert (
        history[0]["id"]
        == (await api.memory_stores.memories.retrieve(sid, memory["id"]))["memory_version_id"]
    )


# --------------------------------------------------------------------------- references


async def _agent_and_env(api: ProviderClient) -> tuple[str, str]:
    agent = await api.agents.create({"name": "coder", "model": "claude-sonnet-4-6"})
    env = await api.environments.create({"name": "python"})
    return agent["id"], env["id"]


async def test_a_session_mounts_its_memory_stores(api: ProviderClient) -> None:
    agent_id, env_id = await _agent_and_env(api)
    prefs = await new_store(api, "User Preferences!", description="what they like")
    twin = await new_store(api, "user  preferences")
    docs = await new_store(api, "Docs")
    session = await api.sessions.create(
        {
            "agent": agent_id,
            "environment_id": env_id,
            "resources": [
                {"type": "memory_store", "memory_store_id": prefs["id"], "instructions": "read"},
                {"type": "memory_store", "memory_store_id": twin["id"], "access": "read_only"},
                {"type": "memory_store", "memory_store_id": docs["id"]},
            ],
        }
    )
    assert session["resources"] == [
        {
            "type": "memory_store",
            "memory_store_id": prefs["id"],
            "access": "read_write",
            "instructions": "read",
            "mount_path": "/mnt/memory/user-preferences",
            "name": "User Preferences!",
            "description": "what they like",
        },
        {
            "type": "memory_store",
            "memory_store_id": twin["id"],
            "access": "read_only",
            "instructions": None,
            "mount_path": "/mnt/memory/user-preferences-2",
            "name": "user  preferences",
            "description": "",
        },
        {
            "type": "memory_store",
            "memory_store_id": docs["id"],
            "access": "read_write",
            "instructions": None,
            "mount_path": "/mnt/memory/docs",
            "name": "Docs",
            "description": "",
        },
    ]
    found = await api.sessions.list(memory_store_id=twin["id"]).to_list()
    assert [s["id"] for s in found] == [session["id"]]
    # a snapshot: renaming the store later leaves the session's resource as it was
    await api.memory_stores.update(prefs["id"], {"name": "Renamed"})
    again = await api.sessions.retrieve(session["id"])
    assert again["resources"][0]["name"] == "User Preferences!"


async def test_sessions_refuse_unknown_archived_repeated_or_too_many_stores(
    api: ProviderClient,
) -> None:
    agent_id, env_id = await _agent_and_env(api)

    def with_stores(*ids: str) -> dict[str, Any]:
        resources = [{"type": "memory_store", "memory_store_id": i} for i in ids]
        return {"agent": agent_id, "environment_id": env_id, "resources": resources}

    with pytest.raises(NotFoundError, match="memory store memstore_missing not found") as missing:
        await api.sessions.create(with_stores("memstore_missing"))
    assert missing.value.error_code == "memory_store_not_found"
    store = await new_store(api)
    with pytest.raises(BadRequestError, match="twice"):
        await api.sessions.create(with_stores(store["id"], store["id"]))
    many = [(await new_store(api, f"s{i}"))["id"] for i in range(9)]
    with pytest.raises(BadRequestError, match="at most 8"):
        await api.sessions.create(with_stores(*many))
    assert len((await api.sessions.create(with_stores(*many[:8])))["resources"]) == 8
    await api.memory_stores.archive(store["id"])
    with pytest.raises(BadRequestError, match="archived") as archived:
        await api.sessions.create(with_stores(store["id"]))
    assert archived.value.error_code == "memory_store_archived"
    assert len(await api.sessions.list().to_list()) == 1, "refused sessions were not created"


async def test_deployments_check_their_memory_stores_and_runs_report_archived_ones(
    api: ProviderClient,
) -> None:
    agent_id, env_id = await _agent_and_env(api)
    store = await new_store(api, "Team Notes")
    resource = {"type": "memory_store", "memory_store_id": store["id"], "access": "read_only"}
    body = {
        "name": "nightly",
        "agent": agent_id,
        "environment_id": env_id,
        "initial_events": [HELLO],
    }
    with pytest.raises(NotFoundError, match="memstore_missing"):
        await api.deployments.create(
            {**body, "resources": [{"type": "memory_store", "memory_store_id": "memstore_missing"}]}
        )
    dep = await api.deployments.create({**body, "resources": [resource]})
    assert dep["resources"] == [resource]
    run = await api.deployments.run(dep["id"])
    session = await api.sessions.retrieve(run["session_id"])
    assert session["resources"][0]["mount_path"] == "/mnt/memory/team-notes"
    assert session["resources"][0]["access"] == "read_only"

    await api.memory_stores.archive(store["id"])
    failed = await api.deployments.run(dep["id"])
    assert failed["session_id"] is None
    assert failed["error"]["type"] == "memory_store_archived_error"
    with pytest.raises(BadRequestError, match="archived"):
        await api.deployments.update(dep["id"], {"resources": [resource]})
    await api.memory_stores.delete(store["id"])
    gone = await api.deployments.run(dep["id"])
    assert gone["error"]["type"] == "session_resource_not_found_error"
    fresh = await new_store(api, "Fresh")
    fixed = await api.deployments.update(
        dep["id"], {"resources": [{"type": "memory_store", "memory_store_id": fresh["id"]}]}
    )
    assert fixed["resources"][0]["memory_store_id"] == fresh["id"]
    assert (await api.deployments.run(dep["id"]))["session_id"] is not None


async def test_content_with_a_lone_surrogate_is_refused(http: Any) -> None:
    """It has no UTF-8 bytes, so no ``content_sha256``: a 400, not a 500 (plain httpx: the
    client would not encode it)."""
    sid = (await http.post("/v1/memory_stores", json={"name": "n"})).json()["id"]
    r = await http.post(
        f"/v1/memory_stores/{sid}/memories",
        content=b'{"path": "/s", "content": "half \\ud800 a pair"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "content" in r.json()["error"]["message"], r.text
