"""The shapes a reader sees (lines, blocks, closing sections) and the lines of values.

``outline`` fills these shapes from a plan or a drift report and ``rollouts`` from pin moves
and skill chains; the formats (``text``, ``markdown``) lay them out. This module holds the
shapes themselves and how a field change or a create body reads as detail lines, and decides
nothing about which blocks exist; no styling, no escaping, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from reconciler.engine.model import FieldChange
from reconciler.render.values import (
    ELLIPSIS,
    MAX_DIFF_LINES,
    inline,
    is_multiline,
    is_shortened,
    printable,
    unified_diff,
)

#: The style a renderer gives a sign or a headline.
Tone = Literal["create", "update", "replace", "remove", "drift", "unmanaged", "muted", "risky"]

#: Labels (as read by ``label_name``) of changes to what an agent can do or reach.
RISKY_LABELS: frozenset[str] = frozenset({"tools", "MCP servers", "skills"})

#: The engine may label with field names or with readable names; both read the same.
_LABEL_NAMES = {
    "system": "system prompt",
    "mcp_servers": "MCP servers",
    "execution_identity": "execution identity",
}

#: Columns before a block's detail lines in text (``      ~ model.id: ...``).
DETAIL_INDENT = 6

SIGN_TONE: dict[str, Tone] = {"+": "create", "-": "remove", "~": "update"}


@dataclass(frozen=True)
class Line:
    """One detail line of a block.

    ``sign`` is ``+``, ``-``, ``~`` or ``""``; ``glued`` lines are unified-diff lines whose sign
    is the diff's own first column (``-old line``), so nothing goes between sign and text.
    ``depth`` counts nesting below the block's detail indent.
    """

    text: str
    sign: str = ""
    depth: int = 0
    glued: bool = False
    tone: Tone | None = None


@dataclass(frozen=True)
class Block:
    """One headline (``~ agent.reviewer  update  version 3 -> 4  [model]``) and its details."""

    sign: str
    tone: Tone
    address: str
    kind: str
    verb: str
    #: short facts after the verb, e.g. ``version 3 -> 4``
    facts: tuple[str, ...] = ()
    #: readable names of what changed, e.g. ``model``, ``system prompt``
    labels: tuple[str, ...] = ()
    risky: tuple[str, ...] = ()
    lines: tuple[Line, ...] = ()


@dataclass(frozen=True)
class Exposure:
    """One deployment in a blast radius: ``follows latest: affected by this apply``."""

    deployment: str
    phrase: str
    affected_now: bool


@dataclass(frozen=True)
class Radius:
    """The deployments that use one changed or archived resource."""

    address: str
    #: the action on ``address`` (``update``, ``archive``...), or ``""``
    action: str
    exposures: tuple[Exposure, ...]


@dataclass(frozen=True)
class LeftAlone:
    """A resource the plan did not touch on purpose (a ``Note``)."""

    address: str
    remote_id: str | None
    message: str


@dataclass(frozen=True)
class Chain:
    """A skill's new version and what it reaches, as lines: the skill, each agent that
    follows it (``agent.coder  version 3 -> 4  [skills]``) with the deployment pins that
    agent's new version moves (``deployment.nightly  pin agent.coder@3 -> @4 ...``)."""

    skill: str
    words: str
    agents: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Outline:
    """A plan or drift report as blocks and closing sections, ready for a format."""

    title: str
    legend: tuple[tuple[str, str], ...]
    blocks: tuple[Block, ...]
    blast_radius: tuple[Radius, ...]
    notes: tuple[LeftAlone, ...]
    unchanged: int
    summary: str
    empty_message: str | None
    #: second live objects claiming a managed address (``Twin``), as address, id, message
    twins: tuple[LeftAlone, ...] = ()
    #: lockfile entries whose object is not ours (``Conflict``)
    conflicts: tuple[LeftAlone, ...] = ()
    #: some value or diff was cut short (``full`` was not asked for)
    shortened: bool = False
    #: a targeted plan: how many resources outside the targets have changes too
    untargeted_message: str | None = None
    #: beside changes: what apply records in the lockfile too (``records_message``)
    records_message: str | None = None
    #: advisory policy rules broken: address, where it is written (as ``remote_id``), message
    policy_warnings: tuple[LeftAlone, ...] = ()
    #: candidates the lockfile holds (``HeldCandidate``): their pins stay
    held: tuple[LeftAlone, ...] = ()
    #: ``Apply would start 2 check sessions ...``: what the rollout checks cost, or None
    check_sessions: str | None = None
    #: each skill's new version, then the agents that follow it, then their deployments
    skill_chains: tuple[Chain, ...] = ()
    #: notes that leave nothing alone (a ``moved_from`` done already: the line can go),
    #: shown apart from ``notes`` so that the count of resources left alone matches them
    tidy_notes: tuple[LeftAlone, ...] = ()


