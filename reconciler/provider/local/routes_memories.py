"""HTTP routes of memories and memory versions, inside one memory store.

A memory is ``{path, content}``; its id stays when it is renamed. Every change appends one
memory version (``created``, ``modified``, ``deleted``); an update that changes nothing
appends none. Paths are unique in a store: creating or renaming onto a taken path is a 409
``memory_path_conflict_error`` naming ``conflicting_memory_id``. An update's ``precondition``
and a delete's ``expected_content_sha256`` assert the stored ``content_sha256``: when stale,
a 409 ``memory_precondition_failed_error`` and nothing changes. An archived store refuses
creates and updates (400) but still reads, deletes memories and redacts versions.

``view``: ``basic`` sets ``content`` to null, ``full`` includes it; retrieve defaults to
full, list/create/update to basic; a ``full`` list page holds at most 20 items. Memories list
in path (byte) order; ``depth`` N > 0 lists what lies at most N segments below
``path_prefix`` and rolls deeper memories into ``memory_prefix`` items (each counting toward
``limit``). Versions list newest first. Writes through the API are by an ``api_actor``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from . import memory_db
from .context import Ctx, require
from .errors import ApiError, bad_request, not_found
from .ids import new_id, now_ts
from .listing import Created, Paged
from .paging import decode_cursor, decode_page, encode_page, json_response, page_response
from .schemas_memory import (
    MemoryCreate,
    MemoryUpdate,
    check_content,
    check_path,
    check_prefix,
)
from .store import Store

View = Literal["basic", "full"]
FULL_PAGE = 20
#: who a write through the API is: the local provider takes any key, so it names one
API_ACTOR = {"type": "api_actor", "api_key_id": "apikey_01LocalProviderKey00000000"}

router = APIRouter(tags=["memory stores"])


def _sha(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _size(content: str) -> int:
    return len(content.encode("utf-8"))


def _show(item: dict[str, Any], view: View) -> dict[str, Any]:
    return item if view == "full" else {**item, "content": None}


def _writable(store: Store, store_id: str) -> None:
    data = require(store, "memory_store", store_id).data
    if data.get("archived_at"):
        raise ApiError(
            400,
            f"memory store {store_id} is archived; its memories cannot be created or changed",
            error_code="memory_store_archived",
        )


def _in_store(
    store: Store,
    store_id: str,
    label: str,
    object_id: str,
    lookup: Callable[[Store, str, str], dict[str, Any] | None],
) -> dict[str, Any]:
    """A memory or memory version of an existing store, or a 404 naming it."""
    require(store, "memory_store", store_id)
    found = lookup(store, store_id, object_id)
    if found is None:
        raise not_found(label, object_id)
    return found


def _memory(store: Store, store_id: str, memory_id: str) -> dict[str, Any]:
    return _in_store(store, store_id, "memory", memory_id, memory_db.get_memory)


def _path_free(store: Store, store_id: str, path: str) -> None:
    other = memory_db.memory_at(store, store_id, path)
    if other is not None:
        raise ApiError(
            409,
            f"a memory already exists at {path} ({other['id']})",
            error_type="memory_path_conflict_error",
            headers={"x-should-retry": "false"},
            details={"conflicting_memory_id": other["id"]},
        )


def _stale(memory: dict[str, Any], expected: str) -> ApiError:
    return ApiError(
        409,
        f"memory {memory['id']} changed: its content_sha256 is {memory['content_sha256']}, "
        f"not {expected}; read it again",
        error_type="memory_precondition_failed_error",
        headers={"x-should-retry": "false"},
    )


def _record(store: Store, memory: dict[str, Any], operation: str, now: str) -> str:
    """Append the version of one change; returns its id."""
    deleted = operation == "deleted"
    version = {
        "type": "memory_version",
        "id": new_id("memory_version"),
        "memory_id": memory["id"],
        "memory_store_id": memory["memory_store_id"],
        "operation": operation,
        "path": memory["path"],
        "content": None if deleted else memory["content"],
        "content_sha256": None if deleted else memory["content_sha256"],
        "content_size_bytes": None if deleted else memory["content_size_bytes"],
        "created_at": now,
        "created_by": API_ACTOR,
        "redacted_at": None,
        "redacted_by": None,
    }
    memory_db.add_version(store, version)
    return str(version["id"])


# -- memories ------------------------------------------------------------------------------


@router.post("/v1/memory_stores/{memory_store_id}/memories", summary="Create a memory")
async def create_memory(
    ctx: Ctx, memory_store_id: str, body: MemoryCreate, view: View = "basic"
) -> Response:
    store = ctx.store
    path = check_path(body.path)
    content = check_content(body.content)
    now = now_ts()
    with store.write():
        _writable(store, memory_store_id)
        _path_free(store, memory_store_id, path)
        memory = {
            "type": "memory",
            "id": new_id("memory"),
            "memory_store_id": memory_store_id,
            "path": path,
            "content": content,
            "content_sha256": _sha(content),
            "content_size_bytes": _size(content),
            "memory_version_id": "",
            "created_at": now,
            "updated_at": now,
        }
        memory["memory_version_id"] = _record(store, memory, "created", now)
        memory_db.put_memory(store, memory)
    return json_response(_show(memory, view))


@router.get("/v1/memory_stores/{memory_store_id}/memories/{memory_id}", summary="Retrieve a memory")
async def retrieve_memory(
    ctx: Ctx, memory_store_id: str, memory_id: str, view: View = "full"
) -> Response:
    return json_response(_show(_memory(ctx.store, memory_store_id, memory_id), view))


@router.post("/v1/memory_stores/{memory_store_id}/memories/{memory_id}", summary="Update a memory")
async def update_memory(
    ctx: Ctx, memory_store_id: str, memory_id: str, body: MemoryUpdate, view: View = "basic"
) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    path = check_path(sent["path"]) if sent.get("path") is not None else None
    content = check_content(sent["content"]) if sent.get("content") is not None else None
    condition = sent.get("precondition")
    if condition is not None and condition.get("content_sha256") is None:
        raise bad_request("precondition.content_sha256 is required")
    with store.write():
        current = _memory(store, memory_store_id, memory_id)
        _writable(store, memory_store_id)
        if condition is not None and condition["content_sha256"] != current["content_sha256"]:
            raise _stale(current, condition["content_sha256"])
        updated = dict(current)
        if path is not None and path != current["path"]:
            _path_free(store, memory_store_id, path)
            updated["path"] = path
        if content is not None:
            updated.update(
                content=content, content_sha256=_sha(content), content_size_bytes=_size(content)
            )
        if updated != current:
            now = updated["updated_at"] = now_ts()
            updated["memory_version_id"] = _record(store, updated, "modified", now)
            memory_db.put_memory(store, updated)
    return json_response(_show(updated, view))


def _valid_key(payload: dict[str, Any]) -> bool:
    key = payload.get("k")
    return isinstance(key, str) and key.startswith("/")


def _decode_key(tag: str, page: str | None) -> str | None:
    """The path the page after ``page`` starts after (a memory list pages by path)."""
    if not page:
        return None
    return str(decode_page(tag, page, _valid_key)["k"])


def _listing(
    store: Store, store_id: str, prefix: str, depth: int, after: str | None, want: int
) -> list[dict[str, Any]]:
    """Up to ``want`` list items (memories and rolled-up prefixes) after the key ``after``."""
    items: list[dict[str, Any]] = []
    high = memory_db.prefix_end(prefix)
    if after is None:
        low, inclusive = prefix, True
    elif after.endswith("/"):  # a prefix item: skip everything under it
        low, inclusive = memory_db.prefix_end(after), True
    else:
        low, inclusive = after, False
    while len(items) < want:
        batch = memory_db.memories_from(store, store_id, low, inclusive, high, want - len(items))
        if not batch:
            break
        for memory in batch:
            below = memory["path"][len(prefix) :].split("/")
            if depth and len(below) > depth:
                rolled = prefix + "/".join(below[:depth]) + "/"
                items.append({"type": "memory_prefix", "path": rolled})
                low, inclusive = memory_db.prefix_end(rolled), True
                break  # the rest of this batch may lie under the prefix: query again
            items.append(memory)
            low, inclusive = memory["path"], False
    return items


@router.get("/v1/memory_stores/{memory_store_id}/memories", summary="List memories")
async def list_memories(
    ctx: Ctx,
    memory_store_id: str,
    limit: int = Query(20, ge=1, le=100),
    page: str | None = Query(None, max_length=8192),
    path_prefix: str | None = Query(None, max_length=4096),
    depth: int = Query(0, ge=0, le=2**31),
    view: View = "basic",
) -> Response:
    store = ctx.store
    prefix = check_prefix(path_prefix) if path_prefix is not None else "/"
    tag = f"memories:{memory_store_id}:{prefix}:{depth}"
    after = _decode_key(tag, page)
    require(store, "memory_store", memory_store_id)
    size = min(limit, FULL_PAGE) if view == "full" else limit
    items = _listing(store, memory_store_id, prefix, depth, after, size + 1)
    shown = [i if i["type"] == "memory_prefix" else _show(i, view) for i in items[:size]]
    next_page = encode_page(tag, k=shown[-1]["path"]) if len(items) > size else None
    return json_response({"data": shown, "next_page": next_page})


@router.delete(
    "/v1/memory_stores/{memory_store_id}/memories/{memory_id}", summary="Delete a memory"
)
async def delete_memory(
    ctx: Ctx,
    memory_store_id: str,
    memory_id: str,
    expected_content_sha256: str | None = Query(None, pattern=r"^[0-9a-f]{64}$"),
) -> Response:
    store = ctx.store
    with store.write():
        current = _memory(store, memory_store_id, memory_id)
        if expected_content_sha256 is not None and (
            expected_content_sha256 != current["content_sha256"]
        ):
            raise _stale(current, expected_content_sha256)
        _record(store, current, "deleted", now_ts())
        memory_db.delete_memory(store, memory_id)
    return json_response({"id": memory_id, "type": "memory_deleted"})


# -- memory versions -----------------------------------------------------------------------


@router.get("/v1/memory_stores/{memory_store_id}/memory_versions", summary="List memory versions")
async def list_memory_versions(
    ctx: Ctx,
    memory_store_id: str,
    window: Paged,
    created: Created,
    memory_id: str | None = Query(None, max_length=128),
    operation: Literal["created", "modified", "deleted"] | None = None,
    api_key_id: str | None = Query(None, max_length=128),
    session_id: str | None = Query(None, max_length=128),
    service_account_id: str | None = Query(None, max_length=128),
    view: View = "basic",
) -> Response:
    store = ctx.store
    require(store, "memory_store", memory_store_id)
    tag = f"memory_versions:{memory_store_id}"
    cursor = decode_cursor(tag, window.page)
    conditions, params = created.filters()
    for column, value in (("memory_id", memory_id), ("operation", operation)):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    for field, value in (
        ("api_key_id", api_key_id),
        ("session_id", session_id),
        ("service_account_id", service_account_id),
    ):
        if value is not None:
            conditions.append(f"json_extract(data, '$.created_by.{field}') = ?")
            params.append(value)
    size = min(window.limit, FULL_PAGE) if view == "full" else window.limit
    rows = memory_db.version_page(store, memory_store_id, conditions, params, cursor.after, size)
    return page_response(tag, rows, size, render=lambda v: _show(v, view))


def _version(store: Store, store_id: str, version_id: str) -> dict[str, Any]:
    return _in_store(store, store_id, "memory version", version_id, memory_db.get_version)


@router.get(
    "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}",
    summary="Retrieve a memory version",
)
async def retrieve_memory_version(
    ctx: Ctx, memory_store_id: str, memory_version_id: str, view: View = "full"
) -> Response:
    return json_response(_show(_version(ctx.store, memory_store_id, memory_version_id), view))


@router.post(
    "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}/redact",
    summary="Redact a memory version",
)
async def redact_memory_version(ctx: Ctx, memory_store_id: str, memory_version_id: str) -> Response:
    store = ctx.store
    with store.write():
        version = _version(store, memory_store_id, memory_version_id)
        if version["redacted_at"] is None:
            version.update(
                content=None,
                content_sha256=None,
                content_size_bytes=None,
                path=None,
                redacted_at=now_ts(),
                redacted_by=API_ACTOR,
            )
            memory_db.replace_version(store, version)
    return json_response(version)
