"""What a human reads about a plan or a drift report, before it is given a format.

Text and Markdown differ only in typography; which blocks exist, in which order, what their
headlines say and which detail lines they carry is decided once, here, from the engine's data.
This module does no styling, no escaping and no I/O, and decides nothing the engine decided.
The shapes it fills are ``blocks``'; the rollout parts of a plan (pin moves, held candidates,
skill chains) read as ``rollouts`` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import assert_never

from reconciler.engine.model import (
    FOUND_BY_SLUG,
    NOTHING_TO_MOVE,
    Action,
    Adopt,
    Archive,
    BlastRadius,
    Conflict,
    Create,
    Delete,
    DriftItem,
    DriftReport,
    FieldChange,
    Impact,
    NoOp,
    Note,
    PinMove,
    Plan,
    PolicyWarning,
    Replace,
    Twin,
    Update,
    forgets_only,
    found_by,
    skill_version_words,
)
from reconciler.render.blocks import (
    SIGN_TONE,
    Block,
    Exposure,
    LeftAlone,
    Line,
    Outline,
    Radius,
    Tone,
    body_lines,
    change_lines,
    changes_shortened,
    read_labels,
)
from reconciler.render.rollouts import (
    chain_view,
    check_sessions_message,
    gate_words,
    held_items,
    pin_block,
    pin_facts,
)
from reconciler.render.values import (
    ELLIPSIS,
    MAX_DIFF_LINES,
    inline,
    is_shortened,
    printable,
)

# --- plans ---------------------------------------------------------------------------------

#: the fact beside ``forget``: an object archived or gone already, whose entry apply drops
FORGET_FACT = "(nothing is sent; the lockfile entry is dropped)"


def _reason(text: str) -> Line:
    return Line(f"reason: {printable(text)}", tone="muted")


def _remote(remote_id: str) -> Line:
    return Line(f"id: {printable(remote_id)}", tone="muted")


def action_block(
    action: Create | Update | Replace | Archive | Delete | Adopt, *, width: int, full: bool = False
) -> Block:
    """The block of one changing action; long values shortened unless ``full``."""
    address, kind = action.address, action.kind

    def changes(cs: tuple[FieldChange, ...]) -> tuple[Line, ...]:
        return change_lines(cs, old_label="live", new_label="manifest", width=width, full=full)

    match action:
        case Create() if kind == "skill":
            return _skill_create_block(action, full=full)
        case Create():
            lines = (_reason(action.reason), *body_lines(action.body, full=full))
            return Block("+", "create", address, kind, "create", lines=lines)
        case Update() if kind == "skill":
            return _skill_version_block(action)
        case Update():
            facts: tuple[str, ...] = ()
            if action.from_version is not None:
                to = "next" if action.to_version is None else str(action.to_version)
                facts = (f"version {action.from_version} -> {to}",)
            labels, risky = read_labels(action.labels)
            warning = (
                f"risky: {_join(risky)} change what this agent can do or reach"
                if risky
                else "risky: this change affects what this agent can do or reach"
            )
            lines = (
                _reason(action.reason),
                *([Line(warning, tone="risky")] if risky or "risky" in action.labels else []),
                *changes(action.changes),
            )
            if action.moved_from is not None:
                shown = moved_address(action.moved_from, address)
                return Block("~", "update", shown, kind, "moved", facts, labels, risky, lines)
            return Block("~", "update", address, kind, "update", facts, labels, risky, lines)
        case Replace():
            how = "delete" if kind == "credential" else "archive"
            lines = (_reason(action.reason), _remote(action.remote_id), *changes(action.changes))
            facts = (f"({how}, then create)",)
            if action.moved_from is not None:
                address = moved_address(action.moved_from, address)
            return Block("-/+", "replace", address, kind, "replace", facts, lines=lines)
        case Archive() | Delete() if forgets_only(action):
            # archived or gone already: apply only drops the lockfile entry, as the summary's
            # "N to forget" says (the JSON keeps the action's type; its reason says so)
            lines = (_reason(action.reason), _remote(action.remote_id))
            return Block("-", "remove", address, kind, "forget", (FORGET_FACT,), lines=lines)
        case Archive():
            lines = (_reason(action.reason), _remote(action.remote_id))
            return Block("-", "remove", address, kind, "archive", lines=lines)
        case Delete():
            lines = (_reason(action.reason), _remote(action.remote_id))
            return Block("-", "remove", address, kind, "delete", ("(permanent)",), lines=lines)
        case Adopt():
            lines = (_reason(action.reason), *body_lines(action.body, full=full))
            what = "(tags it as ours)" if action.body else "(already tagged as ours)"
            facts = (printable(action.remote_id), what)
            return Block("=", "update", address, kind, "adopt", facts, lines=lines)
        case _:
            assert_never(action)


#: how a skill's new version reads, before its files: ``new version (1 file changed: a.py)``
SKILL_VERSION_VERB = "new version"


def _skill_version_block(action: Update) -> Block:
    """``~ skill.pdf-tools  new version (1 file changed: fill.py)``, a line per file (its
    path only: hashes are in the JSON, contents nowhere)."""
    lines = [_reason(action.reason), _remote(action.remote_id)]
    for c in action.changes:
        sign = {"add": "+", "remove": "-", "change": "~"}[c.op]
        lines.append(Line(printable(c.path), sign, tone=SIGN_TONE[sign]))
    words = printable(skill_version_words(action.changes))
    if action.moved_from is not None:  # renamed too: the headline says so, as for any kind
        shown = moved_address(action.moved_from, action.address)
        return Block("~", "update", shown, action.kind, "moved", (words,), lines=tuple(lines))
    return Block("~", "update", action.address, action.kind, words, lines=tuple(lines))


def _skill_create_block(action: Create, *, full: bool) -> Block:
    """``+ skill.pdf-tools  create  (3 files)``: the files it uploads, by path."""
    skill = action.target.skill
    paths = sorted(skill.files) if skill is not None else []
    shown = paths if full else paths[:MAX_DIFF_LINES]
    lines = [_reason(action.reason)]
    if skill is not None:
        lines.append(Line(f"slug: {printable(skill.slug)}", "+", tone="create"))
    if action.body.get("display_name"):
        lines.append(
            Line(f"display_name: {inline(action.body['display_name'])}", "+", tone="create")
        )
    lines += [Line(printable(p), "+", tone="create") for p in shown]
    if len(paths) > len(shown):
        more = f"{ELLIPSIS} {len(paths) - len(shown)} more files not shown"
        lines.append(Line(more, tone="muted"))
    n = len(paths)
    facts = (f"({n} file{'s' if n != 1 else ''})",)
    return Block("+", "create", action.address, action.kind, "create", facts, lines=tuple(lines))


def moved_address(old: str, new: str) -> str:
    """How a move names its resource: ``agent.coder -> agent.engineer``."""
    return f"{old} -> {new}"


def moved_record_block(action: NoOp) -> Block:
    """A move whose remote half is done (the object carries the new address already): apply
    only moves the lockfile entry. ``~ agent.coder -> agent.engineer  moved  (lockfile only)``."""
    assert action.moved_from is not None
    shown = moved_address(action.moved_from, action.address)
    lines = (_reason(action.reason), _remote(action.remote_id))
    return Block("~", "update", shown, action.kind, "moved", ("(lockfile only)",), lines=lines)


def pinned_update_block(action: Update, move: PinMove, *, width: int, full: bool) -> Block:
    """The update block of a deployment whose pin moves: shown (and counted) once.

    ``~ deployment.nightly  update  pin agent.reviewer@3 -> @4  (follows latest)``; the
    ``agent.version`` field change says the same and is left out.
    """
    rest = tuple(c for c in action.changes if c.path != "agent.version")
    block = action_block(action.model_copy(update={"changes": rest}), width=width, full=full)
    moved, how = pin_facts(move)
    other = next((c.old for c in rest if c.path == "agent.id" and isinstance(c.old, str)), None)
    if other is not None and move.old is not None and move.new is not None:
        # the deployment runs another agent object (pointed at it in the console, or the
        # agent was created again): "@1 -> @1" would read as a no-op
        old = f"{other}@{move.old}"
        moved = f"{move.agent}@{move.new}{gate_words(move)}, put back from agent {old}"
    return replace(block, facts=(*block.facts, f"pin {moved}", how))


def exposure(impact: Impact) -> Exposure:
    """``follows latest: affected by this apply`` or ``pinned to version 3: not affected yet``."""
    if impact.follows_latest:
        return Exposure(impact.deployment, "follows latest: affected by this apply", True)
    pinned = (
        "pinned" if impact.pinned_version is None else f"pinned to version {impact.pinned_version}"
    )
    return Exposure(impact.deployment, f"{pinned}: not affected yet", False)


def _radius(plan: Plan, radius: BlastRadius) -> Radius:
    action = plan.action(radius.address)
    verb: str = action.type if action is not None and action.type != "noop" else ""
    if action is not None and action.kind == "skill" and action.type == "update":
        verb = SKILL_VERSION_VERB
    impacts = sorted(radius.deployments, key=lambda i: i.deployment)
    if action is not None and action.kind == "agent" and action.type == "update":
        return Radius(radius.address, verb, tuple(_agent_exposure(plan, i) for i in impacts))
    if action is not None and action.kind in ("environment", "vault", "memory_store"):
        # a deployment names these directly: no version to follow, so no 'follows latest'
        used = tuple(
            Exposure(i.deployment, "uses it: affected by this apply", True) for i in impacts
        )
        return Radius(radius.address, verb, used)
    return Radius(radius.address, verb, tuple(exposure(i) for i in impacts))


def _agent_exposure(plan: Plan, impact: Impact) -> Exposure:
    """A deployment of an updated agent, as this plan's pin moves leave it: a pinned one the
    plan moves to the new version is affected, and one that follows latest is not when the
    plan does not move it (left out by ``--target``, or its candidate held)."""
    moved = any(m.deployment == impact.deployment and m.old != m.new for m in plan.pin_moves)
    if moved and not impact.follows_latest and impact.pinned_version is not None:
        phrase = f"pinned to version {impact.pinned_version}: moved to it by this apply"
        return Exposure(impact.deployment, phrase, True)
    if impact.follows_latest and not moved:
        if impact.deployment in plan.untargeted:
            why = " (--target)"
        elif any(h.deployment == impact.deployment for h in plan.held):
            why = " (its candidate is held)"
        else:
            why = ""
        return Exposure(impact.deployment, f"follows latest: not moved by this apply{why}", False)
    return exposure(impact)


def _note(note: Note) -> LeftAlone:
    rid = None if note.remote_id is None else printable(note.remote_id)
    return LeftAlone(note.address, rid, printable(note.message))


TWINS_HEADING = "Twins (two live objects claim one address):"
CONFLICTS_HEADING = "Not ours (never changed or archived):"


def _twin(twin: Twin) -> LeftAlone:
    return LeftAlone(twin.address, printable(twin.remote_id), printable(twin.message))


def _conflict(conflict: Conflict) -> LeftAlone:
    return LeftAlone(conflict.address, printable(conflict.remote_id), printable(conflict.message))


def plan_outline(plan: Plan, *, width: int = 100, full: bool = False) -> Outline:
    """The plan as blocks sorted by address; long values shortened unless ``full``."""
    keyed: list[tuple[tuple[str, int, str], Block]] = []
    moves = {m.deployment: m for m in plan.pin_moves}
    merged: set[str] = set()
    for action in plan.actions:
        if isinstance(action, NoOp):
            if action.moved_from is not None and action.target is not None:
                keyed.append(((action.address, 0, ""), moved_record_block(action)))
            continue
        move = moves.get(action.address)
        if move is not None and isinstance(action, Update):
            block = pinned_update_block(action, move, width=width, full=full)
            merged.add(action.address)
        else:
            block = action_block(action, width=width, full=full)
        keyed.append(((action.address, 0, ""), block))
    for move in plan.pin_moves:
        if move.deployment not in merged:
            keyed.append(((move.deployment, 1, move.agent), pin_block(move)))
    blocks = tuple(b for _, b in sorted(keyed, key=lambda kb: kb[0]))
    legend = _plan_legend(blocks)
    unchanged = sum(
        1
        for a in plan.actions
        if isinstance(a, NoOp) and (a.moved_from is None or a.target is None)
    )
    title = f'Plan for project "{plan.project}"'
    if plan.targets:
        title += " (targeted: " + ", ".join(sorted(plan.targets)) + ")"
    return Outline(
        title=title,
        legend=legend,
        blocks=blocks,
        blast_radius=tuple(_radius(plan, r) for r in sorted(plan.blast_radius, key=_by_address)),
        notes=tuple(_note(n) for n in sorted(plan.notes, key=_by_address) if not _tidy(n)),
        tidy_notes=tuple(_note(n) for n in sorted(plan.notes, key=_by_address) if _tidy(n)),
        unchanged=unchanged,
        summary=str(plan.summary),
        empty_message=(
            None if blocks or plan.twins or plan.conflicts else no_changes_message(plan)
        ),
        twins=tuple(_twin(t) for t in plan.twins),
        conflicts=tuple(_conflict(c) for c in plan.conflicts),
        shortened=not full and any(_action_shortened(a) for a in plan.actions),
        untargeted_message=untargeted_message(plan),
        records_message=records_message(plan) if blocks or plan.twins or plan.conflicts else None,
        policy_warnings=tuple(_policy_warning(w) for w in plan.policy_warnings),
        held=held_items(plan),
        check_sessions=check_sessions_message(plan),
        skill_chains=tuple(chain_view(c) for c in plan.skill_chains),
    )


POLICY_WARNINGS_HEADING = "Policy warnings (advisory rules; apply is not blocked):"


def _policy_warning(warning: PolicyWarning) -> LeftAlone:
    """``agent.coder`` at ``manifests/agents.yaml:4:1``: the message, with its policy."""
    message = f"{warning.message} (policy {warning.policy}, {warning.rule})"
    return LeftAlone(printable(warning.address), printable(warning.location), printable(message))


def _no_drift_message(report: DriftReport) -> str:
    n = report.ignored_unmanaged
    if not report.warnings and n:
        # the resources left out were made outside git: the all-clear must not deny them
        return (
            f"No drift. The live system matches {report.compared_with}, apart from {n} "
            f"unmanaged resource{'' if n == 1 else 's'} left out (--ignore-unmanaged)."
        )
    if not report.warnings:
        # what drift compares: a manifest edit not applied yet is no drift (plan shows it)
        return (
            f"No drift. The live system matches {report.compared_with}: nothing was changed "
            "outside git."
        )
    # e.g. no lockfile: only what the ownership tags show was compared
    return (
        "No drift. Nothing differs in what could be compared; " + "; ".join(report.warnings) + "."
    )


def untargeted_message(plan: Plan) -> str | None:
    """``3 other resources have changes outside --target; ...``, or None."""
    n = len(plan.untargeted)
    if not n:
        return None
    return (
        f"{n} other resource{' has' if n == 1 else 's have'} changes outside --target; "
        "`reconciler plan` without --target shows them."
    )


def left_alone(plan: Plan) -> set[str]:
    """The addresses the plan left alone (the renderers list them under "Left alone"): a
    note of a ``moved_from`` done already leaves nothing alone (the object is where the
    manifest says; it is listed under ``NOTES_HEADING``), and two notes on one address are
    one resource."""
    return {n.address for n in plan.notes if not _tidy(n)}


#: the heading of the notes that leave nothing alone (``Outline.tidy_notes``)
NOTES_HEADING = "Notes:"


def _tidy(note: Note) -> bool:
    """A note of a ``moved_from`` done already: nothing is left alone, the line can go."""
    return note.message.startswith(NOTHING_TO_MOVE)


def no_changes_message(plan: Plan) -> str:
    """What a plan with nothing to change says, exactly: "matches the manifests" only when
    nothing was left alone, hidden by ``ignore_changes``, left out by ``--target`` or waits
    to be recorded in the lockfile."""
    alone = len(left_alone(plan))
    left = f"{alone} resource{' is' if alone == 1 else 's are'} left alone"
    if plan.targets and alone:
        first = f"Apply would change nothing of the targeted resources, but {left}, as shown below."
    elif plan.targets:
        first = "The targeted resources match the manifests."
    elif plan.held:
        n = len(plan.held)
        held = (
            f"{n} held candidate{' keeps its' if n == 1 else 's keep their'} "
            f"deployment{'' if n == 1 else 's'} where {'it is' if n == 1 else 'they are'}"
        )
        also = f", and {left}" if alone else ""
        first = f"Apply would change nothing: {held}{also}, as shown below."
    elif alone:
        first = f"Apply would change nothing, but {left}, as shown below."
    else:
        first = "The live system matches the manifests."
    records = _records(plan.records)
    if records is None:
        return f"No changes. {first}"
    return f"No changes. {first} Apply would only update the lockfile: {records}"


def records_message(plan: Plan) -> str | None:
    """Beside changes, what apply records in the lockfile too (resources found again by
    their ownership tags after a lost lockfile, entries out of date), or None."""
    # a move done already is a block of its own ("moved (lockfile only)"): not said twice
    shown = [a for a in plan.records if getattr(a, "moved_from", None) is None]
    records = _records(shown)
    return None if records is None else f"Apply also updates the lockfile: {records}"


def _records(records: Sequence[Action]) -> str | None:
    """``it records 2 resources (a and b, found again by their ownership tags).``"""
    n = len(records)
    if not n:
        return None
    noun = "resource" if n == 1 else "resources"
    found = [
        f"{a.address} was found again by its slug{printable(a.reason[len(FOUND_BY_SLUG) :])}"
        for a in records
        if a.kind == "skill" and a.reason.startswith(FOUND_BY_SLUG)
    ]
    again = [a for a in records if a.reason.startswith(("adopted", FOUND_BY_SLUG))]
    stale = [a for a in records if a not in again]
    why: list[str] = []
    if again:
        by = found_by(a.kind for a in again)
        by = by if len(again) > 1 else by.replace("their", "its")
        why.append(f"{_some(again)}, found again by {by}")
    if stale:
        entries = "entry is" if len(stale) == 1 else "entries are"
        why.append(f"{_some(stale)}, whose lockfile {entries} out of date")
    return f"it records {n} {noun} ({'; '.join(why)})." + "".join(f" {line}." for line in found)


def _some(actions: list[Action], shown: int = 3) -> str:
    """``a, b and c`` or ``a, b, c and 7 more``: the addresses of ``actions``, a few named."""
    names = [a.address for a in actions]
    if len(names) > shown:
        return f"{', '.join(names[:shown])} and {len(names) - shown} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _action_shortened(action: Action) -> bool:
    if isinstance(action, Create | Adopt):
        return any(is_shortened(v) for v in action.body.values())
    if isinstance(action, Update | Replace):
        return changes_shortened(action.changes)
    return False


def _by_address(item: BlastRadius | Note) -> str:
    return item.address


def _plan_legend(blocks: tuple[Block, ...]) -> tuple[tuple[str, str], ...]:
    verbs = {b.verb for b in blocks}
    legend: list[tuple[str, str]] = []
    if "create" in verbs:
        legend.append(("+", "create"))
    if verbs & {"update", "pin", "moved"} or any(v.startswith(SKILL_VERSION_VERB) for v in verbs):
        legend.append(("~", "update in place"))
    if "replace" in verbs:
        legend.append(("-/+", "replace: archive (credentials: delete) the old one, then create"))
    removals: list[str] = [v for v in ("archive", "delete", "forget") if v in verbs]
    if "forget" in removals:
        removals[-1] = "forget (drop the lockfile entry only; nothing is sent)"
    if removals:
        legend.append(("-", " or ".join(removals)))
    if "adopt" in verbs:
        legend.append(("=", "adopt: tag an existing object as ours and record it"))
    return tuple(legend)


def _join(names: tuple[str, ...]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- drift ---------------------------------------------------------------------------------

_DRIFT_SIGN: dict[str, tuple[str, Tone]] = {
    "changed": ("~", "drift"),
    "pin": ("~", "drift"),
    "paused": ("~", "drift"),
    "archived": ("!", "remove"),
    "deleted": ("!", "remove"),
    "unmanaged": ("?", "unmanaged"),
    "twin": ("=", "unmanaged"),
}

DRIFT_TYPES: tuple[str, ...] = (
    "changed",
    "archived",
    "deleted",
    "pin",
    "paused",
    "unmanaged",
    "twin",
)
#: drift types a summary names even when there are none
_ALWAYS_COUNTED = ("changed", "archived", "deleted", "pin", "unmanaged")


def counted_drift_types(report: DriftReport) -> tuple[str, ...]:
    """The drift types a summary names: all of the classic ones, ``paused`` and ``twin`` only
    when found."""
    return tuple(t for t in DRIFT_TYPES if t in _ALWAYS_COUNTED or report.counts.get(t))


def drift_identity(item: DriftItem) -> str:
    """The address, or for a resource no manifest owns ``agent "clicked" (agent_01...)``."""
    if item.address is not None:
        return item.address
    name = f' "{printable(item.remote_name)}"' if item.remote_name else ""
    rid = f" ({printable(item.remote_id)})" if item.remote_id else ""
    return f"{item.kind}{name}{rid}"


def drift_sort_key(item: DriftItem) -> tuple[str, int, str]:
    """Drift items in reading order: by identity, then drift type, then remote id."""
    return drift_identity(item), DRIFT_TYPES.index(item.type), item.remote_id or ""


def drift_block(item: DriftItem, *, width: int, full: bool = False) -> Block:
    """One drift item: what happened, the engine's message, and field diffs if any."""
    sign, tone = _DRIFT_SIGN[item.type]
    facts: tuple[str, ...] = ()
    match item.type:
        case "changed" if item.refused_replace:  # nobody changed it: plan's "Left alone"
            verb = "replace refused by protect"
        case "changed":
            verb = "changed out of band"
            when = [f"version {item.version}"] if item.version is not None else []
            when += [item.changed_at] if item.changed_at else []
            facts = ("(" + ", ".join(when) + ")",) if when else ()
        case "archived" | "deleted":
            verb = f"{item.type} behind our back"
        case "pin":
            verb = "pin drifted"
        case "paused":
            verb = "paused"
        case "unmanaged":
            verb = "unmanaged"
        case "twin":
            verb = "twin"
        case _:
            assert_never(item.type)
    lines: list[Line] = [Line(printable(item.message), tone="muted")]
    if item.remote_id and item.address is not None:
        lines.append(_remote(item.remote_id))
    lines.extend(
        change_lines(item.changes, old_label="expected", new_label="live", width=width, full=full)
    )
    return Block(sign, tone, drift_identity(item), item.kind, verb, facts, lines=tuple(lines))


