"""Shared plumbing of the route modules: the per-app context, lookups and list filters.

Everything a handler needs besides its own resource rules: fetch-or-404, resolving agent
references to a concrete version, and turning ``created_at[...]`` query values into SQL.
No resource-specific rules live here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from .defaults import patch_metadata, refuse_archived
from .errors import ApiError, bad_request, not_found
from .ids import canonical_ts, new_id, now_ts
from .sessions import PING_INTERVAL, EventHub
from .store import Record, Store

KIND_LABELS = {
    "agent": "agent",
    "environment": "environment",
    "vault": "vault",
    "credential": "credential",
    "session": "session",
    "deployment": "deployment",
    "deployment_run": "deployment run",
    "memory_store": "memory store",
}


@dataclass
class Provider:
    """What every route of one app shares."""

    store: Store
    hub: EventHub = field(default_factory=EventHub)
    ping_interval: float = PING_INTERVAL


async def provider_of(request: Request) -> Provider:
    """The Provider of the app serving this request.

    Routes are built once per process and shared by every app (building FastAPI routes is
    slow), so a handler finds its app's store through the request, not a closure. It is
    ``async`` only so that FastAPI calls it in line: a plain ``def`` dependency runs in a
    worker thread, one thread hop per request.
    """
    return request.app.state.provider  # type: ignore[no-any-return]


Ctx = Annotated[Provider, Depends(provider_of)]


def require(store: Store, kind: str, object_id: str) -> Record:
    """The stored object, or a 404 naming it."""
    record = store.get(object_id, kind)
    if record is None:
        raise not_found(KIND_LABELS[kind], object_id)
    return record


def usable(store: Store, kind: str, object_id: str, archived_hint: str = "") -> Record:
    """An object a new session or deployment may name: it exists and is not archived.

    Raises:
        ApiError: 404 ``<kind>_not_found`` / 400 ``<kind>_archived``.
    """
    label = f"{KIND_LABELS[kind]} {object_id}"
    record = store.get(object_id, kind)
    if record is None:
        raise ApiError(404, f"{label} not found", error_code=f"{kind}_not_found")
    if record.archived:
        raise ApiError(400, f"{label} is archived{archived_hint}", error_code=f"{kind}_archived")
    return record


def new_object(
    kind: str, wire_type: str, fields: dict[str, Any], now: str | None = None
) -> dict[str, Any]:
    """A new object of ``kind``: its type and a fresh id, ``fields``, then the timestamps
    (``now``, or the current time)."""
    now = now or now_ts()
    return {
        "type": wire_type,
        "id": new_id(kind),
        **fields,
        "created_at": now,
        "updated_at": now,
        "archived_at": None,
    }


@dataclass
class Edit:
    """An update in progress (``edit``): the stored object and the copy the route changes;
    ``save`` applies the metadata patch and stores the copy."""

    store: Store
    current: dict[str, Any]
    updated: dict[str, Any]

    def save(
        self, metadata: dict[str, Any] | None, *, empty_deletes: bool = False
    ) -> dict[str, Any]:
        """Patch the metadata, then store the copy unless nothing changed; the result."""
        self.updated["metadata"] = patch_metadata(
            self.current["metadata"], metadata, empty_deletes=empty_deletes
        )
        return save_if_changed(self.store, self.current["id"], self.current, self.updated)


@contextmanager
def edit(store: Store, kind: str, object_id: str, error_code: str | None = None) -> Iterator[Edit]:
    """Update a stored object inside one write transaction; an archived one refuses (400
    ``error_code``).

    Raises:
        ApiError: 404 for an unknown id, 400 for an archived object.
    """
    with store.write():
        current = require(store, kind, object_id).data
        refuse_archived(KIND_LABELS[kind], current, error_code)
        yield Edit(store, current, dict(current))


def archive(store: Store, kind: str, object_id: str) -> dict[str, Any]:
    """Archive a stored object; archiving an archived one returns it unchanged.

    Raises:
        ApiError: 404 for an unknown id.
    """
    with store.write():
        return archive_record(store, require(store, kind, object_id))


def archive_record(
    store: Store, record: Record, secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Archive a fetched object inside the caller's ``write()``, replacing its secrets when
    ``secrets`` is given (a credential's are purged); an archived one is returned unchanged."""
    if record.archived:
        return record.data
    now = now_ts()
    data = {**record.data, "archived_at": now, "updated_at": now}
    store.replace(record.id, data, secrets=secrets)
    return data


def save_if_changed(
    store: Store, object_id: str, current: dict[str, Any], updated: dict[str, Any]
) -> dict[str, Any]:
    """Store ``updated`` with a new ``updated_at`` unless the update changed nothing."""
    if updated == current:
        return current
    updated["updated_at"] = now_ts()
    store.replace(object_id, updated)
    return updated


def agent_reference(store: Store, ref: Any, *, allow_archived: bool = False) -> dict[str, Any]:
    """Resolve an agent id string or ``{type: agent, id, version?}`` to a concrete version.

    Raises:
        ApiError: 404 for an unknown agent or version, 400 for an archived agent.
    """
    if isinstance(ref, str):
        agent_id, version = ref, None
    elif isinstance(ref, dict) and ref.get("type") == "agent" and isinstance(ref.get("id"), str):
        agent_id, version = ref["id"], ref.get("version")
        if version is not None and (type(version) is not int or not 1 <= version <= 2**31):
            raise bad_request("agent version must be an integer >= 1")
    else:
        raise bad_request("an agent reference is an agent id or {type: agent, id, version}")
    record = require(store, "agent", agent_id)
    if record.archived and not allow_archived:
        raise bad_request(f"agent {agent_id} is archived")
    current = int(record.data["version"])
    if version is None:
        version = current
    elif version > current:
        raise not_found("agent version", f"{agent_id} v{version}")
    return {"type": "agent", "id": agent_id, "version": version}


def agent_snapshot(store: Store, ref: dict[str, Any]) -> dict[str, Any]:
    """The agent object at the referenced version."""
    data = store.get_version(ref["id"], ref["version"])
    if data is None:
        raise not_found("agent version", f"{ref['id']} v{ref['version']}")
    return data


def created_filters(
    column: str,
    gt: str | None = None,
    gte: str | None = None,
    lt: str | None = None,
    lte: str | None = None,
) -> tuple[list[str], list[Any]]:
    """SQL conditions for ``created_at[gt|gte|lt|lte]`` on a fixed-width timestamp column."""
    conditions: list[str] = []
    params: list[Any] = []
    for op, value in ((">", gt), (">=", gte), ("<", lt), ("<=", lte)):
        if value is None:
            continue
        try:
            params.append(canonical_ts(value))
        except (ValueError, OverflowError):
            raise bad_request(f"created_at filter {value!r} is not an RFC 3339 timestamp") from None
        conditions.append(f"{column} {op} ?")
    return conditions, params


def merged_list(bracketed: Sequence[str] | None, plain: Sequence[str] | None) -> list[str]:
    """Array query params arrive as ``k[]=`` (the SDK) or repeated ``k=`` (the docs)."""
    return [*(bracketed or []), *(plain or [])]
