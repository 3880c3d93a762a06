"""Build the plan: desired manifests + observed live state + lockfile -> ``Plan``.

Pure: no I/O, nothing printed. Each desired address is matched to a live object (by the
lockfile's id, else by the ownership tags, so a lost lockfile never plans twins), both sides
are normalised and diffed, and the result is one action per address with its reason.
Resources that left the manifests are archived only with ``prune``; unowned live objects are
never touched.

Ownership is proven by the live object's tags, never assumed from the lockfile: an entry
whose object carries another project's tags, or none, becomes a ``Conflict`` (no action may
change or archive it). A second live object tagged for an address this project manages is a
``Twin``: always reported, archived only with ``prune``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine.desired import (
    DesiredResource,
    create_body,
    desired_digest,
    desired_resources,
    request_fields,
    update_body,
)
from reconciler.engine.diff import changed_fields, diff_objects
from reconciler.engine.model import (
    CHANGE_TYPES,
    Action,
    Archive,
    BlastRadius,
    Conflict,
    Create,
    Delete,
    FieldChange,
    Impact,
    NoOp,
    Note,
    PinMove,
    Plan,
    Replace,
    Target,
    Update,
)
from reconciler.engine.normalize import (
    KEYED_LISTS,
    UNORDERED_LISTS,
    drop_paths,
    fill_unset,
    normalize,
)
from reconciler.engine.ownership import (
    conflict,
    find_twins,
    owner_problem,
    twin_address,
    twin_archives,
)
from reconciler.engine.refresh import Observed
from reconciler.errors import PlanError
from reconciler.kinds import DELETABLE_KINDS, KIND_ORDER, Kind, owned_address

JSON = dict[str, Any]
UNKNOWN = "(known after apply)"
#: ``fingerprint(address, secret_path)`` -> salted fingerprint of the current secret value
Fingerprinter = Callable[[str, str], str]

AGENT_LABELS = {
    "model": "model",
    "system": "system prompt",
    "tools": "tools",
    "mcp_servers": "MCP servers",
    "skills": "skills",
    "metadata": "metadata",
    "name": "name",
    "description": "description",
    "execution_identity": "execution identity",
    "multiagent": "multiagent",
}
RISKY = frozenset({"tools", "mcp_servers", "skills"})


@dataclass(frozen=True)
class PlanOptions:
    project: str = "default"
    prune: bool = False
    #: with prune: delete instead of archive where the provider can delete
    delete: bool = False
    targets: tuple[str, ...] = ()


@dataclass
class _Context:
    options: PlanOptions
    observed: Observed
    lockfile: Any
    fingerprint: Fingerprinter | None
    desired: dict[str, DesiredResource]
    live_index: dict[str, dict[str, JSON]]
    owned: dict[tuple[str, str], list[JSON]]
    ids: dict[str, str | None]
    versions: dict[str, int | None]
    matched: dict[str, JSON]
    conflicts: dict[str, Conflict]
    #: with --target: the desired addresses planned for real (the rest is dropped later)
    wanted: set[str] | None = None
    #: changes the plan refuses on purpose (a protected replace), said in "Left alone"
    refused: list[Note] = field(default_factory=list)
    #: address -> paths that differ but ``ignore_changes`` hides (told as notes)
    hidden: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _entry(lockfile: Any, address: str) -> Any:
    return lockfile.resources.get(address) if lockfile is not None else None


def _live_marker(kind: str, obj: JSON) -> str | None:
    if kind == "agent":
        return str(obj.get("version"))
    return obj.get("updated_at")


def _match(ctx: _Context, res: DesiredResource) -> tuple[JSON | None, str, bool]:
    """(live object, reason when none, adopted-by-tags)."""
    kind = res.kind
    entry = _entry(ctx.lockfile, res.address)
    why = f"{res.address} is new in the manifests"
    if entry is not None and entry.kind == kind:
        obj = ctx.live_index[kind].get(entry.id)
        if obj is not None and not obj.get("archived_at"):
            return obj, "", False
        why = (
            f"the recorded {kind} {entry.id} was archived outside the reconciler"
            if obj is not None
            else f"the recorded {kind} {entry.id} no longer exists"
        )
    parent_id = ctx.ids.get(res.parent) if res.parent else None
    candidates = [
        o
        for o in ctx.owned.get((kind, res.address), [])
        if not o.get("archived_at") and (res.parent is None or o.get("vault_id") == parent_id)
    ]
    if candidates:
        return max(candidates, key=lambda o: str(o.get("created_at"))), "", True
    return None, why, False


def _resolve(value: Any, ctx: _Context) -> Any:
    """Placeholders -> what the live object would hold, as far as the plan can know."""
    if isinstance(value, dict):
        if "$ref" in value:
            return ctx.ids.get(value["$ref"]) or UNKNOWN
        if "$pin" in value:
            addr = value["$pin"]
            version = value.get("version") or ctx.versions.get(addr) or UNKNOWN
            return {"type": "agent", "id": ctx.ids.get(addr) or UNKNOWN, "version": version}
        if "$secret" in value:
            return None
        return {k: _resolve(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, ctx) for v in value]
    return value


def _immutable_change(kind: str, live: JSON, desired: JSON) -> str | None:
    if kind == "environment" and live["config"].get("type") != desired["config"].get("type"):
        return "config.type cannot change in place"
    if kind == "credential":
        la, da = live.get("auth") or {}, desired.get("auth") or {}
        for key in ("type", "mcp_server_url", "secret_name"):
            if la.get(key) != da.get(key):
                return f"auth.{key} cannot change in place"
        lr, dr = la.get("refresh") or {}, da.get("refresh") or {}
        if dr and not lr:
            return "auth.refresh cannot be added in place"
        if lr and dr:
            # an update may only rotate the refresh token and secret, and change the scope
            for key in ("client_id", "token_endpoint", "resource"):
                if lr.get(key) != dr.get(key):
                    return f"auth.refresh.{key} cannot change in place"
            lt = (lr.get("token_endpoint_auth") or {}).get("type")
            if lt != (dr.get("token_endpoint_auth") or {}).get("type"):
                return "auth.refresh.token_endpoint_auth.type cannot change in place"
    return None


def _fingerprints(ctx: _Context, res: DesiredResource) -> dict[str, str]:
    if ctx.fingerprint is None:
        return {}
    if ctx.wanted is not None and res.address not in ctx.wanted:
        return {}  # not targeted: its action is dropped, and its secrets are not needed
    return {path: ctx.fingerprint(res.address, path) for path, _ in res.secrets}


def _labels(fields: list[str]) -> tuple[str, ...]:
    labels = [AGENT_LABELS.get(f, f) for f in fields]
    if fields == ["metadata"]:
        return ("metadata only",)
    if RISKY & set(fields):
        labels.append("risky")
    return tuple(labels)


def _check_pin(ctx: _Context, res: DesiredResource) -> None:
    """A deployment may pin only an agent version that exists once this plan is applied."""
    agent, version = res.pin if res.pin is not None else ("", None)
    latest = ctx.versions.get(agent)
    if version is None:
        return
    if latest is None or version <= latest:
        return
    live = ctx.matched.get(agent)
    now = live.get("version") if live is not None else None
    if live is None:
        where = f"{agent} does not exist yet, and this apply creates its version 1"
    elif now != latest:
        where = f"its latest version is {now}, {latest} after this apply"
    else:
        where = f"its latest version is {latest}"
    raise PlanError(
        f"{res.address} pins {agent} version {version}, which does not exist: {where}. "
        f"Pin an existing version, or follow the latest (agent: {agent.split('.', 1)[1]})"
    )


def _recorded_object(ctx: _Context, address: str, kind: str) -> JSON | None:
    """The live, non-archived object the lockfile records for ``address``, if any."""
    entry = _entry(ctx.lockfile, address)
    if entry is None or entry.kind != kind:
        return None
    obj = ctx.live_index.get(kind, {}).get(entry.id)
    return obj if obj is not None and not obj.get("archived_at") else None


def _check_owner(ctx: _Context, address: str, kind: Kind) -> bool:
    """Record a ``Conflict`` when the lockfile's object for ``address`` is not ours.

    Returns:
        True when there is a conflict: nothing may change or archive that object.
    """
    obj = _recorded_object(ctx, address, kind)
    if obj is None:
        return False
    owner = owner_problem(kind, obj, ctx.options.project, address, ctx.live_index["vault"])
    if owner is None:
        return False
    ctx.conflicts[address] = conflict(kind, address, obj, owner)
    return True


def _plan_resource(ctx: _Context, res: DesiredResource) -> Action | None:
    kind, address = res.kind, res.address
    _check_pin(ctx, res)
    if _check_owner(ctx, address, kind):
        ctx.ids[address] = None
        ctx.versions[address] = None
        return None
    obj, why, adopted = _match(ctx, res)
    fps = _fingerprints(ctx, res)
    pins: dict[str, int | None] = {}
    if res.pin is not None:
        pins = {res.pin[0]: res.pin[1]}
    target = Target(
        spec_digest=desired_digest(res),
        protect=res.protect,
        remote_name=res.remote_name,
        secret_fingerprints=fps,
        pins=pins,
    )
    deps = tuple(r for r in res.refs if r in ctx.desired)
    if obj is None:
        ctx.ids[address] = None
        ctx.versions[address] = 1 if kind == "agent" else None
        return Create(
            address=address,
            kind=kind,
            reason=why,
            body=create_body(res, ctx.options.project),
            target=target,
            depends_on=deps,
            parent=res.parent,
        )

    ctx.matched[address] = obj
    live = normalize(kind, obj)
    want = normalize(kind, _resolve(request_fields(res, ctx.options.project), ctx))
    want = fill_unset(kind, want, live)
    changes = list(
        diff_objects(
            drop_paths(live, res.ignore_changes),
            drop_paths(want, res.ignore_changes),
            UNORDERED_LISTS.get(kind, ()),
            KEYED_LISTS.get(kind),
        )
    )
    if res.ignore_changes:
        shown = {c.path for c in changes}
        hidden = sorted({c.path for c in diff_objects(live, want)} - shown)
        if hidden:
            ctx.hidden[address] = tuple(hidden)
    entry = _entry(ctx.lockfile, address)
    known = dict(entry.secret_fingerprints) if entry is not None and entry.id == obj["id"] else {}
    secret_changed = [p for p, fp in fps.items() if known.get(p) != fp]
    changes.extend(FieldChange(op="change", path=p, sensitive=True) for p in sorted(secret_changed))
    marker = _live_marker(kind, obj)
    ctx.ids[address] = obj["id"]
    ctx.versions[address] = obj.get("version") if kind == "agent" else None
    parent_id = obj.get("vault_id") if kind == "credential" else None

    immutable = _immutable_change(kind, live, want)
    protected = _protected_replace(ctx, res) if immutable else None
    if immutable and protected:
        # protect means never archived or deleted, and a replace does one of those
        how = "deleted" if kind == "credential" else "archived"
        ctx.refused.append(
            Note(
                address=address,
                kind=kind,
                remote_id=obj["id"],
                message=f"needs a replace ({immutable}, so the old one would be {how}), "
                f"but {protected}; left as it is. To replace it, set protect: false on "
                f"{res.parent or address}, apply, then set it back",
            )
        )
        return NoOp(
            address=address,
            kind=kind,
            reason=f"a replace is needed but refused: {protected}",
            remote_id=obj["id"],
            live_marker=marker,
            depends_on=deps,
            parent=res.parent,
            parent_id=parent_id,
        )
    if immutable:
        ctx.ids[address] = None
        return Replace(
            address=address,
            kind=kind,
            reason=f"{immutable}: the old one is archived, then a new one is created",
            remote_id=obj["id"],
            changes=tuple(changes),
            body=create_body(res, ctx.options.project),
            target=target,
            live_marker=marker,
            depends_on=deps,
            parent=res.parent,
        )
    if changes:
        fields = changed_fields(tuple(changes))
        body = update_body(res, ctx.options.project, fields, obj)
        reason = _update_reason(ctx, res, fields)
        if adopted:
            reason += " (found by its ownership tags; the lockfile had no entry)"
        from_v = to_v = None
        labels: tuple[str, ...] = ()
        if kind == "agent":
            from_v = int(obj.get("version") or 1)
            to_v = from_v + 1
            body["version"] = from_v
            ctx.versions[address] = to_v
            labels = _labels(fields)
        return Update(
            address=address,
            kind=kind,
            reason=reason,
            remote_id=obj["id"],
            changes=tuple(changes),
            body=body,
            target=target,
            from_version=from_v,
            to_version=to_v,
            labels=labels,
            live_marker=marker,
            depends_on=deps,
            parent=res.parent,
            parent_id=parent_id,
        )
    needs_record = (
        entry is None
        or entry.id != obj["id"]
        or entry.spec_digest != target.spec_digest
        or entry.protect != res.protect
        or (kind == "agent" and entry.version != obj.get("version"))
        or (kind == "deployment" and list(entry.pins.values()) != [_live_pin(obj)])
        or address in (getattr(ctx.lockfile, "pending", None) or {})
    )
    return NoOp(
        address=address,
        kind=kind,
        reason=(
            "adopted: found by its ownership tags (the lockfile had no entry)"
            if adopted
            else "up to date"
        ),
        remote_id=obj["id"],
        target=target if needs_record else None,
        version=obj.get("version") if kind == "agent" else None,
        live_marker=marker,
        depends_on=deps,
        parent=res.parent,
        parent_id=parent_id,
    )


def _update_reason(ctx: _Context, res: DesiredResource, fields: list[str]) -> str:
    """Why an update: a deployment whose only change is its agent pin says which pin."""
    if res.kind == "deployment" and fields == ["agent"] and res.pin is not None:
        agent, pinned = res.pin
        if pinned is not None:
            return f"the manifest pins {agent}@{pinned}"
        version = ctx.versions.get(agent)
        newest = f"version {version}" if version is not None else "a new version"
        return f"it follows the latest version of {agent}, which will be {newest}"
    return "the live object differs from the manifest"


def _live_pin(obj: JSON) -> int | None:
    """The agent version a live deployment runs."""
    version = (obj.get("agent") or {}).get("version")
    return int(version) if version is not None else None


def _orphans(ctx: _Context) -> list[tuple[str, str, JSON | None, Any]]:
    """(address, kind, live object or None, lockfile entry or None) of resources that
    left the manifests."""
    found: dict[str, tuple[str, str, JSON | None, Any]] = {}
    if ctx.lockfile is not None:
        for address, entry in ctx.lockfile.resources.items():
            if address in ctx.desired:
                continue
            obj = ctx.live_index.get(entry.kind, {}).get(entry.id)
            found[address] = (address, entry.kind, obj, entry)
    for (kind, address), objs in ctx.owned.items():
        if address in ctx.desired or address in found:
            continue
        live = [o for o in objs if not o.get("archived_at")]
        if live:
            found[address] = (address, kind, live[0], None)
    return [found[a] for a in sorted(found)]


def _foreign_entry(ctx: _Context, address: str, kind: str, entry: Any) -> bool:
    """The lockfile's object for ``address`` is live and not ours (no side effects)."""
    if entry is None:
        return False
    obj = _recorded_object(ctx, address, kind)
    project = ctx.options.project
    return (
        obj is not None
        and owner_problem(kind, obj, project, address, ctx.live_index["vault"]) is not None
    )


