"""HTTP routes of a session's resources: ``/v1/sessions/{session_id}/resources[/{id}]``.

The resources a session mounts (``session.resources``, set at creation) listed, retrieved,
added to (a ``file`` only: the SDK's ``resources.add``), rotated (a ``github_repository``'s
``authorization_token``, the one field an update takes; write-only, never echoed) and
removed. A resource is named by its ``id``; a ``memory_store`` resource, which carries none in
the SDK's model, by its ``memory_store_id``. Changes go to the session object itself (its
``resources`` and ``updated_at``), so a session retrieved afterwards shows them; an archived
session refuses them as it refuses an update. The list pages like the others but returns
every resource when ``limit`` is omitted (the SDK: "If omitted, returns all resources").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from .context import Ctx, edit, require
from .errors import bad_request, not_found
from .ids import new_id, now_ts
from .paging import decode_cursor, json_response, page_response
from .routes_files import usable_file
from .schemas_runtime import SessionResourceAdd, SessionResourceUpdate
from .store import dumps

router = APIRouter(tags=["sessions"])

resources = "/v1/sessions/{session_id}/resources"


def _key(resource: dict[str, Any]) -> str:
    """The id a resource is addressed by in a path."""
    return str(resource.get("id") or resource.get("memory_store_id"))


def _index(session: dict[str, Any], resource_id: str) -> int:
    for i, resource in enumerate(session["resources"]):
        if _key(resource) == resource_id:
            return i
    raise not_found("resource", f"{resource_id} of session {session['id']}")


def _tokens(secrets: dict[str, Any], count: int) -> list[Any]:
    """The write-only tokens of a session's resources, by position."""
    tokens = list(secrets.get("resource_tokens") or [])
    return (tokens + [None] * count)[:count]


@router.get(resources, summary="List a session's resources")
async def list_resources(
    ctx: Ctx,
    session_id: str,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    page: Annotated[str | None, Query(max_length=4096)] = None,
) -> Response:
    session = require(ctx.store, "session", session_id).data
    tag = f"session_resources:{session_id}"
    after = decode_cursor(tag, page).after or 0
    items = session["resources"]
    rows = [(i + 1, dumps(r)) for i, r in enumerate(items) if i + 1 > after]
    return page_response(tag, rows if limit is None else rows[: limit + 1], limit or len(rows))


@router.get(resources + "/{resource_id}", summary="Retrieve a session resource")
async def retrieve_resource(ctx: Ctx, session_id: str, resource_id: str) -> Response:
    session = require(ctx.store, "session", session_id).data
    return json_response(session["resources"][_index(session, resource_id)])


@router.post(resources, summary="Add a file resource to a session")
async def add_resource(ctx: Ctx, session_id: str, body: SessionResourceAdd) -> Response:
    store = ctx.store
    with edit(store, "session", session_id) as change:
        usable_file(store, body.file_id)
        now = now_ts()
        mount_path = body.mount_path or f"/mnt/session/uploads/{body.file_id}"
        if any(r.get("mount_path") == mount_path for r in change.current["resources"]):
            raise bad_request(f"mount_path {mount_path} is taken by another resource")
        resource = {
            "id": new_id("resource"),
            "type": "file",
            "file_id": body.file_id,
            "mount_path": mount_path,
            "created_at": now,
            "updated_at": now,
        }
        record = require(store, "session", session_id)
        count = len(change.current["resources"])
        tokens = [*_tokens(record.secrets, count), None]
        change.updated["resources"] = [*change.current["resources"], resource]
        change.updated["updated_at"] = now
        store.replace(session_id, change.updated, secrets=_secrets(record.secrets, tokens))
    return json_response(resource)


@router.post(resources + "/{resource_id}", summary="Rotate a session resource's token")
async def update_resource(
    ctx: Ctx, session_id: str, resource_id: str, body: SessionResourceUpdate
) -> Response:
    store = ctx.store
    with edit(store, "session", session_id) as change:
        i = _index(change.current, resource_id)
        resource = dict(change.current["resources"][i])
        if resource["type"] != "github_repository":
            raise bad_request(
                f"resource {resource_id} is a {resource['type']} resource; only "
                "github_repository resources take a new authorization_token"
            )
        record = require(store, "session", session_id)
        tokens = _tokens(record.secrets, len(change.current["resources"]))
        tokens[i] = body.authorization_token
        resource["updated_at"] = change.updated["updated_at"] = now_ts()
        change.updated["resources"] = [
            resource if j == i else r for j, r in enumerate(change.current["resources"])
        ]
        store.replace(session_id, change.updated, secrets=_secrets(record.secrets, tokens))
    return json_response(resource)


@router.delete(resources + "/{resource_id}", summary="Remove a resource from a session")
async def delete_resource(ctx: Ctx, session_id: str, resource_id: str) -> Response:
    store = ctx.store
    with edit(store, "session", session_id) as change:
        i = _index(change.current, resource_id)
        record = require(store, "session", session_id)
        tokens = _tokens(record.secrets, len(change.current["resources"]))
        del tokens[i]
        change.updated["resources"] = [
            r for j, r in enumerate(change.current["resources"]) if j != i
        ]
        change.updated["updated_at"] = now_ts()
        store.replace(session_id, change.updated, secrets=_secrets(record.secrets, tokens))
    return json_response({"id": resource_id, "type": "session_resource_deleted"})


def _secrets(secrets: dict[str, Any], tokens: list[Any]) -> dict[str, Any]:
    """A session's secrets with these resource tokens (``{}`` clears the column)."""
    kept = {k: v for k, v in secrets.items() if k != "resource_tokens"}
    return {**kept, "resource_tokens": tokens} if any(tokens) else kept
