"""HTTP routes of custom skills and their immutable versions (provider-wire.md section 15).

A skill is created by a multipart upload (``files[]``, optional ``display_name``) that is
also its first version; every later upload (``POST /v1/skills/{id}/versions``) adds a version
whose slug (``name``) must equal the first one's, and moves ``latest_version_id``. Version ids
are opaque and sort by creation (``ids.new_sorted_id``); lists of versions are newest first.
A version downloads as a zip of exactly the files it was uploaded with. Skills have no
update and no archive: a skill is deleted with its versions; a version is deleted unless it
is the skill's last one (a skill always holds one). Only custom skills are stored here; the
Anthropic skills (``anthropic_skills``: ``xlsx``, ``pptx``, ``docx``, ``pdf``) are served
read-only beside them: retrieved by their short ids, listed after the custom ones (or alone
with ``source=anthropic``), their one version retrievable and downloadable, and every write to
them a 403.

``resolve_custom_skill`` is how agents check their ``{type: custom, skill_id, version?}``
references. What an upload must look like lives in ``skill_bundle``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from . import anthropic_skills
from .context import Ctx
from .errors import ApiError, bad_request, not_found
from .ids import format_ts, new_id, new_sorted_id, now_ts
from .listing import WidePaged, list_objects
from .openapi import multipart_body
from .paging import decode_cursor, json_response, page_response
from .skill_bundle import (
    MAX_FILES,
    MAX_TOTAL_BYTES,
    Bundle,
    check_display_name,
    check_upload,
    to_zip,
)
from .store import Record, Store, dumps

SOURCES = ("custom", "anthropic", "anthropic_example", "plugin")
#: what multipart framing may add to the files' own bytes before a body is refused unread
_FRAMING_ALLOWANCE = MAX_FILES * 1024 + 64 * 1024

router = APIRouter(tags=["skills"])

#: the multipart body of both uploads, for the OpenAPI document (handlers parse it by hand)
_UPLOAD_BODY = multipart_body(
    ["files[]"],
    {
        "files[]": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "display_name": {"type": "string", "maxLength": 255},
    },
)


def _skill(store: Store, skill_id: str) -> Record:
    """A stored (custom) skill; asked for one of Anthropic's, the 403 of a write to it."""
    if skill_id in anthropic_skills.IDS:
        raise anthropic_skills.read_only(skill_id)
    record = store.get(skill_id, "skill")
    if record is None:
        raise not_found("skill", skill_id)
    return record


def _version(store: Store, skill: Record, version: str) -> Record:
    """A version of ``skill`` by id, or ``latest``."""
    wanted = skill.data["latest_version_id"] if version == "latest" else version
    record = store.get(wanted, "skill_version")
    if record is None or record.parent_id != skill.id:
        raise not_found("skill version", f"{version} of skill {skill.id}")
    return record


def resolve_custom_skill(store: Store, skill_id: str, version: str | None) -> str:
    """The version id an agent's custom skill reference pins: ``version`` when it exists,
    the skill's latest when omitted (or ``latest``).

    Raises:
        ApiError: 404 for an unknown skill or a version it does not hold.
    """
    if skill_id in anthropic_skills.IDS:
        raise ApiError(
            404,
            f"custom skill {skill_id} not found: {skill_id} is an Anthropic skill; reference "
            f"it as {{type: anthropic, skill_id: {skill_id}}}",
        )
    skill = _skill(store, skill_id)
    return str(_version(store, skill, version or "latest").id)


