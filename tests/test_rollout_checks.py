"""``ProviderCheckRunner`` on exchanges the local provider cannot produce: a session that
ends in ``session.error``, and a grader verdict read from ``span.outcome_evaluation_end``.

The provider's side is scripted with ``httpx.MockTransport`` (the seam httpx ships): the
local agent never fails a session, and its grader is built elsewhere. The event shapes are
the SDK's (``anthropic.types.beta.sessions``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from reconciler.app.checks import ProviderCheckRunner
from reconciler.engine.gate import Check, Gate
from reconciler.provider import ProviderClient

NOW = "2026-12-05T12:00:00Z"


def scripted(turn_events: list[list[dict[str, Any]]]) -> tuple[httpx.MockTransport, list[str]]:
    """A provider whose n-th event stream carries ``turn_events[n]``; logs every request."""
    log: list[str] = []
    streams = iter(turn_events)

    def handler(request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        log.append(f"{method} {path}")
        if method == "POST" and path == "/v1/sessions":
            return httpx.Response(200, json={"id": "sesn_1", "type": "session", "status": "idle"})
        if method == "GET" and path == "/v1/sessions":
            return httpx.Response(200, json={"data": [], "next_page": None})
        if path.endswith("/events/stream"):
            frames = "".join(
                f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in next(streams)
            )
            return httpx.Response(200, text=frames, headers={"content-type": "text/event-stream"})
        if method == "POST" and path.endswith("/events"):
            sent = json.loads(request.content)["events"]
            return httpx.Response(
                200, json={"data": [{**e, "id": f"sevt_{i}"} for i, e in enumerate(sent)]}
            )
        if path.endswith("/archive"):
            return httpx.Response(200, json={"id": "sesn_1", "archived_at": NOW})
        return httpx.Response(404, json={"type": "error", "error": {"type": "not_found_error"}})

    return httpx.MockTransport(handler), log


def run(check: Check, turns: list[list[dict[str, Any]]]) -> tuple[Any, list[str]]:
    transport, log = scripted(turns)
    gate = Gate(
        deployment="deployment.d", agent="agent.a", from_version=1, to_version=2, checks=(check,)
    )

    async def go() -> Any:
        async with ProviderClient("http://provider.test", "sk-test", transport=transport) as client:
            runner = ProviderCheckRunner(client, "default")
            return await runner.run_checks(gate, "agent_1", 2, {"environment_id": "env_1"})

    (result,) = asyncio.run(go())
    return result, log


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"sevt_{kind}", "type": kind, "processed_at": NOW, **fields}


def test_a_check_whose_session_errors_fails_and_its_session_is_archived() -> None:
    error = event(
        "session.error",
        error={"type": "model_overloaded_error", "message": "the model is overloaded"},
    )
    result, log = run(
        Check(message="Review PR 42", contains=["PR 42"]),
        [[event("session.status_running"), error]],
    )
    assert not result.passed
    assert result.error == "the session failed (session.error: the model is overloaded)"
    assert result.session_id == "sesn_1"
    assert "POST /v1/sessions/sesn_1/archive" in log


def test_a_rubric_check_takes_the_graders_verdict() -> None:
    reply = event("agent.message", content=[{"type": "text", "text": "PR 42 looks fine"}])
    idle = event("session.status_idle", stop_reason={"type": "end_turn"})

    def graded(result: str) -> list[dict[str, Any]]:
        return [
            event("span.outcome_evaluation_start", outcome_id="outc_1", iteration=0),
            event(
                "span.outcome_evaluation_end",
                outcome_id="outc_1",
                outcome_evaluation_start_id="sevt_x",
                iteration=0,
                result=result,
                explanation="checked the rubric",
                usage={},
            ),
        ]

    check = Check(message="Review PR 42", contains=["PR 42"], rubric='names "PR 42"')
    passed, log = run(check, [[reply, idle], graded("satisfied")])
    assert passed.passed and passed.verdict == "satisfied"
    sent = [line for line in log if line == "POST /v1/sessions/sesn_1/events"]
    assert len(sent) == 2, "the message, then the outcome to grade"
    failed, _ = run(check, [[reply, idle], graded("needs_revision")])
    assert not failed.passed and failed.verdict == "needs_revision"
    assert failed.explanation == "checked the rubric"
    assert failed.answer == "PR 42 looks fine", "the answer, not the grader's verdict"


def test_the_checks_of_one_candidate_run_at_once() -> None:
    # each check's session is created only once every check has asked for one: checks run
    # one after another would never get there (the guard turns that hang into a failure)
    checks = tuple(Check(message=f"Review PR {n}", contains=[f"PR {n}"]) for n in (1, 2, 3))
    reply = event("agent.message", content=[{"type": "text", "text": "PR 1 PR 2 PR 3"}])
    idle = event("session.status_idle", stop_reason={"type": "end_turn"})
    transport, log = scripted([[reply, idle]] * len(checks))
    asked = 0
    everyone = asyncio.Event()

    async def barrier(request: httpx.Request) -> httpx.Response:
        nonlocal asked
        if request.method == "POST" and request.url.path == "/v1/sessions":
            asked += 1
            if asked == len(checks):
                everyone.set()
            try:
                await asyncio.wait_for(everyone.wait(), 10)
            except TimeoutError:
                return httpx.Response(500, json={"type": "error", "error": {"type": "api_error"}})
        return await transport.handle_async_request(request)

    gate = Gate(
        deployment="deployment.d", agent="agent.a", from_version=1, to_version=2, checks=checks
    )

    async def go() -> list[Any]:
        async with ProviderClient(
            "http://provider.test", "sk-test", transport=httpx.MockTransport(barrier), max_retries=0
        ) as client:
            runner = ProviderCheckRunner(client, "default")
            return list(await runner.run_checks(gate, "agent_1", 2, {"environment_id": "env_1"}))

    results = asyncio.run(go())
    assert [r.passed for r in results] == [True, True, True], [r.error for r in results]
    assert log.count("POST /v1/sessions/sesn_1/archive") == len(checks)


def test_a_check_whose_session_cannot_start_says_what_the_provider_said_once(
    tmp_path: Path,
) -> None:
    """The local provider refuses a session in an archived environment; the check's error
    reads as the client words that ("the provider rejected ..."), not behind a second "the
    provider failed:" (which a 400 is not)."""
    from reconciler.provider import embedded_client

    gate = Gate(
        deployment="deployment.d",
        agent="agent.a",
        from_version=1,
        to_version=2,
        checks=(Check(message="Review PR 42", contains=["PR 42"]),),
    )

    async def go() -> Any:
        async with embedded_client(tmp_path / "provider.db") as client:
            agent = await client.agents.create({"name": "a", "model": "claude-sonnet-4-6"})
            env = await client.environments.create({"name": "e", "config": {"type": "cloud"}})
            await client.environments.archive(env["id"])
            runner = ProviderCheckRunner(client, "default")
            return await runner.run_checks(gate, agent["id"], 1, {"environment_id": env["id"]})

    (result,) = asyncio.run(go())
    assert not result.passed and result.session_id is None
    assert result.error.startswith("the provider rejected POST /v1/sessions"), result.error
    assert "failed: the provider" not in result.error
