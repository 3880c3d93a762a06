"""Plans and drift reports as GitHub-flavoured Markdown for a pull-request comment.

Summary table first, then a table of changes, the blast radius, what was left alone, and one
collapsed ``<details>`` section per action with a ``diff`` block. The whole comment stays within
GitHub's comment limit: sections are filled in order of importance and whatever does not fit
is replaced by a note saying how much was left out and how to see all of it. Content comes
from the outline (``outline.py``); this module only lays it out and escapes it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from reconciler.engine.model import DriftReport, Plan
from reconciler.render.blocks import Block, LeftAlone, Line, Outline
from reconciler.render.outline import (
    CONFLICTS_HEADING,
    NOTES_HEADING,
    POLICY_WARNINGS_HEADING,
    TWINS_HEADING,
    counted_drift_types,
    drift_outline,
    plan_outline,
)
from reconciler.render.rollouts import HELD_HEADING, SKILL_CHAINS_HEADING
from reconciler.render.values import ELLIPSIS, truncate

#: GitHub's maximum comment body, in characters.
GITHUB_COMMENT_LIMIT = 65_536

#: Room kept for each section's "... omitted" note.
_NOTE_RESERVE = 300

#: Longest line inside a diff block, and longest diff block of one action (a fraction of the limit).
_MAX_LINE_CHARS = 1_000
_DETAIL_SHARE = 8

_SEE_PLAN = "run `reconciler plan --full` for the full plan"
_SEE_DRIFT = "run `reconciler drift --full` for the full report"

#: The ``limit`` of ``full`` output: larger than any plan.
_UNLIMITED = 1 << 62

_DIFF_SIGN = {"+": "+", "-": "-", "~": "!", " ": " ", "": " "}


@dataclass
class _Section:
    """A run of items (table rows, list entries, details) that may be cut to fit."""

    heading: str
    prefix: str
    items: list[str]
    what: str
    #: most of the limit this section may take
    share: float
    kept: int = 0


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


#: What would make user-controlled text (a file name, a message quoting one) a link, an image,
#: emphasis or an autolink: ``]`` only where a link's target follows (``[skills]`` stays as
#: it is: a bare bracket links nowhere without a definition, which needs a line of its own),
#: ``_`` only where it can open or close emphasis (not inside snake_case words), ``www.`` and
#: ``://`` where GitHub would autolink.
_MARKUP = re.compile(
    r"[\\*~]|\](?=[(\[])|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|(?<=www)\.|:(?=//)", re.I
)

#: A code span (a command the message quotes): shown as it is, its markup inert already.
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")


def _text(text: str, entities: bool = False) -> str:
    """``text`` as Markdown text (HTML-escaped, markup backslash-escaped outside code spans)
    or, with ``entities``, for raw HTML such as ``<summary>`` (markup as character references:
    GitHub may still read Markdown there, and a backslash would show)."""
    escaped = html.escape(text, quote=entities)
    if entities:
        return _MARKUP.sub(lambda m: f"&#{ord(m.group())};", escaped)
    out, at = [], 0
    for span in _CODE_SPAN.finditer(escaped):
        out += [_MARKUP.sub(r"\\\g<0>", escaped[at : span.start()]), span.group()]
        at = span.end()
    return "".join([*out, _MARKUP.sub(r"\\\g<0>", escaped[at:])])


def _code(text: str) -> str:
    """Inline code that survives backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _fence(lines: list[str]) -> tuple[str, str]:
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return ticks + "diff", ticks


def _diff_line(line: Line, full: bool = False) -> str:
    text = line.text if full else truncate(line.text, _MAX_LINE_CHARS)
    return f"{_DIFF_SIGN[line.sign]} {'    ' * line.depth}{text}".rstrip()


def _details(block: Block, max_chars: int, full: bool = False) -> str:
    summary = f"{block.address}: {block.verb}"
    if block.facts:
        summary += " " + " ".join(f if f.startswith("(") else f"({f})" for f in block.facts)
    if block.labels:
        summary += " [" + ", ".join(block.labels) + "]"
    summary = _text(summary, entities=True)
    lines: list[str] = []
    size = 0
    for i, line in enumerate(block.lines):
        rendered = _diff_line(line, full)
        if size + len(rendered) + 1 > max_chars:
            lines.append(f"  {ELLIPSIS} {len(block.lines) - i} more lines not shown")
            break
        lines.append(rendered)
        size += len(rendered) + 1
    opening, closing = _fence(lines)
    body = "\n".join([opening, *lines, closing])
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>\n\n"


