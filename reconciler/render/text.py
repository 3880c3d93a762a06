"""Plans, drift reports and apply results as terminal text, Terraform-like, colour optional.

Lays the outline (``outline.py``) out in columns and styles it with rich. With ``color=False``
the output is plain ASCII-safe text with no escape codes, identical on every machine; lines
never wrap (a log or a pipe keeps each line whole). Deciding *whether* to colour is
``should_color``; printing is the caller's job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from io import StringIO
from typing import TYPE_CHECKING

from reconciler.engine.model import CHANGE_TYPES, DriftReport, Plan
from reconciler.render.blocks import DETAIL_INDENT, Block, Line, Outline, Tone
from reconciler.render.outline import (
    CONFLICTS_HEADING,
    NOTES_HEADING,
    POLICY_WARNINGS_HEADING,
    TWINS_HEADING,
    drift_outline,
    plan_outline,
)
from reconciler.render.rollouts import HELD_HEADING, SKILL_CHAINS_HEADING
from reconciler.render.values import printable, visible

if TYPE_CHECKING:  # rich loads when coloured text is rendered, not by validate/fmt/schema
    from rich.text import Text

_STYLE: dict[Tone, str] = {
    "create": "green",
    "update": "yellow",
    "replace": "magenta",
    "remove": "red",
    "drift": "yellow",
    "unmanaged": "cyan",
    "muted": "dim",
    "risky": "bold red",
}

_LEGEND_STYLE = {
    "+": "green",
    "~": "yellow",
    "-/+": "magenta",
    "-": "red",
    "=": "yellow",
    "!": "red",
    "?": "cyan",
}

_NESTED_INDENT = 4

#: Past participles for the apply summary, in the order they are reported.
DONE = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "archive": "archived",
    "delete": "deleted",
}


def should_color(stream: object, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour output written to ``stream``.

    True only when ``stream`` is a terminal, ``NO_COLOR`` is unset or empty
    (https://no-color.org) and ``TERM`` is not ``dumb``.

    Args:
        stream: where the output goes, e.g. ``sys.stdout``; anything without a working
            ``isatty()`` counts as not a terminal.
        environ: the environment to consult; ``os.environ`` when None.
    """
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    if not callable(isatty):
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # closed or detached streams
        return False


#: Characters rich's console rewrites (tabs, control characters); text without them and
#: without colour is printed as it is.
_REWRITTEN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


#: What rich's ``Text`` drops from the strings it is given (``rich.control``'s
#: ``strip_control_codes``: BEL, BS, VT, FF, CR); ``_Styled`` drops the same.
_STRIPPED = dict.fromkeys((7, 8, 11, 12, 13))


class _Styled:
    """One line as rich's ``Text`` would hold it - a text with a style, then styled pieces
    appended - without building the ``Text`` unless colour is on (or rich must lay the line
    out): a plan of 1,000 creates is ~9,000 lines, and rich's ``Text`` cost a third of its
    rendering. ``rich()`` builds the very ``Text`` the same calls would have built.
    """

    __slots__ = ("parts", "style")

    def __init__(self, text: str = "", style: str = "") -> None:
        self.style = style
        #: the pieces as given; what ``Text`` drops is dropped when they are read (dropping
        #: characters from each piece or from the joined line is the same, and reading the
        #: line once costs one ``translate`` instead of one per piece)
        self.parts: list[tuple[str, str]] = [(text, "")]

    def append(self, text: str, style: str = "") -> None:
        self.parts.append((text, style))

    @property
    def raw(self) -> str:
        """The line as given, nothing dropped."""
        return "".join([text for text, _ in self.parts])

    @property
    def plain(self) -> str:
        return self.raw.translate(_STRIPPED)

    def rich(self) -> Text:
        from rich.text import Text

        (first, _), *rest = self.parts
        text = Text(first.translate(_STRIPPED), style=self.style)
        for piece, style in rest:
            text.append(piece.translate(_STRIPPED), style=style)
        return text


def _emit(lines: list[_Styled], *, color: bool, width: int) -> str:
    if not color:
        # Uncoloured, rich's console prints the plain text as is (soft wrap, no markup or
        # highlighting) but takes ~0.3 s for the plan of an apply of 1,000 agents.
        # Trailing blanks (an empty diff context line) only trouble editors.
        raw = "\n".join([line.raw.rstrip() for line in lines]) + "\n"
        if not _REWRITTEN.search(raw):
            return raw  # nothing to drop (``_STRIPPED`` is part of ``_REWRITTEN``)
        plain = "\n".join(line.plain.rstrip() for line in lines) + "\n"
        if not _REWRITTEN.search(plain):
            return plain
    return _rich_emit(lines, color=color, width=width)


