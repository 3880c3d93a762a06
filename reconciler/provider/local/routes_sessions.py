"""HTTP routes of sessions, their events and the SSE event stream.

A session pins an agent version at creation (a bare id pins the latest) and keeps a snapshot
of it, optionally with per-session overrides. ``vault_ids`` are fixed at creation; update
may replace the snapshot's ``tools``/``mcp_servers``, the budget (never add one), the title
and patch metadata. The data plane itself (the echo agent, the stream) is ``sessions``.
Events sent to an archived session are a 409; to a deleted one a 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response, StreamingResponse

from .context import (
    Ctx,
    agent_reference,
    agent_snapshot,
    edit,
    merged_list,
    new_object,
    require,
    usable,
)
from .crud import add_archive, add_retrieve
from .defaults import (
    AGENT_CONTENT_FIELDS,
    check_mcp_wiring,
    check_metadata,
    none_if_empty,
    normalise_model,
    normalise_skills,
    normalise_tools,
)
from .errors import bad_request, conflict
from .ids import new_id, now_ts, parse_ts
from .listing import CreatedAny, Listed, WidePaged, list_objects
from .paging import decode_cursor, json_response, page_response
from .routes_files import check_rubric_files, usable_file
from .routes_memory_stores import mount
from .routes_skills import resolve_custom_skill
from .schemas_runtime import EventsSend, SessionCreate, SessionUpdate
from .sessions import run_events, stream_events
from .shapes import session_snapshot
from .store import Store

Status = Literal["rescheduling", "running", "idle", "terminated"]
#: the SDK's ``BetaManagedAgentsSessionEventType``: what an events list may filter on
EventType = Literal[
    "user.message", "user.interrupt", "user.tool_confirmation", "user.custom_tool_result",
    "agent.custom_tool_use", "agent.message", "agent.thinking", "agent.mcp_tool_use",
    "agent.mcp_tool_result", "agent.tool_use", "agent.tool_result",
    "agent.thread_message_received", "agent.thread_message_sent",
    "agent.thread_context_compacted", "session.error", "session.status_rescheduled",
    "session.status_running", "session.status_idle", "session.status_terminated",
    "session.thread_created", "span.outcome_evaluation_start", "span.outcome_evaluation_end",
    "span.model_request_start", "span.model_request_end", "span.outcome_evaluation_ongoing",
    "user.define_outcome", "session.thread_status_running", "session.thread_status_idle",
    "session.thread_status_terminated", "user.tool_result", "session.thread_status_rescheduled",
    "session.updated", "system.message", "session.usage", "workflow_run.created",
    "workflow_run.status_running", "workflow_run.status_idle", "workflow_run.status_ended",
    "workflow_run.error", "workflow_run.phase_started", "workflow_run.phase_ended",
]  # fmt: skip
#: the SDK's ``BetaManagedAgentsDeltaType``: what a stream may preview
DeltaType = Literal["agent.message", "agent.thinking"]
#: what a session copies of its agent: the agent's content, but not its metadata
SNAPSHOT_FIELDS = tuple(f for f in AGENT_CONTENT_FIELDS if f != "metadata")


def _servers(servers: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"type": "url", "name": s["name"], "url": s["url"]} for s in servers or []]


def session_agent(store: Store, sent: Any) -> dict[str, Any]:
    """The session's agent snapshot for ``agent`` as sent (id, reference or overrides)."""
    if isinstance(sent, str):
        ref = agent_reference(store, sent)
    else:
        ref = agent_reference(
            store, {"type": "agent", "id": sent["id"], "version": sent.get("version")}
        )
    snapshot = session_snapshot(store, agent_snapshot(store, ref), SNAPSHOT_FIELDS)
    if isinstance(sent, dict) and sent["type"] == "agent_with_overrides":
        if sent.get("model") is not None:
            snapshot["model"] = normalise_model(sent["model"], snapshot["model"])
        if "system" in sent:
            snapshot["system"] = none_if_empty(sent["system"])
        if "tools" in sent:
            snapshot["tools"] = normalise_tools(sent["tools"])
        if "mcp_servers" in sent:
            snapshot["mcp_servers"] = _servers(sent["mcp_servers"])
        if "skills" in sent:
            snapshot["skills"] = normalise_skills(
                sent["skills"], lambda sid, v: resolve_custom_skill(store, sid, v)
            )
        check_mcp_wiring(snapshot["tools"], snapshot["mcp_servers"])
    return snapshot