def _prune(ctx: _Context) -> tuple[list[Action], list[Note]]:
    actions: list[Action] = []
    notes: list[Note] = []
    orphans = _orphans(ctx)
    orphan_vaults = {
        a
        for a, k, o, e in orphans
        if k == "vault" and o and not o.get("archived_at") and not _foreign_entry(ctx, a, k, e)
    }
    removed_vaults = {a for a, k, _, e in orphans if k == "vault" and not (e and e.protect)}
    for address, kind_s, obj, entry in orphans:
        kind: Kind = kind_s  # type: ignore[assignment]
        rid = obj["id"] if obj else (entry.id if entry else None)
        if obj is None or obj.get("archived_at"):
            state = "archived" if obj else "gone"
            if ctx.options.prune and entry is not None and not entry.protect and rid:
                if kind == "credential" and any(
                    address.startswith(v + ".") for v in removed_vaults
                ):
                    continue  # forgotten with its vault (see record_outcome)
                # e.g. an apply --prune killed after the provider archived, before the
                # lockfile write: archiving again is a no-op that drops the stale entry
                actions.append(
                    Archive(
                        address=address,
                        kind=kind,
                        remote_id=rid,
                        reason=f"removed from the manifests and already {state} on the "
                        "provider; forgets the lockfile entry (--prune)",
                        live_marker=_live_marker(kind, obj) if obj else None,
                        parent_id=entry.parent_id if kind == "credential" else None,
                    )
                )
                continue
            notes.append(
                Note(
                    address=address,
                    kind=kind,
                    remote_id=rid,
                    message=f"recorded in the lockfile but already {state} on the provider; "
                    f"`reconciler state rm {address}` forgets it",
                )
            )
            continue
        if entry is not None and _check_owner(ctx, address, kind):
            continue  # not ours: a Conflict says whose it is, nothing archives it
        if kind == "credential" and any(address.startswith(v + ".") for v in orphan_vaults):
            continue  # archiving the vault takes its credentials along
        vault = _protecting_vault(ctx, address) if kind == "credential" else None
        if vault is not None or (entry is not None and entry.protect):
            notes.append(
                Note(
                    address=address,
                    kind=kind,
                    remote_id=rid,
                    message=_protected_orphan_message(address, vault),
                )
            )
            continue
        if not ctx.options.prune:
            notes.append(
                Note(
                    address=address,
                    kind=kind,
                    remote_id=rid,
                    message="not in the manifests; left alone. Run with --prune to archive it",
                )
            )
            continue
        parent_id = obj.get("vault_id") if kind == "credential" else None
        common: dict[str, Any] = dict(  # noqa: C408 - keyword form reads as the action's fields
            address=address,
            kind=kind,
            remote_id=obj["id"],
            live_marker=_live_marker(kind, obj),
            parent_id=parent_id,
        )
        if ctx.options.delete and kind in DELETABLE_KINDS:
            actions.append(Delete(reason="removed from the manifests (--prune)", **common))
        else:
            actions.append(Archive(reason="removed from the manifests (--prune)", **common))
    return actions, notes


