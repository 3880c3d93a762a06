"""`reconciler run` end to end over loopback TCP, including Ctrl-C.

The local provider answers every request after injected latency, so the turn is still in
flight when the test sends SIGINT to the real `reconciler run` process: it must send a
`user.interrupt` to the session, say how to continue, and exit 130.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.reliability import cli_process, interrupt

from reconciler.cli import main
from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.tcp


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not seen in time; stderr so far:\n{seen}")


def _applied_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example manifests applied in ``tmp_path`` (the working directory now) over TCP;
    the provider's database, for a slow provider to serve next."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    db = tmp_path / "provider.db"
    with BackgroundServer(create_app(db)) as fast:
        applied = CliRunner().invoke(
            main, ["--provider-url", fast.url, "apply", "--auto-approve"], catch_exceptions=False
        )
        assert applied.exit_code == 0, applied.output
    return db


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_ctrl_c_interrupts_the_session_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, code: int
) -> None:
    """Ctrl-C (and SIGTERM, handled the same way, exit 143)."""
    db = _applied_project(tmp_path, monkeypatch)
    # the same database, now slow: every request takes 1.5 s
    with BackgroundServer(create_app(db, FaultConfig(latency_ms=1500))) as slow:
        env = {**os.environ, "NO_COLOR": "1"}
        args = ["--provider-url", slow.url, "run", "coder", "-m", "take your time"]
        with cli_process(args, env=env) as proc:
            before = _read_until(proc, "Session sesn_", timeout=60)
            session_id = before.split("Session ", 1)[1].split()[0]
            time.sleep(0.5)  # the message is on its way; the turn is not over
            if sig == signal.SIGINT:
                out, err = interrupt(proc)
            else:
                proc.send_signal(sig)
                out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, (out, err)
        assert "--session" in before + err
        assert "Traceback" not in err

    async def events() -> list[str]:
        from reconciler.provider import embedded_client

        async with embedded_client(db) as client:
            return [e["type"] for e in await client.sessions.list_events(session_id).to_list()]

    assert "user.interrupt" in asyncio.run(events())


def _sessions_spy(inner: Any, *, made: bool) -> tuple[Any, threading.Event]:
    """``inner`` with every ``POST /v1/sessions`` noted (the event is set when one arrives);
    unless ``made``, such a request waits 3 s and fails with a 503 without making anything
    (the provider never got to it), else it goes on to ``inner`` (slow, as it is)."""
    arrived = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/v1/sessions"):
            arrived.set()
            if not made:
                await asyncio.sleep(3)
                body = b'{"type":"error","error":{"type":"api_error","message":"busy"}}'
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await inner(scope, receive, send)

    return app, arrived


@pytest.mark.parametrize("made", [True, False], ids=["created", "not-created"])
def test_ctrl_c_while_the_session_is_created_says_which_session_or_how_to_find_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: bool
) -> None:
    """Ctrl-C once the session create is on its way printed only "Interrupted.": a session
    made by that create was unknown to the user. Now: the id when the session can be found
    (by the token run puts in its metadata), else what finds it; exit 130 either way."""
    db = _applied_project(tmp_path, monkeypatch)
    slow_app, arrived = _sessions_spy(create_app(db, FaultConfig(latency_ms=1500)), made=made)
    with BackgroundServer(slow_app) as slow:
        env = {**os.environ, "NO_COLOR": "1"}
        args = ["--provider-url", slow.url, "run", "coder", "-m", "hello"]
        with cli_process(args, env=env) as proc:
            assert arrived.wait(60), "the session create never arrived"
            time.sleep(0.3)  # the create is in flight, its answer not back
            out, err = interrupt(proc)
        assert proc.returncode == 130, (out, err)
        assert "Traceback" not in err

    async def sessions() -> list[dict[str, Any]]:
        from reconciler.provider import embedded_client

        async with embedded_client(db) as client:
            return await client.sessions.list().to_list()

    made_now = asyncio.run(sessions())
    assert out == ""
    if made:
        (session,) = made_now
        assert f"session {session['id']} of agent.coder was created" in err, err
        assert f"reconciler run coder --session {session['id']} -m TEXT" in err, err
    else:
        assert made_now == []
        assert "may have created a session of agent.coder" in err, err
        assert "reconciler-run-id: " in err and "titled 'reconciler run agent.coder'" in err


@contextmanager
def _provider_lost_mid_turn(db: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A `reconciler run coder` process whose (slow) provider went away once its session
    started: the process and the session's id."""
    slow = BackgroundServer(create_app(db, FaultConfig(latency_ms=1500))).start()
    try:
        env = {**os.environ, "NO_COLOR": "1"}
        args = ["--provider-url", slow.url, "run", "coder", "-m", "take your time"]
        with cli_process(args, env=env) as proc:
            before = _read_until(proc, "Session sesn_", timeout=60)
            slow.stop()  # the provider goes away
            yield proc, before.split("Session ", 1)[1].split()[0]
    finally:
        slow.stop()


