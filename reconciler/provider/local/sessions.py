"""The deterministic session data plane: the local agent's turns, an event hub and SSE framing.

No model runs. Sent events are processed synchronously inside the send request, in order
(what the agent answers and how it grades is ``agent``'s):

* every sent event is stored with a fresh ``sevt_`` id and ``processed_at`` and echoed back
  (a ``user.define_outcome`` gets its ``outc_`` id and ``max_iterations`` 3 when omitted);
* ``user.message``: the session goes ``running`` (``session.status_running``), the agent
  answers with one ``agent.message`` holding one text block per text block received (no
  text blocks: no agent.message), then ``session.status_idle`` with ``stop_reason
  {"type": "end_turn"}``; the status is back to ``idle`` when the request returns. Usage
  grows by the word count of the text in and out.
* ``user.define_outcome``: running, the agent's answer to the outcome's description, then
  ``span.outcome_evaluation_start`` / ``_ongoing`` / ``_end`` (iteration 0, the grade as
  ``result``), one entry in the session's ``outcome_evaluations``, then idle.
* ``user.interrupt``: ``session.status_idle`` with ``stop_reason end_turn``; status ``idle``.
* other user/system events are recorded only.

The SSE stream (``GET /v1/sessions/{id}/events/stream``) delivers events appended *after*
it opened (no history replay; list the events for that), as ``event: <type>`` /
``data: <json>`` frames, with an ``event: ping`` frame at open and every ``ping_interval``
seconds. Writers in this process wake streams at once through ``EventHub``; a short DB poll
covers writers in other processes. If the session is deleted, a ``session.deleted`` frame
ends the stream. A client disconnect cancels it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from . import agent
from .ids import new_id, now_ts
from .store import Store, dumps

POLL_INTERVAL = 0.5
PING_INTERVAL = 10.0


def _words(blocks: list[dict[str, Any]]) -> int:
    return sum(len(str(b.get("text", "")).split()) for b in blocks if b.get("type") == "text")


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": new_id("event"), "type": kind, "processed_at": now_ts(), **fields}


def record_input(sent: dict[str, Any]) -> dict[str, Any]:
    """A sent event as stored and echoed: the fields sent plus id and processed_at."""
    event = {"id": new_id("event"), **sent, "processed_at": now_ts()}
    if sent["type"] == "user.define_outcome":
        event["outcome_id"] = new_id("outcome")
        if event.get("max_iterations") is None:  # left out or null: the wire's default
            event["max_iterations"] = 3
    return event


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
    }


def _answer(
    store: Store, session: dict[str, Any], texts: list[str], words_in: int
) -> list[dict[str, Any]]:
    """The agent's turn: running, one agent.message (a text block per text; none without
    text), usage counted; the caller ends the turn with ``_idle``."""
    store.append_event(session["id"], _event("session.status_running"))
    session["status"] = "running"
    system = (session.get("agent") or {}).get("system")
    reply = [{"type": "text", "text": agent.reply(system, t)} for t in texts]
    if reply:
        store.append_event(session["id"], _event("agent.message", content=reply))
    usage = session.setdefault("usage", {})
    usage["output_tokens"] = usage.get("output_tokens", 0) + _words(reply)
    usage["input_tokens"] = usage.get("input_tokens", 0) + words_in
    return reply


def _idle(store: Store, session: dict[str, Any]) -> None:
    store.append_event(
        session["id"], _event("session.status_idle", stop_reason={"type": "end_turn"})
    )
    session["status"] = "idle"


def _rubric_text(store: Store, rubric: dict[str, Any]) -> dict[str, Any]:
    """``rubric`` as text: a file rubric is graded on the file's content, as the API resolves
    it ("File rubrics are currently resolved to their text content"). The send checked that
    the file exists (``check_rubric_files``)."""
    if rubric.get("type") != "file":
        return rubric
    stored = store.get_files(str(rubric.get("file_id")))
    content = stored[0][1].decode("utf-8", errors="replace") if stored else ""
    return {"type": "text", "content": content}


def _evaluate(store: Store, session: dict[str, Any], outcome: dict[str, Any]) -> None:
    """Work on an outcome and grade it (one cycle: see ``agent``), with the span events and
    the session's ``outcome_evaluations`` entry the SDK declares."""
    reply = _answer(store, session, [outcome["description"]], len(outcome["description"].split()))
    answer = "\n".join(block["text"] for block in reply)
    result, explanation = agent.grade(answer, _rubric_text(store, outcome["rubric"]))
    sid, oid = session["id"], outcome["outcome_id"]
    start = _event("span.outcome_evaluation_start", outcome_id=oid, iteration=0)
    store.append_event(sid, start)
    store.append_event(sid, _event("span.outcome_evaluation_ongoing", outcome_id=oid, iteration=0))
    end = _event(
        "span.outcome_evaluation_end",
        outcome_id=oid,
        iteration=0,
        outcome_evaluation_start_id=start["id"],
        result=result,
        explanation=explanation,
        usage=_usage(_words(reply), len(explanation.split())),
    )
    store.append_event(sid, end)
    session.setdefault("outcome_evaluations", []).append(
        {
            "type": "outcome_evaluation",
            "outcome_id": oid,
            "description": outcome["description"],
            "iteration": 0,
            "result": result,
            "explanation": explanation,
            # the local agent cannot revise: this cycle is the outcome's last either way
            "completed_at": end["processed_at"],
        }
    )
    _idle(store, session)