def _protecting_vault(ctx: _Context, credential: str) -> str | None:
    """The vault whose ``protect: true`` covers ``credential`` (in the manifests now, or
    when it was last applied), or None."""
    vault = credential.split(".credential.", 1)[0]
    res = ctx.desired.get(vault)
    entry = _entry(ctx.lockfile, vault)
    if (res is not None and res.protect) or (res is None and entry is not None and entry.protect):
        return vault
    return None


def _protected_orphan_message(address: str, vault: str | None) -> str:
    """Why a resource that left the manifests stays, and how to let it go."""
    if vault is not None:
        return (
            f"not in the manifests, but {vault} is protected (protect: true), which covers its "
            f"credentials; left alone. To remove it, set protect: false on {vault}, apply, "
            "then run with --prune"
        )
    return (
        "not in the manifests but protected (protect: true when last applied); left alone. "
        "To archive it, put its document back with protect: false, apply, then remove the "
        "document and run with --prune"
    )


def _protected_replace(ctx: _Context, res: DesiredResource) -> str | None:
    """What protects ``res`` from being archived or deleted by a replace, or None."""
    if res.kind == "credential" and res.parent is not None:
        parent = ctx.desired.get(res.parent)
        if parent is not None and parent.protect:
            return f"{res.parent} is protected (protect: true), which covers its credentials"
    if res.protect:
        return "it is protected (protect: true)"
    return None


