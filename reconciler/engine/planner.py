"""Build the plan: desired manifests + observed live state + lockfile -> ``Plan``.

Pure: no I/O, nothing printed. The steps, each in its own module:

- ``inputs``: the documents, the live objects and the lockfile, indexed once (read-only);
- ``resource``: each desired address, in dependency order, matched to its live object,
  compared and decided (one action with its reason), returning what its referrers may assume;
- ``prune``: what left the manifests, one orphan at a time (archived only with ``prune``;
  unowned live objects are never touched); an address a document moved away from
  (``moved_from``) is no orphan: its object and lockfile entry move with the document;
- ``ownership``: twins (a second live object tagged for a managed address), always
  reported, archived only with ``prune``;
- ``targets``: with ``--target``, the targets and what they depend on.

This module assembles them, orders removals after the changes that stop referencing what
they remove, and derives the pin moves and the blast radius that reviewers read.

Ownership is proven by the live object's tags, never assumed from the lockfile: an entry
whose object carries another project's tags, or none, becomes a ``Conflict`` (no action may
change or archive it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.engine.desired import DesiredResource
from reconciler.engine.gate import HeldCandidate, RecoveredRollout
from reconciler.engine.inputs import Fingerprinter, PlanInputs, PlanOptions
from reconciler.engine.model import (
    CHANGE_TYPES,
    LITERAL,
    Action,
    BlastRadius,
    Conflict,
    Impact,
    Note,
    PinMove,
    Plan,
    Update,
)
from reconciler.engine.ownership import find_twins, twin_archives
from reconciler.engine.paused import paused_message
from reconciler.engine.pinlog import settle_live_pin_moves
from reconciler.engine.planned import UNKNOWN, Planned, predicted_id, predicted_version
from reconciler.engine.prune import Removal, keep_in_use, prune
from reconciler.engine.refresh import Observed
from reconciler.engine.resource import plan_resource
from reconciler.engine.rollout import gate_pin_move, gated_moves, restored_moves
from reconciler.engine.skillchain import chain_radius, skill_chains
from reconciler.engine.targets import narrow, targeted_addresses, wanted_addresses
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_ORDER
from reconciler.manifest import Document
from reconciler.manifest.skilldir import SkillSource
from reconciler.state import Lockfile


def build_plan(
    documents: Iterable[Document],
    observed: Observed,
    lockfile: Lockfile | None,
    options: PlanOptions | None = None,
    fingerprint: Fingerprinter | None = None,
    recovered: Mapping[str, RecoveredRollout] | None = None,
    skills: Mapping[str, SkillSource] | None = None,
) -> Plan:
    """What apply would do to converge the provider to ``documents``.

    Args:
        documents: manifest documents (``ManifestSet.documents``).
        observed: live state from ``refresh``.
        lockfile: the current ``Lockfile`` (ids, digests, secret fingerprints), or None.
        options: project, prune, delete, targets.
        fingerprint: salted fingerprint of a secret's current value, to plan rotations.
        recovered: deployments without a lockfile entry -> their rollout record read back
            from the provider (held candidates stay held; the history carries on).
        skills: skill address -> its directory as read at load (``ManifestSet.skills``):
            what decides an upload.

    Returns:
        A frozen ``Plan``; actions sorted by address.

    Raises:
        PlanError: a ``--target`` names no known address, or a deployment pins an agent
            version that does not exist (nor would after this plan).
    """
    options = options or PlanOptions()
    if lockfile is not None:
        # a pin move killed once the pin had moved: recorded as the move it was
        lockfile = settle_live_pin_moves(lockfile, observed.all("deployment"))
    inputs = PlanInputs.build(
        documents, observed, lockfile, options, fingerprint, recovered, skills
    )
    planned: dict[str, Planned] = {}
    held: list[HeldCandidate] = []
    for kind in KIND_ORDER:
        for res in inputs.desired.values():
            if res.kind == kind:
                done = plan_resource(inputs, res, planned)
                done, hold = gate_pin_move(inputs, res, done, planned)
                held += [hold] if hold is not None else []
                planned[res.address] = done
    moved = {p.moved_from: p.live["id"] for p in planned.values() if p.moved_from and p.live}
    removals, notes, conflicts = prune(inputs, moved)
    conflicts += [p.conflict for p in planned.values() if p.conflict is not None]
    twins = find_twins(_kept(inputs, planned, removals, notes, conflicts), inputs.owned, lockfile)
    if options.prune:
        removals += twin_archives(twins)
    notes += [p.refused for p in planned.values() if p.refused is not None]
    notes += [p.move_note for p in planned.values() if p.move_note is not None]
    actions = [p.action for p in planned.values() if p.action is not None]
    actions = _order_removals([*actions, *removals])
    notes += _hidden_notes(inputs, planned)
    notes += _paused_notes(inputs, planned)
    untargeted: tuple[str, ...] = ()
    if options.targets:
        wanted = wanted_addresses(options.targets, inputs.desired, actions, notes, conflicts, twins)
        untargeted = _untargeted(inputs.desired, planned, actions, wanted)
        actions, notes, conflicts, twins = narrow(wanted, actions, notes, conflicts, twins)
    actions, in_use = keep_in_use(inputs, actions)
    notes += in_use
    actions, waiting = _waiting_for_conflicts(actions, conflicts)
    notes += waiting
    kept = {a.address for a in actions}
    gates = {a.address: a.gate for a in actions if isinstance(a, Update) and a.gate is not None}
    pin_moves = gated_moves(
        _pin_moves(inputs.desired, planned, kept), gates, {h.deployment for h in held}
    )
    restored = restored_moves(held, inputs.desired, planned, kept)
    pin_moves = tuple(sorted((*pin_moves, *restored), key=lambda m: (m.deployment, m.agent)))
    chains = skill_chains(inputs.desired, actions, pin_moves)
    return Plan(
        project=options.project,
        lineage=lockfile.lineage if lockfile is not None else None,
        serial=lockfile.serial if lockfile is not None else 0,
        prune=options.prune,
        targets=tuple(options.targets),
        actions=tuple(sorted(actions, key=lambda a: a.address)),
        pin_moves=pin_moves,
        blast_radius=tuple(
            sorted(
                _blast_radius(inputs.desired, actions) + chain_radius(inputs.desired, chains),
                key=lambda b: b.address,
            )
        ),
        skill_chains=chains,
        notes=tuple(sorted(notes, key=lambda n: n.address)),
        twins=tuple(sorted(twins, key=lambda t: (t.address, t.remote_id))),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.address)),
        untargeted=untargeted,
        held=tuple(h for h in held if inputs.wanted is None or h.deployment in inputs.wanted),
    )


def _waiting_for_conflicts(
    actions: list[Action], conflicts: list[Conflict]
) -> tuple[list[Action], list[Note]]:
    """``actions`` without those that refer (through any chain of this plan's actions) to
    an address apply refuses (a conflict, "not ours"), each left alone with a note: apply
    could not resolve the id they need, so it would fail them as "not attempted"."""
    refused = {c.address for c in conflicts}
    if not refused:  # the usual plan: nothing to walk
        return actions, []
    waits = {a.address: _referred(a) for a in actions}
    root: dict[str, str] = {}
    changed = True
    while changed:  # transitively: a deployment on a credential's vault waits too
        changed = False
        for a in actions:
            if a.address in root or a.type not in ("create", "update", "replace"):
                continue  # a no-op sends nothing; an archive needs no other id
            for dep in sorted(waits[a.address] - {a.address}):
                if dep in refused or dep in root:
                    root[a.address] = root.get(dep, dep)
                    changed = True
                    break
    notes = [
        Note(
            address=a.address,
            kind=a.kind,
            remote_id=getattr(a, "remote_id", None),
            message=(
                f"its {a.type} waits for {root[a.address]}, which is not ours (see above): "
                f"apply leaves {a.address} alone until that entry is resolved"
            ),
        )
        for a in actions
        if a.address in root
    ]
    return [a for a in actions if a.address not in root], notes


def _referred(action: Action) -> set[str]:
    """The addresses ``action`` needs the ids of: its parent, what it depends on, and the
    placeholders (``$ref``, ``$pin``, ``$skill``) of its body."""
    found = {*action.depends_on, *([action.parent] if action.parent else [])}
    stack: list[object] = [getattr(action, "body", None)]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if set(value) == {LITERAL}:  # the manifest's own value: it names no address
                continue
            named = (value.get(k) for k in ("$ref", "$pin", "$skill"))
            found.update(v for v in named if isinstance(v, str))
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def _kept(
    inputs: PlanInputs,
    planned: Mapping[str, Planned],
    removals: list[Removal],
    notes: list[Note],
    conflicts: list[Conflict],
) -> dict[str, JSON]:
    """address -> the live object the plan manages for it (matched, or an orphan it
    archives or leaves alone); a twin is any other live object tagged for that address."""
    kept = {a: p.live for a, p in planned.items() if p.live is not None}
    conflicted = {c.address for c in conflicts}
    left: list[tuple[str, str, str | None]] = [(n.address, n.kind, n.remote_id) for n in notes]
    left += [(a.address, a.kind, a.remote_id) for a in removals]
    for address, kind, remote_id in left:
        if address in kept or address in conflicted or remote_id is None:
            continue
        obj = inputs.live.get(kind, {}).get(remote_id)
        if obj is not None and not obj.get("archived_at"):
            kept[address] = obj
    return kept


def _paused_notes(inputs: PlanInputs, planned: Mapping[str, Planned]) -> list[Note]:
    """A note per deployment the provider reports paused: no manifest field says a
    deployment runs, and apply does not unpause one (``engine.paused``)."""
    notes = []
    for address, p in sorted(planned.items()):
        if inputs.desired[address].kind != "deployment" or p.live is None:
            continue
        message = paused_message(p.live)
        if message is not None:
            notes.append(
                Note(address=address, kind="deployment", remote_id=p.live["id"], message=message)
            )
    return notes


def _hidden_notes(inputs: PlanInputs, planned: Mapping[str, Planned]) -> list[Note]:
    """A note per address whose live object differs in paths ``ignore_changes`` hides, so a
    plan never says "matches the manifests" about a difference it chose not to show."""
    return [
        Note(
            address=address,
            kind=inputs.desired[address].kind,
            remote_id=p.live["id"] if p.live is not None else None,
            message=f"differs from the manifest in {', '.join(p.hidden)}, which ignore_changes "
            "leaves as is",
        )
        for address, p in sorted(planned.items())
        if p.hidden
    ]


def _untargeted(
    desired: Mapping[str, DesiredResource],
    planned: Mapping[str, Planned],
    actions: list[Action],
    wanted: set[str],
) -> tuple[str, ...]:
    """Addresses outside ``--target`` with changes of their own (an action or a pin move): a
    targeted plan says nothing about them, and must not sound as if all were in order."""
    found = {a.address for a in actions if a.address not in wanted and a.type in CHANGE_TYPES}
    found |= {m.deployment for m in _pin_moves(desired, planned, set(desired) - wanted)}
    return tuple(sorted(found))


def _order_removals(actions: list[Action]) -> list[Action]:
    """Archives and deletes wait for the changes that stop referencing what they remove."""
    referrers = tuple(
        a.address
        for a in actions
        if a.kind == "deployment" and a.type in ("create", "update", "replace")
    )
    out: list[Action] = []
    agents = tuple(
        a.address for a in actions if a.kind == "agent" and a.type in ("create", "update")
    )
    # removed in reverse order of creation: a deployment goes before the agent, environment,
    # vaults and memory stores it runs with, an agent before the skills it uses
    removed = {
        kind: tuple(
            x.address for x in actions if x.type in ("archive", "delete") and x.kind == kind
        )
        for kind in ("deployment", "agent")
    }
    for a in actions:
        if a.type in ("archive", "delete") and a.kind != "deployment":
            deps = tuple(sorted(set(referrers)))
            if a.kind == "skill":  # an agent's update or archive may be what stops using it
                deps += agents + removed["agent"]
            if a.kind in ("agent", "environment", "vault", "memory_store"):
                deps += removed["deployment"]
            a = a.model_copy(update={"depends_on": deps})
        out.append(a)
    return out


def _pin_moves(
    desired: Mapping[str, DesiredResource], planned: Mapping[str, Planned], kept: set[str]
) -> tuple[PinMove, ...]:
    moves: list[PinMove] = []
    for res in desired.values():
        if res.kind != "deployment" or res.address not in kept or res.pin is None:
            continue
        if res.ignores("agent.version"):
            continue  # ignore_changes: [agent]: the pin stays where it is
        done = planned.get(res.address)
        obj = done.live if done is not None else None
        if obj is None:
            continue
        agent_addr, pinned = res.pin
        old = (obj.get("agent") or {}).get("version")
        new = pinned if pinned is not None else predicted_version(planned, agent_addr)
        same_agent = (obj.get("agent") or {}).get("id") == predicted_id(planned, agent_addr)
        if old != new or not same_agent:
            moves.append(
                PinMove(
                    deployment=res.address,
                    agent=agent_addr,
                    old=old,
                    new=new,
                    follows_latest=pinned is None,
                )
            )
    return tuple(sorted(moves, key=lambda m: m.deployment))


def _blast_radius(
    desired: Mapping[str, DesiredResource], actions: list[Action]
) -> tuple[BlastRadius, ...]:
    out: list[BlastRadius] = []
    for a in actions:
        if a.type not in ("update", "replace", "archive", "delete"):
            continue
        if a.kind not in ("agent", "environment", "vault", "memory_store"):
            continue
        impacts: list[Impact] = []
        for res in desired.values():
            if res.kind != "deployment" or a.address not in res.refs:
                continue
            if a.kind == "agent" and res.pin is not None:
                pinned = res.pin[1]
                impacts.append(
                    Impact(
                        deployment=res.address,
                        # ignore_changes: [agent] keeps the pin where it is
                        follows_latest=pinned is None and not res.ignores("agent.version"),
                        pinned_version=pinned,
                    )
                )
            else:
                impacts.append(Impact(deployment=res.address, follows_latest=True))
        if impacts:
            out.append(
                BlastRadius(
                    address=a.address,
                    deployments=tuple(sorted(impacts, key=lambda i: i.deployment)),
                )
            )
    return tuple(sorted(out, key=lambda b: b.address))


__all__ = [
    "UNKNOWN",
    "Fingerprinter",
    "PlanOptions",
    "Planned",
    "build_plan",
    "plan_resource",
    "targeted_addresses",
]
