"""Folding apply events into the lockfile: intents before creates, entries after outcomes."""

from __future__ import annotations

from typing import Any

from reconciler.engine.executor import Outcome
from reconciler.engine.model import Archive, Create, Delete, NoOp, Replace, Target, Update
from reconciler.engine.record import record_intent, record_intents, record_outcome
from reconciler.state import LockEntry, Lockfile, PendingIntent, PinRecord

DIGEST = "sha256:" + "ab" * 32
DIGEST2 = "sha256:" + "cd" * 32
FP = "scrypt:" + "12" * 32
T0, T1, T2 = "2026-05-01T12:00:00Z", "2026-05-02T12:00:00Z", "2026-05-03T12:00:00Z"


def entry(**kw: Any) -> LockEntry:
    base: dict[str, Any] = {
        "kind": "agent",
        "id": "agent_1",
        "version": 1,
        "spec_digest": DIGEST,
        "created_at": T0,
        "updated_at": T0,
    }
    return LockEntry(**{**base, **kw})


def test_intent_is_recorded_for_creates_and_replaces_only() -> None:
    lf = Lockfile()
    create = Create(
        address="vault.gh.credential.t",
        kind="credential",
        reason="new",
        body={},
        parent_id="vlt_1",
        target=Target(spec_digest=DIGEST, remote_name="token"),
    )
    lf1 = record_intent(lf, create, T1)
    assert lf1.pending == {
        "vault.gh.credential.t": PendingIntent(
            kind="credential",
            operation="create",
            started_at=T1,
            parent_id="vlt_1",
            remote_name="token",
        )
    }
    assert lf.pending == {}  # never mutated

    replace = Replace(
        address="environment.py",
        kind="environment",
        reason="type",
        body={},
        remote_id="env_1",
        changes=(),
        target=Target(spec_digest=DIGEST),
    )
    assert record_intent(lf1, replace, T1).pending["environment.py"].operation == "replace"

    archive = Archive(address="agent.a", kind="agent", reason="x", remote_id="agent_1")
    assert record_intent(lf1, archive, T1) is lf1

    # many at once: the same as one after the other, archives skipped, nothing mutated
    one_by_one = record_intent(record_intent(lf, create, T1), replace, T1)
    at_once = record_intents(lf, [create, archive, replace], T1)
    assert at_once.pending == one_by_one.pending
    assert record_intents(lf, [archive], T1) is lf
    assert lf.pending == {}


def test_a_successful_create_becomes_an_entry_and_clears_the_intent() -> None:
    action = Create(
        address="deployment.d",
        kind="deployment",
        reason="new",
        body={},
        target=Target(spec_digest=DIGEST, pins={"agent.coder": None}, remote_name="nightly"),
    )
    lf = record_intent(Lockfile(), action, T0)
    out = Outcome(action, ok=True, remote_id="depl_1", pins={"agent.coder": 3})
    lf = record_outcome(lf, out, T1)
    assert lf.pending == {}
    assert lf.resources["deployment.d"] == LockEntry(
        kind="deployment",
        id="depl_1",
        pins={"agent.coder": 3},
        spec_digest=DIGEST,
        remote_name="nightly",
        created_at=T1,
        updated_at=T1,
        # a deployment's first pin starts its pin history
        pin_history=(PinRecord(agent="agent.coder", version=3, at=T1, by="apply"),),
    )


def test_a_failed_action_leaves_the_lockfile_and_its_intent_alone() -> None:
    action = Create(
        address="agent.a", kind="agent", reason="new", body={}, target=Target(spec_digest=DIGEST)
    )
    lf = record_intent(Lockfile(), action, T0)
    assert record_outcome(lf, Outcome(action, ok=False, error="boom"), T1) is lf


def test_an_update_keeps_created_at_and_records_the_new_version() -> None:
    lf = Lockfile().with_entry("agent.a", entry())
    action = Update(
        address="agent.a",
        kind="agent",
        reason="x",
        remote_id="agent_1",
        changes=(),
        body={},
        from_version=1,
        to_version=2,
        target=Target(spec_digest=DIGEST2, protect=True, secret_fingerprints={"x": FP}),
    )
    lf = record_outcome(lf, Outcome(action, ok=True, remote_id="agent_1", version=2), T1)
    assert lf.resources["agent.a"] == entry(
        version=2, spec_digest=DIGEST2, protect=True, secret_fingerprints={"x": FP}, updated_at=T1
    )