async def _read_upload(request: Request) -> tuple[list[tuple[str, bytes]], str | None]:
    """``(files, display_name)`` of a multipart upload."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise bad_request(
            "a skill upload is multipart/form-data: one files[] part per file, named by its "
            "path (my-skill/SKILL.md, ...)"
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_TOTAL_BYTES + _FRAMING_ALLOWANCE:
        raise bad_request(f"a skill upload is at most {MAX_TOTAL_BYTES} bytes (8 MB) in total")
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=4)
    except StarletteHTTPException as exc:
        if "Too many files" in str(exc.detail):
            raise bad_request(f"a skill upload holds at most {MAX_FILES} files") from None
        raise bad_request(f"the multipart body cannot be read: {exc.detail}") from None
    files: list[tuple[str, bytes]] = []
    display_name: str | None = None
    try:
        for key, value in form.multi_items():
            if key in ("files[]", "files"):
                if not isinstance(value, UploadFile):
                    raise bad_request("each files[] part must be a file whose filename is its path")
                files.append((value.filename or "", await value.read()))
            elif key == "display_name" and isinstance(value, str):
                display_name = check_display_name(value)
            else:
                raise bad_request(f"a skill upload takes files[] and display_name, not {key!r}")
    finally:
        await form.close()
    return files, display_name


def _new_version(store: Store, skill_id: str, bundle: Bundle, floor: str | None) -> dict[str, Any]:
    moment = datetime.now(UTC)
    version = {
        "type": "skill_version",
        "id": new_sorted_id("skill_version", moment, floor),
        "skill_id": skill_id,
        "name": bundle.slug,
        "description": bundle.description,
        "created_at": format_ts(moment),
    }
    store.insert("skill_version", version, parent_id=skill_id)
    store.put_files(version["id"], bundle.files)
    return version


@router.post(
    "/v1/skills",
    summary="Create a skill from a multipart upload (its first version)",
    openapi_extra=_UPLOAD_BODY,
)
async def create_skill(ctx: Ctx, request: Request) -> Response:
    files, display_name = await _read_upload(request)
    bundle = check_upload(files)
    store = ctx.store
    skill_id = new_id("skill")
    with store.write():
        version = _new_version(store, skill_id, bundle, None)
        skill = {
            "type": "skill",
            "id": skill_id,
            "display_name": display_name or check_display_name(bundle.title[:255]),
            "source": {"type": "custom"},
            "latest_version_id": version["id"],
            "created_at": version["created_at"],
            "updated_at": version["created_at"],
        }
        store.insert("skill", skill)
    return json_response(skill)


@router.get("/v1/skills", summary="List skills: the custom ones, then Anthropic's")
async def list_skills(
    ctx: Ctx, window: WidePaged, source: str | None = Query(None, max_length=64)
) -> Response:
    if source is not None and source not in SOURCES:
        raise bad_request(f"source must be one of {', '.join(SOURCES)}")
    after = decode_cursor("skills", window.page).after or 0
    rows: list[tuple[int, str]] = []
    if source in (None, "custom") and after < anthropic_skills.FIRST_SEQ:
        rows = ctx.store.page("skill", after=after or None, limit=window.limit)
    if source in (None, "anthropic"):
        rows += [
            (seq, dumps(skill))
            for seq, skill in anthropic_skills.rows()
            if seq > after and len(rows) <= window.limit
        ]
    return page_response("skills", rows[: window.limit + 1], window.limit)


def _any_skill(store: Store, skill_id: str) -> dict[str, Any]:
    """A skill object, Anthropic's or a stored one."""
    return anthropic_skills.skill(skill_id) or _skill(store, skill_id).data


def _any_version(store: Store, skill_id: str, version: str) -> dict[str, Any]:
    """A skill version object (an id, or ``latest``), of an Anthropic skill or a stored one."""
    if skill_id in anthropic_skills.IDS:
        found = anthropic_skills.version(skill_id, version)
        if found is None:
            raise not_found("skill version", f"{version} of skill {skill_id}")
        return found
    store_skill = _skill(store, skill_id)
    return _version(store, store_skill, version).data


@router.get("/v1/skills/{skill_id}", summary="Retrieve a skill")
async def retrieve_skill(ctx: Ctx, skill_id: str) -> Response:
    return json_response(_any_skill(ctx.store, skill_id))


