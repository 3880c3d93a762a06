"""``reconciler run``: how a turn that does not end with ``end_turn`` ends the command.

The local agent always ends its turn with ``end_turn`` (no model runs), so a session error
cannot come from it: here the session is real (created by ``run`` on the embedded provider
after a real apply) and only the turn's events are replaced, as the real provider would send
them. The promise (issue #6, DESIGN.md's command table): exit 0 at ``session.status_idle``
with ``end_turn``, exit 1 on ``session.error``, saying why on stderr.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, make_workdir, ok

from reconciler.runtime import ManagedRuntime

SESSION_ERROR = {
    "type": "session.error",
    "id": "sevt_01error",
    "processed_at": "2026-12-06T00:00:00Z",
    "error": {"type": "unknown_error", "message": "the sandbox crashed"},
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


class _Turn:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        for event in self.events:
            yield event

    async def aclose(self) -> None:
        pass


def _turn_ends_with(monkeypatch: pytest.MonkeyPatch, last: dict[str, Any]) -> None:
    events = [{"type": "session.status_running", "id": "sevt_01running"}, last]
    monkeypatch.setattr(ManagedRuntime, "run_turn", lambda self, sid, message, **_: _Turn(events))


def test_a_session_error_exits_1_and_says_why(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("apply", "--auto-approve")
    _turn_ends_with(monkeypatch, SESSION_ERROR)

    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Session sesn_")
    assert result.stderr.endswith("Error: session error: the sandbox crashed\n")
    assert "Traceback" not in result.stdout + result.stderr

    as_json = cli("run", "coder", "-m", "hi", "--json")
    assert as_json.exit_code == 1
    assert [json.loads(line)["type"] for line in as_json.stdout.splitlines()] == [
        "session.status_running",
        "session.error",
    ]


def test_a_turn_that_stops_for_another_reason_exits_1(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("apply", "--auto-approve")
    _turn_ends_with(
        monkeypatch,
        {"type": "session.status_idle", "stop_reason": {"type": "retries_exhausted"}},
    )

    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 1
    assert result.stderr.endswith("Error: the agent stopped: retries_exhausted\n")


def test_end_turn_exits_0(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("hi")  # the local agent's answer


def test_a_rescheduled_session_is_shown_as_it_happens(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider moves a session to another sandbox with ``session.status_rescheduled``
    (the SDK's event; the session's *status* is ``rescheduling``): ``run`` matched
    ``session.status_rescheduling``, a name no provider sends, and showed nothing."""
    ok("apply", "--auto-approve")
    events = [
        {"type": "session.status_running", "id": "sevt_01running"},
        {"type": "session.status_rescheduled", "id": "sevt_01moved"},
        {"type": "session.status_running", "id": "sevt_01again"},
        {"type": "agent.message", "content": [{"type": "text", "text": "done"}]},
        {"type": "session.status_idle", "stop_reason": {"type": "end_turn"}},
    ]
    monkeypatch.setattr(ManagedRuntime, "run_turn", lambda self, sid, message, **_: _Turn(events))

    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 0, result.stderr
    assert "... running\n... rescheduling\n... running\n" in result.stderr
    assert result.stdout.endswith("done\n")


def test_what_the_provider_says_of_a_turns_end_never_drives_the_terminal(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply is escaped in text mode, but a session error's message and a stop reason
    (the provider's words, which may quote what the agent read) went to stderr as they
    were: ``Error: session error: ...`` could set the window title or clear the screen.
    They are escaped as every other ``Error:`` line is."""
    ok("apply", "--auto-approve")
    hostile = "crashed\x1b]0;owned\x07\x1b[2J\x9b31m"
    _turn_ends_with(
        monkeypatch, {**SESSION_ERROR, "error": {"type": "unknown_error", "message": hostile}}
    )
    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: session error: crashed\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\n"
    ), repr(result.stderr)

    _turn_ends_with(
        monkeypatch, {"type": "session.status_idle", "stop_reason": {"type": "odd\x1b[2J"}}
    )
    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr, repr(result.stderr)
    assert result.stderr.endswith("Error: the agent stopped: odd\\x1b[2J\n")


def test_half_a_surrogate_pair_in_an_event_is_shown_escaped_not_a_crash(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply holding half a surrogate pair (valid JSON, ``"\\ud83d"``: text cut in UTF-16
    units by whatever wrote it) ended ``run`` with "unexpected UnicodeEncodeError ... This is
    a bug in reconciler", in text mode and with ``--json``, and the rest of the turn unread.
    It is written as the escape ``\\ud83d``: in JSON, the one that reads back the same text."""
    ok("apply", "--auto-approve")
    reply = {"type": "agent.message", "content": [{"type": "text", "text": "cut \ud83d here"}]}
    end = {"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}
    events = [reply, end]
    monkeypatch.setattr(ManagedRuntime, "run_turn", lambda self, sid, message, **_: _Turn(events))

    text = cli("run", "coder", "-m", "hi")
    assert text.exit_code == 0, text.stderr
    assert text.stdout == "cut \\ud83d here\n"
    as_json = cli("run", "coder", "-m", "hi", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    first = as_json.stdout.splitlines()[0]
    assert "\\ud83d" in first
    assert json.loads(first) == reply