def _rich_emit(lines: list[_Styled], *, color: bool, width: int) -> str:
    from rich.console import Console
    from rich.text import Text

    buffer = StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        color_system="standard" if color else None,
        width=width,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )
    texts = [line.rich() for line in lines]
    for text in texts:
        text.rstrip()  # trailing blanks (an empty diff context line) only trouble editors
    console.print(Text("\n").join(texts), soft_wrap=True)
    return buffer.getvalue()


def _style(tone: Tone | None) -> str:
    return "" if tone is None else _STYLE[tone]


def _headline(block: Block) -> _Styled:
    text = _Styled()
    text.append(f"{block.sign:>3}", style=_style(block.tone))
    text.append(" ")
    text.append(block.address, style="bold")
    text.append("  ")
    text.append(block.verb, style=_style(block.tone))
    for fact in block.facts:
        text.append("  " + fact)
    if block.labels:
        text.append("  [")
        for i, label in enumerate(block.labels):
            if i:
                text.append(", ")
            text.append(label, style=_STYLE["risky"] if label in block.risky else "")
        text.append("]")
    return text


def _detail(line: Line) -> _Styled:
    text = _Styled(" " * (DETAIL_INDENT + _NESTED_INDENT * line.depth))
    if line.glued:
        text.append(line.sign + line.text, style=_style(line.tone))
    elif line.sign:
        text.append(line.sign, style=_style(line.tone))
        text.append(" " + line.text)
    else:
        text.append(line.text, style=_style(line.tone))
    return text


def _legend(outline: Outline, intro: str) -> list[_Styled]:
    lines = [_Styled(intro)]
    for sign, meaning in outline.legend:
        line = _Styled()
        line.append(f"{sign:>3}", style=_LEGEND_STYLE.get(sign, ""))
        line.append(f" {meaning}")
        lines.append(line)
    return lines


def _blocks(outline: Outline) -> list[_Styled]:
    lines: list[_Styled] = []
    for block in outline.blocks:
        lines.append(_Styled(""))
        lines.append(_headline(block))
        lines.extend(_detail(line) for line in block.lines)
    return lines


def _attention(outline: Outline) -> list[_Styled]:
    """Conflicts and twins: what no apply fixes by itself (shown before everything else)."""
    lines: list[_Styled] = []
    for heading, items in ((CONFLICTS_HEADING, outline.conflicts), (TWINS_HEADING, outline.twins)):
        if not items:
            continue
        lines += [_Styled(""), _Styled(heading, style="bold red")]
        for item in items:
            rid = f" ({item.remote_id})" if item.remote_id else ""
            lines.append(_Styled(f"  {item.address}{rid}: {item.message}"))
    return lines


#: Said under a plan or drift report whose long values were cut short.
SHORTENED_HINT = "Long values are shortened (…); --full shows them whole."


def _id(remote_id: str | None) -> str:
    return f" ({remote_id})" if remote_id else ""


def _closing(outline: Outline) -> list[_Styled]:
    lines: list[_Styled] = []
    if outline.shortened:
        lines += [_Styled(""), _Styled(f"  {SHORTENED_HINT}", "dim")]
    if outline.unchanged and outline.blocks:
        noun = "resource is" if outline.unchanged == 1 else "resources are"
        lines += [_Styled(""), _Styled(f"  {outline.unchanged} unchanged {noun} not shown.", "dim")]
    if outline.skill_chains:
        lines += [_Styled(""), _Styled(SKILL_CHAINS_HEADING, style="bold")]
        for chain in outline.skill_chains:
            lines.append(_Styled(f"  {chain.skill}  {chain.words}"))
            for agent, pins in chain.agents:
                lines.append(_Styled(f"    ~ {agent}"))
                lines += [_Styled(f"      ~ {pin}") for pin in pins]
    if outline.blast_radius:
        lines += [_Styled(""), _Styled("Blast radius:", style="bold")]
        for radius in outline.blast_radius:
            what = f" ({radius.action})" if radius.action else ""
            n = len(radius.exposures)
            users = "no deployment." if n == 0 else f"{n} deployment{'s' if n > 1 else ''}:"
            lines.append(_Styled(f"  {radius.address}{what} is used by {users}"))
            pad = max((len(e.deployment) for e in radius.exposures), default=0)
            for e in radius.exposures:
                line = _Styled(f"    {e.deployment.ljust(pad)}  ")
                line.append(e.phrase, style="bold yellow" if e.affected_now else "dim")
                lines.append(line)
    listed = (
        (
            "Left alone:",
            "bold",
            [f"{n.address}{_id(n.remote_id)}: {n.message}" for n in outline.notes],
        ),
        (NOTES_HEADING, "bold", [f"{n.address}: {n.message}" for n in outline.tidy_notes]),
        (
            POLICY_WARNINGS_HEADING,
            "bold yellow",
            [f"{w.address} ({w.remote_id}): {w.message}" for w in outline.policy_warnings],
        ),
        (HELD_HEADING, "bold", [f"{h.address}: {h.message}" for h in outline.held]),
    )
    for heading, style, entries in listed:
        if entries:
            lines += [_Styled(""), _Styled(heading, style=style)]
            lines += [_Styled(f"  {entry}") for entry in entries]
    if outline.check_sessions:
        lines += [_Styled(""), _Styled(outline.check_sessions, style="bold yellow")]
    if outline.untargeted_message:
        lines += [_Styled(""), _Styled(outline.untargeted_message, style="bold yellow")]
    if outline.records_message:
        lines += [_Styled(""), _Styled(outline.records_message)]
    return lines


