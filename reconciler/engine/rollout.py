"""Plan a deployment's pin move through its rollout gate, or keep a held candidate out.

Given a deployment already planned (``resource.plan_resource``), decide:

- the move goes to a version the lockfile holds for the deployment (its checks failed, or it
  was rolled back from): the pin stays where it is (the deployment is planned again with the
  live version pinned) and the plan says which candidate is held, unless ``retry_held``; a
  pin moved behind our back to the held version goes back to the one the lockfile pinned;
- the deployment has ``rollout.checks`` (or the move retries a held candidate): its update
  carries a ``Gate``, and the executor moves the pin only once the checks pass
  (``skip_checks`` moves it without them, a retried held candidate too, and the lockfile
  says so).

A new deployment is not gated: there is no pin to protect yet, and it starts at the version
the manifest asks for; one the lockfile records (archived behind our back, created again)
starts where the lockfile pinned it when that version is held for it (the lockfile lost
too: where the archived deployment was pinned, with the holds the provider's records keep).
One whose pinned agent object is archived too (its candidate of the agent created again is
held) is not created at all, unless ``retry_held``: the plan says so (``HeldCandidate`` with
``gone_agent_id``), and drift, run and rollback say it (``held_out_by``).
Nor is a move back to the version the lockfile pinned (the pin was moved behind our back):
that version passed its gate when apply pinned it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from reconciler.engine.desired import DesiredResource, request_fields
from reconciler.engine.gate import Check, Gate, GateMode, HeldCandidate, RecoveredRollout
from reconciler.engine.inputs import PlanInputs
from reconciler.engine.model import PinMove, Update
from reconciler.engine.planned import Planned, predicted_id, predicted_version
from reconciler.engine.resource import plan_resource
from reconciler.jsontypes import JSON
from reconciler.state import HeldVersion, LockEntry

#: fields of a deployment's create body a check session takes as they are
SESSION_FIELDS = ("environment_id", "vault_ids", "resources")


def gate_pin_move(
    inputs: PlanInputs, res: DesiredResource, done: Planned, planned: Mapping[str, Planned]
) -> tuple[Planned, HeldCandidate | None]:
    """``done`` with its pin move gated, or planned again without a held candidate.

    A deployment the lockfile has no entry for (a lost lockfile) takes its held versions from
    the record the provider kept (``inputs.recovered``), and its action carries that record
    so that its new entry starts from it.

    Returns:
        The deployment's ``Planned`` (its update carrying a ``Gate`` when gated), and the
        held candidate the plan reports when the pin stays because of it.
    """
    live = done.live
    if res.kind != "deployment" or res.pin is None:
        return done, None
    entry = inputs.entry(res.address)
    if entry is None and res.moved_from is not None:  # a renamed deployment keeps its record
        entry = inputs.entry(res.moved_from)
    recovered = inputs.recovered.get(res.address) if entry is None else None
    if live is None:
        planned_now, hold = _recreated(inputs, res, done, planned, entry, recovered)
        return _carrying(planned_now, recovered), hold
    recorded = entry is not None and entry.id == live.get("id")
    held = entry.held if entry is not None and recorded else ()
    if recovered is not None:
        held = recovered.held
    restores = entry.pins.get(res.pin[0]) if entry is not None and recorded else None
    planned_now, hold = _gate(inputs, res, done, planned, held, restores)
    return _carrying(planned_now, recovered), hold


def _recreated(
    inputs: PlanInputs,
    res: DesiredResource,
    done: Planned,
    planned: Mapping[str, Planned],
    entry: LockEntry | None,
    recovered: RecoveredRollout | None = None,
) -> tuple[Planned, HeldCandidate | None]:
    """A deployment the lockfile records created again (archived or deleted behind our
    back): it starts at the version the lockfile pinned when the one it would follow is
    held for it, as its pin would stay there had it not been archived. Even with
    ``retry_held``: a create runs no checks, so the next apply is the one that retries.

    With the lockfile lost too, the provider's record (``recovered``) says what is held, and
    the archived deployment where it was pinned."""
    assert res.pin is not None
    agent, pinned = res.pin
    if entry is not None:
        held = entry.held
        recorded_pin = entry.pins.get(agent)
        pinned_agent_id = _pinned_agent_id(inputs, entry, agent, recorded_pin, planned)
    elif recovered is not None:
        held, recorded_pin = recovered.held, recovered.archived_pin
        pinned_agent_id = recovered.archived_agent_id
    else:
        return done, None
    if not held:
        return done, None
    new = pinned if pinned is not None else predicted_version(planned, agent)
    hold = _current_hold(held, agent, new, planned.get(agent))
    if hold is None:
        return done, None
    if pinned_agent_id is not None and predicted_id(planned, agent) == pinned_agent_id:
        if not isinstance(recorded_pin, int) or recorded_pin == new:
            return done, None
        return plan_resource(inputs, replace(res, held_pin=recorded_pin), planned), _held(
            res, hold, recorded_pin
        )
    pinned_obj = inputs.live.get("agent", {}).get(pinned_agent_id or "")
    if inputs.options.retry_held or (pinned_obj is not None and not pinned_obj.get("archived_at")):
        return done, None
    # the object it was pinned to is archived (with the agent, behind git's back) and the
    # provider pins no archived agent: the only version to create it at is the held one
    return Planned(), _held(res, hold, None, gone_agent_id=pinned_agent_id)


def held_out_by(held: Iterable[HeldVersion], deployment: JSON, agent_archived: bool) -> str | None:
    """The agent whose held candidate keeps a deployment the lockfile records (its holds:
    ``held``) from being created again (``_recreated``): ``deployment`` (its live object) was
    archived behind git's back while it stayed on an agent object archived since
    (``agent_archived``), and a version of the agent object created again is held for it.
    None otherwise.

    The hint drift, run and rollback give for such a deployment (``held_out_hint``)."""
    pin = deployment.get("agent")
    ran = pin.get("id") if isinstance(pin, dict) else None
    if not agent_archived or not isinstance(ran, str):
        return None
    return next((h.agent for h in held if h.agent_id not in (None, ran)), None)


def held_out_hint(agent: str) -> str:
    """What to say of a deployment ``held_out_by`` ``agent``."""
    return (
        f"apply creates it again only once a version of {agent} passes its checks: "
        "`reconciler plan` shows the held candidate (`reconciler apply --retry-held` creates "
        "it at that version all the same)"
    )


def _pinned_agent_id(
    inputs: PlanInputs,
    entry: LockEntry,
    agent: str,
    recorded_pin: int | None,
    planned: Mapping[str, Planned],
) -> str | None:
    """The agent object a deployment the lockfile records was pinned to: the one its archived
    object names, else the agent's recorded object, unless that object's version at the
    recorded pin is held (a pin never moves to a held version: it was of an earlier object).
    None when it cannot be known."""
    archived = inputs.live.get("deployment", {}).get(entry.id)
    pin = archived.get("agent") if archived is not None else None
    if isinstance(pin, dict) and isinstance(pin.get("id"), str):
        return str(pin["id"])
    agent_entry = inputs.entry(agent)
    if agent_entry is None or _current_hold(entry.held, agent, recorded_pin, planned.get(agent)):
        return None
    return agent_entry.id


def _gate(
    inputs: PlanInputs,
    res: DesiredResource,
    done: Planned,
    planned: Mapping[str, Planned],
    held: tuple[HeldVersion, ...],
    recorded_pin: int | None = None,
) -> tuple[Planned, HeldCandidate | None]:
    live = done.live
    assert live is not None and res.pin is not None
    agent, pinned = res.pin
    live_agent = live.get("agent") or {}
    old = live_agent.get("version")
    new = pinned if pinned is not None else predicted_version(planned, agent)
    same_agent = live_agent.get("id") == predicted_id(planned, agent)
    # not a version of the object the agent was before it was created again
    hold = _current_hold(held, agent, new, planned.get(agent))
    retry = hold is not None and inputs.options.retry_held
    if old == new and same_agent:
        if hold is None or retry or not isinstance(recorded_pin, int) or recorded_pin == old:
            return done, None
        # moved behind our back to the held version itself (a console edit): its gate still
        # stands, so the pin goes back to the version the lockfile pinned
        kept = plan_resource(inputs, replace(res, held_pin=recorded_pin), planned)
        return _put_back(kept, agent, hold, recorded_pin), _held(res, hold, recorded_pin)
    if new == recorded_pin and (same_agent or _set_by_hand(inputs, agent, planned, live_agent)):
        return done, None  # the pin drifted behind our back: putting back an approved one
    if hold is not None and not retry and same_agent and isinstance(old, int):
        # the pin stays where the lockfile pinned it: the live one, unless it was moved
        # behind our back meanwhile (put back, ungated, as any drifted pin)
        stay = recorded_pin if isinstance(recorded_pin, int) else old
        kept = plan_resource(inputs, replace(res, held_pin=stay), planned)
        if stay != old:
            kept = _put_back(kept, agent, hold, stay)
        return kept, _held(res, hold, stay)
    live_id = live_agent.get("id")
    if hold is not None and not retry and isinstance(old, int) and isinstance(live_id, str):
        if _archived_agent(inputs, live_id):
            # the agent was created again (archived behind our back) and the new object's
            # candidate is held: the deployment stays on the version of the object it runs
            held_there = replace(res, held_pin=old, held_agent_id=live_id)
            return plan_resource(inputs, held_there, planned), _held(res, hold, old)
        if isinstance(recorded_pin, int):
            # set to another (live) agent behind git's back, a console edit: put back on the
            # version the lockfile pinned, ungated, as any drifted pin is
            kept = plan_resource(inputs, replace(res, held_pin=recorded_pin), planned)
            return _put_back(kept, agent, hold, recorded_pin), _held(res, hold, recorded_pin)
    action = done.action
    if not isinstance(action, Update) or (res.rollout is None and not retry):
        return done, None
    checks = tuple(Check(**c) for c in (res.rollout or {}).get("checks") or ())
    mode: GateMode = "retry-held" if retry else "checks"
    if inputs.options.skip_checks and checks:
        # also for a held candidate retried: in an emergency its checks may be what is broken
        mode = "skip-checks"
    body = request_fields(res, inputs.options.project)
    gate = Gate(
        deployment=res.address,
        agent=agent,
        from_version=old if isinstance(old, int) else None,
        to_version=new,
        mode=mode,
        checks=checks,
        session={k: body[k] for k in SESSION_FIELDS if body.get(k)},
    )
    return replace(done, action=action.model_copy(update={"gate": gate})), None


def _set_by_hand(
    inputs: PlanInputs, agent: str, planned: Mapping[str, Planned], live_agent: JSON
) -> bool:
    """Whether the deployment runs another, live agent than ``agent``'s object the lockfile
    records (set in a console), not ``agent`` archived behind git's back and created again
    (whose new object's versions are candidates)."""
    entry, live_id = inputs.entry(agent), live_agent.get("id")
    if entry is None or entry.id != predicted_id(planned, agent) or not isinstance(live_id, str):
        return False
    return not _archived_agent(inputs, live_id)


def _archived_agent(inputs: PlanInputs, agent_id: str) -> bool:
    """Whether the live agent object ``agent_id`` (one a deployment runs) is archived."""
    obj = inputs.live.get("agent", {}).get(agent_id)
    return obj is not None and bool(obj.get("archived_at"))


def _put_back(kept: Planned, agent: str, hold: HeldVersion, recorded_pin: int) -> Planned:
    """``kept`` (the deployment planned back at ``recorded_pin``) saying why its pin moves."""
    action = kept.action
    if not isinstance(action, Update):
        return kept
    failed = f"{hold.failed} of {hold.total} checks failed"
    why = hold.why if hold.reason == "rollback" else failed
    reason = (
        f"{agent} v{hold.version} is held ({why}); back to @{recorded_pin}, the version the "
        "lockfile pinned (the pin was moved behind git's back)"
    )
    return replace(kept, action=action.model_copy(update={"reason": reason}))


def _current_hold(
    held: tuple[HeldVersion, ...], agent: str, version: int | None, planned: Planned | None
) -> HeldVersion | None:
    """The hold of ``version`` of ``agent`` that is of the object the plan uses, if any."""
    return next(
        (
            h
            for h in held
            if h.agent == agent and h.version == version and _of_current_object(h, planned)
        ),
        None,
    )


def _of_current_object(hold: HeldVersion, agent: Planned | None) -> bool:
    """Whether ``hold`` is of the agent object the plan uses: an agent created again
    (archived behind our back) numbers its versions from 1 again. A hold names its object;
    one of a lockfile older than that was recorded since the object was created (the
    runner's clock against the provider's: the best an old hold can say)."""
    live = agent.live if agent is not None else None
    if live is None:
        return False  # created by this plan: nothing can be held of it yet
    if hold.agent_id is not None:
        return hold.agent_id == live.get("id")
    created = _instant(live.get("created_at"))
    at = _instant(hold.at)
    return created is None or at is None or at >= created.replace(microsecond=0)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # comparable either way


def _held(
    res: DesiredResource,
    hold: HeldVersion,
    stays_at: int | None,
    gone_agent_id: str | None = None,
) -> HeldCandidate:
    assert res.pin is not None
    return HeldCandidate(
        deployment=res.address,
        agent=res.pin[0],
        version=hold.version,
        reason=hold.reason,
        held_at=hold.at,
        forward=hold.forward,
        failed=hold.failed,
        total=hold.total,
        stays_at=stays_at,
        gone_agent_id=gone_agent_id,
        checks=len((res.rollout or {}).get("checks") or ()),
    )


def restored_moves(
    held: Collection[HeldCandidate],
    desired: Mapping[str, DesiredResource],
    planned: Mapping[str, Planned],
    kept: Collection[str],
) -> tuple[PinMove, ...]:
    """The pin moves of held deployments put back where the lockfile pinned them (someone
    moved them to the held version behind git's back): ungated, as any pin put back is."""
    moves = []
    for h in held:
        done, res = planned.get(h.deployment), desired.get(h.deployment)
        live = (done.live or {}).get("agent") if done is not None else None
        old = live.get("version") if isinstance(live, dict) else None
        if res is None or res.pin is None or h.deployment not in kept:
            continue
        if isinstance(old, int) and old != h.stays_at:
            moves.append(
                PinMove(
                    deployment=h.deployment,
                    agent=h.agent,
                    old=old,
                    new=h.stays_at,
                    follows_latest=res.pin[1] is None,
                )
            )
    return tuple(moves)


def _carrying(done: Planned, recovered: RecoveredRollout | None) -> Planned:
    """``done`` whose action's target carries ``recovered`` (into the new lockfile entry)."""
    action = done.action
    target = getattr(action, "target", None)
    if recovered is None or action is None or target is None:
        return done
    target = target.model_copy(update={"recovered": recovered})
    return replace(done, action=action.model_copy(update={"target": target}))


def gated_moves(
    moves: tuple[PinMove, ...], gates: Mapping[str, Gate], held: Collection[str]
) -> tuple[PinMove, ...]:
    """The pin moves, each saying how many check sessions it waits for and how it moves;
    none for the deployments in ``held`` (their pins stay)."""
    out = []
    for move in moves:
        if move.deployment in held:
            continue
        gate = gates.get(move.deployment)
        if gate is not None:
            move = move.model_copy(update={"checks": gate.sessions, "gate": gate.mode})
        out.append(move)
    return tuple(out)
