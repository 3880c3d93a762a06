"""The query parameters list routes share, and the skeleton of listing one kind of object.

Every list takes ``limit`` and ``page``; most take ``include_archived`` and a
``created_at[...]`` range. They are FastAPI dependencies here, so that a route declares only
the filters that are its own. FastAPI solves dependencies before a route's own parameters:
in ``/openapi.json``, and in the (first) validation error of a request with several bad
parameters, these come first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from starlette.responses import Response

from .context import created_filters
from .paging import decode_cursor, page_response
from .store import Store

_Page = Annotated[str | None, Query(max_length=4096)]
_Gte = Annotated[str | None, Query(alias="created_at[gte]", max_length=64)]
_Lte = Annotated[str | None, Query(alias="created_at[lte]", max_length=64)]


@dataclass(frozen=True, slots=True)
class Window:
    """Which page of a list a request asks for."""

    limit: int
    page: str | None
    include_archived: bool = False


async def _window(limit: Annotated[int, Query(ge=1, le=100)] = 20, page: _Page = None) -> Window:
    return Window(limit, page)


async def _wide_window(
    limit: Annotated[int, Query(ge=1, le=1000)] = 20, page: _Page = None
) -> Window:
    return Window(limit, page)


async def _listing(
    window: Annotated[Window, Depends(_window)], include_archived: bool = False
) -> Window:
    return Window(window.limit, window.page, include_archived)


#: ``limit`` (1-100) and ``page``
Paged = Annotated[Window, Depends(_window)]
#: ``limit`` (1-1000) and ``page``
WidePaged = Annotated[Window, Depends(_wide_window)]
#: ``limit`` (1-100), ``page`` and ``include_archived``
Listed = Annotated[Window, Depends(_listing)]


@dataclass(frozen=True, slots=True)
class CreatedRange:
    """The ``created_at[gt|gte|lt|lte]`` bounds of a list request, unchecked."""

    gt: str | None = None
    gte: str | None = None
    lt: str | None = None
    lte: str | None = None

    def filters(self, column: str = "created_at") -> tuple[list[str], list[Any]]:
        """SQL conditions on ``column`` (400 for a bound that is not a timestamp)."""
        return created_filters(column, self.gt, self.gte, self.lt, self.lte)


async def _created(gte: _Gte = None, lte: _Lte = None) -> CreatedRange:
    return CreatedRange(gte=gte, lte=lte)


async def _created_range(
    gt: Annotated[str | None, Query(alias="created_at[gt]", max_length=64)] = None,
    gte: _Gte = None,
    lt: Annotated[str | None, Query(alias="created_at[lt]", max_length=64)] = None,
    lte: _Lte = None,
) -> CreatedRange:
    return CreatedRange(gt, gte, lt, lte)


#: ``created_at[gte]`` and ``created_at[lte]``
Created = Annotated[CreatedRange, Depends(_created)]
#: ``created_at[gt]``, ``[gte]``, ``[lt]`` and ``[lte]``
CreatedAny = Annotated[CreatedRange, Depends(_created_range)]

#: extra SQL conditions of a list, each with its parameters
Where = Sequence[tuple[str, Sequence[Any]]]


def list_objects(
    store: Store,
    kind: str,
    tag: str,
    window: Window,
    *,
    created: CreatedRange | None = None,
    where: Where = (),
    parent_id: str | None = None,
    include_archived: bool | None = None,
    descending: bool = False,
    bidirectional: bool = False,
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Response:
    """One page of the stored objects of ``kind``: the cursor decoded (``tag`` names the
    list), then the created range and ``where`` as conditions, in that order.

    Args:
        include_archived: overrides the window's (lists of objects that are never archived).
        bidirectional: ``page`` may walk backwards and the envelope carries ``prev_page``.
    """
    cursor = decode_cursor(tag, window.page)
    conditions, params = created.filters() if created is not None else ([], [])
    for condition, values in where:
        conditions.append(condition)
        params.extend(values)
    rows = store.page(
        kind,
        conditions=conditions,
        params=params,
        parent_id=parent_id,
        include_archived=window.include_archived if include_archived is None else include_archived,
        after=cursor.after,
        before=cursor.before if bidirectional else None,
        descending=descending,
        limit=window.limit,
    )
    if bidirectional:
        has_prev = cursor.after is not None
        return page_response(
            tag, rows, window.limit, cursor=cursor, render=render, with_prev=True, has_prev=has_prev
        )
    return page_response(tag, rows, window.limit, render=render)
