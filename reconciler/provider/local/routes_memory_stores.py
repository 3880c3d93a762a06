"""HTTP routes of memory stores, and the check of a ``memory_store`` resource reference.

A store has a name (1-255, not unique), a description (<= 1,024; ``""`` clears it, and it
reads ``""`` when unset) and metadata (a patch on update: ``null`` deletes a key). Archive is
final and idempotent: an archived store refuses updates and memory writes (400) and new
sessions or deployments naming it, while its memories stay readable and deletable. Delete
removes the store with every memory and version. Lists run in creation order and hide
archived stores unless ``include_archived=true`` (memory stores send no ``[]`` filters).

Sessions mount a store at ``/mnt/memory/<slug>``, the slug being the name lowercased with
every run of characters other than ASCII letters and digits turned into one hyphen
(``mount``); a deployment's reference is checked the same way (``check_reference``).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from . import memory_db
from .context import Ctx, Edit, usable
from .crud import add_archive, add_create, add_delete, add_retrieve, add_update
from .defaults import check_metadata
from .errors import bad_request
from .listing import Created, Listed, list_objects
from .schemas_memory import MemoryStoreCreate, MemoryStoreUpdate
from .store import Record, Store

#: a session mounts at most this many memory stores
MAX_STORES_PER_SESSION = 8
_NOT_SLUG = re.compile(r"[^a-z0-9]+")

router = APIRouter(tags=["memory stores"])


def slug(name: str) -> str:
    """The store's directory name under ``/mnt/memory/``."""
    return _NOT_SLUG.sub("-", name.lower()).strip("-") or "memory"


def usable_store(store: Store, store_id: str) -> Record:
    """A store a new session or deployment may name: it exists and is not archived.

    Raises:
        ApiError: 404 ``memory_store_not_found`` / 400 ``memory_store_archived``.
    """
    return usable(store, "memory_store", store_id, "; archived stores cannot be attached")


def _check_count(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mounted = [r for r in resources if r.get("type") == "memory_store"]
    if len(mounted) > MAX_STORES_PER_SESSION:
        raise bad_request(f"a session mounts at most {MAX_STORES_PER_SESSION} memory stores")
    ids = [r["memory_store_id"] for r in mounted]
    if len(set(ids)) != len(ids):
        raise bad_request("resources must not name the same memory store twice")
    return mounted


def check_reference(store: Store, resources: list[dict[str, Any]] | None) -> None:
    """A deployment's resources name existing, non-archived stores, each once, <= 8."""
    for resource in _check_count(resources or []):
        usable_store(store, resource["memory_store_id"])


def mount(store: Store, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The session resources of every ``memory_store`` in ``resources``, in order: the
    store's name and description snapshotted, ``access`` defaulted, ``mount_path`` set
    (two stores with one slug get ``-2``, ``-3`` ...)."""
    mounted, taken = [], set()
    for resource in _check_count(resources):
        data = usable_store(store, resource["memory_store_id"]).data
        base = path = f"/mnt/memory/{slug(data['name'])}"
        n = 1
        while path in taken:
            n += 1
            path = f"{base}-{n}"
        taken.add(path)
        mounted.append(
            {
                "type": "memory_store",
                "memory_store_id": data["id"],
                "access": resource.get("access") or "read_write",
                "instructions": resource.get("instructions"),
                "mount_path": path,
                "name": data["name"],
                "description": data["description"],
            }
        )
    return mounted


def archived_reference(store: Store, resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A deployment run's ``error`` when a store its resources name is archived or gone."""
    for resource in resources:
        if resource.get("type") != "memory_store":
            continue
        record = store.get(resource["memory_store_id"], "memory_store")
        if record is None:
            return {
                "type": "session_resource_not_found_error",
                "message": f"memory store {resource['memory_store_id']} no longer exists",
            }
        if record.archived:
            return {
                "type": "memory_store_archived_error",
                "message": f"memory store {resource['memory_store_id']} is archived",
            }
    return None


def _new_memory_store(store: Store, sent: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": sent["name"],
        "description": sent.get("description") or "",
        "metadata": check_metadata(sent.get("metadata") or {}),
    }


add_create(router, "memory_store", "Create a memory store", MemoryStoreCreate, _new_memory_store)


add_retrieve(router, "memory_store", "Retrieve a memory store")


def _change_memory_store(change: Edit, sent: dict[str, Any]) -> None:
    for field in ("name", "description"):
        if sent.get(field) is not None:
            change.updated[field] = sent[field]


add_update(
    router,
    "memory_store",
    "Update a memory store",
    MemoryStoreUpdate,
    _change_memory_store,
    archived_code="memory_store_archived",
)


@router.get("/v1/memory_stores", summary="List memory stores")
async def list_memory_stores(ctx: Ctx, window: Listed, created: Created) -> Response:
    return list_objects(ctx.store, "memory_store", "memory_stores", window, created=created)


add_archive(router, "memory_store", "Archive a memory store")


add_delete(
    router,
    "memory_store",
    "Delete a memory store and its memories",
    contents=memory_db.delete_store_contents,
)
