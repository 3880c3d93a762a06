"""HTTP routes of deployments and deployment runs.

A deployment pins a concrete agent version (a bare id pins the latest, at create and again
at every update that sends one). ``status`` is ``active``/``paused`` (manual pause only:
there is no scheduler, so no scheduled fire ever runs or auto-pauses; an archived deployment
reports ``active``). ``upcoming_runs_at`` (next <= 5 cron instants, ``[]`` once archived)
and ``last_run_at`` are computed when rendering, inside ``schedule`` only (where SDK 2.10.0
declares them; a deployment without a schedule has neither). ``POST .../run`` creates a
session through the normal session path and records a ``manual`` run; a broken reference
(archived agent, missing or archived environment or vault) yields a run with ``error`` and no
session.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from .context import Ctx, agent_reference, agent_snapshot, new_object, require
from .cron import CronError, parse_cron
from .crud import add_archive, add_retrieve
from .defaults import check_metadata, none_if_empty, patch_metadata, refuse_archived
from .errors import bad_request
from .ids import format_ts, new_id, now_ts
from .listing import Created, CreatedAny, Listed, WidePaged, list_objects
from .paging import json_response
from .routes_files import check_files, check_rubric_files, missing_file
from .routes_memory_stores import archived_reference, check_reference
from .routes_sessions import SNAPSHOT_FIELDS, check_vaults, open_session, usable_environment
from .schemas_runtime import DeploymentCreate, DeploymentUpdate
from .shapes import session_snapshot
from .store import Store


def _schedule(sent: dict[str, Any] | None) -> dict[str, Any] | None:
    if sent is None:
        return None
    try:
        parse_cron(sent["expression"], sent["timezone"])
    except CronError as exc:
        raise bad_request(f"schedule: {exc}") from None
    return {"type": "cron", "expression": sent["expression"], "timezone": sent["timezone"]}


def _resources(sent: list[dict[str, Any]] | None) -> tuple[list[dict[str, Any]], list[Any]]:
    """(echoed resources without write-only tokens, the tokens by position)."""
    shown, tokens = [], []
    for resource in sent or []:
        item = dict(resource)
        tokens.append(item.pop("authorization_token", None))
        shown.append(item)
    return shown, tokens


def render(deployment: dict[str, Any]) -> dict[str, Any]:
    """The wire object: the run times computed and nested in ``schedule`` (the only place
    the SDK declares them); the stored ``last_run_at`` is not a field of its own, and a
    ``budget`` that is not set is absent ("Absent when no budget is set"); an archived one
    reports ``active`` and no ``paused_reason`` ("Archived deployments report `active`")."""
    out = {
        k: v
        for k, v in deployment.items()
        if k not in ("last_run_at", "upcoming_runs_at") and (v is not None or k != "budget")
    }
    if deployment.get("archived_at"):
        out["status"], out["paused_reason"] = "active", None
    schedule = deployment.get("schedule")
    if schedule is None:
        return out
    upcoming: list[str] = []
    if not deployment.get("archived_at"):
        try:
            cron = parse_cron(schedule["expression"], schedule["timezone"])
            upcoming = [format_ts(t) for t in cron.upcoming(datetime.now(UTC))]
        except CronError:  # validated on write; a tz database change could still break it
            upcoming = []
    out["schedule"] = {
        **schedule,
        "last_run_at": deployment.get("last_run_at"),
        "upcoming_runs_at": upcoming,
    }
    return out


def _run_error(store: Store, deployment: dict[str, Any]) -> dict[str, Any] | None:
    """Why a fire cannot create a session now, as a run ``error``, or None."""
    agent = store.get(deployment["agent"]["id"], "agent")
    if agent is None or agent.archived:
        return {"type": "agent_archived_error", "message": "the deployment's agent is archived"}
    env = store.get(deployment["environment_id"], "environment")
    if env is None:
        return {
            "type": "environment_not_found_error",
            "message": "the environment no longer exists",
        }
    if env.archived:
        return {"type": "environment_archived_error", "message": "the environment is archived"}
    for vault_id in deployment["vault_ids"]:
        vault = store.get(vault_id, "vault")
        if vault is None:
            return {
                "type": "vault_not_found_error",
                "message": f"vault {vault_id} no longer exists",
            }
        if vault.archived:
            return {"type": "vault_archived_error", "message": f"vault {vault_id} is archived"}
    return archived_reference(store, deployment["resources"]) or missing_file(
        store, deployment["resources"], deployment["initial_events"]
    )


router = APIRouter(tags=["deployments"])


def set_status(store: Store, deployment_id: str, paused: bool) -> dict[str, Any]:
    with store.write():
        current = require(store, "deployment", deployment_id).data
        refuse_archived("deployment", current)
        if (current["status"] == "paused") == paused:
            return current
        updated = {
            **current,
            "status": "paused" if paused else "active",
            "paused_reason": {"type": "manual"} if paused else None,
            "updated_at": now_ts(),
        }
        store.replace(deployment_id, updated)
    return updated


@router.post("/v1/deployments", summary="Create a deployment")
async def create_deployment(ctx: Ctx, body: DeploymentCreate) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    with store.write():
        ref = agent_reference(store, sent["agent"])
        usable_environment(store, sent["environment_id"])
        check_reference(store, sent.get("resources"))
        check_files(store, sent.get("resources"))
        check_rubric_files(store, sent["initial_events"])
        resources, tokens = _resources(sent.get("resources"))
        fields = {
            "name": sent["name"],
            "description": none_if_empty(sent.get("description")),
            "agent": ref,
            "environment_id": sent["environment_id"],
            "vault_ids": check_vaults(store, sent.get("vault_ids") or []),
            "initial_events": sent["initial_events"],
            "resources": resources,
            "schedule": _schedule(sent.get("schedule")),
            "budget": sent.get("budget"),
            "metadata": check_metadata(sent.get("metadata") or {}),
            "status": "active",
            "paused_reason": None,
            "last_run_at": None,
        }
        deployment = new_object("deployment", "deployment", fields)
        secrets = {"resource_tokens": tokens} if any(tokens) else None
        store.insert("deployment", deployment, secrets=secrets)
    return json_response(render(deployment))


add_retrieve(router, "deployment", "Retrieve a deployment", render=render)


@router.post("/v1/deployments/{deployment_id}", summary="Update a deployment")
async def update_deployment(ctx: Ctx, deployment_id: str, body: DeploymentUpdate) -> Response:
    store = ctx.store
    sent = body.model_dump(exclude_unset=True)
    for field in ("agent", "environment_id", "name", "initial_events"):
        if field in sent and sent[field] is None:
            raise bad_request(f"{field} cannot be cleared")
    with store.write():
        record = require(store, "deployment", deployment_id)
        current = record.data
        refuse_archived("deployment", current)
        updated = copy.deepcopy(current)
        secrets = record.secrets
        if "agent" in sent:
            updated["agent"] = agent_reference(store, sent["agent"])
        if "environment_id" in sent:
            if sent["environment_id"] != current["environment_id"]:
                usable_environment(store, sent["environment_id"])
            updated["environment_id"] = sent["environment_id"]
        for field in ("name", "initial_events"):
            if field in sent:
                updated[field] = sent[field]
        check_rubric_files(store, sent.get("initial_events"))
        if "description" in sent:
            updated["description"] = none_if_empty(sent["description"])
        if "vault_ids" in sent:
            updated["vault_ids"] = check_vaults(store, sent["vault_ids"] or [])
        if "resources" in sent:
            check_reference(store, sent["resources"])
            check_files(store, sent["resources"])
            updated["resources"], tokens = _resources(sent["resources"])
            secrets = {"resource_tokens": tokens} if any(tokens) else {}
        if "schedule" in sent:
            updated["schedule"] = _schedule(sent["schedule"])
        if "budget" in sent:
            updated["budget"] = sent["budget"]
        updated["metadata"] = patch_metadata(current["metadata"], sent.get("metadata"))
        if updated == current and secrets == record.secrets:
            return json_response(render(current))
        updated["updated_at"] = now_ts()
        store.replace(deployment_id, updated, secrets=secrets)
    return json_response(render(updated))


@router.get("/v1/deployments", summary="List deployments")
async def list_deployments(
    ctx: Ctx,
    window: Listed,
    created: Created,
    agent_id: str | None = Query(None, max_length=128),
    status: Literal["active", "paused"] | None = None,
) -> Response:
    if window.include_archived and status is not None:
        raise bad_request("status cannot be combined with include_archived")
    where = [
        (f"json_extract(data, '{path}') = ?", [value])
        for path, value in (("$.agent.id", agent_id), ("$.status", status))
        if value is not None
    ]
    return list_objects(
        ctx.store, "deployment", "deployments", window, created=created, where=where, render=render
    )


add_archive(router, "deployment", "Archive a deployment", render=render)


@router.post("/v1/deployments/{deployment_id}/pause", summary="Pause a deployment")
async def pause_deployment(ctx: Ctx, deployment_id: str) -> Response:
    store = ctx.store
    return json_response(render(set_status(store, deployment_id, paused=True)))


@router.post("/v1/deployments/{deployment_id}/unpause", summary="Unpause a deployment")
async def unpause_deployment(ctx: Ctx, deployment_id: str) -> Response:
    store = ctx.store
    return json_response(render(set_status(store, deployment_id, paused=False)))


@router.post("/v1/deployments/{deployment_id}/run", summary="Run a deployment now")
async def run_deployment(ctx: Ctx, deployment_id: str) -> Response:
    store = ctx.store
    session_id = None
    with store.write():
        record = require(store, "deployment", deployment_id)
        deployment = record.data
        refuse_archived("deployment", deployment)
        error = _run_error(store, deployment)
        if error is None:
            agent = agent_snapshot(store, deployment["agent"])
            snapshot = session_snapshot(store, agent, SNAPSHOT_FIELDS)
            tokens = record.secrets.get("resource_tokens") or []
            resources = [
                {**r, "authorization_token": tokens[i]} if i < len(tokens) and tokens[i] else r
                for i, r in enumerate(deployment["resources"])
            ]
            session = open_session(
                store,
                agent=snapshot,
                environment_id=deployment["environment_id"],
                vault_ids=list(deployment["vault_ids"]),
                resources=resources,
                budget=deployment.get("budget"),
                deployment_id=deployment_id,
                initial_events=deployment["initial_events"],
            )
            session_id = session["id"]
        run = {
            "type": "deployment_run",
            "id": new_id("deployment_run"),
            "deployment_id": deployment_id,
            "agent": dict(deployment["agent"]),
            "trigger_context": {"type": "manual"},
            "session_id": session_id,
            "error": error,
            "created_at": now_ts(),
        }
        store.insert("deployment_run", run, parent_id=deployment_id)
    if session_id is not None:
        ctx.hub.notify(session_id)
    return json_response(run)


add_retrieve(router, "deployment_run", "Retrieve a deployment run", name="retrieve_run")


@router.get("/v1/deployment_runs", summary="List deployment runs, newest first")
async def list_runs(
    ctx: Ctx,
    window: WidePaged,
    created: CreatedAny,
    deployment_id: str | None = Query(None, max_length=128),
    has_error: bool | None = None,
    trigger_type: Literal["schedule", "manual"] | None = None,
) -> Response:
    where: list[tuple[str, list[Any]]] = []
    if has_error is not None:
        where.append(
            ("json_extract(data, '$.error') IS " + ("NOT NULL" if has_error else "NULL"), [])
        )
    if trigger_type is not None:
        where.append(("json_extract(data, '$.trigger_context.type') = ?", [trigger_type]))
    return list_objects(
        ctx.store,
        "deployment_run",
        "deployment_runs",
        window,
        created=created,
        where=where,
        parent_id=deployment_id,
        include_archived=True,
        descending=True,
    )