def test_a_replace_gets_a_new_created_at() -> None:
    lf = Lockfile().with_entry(
        "environment.py", entry(kind="environment", id="env_1", version=None)
    )
    action = Replace(
        address="environment.py",
        kind="environment",
        reason="type",
        body={},
        remote_id="env_1",
        changes=(),
        target=Target(spec_digest=DIGEST2),
    )
    lf = record_intent(lf, action, T1)
    lf = record_outcome(lf, Outcome(action, ok=True, remote_id="env_2"), T2)
    assert lf.resources["environment.py"] == entry(
        kind="environment",
        id="env_2",
        version=None,
        spec_digest=DIGEST2,
        created_at=T2,
        updated_at=T2,
    )
    assert lf.pending == {}


def test_archive_and_delete_drop_the_entry() -> None:
    lf = (
        Lockfile()
        .with_entry("agent.a", entry())
        .with_entry("vault.v", entry(kind="vault", id="vlt_1", version=None))
    )
    archive = Archive(address="agent.a", kind="agent", reason="x", remote_id="agent_1")
    delete = Delete(address="vault.v", kind="vault", reason="x", remote_id="vlt_1")
    lf = record_outcome(lf, Outcome(archive, ok=True, remote_id="agent_1", removed=True), T1)
    lf = record_outcome(lf, Outcome(delete, ok=True, remote_id="vlt_1", removed=True), T1)
    assert lf.resources == {}
    # archiving something the lockfile never knew is fine too
    gone = Archive(address="agent.x", kind="agent", reason="x", remote_id="agent_9")
    assert record_outcome(lf, Outcome(gone, ok=True, removed=True), T1) is lf


def test_noop_with_a_target_adopts_and_without_one_only_refreshes() -> None:
    adopt = NoOp(
        address="agent.a",
        kind="agent",
        reason="adopted",
        remote_id="agent_1",
        version=4,
        target=Target(spec_digest=DIGEST),
    )
    lf = record_outcome(Lockfile(), Outcome(adopt, ok=True, remote_id="agent_1", version=4), T1)
    assert lf.resources["agent.a"] == entry(version=4, created_at=T1, updated_at=T1)
    # the same no-op again changes nothing
    again = record_outcome(lf, Outcome(adopt, ok=True, remote_id="agent_1", version=4), T2)
    assert again is lf

    plain = NoOp(address="deployment.d", kind="deployment", reason="in sync", remote_id="depl_1")
    lf = lf.with_entry(
        "deployment.d", entry(kind="deployment", id="depl_1", version=None, pins={"agent.a": 3})
    )
    same = record_outcome(lf, Outcome(plain, ok=True, remote_id="depl_1", pins={"agent.a": 3}), T2)
    assert same is lf
    moved = record_outcome(lf, Outcome(plain, ok=True, remote_id="depl_1", pins={"agent.a": 4}), T2)
    assert moved.resources["deployment.d"].pins == {"agent.a": 4}
    assert moved.resources["deployment.d"].updated_at == T2
    unknown = NoOp(address="agent.z", kind="agent", reason="in sync", remote_id="agent_z")
    assert record_outcome(lf, Outcome(unknown, ok=True, remote_id="agent_z"), T2) is lf


def test_pins_keep_what_is_known_when_the_outcome_does_not_say() -> None:
    lf = Lockfile().with_entry(
        "deployment.d", entry(kind="deployment", id="depl_1", version=None, pins={"agent.a": 3})
    )
    action = Update(
        address="deployment.d",
        kind="deployment",
        reason="description",
        remote_id="depl_1",
        changes=(),
        body={},
        target=Target(spec_digest=DIGEST2, pins={"agent.a": None, "agent.b": 2}),
    )
    lf = record_outcome(lf, Outcome(action, ok=True, remote_id="depl_1"), T1)
    assert lf.resources["deployment.d"].pins == {"agent.a": 3, "agent.b": 2}
