"""Fold apply events into the lockfile: a pending intent before a create, an entry after.

Pure functions from ``(Lockfile, event, now)`` to a new ``Lockfile``; the caller writes it
(atomically, in the state layer). Nothing here does I/O or reads the clock: ``now`` is given.
When an event changes nothing the same ``Lockfile`` object is returned, so a caller can skip
the write with ``if new is not old``.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.engine.model import Action, Create, NoOp, Replace, Target, Update
from reconciler.engine.outcome import Outcome
from reconciler.engine.pinlog import (
    PIN_INTENTS,
    hold_candidate,
    pin_intent,
    pin_move_found,
    settle_pin_moves,
    with_pin_history,
)
from reconciler.state import (
    LockEntry,
    Lockfile,
    PendingIntent,
    UploadedSkillVersion,
)


def record_intent(lockfile: Lockfile, action: Action, now: str) -> Lockfile:
    """Record that the create of ``action`` is about to be sent.

    The next run resolves the intent by listing the provider for the address's ownership
    metadata, so a crash between the create and the lockfile write leaves no orphan.

    Args:
        lockfile: the current lockfile.
        action: a ``Create`` or ``Replace`` (with ``parent_id`` resolved, as ``on_intent``
            passes it); other actions leave the lockfile unchanged.
        now: the timestamp to record (``utc_timestamp()``).

    Returns:
        The lockfile with a pending intent for the address.
    """
    return record_intents(lockfile, (action,), now)


def record_intents(lockfile: Lockfile, actions: Iterable[Action], now: str) -> Lockfile:
    """``record_intent`` for many actions at once (one copy of the lockfile, not one each)."""
    intents = {
        a.address: PendingIntent(
            kind=a.kind,
            operation="create" if isinstance(a, Create) else "replace",
            started_at=now,
            parent_id=a.parent_id,
            remote_name=a.target.remote_name,
            digest=a.target.skill.digest if a.target.skill is not None else None,
        )
        for a in actions
        if isinstance(a, Create | Replace)
    }
    for a in actions:  # a gated pin move: what moved it survives a kill (engine.pinlog)
        pin = pin_intent(a.gate, now) if isinstance(a, Update) and a.gate is not None else None
        if pin is not None:
            lockfile = _settle_replaced(lockfile, a.address, pin)
            intents[a.address] = pin
    return lockfile.with_intents(intents)


def _settle_replaced(lockfile: Lockfile, address: str, pin: PendingIntent) -> Lockfile:
    """``lockfile`` with the pin move of ``address``'s pending intent recorded when ``pin``
    (a new move, planned from the live pin) starts where that one went: a run killed once
    its move landed, which the new intent would otherwise replace unrecorded."""
    old, entry = lockfile.pending.get(address), lockfile.resources.get(address)
    if old is None or entry is None or old.operation not in PIN_INTENTS:
        return lockfile
    if old.agent != pin.agent or old.to_version != pin.from_version:
        return lockfile
    return lockfile.with_entry(address, pin_move_found(entry, old))


def record_outcome(lockfile: Lockfile, outcome: Outcome, now: str) -> Lockfile:
    """Fold one action's outcome into the lockfile.

    - failed: unchanged (a pending intent stays, for the next run to resolve by listing);
    - archived or deleted: the entry and any intent are dropped;
    - otherwise: the entry is written from the action's target and the outcome (remote id,
      version, resolved pins); ``created_at`` is kept while the remote id is the same;
    - a no-op without a target only refreshes the version and pins of an existing entry;
    - a move (an action with ``moved_from``) also drops the old address's entry and renames
      the pins that name it, in the same new lockfile (one atomic write: a crash leaves
      either the old entry, which the next plan moves again, or the new one).

    Args:
        lockfile: the current lockfile.
        outcome: what the executor reported.
        now: the timestamp to record.

    Returns:
        The new lockfile, or ``lockfile`` itself when nothing changed.
    """
    if not outcome.ok:
        verdict = outcome.verdict
        if verdict is not None and not verdict.inconclusive:  # its checks failed
            return hold_candidate(lockfile, outcome.address, verdict, now, outcome.action)
        return lockfile
    intent = lockfile.pending.get(outcome.address)
    if intent is not None and intent.operation in PIN_INTENTS:
        # a rollback whose outcome was lost: recorded as one if the pin is where it went
        agent_id = ((outcome.live or {}).get("agent") or {}).get("id")
        lockfile = settle_pin_moves(
            lockfile,
            {outcome.address: _outcome_pin(outcome, intent)},
            {outcome.address: agent_id} if isinstance(agent_id, str) else None,
        )
    recorded = _record(lockfile, outcome, now)
    moved_from = getattr(outcome.action, "moved_from", None)
    if moved_from is not None and not outcome.removed:
        recorded = _forget_moved(recorded, moved_from, outcome.address, now)
    return recorded


def _outcome_pin(outcome: Outcome, intent: PendingIntent) -> int | None:
    """The version of ``intent.agent`` a deployment's outcome says it pins."""
    if intent.agent in outcome.pins:
        return outcome.pins[intent.agent]
    version = ((outcome.live or {}).get("agent") or {}).get("version")
    return version if isinstance(version, int) else None