def session_resources(
    store: Store, resources: list[dict[str, Any]] | None, now: str
) -> tuple[list[Any], list[Any]]:
    """(response resources, write-only tokens by position); memory stores and files must
    exist."""
    out, tokens = [], []
    stores = iter(mount(store, resources or []))
    for r in resources or []:
        kind = r["type"]
        if kind == "github_repository":
            repo = r["url"].rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "repository"
            item = {
                "id": new_id("resource"),
                "type": kind,
                "url": r["url"],
                "mount_path": r.get("mount_path") or f"/workspace/{repo}",
                "checkout": r.get("checkout"),
                "created_at": now,
                "updated_at": now,
            }
            tokens.append(r.get("authorization_token"))
        elif kind == "file":
            usable_file(store, r["file_id"])
            item = {
                "id": new_id("resource"),
                "type": kind,
                "file_id": r["file_id"],
                "mount_path": r.get("mount_path") or f"/mnt/session/uploads/{r['file_id']}",
                "created_at": now,
                "updated_at": now,
            }
            tokens.append(None)
        else:
            item = next(stores)
            tokens.append(None)
        out.append(item)
    return out, tokens


def check_vaults(store: Store, vault_ids: list[str]) -> list[str]:
    for vault_id in vault_ids:
        if require(store, "vault", vault_id).archived:
            raise bad_request(f"vault {vault_id} is archived; archived vaults cannot be attached")
    if len(set(vault_ids)) != len(vault_ids):
        raise bad_request("vault_ids must not repeat a vault")
    return list(vault_ids)


def usable_environment(store: Store, environment_id: str) -> None:
    """An environment a new session may run in: it exists and is not archived."""
    usable(store, "environment", environment_id)


