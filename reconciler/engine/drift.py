"""Detect drift: what changed on the provider behind git's back. Pure: no I/O, nothing printed.

Input is what a plan gets (manifest documents, the observed live state, the lockfile) plus,
optionally, the version history of the agents that changed. Output is a ``DriftReport``:

- ``deleted`` / ``archived``: a lockfile entry whose live object is gone or archived;
- ``changed``: the live object differs from the manifest although the manifest did not change
  since the last apply (the planner's own comparison, so server defaults never show), or an
  agent carries a version the last apply did not leave; agents are annotated with the version
  that introduced the change and when, from their version history;
- ``pin``: a deployment runs another agent version (or agent) than the lockfile pinned;
- ``paused``: a deployment paused by hand or by the provider after a scheduled run failed
  (no manifest field says so, and apply does not unpause: ``engine.paused``);
- ``unmanaged``: live objects no manifest of this project owns (untagged and not in the
  lockfile, or tagged by this project for an address neither the manifests nor the lockfile
  know). Objects tagged by another project are theirs;
- ``twin``: a live object tagged by this project for an address another live object holds
  (the one the lockfile records, else the one plan keeps: the newest).

Drift is found in two passes so the refresh stays one list per kind: ``build_drift`` without
``versions`` finds the changes, ``agents_to_annotate`` names the agents whose history to fetch,
and ``build_drift`` with ``versions`` says which version introduced each change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

from reconciler.engine.desired import (
    DesiredResource,
    desired_resources,
    digest_matches,
)
from reconciler.engine.diff import diff_objects
from reconciler.engine.driftskills import (
    agents_on_version,
    followed_skill_paths,
    pins_off_record,
    unrecorded_skill_paths,
)
from reconciler.engine.inputs import rewritten_outside
from reconciler.engine.model import (
    Create,
    DriftItem,
    DriftReport,
    DriftType,
    FieldChange,
    NoOp,
    Plan,
    Replace,
    Update,
)
from reconciler.engine.normalize import (
    KEYED_LISTS,
    OUTPUT_ONLY,
    REORDERABLE_LISTS,
    UNORDERED_LISTS,
    align_items,
    drop_paths,
    normalize,
)
from reconciler.engine.ownership import owner_problem
from reconciler.engine.paused import paused_message
from reconciler.engine.pinlog import settle_live_pin_moves
from reconciler.engine.planner import UNKNOWN, PlanOptions, build_plan
from reconciler.engine.refresh import Observed
from reconciler.engine.resource import REFUSED_REPLACE
from reconciler.engine.rollout import held_out_by, held_out_hint
from reconciler.engine.unmanaged import find_unmanaged, unmanaged_item
from reconciler.jsontypes import JSON
from reconciler.kinds import owned_address, owner_of, remote_name_of, tags
from reconciler.manifest import Document
from reconciler.manifest.skilldir import SkillSource
from reconciler.state import LockEntry, Lockfile

#: the order of drift types at one address: the order ``DriftType`` declares them in
DRIFT_ORDER: tuple[DriftType, ...] = get_args(DriftType)


def _identity(item: DriftItem) -> str:
    if item.address is not None:
        return item.address
    return f"{item.kind} {item.remote_name or ''} {item.remote_id or ''}"


def _sort_key(item: DriftItem) -> tuple[str, int, str]:
    return _identity(item), DRIFT_ORDER.index(item.type), item.remote_id or ""


def _flip(change: FieldChange) -> FieldChange:
    """A planner change (live -> desired) as a drift change (expected -> live)."""
    op = {"add": "remove", "remove": "add"}.get(change.op, change.op)
    return change.model_copy(update={"op": op, "old": change.new, "new": change.old})


def _holds(value: Any, strings: set[str]) -> bool:
    """Whether one of ``strings`` is anywhere in ``value`` (``{UNKNOWN}``: apply makes it)."""
    if isinstance(value, dict):
        return any(_holds(v, strings) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, strings) for v in value)
    return isinstance(value, str) and value in strings


def _is_pin_path(path: str) -> bool:
    return path == "agent" or path.startswith(("agent.", "agent["))


def manifest_differences(
    documents: Iterable[Document],
    observed: Observed,
    lockfile: Lockfile | None,
    project: str,
    skills: Mapping[str, SkillSource] | None = None,
) -> dict[str, tuple[FieldChange, ...]]:
    """address -> how its live object differs from its manifest (expected -> live), by the
    planner's own comparison. Secrets and a deployment's agent pin are left out (secrets
    cannot be read back; pins are compared with the lockfile, see ``pin`` drift)."""
    return _differences(_manifest_plan(documents, observed, lockfile, project, skills), lockfile)


def _manifest_plan(
    documents: Iterable[Document],
    observed: Observed,
    lockfile: Lockfile | None,
    project: str,
    skills: Mapping[str, SkillSource] | None,
) -> Plan:
    # a pin of a version the agent no longer has (archived, created again) is the agent's
    # drift, not an error of the manifests
    options = PlanOptions(project=project, check_gone_pins=False)
    return build_plan(documents, observed, lockfile, options, skills=skills)


def _refused_replaces(plan: Plan) -> dict[str, str]:
    """address -> the plan's note on the replace ``protect`` refuses there: the manifest
    asks for what only a replace gives, so the live object stays different after apply."""
    refused = {
        a.address
        for a in plan.actions
        if isinstance(a, NoOp) and a.reason.startswith(REFUSED_REPLACE)
    }
    return {n.address: n.message for n in plan.notes if n.address in refused}


def _differences(plan: Plan, lockfile: Lockfile | None) -> dict[str, tuple[FieldChange, ...]]:
    recorded = lockfile.resources if lockfile is not None else {}
    # recorded objects the plan makes again (deleted or archived behind our back): a live
    # reference to their old id is their drift, not the referrer's
    gone = {
        recorded[a.address].id
        for a in plan.actions
        if isinstance(a, Create) and a.address in recorded
    }
    out: dict[str, tuple[FieldChange, ...]] = {}
    for action in plan.actions:
        if not isinstance(action, Update | Replace):
            continue
        # a reference to something apply would create again (archived, deleted) is a consequence
        # of that drift, reported on its own address: the unknown id, and the gone one (at the
        # same path in an unordered list; elsewhere in a reorderable one, as a store's mount)
        unknown = {c.path for c in action.changes if _holds(c.new, {UNKNOWN})}
        unknown |= {c.path for c in action.changes if c.op == "remove" and _holds(c.old, gone)}
        moved = pins_off_record(action.address, action.changes, unknown, lockfile)
        unknown |= followed_skill_paths(action.address, action.changes, lockfile)
        unknown |= unrecorded_skill_paths(action.changes, unknown, lockfile, gone)
        changes = (
            tuple(_flip(c) for c in action.changes if not c.sensitive and c.path not in unknown)
            + moved
        )
        if action.kind == "deployment":
            changes = tuple(c for c in changes if not _is_pin_path(c.path))  # see pin drift
        if changes:
            out[action.address] = changes
    return out


def _removed_message(
    address: str, in_manifests: bool, entry: LockEntry, live: JSON | None, observed: Observed
) -> str:
    if in_manifests and live is not None and entry.kind == "deployment":
        ran = (live.get("agent") or {}).get("id")
        agent = observed.index("agent").get(ran) if isinstance(ran, str) else None
        gone = agent is None or bool(agent.get("archived_at"))
        held_by = held_out_by(entry.held, live, gone)
        if held_by is not None:  # the plan leaves it out (``engine.rollout``)
            return held_out_hint(held_by)
    if in_manifests:
        return "`reconciler apply` creates it again"
    return f"it is no longer in the manifests either; `reconciler state rm {address}` forgets it"


def _version_span(first: int, last: int) -> str:
    return f"version {first}" if first == last else f"versions {first}-{last}"


def _agent_history(
    entry: LockEntry, live: JSON, versions: Sequence[JSON] | None
) -> tuple[int | None, str | None, JSON | None, str]:
    """(version that introduced the change, when, the recorded version's object, span text)."""
    recorded = entry.version
    live_version = live.get("version")
    if versions is None:
        span = f"version {live_version}" if live_version != recorded else ""
        return (live_version if span else None), None, None, span
    by_number = {int(v["version"]): v for v in versions if v.get("version") is not None}
    later = sorted(n for n in by_number if recorded is None or n > recorded)
    base = by_number.get(recorded) if recorded is not None else None
    if not later:
        return None, None, base, ""
    first = by_number[later[0]]
    when = first.get("updated_at") or first.get("created_at")
    return later[0], when, base, _version_span(later[0], later[-1])


def _changed_item(
    address: str,
    entry: LockEntry,
    live: JSON,
    res: DesiredResource | None,
    changes: tuple[FieldChange, ...],
    versions: Sequence[JSON] | None,
    healed: bool = False,
    followers: tuple[str, ...] = (),
) -> DriftItem | None:
    """The ``changed`` item of ``address``, or None. ``followers``: the deployments that
    follow the agent's latest version and that apply moves to its live version."""
    kind = entry.kind
    digest_same = res is not None and digest_matches(res, entry.spec_digest)
    version: int | None = None
    changed_at: str | None = live.get("updated_at")
    span = ""
    if kind == "agent":
        version, when, base, span = _agent_history(entry, live, versions)
        version_moved = live.get("version") != entry.version
        if not digest_same:
            changes = ()
            if base is not None and version_moved:
                ignore = res.ignore_changes if res is not None else ()
                before = normalize(kind, base)
                changes = diff_objects(
                    drop_paths(before, ignore),
                    drop_paths(align_items(kind, normalize(kind, live), before), ignore),
                    UNORDERED_LISTS.get(kind, ()),
                    KEYED_LISTS.get(kind),
                    REORDERABLE_LISTS.get(kind),
                )
        if not changes and not version_moved:
            return None
        changed_at = when or (live.get("updated_at") if version_moved else None)
    elif not digest_same or not changes:
        return None

    # the renderer shows the introducing version beside the address; name a span only
    where = f" in {span}" if span.startswith("versions") else ""
    last = f" (the last apply left version {entry.version})" if kind == "agent" and span else ""
    if healed:
        message = (
            "differs from the manifest; the lockfile has no entry for it (found by its "
            "ownership tags), so whether the live object or the manifest changed cannot be "
            "told; `reconciler plan` shows what apply would do"
        )
    elif res is None:
        message = (
            f"edited outside git{where}{last}; it is no longer in the manifests "
            "(`reconciler apply --prune` archives it)"
        )
    elif not changes and digest_same:
        several = span.startswith("versions")
        said = f"{span or 'a new version'} {'were' if several else 'was'} saved outside git"
        same = _same_as_applied(entry, base, live) if kind == "agent" else None
        if same == "in nothing" and not several:
            same += " (saved unchanged)"
        if same is not None:
            which = "the latest" if several else "it"
            sends = "sends nothing"
            if followers:
                verb = "follows" if len(followers) == 1 else "follow"
                sends = f"moves {', '.join(followers)} (which {verb} the latest) to it"
            message = (
                f"{said}; {which} differs from version {entry.version} (the last apply's) "
                f"{same}, so it matches the manifest: `reconciler apply` records it and {sends}"
            )
        else:
            message = (
                f"{said} but {'match' if several else 'matches'} the manifest{last}; "
                "`reconciler apply` records it"
            )
    elif not digest_same:
        message = (
            f"edited outside git{where}{last}; the manifest changed too since the last apply, "
            "`reconciler plan` shows what apply would do"
        )
    else:
        message = f"edited outside git{where}{last}; `reconciler apply` restores the manifest"
    return _live_item("changed", address, kind, live, message, changes, version, changed_at)


def _same_as_applied(entry: LockEntry, base: JSON | None, live: JSON) -> str | None:
    """How an agent version saved outside git that matches the manifest differs from the
    version the last apply left (``base``, from its history), in words: ``only in the order
    of tools``, ``in nothing`` (saved unchanged, or changed and changed back). None without
    that version."""
    if base is None or base.get("version") != entry.version:
        return None
    fields = sorted(
        f
        for f in set(base) | set(live)
        if f not in OUTPUT_ONLY["agent"] and base.get(f) != live.get(f)
    )
    if not fields:
        return "in nothing"
    reordered = [f for f in fields if _order_free(base.get(f)) == _order_free(live.get(f))]
    if reordered == fields:
        return f"only in the order of {', '.join(fields)}"
    return f"only in the form of {', '.join(fields)} (as the provider wrote it)"


def _order_free(value: Any) -> Any:
    """``value`` with every list sorted: what it says whatever the order of its lists."""
    if isinstance(value, dict):
        return {k: _order_free(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_order_free(v) for v in value), key=repr)
    return value


def _rewritten(
    address: str, entry: LockEntry, live: JSON, item: DriftItem | None, in_manifests: bool
) -> DriftItem | None:
    """A credential written outside git since the last apply (its ``updated_at`` moved): its
    secret cannot be read back, so it may have been rotated; said as a sensitive change."""
    when = rewritten_outside(entry, live)
    if when is None or not entry.secret_fingerprints:
        return item
    secrets = tuple(
        FieldChange(op="change", path=path, sensitive=True)
        for path in sorted(entry.secret_fingerprints)
    )
    if item is not None:
        # the other fields are known changes; the secret only may have changed: say so
        also = "; its secret cannot be read back, so it may have been rotated too"
        also += ", and apply writes the manifest's secret again" if in_manifests else ""
        return item.model_copy(
            update={"changes": item.changes + secrets, "message": item.message + also}
        )
    restore = (
        "`reconciler apply` writes the manifest's secret again"
        if in_manifests
        else "it is no longer in the manifests"
    )
    message = (
        f"written outside git; its secret cannot be read back, so it may have been rotated; "
        f"{restore}"
    )
    return _live_item("changed", address, entry.kind, live, message, secrets, changed_at=when)


def _skill_item(
    address: str,
    entry: LockEntry,
    live: JSON,
    observed: Observed,
    changes: tuple[FieldChange, ...],
    entries: Mapping[str, LockEntry],
) -> DriftItem | None:
    """A skill whose live latest version is not one this project uploaded (uploaded out of
    band), or is an older upload of ours because the version the last apply left as the
    latest (``entry.latest``) was deleted behind git's back. The latest version of ours is
    no drift, whatever the manifests say now (a change in git is what plan shows); nor is a
    foreign one holding exactly the manifest's files."""
    latest = live.get("latest_version_id")
    if entry.latest is not None and latest != entry.latest and latest in entry.uploaded:
        restore = (
            "`reconciler apply` uploads the manifest's files as a new version"
            if changes
            else "it holds the manifest's files: `reconciler apply` records it as the latest"
        )
        runners = _runners(entry, observed, entries)
        message = (
            f"its latest version {entry.latest} (as the last apply left it) was deleted "
            f"behind git's back{runners}; the live latest is {latest}, an older upload; {restore}"
        )
        return _live_item(
            "changed", address, "skill", live, message, changes, changed_at=live.get("updated_at")
        )
    if latest in entry.uploaded or not changes and not _unread_latest(observed, live):
        return None
    what = f"its latest version {latest} was not uploaded by this project"
    seen = observed.skill_versions.get(str(live["id"])) or {}
    if entry.latest is not None and seen.get("deleted") == entry.latest:
        runners = _runners(entry, observed, entries)
        what = (
            f"its latest version {entry.latest} (as the last apply left it) was deleted "
            f"behind git's back{runners}; the live latest, {latest}, was not uploaded by this "
            "project"
        )
    message = (
        f"{what} (uploaded outside git); `reconciler apply` uploads the manifest's files as a "
        "new version"
    )
    return _live_item(
        "changed", address, "skill", live, message, changes, changed_at=live.get("updated_at")
    )


def _runners(entry: LockEntry, observed: Observed, entries: Mapping[str, LockEntry]) -> str:
    """The agents still pinned to the skill's deleted latest version (``entry.latest``)."""
    return agents_on_version(entry.id, entry.latest or "", observed.all("agent"), entries)


def _unread_latest(observed: Observed, live: JSON) -> bool:
    """The live latest version's files were not read (so they cannot be compared)."""
    seen = observed.skill_versions.get(str(live["id"])) or {}
    return seen.get("id") != live.get("latest_version_id") or "digest" not in seen


def _pin_item(
    address: str, entry: LockEntry, live: JSON, entries: Mapping[str, LockEntry], ran: JSON
) -> DriftItem | None:
    agent = live.get("agent") or {}
    for agent_address, pinned in sorted(entry.pins.items()):
        agent_entry = entries.get(agent_address)
        expected_id = agent_entry.id if agent_entry is not None else None
        live_id, live_version = agent.get("id"), agent.get("version")
        if live_version == pinned and (expected_id is None or live_id == expected_id):
            continue
        held = [h for h in entry.held if h.agent == agent_address and ran.get("archived_at")]
        if expected_id is not None and live_id != expected_id and live_version == pinned and held:
            # ran: the agent archived behind git's back; the new one's candidate failed: kept
            message = (
                f"runs agent {live_id}@{live_version}, not {agent_address} ({expected_id}), "
                f"whose candidate v{held[-1].version} is held; `reconciler apply` moves it "
                f"once a version of {agent_address} passes its checks (or with --retry-held)"
            )
            return _live_item("pin", address, "deployment", live, message)
        if expected_id is not None and live_id != expected_id:
            message = (
                f"runs agent {live_id}@{live_version}, not {agent_address} ({expected_id}) "
                f"that the lockfile pinned @{pinned}"
            )
        else:
            message = f"runs {agent_address}@{live_version}, the lockfile pinned @{pinned}"
        message += "; `reconciler apply` pins it as the manifest says"
        return _live_item("pin", address, "deployment", live, message)
    return None


def _paused_items(address: str, live: JSON) -> list[DriftItem]:
    message = paused_message(live)
    if message is None:
        return []
    change = FieldChange(op="change", path="status", old="active", new="paused")
    return [_live_item("paused", address, "deployment", live, message, (change,))]


def _ownership_item(
    address: str,
    entry: LockEntry,
    live: JSON,
    observed: Observed,
    project: str,
    desired: Mapping[str, Any],
    entries: Mapping[str, LockEntry],
) -> DriftItem | None:
    """A recorded object whose live tags say it is not this project's for ``address``
    (retagged by hand, or an entry from a bad merge): what plan reports as not ours, with
    its remedies, and the tags that differ. None when it is ours, or tagged for an address
    nothing claims any more (the entry was moved with ``state mv``: plan retags it)."""
    vaults = observed.index("vault")
    owner = owner_problem(entry.kind, live, project, address, vaults)
    if owner is None:
        return None
    tagged = owned_address(live, project)
    if tagged is not None and tagged not in desired and tagged not in entries:
        return None
    applied = tags(project, address)
    metadata = live.get("metadata") or {}
    changes = tuple(
        FieldChange(
            op="change" if key in metadata else "remove",
            path=f"metadata.{key}",
            old=value,
            new=metadata.get(key),
        )
        for key, value in applied.items()
        if metadata.get(key) != value and (entry.kind != "credential" or owner_of(live))
    )
    # tagged by this project for another address it claims (an edit by hand): not to
    # this address, rather than "not to this project"
    whose = address if tagged is not None else "this project"
    message = (
        f"its ownership tags say it belongs to {owner}, not to {whose}: plan and apply "
        f"never change or archive it. `reconciler state rm {address}` forgets the entry (a "
        "wrong entry, e.g. from a bad merge), or `reconciler import --force "
        f"{address} {entry.id}` takes the object back"
    )
    return _live_item(
        "changed", address, entry.kind, live, message, changes, changed_at=live.get("updated_at")
    )


def _live_item(
    drift_type: DriftType,
    address: str,
    kind: str,
    live: JSON,
    message: str,
    changes: tuple[FieldChange, ...] = (),
    version: int | None = None,
    changed_at: str | None = None,
) -> DriftItem:
    """The drift of the live object ``live`` at a managed ``address``: named by its id and
    its remote name as the provider has them now."""
    return DriftItem(
        type=drift_type,
        address=address,
        kind=kind,
        remote_id=live["id"],
        remote_name=remote_name_of(kind, live),
        message=message,
        changes=changes,
        version=version,
        changed_at=changed_at,
    )


def build_drift(
    documents: Iterable[Document],
    observed: Observed,
    lockfile: Lockfile | None,
    project: str = "default",
    *,
    ignore_unmanaged: bool = False,
    versions: Mapping[str, Sequence[JSON]] | None = None,
    healed: frozenset[str] = frozenset(),
    skills: Mapping[str, SkillSource] | None = None,
    refused_skills: Mapping[str, str] | None = None,
) -> DriftReport:
    """How the live system differs from what the lockfile and the manifests say.

    Args:
        documents: manifest documents (``ManifestSet.documents``).
        observed: the live state from ``refresh`` (one list per kind).
        lockfile: the current ``Lockfile``.
        project: the ownership project.
        ignore_unmanaged: leave unmanaged objects out of the report (twins stay in).
        versions: agent id -> its versions (``GET /v1/agents/{id}/versions``), for the
            agents ``agents_to_annotate`` named; says which version introduced a change.
        healed: addresses whose entry was found by ownership tags (or a skill's slug).
        skills: skill address -> its directory as read at load (``ManifestSet.skills``).
        refused_skills: remote id -> skill address, for the unrecorded live skills with a
            declared skill's slug that plan refuses to take (``engine.skills
            .refused_by_slug``): unmanaged, their message naming the import of that address.

    Returns:
        A ``DriftReport`` with items sorted by address (or kind and name), then drift type.

    Example: an agent whose system prompt was edited in the console after the last apply
    gives ``DriftItem(type="changed", address="agent.coder", version=3, changes=(
    FieldChange(op="change", path="system", old=<manifest>, new=<live>),), ...)``.
    """
    documents = tuple(documents)
    if lockfile is not None:
        # a pin move killed once the pin had moved is no drift: it is what the state records
        lockfile = settle_live_pin_moves(lockfile, observed.all("deployment"))
    desired = {r.address: r for r in desired_resources(documents)}
    entries = dict(lockfile.resources) if lockfile is not None else {}
    plan = _manifest_plan(documents, observed, lockfile, project, skills) if entries else None
    planned = _differences(plan, lockfile) if plan is not None else {}
    refused = _refused_replaces(plan) if plan is not None else {}
    followers: dict[str, tuple[str, ...]] = {}
    for move in plan.pin_moves if plan is not None else ():
        if move.follows_latest:
            followers[move.agent] = (*followers.get(move.agent, ()), move.deployment)
    items: list[DriftItem] = []
    live_vaults = {v["id"] for v in observed.all("vault") if not v.get("archived_at")}
    for address, entry in sorted(entries.items()):
        if entry.kind == "credential" and entry.parent_id not in live_vaults:
            continue  # its vault is gone or archived: that item says it all
        live = observed.index(entry.kind).get(entry.id)
        in_manifests = address in desired
        if live is None or live.get("archived_at"):
            drift_type: DriftType = "deleted" if live is None else "archived"
            items.append(
                DriftItem(
                    type=drift_type,
                    address=address,
                    kind=entry.kind,
                    remote_id=entry.id,
                    remote_name=remote_name_of(entry.kind, live) if live else entry.remote_name,
                    message=_removed_message(address, in_manifests, entry, live, observed),
                )
            )
            continue
        if entry.kind == "skill":
            changes = planned.get(address, ())
            skill = _skill_item(address, entry, live, observed, changes, entries)
            items += [skill] if skill is not None else []
            continue
        theirs = _ownership_item(address, entry, live, observed, project, desired, entries)
        if theirs is not None:
            items.append(theirs)  # plan and apply leave it alone: nothing else is to say
            continue
        history = (versions or {}).get(entry.id) if versions is not None else None
        changed = _changed_item(
            address,
            entry,
            live,
            desired.get(address),
            planned.get(address, ()),
            history,
            healed=address in healed,
            followers=followers.get(address, ()),
        )
        if entry.kind == "credential":
            res = desired.get(address)
            if res is None or not res.ignores("auth"):
                changed = _rewritten(address, entry, live, changed, address in desired)
        if changed is None and address in refused:
            message = f"differs from the manifest, which apply left alone: {refused[address]}"
            changed = _live_item("changed", address, entry.kind, live, message)
            changed = changed.model_copy(update={"refused_replace": True})
        if changed is not None:
            items.append(changed)
        pin_kept = address in desired and desired[address].ignores("agent.version")
        if entry.kind == "deployment" and entry.pins and not pin_kept:
            ran = observed.index("agent").get(str((live.get("agent") or {}).get("id"))) or {}
            pin = _pin_item(address, entry, live, entries, ran)
            if pin is not None:
                items.append(pin)
        if entry.kind == "deployment":
            items += _paused_items(address, live)
    vault_names = {e.id: a for a, e in entries.items() if e.kind == "vault"}
    ignored = 0
    for u in find_unmanaged(documents, observed, lockfile, project):
        if ignore_unmanaged and u.duplicate_of is None:
            ignored += 1
            continue  # twins are ours, not unmanaged: always reported
        items.append(unmanaged_item(u, vault_names, refused_skills or {}))
    return DriftReport(
        project=project, items=tuple(sorted(items, key=_sort_key)), ignored_unmanaged=ignored
    )


def agents_to_annotate(report: DriftReport) -> tuple[str, ...]:
    """Remote ids of the changed agents, whose version history says who changed what when."""
    return tuple(
        sorted(
            {
                i.remote_id
                for i in report.items
                if i.type == "changed" and i.kind == "agent" and i.remote_id
            }
        )
    )


__all__ = [
    "DRIFT_ORDER",
    "agents_to_annotate",
    "build_drift",
    "manifest_differences",
]
