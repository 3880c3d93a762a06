"""Opaque page cursors and the ``{data, next_page}`` list envelope.

A cursor names the list it belongs to and the ``seq`` of the last (or, for ``prev_page``,
the first) row already returned; the next page starts strictly after it, so rows inserted
meanwhile never shift or repeat a page. A cursor from another list, or garbage, is a 400.
This module builds JSON text directly from stored rows: listing is the hot path.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from .errors import bad_request
from .store import dumps


@dataclass(frozen=True, slots=True)
class Cursor:
    """A decoded cursor: exactly one of ``after`` / ``before`` is set."""

    after: int | None = None
    before: int | None = None


def encode_page(list_tag: str, **fields: Any) -> str:
    """An opaque page token of the list ``list_tag`` carrying ``fields``."""
    raw = base64.urlsafe_b64encode(dumps({"l": list_tag, **fields}).encode()).decode()
    return f"page_{raw.rstrip('=')}"


def decode_page(
    list_tag: str, page: str, valid: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The fields of a token from ``encode_page(list_tag, ...)`` that ``valid`` accepts.

    Raises:
        ApiError: 400 when the token is malformed, invalid or belongs to another list.
    """
    try:
        if not page.startswith("page_"):
            raise ValueError(page)
        raw = page[5:]
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(payload, dict) or payload.get("l") != list_tag or not valid(payload):
            raise ValueError(page)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request("invalid page cursor; pass back a next_page value unchanged") from None
    return payload


def encode_cursor(list_tag: str, *, after: int | None = None, before: int | None = None) -> str:
    fields = {"a": after} if after is not None else {}
    if before is not None:
        fields["b"] = before
    return encode_page(list_tag, **fields)


def _valid_cursor(payload: dict[str, Any]) -> bool:
    after, before = payload.get("a"), payload.get("b")
    for value in (after, before):
        if value is not None and (type(value) is not int or not 0 <= value < 2**62):
            return False
    return (after is None) != (before is None)


def decode_cursor(list_tag: str, page: str | None) -> Cursor:
    """Decode ``page`` for the list ``list_tag``; no page means the first page.

    Raises:
        ApiError: 400 when the cursor is malformed or belongs to another list.
    """
    if page is None or page == "":
        return Cursor()
    payload = decode_page(list_tag, page, _valid_cursor)
    return Cursor(after=payload.get("a"), before=payload.get("b"))


def page_response(
    list_tag: str,
    rows: list[tuple[int, str]],
    limit: int,
    *,
    cursor: Cursor = Cursor(),
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    with_prev: bool = False,
    has_prev: bool = False,
) -> Response:
    """Turn ``limit + 1`` fetched rows into the list envelope.

    Args:
        rows: ``(seq, data_json)`` in list order, one more than ``limit`` if more follow
            (for a backwards page: one more at the front).
        render: optional per-object transform (computed fields); without it the stored JSON
            text is spliced in verbatim.
        with_prev: emit ``prev_page`` too (sessions' bidirectional cursor).
        has_prev: whether rows exist before this page.
    """
    if cursor.before is not None:
        more_before = len(rows) > limit
        page = rows[-limit:] if more_before else rows
        more_after = True  # we came back from a later page
        has_prev = more_before
    else:
        more_after = len(rows) > limit
        page = rows[:limit]
    next_page = encode_cursor(list_tag, after=page[-1][0]) if page and more_after else None
    if render is None:
        items = ",".join(text for _, text in page)
    else:
        items = ",".join(dumps(render(json.loads(text))) for _, text in page)
    body = f'{{"data":[{items}],"next_page":{dumps(next_page)}'
    if with_prev:
        prev_page = encode_cursor(list_tag, before=page[0][0]) if page and has_prev else None
        body += f',"prev_page":{dumps(prev_page)}'
    body += "}"
    return Response(body, media_type="application/json")


def json_response(value: Any, status: int = 200) -> Response:
    """A JSON response without FastAPI's (slow, validating) serialisation."""
    return Response(dumps(value), status_code=status, media_type="application/json")
