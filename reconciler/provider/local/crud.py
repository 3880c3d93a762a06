"""The routes several resources build the same way: create, retrieve, update, archive, delete.

An object of kind ``k`` lives at ``/v1/{k}s/{{k}_id}``. Create builds it from the resource's
own rules and stores it; update applies the resource's rules to a copy, then the metadata
patch, and stores it unless nothing changed. Retrieve answers the stored object,
archive archives it (``context.archive``: idempotent, ``updated_at`` moves once), both
through the resource's ``render`` where its wire object is computed from what is stored;
delete removes it with what it holds and answers ``{"id", "type": "{k}_deleted"}``. All
but create 404 for an unknown id. A resource module calls these where it would declare the
route, so the order of its routes (and of ``/openapi.json``) stays its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path
from pydantic import BaseModel
from starlette.responses import Response

from .context import Ctx, Edit, archive, edit, new_object, require
from .paging import json_response
from .store import Store

Render = Callable[[dict[str, Any]], dict[str, Any]]
#: a new object's fields (before its type, id and timestamps) from what the create body sent
Fields = Callable[[Store, dict[str, Any]], dict[str, Any]]
#: applies what an update body sent to ``Edit.updated`` (the metadata patch excepted)
Changes = Callable[[Edit, dict[str, Any]], None]


def _item_path(kind: str) -> str:
    return f"/v1/{kind}s/{{{kind}_id}}"


def _takes_body(handler: Callable[..., Any], model: type[BaseModel]) -> None:
    """Make ``model`` the request body of ``handler``: FastAPI reads the body's model (its
    validation and its schema in ``/openapi.json``) from the handler's annotation, which a
    handler built here for several resources cannot spell in its source."""
    handler.__annotations__["body"] = model


def add_create(
    router: APIRouter, kind: str, summary: str, model: type[BaseModel], fields: Fields
) -> None:
    """Add ``POST /v1/{kind}s``, named ``create_{kind}``: ``fields(store, sent)`` (``sent``:
    the fields the body set) make the new object (its wire ``type`` is ``kind``), stored in
    the same write transaction."""

    async def create(ctx: Ctx, body: BaseModel) -> Response:
        store = ctx.store
        sent = body.model_dump(exclude_unset=True)
        with store.write():
            data = new_object(kind, kind, fields(store, sent))
            store.insert(kind, data)
        return json_response(data)

    _takes_body(create, model)
    router.post(f"/v1/{kind}s", summary=summary, name=f"create_{kind}")(create)


def add_retrieve(
    router: APIRouter,
    kind: str,
    summary: str,
    *,
    render: Render | None = None,
    name: str | None = None,
) -> None:
    """Add ``GET /v1/{kind}s/{{kind}_id}``, named ``name`` (default ``retrieve_{kind}``)."""

    # The path parameter keeps the resource's own name (``vault_id``...) through the alias,
    # in the route and in the document alike.
    async def retrieve(ctx: Ctx, object_id: str = Path(alias=f"{kind}_id")) -> Response:
        data = require(ctx.store, kind, object_id).data
        return json_response(data if render is None else render(data))

    router.get(_item_path(kind), summary=summary, name=name or f"retrieve_{kind}")(retrieve)


def add_update(
    router: APIRouter,
    kind: str,
    summary: str,
    model: type[BaseModel],
    changes: Changes,
    *,
    archived_code: str | None = None,
    empty_deletes: bool = False,
) -> None:
    """Add ``POST /v1/{kind}s/{{kind}_id}``, named ``update_{kind}``: ``changes(change, sent)``
    applies the resource's rules, then ``Edit.save`` patches the metadata (``empty_deletes``
    as there) and stores the copy unless nothing changed. An archived object refuses (400
    ``archived_code``)."""

    async def update(
        ctx: Ctx, body: BaseModel, object_id: str = Path(alias=f"{kind}_id")
    ) -> Response:
        sent = body.model_dump(exclude_unset=True)
        with edit(ctx.store, kind, object_id, archived_code) as change:
            changes(change, sent)
            saved = change.save(sent.get("metadata"), empty_deletes=empty_deletes)
        return json_response(saved)

    _takes_body(update, model)
    router.post(_item_path(kind), summary=summary, name=f"update_{kind}")(update)


def add_archive(
    router: APIRouter, kind: str, summary: str, *, render: Render | None = None
) -> None:
    """Add ``POST /v1/{kind}s/{{kind}_id}/archive``, named ``archive_{kind}``."""

    async def archive_one(ctx: Ctx, object_id: str = Path(alias=f"{kind}_id")) -> Response:
        data = archive(ctx.store, kind, object_id)
        return json_response(data if render is None else render(data))

    router.post(_item_path(kind) + "/archive", summary=summary, name=f"archive_{kind}")(archive_one)


def add_delete(
    router: APIRouter,
    kind: str,
    summary: str,
    *,
    contents: Callable[[Store, str], None] | None = None,
) -> None:
    """Add ``DELETE /v1/{kind}s/{{kind}_id}``, named ``delete_{kind}``; ``contents`` first
    deletes what the object holds (in the same transaction)."""

    async def delete(ctx: Ctx, object_id: str = Path(alias=f"{kind}_id")) -> Response:
        store = ctx.store
        with store.write():
            require(store, kind, object_id)
            if contents is not None:
                contents(store, object_id)
            store.delete(object_id)
        return json_response({"id": object_id, "type": f"{kind}_deleted"})

    router.delete(_item_path(kind), summary=summary, name=f"delete_{kind}")(delete)
