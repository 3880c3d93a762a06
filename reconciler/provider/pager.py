"""Pager: walk a cursor-paginated list endpoint to its end.

A list response is ``{"data": [...], "next_page": cursor | null}``; the pager repeats the same
query with ``page=<next_page>`` until the cursor is null, absent or empty (the SDK's rule: an
empty ``data`` alone does not end the walk). Iterating a ``Pager`` yields items; every new
iteration starts again from the first page.

The pager only follows cursors. Requests, retries and errors belong to the client it is given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from reconciler.errors import ProviderError

__all__ = ["Pager"]

FetchPage = Callable[[str, list[tuple[str, str]] | Mapping[str, Any]], Awaitable[Any]]


class Pager:
    """Async-iterable over every item of a list endpoint.

    Args:
        fetch: coroutine ``fetch(path, params) -> page dict`` (normally ``client.request``
            bound to GET).
        path: the list path, e.g. ``/v1/agents``.
        params: filters sent with every page (already wire-shaped or a plain mapping).
        limit: page size asked of the server.

    Example:
        >>> async for agent in client.agents.list(include_archived=True):
        ...     print(agent["id"])
        >>> agents = await client.agents.list().to_list()
    """

    def __init__(
        self,
        fetch: FetchPage,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = 100,
    ) -> None:
        self._fetch = fetch
        self.path = path
        self.params: dict[str, Any] = dict(params or {})
        if limit is not None:
            self.params["limit"] = limit
        self.pages_fetched = 0

    def __repr__(self) -> str:
        return f"Pager({self.path!r}, params={self.params!r})"

    def __aiter__(self) -> _PagerIterator:
        return _PagerIterator(self)

    async def fetch_page(self, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Fetch one page.

        Args:
            cursor: the ``next_page`` of the previous page, or None for the first.

        Returns:
            The page's items and the cursor of the next page (None at the end).

        Raises:
            ProviderError: the response is not a list envelope.
        """
        params = dict(self.params)
        if cursor is not None:
            params["page"] = cursor
        body = await self._fetch(self.path, params)
        self.pages_fetched += 1
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise ProviderError(
                f"GET {self.path} returned something that is not a list page "
                '(expected {"data": [...], "next_page": ...}); is the provider URL right?',
                method="GET",
                path=self.path,
            )
        next_page = body.get("next_page")
        return list(body["data"]), (str(next_page) if next_page else None)

    async def to_list(self) -> list[dict[str, Any]]:
        """Every item of every page, in server order."""
        return [item async for item in self]


class _PagerIterator:
    """One walk over the pages; a plain object so early exit leaves nothing to finalise."""

    def __init__(self, pager: Pager) -> None:
        self._pager = pager
        self._buffer: list[dict[str, Any]] = []
        self._index = 0
        self._cursor: str | None = None
        self._seen: set[str] = set()
        self._done = False

    def __aiter__(self) -> _PagerIterator:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while self._index >= len(self._buffer):
            if self._done:
                raise StopAsyncIteration
            items, cursor = await self._pager.fetch_page(self._cursor)
            self._buffer, self._index = items, 0
            if cursor is None:
                self._done = True
            elif cursor in self._seen:
                raise ProviderError(
                    f"GET {self._pager.path} returned the cursor {cursor!r} twice; "
                    "stopping instead of looping forever (a provider bug)",
                    method="GET",
                    path=self._pager.path,
                )
            else:
                self._seen.add(cursor)
                self._cursor = cursor
        item = self._buffer[self._index]
        self._index += 1
        return item