def _forget_moved(lockfile: Lockfile, old: str, new: str, now: str) -> Lockfile:
    """A move is recorded: the old address's entry goes (its object is ``new``'s now), and
    every entry naming ``old`` names ``new`` (``LockEntry.renamed``: a deployment's pins,
    holds and pin history, an agent's skills; same object, same versions).

    A vault takes its credentials along, as ``state mv`` does: an entry still under the old
    vault (a credential the manifests no longer declare, left alone; or one whose own move
    is not recorded yet) moves under the new one, so it is not left naming a vault address
    nothing holds (then every plan took it for another owner's and apply exited 1).
    """
    if old in lockfile.resources or old in lockfile.pending:
        lockfile = lockfile.without(old)
    prefix = old + ".credential."
    renames = {
        a: new + a[len(old) :]
        for a in lockfile.resources
        if a.startswith(prefix) and new + a[len(old) :] not in lockfile.resources
    }
    if renames:
        resources = {renames.get(a, a): e for a, e in lockfile.resources.items()}
        lockfile = lockfile.model_copy(update={"resources": resources})
    for address, entry in lockfile.resources.items():
        moved = entry.renamed(old, new)
        if moved is not entry:
            lockfile = lockfile.with_entry(address, moved.model_copy(update={"updated_at": now}))
    return lockfile


def _record(lockfile: Lockfile, outcome: Outcome, now: str) -> Lockfile:
    """``record_outcome`` of a successful action, before a move is folded in."""
    address = outcome.address
    if outcome.removed:
        # a vault takes its credentials along: their entries go with it
        prefix = address + ".credential." if outcome.action.kind == "vault" else None
        gone = [
            a
            for a in dict.fromkeys([*lockfile.resources, *lockfile.pending])
            if a == address or (prefix is not None and a.startswith(prefix))
        ]
        for a in gone:
            lockfile = lockfile.without(a)
        return lockfile
    action = outcome.action
    old = lockfile.resources.get(address)
    target = getattr(action, "target", None)
    if target is None:
        if old is None:
            return _without_pending(lockfile, address)
        entry = old.model_copy(
            update={
                "version": outcome.version if outcome.version is not None else old.version,
                "pins": {**old.pins, **outcome.pins},
                "skills": {**old.skills, **outcome.skills},
            }
        )
        entry = with_pin_history(entry, old, outcome, now)
        if entry == old:
            return _without_pending(lockfile, address)
        entry = entry.model_copy(update={"updated_at": now})
        return _without_pending(lockfile.with_entry(address, entry), address)
    remote_id = outcome.remote_id or (old.id if old is not None else None)
    if remote_id is None:
        return lockfile
    same = old is not None and old.id == remote_id
    # a move's entry was recorded under its old address: what the update did not send
    # (the skill versions an agent resolved to) carries over from there
    moved_from = getattr(action, "moved_from", None)
    before = old if same else None
    if old is None and moved_from is not None:
        prior = lockfile.resources.get(moved_from)
        before = prior if prior is not None and prior.id == remote_id else None
    entry = LockEntry(
        kind=action.kind,
        id=remote_id,
        parent_id=outcome.parent_id if outcome.parent_id is not None else action.parent_id,
        version=outcome.version if outcome.version is not None else _old_version(old, same),
        pins=_pins(target, outcome, old if same else None),
        spec_digest=target.spec_digest,
        protect=target.protect,
        secret_fingerprints=dict(target.secret_fingerprints),
        remote_name=target.remote_name,
        created_at=before.created_at if before is not None else now,  # a move's too
        updated_at=now,
        skills=_skills(target, outcome, before),
    )
    # a moved deployment keeps its rollout record (held versions, pin history), a moved
    # skill the versions it uploaded
    carried = old if old is not None or moved_from is None else lockfile.resources.get(moved_from)
    if target.skill is not None:
        uploaded_by = carried if carried is not None and carried.id == remote_id else None
        entry = _with_upload(entry, uploaded_by, target, outcome)
    entry = with_pin_history(entry, carried, outcome, now)
    if action.kind == "credential":
        entry = entry.model_copy(update={"live_updated_at": _live_updated_at(outcome, before)})
    if target.seeds is not None:
        # written by this action, or (a no-op) present already or never to be written here
        entry = entry.model_copy(update={"seeds": target.seeds})
    if isinstance(action, NoOp) and old is not None and _same_but_time(entry, old):
        return _without_pending(lockfile, address)
    if action.kind == "vault" and old is not None and not same:
        # a vault made anew: the credentials recorded in the old one went with it (those the
        # manifests declare are created in the new one, and recorded then)
        lockfile = _without_credentials_in(lockfile, address, old.id)
    return _without_pending(lockfile.with_entry(address, entry), address)


