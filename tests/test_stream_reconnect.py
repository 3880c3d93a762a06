"""A turn whose event stream is cut before the turn ended reconnects by itself.

A dropped connection, a proxy's idle timeout or an error frame on the stream used to end
``run_turn`` with ``ProviderConnectionError`` / ``ServerError`` and ``reconciler run`` with
exit 1 ("continue it with --session"). Now the turn reopens its stream (a few attempts, with
backoff), first delivers from the session's event list what it missed since the last event it
read, then goes on live: no duplicate, no lost event. ``run`` says so in one line on stderr.

The cut is real: an ASGI middleware in front of the local provider, served over loopback TCP,
ends the session's event stream after a given number of event frames (the connection
dropped mid-body, ended cleanly as a proxy's idle timeout does, or an ``error`` frame).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from support.gitops import cli, make_workdir

from reconciler.errors import (
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from reconciler.provider.local import BackgroundServer, create_app
from reconciler.provider.local.faults import InjectedDisconnect
from reconciler.provider.local.ids import new_id, now_ts
from reconciler.runtime import ManagedRuntime

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.tcp

TURN = ["user.message", "session.status_running", "agent.message", "session.status_idle"]
OVERLOADED = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
    b'"message":"Overloaded"}}\n\n'
)


class _Cut(Exception):
    pass


class StreamCutter:
    """ASGI middleware: cuts the first ``streams`` session event streams it serves right
    after ``after`` event frames (pings do not count); later streams pass untouched, or with
    ``refuse`` get a 503 that says not to retry (``x-should-retry: false``; ``refuse=429``: a
    429 with ``retry-after`` that says so too, a rate limit outlasting the client's retries),
    or with ``delete`` find their session deleted by a real ``DELETE`` first, or with ``hold``
    wait that many seconds before the provider answers them. ``stream_only``:
    an event sent just before the cut that the session's event list does not hold.

    ``how``: ``drop`` (the connection closes mid-body), ``end`` (the body ends cleanly, as a
    proxy's idle timeout ends it) or ``error`` (an ``overloaded_error`` frame, then the end).
    ``on_open(n, opened)`` runs for the n-th stream (from 1): ``opened`` False before the
    provider answers it, True once its first frame went out.
    """

    def __init__(
        self,
        app: Any,
        *,
        after: int,
        streams: int = 1,
        how: str = "drop",
        refuse: bool | int = False,
        delete: bool = False,
        hold: float = 0.0,
        stream_only: dict[str, Any] | None = None,
        on_open: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.app = app
        self.after = after
        self.streams = streams
        self.how = how
        self.refuse = refuse
        self.delete = delete
        self.hold = hold
        self.stream_only = stream_only
        self.on_open = on_open
        self.opened = 0
        #: set once a stream was cut
        self.cut = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.endswith("/events/stream"):
            await self.app(scope, receive, send)
            return
        self.opened += 1
        number = self.opened
        if self.on_open is not None:
            self.on_open(number, False)
        cut = number <= self.streams
        if not cut and self.hold:
            await asyncio.sleep(self.hold)
        if number == self.streams + 1 and self.delete:
            session = path.removesuffix("/events/stream")
            headers = {
                "x-api-key": "test",
                "anthropic-version": "2023-06-01",
                "anthropic-beta": "managed-agents-2026-04-01",
            }
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://local") as http:
                (await http.delete(session, headers=headers)).raise_for_status()
        if not cut and self.refuse:
            status = 503 if self.refuse is True else int(self.refuse)
            kind = b"rate_limit_error" if status == 429 else b"api_error"
            body = b'{"type":"error","error":{"type":"' + kind + b'","message":"unavailable"}}'
            headers = [(b"content-type", b"application/json"), (b"x-should-retry", b"false")]
            if status == 429:
                headers.append((b"retry-after", b"1"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        delivered = 0
        first = True

        async def forward(message: Any) -> None:
            nonlocal delivered, first
            body = message.get("body", b"") if message["type"] == "http.response.body" else b""
            event = body.startswith(b"event: ") and not body.startswith(b"event: ping")
            if cut and event and delivered >= self.after:
                raise _Cut
            await send(message)
            if body and first:
                first = False
                if self.on_open is not None:
                    self.on_open(number, True)
            if event:
                delivered += 1
                if cut and delivered == self.after:
                    raise _Cut

        try:
            await self.app(scope, receive, forward)
        except _Cut:
            self.cut.set()
            if self.stream_only is not None:
                frame = (
                    f"event: {self.stream_only['type']}\ndata: {json.dumps(self.stream_only)}\n\n"
                )
                await send(
                    {"type": "http.response.body", "body": frame.encode(), "more_body": True}
                )
            if self.how == "drop":
                raise InjectedDisconnect("the test cut the event stream") from None
            if self.how == "error":
                await send({"type": "http.response.body", "body": OVERLOADED, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def _turn(
    cutter_of: Callable[[Any], StreamCutter],
    db: Path,
    run: Callable[[ManagedRuntime, str], Awaitable[Any]],
) -> tuple[Any, StreamCutter]:
    cutter = cutter_of(create_app(db))
    with BackgroundServer(cutter) as server:
        async with ManagedRuntime(provider_url=server.url, backoff_base=0.05) as rt:
            agent_id = await rt.create_agent()
            env_id = await rt.create_environment()
            session_id = await rt.create_session(agent_id, env_id)
            return await run(rt, session_id), cutter


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("after", "how"),
    [(0, "drop"), (1, "drop"), (2, "drop"), (3, "drop"), (2, "end"), (2, "error")],
)
async def test_a_turn_whose_stream_is_cut_reconnects_and_misses_nothing(
    tmp_path: Path, after: int, how: str
) -> None:
    async def run(rt: ManagedRuntime, session_id: str) -> Any:
        return await rt.run_turn(session_id, "hello").collect()

    events, cutter = await _turn(
        lambda app: StreamCutter(app, after=after, how=how), tmp_path / "p.db", run
    )

    assert _types(events) == TURN
    assert len({e["id"] for e in events}) == len(events)
    assert events[2]["content"][0]["text"] == "echo: hello"
    assert cutter.opened == 2


@pytest.mark.anyio
async def test_a_cut_after_the_turns_last_event_does_not_reconnect(tmp_path: Path) -> None:
    async def run(rt: ManagedRuntime, session_id: str) -> Any:
        return await rt.run_turn(session_id, "hello").collect()

    events, cutter = await _turn(
        lambda app: StreamCutter(app, after=len(TURN)), tmp_path / "p.db", run
    )

    assert _types(events) == TURN
    assert cutter.opened == 1


@pytest.mark.anyio
async def test_after_the_replay_the_reconnected_turn_goes_on_live(tmp_path: Path) -> None:
    """What happened while the stream was down comes from the events list, what happens
    after it reopened from the live stream: each once, in order."""
    db = tmp_path / "p.db"
    app = create_app(db)
    provider = app.state.provider
    box: dict[str, str] = {}

    def agent_event(kind: str, **fields: Any) -> None:
        event = {"id": new_id("event"), "type": kind, "processed_at": now_ts(), **fields}
        provider.store.append_event(box["session"], event)
        provider.hub.notify(box["session"])

    def on_open(number: int, opened: bool) -> None:
        if number != 2:
            return
        if not opened:  # while the stream was down
            text = [{"type": "text", "text": "missed"}]
            agent_event("agent.message", content=text)
        else:  # once it is open again
            agent_event("agent.message", content=[{"type": "text", "text": "live"}])
            agent_event("session.status_idle", stop_reason={"type": "end_turn"})

    async def run(rt: ManagedRuntime, session_id: str) -> Any:
        box["session"] = session_id
        # the local agent does not answer a system message: the test plays the agent
        note = {"type": "system.message", "content": [{"type": "text", "text": "note"}]}
        return await rt.run_turn(session_id, note).collect()

    events, cutter = await _turn(lambda _: StreamCutter(app, after=1, on_open=on_open), db, run)

    assert _types(events) == [
        "system.message",
        "agent.message",
        "agent.message",
        "session.status_idle",
    ]
    assert [e["content"][0]["text"] for e in events[1:3]] == ["missed", "live"]
    assert len({e["id"] for e in events}) == 4
    assert cutter.opened == 2


@pytest.mark.anyio
async def test_a_stream_that_cannot_be_reopened_raises_as_before(tmp_path: Path) -> None:
    async def run(rt: ManagedRuntime, session_id: str) -> Any:
        turn = rt.run_turn(session_id, "hello")
        with pytest.raises(
            ServerError, match="the stream broke off and opening it again failed"
        ) as raised:
            await turn.collect()
        return turn, raised.value

    (turn, error), cutter = await _turn(
        lambda app: StreamCutter(app, after=1, refuse=True), tmp_path / "p.db", run
    )

    assert turn.done and _types(turn.events) == ["user.message"]
    assert error.status == 503
    assert cutter.opened == 2  # the stream, and one try to open it again: the client's
    # retry policy (here: the provider's x-should-retry: false) decides, not the turn


@pytest.mark.anyio
@pytest.mark.parametrize("refused", ["429", "deleted"])
async def test_a_reopening_refused_otherwise_says_the_stream_broke_off_too(
    tmp_path: Path, refused: str
) -> None:
    """A 429 outlasting the client's retries, or a 404 (the session deleted meanwhile), when
    the turn reopened its stream: raised as the provider said it, without the "the stream
    broke off and opening it again failed" a 5xx there says, so a program's log read as if
    the turn's first request had failed. Same type, same details (``retry_after`` kept)."""

    async def run(rt: ManagedRuntime, session_id: str) -> Any:
        turn = rt.run_turn(session_id, "hello")
        with pytest.raises(ProviderError) as raised:
            await turn.collect()
        return turn, raised.value

    options: dict[str, Any] = {"refuse": 429} if refused == "429" else {"delete": True}
    (turn, error), _ = await _turn(
        lambda app: StreamCutter(app, after=1, **options), tmp_path / "p.db", run
    )

    assert "the stream broke off and opening it again failed" in str(error), error
    if refused == "429":
        assert isinstance(error, RateLimitError) and error.retry_after == 1
    else:
        assert isinstance(error, NotFoundError) and error.status == 404
    assert turn.done and _types(turn.events) == ["user.message"]


# -- reconciler run ------------------------------------------------------------------------


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    """The example manifests applied over TCP; the provider's database and port."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    db = tmp_path / "provider.db"
    with BackgroundServer(create_app(db)) as server:
        result = cli("--provider-url", server.url, "apply", "--auto-approve")
        assert result.exit_code == 0, result.output
    yield db, server.port


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_run_reconnects_a_cut_stream_and_says_so_on_stderr(
    applied: tuple[Path, int], as_json: bool
) -> None:
    db, port = applied
    cutter = StreamCutter(create_app(db), after=2)
    with BackgroundServer(cutter, port=port) as server:
        args = ["--provider-url", server.url, "run", "coder", "-m", "hello"]
        result = cli(*args, *(["--json"] if as_json else []))

    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert cutter.opened == 2
    assert "Reconnected, nothing missed (session " in result.stderr, result.stderr
    assert "open it again" not in result.stderr
    assert "Traceback" not in result.stderr
    if as_json:
        events = [json.loads(line) for line in result.stdout.splitlines()]
        assert _types(events) == TURN
        assert len({e["id"] for e in events}) == len(events)
    else:
        assert result.stdout == "echo: hello\n"


def _run_failing_after_a_cut(
    applied: tuple[Path, int], **cut: Any
) -> tuple[Result, str, StreamCutter]:
    """``run coder -m hello`` whose stream is cut after one event and cannot go on (``cut``:
    how the reopening fails): it ends with exit 1 and no traceback, naming its session."""
    db, port = applied
    cutter = StreamCutter(create_app(db), after=1, **cut)
    with BackgroundServer(cutter, port=port) as server:
        result = cli("--provider-url", server.url, "run", "coder", "-m", "hello")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result, result.stderr.split("Session ", 1)[1].split()[0], cutter


def test_run_whose_stream_cannot_be_reopened_names_the_session_as_before(
    applied: tuple[Path, int],
) -> None:
    result, session_id, cutter = _run_failing_after_a_cut(applied, refuse=True)
    assert f"reconciler run coder --session {session_id} -m TEXT" in result.stderr
    assert "the stream broke off and opening it again failed" in result.stderr
    assert result.stdout == ""
    assert cutter.opened == 2


def test_run_whose_stream_reopening_is_rate_limited_names_the_session_to_continue(
    applied: tuple[Path, int],
) -> None:
    """A 429 that outlasts the client's retries when the cut stream is opened again: run
    said ``Error: ... rate limited`` alone, while the agent's turn went on in a session it
    did not name (a 5xx there names it, with the ``--session`` that continues it)."""
    result, session_id, cutter = _run_failing_after_a_cut(applied, refuse=429)
    assert "429" in result.stderr, result.stderr
    assert f"reconciler run coder --session {session_id} -m TEXT" in result.stderr
    assert cutter.opened == 2


def test_run_whose_session_is_deleted_mid_turn_says_so(applied: tuple[Path, int]) -> None:
    """The session deleted (in the console, by a colleague's script) while its stream was
    down: run printed the provider's 404 alone. It now says the session is gone, and that
    a new run (without ``--session``) starts another; not to continue the deleted one."""
    result, session_id, cutter = _run_failing_after_a_cut(applied, delete=True)
    assert f"session {session_id} no longer exists" in result.stderr, result.stderr
    assert "reconciler run coder -m TEXT starts a new one" in result.stderr
    assert "--session" not in result.stderr.split("Error: ", 1)[1]
    assert cutter.opened == 2


# -- stream_events -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_stream_whose_response_ends_mid_turn_says_so_and_the_next_one_resumes(
    tmp_path: Path,
) -> None:
    """A stream read with ``stream_events`` (no reconnection of its own) whose response
    ended cleanly mid-turn (a proxy's idle timeout) ended the ``async for`` as if the turn
    had: half a turn, no error. Now it raises, as a dropped connection does, and the next
    ``stream_events`` delivers the rest."""

    async def run(rt: ManagedRuntime, session_id: str) -> Any:
        seen: list[dict[str, Any]] = []
        async with rt.stream_events(session_id) as stream:
            await rt.send_event(session_id, "hello")
            with pytest.raises(ProviderConnectionError, match="open it again"):
                async for event in stream:
                    seen.append(event)
        return seen, [event async for event in rt.stream_events(session_id)]

    (seen, rest), cutter = await _turn(
        lambda app: StreamCutter(app, after=2, how="end"), tmp_path / "p.db", run
    )

    assert _types(seen) == TURN[:2]
    assert _types(rest) == TURN[2:]
    assert cutter.opened == 2


@pytest.mark.anyio
async def test_a_runtime_closed_while_a_turn_waits_to_reconnect_stays_closed(
    tmp_path: Path,
) -> None:
    """The runtime's aclose() ends a loop reading a turn in another task quietly: also while
    the turn waits out its backoff before reopening a cut stream (it reopened the stream,
    and with it the runtime's connection, after the program closed it)."""
    cutter = StreamCutter(create_app(tmp_path / "p.db"), after=1)
    with BackgroundServer(cutter) as server:
        rt = ManagedRuntime(provider_url=server.url, backoff_base=1.0)
        session_id = await rt.create_session(await rt.create_agent(), await rt.create_environment())
        reading = asyncio.ensure_future(rt.run_turn(session_id, "hello").collect())
        while not cutter.cut.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the turn waits to reopen
        await rt.aclose()
        events = await asyncio.wait_for(reading, 10)
        await asyncio.sleep(1.5)  # past the backoff

    assert _types(events) == TURN[:1]
    assert cutter.opened == 1
    with pytest.raises(RuntimeError, match="not connected"):
        rt.client  # noqa: B018 - closed, and not connected again behind the program's back


@pytest.mark.anyio
@pytest.mark.parametrize("cuts", [1, 0], ids=["reopening", "first-open"])
async def test_a_runtime_closed_while_a_turn_opens_its_stream_ends_the_turn_quietly(
    tmp_path: Path, cuts: int
) -> None:
    """``rt.aclose()`` while the turn's reopened stream waited for the provider's answer:
    the stream's request went on over the closed client and the reading loop got httpx's
    ``RuntimeError: Cannot send a request, as the client has been closed`` instead of the
    quiet end an ``aclose()`` gives it at any other moment. Closed while the turn's first
    stream opens, the turn sends nothing."""
    reopening = threading.Event()

    def on_open(number: int, opened: bool) -> None:
        if number == cuts + 1 and not opened:
            reopening.set()

    cutter = StreamCutter(
        create_app(tmp_path / "p.db"), after=1, streams=cuts, hold=1.0, on_open=on_open
    )
    with BackgroundServer(cutter) as server:
        rt = ManagedRuntime(provider_url=server.url, backoff_base=0.05)
        session_id = await rt.create_session(await rt.create_agent(), await rt.create_environment())
        turn = rt.run_turn(session_id, "hello")
        reading = asyncio.ensure_future(turn.collect())
        while not reopening.is_set():
            await asyncio.sleep(0.01)
        await rt.aclose()
        events = await asyncio.wait_for(reading, 10)

    assert _types(events) == TURN[:cuts]
    assert turn.done and turn.reconnects == 0
    assert len(turn.sent) == cuts  # the message, or (closed before it went) nothing
    with pytest.raises(RuntimeError, match="not connected"):
        rt.client  # noqa: B018 - closed, and not connected again behind the program's back


@pytest.mark.anyio
async def test_a_cut_right_after_an_event_the_list_does_not_hold_still_misses_nothing(
    tmp_path: Path,
) -> None:
    """The last event read before the cut is not in the session's event list (an event only
    the stream carries): the replay found no place to start after, started live, and the
    turn waited for an end that had already come."""
    span = {"id": "sevt_01streamonly", "type": "span.model_request_start"}

    async def run(rt: ManagedRuntime, session_id: str) -> Any:
        return await asyncio.wait_for(rt.run_turn(session_id, "hello").collect(), 20)

    events, cutter = await _turn(
        lambda app: StreamCutter(app, after=2, stream_only=span), tmp_path / "p.db", run
    )

    assert _types(events) == [*TURN[:2], span["type"], *TURN[2:]]
    assert len({e["id"] for e in events}) == len(events)
    assert cutter.opened == 2