def _order_removals(actions: list[Action]) -> list[Action]:
    """Archives and deletes wait for the changes that stop referencing what they remove."""
    referrers = tuple(
        a.address
        for a in actions
        if a.kind == "deployment" and a.type in ("create", "update", "replace")
    )
    out: list[Action] = []
    for a in actions:
        if a.type in ("archive", "delete") and a.kind != "deployment":
            deps = tuple(sorted(set(referrers)))
            if a.kind == "agent":
                deps += tuple(
                    x.address for x in actions if x.type == "archive" and x.kind == "deployment"
                )
            a = a.model_copy(update={"depends_on": deps})
        out.append(a)
    return out


def _closure(
    targets: Iterable[str], desired: dict[str, DesiredResource], extra: set[str]
) -> set[str]:
    wanted: set[str] = set()
    stack = list(targets)
    while stack:
        addr = stack.pop()
        if addr in wanted:
            continue
        wanted.add(addr)
        res = desired.get(addr)
        if res is not None:
            stack.extend(res.refs)
        # a vault target brings its credentials along
        stack.extend(a for a in desired if a.startswith(addr + ".credential."))
        stack.extend(a for a in extra if a.startswith(addr + ".credential."))
    return wanted


def targeted_addresses(documents: Iterable[Any], targets: Iterable[str]) -> frozenset[str]:
    """The desired addresses a ``--target`` plan of ``targets`` plans: each target and what
    it depends on (a vault's credentials with it). Only their secrets are read."""
    desired = {r.address: r for r in desired_resources(documents)}
    return frozenset(_closure(targets, desired, set()))


