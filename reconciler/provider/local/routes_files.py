"""HTTP routes of the Files API, and the check of a ``file`` resource reference.

As SDK 2.10.0 serves them (``resources/beta/files.py``; no beta header needed):

* ``POST /v1/files``: multipart, one ``file`` part and an optional ``expires_in_seconds``
  (3,600 to 7,776,000). Only the last path component of the part's filename is kept; an
  empty or absent one becomes ``unnamed`` plus the extension of the stored MIME type. The
  MIME type is the part's own ``Content-Type`` unless that is missing or generic
  (``application/octet-stream``), else guessed from the filename. At most
  ``MAX_FILE_BYTES`` (500 MB, the Files API's documented limit): a larger body is a 413.
* ``GET /v1/files``: newest first, ``limit`` 1-1000 (default 20) and the ``page`` cursor of
  every list here; ``ids[]`` (at most 100, not with ``page``/``limit``) answers one page of
  those files that exist; ``scope_id`` keeps the files a session made (none are made here).
* ``GET /v1/files/{id}`` (metadata), ``GET /v1/files/{id}/content`` (the bytes as uploaded;
  404 ``file_expired`` once ``expires_at`` has passed, 400 ``file_not_downloadable`` for a
  file marked ``downloadable: false``), ``DELETE /v1/files/{id}``.

Every upload here is ``downloadable: true``. The API keeps files a user uploads
undownloadable (only files a tool made are); the local provider lets a test read back what
it stored, and says so in the field, so a client that honours ``downloadable`` behaves the
same against both.

A session's or deployment's ``{type: file, file_id, mount_path?}`` must name a file that
exists and has not expired (``usable_file``: 404 ``file_not_found`` / ``file_expired``, as
``memory_store`` references are checked), and so must an outcome's file rubric; a
deployment run whose file (mounted, or a rubric of its initial events) is gone records a
``file_not_found_error`` (``missing_file``). The metadata lives in the objects table (kind
``file``), the bytes in the store's ``files`` table under the file's id.
"""

from __future__ import annotations

import mimetypes
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .context import Ctx
from .errors import ApiError, bad_request
from .ids import format_ts, new_id, parse_ts
from .openapi import multipart_body
from .paging import decode_cursor, json_response, page_response
from .store import Record, Store

#: the largest file an upload may carry (the Files API documents 500 MB per file)
MAX_FILE_BYTES = 500 * 1024 * 1024
#: what multipart framing may add to the file's own bytes before a body is refused unread
_FRAMING_ALLOWANCE = 64 * 1024
MAX_FILENAME = 255
EXPIRES_RANGE = (3_600, 7_776_000)
MAX_IDS = 100
_GENERIC_TYPES = frozenset({"", "application/octet-stream"})
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")

router = APIRouter(tags=["files"])

#: the multipart body of an upload, for the OpenAPI document (the handler parses it by hand)
_UPLOAD_BODY = multipart_body(
    ["file"],
    {
        "file": {"type": "string", "format": "binary"},
        "expires_in_seconds": {
            "type": "integer",
            "minimum": EXPIRES_RANGE[0],
            "maximum": EXPIRES_RANGE[1],
        },
    },
)


def _expired(data: dict[str, Any], now: datetime | None = None) -> bool:
    expires = data.get("expires_at")
    return expires is not None and parse_ts(expires) <= (now or datetime.now(UTC))


def _file(store: Store, file_id: str) -> Record:
    record = store.get(file_id, "file")
    if record is None:
        raise ApiError(404, f"file {file_id} not found", error_code="file_not_found")
    return record


def usable_file(store: Store, file_id: str) -> Record:
    """A file a new session or deployment may mount: it exists and has not expired.

    Raises:
        ApiError: 404 ``file_not_found`` / 404 ``file_expired``.
    """
    record = _file(store, file_id)
    if _expired(record.data):
        raise ApiError(
            404,
            f"file {file_id} expired at {record.data['expires_at']}; its content is gone",
            error_code="file_expired",
        )
    return record


