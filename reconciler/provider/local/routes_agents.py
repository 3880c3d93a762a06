"""HTTP routes of agents and their immutable versions.

Versions start at 1 and grow by one on every update that changes the stored object; a no-op
update returns the agent unchanged. An update carrying ``version`` other than the current
one is a 409 (``x-should-retry: false``). Archive sets ``archived_at`` once (idempotent) and
does not bump the version. There is no delete: agents are archived only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from .context import Ctx, agent_reference, new_object, require
from .crud import add_archive
from .defaults import AGENT_CONTENT_FIELDS, build_agent_fields, refuse_archived
from .errors import bad_request, conflict, not_found
from .ids import now_ts
from .listing import Created, Listed, Paged, list_objects
from .paging import decode_cursor, json_response, page_response
from .routes_skills import resolve_custom_skill
from .schemas import AgentCreate, AgentUpdate
from .shapes import render_agent
from .store import Store


def _resolver(store: Store) -> Any:
    def resolve(entry: Any) -> dict[str, Any]:
        ref = agent_reference(store, entry)
        target = store.get(ref["id"], "agent")
        if target is not None and target.data.get("multiagent"):
            raise bad_request(
                f"agent {ref['id']} has a multiagent config itself and cannot be a member"
            )
        return ref

    return resolve


def _skill_resolver(store: Store) -> Any:
    return lambda skill_id, version: resolve_custom_skill(store, skill_id, version)


def _order(agent: dict[str, Any]) -> dict[str, Any]:
    """Field order of the wire object (cosmetic, but it makes responses easy to read)."""
    keys = (
        "type",
        "id",
        "version",
        *AGENT_CONTENT_FIELDS,
        "created_at",
        "updated_at",
        "archived_at",
    )
    return {k: agent.get(k) for k in keys}


router = APIRouter(tags=["agents"])


@router.post("/v1/agents", summary="Create an agent")
async def create_agent(ctx: Ctx, body: AgentCreate) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    with store.write():
        fields = build_agent_fields(sent, None, _resolver(store), _skill_resolver(store))
        agent = _order(new_object("agent", "agent", {"version": 1, **fields}))
        store.insert("agent", agent)
        store.add_version(agent["id"], 1, agent)
    return json_response(render_agent(agent))


@router.get("/v1/agents/{agent_id}", summary="Retrieve an agent (optionally one version)")
async def retrieve_agent(
    ctx: Ctx, agent_id: str, version: int | None = Query(None, ge=1, le=2**31)
) -> Response:
    store = ctx.store
    record = require(store, "agent", agent_id)
    if version is None or version == record.data["version"]:
        return json_response(render_agent(record.data))
    snapshot = store.get_version(agent_id, version)
    if snapshot is None:
        raise not_found("agent version", f"{agent_id} v{version}")
    snapshot["archived_at"] = record.data.get("archived_at")
    return json_response(render_agent(snapshot))


@router.post("/v1/agents/{agent_id}", summary="Update an agent (new version if it changes)")
async def update_agent(ctx: Ctx, agent_id: str, body: AgentUpdate) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    with store.write():
        record = require(store, "agent", agent_id)
        current = record.data
        refuse_archived("agent", current)
        expected = sent.pop("version", None)
        if expected is not None and expected != current["version"]:
            raise conflict(
                f"agent {agent_id} is at version {current['version']}, not {expected};"
                " retrieve it and retry"
            )
        fields = build_agent_fields(sent, current, _resolver(store), _skill_resolver(store))
        if all(fields[k] == current.get(k) for k in AGENT_CONTENT_FIELDS):
            return json_response(render_agent(current))
        updated = _order(
            {
                **current,
                **fields,
                "version": current["version"] + 1,
                "updated_at": now_ts(),
            }
        )
        store.replace(agent_id, updated)
        store.add_version(agent_id, updated["version"], updated)
    return json_response(render_agent(updated))


@router.get("/v1/agents", summary="List agents")
async def list_agents(ctx: Ctx, window: Listed, created: Created) -> Response:
    return list_objects(ctx.store, "agent", "agents", window, created=created, render=render_agent)


add_archive(router, "agent", "Archive an agent", render=render_agent)


@router.get("/v1/agents/{agent_id}/versions", summary="List an agent's versions, newest first")
async def list_versions(ctx: Ctx, agent_id: str, window: Paged) -> Response:
    store = ctx.store
    record = require(store, "agent", agent_id)
    tag = f"versions:{agent_id}"
    cursor = decode_cursor(tag, window.page)
    rows = store.version_page(agent_id, cursor.after, window.limit)
    archived_at = record.data.get("archived_at")
    return page_response(
        tag, rows, window.limit, render=lambda v: render_agent({**v, "archived_at": archived_at})
    )
