"""Contract: every Files API route through ``client.files``, in-process and over loopback TCP.

Each test taking ``api`` runs twice - through ``embedded_client`` and through
``ProviderClient(url)`` against uvicorn on 127.0.0.1 - with real multipart uploads; and the
``file`` resources of sessions and deployments must name a file that exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.errors import (
    BadRequestError,
    NotFoundError,
    ProviderError,
    ReconcilerError,
)
from reconciler.provider import FileUpload, ProviderClient
from reconciler.provider.local import create_app, routes_files
from reconciler.provider.local.faults import bucket_of
from reconciler.provider.local.store import Store
from reconciler.provider.wire import collection_kind, describe_target, rate_bucket

HELLO = {"type": "user.message", "content": [{"type": "text", "text": "hello there"}]}


async def test_upload_from_a_path_retrieve_and_download(
    api: ProviderClient, tmp_path: Path
) -> None:
    source = tmp_path / "notes.md"
    source.write_bytes(b"# Notes\n\xe2\x9c\x93 done\n")
    made = await api.files.upload(source)
    assert made["type"] == "file" and made["id"].startswith("file_")
    assert made["filename"] == "notes.md"
    assert made["mime_type"] == "text/markdown"
    assert made["size_bytes"] == len(source.read_bytes())
    assert made["downloadable"] is True
    assert made["expires_at"] is None and made["scope"] is None
    assert await api.files.retrieve(made["id"]) == made
    assert await api.files.download(made["id"]) == source.read_bytes()


async def test_upload_bytes_keeps_the_last_path_component_and_the_declared_type(
    api: ProviderClient,
) -> None:
    blob = bytes(range(256)) * 10
    made = await api.files.upload(blob, filename="data/raw/blob.bin", mime_type="image/png")
    assert (made["filename"], made["mime_type"], made["size_bytes"]) == (
        "blob.bin",
        "image/png",
        2560,
    )
    assert await api.files.download(made["id"]) == blob
    guessed = await api.files.upload(FileUpload("report.pdf", b"%PDF-1.7"))
    assert guessed["mime_type"] == "application/pdf"
    unknown = await api.files.upload(b"?", filename="no-extension")
    assert unknown["mime_type"] == "application/octet-stream"
    with pytest.raises(ReconcilerError, match="needs a filename"):
        await api.files.upload(b"x")


async def test_expiry_is_upload_time_plus_the_seconds(api: ProviderClient) -> None:
    made = await api.files.upload(b"x", filename="x.txt", expires_in_seconds=3600)
    from reconciler.provider.local.ids import parse_ts

    lived = parse_ts(made["expires_at"]) - parse_ts(made["created_at"])
    assert lived.total_seconds() == 3600
    for bad in (3599, 7_776_001):
        with pytest.raises(BadRequestError, match="expires_in_seconds must be between"):
            await api.files.upload(b"x", filename="x.txt", expires_in_seconds=bad)


async def test_list_is_newest_first_and_paged(api: ProviderClient) -> None:
    made = [await api.files.upload(f"{i}".encode(), filename=f"f{i}.txt") for i in range(7)]
    newest_first = [f["id"] for f in reversed(made)]
    api.stats.reset()
    pager = api.files.list()
    pager.params["limit"] = 3
    assert [f["id"] async for f in pager] == newest_first
    assert pager.pages_fetched == 3 and api.stats.requests == 3
    page = await api.request("GET", "/v1/files", params={"limit": 2})
    assert [f["id"] for f in page["data"]] == newest_first[:2]
    assert page["next_page"].startswith("page_")
    rest = await api.request("GET", "/v1/files", params={"limit": 10, "page": page["next_page"]})
    assert [f["id"] for f in rest["data"]] == newest_first[2:] and rest["next_page"] is None
    with pytest.raises(BadRequestError, match="page cursor"):
        await api.request("GET", "/v1/files", params={"page": "page_bogus"})
    # a session's files: none are made here
    assert await api.files.list(scope_id="sesn_011CZkYpogX7uDKUyvBTophP").to_list() == []


async def test_list_by_ids_is_one_page_of_those_that_exist(api: ProviderClient) -> None:
    a = await api.files.upload(b"a", filename="a.txt")
    b = await api.files.upload(b"b", filename="b.txt")
    await api.files.upload(b"c", filename="c.txt")
    found = api.files.list_ids([a["id"], "file_011CZkYpogX7uDKUyvBTophP", b["id"], a["id"]])
    assert [f["id"] for f in await found.to_list()] == [b["id"], a["id"]]
    with pytest.raises(BadRequestError, match="not be combined"):
        await api.request("GET", "/v1/files", params={"ids": [a["id"]], "limit": 5})
    with pytest.raises(BadRequestError, match="at most 100"):
        await api.files.list_ids([f"file_{i}" for i in range(101)]).to_list()


async def test_delete_then_every_route_is_a_404(api: ProviderClient) -> None:
    made = await api.files.upload(b"bye", filename="bye.txt")
    assert await api.files.delete(made["id"]) == {"id": made["id"], "type": "file_deleted"}
    for call in (api.files.retrieve, api.files.download, api.files.delete):
        with pytest.raises(NotFoundError, match=f"file {made['id']} not found") as caught:
            await call(made["id"])
        assert caught.value.error_code == "file_not_found"
    assert await api.files.list().to_list() == []


async def test_an_expired_file_keeps_its_metadata_but_not_its_bytes(
    api: ProviderClient, provider_db: Path
) -> None:
    made = await api.files.upload(b"soon gone", filename="t.txt", expires_in_seconds=3600)
    _expire(provider_db, made)
    assert (await api.files.retrieve(made["id"]))["expires_at"] == "2026-01-01T00:00:00.000000Z"
    with pytest.raises(NotFoundError, match="expired") as caught:
        await api.files.download(made["id"])
    assert caught.value.error_code == "file_expired"


async def test_a_file_marked_undownloadable_is_refused_as_the_api_does(
    api: ProviderClient, provider_db: Path
) -> None:
    made = await api.files.upload(b"kept", filename="k.txt")
    store = Store(provider_db)
    try:
        with store.write():
            store.replace(made["id"], {**made, "downloadable": False})
    finally:
        store.close()
    with pytest.raises(BadRequestError, match="cannot be downloaded") as caught:
        await api.files.download(made["id"])
    assert caught.value.error_code == "file_not_downloadable"


def _expire(db: Path, made: dict[str, Any]) -> None:
    """Move a file's ``expires_at`` into the past, as an hour's wait would."""
    store = Store(db)
    try:
        with store.write():
            store.replace(made["id"], {**made, "expires_at": "2026-01-01T00:00:00.000000Z"})
    finally:
        store.close()


async def test_an_oversized_file_is_a_413_and_nothing_is_stored(
    api: ProviderClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_files, "MAX_FILE_BYTES", 16)
    await api.files.upload(b"x" * 16, filename="fits.bin")
    with pytest.raises(ProviderError, match="at most 16 bytes") as caught:
        await api.files.upload(b"x" * 17, filename="big.bin")
    assert caught.value.status == 413 and caught.value.error_code == "file_too_large"
    assert [f["filename"] for f in await api.files.list().to_list()] == ["fits.bin"]


@pytest.fixture
async def bare(provider_url: str | None, provider_db: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx to the provider (in-process or TCP) with no key and no beta header."""
    if provider_url is None:
        transport = httpx.ASGITransport(create_app(provider_db))
        client = httpx.AsyncClient(transport=transport, base_url="http://local")
    else:
        client = httpx.AsyncClient(base_url=provider_url)
    async with client:
        yield client