def check_files(store: Store, resources: list[dict[str, Any]] | None) -> None:
    """Every ``file`` resource of ``resources`` names a usable file (``usable_file``)."""
    for resource in resources or []:
        if resource.get("type") == "file":
            usable_file(store, resource["file_id"])


def check_rubric_files(store: Store, events: list[dict[str, Any]] | None) -> None:
    """Every ``user.define_outcome`` of ``events`` whose rubric is a file names a usable file
    (``usable_file``), as a ``file`` resource must."""
    for event in events or []:
        rubric = event.get("rubric") if event.get("type") == "user.define_outcome" else None
        if rubric and rubric.get("type") == "file":
            usable_file(store, rubric["file_id"])


def missing_file(
    store: Store, resources: list[dict[str, Any]], events: list[dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """A deployment run's ``error`` when a file its resources name is gone or expired, or
    the rubric file of one of its initial ``events`` (its outcome would be graded against
    nothing)."""
    file_ids = [r["file_id"] for r in resources if r.get("type") == "file"]
    for event in events or []:
        rubric = event.get("rubric") if event.get("type") == "user.define_outcome" else None
        if rubric and rubric.get("type") == "file":
            file_ids.append(rubric["file_id"])
    for file_id in file_ids:
        record = store.get(file_id, "file")
        if record is None or _expired(record.data):
            what = "no longer exists" if record is None else "has expired"
            return {"type": "file_not_found_error", "message": f"file {file_id} {what}"}
    return None


def _mime_type(declared: str | None, filename: str) -> str:
    base = (declared or "").split(";", 1)[0].strip().lower()
    if base not in _GENERIC_TYPES and _MIME.match(base):
        return base
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def _filename(sent: str, mime_type: str) -> str:
    name = re.split(r"[/\\]", sent)[-1].strip()
    if not name:
        known = mime_type not in _GENERIC_TYPES
        name = "unnamed" + ((known and mimetypes.guess_extension(mime_type, strict=False)) or "")
    if len(name) > MAX_FILENAME:
        raise bad_request(f"a filename is at most {MAX_FILENAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise bad_request("a filename must not contain control characters")
    return name


def _too_large() -> ApiError:
    return ApiError(
        413,
        f"a file is at most {MAX_FILE_BYTES} bytes",
        error_code="file_too_large",
    )


def _expiry(text: str) -> int:
    try:
        seconds = int(text.strip())
    except ValueError:
        raise bad_request("expires_in_seconds must be an integer") from None
    low, high = EXPIRES_RANGE
    if not low <= seconds <= high:
        raise bad_request(f"expires_in_seconds must be between {low} and {high}")
    return seconds


async def _read_upload(request: Request) -> tuple[str, str | None, bytes, int | None]:
    """``(filename, declared content type, content, expires_in_seconds)`` of an upload."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise bad_request("a file upload is multipart/form-data with one `file` part")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FILE_BYTES + _FRAMING_ALLOWANCE:
        raise _too_large()
    try:
        form = await request.form(max_files=1, max_fields=2)
    except StarletteHTTPException as exc:
        raise bad_request(f"the multipart body cannot be read: {exc.detail}") from None
    found: tuple[str, str | None, bytes] | None = None
    expires: int | None = None
    try:
        for key, value in form.multi_items():
            if key == "file" and found is None:
                if isinstance(value, UploadFile):
                    found = (value.filename or "", value.content_type, await value.read())
                else:  # a part without a filename: its text is the content
                    found = ("", None, value.encode())
            elif key == "expires_in_seconds" and isinstance(value, str) and expires is None:
                expires = _expiry(value)
            else:
                raise bad_request(
                    f"a file upload takes one file and expires_in_seconds, not {key!r} here"
                )
    finally:
        await form.close()
    if found is None:
        raise bad_request("the `file` part is required")
    if len(found[2]) > MAX_FILE_BYTES:
        raise _too_large()
    return (*found, expires)


@router.post("/v1/files", summary="Upload a file (multipart)", openapi_extra=_UPLOAD_BODY)
async def upload_file(ctx: Ctx, request: Request) -> Response:
    sent_name, declared, content, expires = await _read_upload(request)
    moment = datetime.now(UTC)
    mime_type = _mime_type(declared, sent_name)
    data: dict[str, Any] = {
        "type": "file",
        "id": new_id("file"),
        "filename": _filename(sent_name, mime_type),
        "mime_type": mime_type,
        "size_bytes": len(content),
        "created_at": format_ts(moment),
        "downloadable": True,
        "expires_at": format_ts(moment + timedelta(seconds=expires)) if expires else None,
        "scope": None,
    }
    store = ctx.store
    with store.write():
        store.insert("file", data)
        store.put_files(data["id"], [(data["filename"], content)])
    return json_response(data)


@router.get("/v1/files", summary="List files, newest first")
async def list_files(
    ctx: Ctx,
    limit: int | None = Query(None, ge=1, le=1000),
    page: str | None = Query(None, max_length=4096),
    scope_id: str | None = Query(None, max_length=128),
    ids_b: Annotated[list[str] | None, Query(alias="ids[]")] = None,
    ids: Annotated[list[str] | None, Query()] = None,
) -> Response:
    wanted = list(dict.fromkeys([*(ids_b or []), *(ids or [])]))
    conditions: list[str] = []
    params: list[Any] = []
    if scope_id is not None:
        conditions.append("json_extract(data, '$.scope.id') = ?")
        params.append(scope_id)
    if ids_b is not None or ids is not None:
        if page is not None or limit is not None:
            raise bad_request("ids cannot be combined with page or limit")
        if len(wanted) > MAX_IDS:
            raise bad_request(f"ids takes at most {MAX_IDS} file ids")
        if not wanted:
            return page_response("files", [], 1)
        conditions.append(f"id IN ({','.join('?' * len(wanted))})")
        params.extend(wanted)
        rows = ctx.store.page(
            "file", conditions=conditions, params=params, descending=True, limit=len(wanted)
        )
        return page_response("files", rows, len(wanted))
    cursor = decode_cursor("files", page)
    size = limit or 20
    rows = ctx.store.page(
        "file",
        conditions=conditions,
        params=params,
        after=cursor.after,
        descending=True,
        limit=size,
    )
    return page_response("files", rows, size)


@router.get("/v1/files/{file_id}", summary="Retrieve a file's metadata")
async def retrieve_file(ctx: Ctx, file_id: str) -> Response:
    return json_response(_file(ctx.store, file_id).data)


@router.get(
    "/v1/files/{file_id}/content",
    summary="Download a file's content",
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the bytes"}},
)
async def download_file(ctx: Ctx, file_id: str) -> Response:
    store = ctx.store
    record = usable_file(store, file_id)
    if record.data.get("downloadable") is False:
        raise bad_request(
            f"file {file_id} cannot be downloaded: only files a tool made can be",
            error_code="file_not_downloadable",
        )
    stored = store.get_files(record.id)
    content = stored[0][1] if stored else b""
    name = record.data["filename"]
    # an ASCII fallback and the exact name (RFC 6266): header values are Latin-1 only
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    disposition = f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(
        content,
        media_type=record.data["mime_type"],
        headers={"content-disposition": disposition},
    )


@router.delete("/v1/files/{file_id}", summary="Delete a file")
async def delete_file(ctx: Ctx, file_id: str) -> Response:
    store = ctx.store
    with store.write():
        _file(store, file_id)
        store.delete_files(file_id)
        store.delete(file_id)
    return json_response({"id": file_id, "type": "file_deleted"})