def _without_credentials_in(lockfile: Lockfile, vault: str, vault_id: str) -> Lockfile:
    prefix = vault + ".credential."
    for address, entry in list(lockfile.resources.items()):
        if address.startswith(prefix) and entry.parent_id == vault_id:
            lockfile = lockfile.without(address)
    return lockfile


def _pins(target: Target, outcome: Outcome, old: LockEntry | None) -> dict[str, int]:
    """Concrete pins: the outcome's, else the target's numbers, else what was recorded."""
    pins: dict[str, int] = {}
    for agent, version in target.pins.items():
        if agent in outcome.pins:
            pins[agent] = outcome.pins[agent]
        elif version is not None:
            pins[agent] = version
        elif old is not None and agent in old.pins:
            pins[agent] = old.pins[agent]
    for agent, version in outcome.pins.items():
        pins.setdefault(agent, version)
    return pins


def _skills(target: Target, outcome: Outcome, old: LockEntry | None) -> dict[str, str]:
    """An agent's skill versions: as sent, else pinned, else what was recorded."""
    out: dict[str, str] = {}
    for skill, pinned in target.skills.items():
        version = outcome.skills.get(skill) or pinned or (old.skills.get(skill) if old else None)
        if version:
            out[skill] = version
    return out


def _with_upload(
    entry: LockEntry, old: LockEntry | None, target: Target, outcome: Outcome
) -> LockEntry:
    """A skill's entry: its slug, and the version holding the manifest's files (the one this
    action uploaded, or the live one found to hold them) added to what it had uploaded and
    recorded as its latest."""
    skill = target.skill
    assert skill is not None
    uploaded = dict(old.uploaded) if old is not None else {}
    version = outcome.skill_version or skill.version_id
    if version:
        uploaded[version] = UploadedSkillVersion(digest=skill.digest, files=dict(skill.files))
    latest = version or (old.latest if old is not None else None)
    return entry.model_copy(update={"slug": skill.slug, "uploaded": uploaded, "latest": latest})


def _live_updated_at(outcome: Outcome, before: LockEntry | None) -> str | None:
    """A credential's ``updated_at`` as this action left it: the provider's answer, else what
    the plan saw (a no-op, an adoption that sent nothing), else what was recorded."""
    stamp = (outcome.live or {}).get("updated_at") or getattr(outcome.action, "live_marker", None)
    if isinstance(stamp, str):
        return stamp
    return before.live_updated_at if before is not None else None


def _old_version(old: LockEntry | None, same: bool) -> int | None:
    return old.version if same and old is not None else None


def _same_but_time(new: LockEntry, old: LockEntry) -> bool:
    return new.model_copy(update={"updated_at": old.updated_at}) == old


def _without_pending(lockfile: Lockfile, address: str) -> Lockfile:
    return lockfile.without_pending(address) if address in lockfile.pending else lockfile