async def test_files_need_a_key_but_no_beta(bare: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/v1/files"),
        ("POST", "/v1/files"),
        ("GET", "/v1/files/file_1"),
        ("GET", "/v1/files/file_1/content"),
        ("DELETE", "/v1/files/file_1"),
    ):
        refused = await bare.request(method, path)
        assert refused.status_code == 401, (method, path)
        assert refused.json()["error"]["type"] == "authentication_error"
    key = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    made = await bare.post("/v1/files", files={"file": ("a.csv", b"a,b\n")}, headers=key)
    assert made.status_code == 200, made.text
    assert made.json()["mime_type"] == "text/csv"
    listed = await bare.get("/v1/files", headers=key)
    assert [f["id"] for f in listed.json()["data"]] == [made.json()["id"]]


async def test_bad_uploads_are_refused_with_a_reason(bare: httpx.AsyncClient) -> None:
    key = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"json": {"file": "x"}}, "multipart/form-data"),
        ({"files": {"other": ("a.txt", b"a")}}, "not 'other'"),
        ({"data": {"expires_in_seconds": "3600"}, "files": {"x": ("a", b"")}}, "not 'x'"),
        ({"files": {"file": ("a.txt", b"a"), "expires_in_seconds": (None, "soon")}}, "integer"),
        ({"files": {"file": ("x" * 256, b"a")}}, "at most 255"),
        ({"files": {"expires_in_seconds": (None, "3600")}}, "`file` part is required"),
    ]
    for kwargs, words in cases:
        refused = await bare.post("/v1/files", headers=key, **kwargs)
        assert refused.status_code == 400, refused.text
        assert words in refused.json()["error"]["message"]
    # a body longer than the limit plus framing is refused before it is read
    routes_files.MAX_FILE_BYTES, limit = 16, routes_files.MAX_FILE_BYTES
    try:
        oversized = await bare.post(
            "/v1/files", headers=key, files={"file": ("big.bin", b"x" * 100_000)}
        )
    finally:
        routes_files.MAX_FILE_BYTES = limit
    assert oversized.status_code == 413
    assert (await bare.get("/v1/files", headers=key)).json()["data"] == []