def plan_text(plan: Plan, *, color: bool = False, width: int = 100, full: bool = False) -> str:
    """The plan as terminal text; ends with the ``Plan: ...`` line and a newline.

    Example (no colour)::

        Plan for project "default". Actions are shown with these symbols:
          + create

          + agent.coder  create
              reason: not in the lockfile and no owned resource found
              + model: "claude-sonnet-4-6"

        Plan: 1 to create, 0 to update, 0 to archive.

    Values longer than a line can hold and very long diffs are shortened unless ``full``.
    """
    outline = plan_outline(plan, width=width, full=full)
    if outline.empty_message is not None:
        return _emit([_Styled(outline.empty_message), *_closing(outline)], color=color, width=width)
    if outline.legend:
        lines = _legend(outline, f"{outline.title}. Actions are shown with these symbols:")
    else:
        lines = [_Styled(f"{outline.title}.")]
    lines += _blocks(outline) + _attention(outline) + _closing(outline)
    lines += [_Styled(""), _Styled(outline.summary, style="bold")]
    return _emit(lines, color=color, width=width)


def drift_text(
    report: DriftReport, *, color: bool = False, width: int = 100, full: bool = False
) -> str:
    """The drift report as terminal text; ends with the ``Drift: ...`` line and a newline."""
    outline = drift_outline(report, width=width, full=full)
    if outline.empty_message is not None:
        return _emit([_Styled(outline.empty_message)], color=color, width=width)
    lines = _legend(outline, f"{outline.title}. Drift is shown with these symbols:")
    lines += _blocks(outline)
    if outline.shortened:
        lines += [_Styled(""), _Styled(f"  {SHORTENED_HINT}", "dim")]
    lines += [_Styled(""), _Styled(outline.summary, style="bold")]
    return _emit(lines, color=color, width=width)


def render_apply_summary(
    counts: Mapping[str, int],
    failures: Mapping[str, str],
    *,
    recorded_in: str = "the lockfile",
    never_started: int = 0,
) -> str:
    """The last words of an apply, without a trailing newline; what the caller gives it is
    shown with bidi and invisible characters escaped (``values.visible``), and the failures'
    control characters too (``values.printable``).

    Args:
        counts: successful actions by type (``create``, ``update``, ``replace``, ``archive``,
            ``delete``, ``forget``: an archive or delete of an object archived or gone already;
            ``moved``: of those, how many moved an address (``moved_from``); other keys
            such as ``noop`` are ignored). ``replace``, ``delete``, ``forget`` and ``moved``
            are only mentioned when non-zero.
        failures: address -> why its action failed.
        recorded_in: where what was done is recorded (the state of ``--backend``).
        never_started: changes the apply never started because it stopped early (a first
            Ctrl-C): then it did not complete, ``Apply interrupted: 2 created, 0 updated,
            0 archived; 6 never started.``

    Returns:
        ``Apply complete: 2 created, 1 updated, 0 archived.`` or, when anything failed::

            Apply failed: 1 of 4 actions failed:
              agent.x: the agent changed since the plan (version 4, expected 3)
            Done before the failure and recorded in the lockfile: 2 created, 1 updated, ...
    """
    parts = []
    for key, done in DONE.items():
        n = counts.get(key, 0)
        if n or key not in ("replace", "delete"):
            parts.append(f"{n} {done}")
    if counts.get("forget"):  # an object archived or gone already: its entry forgotten
        parts.append(f"{counts['forget']} forgotten")
    if counts.get("moved"):  # of the above, those that moved an address, as plan says
        parts.append(f"{counts['moved']} moved")
    done_text = ", ".join(parts)
    if not failures and never_started:
        return f"Apply interrupted: {done_text}; {never_started} never started."
    if not failures:
        return f"Apply complete: {done_text}."
    total = sum(n for k, n in counts.items() if k in CHANGE_TYPES or k == "forget")
    total += len(failures)
    lines = [f"Apply failed: {len(failures)} of {total} actions failed:"]
    for address in sorted(failures):
        reason = printable(failures[address].strip()).replace("\n", "\n    ")
        lines.append(f"  {printable(address)}: {reason}")
    lines.append(f"Done and recorded in {visible(recorded_in)}: {done_text}.")
    return "\n".join(lines)