def test_ctrl_c_when_the_interrupt_cannot_be_sent_still_names_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider went away mid-turn and the user pressed Ctrl-C: the user.interrupt could
    not be sent, and run ended with 'Error: could not reach the provider' and exit 1, as if
    Ctrl-C had not been pressed. Now: exit 130, naming the session, saying the interrupt was
    not sent (the turn may go on) and how to continue it."""
    db = _applied_project(tmp_path, monkeypatch)
    with _provider_lost_mid_turn(db) as (proc, session_id):
        time.sleep(0.3)
        out, err = interrupt(proc, timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert f"could not send user.interrupt to session {session_id}" in err, err
    assert f"--session {session_id}" in err


def test_the_provider_gone_mid_turn_names_the_session_to_continue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider went away mid-turn: run said only 'Error: could not reach the provider'
    (exit 1). The error now names the session, which may still be running, and how to
    continue it."""
    db = _applied_project(tmp_path, monkeypatch)
    with _provider_lost_mid_turn(db) as (proc, session_id):
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err
    assert "could not reach the provider" in err, err
    assert f"reconciler run coder --session {session_id} -m TEXT" in err, err


async def _answer_lost(inner: Any, scope: Any, receive: Any, send: Any, *, made: bool) -> None:
    """Answer a request 503, as if its answer was lost: after ``inner`` handled it (``made``:
    the provider took it), or without passing it on."""
    if made:

        async def swallow(message: Any) -> None:
            pass

        await inner(scope, receive, swallow)
    body = b'{"type":"error","error":{"type":"api_error","message":"busy"}}'
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _session_answers_lost(inner: Any, *, made: bool, times: int = 1) -> tuple[Any, list[int]]:
    """``inner`` whose first ``times`` ``POST /v1/sessions`` are answered 503: after the
    provider made the session (``made``), or without passing it on; and the list that
    counts every ``POST /v1/sessions`` (one item each)."""
    posts: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/v1/sessions"):
            posts.append(1)
            if len(posts) <= times:
                await _answer_lost(inner, scope, receive, send, made=made)
                return
        await inner(scope, receive, send)

    return app, posts


def _session_answers_cut(inner: Any) -> Any:
    """``inner`` whose every ``POST /v1/sessions`` gets the head of an answer and then a
    closed connection (the body never ends), without being passed on."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/v1/sessions"):
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})
            raise RuntimeError("cut off")  # the server closes the connection mid-body
        await inner(scope, receive, send)

    return app


def test_a_session_create_cut_off_says_the_server_closed_the_connection_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection closed in the middle of the create's answer: run's messages said
    "the server closed the connection (the server closed the connection before the
    response's body ended)". Now each says it once."""
    db = _applied_project(tmp_path, monkeypatch)
    with BackgroundServer(_session_answers_cut(create_app(db))) as cut:
        result = CliRunner().invoke(main, ["--provider-url", cut.url, "run", "coder", "-m", "hi"])
    assert result.exit_code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "closed the connection" in line]
    assert len(lines) == 2, result.stderr  # the second create, then the error
    for line in lines:
        assert line.count("closed the connection") == 1, line
        assert "the server closed the connection before the response's body ended" in line


