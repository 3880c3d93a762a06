"""Gated rollouts in the pure core, on hand-built data: planning a gated or held pin move,
the lockfile's rollout record (pin history, holds) and its replay after a lost lockfile."""

from __future__ import annotations

from typing import Any

from test_planner import AGENT, ENV, EVENTS, NOW, applied, everything, plan, vault_doc

from reconciler.engine.executor import Outcome
from reconciler.engine.gate import Check, CheckResult, Gate, GateVerdict, RecoveredRollout
from reconciler.engine.model import NoOp, Update
from reconciler.engine.pinlog import hold_candidate, replay_records, with_pin_history
from reconciler.engine.record import record_outcome
from reconciler.manifest import Document
from reconciler.state import HeldVersion, LockEntry, PinRecord

T1 = "2026-05-02T12:00:00Z"
CHECKS = [{"message": "Review PR 42", "contains": ["PR 42"]}, {"message": "Hi", "rubric": '"x"'}]


def gated(version: int | None = None, checks: list[dict[str, Any]] | None = None) -> Document:
    agent: dict[str, Any] = {"ref": "coder"}
    if version is not None:
        agent["version"] = version
    return Document.model_validate(
        {
            "kind": "Deployment",
            "name": "nightly",
            "spec": {
                "agent": agent,
                "environment": "py",
                "initial_events": EVENTS,
                "rollout": {"checks": CHECKS if checks is None else checks},
            },
        }
    )


EDITED = Document.model_validate(
    {"kind": "Agent", "name": "coder", "spec": {"model": "claude-sonnet-4-6", "system": "Yo."}}
)


def held_at(version: int, reason: str = "checks") -> HeldVersion:
    return HeldVersion(
        agent="agent.coder", version=version, reason=reason, at=NOW, failed=1, total=2
    )  # type: ignore[arg-type]


def test_a_new_version_a_gated_deployment_follows_is_a_gated_update() -> None:
    live = everything()
    lockfile = applied([ENV, AGENT, gated(), vault_doc()], live)
    p = plan([ENV, EDITED, gated(), vault_doc()], live, lockfile)
    update = p.action("deployment.nightly")
    assert isinstance(update, Update) and update.gate is not None
    gate = update.gate
    assert (gate.agent, gate.from_version, gate.to_version, gate.mode) == (
        "agent.coder",
        1,
        2,
        "checks",
    )
    assert [c.message for c in gate.checks] == ["Review PR 42", "Hi"]
    assert gate.checks[0].timeout == 300.0, "the default timeout"
    assert gate.session == {"environment_id": {"$ref": "environment.py"}}
    assert "rollout" not in update.body, "the rollout block is never sent"
    [move] = p.pin_moves
    assert (move.checks, move.gate) == (2, "checks")
    assert p.check_sessions == 2


def test_skip_checks_gates_without_sessions_and_an_ungated_deployment_has_no_gate() -> None:
    live = everything()
    lockfile = applied([ENV, AGENT, gated(), vault_doc()], live)
    p = plan([ENV, EDITED, gated(), vault_doc()], live, lockfile, skip_checks=True)
    [move] = p.pin_moves
    assert (move.checks, move.gate, p.check_sessions) == (0, "skip-checks", 0)


def test_a_held_candidate_keeps_the_pin_and_is_reported() -> None:
    live = everything()
    docs = [ENV, EDITED, gated(), vault_doc()]
    lockfile = applied([ENV, AGENT, gated(), vault_doc()], live)
    entry = lockfile.resources["deployment.nightly"]
    lockfile = lockfile.with_entry(
        "deployment.nightly", entry.model_copy(update={"held": (held_at(2),)})
    )
    p = plan(docs, live, lockfile)
    assert isinstance(p.action("deployment.nightly"), NoOp), "the pin stays at v1"
    assert p.pin_moves == ()
    [held] = p.held
    assert (held.version, held.stays_at, held.message) == (
        2,
        1,
        "v2 held: 1 of 2 checks failed on 2026-05-01",
    )
    retried = plan(docs, live, lockfile, retry_held=True)
    update = retried.action("deployment.nightly")
    assert isinstance(update, Update) and update.gate is not None
    assert update.gate.mode == "retry-held" and retried.held == ()


def test_an_explicit_pin_to_a_held_version_is_held_too() -> None:
    live = everything()
    two = plan(
        [ENV, EDITED, gated(), vault_doc()], live, applied([ENV, AGENT, gated(), vault_doc()], live)
    )
    assert two.held == ()
    lockfile = applied([ENV, AGENT, gated(), vault_doc()], live)
    entry = lockfile.resources["deployment.nightly"]
    lockfile = lockfile.with_entry(
        "deployment.nightly", entry.model_copy(update={"held": (held_at(2, "rollback"),)})
    )
    p = plan([ENV, EDITED, gated(version=2), vault_doc()], live, lockfile)
    assert [h.message for h in p.held] == ["v2 held: rolled back on 2026-05-01"]