def run_events(
    store: Store, session: dict[str, Any], sent_events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Store ``sent_events`` and the local agent's reactions; mutate ``session`` accordingly.

    Must run inside a write transaction; the caller saves ``session`` afterwards.

    Returns:
        The stored input events (the send response's ``data``).
    """
    echoed = []
    for sent in sent_events:
        event = record_input(sent)
        store.append_event(session["id"], event)
        echoed.append(event)
        kind = sent["type"]
        if kind == "user.message":
            texts = [b["text"] for b in sent["content"] if b.get("type") == "text"]
            _answer(store, session, texts, _words(sent["content"]))
            _idle(store, session)
        elif kind == "user.define_outcome":
            _evaluate(store, session, event)
        elif kind == "user.interrupt":
            _idle(store, session)
    return echoed


class EventHub:
    """Wakes the SSE streams of a session when this process appends events to it.

    Streams may live on different event loops (an in-process client and a uvicorn thread),
    so waiters are (loop, asyncio.Event) pairs set through ``call_soon_threadsafe``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        #: bumped by ``close``; a stream ends when the generation it started in is over
        self.generation = 0

    def notify(self, session_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(session_id, ()))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed; its stream is gone
                pass

    def close(self) -> None:
        """End every stream open now (server shutdown); later streams are unaffected."""
        self.generation += 1
        with self._lock:
            ids = list(self._waiters)
        for session_id in ids:
            self.notify(session_id)

    def register(self, session_id: str) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(session_id, set()).add(waiter)
        return waiter

    def unregister(
        self, session_id: str, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]
    ) -> None:
        with self._lock:
            group = self._waiters.get(session_id)
            if group is not None:
                group.discard(waiter)
                if not group:
                    del self._waiters[session_id]


def sse_frame(event_type: str, data: str) -> bytes:
    return f"event: {event_type}\ndata: {data}\n\n".encode()


async def stream_events(
    store: Store,
    hub: EventHub,
    session_id: str,
    start_seq: int,
    *,
    ping_interval: float = PING_INTERVAL,
    poll_interval: float = POLL_INTERVAL,
) -> AsyncIterator[bytes]:
    """SSE frames for events of ``session_id`` with seq > ``start_seq``, until cancelled."""
    waiter = hub.register(session_id)
    loop = asyncio.get_running_loop()
    last = start_seq
    generation = hub.generation
    try:
        yield sse_frame("ping", dumps({"type": "ping"}))
        next_ping = loop.time() + ping_interval
        while hub.generation == generation:
            waiter[1].clear()
            rows = store.events_after(session_id, last)
            for seq, text in rows:
                last = seq
                yield sse_frame(json.loads(text)["type"], text)
            if not rows and store.get(session_id, "session") is None:
                gone = {"id": new_id("event"), "type": "session.deleted", "processed_at": now_ts()}
                yield sse_frame("session.deleted", dumps(gone))
                return
            timeout = min(poll_interval, max(0.0, next_ping - loop.time()))
            try:
                await asyncio.wait_for(waiter[1].wait(), timeout)
            except TimeoutError:
                pass
            if loop.time() >= next_ping:
                yield sse_frame("ping", dumps({"type": "ping"}))
                next_ping = loop.time() + ping_interval
    finally:
        hub.unregister(session_id, waiter)