def _row(block: Block) -> str:
    what = " ".join([block.verb, *block.facts])
    if block.labels:
        what += " [" + ", ".join(block.labels) + "]"
    what = _text(what)
    cells = (_code(block.sign), _code(block.address), _text(block.kind))
    what = what.replace("|", "\\|").replace("\n", " ")  # escaped already: no \\ doubled
    return "| " + " | ".join(_cell(c) for c in cells) + f" | {what} |\n"


def _table(header: tuple[str, ...], values: tuple[int, ...]) -> str:
    return (
        "| " + " | ".join(header) + " |\n"
        "|" + "---:|" * len(header) + "\n"
        "| " + " | ".join(str(v) for v in values) + " |\n\n"
    )


def _fit(head: str, display: list[_Section], priority: list[_Section], limit: int, see: str) -> str:
    """Keep as many items of each section as fit, in ``priority`` order; lay out in ``display``."""
    budget = limit - len(head) - _NOTE_RESERVE * len(display)
    for section in priority:
        if not section.items:
            continue
        cap = min(budget, int(section.share * limit))
        used = len(section.heading) + len(section.prefix)
        for item in section.items:
            if used + len(item) > cap:
                break
            used += len(item)
            section.kept += 1
        budget -= used
    chunks = [head.rstrip("\n")]
    for section in display:
        if not section.items:
            continue
        chunk = section.heading
        if section.kept:
            chunk += section.prefix + "".join(section.items[: section.kept])
        omitted = len(section.items) - section.kept
        if omitted:
            note = (
                f"{ELLIPSIS} {omitted} more {section.what} omitted "
                f"(output truncated to fit a GitHub comment); {see}."
            )
            chunk = chunk.rstrip("\n") + "\n\n" + note
        chunks.append(chunk.rstrip("\n"))
    out = "\n\n".join(chunks) + "\n"
    if len(out) > limit:  # only when the head alone is too large: cut it hard
        note = f"\n\n{ELLIPSIS} output truncated to fit a GitHub comment.\n"
        out = out[: limit - len(note)] + note
    return out


def _chain_item(text: str) -> str:
    """``agent.coder  version 1 -> 2`` as Markdown: the address as code, the rest as text."""
    address, _, rest = text.partition("  ")
    return f"{_code(address)} {_text(rest)}"


def _sections(outline: Outline, limit: int, noun: str, full: bool = False) -> list[_Section]:
    rows = [_row(b) for b in outline.blocks]
    max_detail = limit if full else limit // _DETAIL_SHARE
    details = [_details(b, max_detail, full) for b in outline.blocks if b.lines]
    blast: list[str] = []
    for radius in outline.blast_radius:
        what = f" ({radius.action})" if radius.action else ""
        if not radius.exposures:
            blast.append(f"- {_code(radius.address)}{what} is used by no deployment.\n")
            continue
        entry = f"- {_code(radius.address)}{what} is used by:\n"
        for e in radius.exposures:
            phrase = f"**{e.phrase}**" if e.affected_now else e.phrase
            entry += f"  - {_code(e.deployment)}: {phrase}\n"
        blast.append(entry)
    notes = [
        f"- {_code(n.address)}"
        + (f" ({_code(n.remote_id)})" if n.remote_id else "")
        + f": {_text(n.message)}\n"
        for n in outline.notes
    ]
    chains = [
        f"- {_code(c.skill)} {_text(c.words)}\n"
        + "".join(
            f"  - {_chain_item(a)}\n" + "".join(f"    - {_chain_item(p)}\n" for p in pins)
            for a, pins in c.agents
        )
        for c in outline.skill_chains
    ]
    table_head = "| | Address | Kind | What |\n|:-:|---|---|---|\n"

    def listed(items: tuple[LeftAlone, ...]) -> list[str]:
        return [
            f"- {_code(n.address)}"
            + (f" ({_code(n.remote_id)})" if n.remote_id else "")
            + f": {_text(n.message)}\n"
            for n in items
        ]

    return [
        _Section(
            f"#### {CONFLICTS_HEADING.rstrip(':')}\n\n",
            "",
            listed(outline.conflicts),
            "conflicts",
            0.2,
        ),
        _Section(f"#### {TWINS_HEADING.rstrip(':')}\n\n", "", listed(outline.twins), "twins", 0.2),
        _Section("#### Changes\n\n", table_head, rows, noun, 0.5),
        _Section("#### Blast radius\n\n", "", blast, "blast radius entries", 0.25),
        _Section("#### Left alone\n\n", "", notes, "left-alone resources", 0.15),
        _Section(
            f"#### {HELD_HEADING.rstrip(':')}\n\n",
            "",
            listed(outline.held),
            "held candidates",
            0.15,
        ),
        _Section("#### Details\n\n", "", details, f"{noun} with details", 1.0),
        _Section(
            f"#### {POLICY_WARNINGS_HEADING.rstrip(':')}\n\n",
            "",
            [
                f"- {_code(w.address)} ({_code(w.remote_id or '')}): "
                f"{_text(w.message)}\n"
                for w in outline.policy_warnings
            ],
            "policy warnings",
            0.15,
        ),
        _Section(
            f"#### {SKILL_CHAINS_HEADING.split(' (')[0]}\n\n", "", chains, "skill rollouts", 0.2
        ),
        _Section(
            f"#### {NOTES_HEADING.rstrip(':')}\n\n", "", listed(outline.tidy_notes), "notes", 0.1
        ),
    ]