def _check_targets(targets: tuple[str, ...], known: set[str]) -> None:
    for t in targets:
        if t not in known:
            hint = difflib.get_close_matches(t, sorted(known), n=1)
            did = f"; did you mean {hint[0]}?" if hint else ""
            raise PlanError(f"--target {t}: no such address in the manifests or lockfile{did}")


def build_plan(
    documents: Iterable[Any],
    observed: Observed,
    lockfile: Any,
    options: PlanOptions | None = None,
    fingerprint: Fingerprinter | None = None,
) -> Plan:
    """What apply would do to converge the provider to ``documents``.

    Args:
        documents: manifest documents (``ManifestSet.documents``).
        observed: live state from ``refresh``.
        lockfile: the current ``Lockfile`` (ids, digests, secret fingerprints), or None.
        options: project, prune, delete, targets.
        fingerprint: salted fingerprint of a secret's current value, to plan rotations.

    Returns:
        A frozen ``Plan``; actions sorted by address.

    Raises:
        PlanError: a ``--target`` names no known address, or a deployment pins an agent
            version that does not exist (nor would after this plan).
    """
    options = options or PlanOptions()
    untargeted: tuple[str, ...] = ()
    desired = {r.address: r for r in desired_resources(documents)}
    owned: dict[tuple[str, str], list[JSON]] = {}
    for kind in KIND_ORDER:
        for o in observed.all(kind):
            addr = owned_address(o, options.project)
            if addr:
                owned.setdefault((kind, addr), []).append(o)
    ctx = _Context(
        options=options,
        observed=observed,
        lockfile=lockfile,
        fingerprint=fingerprint,
        desired=desired,
        live_index={k: observed.index(k) for k in KIND_ORDER},
        owned=owned,
        ids={},
        versions={},
        matched={},
        conflicts={},
        wanted=_closure(options.targets, desired, set()) if options.targets else None,
    )
    actions: list[Action] = []
    for kind in KIND_ORDER:
        for res in desired.values():
            if res.kind == kind:
                action = _plan_resource(ctx, res)
                if action is not None:
                    actions.append(action)
    removals, notes = _prune(ctx)
    twins = find_twins(_kept(ctx, removals, notes), ctx.owned, ctx.lockfile)
    if options.prune:
        removals += twin_archives(twins)
    notes += ctx.refused
    actions = _order_removals(actions + removals)
    conflicts = list(ctx.conflicts.values())
    notes += _hidden_notes(ctx, actions)

    if options.targets:
        known = (
            set(desired)
            | {a.address for a in removals}
            | {n.address for n in notes}
            | set(ctx.conflicts)
        )
        _check_targets(options.targets, known)
        wanted = _closure(options.targets, desired, known)
        twins = [t for t in twins if t.address in wanted]
        wanted |= {twin_address(t.address, t.remote_id) for t in twins}
        untargeted = _untargeted(ctx, actions, wanted)
        actions = [a for a in actions if a.address in wanted]
        notes = [n for n in notes if n.address in wanted]
        conflicts = [c for c in conflicts if c.address in wanted]
        kept = {a.address for a in actions}
        actions = [
            a.model_copy(update={"depends_on": tuple(d for d in a.depends_on if d in kept)})
            for a in actions
        ]

    kept = {a.address for a in actions}
    pin_moves = _pin_moves(ctx, kept)
    blast = _blast_radius(ctx, actions)
    return Plan(
        project=options.project,
        lineage=getattr(lockfile, "lineage", None),
        serial=int(getattr(lockfile, "serial", 0) or 0),
        prune=options.prune,
        targets=tuple(options.targets),
        actions=tuple(sorted(actions, key=lambda a: a.address)),
        pin_moves=pin_moves,
        blast_radius=blast,
        notes=tuple(sorted(notes, key=lambda n: n.address)),
        twins=tuple(sorted(twins, key=lambda t: (t.address, t.remote_id))),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.address)),
        untargeted=untargeted,
    )


