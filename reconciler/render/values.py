"""How one value reads in a plan: compact JSON, placeholders, secrets, truncation, diffs.

Every human-facing renderer (text and Markdown) writes values through this module, so a value
looks the same in a terminal and in a PR comment. It never decides what changed (the engine
does) and never touches JSON output, which carries values unabridged.
"""

from __future__ import annotations

import difflib
import json
import re
from json.encoder import encode_basestring
from typing import Any

from reconciler.engine.model import LITERAL

#: What a secret looks like wherever it would otherwise be shown.
SENSITIVE = "(sensitive)"

#: Longest compact value shown inline; longer ones end with an ellipsis.
MAX_VALUE_CHARS = 200

#: Longest unified diff (in lines) shown for one multi-line string.
MAX_DIFF_LINES = 400

ELLIPSIS = "…"

# C0/C1 control characters except tab and newline: a value read from the live system must not
# be able to move the cursor or recolour the reader's terminal. And the halves of surrogate
# pairs, which valid JSON may hold alone ("\ud83d") and no terminal's encoding can write.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


# Invisible and bidirectional format characters: U+202E (right-to-left override) and its kin
# reorder what a reviewer sees, so a PR comment could show a prompt other than the one applied;
# zero-width ones hide text. Shown as ``\uXXXX`` escapes (valid JSON escapes too). Emoji
# variation selectors (U+FE0x) are left alone: they change no meaning.
_INVISIBLE = re.compile(
    "[\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def _u_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # as JSON writes it: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def visible(text: str) -> str:
    r"""``text`` with bidi and invisible format characters escaped (U+202E -> ``\u202e``).

    Safe on a whole rendered plan (it leaves ANSI colour codes alone) and on JSON text (the
    escapes are JSON's own, so a parser reads the exact value back).
    """
    return _INVISIBLE.sub(_u_escape, text)


#: What JSON text may hold raw and a terminal obeys: DEL and the C1 controls (``\x9b`` is CSI
#: to a terminal that reads 8-bit controls); ``json.dumps`` escapes only the C0 ones. And a
#: lone half of a surrogate pair, which no encoding of the output can write.
_JSON_CONTROL = re.compile("[\x7f-\x9f\ud800-\udfff]")


def visible_json(text: str) -> str:
    r"""JSON ``text`` (as ``json.dumps(..., ensure_ascii=False)`` writes it) with DEL, the C1
    controls, lone surrogates and the bidi and invisible characters (``visible``) as
    ``\uXXXX`` escapes: still valid JSON that reads back the exact values, and nothing in it
    a terminal obeys."""
    return visible(_JSON_CONTROL.sub(_u_escape, text))


def printable(text: str) -> str:
    r"""``text`` with control characters written as escapes (``"\x1b"`` -> ``"\\x1b"``),
    and bidi and invisible characters too (``visible``)."""
    if text.isascii() and text.isprintable():  # most field names and reasons: nothing to do
        return text
    return visible(without_controls(text))


def without_controls(text: str) -> str:
    r"""``text`` with C0/C1 control characters but tab and newline written as escapes
    (``"\x1b"`` -> ``"\\x1b"``), and a lone half of a surrogate pair too (``"\\ud83d"``),
    and nothing else changed: for prose such as an agent's reply, whose zero-width joiners
    and bidi marks belong to its emoji and scripts."""
    return _CONTROL.sub(_escape_control, text)


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when anything was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


#: the planner's stand-in for a value only apply learns (``engine.planned.UNKNOWN``)
KNOWN_AFTER_APPLY = "(known after apply)"


def placeholder(value: Any) -> str | None:
    """The reading of an apply-time placeholder, or None when ``value`` is not one.

    Example: ``{"$pin": "agent.reviewer", "version": None}`` reads ``agent.reviewer@latest``,
    and a skill an agent follows, ``{"$skill": "skill.pdf-tools", "version": None}``,
    ``skill.pdf-tools@latest``.
    """
    if not isinstance(value, dict):
        return None
    if set(value) == {"$ref"}:
        return f"(ref {value['$ref']})"
    for key in ("$pin", "$skill"):
        if set(value) <= {key, "version"} and key in value:
            version = value.get("version")
            return f"{value[key]}@{'latest' if version is None else version}"
    if set(value) == {"$secret"}:
        return SENSITIVE
    return None


def compact(value: Any, *, placeholders: bool = True) -> str:
    """One-line, JSON-like reading of ``value`` with placeholders spelled out, not truncated.
    With ``placeholders=False`` (a field change: live and manifest values, in which an object
    such as a JSON Schema ``{"$ref": ...}`` is data) objects read as written.

    Example: ``compact({"id": {"$ref": "environment.py"}, "n": 2})`` is
    ``{"id": (ref environment.py), "n": 2}``.
    """
    if isinstance(value, str):
        if value == KNOWN_AFTER_APPLY:
            return value  # no string the provider will hold: shown bare, as Terraform does
        # json.dumps(value, ensure_ascii=False), control characters escaped, without an encoder
        # for each value (a plan of 1,000 creates reads ~30,000 strings)
        return encode_basestring(value)
    if placeholders and isinstance(value, dict) and set(value) == {LITERAL}:
        # the manifest's own value that looks like a placeholder: shown as written
        return compact(value[LITERAL], placeholders=False)
    marker = placeholder(value) if placeholders else None
    if marker is not None:
        return marker
    if isinstance(value, dict):
        items = (
            f"{encode_basestring(str(k))}: {compact(v, placeholders=placeholders)}"
            for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(compact(v, placeholders=placeholders) for v in value) + "]"
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(str(value), ensure_ascii=False)


def inline(
    value: Any, *, sensitive: bool = False, full: bool = False, placeholders: bool = True
) -> str:
    """``compact(value)`` truncated for one line (whole with ``full``); ``(sensitive)`` for a
    secret."""
    if sensitive:
        return SENSITIVE
    text = compact(value, placeholders=placeholders)
    return text if full else truncate(text)


def is_shortened(value: Any) -> bool:
    """True when ``value`` shown on its own (inline, or as the lines of a new multi-line
    string) is cut short unless asked in full."""
    if is_multiline(value):
        return len(str(value).splitlines()) > MAX_DIFF_LINES
    return len(compact(value)) > MAX_VALUE_CHARS


def is_multiline(value: Any) -> bool:
    """True for a string worth showing as lines (a system prompt), not as one quoted value."""
    return isinstance(value, str) and "\n" in value.strip("\n")


#: git's line after a diff line whose text has no newline at its end
NO_FINAL_NEWLINE = "\\ No newline at end of file"


def _ends_a_line(text: str) -> bool:
    """Whether ``text`` is empty or ends with a line break (as ``str.splitlines`` sees one)."""
    return not text or text.splitlines()[-1] != text.splitlines(keepends=True)[-1]


def unified_diff(
    old: Any, new: Any, *, old_label: str, new_label: str, full: bool = False
) -> list[str]:
    """Unified diff lines (no line ends) between two strings; None reads as empty.

    The result starts with the ``---``/``+++`` header and, unless ``full``, is cut to
    ``MAX_DIFF_LINES`` lines, the last of which then says how many were left out.
    """
    old_text = "" if old is None else str(old)
    new_text = "" if new is None else str(new)
    # lines keep their ends, so texts that differ only there (a final newline an editor
    # added, CRLF) differ in the diff too: a "\r" shows as an escape, and a last line
    # without its newline is followed by git's marker
    raw = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
        lineterm="",
        n=3,
    )
    # the marker only where the two texts differ in it (as every prompt without a final
    # newline would otherwise say so at each diff of its last lines)
    marked = _ends_a_line(old_text) != _ends_a_line(new_text)
    lines: list[str] = []
    for index, line in enumerate(raw):
        if index < 2 or line.startswith("@@"):  # the ---/+++ header, a hunk header
            lines.append(printable(line))
            continue
        lines.append(printable(line.removesuffix("\n")))
        if marked and not _ends_a_line(line):
            lines.append(NO_FINAL_NEWLINE)
    if len(lines) > MAX_DIFF_LINES and not full:
        omitted = len(lines) - MAX_DIFF_LINES + 1
        lines = lines[: MAX_DIFF_LINES - 1] + [f"{ELLIPSIS} {omitted} more diff lines not shown"]
    return lines
