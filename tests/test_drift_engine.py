"""``engine.drift`` as data: desired documents + observed objects + lockfile -> DriftReport.

No provider here: the observed state is built by hand, as the planner's tests do, so each
rule of drift detection is visible in a few lines.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.desired import desired_digest, desired_resources
from reconciler.engine.drift import agents_to_annotate, build_drift
from reconciler.engine.refresh import Observed
from reconciler.engine.unmanaged import find_unmanaged
from reconciler.kinds import tags as ownership_tags
from reconciler.manifest import Document
from reconciler.state import LockEntry, new_lockfile

NOW = "2026-05-01T12:00:00Z"
AGENT_DOC = Document.model_validate(
    {
        "kind": "Agent",
        "name": "coder",
        "spec": {"model": "claude-sonnet-4-6", "system": "Be careful."},
    }
)


def agent(
    agent_id: str = "agent_01",
    *,
    version: int = 1,
    system: str = "Be careful.",
    tags: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "agent",
        "id": agent_id,
        "version": version,
        "name": "coder",
        "description": None,
        "system": system,
        "model": {
            "id": "claude-sonnet-4-6",
            "effort": {"type": "high"},
            "inference_geo": None,
            "speed": "standard",
        },
        "tools": [],
        "mcp_servers": [],
        "skills": [],
        "execution_identity": {"type": "service_account"},
        "multiagent": None,
        "metadata": ownership_tags("default", "agent.coder") if tags is None else tags,
        "created_at": NOW,
        "updated_at": extra.pop("updated_at", NOW),
        "archived_at": extra.pop("archived_at", None),
        **extra,
    }


def recorded(version: int = 1, digest: str | None = None) -> Any:
    res = desired_resources([AGENT_DOC])[0]
    entry = LockEntry(
        kind="agent",
        id="agent_01",
        version=version,
        spec_digest=digest or desired_digest(res),
        created_at=NOW,
        updated_at=NOW,
    )
    return new_lockfile().with_entry("agent.coder", entry)


def observed(*agents: dict[str, Any]) -> Observed:
    return Observed(objects={"agent": agents, "environment": (), "vault": (), "deployment": ()})


def test_no_drift_when_live_matches_the_manifest_and_the_lockfile() -> None:
    report = build_drift([AGENT_DOC], observed(agent()), recorded())
    assert report.items == () and not report.has_drift


def test_an_edit_is_changed_expected_to_live_and_names_the_version() -> None:
    live = agent(version=2, system="Ship it.", updated_at="2026-05-02T09:00:00Z")
    first = build_drift([AGENT_DOC], observed(live), recorded())
    [item] = first.items
    assert (item.type, item.address, item.version) == ("changed", "agent.coder", 2)
    [change] = item.changes
    assert (change.path, change.old, change.new) == ("system", "Be careful.", "Ship it.")
    assert agents_to_annotate(first) == ("agent_01",)

    history = [
        agent(version=3, system="Ship it.", updated_at="2026-05-03T00:00:00Z"),
        agent(version=2, system="Ship it?", updated_at="2026-05-02T09:00:00Z"),
        agent(version=1),
    ]
    [annotated] = build_drift(
        [AGENT_DOC],
        observed(agent(version=3, system="Ship it.")),
        recorded(),
        versions={"agent_01": history},
    ).items
    assert (annotated.version, annotated.changed_at) == (2, "2026-05-02T09:00:00Z")
    assert "versions 2-3" in annotated.message


def test_a_new_version_equal_to_the_manifest_is_still_reported() -> None:
    [item] = build_drift([AGENT_DOC], observed(agent(version=2)), recorded()).items
    assert item.type == "changed" and item.changes == ()
    assert "matches the manifest" in item.message and "records it" in item.message


def test_archived_deleted_and_the_manifest_changed_since_apply() -> None:
    [archived] = build_drift([AGENT_DOC], observed(agent(archived_at=NOW)), recorded()).items
    assert archived.type == "archived"
    [deleted] = build_drift([AGENT_DOC], observed(), recorded()).items
    assert deleted.type == "deleted" and deleted.remote_id == "agent_01"
    stale = "sha256:" + "0" * 64  # the manifest changed since the last apply: not drift
    assert build_drift([AGENT_DOC], observed(agent(system="x")), recorded(digest=stale)).items == ()


def test_unmanaged_rules_untagged_foreign_archived_and_tagged() -> None:
    foreign = agent(
        "agent_02",
        tags={
            "managed-by": "reconciler",
            "reconciler-project": "p",
            "reconciler-address": "agent.x",
        },
    )
    untagged = agent("agent_03", tags={})
    gone = agent("agent_04", tags={}, archived_at=NOW)
    lost = agent("agent_05", tags=ownership_tags("default", "agent.removed"))
    adoptable = agent("agent_06", tags=ownership_tags("default", "agent.coder"))  # lockfile lost
    live = observed(agent(), foreign, untagged, gone, lost, adoptable)
    found = find_unmanaged([AGENT_DOC], live, recorded(), "default")
    assert [(u.remote_id, u.tagged, u.duplicate_of) for u in found] == [
        ("agent_03", None, None),
        ("agent_05", "agent.removed", None),
        ("agent_06", "agent.coder", "agent_01"),  # a twin of the recorded agent
    ]
    # without a lockfile, plan adopts the newest object tagged for an address in the
    # manifests; another one tagged for it is its twin
    no_lockfile = find_unmanaged([AGENT_DOC], live, new_lockfile(), "default")
    assert [(u.remote_id, u.duplicate_of) for u in no_lockfile] == [
        ("agent_03", None),
        ("agent_05", None),
        ("agent_06", "agent_01"),
    ]
    single = observed(agent(), untagged)
    assert [
        u.remote_id for u in find_unmanaged([AGENT_DOC], single, new_lockfile(), "default")
    ] == ["agent_03"]
    report = build_drift([AGENT_DOC], live, recorded(), ignore_unmanaged=True)
    assert [(i.type, i.remote_id) for i in report.items] == [("twin", "agent_06")]


def test_items_are_sorted_by_address_then_type() -> None:
    live = observed(agent(version=2, system="x"), agent("agent_09", tags={}))
    report = build_drift([AGENT_DOC], live, recorded())
    assert [(i.type, i.address) for i in report.items] == [
        ("unmanaged", None),  # "agent coder agent_09" sorts before "agent.coder"
        ("changed", "agent.coder"),
    ]


def test_ignore_unmanaged_keeps_twins() -> None:
    """A twin is this project's, not unmanaged: ``--ignore-unmanaged`` still reports it."""
    twin = agent("agent_07", tags=ownership_tags("default", "agent.coder"))
    report = build_drift([AGENT_DOC], observed(agent(), twin), recorded(), ignore_unmanaged=True)
    assert [(i.type, i.address, i.remote_id) for i in report.items] == [
        ("twin", "agent.coder", "agent_07")
    ]


def test_the_drift_order_is_the_one_drift_type_declares() -> None:
    from typing import get_args

    from reconciler.engine.drift import DRIFT_ORDER
    from reconciler.engine.model import DriftType
    from reconciler.render.outline import DRIFT_TYPES

    # render keeps a copy (a renderer's order); it must not drift from the engine's
    assert DRIFT_ORDER == get_args(DriftType) == DRIFT_TYPES
