"""The local provider's agent (DESIGN.md, "The local provider's agent"): its answers follow
the ``local-reply:`` line of the agent version a session runs, and an outcome is graded on
the quoted phrases of its rubric, with the evaluation events the SDK defines.

In-process for the rules, over TCP through the SDK for the events as a client sees them.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.beta import BetaManagedAgentsSession
from anthropic.types.beta.sessions import BetaManagedAgentsSessionEvent
from pydantic import TypeAdapter
from support.local_provider import new_agent, new_env, ok, walk

from reconciler.provider.local.agent import grade, reply, rubric_phrases

pytestmark = pytest.mark.anyio

EVENT: TypeAdapter[Any] = TypeAdapter(BetaManagedAgentsSessionEvent)


def say(text: str) -> dict[str, Any]:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def outcome(rubric: str, description: str = "greet the team", **extra: Any) -> dict[str, Any]:
    return {
        "type": "user.define_outcome",
        "description": description,
        "rubric": {"type": "text", "content": rubric},
        **extra,
    }


def test_reply_rules() -> None:
    assert reply(None, "hi") == "echo: hi"
    assert reply("", "hi") == "echo: hi"
    assert reply("You code.\nlocal-reply: done: {text} ({text})", "x") == "done: x (x)"
    assert reply("local-reply:   fixed answer  ", "x") == "fixed answer"
    # only a line that starts with the prefix counts, and the first such line
    assert reply("say local-reply: no", "x") == "echo: x"
    assert reply("local-reply: one\nlocal-reply: two", "x") == "one"


def test_grading_rules() -> None:
    rubric = {"type": "text", "content": 'Must say "hello" and \u201cteam\u201d.'}
    assert rubric_phrases(rubric) == ["hello", "team"]
    assert grade("hello team", rubric)[0] == "satisfied"
    result, why = grade("hello world", rubric)
    assert result == "needs_revision" and '"team"' in why and '"hello"' not in why
    assert grade("anything", {"type": "text", "content": "no quotes"})[0] == "satisfied"
    assert rubric_phrases({"type": "file", "file_id": "file_1"}) == []


async def _session(http: httpx.AsyncClient, agent: Any, env: dict[str, Any]) -> dict[str, Any]:
    return await ok(http.post("/v1/sessions", json={"agent": agent, "environment_id": env["id"]}))


async def _events(http: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    return await walk(http, f"/v1/sessions/{session_id}/events")


async def test_the_pinned_version_decides_the_answer(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http, system="Greet.\nlocal-reply: hello {text}, from v1")
    await ok(http.post(f"/v1/agents/{agent['id']}", json={"system": "Greet."}))
    env = await new_env(http)
    v1 = await _session(http, {"type": "agent", "id": agent["id"], "version": 1}, env)
    v2 = await _session(http, agent["id"], env)
    overridden = await _session(
        http, {"type": "agent_with_overrides", "id": agent["id"], "system": "local-reply: hi"}, env
    )
    answers = {}
    for name, session in (("v1", v1), ("v2", v2), ("overridden", overridden)):
        await ok(http.post(f"/v1/sessions/{session['id']}/events", json={"events": [say("team")]}))
        messages = [e for e in await _events(http, session["id"]) if e["type"] == "agent.message"]
        answers[name] = messages[0]["content"][0]["text"]
    assert answers == {"v1": "hello team, from v1", "v2": "echo: team", "overridden": "hi"}


async def test_an_outcome_passes_on_one_version_and_fails_on_the_next(
    http: httpx.AsyncClient,
) -> None:
    agent = await new_agent(http, system='local-reply: "hello" to {text}')
    await ok(http.post(f"/v1/agents/{agent['id']}", json={"system": "local-reply: bye {text}"}))
    env = await new_env(http)
    verdicts = {}
    for version in (1, 2):
        session = await _session(
            http, {"type": "agent", "id": agent["id"], "version": version}, env
        )
        sent = await ok(
            http.post(
                f"/v1/sessions/{session['id']}/events",
                json={"events": [outcome('The answer says "hello" to "the team".')]},
            )
        )
        echoed = sent["data"][0]
        assert echoed["outcome_id"].startswith("outc_") and echoed["max_iterations"] == 3
        events = await _events(http, session["id"])
        assert [e["type"] for e in events] == [
            "user.define_outcome",
            "session.status_running",
            "agent.message",
            "span.outcome_evaluation_start",
            "span.outcome_evaluation_ongoing",
            "span.outcome_evaluation_end",
            "session.status_idle",
        ]
        for event in events:
            EVENT.validate_json(httpx.Response(200, json=event).text, strict=True)
        start, end = events[3], events[5]
        assert start["outcome_id"] == end["outcome_id"] == echoed["outcome_id"]
        assert end["outcome_evaluation_start_id"] == start["id"] and end["iteration"] == 0
        verdicts[version] = end["result"]
        live = await ok(http.get(f"/v1/sessions/{session['id']}"))
        BetaManagedAgentsSession.model_validate_json(
            httpx.Response(200, json=live).text, strict=True
        )
        [evaluation] = live["outcome_evaluations"]
        assert evaluation["result"] == end["result"] and evaluation["iteration"] == 0
        assert evaluation["description"] == "greet the team"
        assert evaluation["explanation"] == end["explanation"]
        assert evaluation["completed_at"] is not None and live["status"] == "idle"
    assert verdicts == {1: "satisfied", 2: "needs_revision"}


async def test_outcomes_in_initial_events_and_an_explicit_budget(http: httpx.AsyncClient) -> None:
    agent = await new_agent(http, system="local-reply: done")
    env = await new_env(http)
    session = await ok(
        http.post(
            "/v1/sessions",
            json={
                "agent": agent["id"],
                "environment_id": env["id"],
                "initial_events": [say("go"), outcome('Says "done".', max_iterations=5)],
            },
        )
    )
    assert [e["result"] for e in session["outcome_evaluations"]] == ["satisfied"]
    events = await _events(http, session["id"])
    assert events[[e["type"] for e in events].index("user.define_outcome")]["max_iterations"] == 5


@pytest.mark.tcp
def test_the_sdk_streams_the_evaluation(tcp_provider: str) -> None:
    with anthropic.Anthropic(base_url=tcp_provider, api_key="k", max_retries=0) as sdk:
        env = sdk.beta.environments.create(name="grading")
        agent = sdk.beta.agents.create(
            name="grader", model="claude-haiku-4-5", system="local-reply: all done"
        )
        session = sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
        seen = []
        with sdk.beta.sessions.events.stream(session.id) as stream:
            sdk.beta.sessions.events.send(
                session.id,
                events=[outcome('Reports "all done".')],  # type: ignore[list-item]
            )
            for event in stream:
                seen.append(event)
                if event.type == "session.status_idle":
                    break
        ends = [e for e in seen if e.type == "span.outcome_evaluation_end"]
        assert [e.result for e in ends] == ["satisfied"]  # type: ignore[union-attr]
        evaluations = sdk.beta.sessions.retrieve(session.id).outcome_evaluations
        assert [(e.result, e.iteration) for e in evaluations] == [("satisfied", 0)]