def drift_summary(report: DriftReport) -> str:
    """``Drift: 1 changed, 1 archived, 0 deleted, 1 pin, 2 unmanaged.`` or ``No drift.``"""
    if not report.has_drift:
        return "No drift."
    counts = report.counts
    types = counted_drift_types(report)
    return "Drift: " + ", ".join(f"{counts.get(t, 0)} {t}" for t in types) + "."


def drift_outline(report: DriftReport, *, width: int = 100, full: bool = False) -> Outline:
    """The drift report as blocks sorted by identity, then drift type; see ``plan_outline``."""
    items = sorted(report.items, key=drift_sort_key)
    blocks = tuple(drift_block(i, width=width, full=full) for i in items)
    types = {i.type for i in items}
    legend: list[tuple[str, str]] = []
    if any(i.type in ("changed", "pin", "paused") and not i.refused_replace for i in items):
        legend.append(("~", "changed out of band"))
    if any(i.refused_replace for i in items):
        legend.append(("~", "differs from the manifest, which asks for a replace protect refuses"))
    if types & {"archived", "deleted"}:
        legend.append(("!", "archived or deleted behind our back"))
    if "unmanaged" in types:
        legend.append(("?", "unmanaged: live, but no manifest of this project owns it"))
    if "twin" in types:
        legend.append(("=", "twin: a second live object claims an address of this project"))
    return Outline(
        title=f'Drift for project "{report.project}"',
        legend=tuple(legend),
        blocks=blocks,
        blast_radius=(),
        notes=(),
        unchanged=0,
        summary=drift_summary(report),
        empty_message=None if blocks else _no_drift_message(report),
        shortened=not full and any(changes_shortened(i.changes) for i in items),
    )
