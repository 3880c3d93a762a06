"""How ``ManagedRuntime``'s ``list_*`` methods read a listing: every page, or a count.

PraisonAI's ``limit=`` is a number of items, the wire's ``limit`` a page size: ``listed``
takes items from a client pager until it has ``limit`` of them (or all), after checking the
filters against what the pager takes (a misspelt filter is a ``TypeError``, not a filter
the provider ignores). It reads only through the pager it is given.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.jsontypes import JSON

if TYPE_CHECKING:
    from reconciler.provider.pager import Pager

__all__ = ["listed"]


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