async def test_an_empty_filename_becomes_unnamed_with_the_types_extension(
    bare: httpx.AsyncClient,
) -> None:
    key = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename=""\r\n'
        "Content-Type: application/json\r\n\r\n{}\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    made = await bare.post(
        "/v1/files",
        headers={**key, "content-type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )
    assert made.json()["filename"] == "unnamed.json", made.text
    download = await bare.get(f"/v1/files/{made.json()['id']}/content", headers=key)
    assert download.content == b"{}"
    assert download.headers["content-type"].startswith("application/json")
    odd = await bare.post("/v1/files", headers=key, files={"file": ('été "q".txt', b"x")})
    got = await bare.get(f"/v1/files/{odd.json()['id']}/content", headers=key)
    assert (
        got.status_code == 200
        and "filename*=UTF-8''%C3%A9t%C3%A9" in (got.headers["content-disposition"])
    )


# --------------------------------------------------------------------------- references


async def _agent_and_env(api: ProviderClient) -> tuple[str, str]:
    agent = await api.agents.create({"name": "coder", "model": "claude-sonnet-4-6"})
    env = await api.environments.create({"name": "python"})
    return agent["id"], env["id"]


async def test_sessions_mount_existing_files_only(api: ProviderClient, provider_db: Path) -> None:
    agent_id, env_id = await _agent_and_env(api)
    data = await api.files.upload(b"a,b\n1,2\n", filename="data.csv")

    def with_files(*resources: dict[str, Any]) -> dict[str, Any]:
        return {"agent": agent_id, "environment_id": env_id, "resources": list(resources)}

    session = await api.sessions.create(
        with_files(
            {"type": "file", "file_id": data["id"]},
            {"type": "file", "file_id": data["id"], "mount_path": "/data/in.csv"},
        )
    )
    assert [(r["type"], r["file_id"], r["mount_path"]) for r in session["resources"]] == [
        ("file", data["id"], f"/mnt/session/uploads/{data['id']}"),
        ("file", data["id"], "/data/in.csv"),
    ]
    missing = "file_011CZkYpogX7uDKUyvBTophP"
    with pytest.raises(NotFoundError, match=f"file {missing} not found") as caught:
        await api.sessions.create(with_files({"type": "file", "file_id": missing}))
    assert caught.value.error_code == "file_not_found"
    soon = await api.files.upload(b"x", filename="x.txt", expires_in_seconds=3600)
    _expire(provider_db, soon)
    with pytest.raises(NotFoundError, match="expired") as expired:
        await api.sessions.create(with_files({"type": "file", "file_id": soon["id"]}))
    assert expired.value.error_code == "file_expired"
    assert [s["id"] for s in await api.sessions.list().to_list()] == [session["id"]]


async def test_deployments_check_their_files_and_runs_report_deleted_ones(
    api: ProviderClient,
) -> None:
    agent_id, env_id = await _agent_and_env(api)
    data = await api.files.upload(b"rows", filename="rows.txt")
    resource = {"type": "file", "file_id": data["id"], "mount_path": "/data/rows.txt"}
    body = {
        "name": "nightly",
        "agent": agent_id,
        "environment_id": env_id,
        "initial_events": [HELLO],
    }
    missing = {"type": "file", "file_id": "file_011CZkYpogX7uDKUyvBTophP"}
    with pytest.raises(NotFoundError, match="file_011CZkYpogX7uDKUyvBTophP"):
        await api.deployments.create({**body, "resources": [missing]})
    dep = await api.deployments.create({**body, "resources": [resource]})
    assert dep["resources"] == [resource]
    run = await api.deployments.run(dep["id"])
    session = await api.sessions.retrieve(run["session_id"])
    assert session["resources"][0]["mount_path"] == "/data/rows.txt"

    with pytest.raises(NotFoundError):
        await api.deployments.update(dep["id"], {"resources": [missing]})
    await api.files.delete(data["id"])
    failed = await api.deployments.run(dep["id"])
    assert failed["session_id"] is None
    assert failed["error"]["type"] == "file_not_found_error"
    assert data["id"] in failed["error"]["message"]
    fresh = await api.files.upload(b"rows", filename="rows.txt")
    fixed = await api.deployments.update(
        dep["id"], {"resources": [{"type": "file", "file_id": fresh["id"]}]}
    )
    assert fixed["resources"] == [{"type": "file", "file_id": fresh["id"]}]
    assert (await api.deployments.run(dep["id"]))["session_id"] is not None


# --------------------------------------------------------------------------- the client alone


def test_a_path_that_cannot_be_uploaded_is_refused_before_sending(tmp_path: Path) -> None:
    with pytest.raises(ReconcilerError, match="is a folder"):
        FileUpload.from_path(tmp_path)
    with pytest.raises(ReconcilerError, match="cannot read file"):
        FileUpload.from_path(tmp_path / "missing.txt")
    with pytest.raises(ReconcilerError, match="multipart upload"):
        FileUpload('say "hi".txt', b"")


def test_file_paths_in_the_wire_vocabulary() -> None:
    assert rate_bucket("POST", "/v1/files") == "files create"
    assert rate_bucket("GET", "/v1/files/file_1/content") == "files"
    assert bucket_of("POST", "/v1/files") == "files create"
    assert bucket_of("DELETE", "/v1/files/file_1") == "files"
    assert describe_target("/v1/files/file_1/content") == ("file", "file_1")
    assert describe_target("/v1/files") == ("file", None)
    assert collection_kind("/v1/files") == "file"


async def test_downloads_ask_for_a_binary_body_as_the_sdk_does(tmp_path: Path) -> None:
    """The SDK sends ``Accept: application/binary`` for file and skill-version downloads;
    the client's JSON default would ask the real API for the wrong representation."""
    seen: list[str] = []

    class Recording(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.ASGITransport(app=create_app(tmp_path / "p.db"))

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(f"{request.method} {request.url.path} {request.headers['accept']}")
            return await self.inner.handle_async_request(request)

    async with ProviderClient("http://local.test", api_key="k", transport=Recording()) as client:
        made = await client.files.upload(b"abc", filename="a.txt")
        assert await client.files.download(made["id"]) == b"abc"
    assert seen[-1] == f"GET /v1/files/{made['id']}/content application/binary"
    assert seen[0].endswith("application/json")


async def test_an_outcome_rubric_given_as_a_file_must_name_a_usable_file(
    api: ProviderClient,
) -> None:
    """A ``user.define_outcome`` rubric ``{type: file, file_id}`` is a file reference too: a
    session's event and a deployment's initial events are refused when the file is unknown."""
    agent_id, env_id = await _agent_and_env(api)
    rubric = await api.files.upload(b'Names "PR 42".', filename="rubric.md")
    missing = "file_011CZkYpogX7uDKUyvBTophP"

    def outcome(file_id: str) -> dict[str, Any]:
        return {
            "type": "user.define_outcome",
            "description": "Review PR 42",
            "rubric": {"type": "file", "file_id": file_id},
        }

    session = await api.sessions.create({"agent": agent_id, "environment_id": env_id})
    with pytest.raises(NotFoundError, match=f"file {missing} not found"):
        await api.sessions.send_events(session["id"], [outcome(missing)])
    assert await api.sessions.list_events(session["id"]).to_list() == []
    sent = await api.sessions.send_events(session["id"], [outcome(rubric["id"])])
    assert sent[0]["rubric"] == {"type": "file", "file_id": rubric["id"]}

    body = {"name": "graded", "agent": agent_id, "environment_id": env_id}
    with pytest.raises(NotFoundError, match=f"file {missing} not found"):
        await api.deployments.create({**body, "initial_events": [outcome(missing)]})
    dep = await api.deployments.create({**body, "initial_events": [outcome(rubric["id"])]})
    with pytest.raises(NotFoundError, match=f"file {missing} not found"):
        await api.deployments.update(dep["id"], {"initial_events": [outcome(missing)]})