def _sessions(db: Path) -> list[dict[str, Any]]:
    async def sessions() -> list[dict[str, Any]]:
        from reconciler.provider import embedded_client

        async with embedded_client(db) as client:
            return await client.sessions.list().to_list()

    return asyncio.run(sessions())


@pytest.mark.parametrize("made", [True, False], ids=["created", "not-created"])
def test_a_session_create_whose_answer_is_lost_is_settled_by_the_runs_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: bool
) -> None:
    """A 503 to the session create (the provider may have made it) ended the run with "POST
    /v1/sessions (session) may or may not have been applied": a session made then was
    unknown to the user, and the message was all. Now run looks it up by the token it put
    in its metadata: found, the turn goes on in it. Not found (the lookup answered, and no
    session carries the token), the create is sent once more with the same token and the
    turn goes on in the session it makes, as a retry of a create that never landed should
    (it exited 1 "Not found (yet)" and left the user to run the command again)."""
    db = _applied_project(tmp_path, monkeypatch)
    lossy_app, posts = _session_answers_lost(create_app(db), made=made)
    with BackgroundServer(lossy_app) as lossy:
        result = CliRunner().invoke(main, ["--provider-url", lossy.url, "run", "coder", "-m", "hi"])
    assert result.exit_code == 0, result.stderr
    (session,) = _sessions(db)
    assert result.stdout == "echo: hi\n"
    assert f"Session {session['id']} (agent.coder version 1" in result.stderr
    assert len(posts) == (1 if made else 2)
    if not made:
        token = re.search(
            r"creating it once more with the same reconciler-run-id: (\w+)", result.stderr
        )
        assert token is not None, result.stderr
        assert session["metadata"]["reconciler-run-id"] == token.group(1)


def test_a_session_create_lost_twice_is_sent_no_third_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both creates answered 503 and neither made a session: run stops after the second
    (never a third create), exit 1, saying what finds a session should one appear."""
    db = _applied_project(tmp_path, monkeypatch)
    lossy_app, posts = _session_answers_lost(create_app(db), made=False, times=2)
    with BackgroundServer(lossy_app) as lossy:
        result = CliRunner().invoke(main, ["--provider-url", lossy.url, "run", "coder", "-m", "hi"])
    assert result.exit_code == 1, result.stderr
    assert len(posts) == 2
    assert _sessions(db) == []
    assert "may have created a session of agent.coder" in result.stderr, result.stderr
    assert "reconciler-run-id: " in result.stderr
    assert "Traceback" not in result.stderr


def _first_create_lands_late(inner: Any) -> tuple[Any, list[int]]:
    """``inner`` whose first ``POST /v1/sessions`` is answered 503 without being passed on,
    then carried out just before the second one (it landed late): two sessions carry the
    run's token."""
    posts: list[int] = []
    first: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/v1/sessions"):
            posts.append(1)
            if len(posts) == 1:
                body, more = b"", True
                while more:
                    message = await receive()
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                first.append(body)
                error = b'{"type":"error","error":{"type":"api_error","message":"busy"}}'
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": error})
                return

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": first[0], "more_body": False}

            async def swallow(message: Any) -> None:
                pass

            await inner(scope, replay, swallow)
        await inner(scope, receive, send)

    return app, posts