@router.delete("/v1/skills/{skill_id}", summary="Delete a skill and every version of it")
async def delete_skill(ctx: Ctx, skill_id: str) -> Response:
    store = ctx.store
    with store.write():
        _skill(store, skill_id)
        for version in store.find("skill_version", "", [], parent_id=skill_id):
            store.delete_files(version.id)
        store.delete_children("skill_version", skill_id)
        store.delete(skill_id)
    return json_response({"id": skill_id, "type": "skill_deleted"})


versions = "/v1/skills/{skill_id}/versions"


@router.post(
    versions, summary="Upload a new version of a skill (multipart)", openapi_extra=_UPLOAD_BODY
)
async def create_version(ctx: Ctx, skill_id: str, request: Request) -> Response:
    files, display_name = await _read_upload(request)
    if display_name is not None:
        raise bad_request("a version upload takes files[] only; display_name is the skill's")
    bundle = check_upload(files)
    store = ctx.store
    with store.write():
        skill = _skill(store, skill_id)
        latest = _version(store, skill, "latest")
        slug = latest.data["name"]
        if bundle.slug != slug:
            raise bad_request(
                f"this upload's skill name is {bundle.slug!r} but skill {skill_id} is {slug!r}:"
                " a skill's name is fixed by its first upload"
            )
        version = _new_version(store, skill_id, bundle, latest.id)
        updated = {
            **skill.data,
            "latest_version_id": version["id"],
            "updated_at": version["created_at"],
        }
        store.replace(skill_id, updated)
    return json_response(version)


@router.get(versions, summary="List a skill's versions, newest first")
async def list_versions(ctx: Ctx, skill_id: str, window: WidePaged) -> Response:
    store = ctx.store
    tag = f"skill_versions:{skill_id}"
    if skill_id in anthropic_skills.IDS:
        after = decode_cursor(tag, window.page).after
        only = [(1, dumps(anthropic_skills.version(skill_id, "latest")))]
        return page_response(tag, only if after is None else [], window.limit)
    _skill(store, skill_id)
    return list_objects(store, "skill_version", tag, window, parent_id=skill_id, descending=True)


@router.get(versions + "/{version}", summary="Retrieve a skill version (an id, or latest)")
async def retrieve_version(ctx: Ctx, skill_id: str, version: str) -> Response:
    return json_response(_any_version(ctx.store, skill_id, version))


@router.delete(versions + "/{version}", summary="Delete a skill version (not the last one)")
async def delete_version(ctx: Ctx, skill_id: str, version: str) -> Response:
    store = ctx.store
    with store.write():
        skill = _skill(store, skill_id)
        if version == "latest":
            raise bad_request("delete a version by its id, not 'latest'")
        record = _version(store, skill, version)
        if store.count("skill_version", skill_id) <= 1:
            raise bad_request(
                f"version {version} is the only version of skill {skill_id}; a skill holds at "
                "least one version: delete the skill instead"
            )
        store.delete_files(record.id)
        store.delete(record.id)
        if skill.data["latest_version_id"] == record.id:
            newest = store.page("skill_version", parent_id=skill_id, descending=True, limit=1)
            updated = {
                **skill.data,
                "latest_version_id": _id_of(newest[0][1]),
                "updated_at": now_ts(),
            }
            store.replace(skill_id, updated)
    return json_response({"id": version, "type": "skill_version_deleted"})


@router.get(
    versions + "/{version}/content",
    summary="Download a skill version as a zip",
    responses={200: {"content": {"application/zip": {}}, "description": "the zip archive"}},
)
async def download_version(ctx: Ctx, skill_id: str, version: str) -> Response:
    store = ctx.store
    found = _any_version(store, skill_id, version)
    if skill_id in anthropic_skills.IDS:
        files = [(f"{skill_id}/SKILL.md", anthropic_skills.skill_md(skill_id))]
    else:
        files = store.get_files(found["id"])
    body = to_zip(files)
    filename = f"{found['name']}.zip"
    return Response(
        body,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _id_of(data_json: str) -> str:
    return str(json.loads(data_json)["id"])
