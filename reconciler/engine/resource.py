"""Plan one desired resource: match, compare, decide. Pure: no I/O.

- match (``match.py``): the live object the address owns: the one the lockfile records,
  else the newest one tagged for it by this project (so a lost lockfile never plans twins);
  none means a create;
- compare: both sides normalised (server defaults filled, ignored paths dropped) and
  diffed, plus the secrets whose fingerprint changed;
- decide: a replace (or a replace ``protect`` refuses), an update, or a no-op that records
  what the lockfile does not say yet.

Each resource returns a frozen ``Planned``: its action and what the resources after it (its
referrers) may assume: the remote id and agent version after apply, the matched object.
Nothing is written to shared state; ``planner.build_plan`` passes the results on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.engine.desired import (
    DesiredResource,
    create_body,
    desired_digest,
    digest_matches,
    manifest_path,
    request_fields,
    update_body,
)
from reconciler.engine.diff import changed_fields, diff_objects
from reconciler.engine.inputs import PlanInputs, live_marker, rewritten_outside
from reconciler.engine.match import (
    Match,
    match_live,
    nothing_to_move,
    recorded_elsewhere,
    unfinished_adoption,
)
from reconciler.engine.model import (
    Create,
    FieldChange,
    NoOp,
    Note,
    Replace,
    Target,
    Update,
)
from reconciler.engine.normalize import (
    KEYED_LISTS,
    REORDERABLE_LISTS,
    UNORDERED_LISTS,
    align_items,
    align_paths,
    fill_unset,
    normalize,
    pair_tool_configs,
)
from reconciler.engine.planned import (
    Planned,
    predicted_id,
    predicted_version,
    resolve_planned,
)
from reconciler.engine.seeds import (
    only_unwritten_seeds,
    seed_paths,
    seeding_reason,
    unwritten_seeds,
)
from reconciler.engine.skills import plan_skill
from reconciler.errors import PlanError
from reconciler.jsontypes import JSON

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


#: the reason of a no-op that stands for a replace ``protect`` refuses (drift reports it)
REFUSED_REPLACE = "a replace is needed but refused: "


@dataclass(frozen=True)
class _Comparison:
    """How the live object differs from the manifest."""

    changes: tuple[FieldChange, ...]
    #: why the difference cannot be applied in place (a replace), or None
    immutable: str | None
    #: paths that differ but ``ignore_changes`` hides
    hidden: tuple[str, ...] = ()
    #: a credential written outside the reconciler since the last apply: when
    rewritten: str | None = None
    #: the fingerprints the lockfile records for this object: the secrets last written
    written: Mapping[str, str] = field(default_factory=dict)


def plan_resource(
    inputs: PlanInputs, res: DesiredResource, planned: Mapping[str, Planned]
) -> Planned:
    """Match, compare and decide one desired resource.

    Args:
        inputs: the plan's read-only inputs.
        res: the desired resource.
        planned: the resources planned before it (everything it references).

    Raises:
        PlanError: a deployment pins an agent version that would not exist.
    """
    if res.kind == "skill":
        claimed = {p.id for p in planned.values() if p.id is not None}
        skill = plan_skill(inputs, res, claimed)
        return Planned(
            action=skill.action,
            id=skill.remote_id,
            live=skill.live,
            skill_version=skill.version,
            moved_from=skill.moved_from,
            move_note=None if skill.moved_from is not None else nothing_to_move(inputs, res),
        )
    gone = _pins_a_gone_agent(inputs, res, planned)
    if inputs.options.check_gone_pins or gone is None:
        _check_pin(res, planned, gone)
    parent_id = predicted_id(planned, res.parent) if res.parent else None
    conflict = inputs.conflict(res.address, res.kind) or recorded_elsewhere(inputs, res, parent_id)
    if conflict is not None:
        return Planned(conflict=conflict)
    match = match_live(inputs, res, parent_id)
    target = _target(inputs, res)
    if match.live is None:
        adopting = unfinished_adoption(inputs, res)
        if adopting is not None:
            return Planned(conflict=adopting)
        return Planned(
            action=Create(
                address=res.address,
                kind=res.kind,
                reason=match.missing,
                body=create_body(res, inputs.options.project),
                target=target,
                depends_on=_depends_on(inputs, res),
                parent=res.parent,
            ),
            version=1 if res.kind == "agent" else None,
            move_note=nothing_to_move(inputs, res),
        )
    comparison = _compare(inputs, res, match.live, target, planned, match.moved_from)
    if not comparison.immutable and res.ignore_changes:
        target = _ignored_secrets_as_written(res, target, comparison.written)
    decided = _decide(inputs, res, match, comparison, target, planned)
    note = None if match.moved_from is not None else nothing_to_move(inputs, res)
    return replace(decided, hidden=comparison.hidden, moved_from=match.moved_from, move_note=note)


def _compare(
    inputs: PlanInputs,
    res: DesiredResource,
    obj: JSON,
    target: Target,
    planned: Mapping[str, Planned],
    moved_from: str | None = None,
) -> _Comparison:
    """Normalise both sides, diff them, and add the secrets whose value changed."""
    kind = res.kind
    sent = resolve_planned(request_fields(res, inputs.options.project), planned)
    as_listed = normalize(kind, obj)
    live = align_items(kind, as_listed, normalize(kind, sent))
    want = fill_unset(kind, normalize(kind, sent), live)
    live, want = pair_tool_configs(kind, live, want)
    changes = _blanks_as_written(
        diff_objects(
            res.without_ignored(live),
            res.without_ignored(want),
            UNORDERED_LISTS.get(kind, ()),
            KEYED_LISTS.get(kind),
            REORDERABLE_LISTS.get(kind),
        ),
        obj,
        sent,
    )
    hidden: tuple[str, ...] = ()
    if res.ignore_changes:
        shown = {c.path for c in changes}
        # compared as the shown diff compares (unordered and keyed lists as such), or a list
        # change it shows would come back here as paths by position
        whole = diff_objects(
            live,
            want,
            UNORDERED_LISTS.get(kind, ()),
            KEYED_LISTS.get(kind),
            REORDERABLE_LISTS.get(kind),
        )
        differ = {c.path for c in whole} - shown
        hidden = tuple(sorted(manifest_path(kind, path) for path in differ))
    entry = inputs.entry(res.address)
    if (entry is None or entry.id != obj["id"]) and moved_from is not None:
        entry = inputs.entry(moved_from)  # a move: the secrets were recorded under the old name
    recorded = entry is not None and entry.id == obj["id"]
    known = dict(entry.secret_fingerprints) if entry is not None and recorded else {}
    # recorded at the index an item had as last applied (the live order): read at the
    # manifest's, where the diff shows it (a reorder is no change)
    known = align_paths(kind, known, as_listed, normalize(kind, sent))
    fps = target.secret_fingerprints
    rewritten = rewritten_outside(entry, obj)  # rotated behind git's back: write it again
    secret_changed = [
        p for p, fp in fps.items() if (rewritten or known.get(p) != fp) and not res.ignores(p)
    ]
    if rewritten and not secret_changed:
        rewritten = None  # every secret it may have rotated is one ignore_changes leaves alone
    changes.extend(_secret_changes(secret_changed, known, recorded, changes, fps))
    changes.extend(unwritten_seeds(inputs, res, obj, moved_from))  # see engine.seeds
    # a field ignore_changes names is left alone: never the cause of a replace either
    immutable = _immutable_change(kind, res.without_ignored(live), res.without_ignored(want))
    return _Comparison(tuple(changes), immutable, hidden, rewritten if fps else None, known)


def _secret_changes(
    changed: Iterable[str],
    known: Mapping[str, str],
    recorded: bool,
    shown: Iterable[FieldChange],
    wanted: Mapping[str, str],
) -> list[FieldChange]:
    """The plan's lines for secrets (never a value): a path the lockfile has no fingerprint
    for, on an object it recorded, is an ``add``; a recorded one the manifest no longer has
    (an auth type changed from ``token`` to ``secret_value``) a ``remove``, unless a removal
    of its parent is shown already; else a ``change`` (or unknown: adopted objects). A
    removal only goes with other changes: alone, it is nothing to send."""
    shown = list(shown)
    out = [
        FieldChange(op="add" if recorded and p not in known else "change", path=p, sensitive=True)
        for p in sorted(changed)
    ]
    if not out and not shown:
        return out
    gone = {c.path for c in shown if c.op == "remove"}
    out.extend(
        FieldChange(op="remove", path=p, sensitive=True)
        for p in sorted(set(known) - set(wanted))
        if not any(p == g or p.startswith((g + ".", g + "[")) for g in gone)
    )
    return out


def _ignored_secrets_as_written(
    res: DesiredResource, target: Target, written: Mapping[str, str]
) -> Target:
    """``target`` with the fingerprint of each secret ``ignore_changes`` leaves alone as the
    lockfile has it (what was last written), not the manifest's: an update or a no-op never
    sends that secret, and a fingerprint of a value never written would hide it from the
    plan once the secret is no longer ignored."""
    fps = target.secret_fingerprints
    kept = {p: fp for p, fp in fps.items() if not res.ignores(p)}
    kept |= {p: fp for p, fp in written.items() if p in fps and res.ignores(p)}
    if kept == dict(fps):
        return target
    return target.model_copy(update={"secret_fingerprints": kept})


def _blanks_as_written(
    changes: Iterable[FieldChange], live: Mapping[str, Any], sent: Mapping[str, Any]
) -> list[FieldChange]:
    """``changes``, with the ``""`` the request sends or the live object holds where the
    comparison read it as null (``normalize``: a cleared ``description`` comes back null for
    some kinds, ``""`` for others): the plan shows ``"x" -> ""`` for ``description: ""``."""
    shown = []
    for change in changes:
        update: dict[str, Any] = {}
        if "." not in change.path and "[" not in change.path and not change.sensitive:
            if change.new is None and sent.get(change.path) == "":
                update["new"] = ""
            if change.old is None and live.get(change.path) == "":
                update["old"] = ""
        shown.append(change.model_copy(update=update) if update else change)
    return shown


def _decide(
    inputs: PlanInputs,
    res: DesiredResource,
    match: Match,
    comparison: _Comparison,
    target: Target,
    planned: Mapping[str, Planned],
) -> Planned:
    """The action for a matched resource: a replace (or a refused one), an update or a
    no-op, with what it leaves for the resources after it."""
    kind, obj = res.kind, match.live
    assert obj is not None  # a create is decided without a comparison
    kept = Planned(id=obj["id"], version=obj.get("version") if kind == "agent" else None, live=obj)
    moved = {"moved_from": match.moved_from} if match.moved_from is not None else {}
    common: dict[str, Any] = dict(  # noqa: C408 - keyword form reads as the action's fields
        address=res.address,
        kind=kind,
        remote_id=obj["id"],
        live_marker=live_marker(kind, obj),
        depends_on=_depends_on(inputs, res),
        parent=res.parent,
    )
    parent_id = _parent_id(kind, obj)
    if kind == "agent" and res.ignores("skills"):
        # the agent keeps the skill versions it runs: the lockfile records those
        target = target.model_copy(update={"skills": _live_skill_versions(res, obj, planned)})
    immutable, changes = comparison.immutable, comparison.changes
    protected = _protected_replace(inputs, res) if immutable else None
    if immutable and protected:
        # protect means never archived or deleted, and a replace does one of those
        how = "deleted" if kind == "credential" else "archived"
        refused = Note(
            address=res.address,
            kind=kind,
            remote_id=obj["id"],
            message=f"needs a replace ({immutable}, so the old one would be {how}), "
            f"but {protected}; left as it is. To replace it, set protect: false on "
            f"{res.parent or res.address}, apply, then set it back",
        )
        # the lockfile keeps recording what is live (its digest), but the protect the plan
        # obeyed is recorded, or a later --prune would archive what it protects
        entry = inputs.entry(res.address)
        kept_target = None
        if entry is not None and entry.id == obj["id"] and entry.protect != res.protect:
            kept_target = target.model_copy(
                update={
                    "spec_digest": entry.spec_digest,
                    "remote_name": entry.remote_name,
                    "secret_fingerprints": dict(entry.secret_fingerprints),
                }
            )
        noop = NoOp(
            reason=f"{REFUSED_REPLACE}{protected}",
            target=kept_target,
            parent_id=parent_id,
            **common,
            **moved,
        )
        return replace(kept, action=noop, refused=refused)
    if immutable:
        how = "deleted" if kind == "credential" else "archived"  # as apply does it
        action = Replace(
            reason=f"{immutable}: the old one is {how}, then a new one is created",
            changes=changes,
            body=create_body(res, inputs.options.project),
            target=target,
            **common,
            **moved,
        )
        return replace(kept, action=action, id=None)
    if changes:
        update = _update(inputs, res, match, comparison, target, planned, common)
        if comparison.rewritten is not None and match.moved_from is None:
            update = update.model_copy(
                update={
                    "reason": f"updated outside the reconciler ({comparison.rewritten}); its "
                    "secret cannot be read back, so apply writes the manifest's secret again"
                }
            )
        version = update.to_version if update.to_version is not None else kept.version
        return replace(kept, action=update, version=version)
    return replace(kept, action=_noop(inputs, res, match, target, common, planned))


def _update(
    inputs: PlanInputs,
    res: DesiredResource,
    match: Match,
    comparison: _Comparison,
    target: Target,
    planned: Mapping[str, Planned],
    common: dict[str, Any],
) -> Update:
    """Send the changed fields; an agent's update carries its live version (a
    precondition) and becomes the next version."""
    obj, changes = match.live, comparison.changes
    assert obj is not None
    fields = changed_fields(changes)
    body = only_unwritten_seeds(update_body(res, inputs.options.project, fields, obj), changes)
    recorded = inputs.entry(res.address)
    interrupted = recorded is None or recorded.id != obj["id"]
    found = recorded is None and not inputs.pending(res.address)
    reason = (
        seeding_reason(changes, interrupted=interrupted, found=found)
        or _secret_reason(changes, comparison.written)
        or _update_reason(res, fields, planned)
    )
    if match.moved_from is not None:
        reason = _move_reason(match.moved_from, fields)
    elif match.retagged is not None:
        others = [f for f in fields if f != "metadata"]
        reason = (
            f"its ownership tag reconciler-address was changed outside the reconciler (to "
            f"{match.retagged}); apply tags it {res.address} again"
            + (f"; {', '.join(others)} also differ from the manifest" if others else "")
        )
    elif match.adopted:
        reason += " (found by its ownership tags; the lockfile had no entry)"
    from_v = to_v = None
    labels: tuple[str, ...] = ()
    if res.kind == "agent":
        from_v = int(obj.get("version") or 1)
        to_v = from_v + 1
        body["version"] = from_v
        labels = _labels(fields)
    return Update(
        reason=reason,
        changes=changes,
        body=body,
        target=target,
        from_version=from_v,
        to_version=to_v,
        labels=labels,
        parent_id=_parent_id(res.kind, obj),
        moved_from=match.moved_from,
        **common,
    )


def _noop(
    inputs: PlanInputs,
    res: DesiredResource,
    match: Match,
    target: Target,
    common: dict[str, Any],
    planned: Mapping[str, Planned],
) -> NoOp:
    """Nothing to send; the target is recorded when the lockfile does not say it yet."""
    obj = match.live
    assert obj is not None
    kind, entry = res.kind, inputs.entry(res.address)
    needs_record = (
        entry is None
        or entry.id != obj["id"]
        or not digest_matches(res, entry.spec_digest)
        or entry.protect != res.protect
        or (kind == "agent" and entry.version != obj.get("version"))
        or (kind == "deployment" and list(entry.pins.values()) != [_live_pin(obj)])
        or (kind == "agent" and entry.skills != _recorded_skills(res, target, planned))
        or inputs.pending(res.address)
    )
    reason = (
        "adopted: found by its ownership tags (the lockfile had no entry)"
        if match.adopted
        else "up to date"
    )
    saved = obj.get("version") if kind == "agent" else None
    recorded = entry.version if entry is not None and entry.id == obj["id"] else None
    if not match.adopted and recorded is not None and saved != recorded:
        reason = (
            f"version {saved} was saved outside the reconciler (the lockfile records version "
            f"{recorded}) and matches the manifest; apply records it (the agent needs "
            "no update)"
        )
    if match.moved_from is not None:
        reason = (
            f"moved from {match.moved_from}: the object already carries its new address "
            "(a move whose lockfile write was lost); apply moves the lockfile entry"
        )
    if needs_record and kind == "deployment" and res.pin is not None:
        if res.ignores("agent.version"):  # ignore_changes: [agent]: the pin stays as it is
            target = target.model_copy(update={"pins": {res.pin[0]: _live_pin(obj)}})
    return NoOp(
        reason=reason,
        target=target if needs_record else None,
        version=obj.get("version") if kind == "agent" else None,
        parent_id=_parent_id(kind, obj),
        moved_from=match.moved_from,
        **common,
    )


def _parent_id(kind: str, obj: JSON) -> str | None:
    """A live credential's vault id (updates and no-ops carry it; a replace's create
    resolves its parent at apply)."""
    return obj.get("vault_id") if kind == "credential" else None


def _depends_on(inputs: PlanInputs, res: DesiredResource) -> tuple[str, ...]:
    return tuple(r for r in res.refs if r in inputs.desired)


def _target(inputs: PlanInputs, res: DesiredResource) -> Target:
    """What the lockfile records for ``res`` once its action succeeds."""
    return Target(
        spec_digest=desired_digest(res),
        protect=res.protect,
        remote_name=res.remote_name,
        secret_fingerprints=_fingerprints(inputs, res),
        pins={res.pin[0]: res.pin[1]} if res.pin is not None else {},
        skills=res.skill_refs,
        seeds=seed_paths(res),
    )


def _fingerprints(inputs: PlanInputs, res: DesiredResource) -> dict[str, str]:
    if inputs.fingerprint is None:
        return {}
    if inputs.wanted is not None and res.address not in inputs.wanted:
        return {}  # not targeted: its action is dropped, and its secrets are not needed
    return {path: inputs.fingerprint(res.address, path) for path, _ in res.secrets}


def _immutable_change(kind: str, live: JSON, desired: JSON) -> str | None:
    live_config, desired_config = live.get("config") or {}, desired.get("config") or {}
    if kind == "environment" and live_config.get("type") != desired_config.get("type"):
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


def _labels(fields: list[str]) -> tuple[str, ...]:
    labels = [AGENT_LABELS.get(f, f) for f in fields]
    if fields == ["metadata"]:
        return ("metadata only",)
    if RISKY & set(fields):
        labels.append("risky")
    return tuple(labels)


def _pins_a_gone_agent(
    inputs: PlanInputs, res: DesiredResource, planned: Mapping[str, Planned]
) -> str | None:
    """The id the lockfile records for the agent ``res`` pins when that object is gone
    (archived or deleted behind our back: this plan creates it again), else None."""
    if res.pin is None:
        return None
    agent, entry = planned.get(res.pin[0]), inputs.entry(res.pin[0])
    if agent is None or agent.live is not None or entry is None:
        return None
    return entry.id


def _check_pin(
    res: DesiredResource, planned: Mapping[str, Planned], gone: str | None = None
) -> None:
    """A deployment may pin only an agent version that exists once this plan is applied."""
    agent, version = res.pin if res.pin is not None else ("", None)
    latest = predicted_version(planned, agent)
    if version is None or res.held_agent_id is not None:  # held on a version it runs
        return
    if latest is None or version <= latest:
        return
    agent_planned = planned.get(agent)
    live = agent_planned.live if agent_planned is not None else None
    now = live.get("version") if live is not None else None
    if live is None and gone is not None:
        where = (
            f"{agent} ({gone}) was archived or deleted behind git's back: this apply creates "
            "it again, and its versions start over at 1"
        )
    elif live is None:
        where = f"{agent} does not exist yet, and this apply creates its version 1"
    elif now != latest:
        where = f"its latest version is {now}, {latest} after this apply"
    else:
        where = f"its latest version is {latest}"
    raise PlanError(
        f"{res.address} pins {agent} version {version}, which does not exist: {where}. "
        f"Pin an existing version, or follow the latest (agent: {agent.split('.', 1)[1]})",
        address=res.address,
        field="agent.version",
    )


def _secret_reason(changes: tuple[FieldChange, ...], known: Mapping[str, str]) -> str | None:
    """Why an update that only sends secrets: the manifest's secret changed (the state's
    fingerprint, ``known``, differs), or the state holds no fingerprint of it (a create
    whose record was lost, a lost lockfile), so nobody knows that the live value differs."""
    if not changes or not all(c.sensitive for c in changes):
        return None
    if any(c.path in known for c in changes):
        paths = ", ".join(c.path for c in changes)
        one = len(changes) == 1
        return (
            f"the manifest's {'secret' if one else 'secrets'} {paths} changed since the last "
            f"apply ({'its fingerprint differs' if one else 'their fingerprints differ'} from "
            "the one the lockfile recorded)"
        )
    return (
        "its secret cannot be read back and the state holds no fingerprint of it, so it is "
        "sent again (the live value may be the same)"
    )


def _update_reason(res: DesiredResource, fields: list[str], planned: Mapping[str, Planned]) -> str:
    """Why an update: a deployment whose only change is its agent pin says which pin."""
    followed = [
        skill
        for skill, pinned in res.skill_refs.items()
        if pinned is None
        and (done := planned.get(skill)) is not None
        and done.skill_version is None
    ]
    if res.kind == "agent" and fields == ["skills"] and followed:
        return f"it follows the newest version of {', '.join(followed)}, which this apply uploads"
    if res.kind == "deployment" and fields == ["agent"] and res.pin is not None:
        agent, pinned = res.pin
        if pinned is not None:
            return f"the manifest pins {agent}@{pinned}"
        version = predicted_version(planned, agent)
        newest = f"version {version}" if version is not None else "a new version"
        done = planned.get(agent)
        if version is not None and done is not None and isinstance(done.action, NoOp):
            # made by an earlier apply (--target, or one stopped during the checks)
            return f"it follows the latest version of {agent}, which is {newest}"
        return f"it follows the latest version of {agent}, which will be {newest}"
    return "the live object differs from the manifest"


def _move_reason(old: str, fields: list[str]) -> str:
    """Why a moved resource is updated: its tag (and its name) follow the new address."""
    what = "renamed and retagged" if "name" in fields or "display_name" in fields else "retagged"
    others = [f for f in fields if f not in ("metadata", "name", "display_name")]
    verb = "differs" if len(others) == 1 else "differ"
    tail = f"; {', '.join(others)} also {verb} from the manifest" if others else ""
    return f"moved from {old}: the same object, {what} in place (nothing archived or created){tail}"


def _skill_versions(res: DesiredResource, planned: Mapping[str, Planned]) -> dict[str, str]:
    """The skill versions an agent is resolved to: pinned ones, and for the skills it
    follows their newest version as far as the plan knows it."""
    out: dict[str, str] = {}
    for skill, pinned in res.skill_refs.items():
        done = planned.get(skill)
        version = pinned or (done.skill_version if done is not None else None)
        if version is not None:
            out[skill] = version
    return out


def _live_skill_versions(
    res: DesiredResource, obj: JSON, planned: Mapping[str, Planned]
) -> dict[str, str]:
    """The versions of the manifest's skills a live agent runs (``ignore_changes: [skills]``
    leaves them as they are): skill address -> version."""
    by_id = {planned[s].id: s for s in res.skill_refs if s in planned and planned[s].id}
    out: dict[str, str] = {}
    for item in obj.get("skills") or []:
        address = by_id.get(item.get("skill_id")) if isinstance(item, dict) else None
        if address is not None and item.get("version"):
            out[address] = str(item["version"])
    return out


def _recorded_skills(
    res: DesiredResource, target: Target, planned: Mapping[str, Planned]
) -> dict[str, str]:
    """The skill versions the lockfile should record for an agent after apply."""
    if res.ignores("skills"):
        return {s: v for s, v in target.skills.items() if v}
    return _skill_versions(res, planned)


def _live_pin(obj: JSON) -> int | None:
    """The agent version a live deployment runs."""
    version = (obj.get("agent") or {}).get("version")
    return int(version) if version is not None else None


def _protected_replace(inputs: PlanInputs, res: DesiredResource) -> str | None:
    """What protects ``res`` from being archived or deleted by a replace, or None."""
    if res.kind == "credential" and res.parent is not None:
        parent = inputs.desired.get(res.parent)
        if parent is not None and parent.protect:
            return f"{res.parent} is protected (protect: true), which covers its credentials"
    if res.protect:
        return "it is protected (protect: true)"
    return None
