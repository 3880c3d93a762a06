"""How ``ManagedRuntime``'s ``list_*`` methods read a listing: every page, or a count.

PraisonAI's ``limit=`` is a number of items, the wire's ``limit`` a page size: ``listed``
takes items from a client pager until it has ``limit`` of them (or all), after checking the
filters against what the pager takes (a misspelt filter is a ``TypeError``, not a filter
the provider ignores). ``session_filters`` turns ``list_sessions``' ``status`` into wire
filters. It reads only through the pager it is given.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from reconciler.jsontypes import JSON

if TYPE_CHECKING:
    from reconciler.provider.pager import Pager

__all__ = ["SessionListStatus", "listed", "session_filters"]

SessionListStatus = Literal[
    "active", "archived", "all", "idle", "running", "rescheduling", "terminated"
]
_SESSION_STATUSES = ("idle", "running", "rescheduling", "terminated")


async def listed(
    what: str,
    list_method: Callable[..., Pager],
    limit: int | None,
    filters: dict[str, Any],
    keep: Callable[[JSON], bool] | None = None,
) -> list[JSON]:
    """The items of ``list_method(**filters)`` that ``keep`` keeps, all pages or the first
    ``limit`` (the wire's ``limit`` is a page size: PraisonAI's ``limit=`` is a count)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(
            f"limit must be a positive number of items, or None for all; got {limit!r}"
        )
    taken = inspect.signature(list_method).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in taken.values()):
        unknown = sorted(set(filters) - set(taken))
        if unknown:
            raise TypeError(
                f"{what}() got an unexpected keyword argument {unknown[0]!r}; it takes "
                f"{', '.join([*taken, 'limit'])}"
            )
    items: list[JSON] = []
    async for item in list_method(**filters):
        if keep is None or keep(item):
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
    return items


def session_filters(
    status: SessionListStatus | None, filters: dict[str, Any]
) -> Callable[[JSON], bool] | None:
    """Put ``list_sessions``' ``status`` into ``filters`` (the wire's); returns the ``keep``
    of ``listed`` that the wire cannot filter (only archived sessions), else None."""
    only_archived = False
    match status:
        case None:
            pass
        case "active":
            filters["include_archived"] = False
        case "archived":
            filters["include_archived"] = only_archived = True
        case "all":
            filters["include_archived"] = True
        case _ if status in _SESSION_STATUSES:
            filters["statuses"] = [status]
        case _:
            raise ValueError(
                f"status must be 'active', 'archived', 'all' or one of "
                f"{', '.join(_SESSION_STATUSES)}; got {status!r}"
            )
    if filters.get("include_archived") is False:
        del filters["include_archived"]  # the wire default; keeps the query minimal
    return (lambda s: bool(s.get("archived_at"))) if only_archived else None