def test_a_recovered_record_holds_after_a_lost_lockfile_and_goes_into_the_new_entry() -> None:
    live = everything()
    recovered = RecoveredRollout(
        held=(held_at(2),),
        pin_history=(PinRecord(agent="agent.coder", version=1, at=NOW, by="checks"),),
    )
    docs = [ENV, EDITED, gated(), vault_doc()]
    from reconciler.engine.planner import PlanOptions, build_plan

    p = build_plan(docs, live, None, PlanOptions(), recovered={"deployment.nightly": recovered})
    noop = p.action("deployment.nightly")
    assert isinstance(noop, NoOp) and noop.target is not None
    assert noop.target.recovered == recovered
    assert [h.version for h in p.held] == [2]


# -- the lockfile's rollout record ----------------------------------------------------------


def entry(pins: dict[str, int], **fields: Any) -> LockEntry:
    return LockEntry(
        kind="deployment",
        id="dep_1",
        pins=pins,
        spec_digest="sha256:" + "0" * 64,
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def gate(mode: str = "checks", checks: int = 1) -> Gate:
    return Gate(
        deployment="deployment.nightly",
        agent="agent.coder",
        from_version=1,
        to_version=2,
        mode=mode,  # type: ignore[arg-type]
        checks=tuple(Check(message=f"m{i}") for i in range(checks)),
    )


def update(g: Gate | None) -> Update:
    from reconciler.engine.model import Target

    return Update(
        address="deployment.nightly",
        kind="deployment",
        reason="x",
        remote_id="dep_1",
        changes=(),
        body={},
        target=Target(spec_digest="sha256:" + "0" * 64, pins={"agent.coder": None}),
        gate=g,
    )


def test_each_pin_move_is_appended_with_what_moved_it() -> None:
    old = entry(
        {"agent.coder": 1},
        pin_history=(PinRecord(agent="agent.coder", version=1, at=NOW, by="apply"),),
    )
    for mode, by in [
        ("checks", "checks"),
        ("skip-checks", "skip-checks"),
        ("retry-held", "retry-held"),
    ]:
        out = Outcome(update(gate(mode)), ok=True, remote_id="dep_1", pins={"agent.coder": 2})
        new = with_pin_history(entry({"agent.coder": 2}), old, out, T1)
        assert [(h.version, h.by, h.from_version) for h in new.pin_history] == [
            (1, "apply", None),
            (2, by, 1),
        ]
    plain = Outcome(update(None), ok=True, remote_id="dep_1", pins={"agent.coder": 2})
    assert with_pin_history(entry({"agent.coder": 2}), old, plain, T1).pin_history[-1].by == "apply"
    same = with_pin_history(entry({"agent.coder": 1}), old, plain, T1)
    assert same.pin_history == old.pin_history, "no move, no record"


def test_a_promoted_version_is_no_longer_held_and_a_rollback_holds_the_one_left() -> None:
    old = entry({"agent.coder": 1}, held=(held_at(2),))
    out = Outcome(update(gate("retry-held")), ok=True, remote_id="dep_1", pins={"agent.coder": 2})
    assert with_pin_history(entry({"agent.coder": 2}), old, out, T1).held == ()
    back = Gate(
        deployment="deployment.nightly",
        agent="agent.coder",
        from_version=2,
        to_version=1,
        mode="rollback",
    )
    out = Outcome(update(back), ok=True, remote_id="dep_1", pins={"agent.coder": 1})
    new = with_pin_history(entry({"agent.coder": 1}), entry({"agent.coder": 2}), out, T1)
    assert [(h.version, h.reason) for h in new.held] == [(2, "rollback")]


def test_failed_checks_hold_the_candidate_and_leave_the_pin() -> None:
    from reconciler.state import Lockfile

    lf = Lockfile().with_entry("deployment.nightly", entry({"agent.coder": 1}))
    g = gate(checks=2)
    verdict = GateVerdict(
        g,
        2,
        (
            CheckResult(g.checks[0], True, "sesn_1", "ok"),
            CheckResult(g.checks[1], False, "sesn_2", "echo: m1"),
        ),
    )
    out = Outcome(update(g), ok=False, remote_id="dep_1", error="x", verdict=verdict)
    new = record_outcome(lf, out, T1)
    e = new.resources["deployment.nightly"]
    assert e.pins == {"agent.coder": 1}
    assert [(h.version, h.failed, h.total, h.at) for h in e.held] == [(2, 1, 2, T1)]
    assert hold_candidate(new, "deployment.nightly", verdict, T1).resources == new.resources
    text = verdict.describe_failures()
    assert "1 of 2 checks failed on v2" in text
    assert "check 'm1': expected an answer without error; got 'echo: m1' (session sesn_2)" in text


def test_records_replay_into_holds_and_history() -> None:
    records = [
        ("2026-05-01T10:00:00Z", {"by": "checks", "agent": "agent.coder", "from": 1, "to": 2}),
        (
            "2026-05-01T11:00:00Z",
            {"hold": "checks", "agent": "agent.coder", "version": 3, "failed": 1, "total": 1},
        ),
        ("2026-05-01T12:00:00Z", {"by": "rollback", "agent": "agent.coder", "from": 2, "to": 1}),
        ("2026-05-01T13:00:00Z", {"something": "newer"}),
    ]
    got = replay_records(records)
    assert [(h.version, h.reason) for h in got.held] == [(3, "checks"), (2, "rollback")]
    assert [(h.version, h.by) for h in got.pin_history] == [(2, "checks"), (1, "rollback")]