def open_session(
    store: Store,
    *,
    agent: dict[str, Any],
    environment_id: str,
    vault_ids: list[str],
    resources: list[dict[str, Any]] | None,
    title: str | None = None,
    metadata: dict[str, str] | None = None,
    budget: dict[str, Any] | None = None,
    deployment_id: str | None = None,
    initial_events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Create and store a session (inside the caller's write transaction)."""
    now = now_ts()
    items, tokens = session_resources(store, resources, now)
    fields = {
        "agent": agent,
        "environment_id": environment_id,
        "vault_ids": vault_ids,
        "status": "idle",
        "title": title,
        "metadata": check_metadata(metadata or {}),
        "resources": items,
        "budget": budget,
        "usage": {"input_tokens": 0, "output_tokens": 0},
        "stats": {"active_seconds": 0.0, "duration_seconds": 0.0},
        "outcome_evaluations": [],
        "deployment_id": deployment_id,
    }
    session = new_object("session", "session", fields, now)
    secrets = {"resource_tokens": tokens} if any(tokens) else None
    store.insert("session", session, secrets=secrets)
    if initial_events:
        run_events(store, session, initial_events)
        store.replace(session["id"], session)
    return session


router = APIRouter(tags=["sessions"])


def render(session: dict[str, Any]) -> dict[str, Any]:
    """The wire session: ``stats.duration_seconds`` is "Elapsed time since session creation"
    (the SDK), computed when answering; a terminated session's stays at its last update."""
    created = parse_ts(session["created_at"])
    until = parse_ts(session["updated_at"]) if session["status"] == "terminated" else None
    elapsed = ((until or datetime.now(UTC)) - created).total_seconds()
    stats = {**session["stats"], "duration_seconds": round(max(elapsed, 0.0), 6)}
    return {**session, "stats": stats}


@router.post("/v1/sessions", summary="Create a session")
async def create_session(ctx: Ctx, body: SessionCreate) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    with store.write():
        agent = session_agent(store, sent["agent"])
        usable_environment(store, sent["environment_id"])
        check_rubric_files(store, sent.get("initial_events"))  # as a send checks them
        session = open_session(
            store,
            agent=agent,
            environment_id=sent["environment_id"],
            vault_ids=check_vaults(store, sent.get("vault_ids") or []),
            resources=sent.get("resources"),
            title=sent.get("title"),
            metadata=sent.get("metadata"),
            budget=sent.get("budget"),
            initial_events=sent.get("initial_events"),
        )
    ctx.hub.notify(session["id"])
    return json_response(render(session))


add_retrieve(router, "session", "Retrieve a session", render=render)


def _check_budget_change(session: dict[str, Any], budget: dict[str, Any] | None) -> None:
    """A new budget replaces one the session has, and must stay above what it has spent.

    Raises:
        ApiError: 400 ``budget_create_only`` (the session has no budget: it was created
            without one, or it was removed) / ``budget_not_raised`` (the SDK's reasons).
    """
    if budget is None:
        return
    if session.get("budget") is None:
        raise bad_request(
            "a budget is set when a session is created; this session has none "
            "(created without one, or it was removed), so none can be added",
            error_code="budget_create_only",
        )
    spent = ((session.get("usage") or {}).get("list_cost") or {}).get("amount") or "0"
    if int(budget["max_list_cost"]["amount"]) <= int(spent):
        raise bad_request(
            f"budget.max_list_cost.amount must be above the {spent} already spent",
            error_code="budget_not_raised",
        )


@router.post("/v1/sessions/{session_id}", summary="Update a session")
async def update_session(ctx: Ctx, session_id: str, body: SessionUpdate) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    if "vault_ids" in sent:
        raise bad_request("vault_ids cannot be changed after creation (reserved)")
    with edit(store, "session", session_id) as change:
        current, updated = change.current, change.updated
        if sent.get("agent") is not None:
            if current["status"] == "running":
                raise conflict(f"session {session_id} is running; wait until it is idle")
            agent = dict(current["agent"])
            if "tools" in sent["agent"]:
                agent["tools"] = normalise_tools(sent["agent"]["tools"])
            if "mcp_servers" in sent["agent"]:
                agent["mcp_servers"] = _servers(sent["agent"]["mcp_servers"])
            check_mcp_wiring(agent["tools"], agent["mcp_servers"])
            updated["agent"] = agent
        if "budget" in sent:
            _check_budget_change(current, sent["budget"])
            updated["budget"] = sent["budget"]
        if "title" in sent:
            updated["title"] = sent["title"]
        saved = change.save(sent.get("metadata"))
        changes = _updated_event(current, saved)
        if changes is not None:
            store.append_event(session_id, changes)
    if changes is not None:
        ctx.hub.notify(session_id)
    return json_response(render(saved))


def _updated_event(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """The ``session.updated`` event of an update, or None when it changed nothing: only the
    fields that changed, ``metadata`` only while it is not empty (the SDK's event model)."""
    changed: dict[str, Any] = {
        key: after.get(key)
        for key in ("agent", "budget", "title")
        if after.get(key) != before.get(key)
    }
    if after["metadata"] != before["metadata"] and after["metadata"]:
        changed["metadata"] = after["metadata"]
    if not changed and after["metadata"] == before["metadata"]:
        return None
    return {"id": new_id("event"), "type": "session.updated", "processed_at": now_ts(), **changed}


@router.get("/v1/sessions", summary="List sessions (bidirectional cursor)")
async def list_sessions(
    ctx: Ctx,
    window: Listed,
    created: CreatedAny,
    order: Literal["asc", "desc"] = "desc",
    agent_id: str | None = Query(None, max_length=128),
    agent_version: int | None = Query(None, ge=1, le=2**31),
    deployment_id: str | None = Query(None, max_length=128),
    memory_store_id: str | None = Query(None, max_length=128),
    statuses_b: Annotated[list[Status] | None, Query(alias="statuses[]")] = None,
    statuses: Annotated[list[Status] | None, Query()] = None,
) -> Response:
    if agent_version is not None and agent_id is None:
        raise bad_request("agent_version filters only together with agent_id")
    where: list[tuple[str, Sequence[Any]]] = [
        (f"json_extract(data, '{path}') = ?", [value])
        for path, value in (
            ("$.agent.id", agent_id),
            ("$.agent.version", agent_version),
            ("$.deployment_id", deployment_id),
        )
        if value is not None
    ]
    wanted = merged_list(statuses_b, statuses)
    if wanted:
        where.append((f"json_extract(data, '$.status') IN ({','.join('?' * len(wanted))})", wanted))
    if memory_store_id is not None:
        mounts = (
            "EXISTS (SELECT 1 FROM json_each(data, '$.resources') r"
            " WHERE json_extract(r.value, '$.memory_store_id') = ?)"
        )
        where.append((mounts, [memory_store_id]))
    return list_objects(
        ctx.store,
        "session",
        f"sessions:{order}",
        window,
        created=created,
        where=where,
        descending=order == "desc",
        bidirectional=True,
        render=render,
    )


add_archive(router, "session", "Archive a session", render=render)


@router.delete("/v1/sessions/{session_id}", summary="Delete a session and its events")
async def delete_session(ctx: Ctx, session_id: str) -> Response:
    store = ctx.store
    with store.write():
        require(store, "session", session_id)
        store.delete_events(session_id)
        store.delete(session_id)
    ctx.hub.notify(session_id)
    return json_response({"id": session_id, "type": "session_deleted"})


#: what each answer to a tool use answers (the SDK's ``tool_use_id``/``custom_tool_use_id`` docs)
ANSWERS = {
    "user.tool_confirmation": ("tool_use_id", ("agent.tool_use", "agent.mcp_tool_use")),
    "user.tool_result": ("tool_use_id", ("agent.tool_use",)),
    "user.custom_tool_result": ("custom_tool_use_id", ("agent.custom_tool_use",)),
}


def _check_answers(store: Store, session_id: str, events: list[dict[str, Any]]) -> None:
    """An answer to a tool use names a tool-use event of this session."""
    for event in events:
        if event["type"] not in ANSWERS:
            continue
        field, kinds = ANSWERS[event["type"]]
        ref = event[field]
        marks = ",".join("?" * len(kinds))
        if not store.event_page(session_id, conditions=["id = ?", f"type IN ({marks})"],
                                params=[ref, *kinds], limit=1):  # fmt: skip
            raise bad_request(
                f"{event['type']}: {field} {ref} is not an {' or '.join(kinds)} event"
                " of this session"
            )


@router.post("/v1/sessions/{session_id}/events", summary="Send events to a session")
async def send_events(ctx: Ctx, session_id: str, body: EventsSend) -> Response:
    store = ctx.store
    events = [e.model_dump(exclude_unset=True) for e in body.events]
    with store.write():
        session = require(store, "session", session_id).data
        if session.get("archived_at"):
            raise conflict(f"session {session_id} is archived and accepts no events")
        check_rubric_files(store, events)
        _check_answers(store, session_id, events)
        echoed = run_events(store, session, events)
        session["updated_at"] = now_ts()
        store.replace(session_id, session)
    ctx.hub.notify(session_id)
    return json_response({"data": echoed})


@router.get("/v1/sessions/{session_id}/events", summary="List a session's events")
async def list_events(
    ctx: Ctx,
    session_id: str,
    window: WidePaged,  # the SDK's own session tool runner reads 1,000 events a page
    created: CreatedAny,
    order: Literal["asc", "desc"] = "asc",
    types_b: Annotated[list[EventType] | None, Query(alias="types[]")] = None,
    types: Annotated[list[EventType] | None, Query()] = None,
) -> Response:
    store = ctx.store
    require(store, "session", session_id)
    tag = f"events:{session_id}:{order}"
    cursor = decode_cursor(tag, window.page)
    conditions, params = created.filters("processed_at")
    wanted = merged_list(types_b, types)
    if wanted:
        conditions.append(f"type IN ({','.join('?' * len(wanted))})")
        params.extend(wanted)
    rows = store.event_page(
        session_id,
        conditions=conditions,
        params=params,
        after=cursor.after,
        descending=order == "desc",
        limit=window.limit,
    )
    return page_response(tag, rows, window.limit)


@router.get(
    "/v1/sessions/{session_id}/events/stream",
    summary="Stream a session's new events (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def stream(
    ctx: Ctx,
    session_id: str,
    event_deltas_b: Annotated[list[DeltaType] | None, Query(alias="event_deltas[]")] = None,
    event_deltas: Annotated[list[DeltaType] | None, Query()] = None,
) -> StreamingResponse:
    store = ctx.store
    # Deltas are accepted and ignored: the echo agent emits whole messages only.
    require(store, "session", session_id)
    # Read the starting point now, before the headers go out: an event sent right after
    # the client sees the response must not be missed.
    start = store.last_event_seq(session_id)
    return StreamingResponse(
        stream_events(store, ctx.hub, session_id, start, ping_interval=ctx.ping_interval),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