def _kept(ctx: _Context, removals: list[Action], notes: list[Note]) -> dict[str, JSON]:
    """address -> the live object the plan manages for it (matched, or an orphan it
    archives or leaves alone); a twin is any other live object tagged for that address."""
    kept = dict(ctx.matched)
    left: list[tuple[str, str, str | None]] = [(n.address, n.kind, n.remote_id) for n in notes]
    left += [(a.address, a.kind, getattr(a, "remote_id", None)) for a in removals]
    for address, kind, remote_id in left:
        if address in kept or address in ctx.conflicts or remote_id is None:
            continue
        obj = ctx.live_index.get(kind, {}).get(remote_id)
        if obj is not None and not obj.get("archived_at"):
            kept[address] = obj
    return kept


def _hidden_notes(ctx: _Context, actions: list[Action]) -> list[Note]:
    """A note per address whose live object differs in paths ``ignore_changes`` hides, so a
    plan never says "matches the manifests" about a difference it chose not to show."""
    ids = {a.address: getattr(a, "remote_id", None) for a in actions}
    return [
        Note(
            address=address,
            kind=ctx.desired[address].kind,
            remote_id=ids.get(address),
            message=f"differs from the manifest in {', '.join(paths)}, which ignore_changes "
            "leaves as is",
        )
        for address, paths in sorted(ctx.hidden.items())
    ]