def plan_markdown(
    plan: Plan, *, width: int = 100, limit: int = GITHUB_COMMENT_LIMIT, full: bool = False
) -> str:
    """The plan as a PR comment of at most ``limit`` characters, ending with a newline.

    With ``full`` nothing is shortened or left out, whatever the length (for a file or a
    wiki page rather than a comment).
    """
    if full:
        limit = _UNLIMITED
    outline = plan_outline(plan, width=width, full=full)
    title = f"### Reconciler plan for project {_code(plan.project)}\n\n"
    if plan.targets:
        title += "Targeted: " + ", ".join(_code(t) for t in sorted(plan.targets)) + "\n\n"
    if outline.untargeted_message:
        title += f"**Not targeted:** {_text(outline.untargeted_message)}\n\n"
    if outline.records_message:
        title += f"**Lockfile:** {_text(outline.records_message)}\n\n"
    sections = _sections(outline, limit, "actions", full)
    conflicts, twins, changes, blast, notes, held, details, policy, chains, tidy = sections
    if outline.empty_message is not None:
        head = title + f"**No changes.** {outline.empty_message.removeprefix('No changes. ')}\n\n"
        return _fit(
            head, [notes, tidy, held, policy], [policy, held, notes, tidy], limit, _SEE_PLAN
        )
    s = plan.summary
    shown = {
        "Create": s.create,
        "Update": s.update,
        "Replace": s.replace,
        "Archive": s.archive - s.forgets.count("archive"),
        "Delete": s.delete - s.forgets.count("delete"),
    }
    if s.forgets:  # entries of objects archived or gone already, as the summary line says
        shown["Forget"] = len(s.forgets)
    shown["Unchanged"] = s.noop
    head = title + _table(tuple(shown), tuple(shown.values()))
    head += f"**Plan:** {outline.summary.removeprefix('Plan: ')}\n\n"
    if outline.check_sessions:
        head += f"**{_text(outline.check_sessions)}**\n\n"
    if outline.shortened:
        head += "_Long values are shortened; `reconciler plan --full` shows them whole._\n\n"
    display = [conflicts, twins, changes, chains, blast, notes, tidy, held, policy, details]
    priority = [conflicts, twins, policy, held, chains, blast, notes, tidy, changes, details]
    return _fit(head, display, priority, limit, _SEE_PLAN)


def drift_markdown(
    report: DriftReport, *, width: int = 100, limit: int = GITHUB_COMMENT_LIMIT, full: bool = False
) -> str:
    """The drift report as a PR or issue comment of at most ``limit`` characters (any length
    with ``full``, as ``plan_markdown``)."""
    if full:
        limit = _UNLIMITED
    outline = drift_outline(report, width=width, full=full)
    title = f"### Reconciler drift for project {_code(report.project)}\n\n"
    if outline.empty_message is not None:
        return title + f"**No drift.** {outline.empty_message.removeprefix('No drift. ')}\n"
    counts = report.counts
    types = counted_drift_types(report)
    head = title + _table(
        tuple(t.capitalize() for t in types), tuple(counts.get(t, 0) for t in types)
    )
    head += f"**Drift:** {outline.summary.removeprefix('Drift: ')}\n\n"
    # what the report could not see (stderr has them too): a job summary shows only this
    head += "".join(f"> **Warning:** {_text(w)}.\n\n" for w in report.warnings)
    if outline.shortened:
        head += "_Long values are shortened; `reconciler drift --full` shows them whole._\n\n"
    _, _, changes, _, _, _, details, _, _, _ = _sections(outline, limit, "drift items", full)
    changes.heading = "#### Drift\n\n"
    return _fit(head, [changes, details], [changes, details], limit, _SEE_DRIFT)
