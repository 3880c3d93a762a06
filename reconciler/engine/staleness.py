"""Staleness of a saved plan: which of its actions the live state has moved past (pure).

``apply PLANFILE`` refreshes, then refuses each action whose resource changed since the plan
was made (created meanwhile, gone, edited, archived, or now owned by someone else). A
resource the plan leaves alone (a no-op) may change meanwhile without refusing anything,
unless an action of the plan builds on it (a pin that follows it, a credential's vault). Beside
the planner because it answers the planner's question again, later, for one saved plan.
"""

from __future__ import annotations

from reconciler.engine.model import Action, Plan, forgets_only
from reconciler.engine.ownership import claimed_address, not_ours
from reconciler.engine.refresh import Observed
from reconciler.kinds import owned_address
from reconciler.state import Lockfile


def stale_actions(
    plan: Plan, observed: Observed, lockfile: Lockfile | None = None
) -> dict[str, str]:
    """Actions of a saved plan whose resource changed since the plan was made.

    Args:
        lockfile: the state as it is now. A create is stale when a live object carries its
            address in this project's tags, or when the state now records a live object for
            it (the only trace of a skill, which carries no tags, applied meanwhile).

    Returns:
        address -> a sentence saying what changed.
    """
    stale: dict[str, str] = {}
    needed = _needed(plan)
    recorded_as = _recorded_as(lockfile)
    for a in plan.actions:
        elsewhere = _recorded_elsewhere(a, lockfile, recorded_as)
        if elsewhere is not None and (a.type != "noop" or a.address in needed):
            stale[a.address] = elsewhere
            continue
        if a.type == "create":
            made = _created_since(a.kind, a.address, plan.project, observed, lockfile)
            if made is not None:
                stale[a.address] = f"{a.address} was created ({made}) since the plan"
            elif a.kind == "skill" and _upload_intended_since(plan, a.address, lockfile):
                stale[a.address] = (
                    f"{a.address} may have been uploaded since the plan (an apply was "
                    "interrupted while uploading it; a skill carries no tags, so only a new "
                    "plan finds it, by its slug)"
                )
            continue
        live = observed.index(a.kind).get(a.remote_id)
        if forgets_only(a) and (live is None or live.get("archived_at")):
            continue  # archived or gone already when planned: still nothing but an entry
        if live is None:
            stale[a.address] = f"{a.address} ({a.remote_id}) no longer exists"
            continue
        marker: str | None
        if a.kind == "agent":
            marker, what = str(live.get("version")), "version"
        elif a.kind == "skill":
            marker, what = live.get("latest_version_id"), "latest version"
        else:
            marker, what = live.get("updated_at"), "updated_at"
        if live.get("archived_at") and a.type != "noop":
            # archiving moves updated_at too: say what happened, not that a field did
            stale[a.address] = f"{a.address} was archived since the plan"
        elif a.live_marker is not None and marker != a.live_marker:
            if a.type == "noop" and a.address not in needed:
                # left alone by the plan, and nothing in it builds on what it was (a
                # teammate's apply of another resource): nothing to refuse
                continue
            stale[a.address] = (
                f"{a.address} changed since the plan ({what} {a.live_marker} -> {marker})"
            )
        elif a.type != "noop":
            # the plan may predate a change of hands (or a tool that checked no tags)
            owner = not_ours(a.kind, live, plan.project, claimed_address(a.address))
            moved_from = getattr(a, "moved_from", None)
            if owner is not None and moved_from is not None:
                # a move's object still carries its old address until the move is applied
                owner = not_ours(a.kind, live, plan.project, moved_from)
            tagged = owned_address(live, plan.project)
            if owner is not None and tagged is not None and _unclaimed(tagged, plan, lockfile):
                # ours, tagged by hand for an address nothing claims: the plan retags it
                owner = None
            if owner is not None:
                stale[a.address] = (
                    f"{a.address} ({a.remote_id}) belongs to {owner}; nothing changes or "
                    "archives it"
                )
    return stale


def _recorded_as(lockfile: Lockfile | None) -> dict[str, str]:
    """remote id -> the address the state records it under now."""
    if lockfile is None:
        return {}
    return {e.id: address for address, e in lockfile.resources.items()}


def _recorded_elsewhere(
    a: Action, lockfile: Lockfile | None, recorded_as: dict[str, str]
) -> str | None:
    """What the state says now, when it no longer records ``a``'s object as ``a.address``
    (a ``state mv``, ``state rm`` and import, or ``import --force`` since the plan): applied,
    the action would record one object under two addresses, or an address twice."""
    remote_id = getattr(a, "remote_id", None)
    if lockfile is None or a.type == "create" or not remote_id:
        return None
    other = recorded_as.get(remote_id)
    if other is not None and other not in (a.address, getattr(a, "moved_from", None)):
        return (
            f"{remote_id} is recorded as {other} now, not as {a.address} (a `state mv` or "
            "an import since the plan)"
        )
    entry = lockfile.resources.get(a.address)
    if entry is not None and entry.id != remote_id:
        return (
            f"{a.address} is recorded as {entry.id} now, not {remote_id} (a `state mv` or "
            "an import since the plan)"
        )
    return None


def _unclaimed(address: str, plan: Plan, lockfile: Lockfile | None) -> bool:
    """No action of ``plan`` and no entry of the state is for ``address``."""
    if lockfile is not None and address in lockfile.resources:
        return False
    return all(a.address != address for a in plan.actions)


def _created_since(
    kind: str, address: str, project: str, observed: Observed, lockfile: Lockfile | None
) -> str | None:
    """The id of a live object made for ``address`` since a plan that creates it, if any."""
    for obj in observed.all(kind):
        if not obj.get("archived_at") and owned_address(obj, project) == address:
            return str(obj["id"])
    entry = lockfile.resources.get(address) if lockfile is not None else None
    if entry is not None and entry.kind == kind:
        live = observed.index(entry.kind).get(entry.id)
        if live is not None and not live.get("archived_at"):
            return entry.id
    return None


def _upload_intended_since(plan: Plan, address: str, lockfile: Lockfile | None) -> bool:
    """Whether the state moved on since ``plan`` and holds a pending intent for the skill
    at ``address``: an apply since (of this very plan, killed) may have uploaded it. Its
    record lost, the skill is known by its slug alone, which only a plan reads (``apply
    PLANFILE`` lists skills, not their versions' slugs); sent again, it is a twin."""
    if lockfile is None or address not in lockfile.pending:
        return False
    return lockfile.lineage != plan.lineage or lockfile.serial > plan.serial


def _needed(plan: Plan) -> set[str]:
    """Addresses whose plan-time state the plan builds on: those with an action that
    changes or records something, and those such actions depend on."""
    needed: set[str] = set()
    for a in plan.actions:
        if a.type == "noop" and a.target is None and a.moved_from is None:
            continue  # a bare no-op: nothing is sent or recorded
        needed.add(a.address)
        needed.update(a.depends_on)
        if a.parent is not None:
            needed.add(a.parent)
    return needed
