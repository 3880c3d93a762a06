"""A deployment's rollout record in the lockfile: its pin history and its held candidates.

``record_outcome`` (``record``) calls these with the entry it is about to write: each pin
that changed is appended to ``pin_history`` with what moved it, a rollback holds the version
it left, a retried candidate that passed is no longer held, and a candidate whose checks
failed is held (``hold_candidate``). Pure functions over the state models; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from reconciler.engine.gate import Gate, GateVerdict, RecoveredRollout
from reconciler.engine.model import Create, NoOp, Update
from reconciler.engine.outcome import Outcome
from reconciler.state import (
    MAX_PIN_HISTORY,
    HeldVersion,
    LockEntry,
    Lockfile,
    PendingIntent,
    PinCause,
    PinRecord,
)


def with_pin_history(
    entry: LockEntry, old: LockEntry | None, outcome: Outcome, now: str
) -> LockEntry:
    """``entry`` (a deployment's new lockfile entry) with the rollout record of ``old``
    carried over and this outcome's pin moves added."""
    if entry.kind != "deployment":
        return entry
    held = old.held if old is not None else ()
    history = old.pin_history if old is not None else ()
    target = getattr(outcome.action, "target", None)
    recovered = getattr(target, "recovered", None)
    if old is None and recovered is not None:  # healed: start from what the provider kept
        held, history = recovered.held, recovered.pin_history
    gate = outcome.action.gate if isinstance(outcome.action, Update) else None
    before = old.pins if old is not None else {}
    if old is None and gate is not None and gate.from_version is not None:
        before = {gate.agent: gate.from_version}  # healed: the gate knows where it moved from
    cause = _cause(gate, outcome.action, old)
    # healed without a gate: the pin is where the plan found (or put) it, which is never a
    # held version of the object it runs; so a hold of the same number is of another one
    found = old is None and recovered is not None and gate is None
    pinned_id = _pinned_agent_id(outcome.live)
    for agent, version in sorted(entry.pins.items()):
        # a deployment created (again) at a version held for the very object it now pins:
        # only `apply --retry-held` puts it there (a plan never creates one on a held
        # version), and the recorded pin of the same number was of another object
        retried = isinstance(outcome.action, Create) and any(
            h.agent_id is not None and h.agent_id == pinned_id and h.holds(agent, version)
            for h in held
        )
        if before.get(agent) != version or retried:
            move = PinRecord(
                agent=agent,
                version=version,
                at=now,
                by="retry-held" if retried else cause,
                from_version=before.get(agent),
            )
            history = (*history, move)
            if not found or retried:
                # a version the deployment now runs on purpose is no longer held
                held = tuple(h for h in held if not h.holds(agent, version, pinned_id))
    if gate is not None and gate.mode == "rollback" and gate.from_version is not None:
        # a rollback moves the pin within the agent object the deployment runs
        hold = HeldVersion(
            agent=gate.agent,
            version=gate.from_version,
            reason="rollback",
            at=now,
            agent_id=_pinned_agent_id(outcome.live),
            forward=gate.to_version is not None and gate.to_version > gate.from_version,
        )
        held = _with_hold(held, hold)
    if held == entry.held and history == entry.pin_history:
        return entry
    return entry.model_copy(update={"held": held, "pin_history": history[-MAX_PIN_HISTORY:]})


#: pending intents of pin moves, resolved by the deployment's live pin
PIN_INTENTS = ("rollback", "pin")


def pin_intent(gate: Gate, now: str) -> PendingIntent | None:
    """The pending intent of a gated pin move (``gate``: checks, skip-checks, retry-held),
    recorded before it is sent: killed once the provider moved the pin, the next run records
    what moved it (``settle_pin_moves``), not a plain ``apply``. None for a rollback (it
    records its own, ``rollback_intent``) or a move whose versions are not known yet."""
    if gate.mode == "rollback" or gate.to_version is None:
        return None
    cause: PinCause = "checks" if gate.mode == "checks" and gate.checks else gate.mode
    return _move_intent("pin", gate, now, by=cause)


def rollback_intent(address: str, gate: Gate, now: str) -> tuple[str, PendingIntent]:
    """The pending intent a rollback records before its pin move is sent (``gate``: the
    rollback's, from the live version to the one it goes back to)."""
    return address, _move_intent("rollback", gate, now)


def _move_intent(
    operation: Literal["pin", "rollback"], gate: Gate, now: str, by: PinCause | None = None
) -> PendingIntent:
    return PendingIntent(
        kind="deployment",
        operation=operation,
        started_at=now,
        agent=gate.agent,
        from_version=gate.from_version,
        to_version=gate.to_version,
        by=by,
    )


def settle_pin_moves(
    lockfile: Lockfile,
    live_pins: Mapping[str, int | None],
    agent_ids: Mapping[str, str] | None = None,
) -> Lockfile:
    """``lockfile`` with each pending pin move (a rollback's, a gated move's) that is live
    folded into its deployment's entry, as its outcome would have been recorded: the pin at
    ``to_version``, the move in the history with what moved it, a rollback's
    ``from_version`` held.

    A rollback killed after the provider moved the pin, before the lockfile said so, left
    only its pending intent: without this the next apply moved the pin forward again, to the
    version just rolled back from. The intents stay (the deployment's next outcome clears
    them); one whose deployment is not at ``to_version`` never reached the provider, and
    changes nothing here.

    Args:
        live_pins: deployment address -> the version its live object pins (what refresh
            saw, or what an outcome reports).
        agent_ids: deployment address -> the agent object it pins, where known (the hold a
            rollback leaves names it).
    """
    for address, intent in lockfile.pending.items():
        if intent.operation not in PIN_INTENTS:
            continue
        entry = lockfile.resources.get(address)
        if entry is None or intent.agent is None or live_pins.get(address) is None:
            continue
        if live_pins[address] != intent.to_version:
            continue
        found = pin_move_found(entry, intent, (agent_ids or {}).get(address))
        if found != entry:
            lockfile = lockfile.with_entry(address, found)
    return lockfile


def observed_pins(
    lockfile: Lockfile, deployments: Iterable[dict[str, Any]]
) -> tuple[dict[str, int], dict[str, str]]:
    """Deployment address -> the version its live object pins, and -> the agent object it
    pins, for the deployments with a pending rollback (``deployments``: the live deployments
    refresh listed)."""
    wanted = {
        lockfile.resources[a].id: a
        for a, intent in lockfile.pending.items()
        if intent.operation in PIN_INTENTS and a in lockfile.resources
    }
    pins: dict[str, int] = {}
    agent_ids: dict[str, str] = {}
    for obj in deployments if wanted else ():
        address = wanted.get(str(obj.get("id")))
        version = (obj.get("agent") or {}).get("version")
        if address is not None and isinstance(version, int) and not obj.get("archived_at"):
            pins[address] = version
            agent_id = _pinned_agent_id(obj)
            if agent_id is not None:
                agent_ids[address] = agent_id
    return pins, agent_ids


def settle_live_pin_moves(lockfile: Lockfile, deployments: Iterable[dict[str, Any]]) -> Lockfile:
    """``settle_pin_moves`` with the live pins of ``deployments`` (what refresh listed, or a
    deployment just retrieved): a plan, drift and the next rollback start from the pin
    history as it happened. ``lockfile`` itself when it holds no pending intent."""
    if not lockfile.pending:
        return lockfile
    return settle_pin_moves(lockfile, *observed_pins(lockfile, deployments))


def pin_move_found(
    entry: LockEntry, intent: PendingIntent, agent_id: str | None = None
) -> LockEntry:
    """``entry`` with the pin move of ``intent`` recorded (see ``settle_pin_moves``;
    ``agent_id``: the agent object the deployment pins, which a rollback's hold names)."""
    agent, to, left = intent.agent, intent.to_version, intent.from_version
    assert agent is not None and to is not None
    if entry.pins.get(agent) == to:
        return entry  # recorded already
    at = intent.started_at
    rollback = intent.operation == "rollback"
    by: PinCause = "rollback" if rollback else intent.by or "apply"
    move = PinRecord(agent=agent, version=to, at=at, by=by, from_version=left)
    history = (*entry.pin_history, move)[-MAX_PIN_HISTORY:]
    held = tuple(h for h in entry.held if not h.holds(agent, to, agent_id))
    if rollback and left is not None:
        hold = HeldVersion(
            agent=agent,
            version=left,
            reason="rollback",
            at=at,
            agent_id=agent_id,
            forward=to > left,
        )
        held = _with_hold(held, hold)
    pins = {**entry.pins, agent: to}
    return entry.model_copy(
        update={"pins": pins, "held": held, "pin_history": history, "updated_at": at}
    )


def hold_candidate(
    lockfile: Lockfile, address: str, verdict: GateVerdict, now: str, action: object = None
) -> Lockfile:
    """The lockfile with ``verdict``'s candidate held for the deployment at ``address``
    (its checks failed): no later apply moves the pin to it, unless ``--retry-held``.

    When the held move was all the deployment's ``action`` changed (the manifest pins the
    candidate by number), the entry also records that manifest, as the next plan's no-op
    would: the live object is all the manifest asks but the held pin, so nothing is left
    for a second apply to write (and ``plan --detailed-exitcode`` says no changes)."""
    entry = lockfile.resources.get(address)
    moved_from = getattr(action, "moved_from", None)
    if entry is None and isinstance(moved_from, str):
        # renamed in the same apply: nothing of the update was sent, so the entry (and the
        # object's name) is still the old address's, and the hold is its
        address, entry = moved_from, lockfile.resources.get(moved_from)
    if entry is None or verdict.candidate is None or verdict.passed:
        return lockfile
    if isinstance(action, Update) and all(
        c.path == "agent" or c.path.startswith("agent.") for c in action.changes
    ):
        target = action.target
        entry = entry.model_copy(
            update={"spec_digest": target.spec_digest, "protect": target.protect}
        )
    hold = HeldVersion(
        agent=verdict.gate.agent,
        version=verdict.candidate,
        reason="checks",
        at=now,
        failed=len(verdict.failed),
        total=len(verdict.results),
        agent_id=verdict.agent_id,
    )
    entry = entry.model_copy(update={"held": _with_hold(entry.held, hold), "updated_at": now})
    return lockfile.with_entry(address, entry)


def _pinned_agent_id(deployment: object) -> str | None:
    """The agent object a live deployment (as the provider returned it) pins."""
    pin = deployment.get("agent") if isinstance(deployment, dict) else None
    agent_id = pin.get("id") if isinstance(pin, dict) else None
    return agent_id if isinstance(agent_id, str) and agent_id else None


def _with_hold(held: tuple[HeldVersion, ...], hold: HeldVersion) -> tuple[HeldVersion, ...]:
    others = tuple(h for h in held if not h.holds(hold.agent, hold.version, hold.agent_id))
    return (*others, hold)


def _cause(gate: Gate | None, action: object, old: LockEntry | None) -> PinCause:
    if gate is not None:
        return "checks" if gate.mode == "checks" and gate.checks else gate.mode
    if isinstance(action, (NoOp, Update)) and old is None:
        # found again by its ownership tags (an update too: its other fields changed, its
        # pin stays where it was found): what came before is not known
        return "healed"
    return "apply"


def replay_records(records: Iterable[tuple[str, dict[str, Any]]]) -> RecoveredRollout:
    """A deployment's held versions and pin history from its records at the provider
    (``(created_at, record)``, oldest first; ``gate.move_record`` / ``gate.hold_record``,
    with ``agent_id``, the agent object of the record's session, added by the reader).
    A record this version cannot read is skipped."""
    held: tuple[HeldVersion, ...] = ()
    history: tuple[PinRecord, ...] = ()
    for at, record in records:
        try:
            agent = str(record["agent"])
            if "hold" in record:
                hold = HeldVersion(
                    agent=agent,
                    version=record["version"],
                    reason="checks",
                    at=at,
                    failed=record.get("failed"),
                    total=record.get("total"),
                    agent_id=record.get("agent_id"),
                )
                held = _with_hold(held, hold)
                continue
            move = PinRecord(
                agent=agent,
                version=record["to"],
                at=at,
                by=record["by"],
                from_version=record.get("from"),
            )
        except (KeyError, TypeError, ValueError):
            continue
        history = (*history, move)
        moved_id = record.get("agent_id")
        moved_id = moved_id if isinstance(moved_id, str) else None
        held = tuple(h for h in held if not h.holds(agent, move.version, moved_id))
        if move.by == "rollback" and move.from_version is not None:
            hold = HeldVersion(
                agent=agent,
                version=move.from_version,
                reason="rollback",
                at=at,
                agent_id=record.get("agent_id"),
                forward=move.version > move.from_version,
            )
            held = _with_hold(held, hold)
    return RecoveredRollout(held=held, pin_history=history[-MAX_PIN_HISTORY:])
