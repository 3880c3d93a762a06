"""The local provider's agent: what it answers, and how it grades an outcome.

No model runs locally, so the agent is a pure function of the agent version a session runs
(its snapshot) and of what it is sent (the contract: DESIGN.md, "The local provider's
agent"; the user's view: docs/runtime.md):

* the answer to a text is ``echo: <text>``, unless the snapshot's system prompt has a line
  starting ``local-reply:``: the rest of that line (trimmed) is the answer, with ``{text}``
  standing for the text;
* an outcome (``user.define_outcome``) is worked on by answering its ``description`` the same
  way, then graded in one evaluation cycle: ``satisfied`` when that answer contains every
  phrase the rubric (a file rubric: its file's text) puts in double quotes (straight or
  curly), else ``needs_revision``. The
  agent cannot revise (the same version answers the same input the same way), so the cycle
  is the last one either way, and ``max_iterations`` is never reached.

So a check run against one agent version can pass and fail against the next: only the
system prompt's ``local-reply:`` line changed.
"""

from __future__ import annotations

import re
from typing import Any

REPLY_PREFIX = "local-reply:"
_QUOTED = re.compile(r'"([^"]+)"|\u201c([^\u201d]+)\u201d')


def reply(system: str | None, text: str) -> str:
    """The agent's answer to ``text`` under the system prompt ``system``.

    Example:
        >>> reply(None, "hi"), reply("Be brief.\\nlocal-reply: ok: {text}!", "hi")
        ('echo: hi', 'ok: hi!')
    """
    for line in (system or "").splitlines():
        if line.startswith(REPLY_PREFIX):
            return line[len(REPLY_PREFIX) :].strip().replace("{text}", text)
    return f"echo: {text}"


def rubric_phrases(rubric: dict[str, Any]) -> list[str]:
    """The phrases a text rubric puts in double quotes, in order (a file rubric is graded
    on its file's text: ``sessions`` resolves it first; unresolved it has none)."""
    content = rubric.get("content") if rubric.get("type") == "text" else None
    return [a or b for a, b in _QUOTED.findall(content or "")]


def grade(answer: str, rubric: dict[str, Any]) -> tuple[str, str]:
    """``(result, explanation)`` of one evaluation of ``answer`` against ``rubric``."""
    phrases = rubric_phrases(rubric)
    missing = [p for p in phrases if p not in answer]
    if missing:
        listed = ", ".join(f'"{p}"' for p in missing)
        return "needs_revision", f"the answer lacks {listed}"
    if not phrases:
        return "satisfied", "the rubric quotes no phrase, so any answer satisfies it"
    listed = ", ".join(f'"{p}"' for p in phrases)
    return "satisfied", f"the answer contains {listed}"
