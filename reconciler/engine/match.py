"""Match one desired resource to the live object its address owns. Pure: no I/O.

The object the lockfile records for the address, else the newest one this project's
ownership tags claim for it (so a lost lockfile never plans twins), else the object of the
address a ``moved_from`` names; none means a create, and ``Match.missing`` says why (an
archived object carrying the tags, an environment name another owner holds). Beside it, the
two reasons not to match at all (a ``Conflict``): the object is recorded under another
address, or an ``import`` began adopting an object for the address and did not finish. And
the note of a ``moved_from`` that names nothing in the state.

``resource.plan_resource`` asks these first, then compares and decides; nothing here
compares specs or builds an action.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.engine.desired import DesiredResource
from reconciler.engine.inputs import PlanInputs
from reconciler.engine.model import NOTHING_TO_MOVE, Conflict, Note
from reconciler.engine.ownership import (
    describe_owner,
    key_taken_remedy,
    name_taken_remedy,
    not_ours,
)
from reconciler.jsontypes import JSON
from reconciler.kinds import noun, owned_address

__all__ = [
    "Match",
    "match_live",
    "nothing_to_move",
    "recorded_elsewhere",
    "unfinished_adoption",
]


@dataclass(frozen=True)
class Match:
    """The live object an address owns, or why there is none."""

    live: JSON | None
    #: a create's reason, when there is no live object
    missing: str = ""
    #: found by its ownership tags (the lockfile had no entry)
    adopted: bool = False
    #: the object is the one of this old address (``moved_from``, or a tag ``state mv`` left)
    moved_from: str | None = None
    #: the recorded object is tagged for this other address, which nothing claims, and
    #: neither the manifests nor ``state mv`` moved it: its tag was edited behind git's back
    retagged: str | None = None


def nothing_to_move(inputs: PlanInputs, res: DesiredResource) -> Note | None:
    """The note of a ``moved_from`` whose old address the state does not hold (the move was
    applied already, or there never was anything there): nothing to do, and no error."""
    old = res.moved_from
    if old is None or inputs.entry(old) is not None:
        return None
    if res.parent is not None:
        return None  # said once, by the vault
    return Note(
        address=res.address,
        kind=res.kind,
        message=f"{NOTHING_TO_MOVE}{old}, which is not in the state (already moved, or it "
        "never existed); nothing to move. The moved_from line can go",
    )


def match_live(inputs: PlanInputs, res: DesiredResource, parent_id: str | None) -> Match:
    """The lockfile's object for the address, else the newest one tagged for it (in the
    vault ``parent_id``, for a credential), else the object of the address it moves from."""
    kind = res.kind
    entry = inputs.entry(res.address)
    why = f"{res.address} is new in the manifests"
    if entry is not None and entry.kind == kind:
        obj = inputs.live[kind].get(entry.id)
        if obj is not None and not obj.get("archived_at"):
            moved_from = _moved_here(inputs, res, obj)
            if moved_from is not None and moved_from not in (res.moved_from, entry.moved_from):
                return Match(obj, retagged=moved_from)
            return Match(obj, moved_from=moved_from)
        why = (
            f"the recorded {noun(kind)} {entry.id} was archived outside the reconciler"
            if obj is not None
            else f"the recorded {noun(kind)} {entry.id} no longer exists"
        )
    candidates = _tagged(inputs, res, res.address, parent_id)
    if candidates:
        # the newest: e.g. a move whose retag was sent but whose lockfile write was lost
        obj = max(candidates, key=lambda o: str(o.get("created_at")))
        return Match(obj, adopted=True, moved_from=_moved_here(inputs, res, obj))
    if entry is None:
        why = _archived_tagged(inputs, res, parent_id) or why
    old = res.moved_from
    if old is not None:
        moved = _recorded_for_move(inputs, res, old)
        if moved is not None:
            return Match(moved, moved_from=old)
        candidates = _tagged(inputs, res, old, parent_id)
        if candidates:  # the lockfile was lost: the old address's tags still find it
            obj = max(candidates, key=lambda o: str(o.get("created_at")))
            return Match(obj, adopted=True, moved_from=old)
    return Match(None, missing=why + _name_taken(inputs, res) + _key_taken(inputs, res, parent_id))


def _archived_tagged(inputs: PlanInputs, res: DesiredResource, parent_id: str | None) -> str:
    """Why an address the lockfile has no entry for is created, when only archived objects
    carry its tags (a lost lockfile, an entry removed by hand or by --prune): not that it is
    new in the manifests, which it may have been in for months. "" when none does."""
    archived = [
        o
        for o in inputs.owned.get((res.kind, res.address), [])
        if o.get("archived_at") and (res.parent is None or o.get("vault_id") == parent_id)
    ]
    if not archived:
        return ""
    last = max(archived, key=lambda o: str(o.get("archived_at")))
    return (
        f"the lockfile has no entry, and the {noun(res.kind)} tagged for it ({last['id']}) is "
        "archived"
    )


def _name_taken(inputs: PlanInputs, res: DesiredResource) -> str:
    """For an environment to create, the live one (not ours) that holds its name already, as
    a sentence: the provider refuses the create (environment names are unique in the
    workspace), and the plan says so instead of promising it."""
    if res.kind != "environment":
        return ""
    for obj in inputs.live.get("environment", {}).values():
        if not obj.get("archived_at") and obj.get("name") == res.remote_name:
            return (
                f"; but an environment named {res.remote_name!r} already exists "
                f"({obj.get('id')}) and belongs to {describe_owner(obj)}, so the provider will "
                f"refuse this create. {name_taken_remedy(res.address, obj, inputs.options.project)}"
            )
    return ""


def _key_taken(inputs: PlanInputs, res: DesiredResource, parent_id: str | None) -> str:
    """For a credential to create, the live one of its vault that holds its key (MCP
    server URL or secret name) already, as a sentence: the provider refuses the create (one
    active credential per key in a vault), unless ``--prune`` archives that one first."""
    if res.kind != "credential" or parent_id is None:
        return ""
    auth = res.spec.get("auth") or {}
    key = auth.get("mcp_server_url") or auth.get("secret_name")
    project = inputs.options.project
    for obj in inputs.live.get("credential", {}).values():
        live_auth = obj.get("auth") or {}
        if obj.get("archived_at") or obj.get("vault_id") != parent_id:
            continue
        if not key or (live_auth.get("mcp_server_url") or live_auth.get("secret_name")) != key:
            continue
        tagged = owned_address(obj, project)
        if inputs.options.prune and tagged is not None and tagged not in inputs.desired:
            return ""  # pruned, before this create
        return (
            f"; but a credential for {key} already exists in its vault ({obj.get('id')}) and "
            f"belongs to {describe_owner(obj)}, so the provider will refuse this create. "
            f"{key_taken_remedy(res.address, obj, project)}"
        )
    return ""


def _tagged(
    inputs: PlanInputs, res: DesiredResource, address: str, parent_id: str | None
) -> list[JSON]:
    """Live objects this project's tags claim for ``address`` (in the parent's vault)."""
    return [
        o
        for o in inputs.owned.get((res.kind, address), [])
        if not o.get("archived_at") and (res.parent is None or o.get("vault_id") == parent_id)
    ]


def _recorded_for_move(inputs: PlanInputs, res: DesiredResource, old: str) -> JSON | None:
    """The live object the lockfile records for ``old``, when it is this project's (tagged
    for ``old``, or already for ``res.address``); else None, and ``prune`` reports it."""
    obj = inputs.recorded_object(old, res.kind)
    if obj is None:
        return None
    project = inputs.options.project
    if not_ours(res.kind, obj, project, old) is None:
        return obj
    return obj if not_ours(res.kind, obj, project, res.address) is None else None


def _moved_here(inputs: PlanInputs, res: DesiredResource, obj: JSON) -> str | None:
    """The old address ``obj`` comes from, when the plan finishes a move: ``moved_from``'s
    entry records this object (the retag was sent, its lockfile write was lost), or the
    object is tagged for an address nobody claims any more (``state mv`` by hand; or a tag
    edited behind git's back, which ``match_live`` tells apart by the entry's
    ``moved_from``)."""
    old = res.moved_from
    entry = inputs.entry(old) if old is not None else None
    if old is not None and entry is not None and entry.id == obj["id"]:
        return old
    tagged = owned_address(obj, inputs.options.project)
    if tagged is not None and tagged != res.address and inputs.unclaimed(tagged):
        return tagged
    return None


def recorded_elsewhere(
    inputs: PlanInputs, res: DesiredResource, parent_id: str | None
) -> Conflict | None:
    """A ``Conflict`` instead of finding the object of an address the lockfile has no entry
    for by its tags, when the lockfile records that very object under another address (not
    the one it ``moved_from``): e.g. an entry ``state mv``'d to an address no document
    declares. Recording it here too would give one object two entries; nothing else fits."""
    if inputs.entry(res.address) is not None:
        return None
    candidates = _tagged(inputs, res, res.address, parent_id)
    if not candidates:
        return None
    obj = max(candidates, key=lambda o: str(o.get("created_at")))
    rid = str(obj["id"])
    other = next(
        (a for a, e in sorted(inputs.entries.items()) if e.id == rid and a != res.address),
        None,
    )
    if other is None or other == res.moved_from:
        return None
    return Conflict(
        address=res.address,
        kind=res.kind,
        remote_id=rid,
        owner=f"this project, recorded as {other}",
        message=(
            f"{res.kind} {rid}, tagged for {res.address}, is recorded as {other}: taking it "
            f"here too would record one object twice. If the entry was moved on purpose "
            f"(`reconciler state mv {res.address} {other}`), rename the document to {other} "
            f"as well; otherwise `reconciler state mv {other} {res.address}` moves it back"
        ),
    )


def unfinished_adoption(inputs: PlanInputs, res: DesiredResource) -> Conflict | None:
    """A ``Conflict`` instead of a create when an ``import`` was adopting a live object for
    the address and never tagged it (killed once it wrote the manifests): a create would be a
    twin of that object. ``reconciler import ADDRESS ID`` finishes the adoption."""
    intent = inputs.lockfile.pending.get(res.address) if inputs.lockfile is not None else None
    if intent is None or intent.operation != "adopt" or intent.remote_id is None:
        return None
    obj = inputs.live.get(res.kind, {}).get(intent.remote_id)
    if obj is None or obj.get("archived_at"):
        return None  # gone since: nothing to twin, the create goes ahead
    rid = intent.remote_id
    return Conflict(
        address=res.address,
        kind=res.kind,
        remote_id=rid,
        owner="nobody (an import began adopting it and did not finish)",
        message=(
            f"an import began adopting {res.kind} {rid} for {res.address} and did not finish "
            f"(its manifest is written, its ownership tags are not): nothing is created for "
            f"{res.address}, which would be a twin of it. `reconciler import {res.address} "
            f"{rid}` finishes the adoption"
        ),
    )