def test_a_first_create_that_lands_late_leaves_one_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup found no session, the create was sent again, and the first create landed
    after all: run keeps the session its second create made, deletes the late one (nothing
    was sent to it), and the turn goes on: one session, never two."""
    db = _applied_project(tmp_path, monkeypatch)
    late_app, posts = _first_create_lands_late(create_app(db))
    with BackgroundServer(late_app) as late:
        result = CliRunner().invoke(main, ["--provider-url", late.url, "run", "coder", "-m", "hi"])
    assert result.exit_code == 0, result.stderr
    assert len(posts) == 2
    (session,) = _sessions(db)
    assert result.stdout == "echo: hi\n"
    assert f"Session {session['id']} (agent.coder version 1" in result.stderr


def _first_message_answer_lost(inner: Any, *, made: bool, times: int = 1) -> Any:
    """``inner`` whose first ``times`` ``POST /v1/sessions/{id}/events`` are answered 503:
    after the provider took the events (``made``), or without passing them on."""
    lost: list[bool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].startswith("/v1/sessions/")
            and scope["path"].endswith("/events")
            and len(lost) < times
        ):
            lost.append(True)
            await _answer_lost(inner, scope, receive, send, made=made)
            return
        await inner(scope, receive, send)

    return app


async def _user_messages(db: Path) -> list[str]:
    from reconciler.provider import embedded_client

    async with embedded_client(db) as client:
        texts = []
        for session in await client.sessions.list().to_list():
            for event in await client.sessions.list_events(session["id"]).to_list():
                if event["type"] == "user.message":
                    texts.append(event["content"][0]["text"])
        return texts


@pytest.mark.parametrize("made", [True, False], ids=["arrived", "not-arrived"])
def test_a_message_whose_answer_is_lost_is_looked_for_and_sent_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: bool
) -> None:
    """A 503 to the message's POST (the provider may have taken it) ended the run with
    "POST .../events may or may not have been applied", exit 1, nothing looked up. Now run
    lists the session's events: the message there, it reads the turn; not there, it sends
    it again. Either way the session holds the message once and the answer is printed."""
    db = _applied_project(tmp_path, monkeypatch)
    with BackgroundServer(_first_message_answer_lost(create_app(db), made=made)) as lossy:
        result = CliRunner().invoke(main, ["--provider-url", lossy.url, "run", "coder", "-m", "hi"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hi\n"
    assert asyncio.run(_user_messages(db)) == ["hi"]


def test_a_message_lost_twice_is_not_sent_a_third_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent again once it is known not to have arrived, and lost again: run says it did not
    arrive instead of trying on its own. It said "sending them again is safe", which the
    wire cannot promise (no idempotency key for events: one may land late); it says to look
    at the session's events first."""
    db = _applied_project(tmp_path, monkeypatch)
    lossy_app = _first_message_answer_lost(create_app(db), made=False, times=2)
    with BackgroundServer(lossy_app) as lossy:
        result = CliRunner().invoke(main, ["--provider-url", lossy.url, "run", "coder", "-m", "hi"])

    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "did not arrive" in result.stderr, result.stderr
    assert "--session sesn_" in result.stderr, result.stderr
    assert "safe" not in result.stderr, result.stderr
    assert "look at the session's events before sending" in result.stderr, result.stderr
    assert asyncio.run(_user_messages(db)) == []


@pytest.mark.parametrize("made", [True, False], ids=["arrived", "not-arrived"])
def test_the_runtime_settles_a_lost_send_as_run_does(tmp_path: Path, made: bool) -> None:
    """``ManagedRuntime.send_event`` and ``run_turn``: the same settling, one message in
    the session, the turn read to its end."""
    from reconciler.runtime import ManagedRuntime

    db = tmp_path / "provider.db"
    with BackgroundServer(_first_message_answer_lost(create_app(db), made=made)) as lossy:

        async def main_() -> tuple[list[str], list[str]]:
            async with ManagedRuntime(provider_url=lossy.url) as rt:
                session = await rt.create_session(
                    await rt.create_agent(), await rt.create_environment()
                )
                events = await rt.run_turn(session, "hi").collect()
                sent = await rt.send_event(session, "again")
                assert [e["content"][0]["text"] for e in sent] == ["again"]
                texts = [e["content"][0]["text"] for e in events if e["type"] == "agent.message"]
                return texts, [e["id"] for e in sent]

        texts, _ = asyncio.run(main_())
    assert texts == ["echo: hi"]
    assert asyncio.run(_user_messages(db)) == ["hi", "again"]
