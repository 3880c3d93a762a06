"""The routes several resources build the same way: retrieve, archive and delete one object.

An object of kind ``k`` lives at ``/v1/{k}s/{{k}_id}``. Retrieve answers the stored object,
archive archives it (``context.archive``: idempotent, ``updated_at`` moves once), both
through the resource's ``render`` where its wire object is computed from what is stored;
delete removes it with what it holds and answers ``{"id", "type": "{k}_deleted"}``. All
three 404 for an unknown id. A resource module calls these where it would declare the
route, so the order of its routes (and of ``/openapi.json``) stays its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Path
from starlette.responses import Response

from .context import Ctx, archive, require
from .paging import json_response
from .store import Store

Render = Callable[[dict[str, Any]], dict[str, Any]]


def _item_path(kind: str) -> str:
    return f"/v1/{kind}s/{{{kind}_id}}"


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