# --- values and field changes --------------------------------------------------------------


def change_lines(
    changes: tuple[FieldChange, ...],
    *,
    old_label: str,
    new_label: str,
    width: int,
    full: bool = False,
) -> tuple[Line, ...]:
    """Detail lines of field changes: ``~ path: old -> new``; multi-line strings as a diff.
    Their values are live and manifest values, never placeholders: objects read as written.

    A change whose line would be wider than ``width`` shows old and new on lines of their own.
    Long values and long diffs are shortened unless ``full``.
    """
    lines: list[Line] = []
    for c in changes:
        sign = {"add": "+", "remove": "-", "change": "~"}[c.op]
        tone = SIGN_TONE[sign]
        path = printable(c.path)
        if not c.sensitive and (is_multiline(c.old) or is_multiline(c.new)):
            lines.append(Line(f"{path}:", sign, tone=tone))
            lines.extend(
                _diff_lines(c.old, c.new, old_label=old_label, new_label=new_label, full=full)
            )
        elif c.op == "add":
            new = inline(c.new, sensitive=c.sensitive, full=full, placeholders=False)
            lines.append(Line(f"{path}: {new}", sign, tone=tone))
        elif c.op == "remove":
            old = inline(c.old, sensitive=c.sensitive, full=full, placeholders=False)
            lines.append(Line(f"{path}: {old}", sign, tone=tone))
        else:
            old = inline(c.old, sensitive=c.sensitive, full=full, placeholders=False)
            new = inline(c.new, sensitive=c.sensitive, full=full, placeholders=False)
            text = f"{path}: {old} -> {new}"
            if DETAIL_INDENT + 2 + len(text) <= width:
                lines.append(Line(text, sign, tone=tone))
            else:
                lines.append(Line(f"{path}:", sign, tone=tone))
                lines.append(Line(old, "-", depth=1, tone="remove"))
                lines.append(Line(new, "+", depth=1, tone="create"))
    return tuple(lines)


def changes_shortened(changes: tuple[FieldChange, ...]) -> bool:
    """Whether ``change_lines`` without ``full`` cuts any of these changes short."""
    for c in changes:
        if c.sensitive:
            continue
        if is_multiline(c.old) or is_multiline(c.new):
            diff = unified_diff(c.old, c.new, old_label="", new_label="", full=True)
            if len(diff) > MAX_DIFF_LINES:
                return True
        elif is_shortened(c.old) or is_shortened(c.new):
            return True
    return False


def _diff_lines(
    old: Any, new: Any, *, old_label: str, new_label: str, full: bool = False
) -> list[Line]:
    out: list[Line] = []
    for text in unified_diff(old, new, old_label=old_label, new_label=new_label, full=full):
        if text.startswith(("---", "+++", "@@")):
            out.append(Line(text, depth=1, tone="muted"))
        elif text[:1] in ("+", "-", " "):
            sign = text[0].strip()
            out.append(Line(text[1:], sign or " ", depth=1, glued=True, tone=SIGN_TONE.get(sign)))
        else:
            out.append(Line(text, depth=1, tone="muted"))
    return out


def body_lines(body: dict[str, Any], *, full: bool = False) -> tuple[Line, ...]:
    """A create body's top-level fields, sorted: ``+ model: "claude-sonnet-4-6"``."""
    lines: list[Line] = []
    for key in sorted(body):
        value = body[key]
        if is_multiline(value):
            lines.append(Line(f"{printable(key)}:", "+", tone="create"))
            texts = str(value).splitlines()
            shown = texts if full else texts[:MAX_DIFF_LINES]
            for text in shown:
                lines.append(Line(printable(text), "+", depth=1, glued=True, tone="create"))
            if len(texts) > len(shown):
                more = f"{ELLIPSIS} {len(texts) - len(shown)} more lines not shown"
                lines.append(Line(more, depth=1, tone="muted"))
        else:
            lines.append(Line(f"{printable(key)}: {inline(value, full=full)}", "+", tone="create"))
    return tuple(lines)


def label_name(label: str) -> str:
    """``mcp_servers`` -> ``MCP servers``; readable and unknown labels read as themselves."""
    return _LABEL_NAMES.get(label, label.replace("_", " "))


def read_labels(labels: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Readable labels of an update and the risky ones among them.

    A lone ``metadata`` reads ``metadata only``; the engine's own ``risky`` marker is not a
    label of its own (it becomes the warning line and the colour of the risky labels).

    Example: ``read_labels(("model", "mcp_servers", "risky")) ==
    (("model", "MCP servers"), ("MCP servers",))``.
    """
    names = tuple(label_name(lb) for lb in labels if lb != "risky")
    if names == ("metadata",):
        names = ("metadata only",)
    return names, tuple(n for n in names if n in RISKY_LABELS)
