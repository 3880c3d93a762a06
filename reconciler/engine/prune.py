"""Orphans: what left the manifests, classified one at a time. Pure: no I/O.

An orphan is a lockfile entry whose address the manifests no longer declare, or a live
object this project's tags claim for such an address. Each gets one verdict:

- an ``Archive`` or ``Delete`` with ``--prune`` (a gone or archived one: an archive that only
  forgets the entry);
- a ``Note`` saying why it is left alone (protected, ``--prune`` off, already gone) and how
  to act on it;
- a ``Conflict`` when the recorded object is not this project's (never archived);
- nothing, when its vault's verdict covers a credential.

Only the vault relation spans orphans, so it is computed once (``VaultOrphans``) before the
orphans are classified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from reconciler.engine.inputs import PlanInputs, live_marker
from reconciler.engine.model import ALREADY_REMOVED, Action, Archive, Conflict, Delete, Note
from reconciler.jsontypes import JSON
from reconciler.kinds import DELETABLE_KINDS, KIND_INFO, Kind
from reconciler.state import LockEntry

Removal = Archive | Delete
Verdict = Removal | Note | Conflict | None


@dataclass(frozen=True)
class Orphan:
    """A resource that left the manifests: its lockfile entry and/or its live object."""

    address: str
    kind: Kind
    #: the live object (archived included), None when gone
    obj: JSON | None
    entry: LockEntry | None

    @property
    def live(self) -> bool:
        return self.obj is not None and not self.obj.get("archived_at")

    @property
    def remote_id(self) -> str | None:
        if self.obj is not None:
            return str(self.obj["id"])
        return self.entry.id if self.entry is not None else None


@dataclass(frozen=True)
class VaultOrphans:
    """The vault orphans whose verdict covers their credentials."""

    #: live and ours: archiving (or leaving) the vault takes its credentials along
    live: frozenset[str]
    #: not protected: a gone credential is forgotten with its vault
    forgotten: frozenset[str]

    @classmethod
    def of(cls, inputs: PlanInputs, orphans: list[Orphan]) -> VaultOrphans:
        vaults = [o for o in orphans if o.kind == "vault"]
        return cls(
            live=frozenset(
                o.address
                for o in vaults
                if o.live and (o.entry is None or inputs.conflict(o.address, o.kind) is None)
            ),
            forgotten=frozenset(
                o.address for o in vaults if not (o.entry is not None and o.entry.protect)
            ),
        )


def find_orphans(inputs: PlanInputs, moved: Mapping[str, str] | None = None) -> list[Orphan]:
    """Every resource that left the manifests, sorted by address: lockfile entries first
    (with their live object, if any), then live objects tagged for an address neither the
    manifests nor the lockfile hold.

    ``moved`` (old address -> the object a move takes from it) are no orphans: the entry
    and that object go to the new address. Another live object tagged for the old address
    (a twin) still is one.
    """
    moved = moved or {}
    found: dict[str, Orphan] = {}
    for address, entry in inputs.entries.items():
        if address in inputs.desired:
            continue
        if moved.get(address) == entry.id:
            continue
        obj = inputs.live.get(entry.kind, {}).get(entry.id)
        found[address] = Orphan(address, cast(Kind, entry.kind), obj, entry)
    # an object an entry holds already is that entry's orphan, whatever address its tags
    # still name (a vault moved with its credentials: one orphan, never two)
    held = {o.remote_id for o in found.values()}
    for (kind, address), objs in inputs.owned.items():
        if address in inputs.desired or address in found:
            continue
        live = [
            o
            for o in objs
            if not o.get("archived_at") and o["id"] != moved.get(address) and o["id"] not in held
        ]
        if live:
            found[address] = Orphan(address, cast(Kind, kind), live[0], None)
    return [found[a] for a in sorted(found)]


def prune(
    inputs: PlanInputs, moved: Mapping[str, str] | None = None
) -> tuple[list[Removal], list[Note], list[Conflict]]:
    """The verdict on every orphan (``moved``: see ``find_orphans``): removals, notes and
    conflicts."""
    orphans = find_orphans(inputs, moved)
    vaults = VaultOrphans.of(inputs, orphans)
    actions: list[Removal] = []
    notes: list[Note] = []
    conflicts: list[Conflict] = []
    # skills last: whether one may go depends on the agents this prune archives
    verdicts = [(o, classify(inputs, o, vaults)) for o in orphans if o.kind != "skill"]
    archived = {v.remote_id for _, v in verdicts if isinstance(v, Archive) and v.kind == "agent"}
    verdicts += [
        (o, _skill_verdict(inputs, o, vaults, archived)) for o in orphans if o.kind == "skill"
    ]
    for orphan, verdict in sorted(verdicts, key=lambda ov: ov[0].address):
        if isinstance(verdict, Note):
            notes.append(verdict)
        elif isinstance(verdict, Conflict):
            conflicts.append(verdict)
        elif verdict is not None:
            actions.append(verdict)
    return actions, notes, conflicts


def classify(inputs: PlanInputs, orphan: Orphan, vaults: VaultOrphans) -> Verdict:
    """The verdict on one orphan (see the module docstring)."""
    if not orphan.live:
        return _already_removed(inputs, orphan, vaults)
    if orphan.entry is not None:
        found = inputs.conflict(orphan.address, orphan.kind)
        if found is not None:
            return found  # not ours: the Conflict says whose it is, nothing archives it
    if orphan.kind == "credential" and _under(orphan.address, vaults.live):
        return None  # archiving the vault takes its credentials along
    vault = _protecting_vault(inputs, orphan.address) if orphan.kind == "credential" else None
    if vault is not None or (orphan.entry is not None and orphan.entry.protect):
        message = _protected_message(orphan.address, vault, orphan.kind)
        if not KIND_INFO[orphan.kind].can_archive:
            message = message.replace("To archive it", "To delete it")
        return _note(orphan, message)
    if not inputs.options.prune:
        verb = "archive" if KIND_INFO[orphan.kind].can_archive else "delete"
        return _note(orphan, f"not in the manifests; left alone. Run with --prune to {verb} it")
    return _removal(inputs, orphan)


def _skill_verdict(
    inputs: PlanInputs, orphan: Orphan, vaults: VaultOrphans, archived: set[str]
) -> Verdict:
    """A skill that left the manifests: as any orphan, but deleted (the provider has no
    archive), and never while an agent outside this prune still uses it."""
    verdict = classify(inputs, orphan, vaults)
    if not isinstance(verdict, Delete | Archive) or not orphan.live:
        return verdict
    users = skill_users(inputs, verdict.remote_id, archived)
    if users:
        return _note(
            orphan,
            f"not in the manifests, but still used by {', '.join(users)}; left alone (a skill "
            "an agent uses is not deleted). Remove it from the agent's skills, apply, then run "
            "with --prune",
        )
    return verdict


def skill_users(inputs: PlanInputs, skill_id: str, archived: set[str]) -> list[str]:
    """The live agents that use skill ``skill_id`` and will still use it after this plan:
    not archived by it, and not updated by it to drop the skill (a desired agent whose
    manifest no longer names it). Each by address, else by name and id."""
    names = {e.id: a for a, e in inputs.entries.items() if e.kind == "agent"}
    users = []
    for agent in inputs.live.get("agent", {}).values():
        if agent.get("archived_at") or agent["id"] in archived:
            continue
        if not any(s.get("skill_id") == skill_id for s in agent.get("skills") or []):
            continue
        address = names.get(agent["id"])
        res = inputs.desired.get(address) if address is not None else None
        if res is not None and not any(
            isinstance(s, dict) and (s.get("skill_id") == skill_id)
            for s in res.spec.get("skills") or []
        ):
            continue  # its update drops the skill; the delete waits for it
        users.append(address or f"agent {agent.get('name')!r} ({agent['id']})")
    return sorted(users)


#: what a deployment runs with: archiving one pauses the deployments that still use it
RUN_WITH = ("agent", "environment", "vault", "memory_store")


def keep_in_use(inputs: PlanInputs, actions: list[Action]) -> tuple[list[Action], list[Note]]:
    """``actions`` without the archives (and deletes) of what a live deployment will still
    run with once they are done, each left alone with a note instead.

    A deployment stops using an orphan only through an action of this plan (its update, or
    its own archive); one outside ``--target``, left alone (protected, ``--prune`` off), or not
    this project's would be paused by the provider at its next run. A skill delete that
    waited for an agent archive kept this way stays too (the agent still uses the skill). An
    agent another live agent's multiagent roster still names after the plan stays too: the
    provider refuses an archived roster member."""
    changing = {
        getattr(a, "remote_id", None)
        for a in actions
        if a.kind == "deployment" and a.type in ("update", "replace", "archive", "delete")
    }
    names = {e.id: a for a, e in inputs.entries.items() if e.kind == "deployment"}
    users: dict[str, list[str]] = {}
    for d in inputs.live.get("deployment", {}).values():
        if d.get("archived_at") or d["id"] in changing:
            continue
        name = names.get(d["id"]) or f"deployment {d.get('name')!r} ({d['id']})"
        for used in _runs_with(d):
            users.setdefault(used, []).append(name)
    rosters = _roster_users(inputs, actions)
    out: list[Action] = []
    notes: list[Note] = []
    kept: set[str] = set()
    for a in actions:
        if not isinstance(a, Archive | Delete):
            out.append(a)
            continue
        obj = inputs.live.get(a.kind, {}).get(a.remote_id)
        gone = obj is None or bool(obj.get("archived_at"))  # forgetting its entry is all
        using = users.get(a.remote_id) if a.kind in RUN_WITH and not gone else None
        leads = rosters.get(a.remote_id) if a.kind == "agent" and not gone else None
        if leads and not using:
            kept.add(a.address)
            notes.append(
                _note(
                    a,
                    f"not in the manifests, but {', '.join(sorted(leads))} names it in its "
                    "multiagent roster, which this plan leaves as it is; left alone (the "
                    "provider refuses an archived agent as a roster member, and checks the "
                    "roster at every run). Remove it from that roster too, or archive that "
                    "agent as well",
                )
            )
            continue
        if using:
            kept.add(a.address)
            notes.append(
                _note(
                    a,
                    f"not in the manifests, but still used by {', '.join(sorted(using))}, "
                    "which this plan leaves running with it; left alone (the provider pauses a "
                    f"deployment whose {a.kind.replace('_', ' ')} is archived). Plan that "
                    "deployment's update or archive too (--target it, or leave --target out)",
                )
            )
            continue
        out.append(a)
    for a in out:
        waited = [d for d in a.depends_on if d in kept]
        if a.kind == "skill" and isinstance(a, Delete) and waited:
            notes.append(
                _note(
                    a,
                    f"not in the manifests, but still used by {', '.join(waited)}, which this "
                    "plan leaves alone; left alone (a skill an agent uses is not deleted)",
                )
            )
    dropped = {n.address for n in notes}
    return [_not_waiting_for(a, kept) for a in out if a.address not in dropped], notes


def _not_waiting_for(action: Action, kept: set[str]) -> Action:
    """``action`` without its dependencies on ``kept`` (actions left alone, which it no
    longer waits for); the same action when it had none (the actions are frozen: a copy of
    each of a 10,000-action plan cost ~12 MiB at the plan's peak)."""
    if kept.isdisjoint(action.depends_on):
        return action
    return action.model_copy(
        update={"depends_on": tuple(d for d in action.depends_on if d not in kept)}
    )


#: actions after which an agent's live roster is gone (a replace makes a new agent)
GOES = ("archive", "delete", "replace")


def _roster_users(inputs: PlanInputs, actions: list[Action]) -> dict[str, list[str]]:
    """agent id -> the live agents whose multiagent roster names it after this plan (an
    agent this plan archives or replaces names none; one it updates, what its update sends
    when that sets ``multiagent``)."""
    names = {e.id: a for a, e in inputs.entries.items() if e.kind == "agent"}
    by_id = {getattr(a, "remote_id", None): a for a in actions if a.kind == "agent"}
    users: dict[str, list[str]] = {}
    for agent in inputs.live.get("agent", {}).values():
        action = by_id.get(agent["id"])
        if agent.get("archived_at") or (action is not None and action.type in GOES):
            continue
        body = getattr(action, "body", None) if action is not None else None
        sends = isinstance(body, dict) and "multiagent" in body  # null clears it
        roster = cast(JSON, body)["multiagent"] if sends else agent.get("multiagent")
        name = names.get(agent["id"]) or f"agent {agent.get('name')!r} ({agent['id']})"
        for member in _ids_in(roster):
            users.setdefault(member, []).append(name)
    return users


def _ids_in(value: Any) -> set[str]:
    """Every id a multiagent roster names: its string entries and ``{type: agent, id}``."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {i for v in value for i in _ids_in(v)}
    if isinstance(value, dict):
        found = {value["id"]} if isinstance(value.get("id"), str) else set()
        return found | {i for k, v in value.items() if k != "id" for i in _ids_in(v)}
    return set()


def _runs_with(deployment: JSON) -> set[str]:
    """The ids a live deployment runs with: its agent, environment, vaults, memory stores."""
    agent = deployment.get("agent")
    ids = {agent.get("id")} if isinstance(agent, dict) else set()
    ids.add(deployment.get("environment_id"))
    ids.update(deployment.get("vault_ids") or ())
    ids.update(
        r.get("memory_store_id") for r in deployment.get("resources") or () if isinstance(r, dict)
    )
    return {i for i in ids if isinstance(i, str)}


def _already_removed(inputs: PlanInputs, orphan: Orphan, vaults: VaultOrphans) -> Verdict:
    """A recorded object that is archived or gone already: forgotten with ``--prune``."""
    state = "archived" if orphan.obj else "gone"
    entry, rid = orphan.entry, orphan.remote_id
    gone_with = _gone_with_vault(inputs, orphan)
    if gone_with is not None:
        return _note(
            orphan,
            f"went with its vault {gone_with}, which is gone or archived; its lockfile entry "
            f"goes when apply creates {orphan.address.split('.credential.')[0]} again",
        )
    if inputs.options.prune and entry is not None and not entry.protect and rid:
        if orphan.kind == "credential" and _under(orphan.address, vaults.forgotten):
            return None  # forgotten with its vault (see record_outcome)
        # e.g. an apply --prune killed after the provider archived, before the lockfile
        # write: archiving again is a no-op that drops the stale entry (a kind that cannot
        # be archived: a delete, whose 404 counts as done)
        removal = Archive if KIND_INFO[orphan.kind].can_archive else Delete
        return removal(
            address=orphan.address,
            kind=orphan.kind,
            remote_id=rid,
            reason=f"{ALREADY_REMOVED}{state} on the provider; forgets the lockfile entry "
            "(--prune)",
            live_marker=live_marker(orphan.kind, orphan.obj) if orphan.obj else None,
            parent_id=entry.parent_id if orphan.kind == "credential" else None,
            forgets=True,
        )
    return _note(
        orphan,
        f"recorded in the lockfile but already {state} on the provider; "
        f"`reconciler state rm {orphan.address}` forgets it",
    )


def _removal(inputs: PlanInputs, orphan: Orphan) -> Removal:
    """``--prune``: archive the orphan, or delete it with ``--delete`` where one can."""
    obj = cast(JSON, orphan.obj)
    kind = orphan.kind
    common: dict[str, Any] = dict(  # noqa: C408 - keyword form reads as the action's fields
        address=orphan.address,
        kind=kind,
        remote_id=obj["id"],
        live_marker=live_marker(kind, obj),
        parent_id=obj.get("vault_id") if kind == "credential" else None,
    )
    if not KIND_INFO[kind].can_archive:
        return Delete(
            reason="removed from the manifests (--prune; it cannot be archived)", **common
        )
    if inputs.options.delete and kind in DELETABLE_KINDS:
        return Delete(reason="removed from the manifests (--prune)", **common)
    return Archive(reason="removed from the manifests (--prune)", **common)


def _note(what: Orphan | Archive | Delete, message: str) -> Note:
    """A note that prune leaves ``what`` alone, and why."""
    return Note(address=what.address, kind=what.kind, remote_id=what.remote_id, message=message)


def _gone_with_vault(inputs: PlanInputs, orphan: Orphan) -> str | None:
    """The id of the vault ``orphan`` (a credential no longer live) was recorded in, when
    that vault is gone or archived and the manifests declare it (apply makes it anew, and
    the new vault's record forgets the credentials of the old one), else None."""
    if orphan.kind != "credential" or orphan.obj is not None or orphan.entry is None:
        return None
    vault = orphan.address.split(".credential.", 1)[0]
    recorded = inputs.entry(vault)
    if vault not in inputs.desired or recorded is None:
        return None
    if recorded.id != orphan.entry.parent_id:
        return None
    live = inputs.live.get("vault", {}).get(recorded.id)
    return recorded.id if live is None or live.get("archived_at") else None


def _under(credential: str, vaults: frozenset[str]) -> bool:
    return any(credential.startswith(v + ".") for v in vaults)


def _protecting_vault(inputs: PlanInputs, credential: str) -> str | None:
    """The vault whose ``protect: true`` covers ``credential`` (in the manifests now, or
    when it was last applied), or None."""
    vault = credential.split(".credential.", 1)[0]
    res = inputs.desired.get(vault)
    entry = inputs.entry(vault)
    if (res is not None and res.protect) or (res is None and entry is not None and entry.protect):
        return vault
    return None


def _protected_message(address: str, vault: str | None, kind: str) -> str:
    """Why a resource that left the manifests stays, and how to let it go."""
    if vault is not None:
        return (
            f"not in the manifests, but {vault} is protected (protect: true), which covers its "
            f"credentials; left alone. To remove it, set protect: false on {vault}, apply, "
            "then run with --prune"
        )
    if kind == "credential":  # its document is its vault's: the item goes back there
        holder = address.split(".credential.", 1)[0]
        return (
            "not in the manifests but protected (protect: true when last applied); left "
            f"alone. To archive it, put the credential back in {holder}'s document "
            f"(spec.credentials) with protect: false on {holder}, apply, then remove it again "
            "and run with --prune"
        )
    return (
        "not in the manifests but protected (protect: true when last applied); left alone. "
        "To archive it, put its document back with protect: false, apply, then remove the "
        "document and run with --prune"
    )