def _untargeted(ctx: _Context, actions: list[Action], wanted: set[str]) -> tuple[str, ...]:
    """Addresses outside ``--target`` with changes of their own (an action or a pin move): a
    targeted plan says nothing about them, and must not sound as if all were in order."""
    found = {a.address for a in actions if a.address not in wanted and a.type in CHANGE_TYPES}
    found |= {m.deployment for m in _pin_moves(ctx, set(ctx.desired) - wanted)}
    return tuple(sorted(found))


def _pin_moves(ctx: _Context, kept: set[str]) -> tuple[PinMove, ...]:
    moves: list[PinMove] = []
    for res in ctx.desired.values():
        if res.kind != "deployment" or res.address not in kept or res.pin is None:
            continue
        obj = ctx.matched.get(res.address)
        if obj is None:
            continue
        agent_addr, pinned = res.pin
        old = (obj.get("agent") or {}).get("version")
        new = pinned if pinned is not None else ctx.versions.get(agent_addr)
        same_agent = (obj.get("agent") or {}).get("id") == ctx.ids.get(agent_addr)
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


def _blast_radius(ctx: _Context, actions: list[Action]) -> tuple[BlastRadius, ...]:
    out: list[BlastRadius] = []
    for a in actions:
        if a.type not in ("update", "replace", "archive", "delete"):
            continue
        if a.kind not in ("agent", "environment", "vault"):
            continue
        impacts: list[Impact] = []
        for res in ctx.desired.values():
            if res.kind != "deployment" or a.address not in res.refs:
                continue
            if a.kind == "agent" and res.pin is not None:
                pinned = res.pin[1]
                impacts.append(
                    Impact(
                        deployment=res.address,
                        follows_latest=pinned is None,
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


__all__ = ["UNKNOWN", "PlanOptions", "build_plan", "targeted_addresses"]
