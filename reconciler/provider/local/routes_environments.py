"""HTTP routes of environments.

Names are unique among non-archived environments (409). ``config.type`` never changes
(400 ``invalid_config_type_change``); inside a cloud config an omitted ``networking`` or
``packages`` keeps its stored value. Description: ``null`` stores null, ``""`` stores ``""``.
Metadata is a patch where ``null`` or ``""`` deletes. Archived environments refuse updates
(400 ``environment_archived``) and new sessions; delete removes the row for good.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from .context import Ctx, Edit
from .crud import add_archive, add_create, add_delete, add_retrieve, add_update
from .defaults import build_env_config, check_metadata
from .errors import conflict
from .listing import Listed, list_objects
from .schemas import EnvironmentCreate, EnvironmentUpdate
from .store import Store


def _check_unique_name(store: Store, name: str, own_id: str | None = None) -> None:
    for other in store.find("environment", "json_extract(data, '$.name') = ?", [name]):
        if other.id != own_id:
            raise conflict(f"an environment named {name!r} already exists ({other.id})")


router = APIRouter(tags=["environments"])


def _new_environment(store: Store, sent: dict[str, Any]) -> dict[str, Any]:
    _check_unique_name(store, sent["name"])
    return {
        "name": sent["name"],
        "description": sent.get("description"),
        "config": build_env_config(sent.get("config"), None),
        "metadata": check_metadata(sent.get("metadata") or {}),
        "scope": sent.get("scope") or "organization",
    }


add_create(router, "environment", "Create an environment", EnvironmentCreate, _new_environment)


add_retrieve(router, "environment", "Retrieve an environment")


def _change_environment(change: Edit, sent: dict[str, Any]) -> None:
    current, updated = change.current, change.updated
    if sent.get("name") is not None:
        if sent["name"] != current["name"]:
            _check_unique_name(change.store, sent["name"], current["id"])
        updated["name"] = sent["name"]
    if "description" in sent:
        updated["description"] = sent["description"]
    if sent.get("config") is not None:
        updated["config"] = build_env_config(sent["config"], current["config"])
    if sent.get("scope") is not None:
        updated["scope"] = sent["scope"]


add_update(
    router,
    "environment",
    "Update an environment",
    EnvironmentUpdate,
    _change_environment,
    archived_code="environment_archived",
    empty_deletes=True,
)


@router.get("/v1/environments", summary="List environments")
async def list_environments(ctx: Ctx, window: Listed) -> Response:
    return list_objects(ctx.store, "environment", "environments", window)


add_archive(router, "environment", "Archive an environment")


add_delete(router, "environment", "Delete an environment")
