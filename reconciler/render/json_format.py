"""Plans and drift reports as the versioned JSON a CI job parses (``docs/json-format.md``).

The schema is a contract: adding a key is allowed within ``format_version`` 1, renaming or
removing one is not. Values are complete (never truncated); the only thing withheld is a
secret, which reads ``"(sensitive)"``. Objects have sorted keys and lists a stable order, so
the same plan always serialises to the same bytes.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from reconciler.engine.model import (
    Adopt,
    Archive,
    Create,
    Delete,
    DriftItem,
    DriftReport,
    FieldChange,
    NoOp,
    Plan,
    Replace,
    Update,
)
from reconciler.render.outline import DRIFT_TYPES, drift_sort_key
from reconciler.render.values import SENSITIVE, visible_json

#: Version of both JSON schemas; bumped only by an incompatible change.
FORMAT_VERSION = 1

_SUMMARY_KEYS = ("create", "update", "replace", "archive", "delete", "noop")

_AnyAction = Create | Update | Replace | Archive | Delete | NoOp | Adopt


def _sorted(value: Any) -> Any:
    """``value`` with every object's keys in sorted order (lists keep their order)."""
    if isinstance(value, dict):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def change_to_json(change: FieldChange) -> dict[str, Any]:
    """``{op, path, old, new, sensitive}``; a sensitive side that exists reads ``(sensitive)``."""
    old, new = change.old, change.new
    if change.sensitive:
        old = None if change.op == "add" else SENSITIVE
        new = None if change.op == "remove" else SENSITIVE
    return {
        "op": change.op,
        "path": change.path,
        "old": old,
        "new": new,
        "sensitive": change.sensitive,
    }


def _body_changes(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"op": "add", "path": key, "old": None, "new": body[key], "sensitive": False}
        for key in sorted(body)
    ]


def action_to_json(action: _AnyAction) -> dict[str, Any]:
    """One action; every action has the same keys, null or empty where they do not apply."""
    out: dict[str, Any] = {
        "type": action.type,
        "address": action.address,
        "kind": action.kind,
        "reason": action.reason,
        "remote_id": None,
        "changes": [],
        "from_version": None,
        "to_version": None,
        "labels": [],
        "moved_from": None,
    }
    match action:
        case Create():
            out["changes"] = _body_changes(action.body)
        case Update():
            out["moved_from"] = action.moved_from
            out["remote_id"] = action.remote_id
            out["changes"] = [change_to_json(c) for c in action.changes]
            out["from_version"] = action.from_version
            out["to_version"] = action.to_version
            out["labels"] = list(action.labels)
        case Replace():
            out["moved_from"] = action.moved_from
            out["remote_id"] = action.remote_id
            out["changes"] = [change_to_json(c) for c in action.changes]
        case Archive() | Delete():
            out["remote_id"] = action.remote_id
        case NoOp():
            out["moved_from"] = action.moved_from
            out["remote_id"] = action.remote_id
            out["from_version"] = out["to_version"] = action.version
        case Adopt():
            # the fields the adoption writes (the ownership tags as a metadata patch)
            out["remote_id"] = action.remote_id
            out["changes"] = _body_changes(action.body)
            out["from_version"] = action.version
        case _:
            assert_never(action)
    return out


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict (``kind: "plan"``), keys sorted, actions by address.

    Example: ``plan_to_json(Plan())["summary"] == {"archive": 0, "create": 0, ...}``.
    """
    summary = plan.summary
    doc = {
        "format_version": FORMAT_VERSION,
        "kind": "plan",
        "project": plan.project,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "prune": plan.prune,
        "targets": sorted(plan.targets),
        "untargeted": sorted(plan.untargeted),
        "has_changes": plan.has_changes,
        "has_lockfile_changes": plan.has_lockfile_changes,
        "summary": {key: getattr(summary, key) for key in _SUMMARY_KEYS},
        "actions": [
            action_to_json(a) for a in sorted(plan.actions, key=lambda a: (a.address, a.type))
        ],
        "pin_moves": [
            m.model_dump(mode="json")
            for m in sorted(plan.pin_moves, key=lambda m: (m.deployment, m.agent))
        ],
        "blast_radius": [
            {
                "address": r.address,
                "deployments": [
                    i.model_dump(mode="json")
                    for i in sorted(r.deployments, key=lambda i: i.deployment)
                ],
            }
            for r in sorted(plan.blast_radius, key=lambda r: r.address)
        ],
        "notes": [
            n.model_dump(mode="json")
            for n in sorted(plan.notes, key=lambda n: (n.address, n.remote_id or ""))
        ],
        "twins": [
            t.model_dump(mode="json")
            for t in sorted(plan.twins, key=lambda t: (t.address, t.remote_id))
        ],
        "conflicts": [
            c.model_dump(mode="json") for c in sorted(plan.conflicts, key=lambda c: c.address)
        ],
        "policy_warnings": [
            w.model_dump(mode="json")
            for w in sorted(plan.policy_warnings, key=lambda w: (w.address, w.policy, w.rule))
        ],
        "check_sessions": plan.check_sessions,
        "held": [
            {**h.model_dump(mode="json"), "message": h.message}
            for h in sorted(plan.held, key=lambda h: (h.deployment, h.agent, h.version))
        ],
    }
    doc["skill_chains"] = [c.model_dump(mode="json") for c in plan.skill_chains]
    result: dict[str, Any] = _sorted(doc)
    return result


def drift_item_to_json(item: DriftItem) -> dict[str, Any]:
    """One drift item with its field changes."""
    out = item.model_dump(mode="json", exclude={"changes", "refused_replace"})
    out["changes"] = [change_to_json(c) for c in item.changes]
    return out


def drift_to_json(report: DriftReport) -> dict[str, Any]:
    """The drift report as a JSON-ready dict (``kind: "drift"``), keys sorted."""
    counts = report.counts
    items = sorted(report.items, key=drift_sort_key)
    doc = {
        "format_version": FORMAT_VERSION,
        "kind": "drift",
        "project": report.project,
        "has_drift": report.has_drift,
        "summary": {t: counts.get(t, 0) for t in DRIFT_TYPES},
        "items": [drift_item_to_json(i) for i in items],
        "warnings": list(report.warnings),
    }
    result: dict[str, Any] = _sorted(doc)
    return result


def dumps(doc: dict[str, Any]) -> str:
    """Two-space indented JSON with sorted keys and a final newline; UTF-8 kept as is, except
    DEL, the C1 controls and bidi and invisible characters, written as ``\\uXXXX`` escapes
    (the parsed value is exact)."""
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return visible_json(text) + "\n"
