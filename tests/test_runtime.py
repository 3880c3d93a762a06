"""The Managed Runtime Protocol against the embedded local provider (its echo agent).

Each test is one pattern a runtime user writes: the quick start, a multi-turn loop, version
pinning, session cleanup, recovering from a deleted session, interrupting; plus the wire
shapes the config objects produce and the lifetime of the runtime itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import make_workdir, ok

from reconciler.errors import ConflictError, LockfileError, NotFoundError
from reconciler.runtime import (
    ManagedConfig,
    ManagedRuntime,
    NetworkingConfig,
    NotApplied,
    PackagesConfig,
    ends_turn,
)

# Explicit, so anyio runs each coroutine test once on asyncio (the conftest's hook marks
# coroutine tests too late for anyio 4.16, which then duplicates them per backend).
pytestmark = pytest.mark.anyio


@pytest.fixture
async def rt(client: Any) -> Any:
    async with ManagedRuntime(client=client) as runtime:
        yield runtime


async def _ready(rt: ManagedRuntime) -> str:
    """An agent, an environment and a session; returns the session id."""
    agent_id = await rt.create_agent()
    env_id = await rt.create_environment()
    return await rt.create_session(agent_id, env_id)


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def _texts(events: list[dict[str, Any]]) -> list[str]:
    return [
        block["text"]
        for e in events
        if e["type"] == "agent.message"
        for block in e["content"]
        if block["type"] == "text"
    ]


# -- the seed's patterns -----------------------------------------------------------------


async def test_quick_start_streams_the_echo_to_idle(rt: ManagedRuntime) -> None:
    agent_id = await rt.create_agent()
    env_id = await rt.create_environment()
    session_id = await rt.create_session(agent_id, env_id)
    assert (rt.agent_id, rt.environment_id, rt.session_id) == (agent_id, env_id, session_id)

    events = [event async for event in rt.run_turn(session_id, "hello")]

    assert _types(events) == [
        "user.message",
        "session.status_running",
        "agent.message",
        "session.status_idle",
    ]
    assert _texts(events) == ["echo: hello"]
    assert events[-1]["stop_reason"] == {"type": "end_turn"}
    assert (await rt.retrieve_session(session_id))["status"] == "idle"


async def test_quick_start_by_hand_opens_the_stream_before_sending(rt: ManagedRuntime) -> None:
    session_id = await _ready(rt)

    async with rt.stream_events(session_id) as events:
        sent = await rt.send_event(session_id, "hello")
        seen = []
        async for event in events:
            seen.append(event)
            if event["type"] == "session.status_idle":
                break

    assert _types(sent) == ["user.message"] and sent[0]["id"]
    assert sent[0]["content"] == [{"type": "text", "text": "hello"}]
    assert seen[0]["id"] == sent[0]["id"]  # the stream saw our own message: nothing lost
    assert _texts(seen) == ["echo: hello"]


async def test_seed_order_send_then_stream_delivers_the_turn_once(rt: ManagedRuntime) -> None:
    session_id = await _ready(rt)

    sent = await rt.send_event(session_id, "hello")
    events = [event async for event in rt.stream_events(session_id)]  # ends by itself

    assert _types(events) == [
        "user.message",
        "session.status_running",
        "agent.message",
        "session.status_idle",
    ]
    assert events[0]["id"] == sent[0]["id"]
    assert len({e["id"] for e in events}) == len(events)  # no duplicates
    assert _texts(events) == ["echo: hello"]


async def test_two_sends_before_the_stream_replay_both_turns(rt: ManagedRuntime) -> None:
    session_id = await _ready(rt)
    await rt.send_event(session_id, "one")
    await rt.send_event(session_id, "two")

    events = [event async for event in rt.stream_events(session_id)]

    assert _texts(events) == ["echo: one", "echo: two"]
    assert _types(events).count("session.status_idle") == 2
    # both turns were delivered: a later stream has nothing pending and ends at once
    assert [event async for event in rt.stream_events(session_id)] == []


async def test_a_stream_opened_again_in_the_middle_of_a_turn_delivers_the_rest(
    rt: ManagedRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # a loop left early (or a connection that broke off: "open it again to keep reading"):
    # the new stream ended at once, saying that nothing was sent, and the answer was lost
    session_id = await _ready(rt)
    await rt.send_event(session_id, "hello")
    async for event in rt.stream_events(session_id):
        first = event
        break

    with caplog.at_level("WARNING", logger="reconciler.runtime"):
        rest = [event async for event in rt.stream_events(session_id)]

    assert first["type"] == "user.message"
    assert _types(rest) == ["session.status_running", "agent.message", "session.status_idle"]
    assert _texts(rest) == ["echo: hello"]
    assert caplog.text == ""
    # the turn was delivered to its end: now there is nothing to wait for
    assert [event async for event in rt.stream_events(session_id)] == []


async def test_a_stream_left_in_a_turn_with_more_sent_after_it_resumes_where_it_was_left(
    rt: ManagedRuntime,
) -> None:
    # the next stream replayed from the next turn's message: the rest of the turn the loop
    # was left in (its answer) was lost
    session_id = await _ready(rt)
    for text in ("one", "two"):
        await rt.send_event(session_id, text)
    seen = []
    async for event in rt.stream_events(session_id):
        seen.append(event)
        if event["type"] == "session.status_running":
            break

    seen += [event async for event in rt.stream_events(session_id)]

    assert _texts(seen) == ["echo: one", "echo: two"]
    assert len(seen) == len({e["id"] for e in seen}) == 8


async def test_a_stream_on_an_idle_session_with_nothing_sent_ends_and_says_so(
    rt: ManagedRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await _ready(rt)
    await rt.run_turn(session_id, "done already").collect()

    with caplog.at_level("WARNING", logger="reconciler.runtime"):
        events = [event async for event in rt.stream_events(session_id)]

    assert events == []
    assert f"session {session_id} is idle and nothing was sent" in caplog.text
    assert "follow=True" in caplog.text


async def test_a_stream_opened_first_ends_after_the_turn_without_a_break(
    rt: ManagedRuntime,
) -> None:
    session_id = await _ready(rt)

    async with rt.stream_events(session_id) as stream:
        await rt.send_event(session_id, "first")
        seen = []
        async for event in stream:  # no break: it ends when the turn does
            seen.append(event)
            if event["type"] == "session.status_idle" and len(seen) < 5:
                await rt.send_event(session_id, "second")  # another turn on the same stream

    assert _texts(seen) == ["echo: first", "echo: second"]
    assert not stream.is_open


async def test_follow_is_a_plain_live_tail(rt: ManagedRuntime, client: Any) -> None:
    session_id = await _ready(rt)
    await rt.run_turn(session_id, "before").collect()

    async with rt.stream_events(session_id, follow=True) as stream:
        # sent by someone else (not through this runtime): a follow stream still waits for it
        await client.sessions.send_events(
            session_id, [{"type": "user.message", "content": [{"type": "text", "text": "x"}]}]
        )
        seen = []
        async for event in stream:
            seen.append(event)
            if ends_turn(event):
                break

    assert _texts(seen) == ["echo: x"]  # no replay of "before"


async def test_multi_turn_loop_on_one_session(rt: ManagedRuntime) -> None:
    session_id = await _ready(rt)

    for text in ("one", "two", "three"):
        turn = rt.run_turn(session_id, text)
        events = await turn.collect()
        assert turn.done
        assert _texts(events) == [f"echo: {text}"]
        assert events[-1]["type"] == "session.status_idle"
        assert turn.sent[0]["id"] == events[0]["id"]

    history = await rt.client.sessions.list_events(session_id).to_list()
    assert _texts(history) == ["echo: one", "echo: two", "echo: three"]
    usage = (await rt.retrieve_session(session_id))["usage"]
    assert usage["input_tokens"] == 3


async def test_turns_run_at_once_on_one_session_each_read_their_own_answer(
    rt: ManagedRuntime,
) -> None:
    # two requests of a chat bot answered in one session at the same time: each turn's
    # stream sees the others' events too, and must not take another turn's answer for its own
    session_id = await _ready(rt)
    turns = [rt.run_turn(session_id, text) for text in ("one", "two", "three")]

    results = await asyncio.gather(*(turn.collect() for turn in turns))

    for text, turn, events in zip(("one", "two", "three"), turns, results, strict=True):
        assert events[0]["id"] == turn.sent[0]["id"]
        assert _texts(events) == [f"echo: {text}"]
        assert _types(events)[-1] == "session.status_idle"


async def test_version_pinning(rt: ManagedRuntime, client: Any) -> None:
    agent_id = await rt.create_agent()
    env_id = await rt.create_environment()
    updated = await client.agents.update(agent_id, {"system": "You review code."})
    assert updated["version"] == 2

    latest = await rt.create_session(agent_id, env_id)
    rt.agent_version = 1
    pinned = await rt.create_session(agent_id, env_id)
    explicit = await rt.create_session(agent_id, env_id, version=2)

    assert (await rt.retrieve_session(latest))["agent"]["version"] == 2
    pinned_session = await rt.retrieve_session(pinned)
    assert pinned_session["agent"]["version"] == 1
    assert pinned_session["agent"]["system"] == "You are a helpful coding assistant."
    assert (await rt.retrieve_session(explicit))["agent"]["version"] == 2
    assert (await rt.retrieve_agent(agent_id, version=1))["version"] == 1
    assert _texts(await rt.run_turn(pinned, "pinned").collect()) == ["echo: pinned"]


@pytest.mark.parametrize("version", [0, -1, True, "2", 1.5])
async def test_a_version_no_agent_has_is_refused_before_anything_is_sent(
    rt: ManagedRuntime, version: Any
) -> None:
    """``version=0`` (an off-by-one over ``applied(...).version``) reached the provider and
    came back as "agent.constrained-str: Input should be a valid string"; ``True`` and
    ``"2"`` were taken as versions 1 and 2."""
    agent_id = await rt.create_agent()
    env_id = await rt.create_environment()
    before = len(await rt.list_sessions("all"))
    with pytest.raises((ValueError, TypeError), match=r"^version is an agent version number"):
        await rt.create_session(agent_id, env_id, version=version)
    rt.agent_version = version
    with pytest.raises((ValueError, TypeError), match=r"^version is an agent version number"):
        await rt.create_session(agent_id, env_id)
    assert len(await rt.list_sessions("all")) == before
    # retrieve_agent(version=...) sent it as it was: True as "true", which came back as a
    # 400 "unable to parse string as an integer", and "2" as version 2
    with pytest.raises((ValueError, TypeError), match=r"^version is an agent version number"):
        await rt.retrieve_agent(agent_id, version=version)


async def test_list_limit_returns_at_most_that_many(rt: ManagedRuntime) -> None:
    """``list_agents(limit=10)``, as PraisonAI's protocol writes it: it raised "TypeError:
    DatedCollection.list() got an unexpected keyword argument 'limit'" (environments
    likewise), and ``list_sessions(limit=3)`` returned every session."""
    for n in range(3):
        await rt.create_agent(ManagedConfig(name=f"a{n}"))
    await rt.create_environment(ManagedConfig(env_name="e1"))
    await rt.create_environment(ManagedConfig(env_name="e2"))
    for _ in range(4):
        await rt.create_session(None, None)
    assert len(await rt.list_agents()) == 3
    assert len(await rt.list_agents(limit=2)) == 2
    assert len(await rt.list_environments(limit=1)) == 1
    assert len(await rt.list_sessions(limit=3)) == 3
    assert len(await rt.list_sessions("all", limit=10)) == 4
    with pytest.raises(ValueError, match="limit must be a positive number"):
        await rt.list_agents(limit=0)
    with pytest.raises(TypeError, match=r"^list_agents\(\) got an unexpected keyword argument "):
        await rt.list_agents(bogus=1)


async def test_session_cleanup_with_active_and_archived_filters(rt: ManagedRuntime) -> None:
    agent_id = await rt.create_agent()
    env_id = await rt.create_environment()
    keep, old, gone = [await rt.create_session(agent_id, env_id) for _ in range(3)]

    archived = await rt.archive_session(old)
    deleted = await rt.delete_session(gone)

    assert archived["archived_at"]
    assert deleted == {"id": gone, "type": "session_deleted"}
    assert [s["id"] for s in await rt.list_sessions(status="active")] == [keep]
    assert [s["id"] for s in await rt.list_sessions(status="archived")] == [old]
    assert {s["id"] for s in await rt.list_sessions(status="all")} == {keep, old}
    assert [s["id"] for s in await rt.list_sessions("idle", agent_id=agent_id)] == [keep]
    assert [s["id"] for s in await rt.list_sessions()] == [keep]
    assert await rt.list_sessions("active", agent_id="agent_nobody") == []
    with pytest.raises(ValueError, match="status must be"):
        await rt.list_sessions("closed")  # type: ignore[arg-type]


async def test_a_session_filter_the_wire_does_not_have_is_refused(rt: ManagedRuntime) -> None:
    # list_sessions(agent=...) (for agent_id=) listed every session of every agent: a cleanup
    # loop over it deleted the other agents' sessions too
    mine = await rt.create_agent()
    env_id = await rt.create_environment()
    await rt.create_session(mine, env_id)
    await rt.create_session(await rt.create_agent(), env_id)

    with pytest.raises(TypeError) as caught:
        await rt.list_sessions(agent=mine)

    assert str(caught.value).startswith(
        "list_sessions() got an unexpected keyword argument 'agent'; it takes "
    )
    assert "agent_id" in str(caught.value)
    assert len(await rt.list_sessions(agent_id=mine)) == 1
    assert len(await rt.list_sessions(agent_id=mine, agent_version=1, order="asc")) == 1
    assert len(await rt.list_sessions(created_at_gte="2000-01-01T00:00:00Z")) == 2


async def test_failure_pattern_send_to_deleted_session_then_recreate(rt: ManagedRuntime) -> None:
    session_id = await _ready(rt)
    await rt.delete_session(session_id)
    assert rt.session_id is None

    with pytest.raises(NotFoundError) as caught:
        await rt.send_event(session_id, "hello")
    assert caught.value.status == 404
    assert session_id in str(caught.value)
    with pytest.raises(NotFoundError):
        await rt.run_turn(session_id, "hello").collect()
    with pytest.raises(NotFoundError):
        await rt.retrieve_session(session_id)

    fresh = await rt.create_session()  # the remembered agent and environment
    assert fresh != session_id
    assert _texts(await rt.run_turn(fresh, "again").collect()) == ["echo: again"]


async def test_interrupt(rt: ManagedRuntime) -> None:
    session_id = await _ready(rt)

    async with rt.stream_events(session_id) as events:
        sent = await rt.interrupt(session_id)
        first_idle = None
        async for event in events:
            if ends_turn(event):
                first_idle = event
                break

    assert _types(sent) == ["user.interrupt"]
    assert first_idle is not None and first_idle["type"] == "session.status_idle"
    assert (await rt.retrieve_session(session_id))["status"] == "idle"


async def test_list_agents_returns_every_page(rt: ManagedRuntime) -> None:
    for i in range(150):
        await rt.create_agent(ManagedConfig(name=f"agent-{i}"))

    agents = await rt.list_agents()

    assert len(agents) == 150
    assert len({a["id"] for a in agents}) == 150
    assert {a["name"] for a in agents} == {f"agent-{i}" for i in range(150)}


# -- agents and environments ----------------------------------------------------------------


async def test_agent_lifecycle_and_archive_filter(rt: ManagedRuntime) -> None:
    config = ManagedConfig(
        name="coder",
        model="claude-sonnet-4-6",
        system="Be terse.",
        description="writes code",
        metadata={"team": "infra", "tier": 2},
    )
    agent_id = await rt.create_agent(config)
    agent = await rt.retrieve_agent()

    assert agent["id"] == agent_id and agent["version"] == 1
    assert agent["model"]["id"] == "claude-sonnet-4-6"
    assert agent["system"] == "Be terse." and agent["description"] == "writes code"
    assert agent["metadata"] == {"team": "infra", "tier": "2"}
    assert agent["tools"][0]["type"] == "agent_toolset_20260401"

    await rt.archive_agent(agent_id)
    assert rt.agent_id is None
    assert await rt.list_agents() == []
    assert [a["id"] for a in await rt.list_agents(include_archived=True)] == [agent_id]
    assert (await rt.retrieve_agent(agent_id))["archived_at"]


async def test_environment_wire_shapes_reach_the_provider(rt: ManagedRuntime) -> None:
    config = ManagedConfig(
        env_name="python-data",
        packages=PackagesConfig(pip=["pandas==2.2.0"], apt=["curl"]),
        networking=NetworkingConfig(
            "limited", allowed_hosts=["api.example.com"], allow_package_managers=True
        ),
    )
    env_id = await rt.create_environment(config)
    env = await rt.retrieve_environment(env_id)

    assert env["name"] == "python-data"
    assert env["config"]["networking"] == {
        "type": "limited",
        "allowed_hosts": ["api.example.com"],
        "allow_mcp_servers": False,
        "allow_package_managers": True,
    }
    packages = env["config"]["packages"]
    assert packages["pip"] == ["pandas==2.2.0"] and packages["apt"] == ["curl"]
    assert packages["npm"] == []
    assert [e["id"] for e in await rt.list_environments()] == [env_id]


async def test_environment_is_created_once_then_reused(rt: ManagedRuntime) -> None:
    env_id = await rt.create_environment()

    # a second run of the same script: the environment its config describes is reused
    assert await rt.create_environment() == env_id
    assert len(await rt.list_environments()) == 1
    with pytest.raises(ConflictError):
        await rt.create_environment(reuse=False)

    # same name, other networking: refused with the difference named, unless reuse=True
    other = ManagedConfig(networking=NetworkingConfig("limited", allowed_hosts=["x.example"]))
    with pytest.raises(ConflictError, match="its networking setting differs") as caught:
        await rt.create_environment(other)
    assert env_id in str(caught.value) and "reuse=True" in str(caught.value)
    assert await rt.create_environment(other, reuse=True) == env_id

    await rt.archive_environment(env_id)
    assert rt.environment_id is None
    assert await rt.list_environments() == []
    again = await rt.create_environment()  # the name is free once archived
    assert again != env_id
    assert await rt.delete_environment(again) == {"id": again, "type": "environment_deleted"}
    with pytest.raises(NotFoundError):
        await rt.retrieve_environment(again)


async def test_reuse_ignores_the_order_of_allowed_hosts(rt: ManagedRuntime) -> None:
    hosts = ["b.example", "a.example"]
    config = ManagedConfig(
        packages=PackagesConfig(pip=["pandas"]),
        networking=NetworkingConfig("limited", allowed_hosts=hosts),
    )
    env_id = await rt.create_environment(config)
    swapped = ManagedConfig(
        packages=PackagesConfig(pip=["pandas"]),
        networking=NetworkingConfig("limited", allowed_hosts=hosts[::-1]),
    )
    assert await rt.create_environment(swapped) == env_id
    with pytest.raises(ConflictError, match="its packages setting differs from this config's"):
        await rt.create_environment(ManagedConfig(networking=config.networking))


async def test_methods_need_an_id_when_none_is_remembered(rt: ManagedRuntime) -> None:
    with pytest.raises(ValueError, match="create_agent"):
        await rt.retrieve_agent()
    with pytest.raises(ValueError, match="create_session"):
        await rt.send_event(None, "hi")


@pytest.mark.parametrize("bad", [0, 12, ["sesn_1"], {"id": "sesn_1"}, b"sesn_1"])
async def test_an_id_that_is_not_a_string_is_a_type_error_naming_it(
    rt: ManagedRuntime, bad: Any
) -> None:
    """``rt.retrieve_session(12)`` or ``rt.send_event(["sesn_1"], "hi")`` (a program that
    passed the wrong value) raised "AttributeError: 'int' object has no attribute 'strip'",
    from inside the runtime."""
    calls = [
        lambda: rt.retrieve_agent(bad),
        lambda: rt.archive_environment(bad),
        lambda: rt.retrieve_session(bad),
        lambda: rt.send_event(bad, "hi"),
        lambda: rt.interrupt(bad),
        lambda: rt.delete_session(bad),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=r"id must be a string \(such as "):
            await call()
    with pytest.raises(TypeError, match=r"^session id must be a string"):
        rt.stream_events(bad)


async def test_an_id_longer_than_a_url_may_be_is_a_value_error(rt: ManagedRuntime) -> None:
    """An id of 70,000 characters (a file read whole where an id was expected) raised
    httpx's ``InvalidURL: URL too long``, which is no ``ValueError`` a program catches for
    bad arguments."""
    with pytest.raises(ValueError, match=r"URL too long"):
        await rt.retrieve_session("sesn_" + "x" * 70_000)


# -- config objects map to the wire --------------------------------------------------------


def test_default_config_maps_to_praisonai_defaults_on_the_wire() -> None:
    config = ManagedConfig()

    assert config.agent_body() == {
        "name": "Agent",
        "model": "claude-haiku-4-5",
        "system": "You are a helpful coding assistant.",
        "tools": [{"type": "agent_toolset_20260401"}],
    }
    assert config.environment_body() == {
        "name": "reconciler-env",
        "config": {"type": "cloud", "networking": {"type": "unrestricted"}},
    }


def test_limited_networking_defaults_follow_the_wire_not_praisonai() -> None:
    assert NetworkingConfig().to_wire() == {"type": "unrestricted"}
    assert NetworkingConfig("limited").to_wire() == {
        "type": "limited",
        "allowed_hosts": [],
        "allow_mcp_servers": False,
        "allow_package_managers": False,
    }
    with pytest.raises(ValueError, match="only to"):
        NetworkingConfig(allowed_hosts=["x.com"])
    with pytest.raises(ValueError, match="'unrestricted' or 'limited'"):
        NetworkingConfig("full")  # type: ignore[arg-type]


def test_packages_keep_only_non_empty_managers() -> None:
    packages = PackagesConfig(pip=["pandas"], npm=[], go=["golang.org/x/tools"])
    assert packages.to_wire() == {
        "type": "packages",
        "pip": ["pandas"],
        "go": ["golang.org/x/tools"],
    }
    assert PackagesConfig().is_empty
    with pytest.raises(TypeError, match="list of strings"):
        PackagesConfig(pip="pandas")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown package manager"):
        ManagedConfig(packages={"pip": ["x"], "conda": ["y"]})


def test_config_accepts_wire_dicts_and_copies_its_inputs() -> None:
    tools = [{"type": "agent_toolset_20260401", "configs": [{"name": "bash", "enabled": False}]}]
    config = ManagedConfig(
        tools=tools,
        packages={"type": "packages", "pip": ["requests"]},
        networking={"type": "limited", "allow_package_managers": True},
        mcp_servers=[{"type": "url", "name": "gh", "url": "https://mcp.example.com"}],
        skills=[{"type": "anthropic", "skill_id": "xlsx"}],
        vault_ids=["vlt_1"],
    )
    tools[0]["configs"][0]["enabled"] = True  # later edits do not leak into the config

    body = config.agent_body()
    assert body["tools"][0]["configs"] == [{"name": "bash", "enabled": False}]
    assert body["mcp_servers"][0]["name"] == "gh" and body["skills"][0]["skill_id"] == "xlsx"
    env = config.environment_body()["config"]
    assert env["packages"] == {"type": "packages", "pip": ["requests"]}
    assert env["networking"]["allow_package_managers"] is True
    assert config.vault_ids == ("vlt_1",)


def test_metadata_values_become_strings_or_are_rejected() -> None:
    config = ManagedConfig(metadata={"n": 3, "ok": True, "owner": "infra"})
    assert config.agent_body()["metadata"] == {"n": "3", "ok": "true", "owner": "infra"}
    with pytest.raises(TypeError, match="strings only"):
        ManagedConfig(metadata={"tags": ["a", "b"]})
    with pytest.raises(TypeError, match="strings only"):
        ManagedConfig(metadata={"gone": None})


@pytest.mark.parametrize("key", ["managed-by", "reconciler-project", "reconciler-address"])
def test_the_ownership_keys_are_refused_in_agent_metadata(key: str) -> None:
    """``ManagedConfig(metadata={"managed-by": "reconciler", ...})`` reached the provider on
    the agent as given: a program could forge the ownership tags the reconciler trusts (a
    plan after a lost lockfile adopts what they name) or break them. They are refused before
    anything is sent, naming the key, as a manifest's metadata is."""
    with pytest.raises(ValueError, match=rf"^ManagedConfig\.metadata key '{key}' is reserved"):
        ManagedConfig(metadata={"team": "infra", key: "reconciler"})


@pytest.mark.parametrize(
    "key",
    [
        "managed-by",
        "reconciler-address",
        "reconciler-check",
        "reconciler-candidate",
        "reconciler-rollout",
        "reconciler-record",
    ],
)
async def test_a_session_cannot_claim_the_reconcilers_ownership(
    rt: ManagedRuntime, key: str
) -> None:
    """A session tagged ``managed-by`` (or with an address) reads as one of the reconciler's
    own (a check session an apply archives): refused before anything is sent. So are the
    keys of the sessions apply runs itself, which passed: ``reconciler-check`` (with the
    project: apply archived the program's session as a check it left behind) and
    ``reconciler-rollout`` / ``reconciler-record`` (a forged rollout record, which a plan
    after a lost lockfile reads back as the deployment's holds). The project key names a
    session's project, and ``reconciler-run`` / ``reconciler-run-id`` label a session as
    ``reconciler run`` starts one: they pass (``run`` tags its sessions through this call)."""
    agent_id = await rt.create_agent()
    env_id = await rt.create_environment()
    agents, sessions = len(await rt.list_agents()), len(await rt.list_sessions("all"))
    with pytest.raises(ValueError, match=rf"^create_session metadata key '{key}' is reserved"):
        await rt.create_session(agent_id, env_id, metadata={key: "reconciler"})
    assert len(await rt.list_sessions("all")) == sessions
    assert len(await rt.list_agents()) == agents
    # other keys, the reconciler's own prefix and the project included, are the program's
    tags = {
        "reconciler-x": "1",
        "reconciler-project": "infra",
        "reconciler-run": "agent.coder",
        "reconciler-run-id": "0123abcd",
    }
    session_id = await rt.create_session(agent_id, env_id, metadata=tags)
    assert (await rt.retrieve_session(session_id))["metadata"] == tags


def test_packages_under_limited_networking_derive_package_managers() -> None:
    derived = ManagedConfig(
        packages=PackagesConfig(pip=["x"]), networking=NetworkingConfig("limited")
    )
    assert derived.environment_body()["config"]["networking"]["allow_package_managers"] is True
    # without packages the wire default stands
    plain = ManagedConfig(networking=NetworkingConfig("limited"))
    assert plain.environment_body()["config"]["networking"]["allow_package_managers"] is False
    # only an explicit False is refused
    with pytest.raises(ValueError, match="allow_package_managers"):
        ManagedConfig(
            packages=PackagesConfig(pip=["x"]),
            networking=NetworkingConfig("limited", allow_package_managers=False),
        )


def test_ends_turn() -> None:
    assert ends_turn({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}})
    assert not ends_turn(
        {"type": "session.status_idle", "stop_reason": {"type": "requires_action"}}
    )
    assert ends_turn({"type": "session.error", "error": {"type": "unknown_error"}})
    assert not ends_turn({"type": "agent.message"})


# -- lifetime -------------------------------------------------------------------------------


async def test_no_arguments_means_the_embedded_provider_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("RECONCILER_PROVIDER_URL", "RECONCILER_PROVIDER_DB", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)

    async with ManagedRuntime() as rt:
        assert rt.uses_embedded_provider
        session_id = await _ready(rt)
        assert _texts(await rt.run_turn(session_id, "hi").collect()) == ["echo: hi"]
    assert (tmp_path / ".reconciler" / "provider.db").exists()

    async with ManagedRuntime() as again:  # the same store: state persists
        assert [s["id"] for s in await again.list_sessions()] == [session_id]


async def test_db_path_and_env_var_choose_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECONCILER_PROVIDER_URL", raising=False)
    monkeypatch.setenv("RECONCILER_PROVIDER_DB", str(tmp_path / "from-env.db"))

    async with ManagedRuntime(db_path=tmp_path / "explicit.db") as rt:
        await rt.create_agent()
    async with ManagedRuntime() as rt:
        assert await rt.list_agents() == []
    assert (tmp_path / "explicit.db").exists() and (tmp_path / "from-env.db").exists()


async def test_runtime_closes_streams_left_open(client: Any) -> None:
    async with ManagedRuntime(client=client) as rt:
        session_id = await _ready(rt)
        stream = rt.stream_events(session_id)
        await stream.open()
        turn = rt.run_turn(session_id, "half")
        async for event in turn:
            if event["type"] == "agent.message":
                break  # abandoned mid-turn
        assert stream.is_open
    assert not stream.is_open
    assert [event async for event in turn] == []  # its stream was closed with the runtime
    # the shared client outlives the runtime and still works
    assert (await client.sessions.retrieve(session_id))["id"] == session_id


async def test_a_runtime_opens_on_first_use_without_async_with(tmp_path: Path) -> None:
    rt = ManagedRuntime(db_path=tmp_path / "lazy.db")
    with pytest.raises(RuntimeError, match="not connected yet"):
        rt.client  # noqa: B018 - the property raises
    try:
        session_id = await _ready(rt)  # connects on the first call
        await rt.send_event(session_id, "lazy")
        assert _texts([e async for e in rt.stream_events(session_id)]) == ["echo: lazy"]
    finally:
        await rt.aclose()
    assert (tmp_path / "lazy.db").exists()
    # closed, then used again: it connects again, to the same data
    try:
        assert [s["id"] for s in await rt.list_sessions()] == [session_id]
    finally:
        await rt.aclose()
    with pytest.raises(TypeError, match="either client"):
        ManagedRuntime(client=object(), provider_url="http://x")  # type: ignore[arg-type]


@pytest.mark.tcp
async def test_quick_start_over_http(tcp_provider: str) -> None:
    async with ManagedRuntime(provider_url=tcp_provider, api_key="sk-test") as rt:
        session_id = await _ready(rt)
        events = await rt.run_turn(session_id, "over the wire").collect()
    assert _texts(events) == ["echo: over the wire"]
    assert events[-1]["type"] == "session.status_idle"


@pytest.mark.tcp
async def test_seed_order_over_http(tcp_provider: str) -> None:
    rt = ManagedRuntime(provider_url=tcp_provider, api_key="sk-test")  # no async with
    try:
        session_id = await _ready(rt)
        for text in ("first", "second"):
            await rt.send_event(session_id, text)
            events = [event async for event in rt.stream_events(session_id)]
            assert _texts(events) == [f"echo: {text}"]
            assert len({e["id"] for e in events}) == len(events) == 4
    finally:
        await rt.aclose()


# -- what `reconciler apply` created ---------------------------------------------------------


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (cwd) where `reconciler apply` applied the example manifests."""
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return tmp_path


async def test_lookups_by_address_read_the_lockfile(applied: Path) -> None:
    tmp_path = applied
    resources = json.loads((tmp_path / "state/reconciler.lock").read_text())["resources"]

    async with ManagedRuntime() as rt:
        assert rt.agent("coder") == rt.agent("agent.coder") == resources["agent.coder"]["id"]
        assert rt.environment("python-data") == resources["environment.python-data"]["id"]
        assert rt.vault("github") == resources["vault.github"]["id"]
        deployment = rt.applied("deployment.nightly-review")
        assert deployment.id == rt.deployment("nightly-review")
        assert deployment.pins == {"agent.reviewer": 1}
        assert rt.applied("agent.reviewer").version == 1
        # the ids are live: a session of the applied agent in the applied environment
        session_id = await rt.create_session(rt.agent("coder"), rt.environment("python-data"))
        assert _texts(await rt.run_turn(session_id, "hi").collect()) == ["echo: hi"]

        with pytest.raises(NotApplied, match="did you mean agent.coder") as caught:
            rt.agent("codr")
        assert isinstance(caught.value, LookupError)
        assert "state/reconciler.lock" in str(caught.value) and "reconciler apply" in str(
            caught.value
        )
        with pytest.raises(ValueError, match="is a deployment address, not an agent one"):
            rt.agent("deployment.nightly-review")

    elsewhere = ManagedRuntime(lockfile=tmp_path / "none.lock")
    with pytest.raises(NotApplied, match="there is no lockfile at .*none.lock"):
        elsewhere.agent("coder")
    with pytest.raises(LockfileError, match="project"):
        ManagedRuntime(project="other").agent("coder")


def test_a_lookup_without_a_name_says_an_agent_and_an_environment(applied: Path) -> None:
    rt = ManagedRuntime()
    with pytest.raises(TypeError, match="^an agent name is a non-empty string, got ''$"):
        rt.agent("")
    with pytest.raises(TypeError, match="^an environment name is a non-empty string, got None$"):
        rt.environment(None)  # type: ignore[arg-type]


@pytest.mark.tcp
async def test_reconciler_provider_url_steers_a_runtime_built_with_no_arguments(
    tcp_provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #6: with no provider_url the runtime uses RECONCILER_PROVIDER_URL, like the CLI."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_PROVIDER_URL", tcp_provider)
    async with ManagedRuntime() as rt:
        assert not rt.uses_embedded_provider
        session_id = await _ready(rt)
        assert _texts(await rt.run_turn(session_id, "via the env").collect()) == [
            "echo: via the env"
        ]
    assert not (tmp_path / ".reconciler").exists()  # nothing went to the embedded store
    async with ManagedRuntime(provider_url=tcp_provider) as direct:
        assert session_id in [s["id"] for s in await direct.list_sessions()]


async def test_an_empty_id_is_refused_not_taken_for_the_remembered_one(
    rt: ManagedRuntime,
) -> None:
    """``delete_session(os.environ.get("SESSION", ""))`` must not delete the session this
    runtime created last; as the SDK does, an empty id is refused before anything is sent."""
    session_id = await _ready(rt)
    for call in (
        lambda: rt.delete_session(""),
        lambda: rt.archive_agent(""),
        lambda: rt.send_event("", "hi"),
        lambda: rt.retrieve_environment(" "),
    ):
        with pytest.raises(ValueError, match="empty"):
            await call()
    session = await rt.retrieve_session(session_id)
    assert session["id"] == session_id and not session.get("archived_at")
    assert (await rt.retrieve_agent())["archived_at"] is None


async def test_create_environment_survives_lost_answers_without_a_twin(
    provider_db: Path,
) -> None:
    """Environment names are unique, so a create whose answer was lost (a 503 or a dropped
    connection after the provider wrote it) is settled by looking the name up: the runtime
    returns the environment, creating it again only when it is not there."""
    from reconciler.provider import embedded_client
    from reconciler.provider.local import FaultConfig

    faults = FaultConfig(fault_rate=0.3, seed=11)
    names = [f"lost-{i:02d}" for i in range(20)]
    async with embedded_client(provider_db, faults=faults, max_retries=8) as client:
        runtime = ManagedRuntime(client=client)
        ids = {
            name: await runtime.create_environment(ManagedConfig(env_name=name)) for name in names
        }
        assert client.stats.retries > 0, "the faults must actually have been met"
        listed = await runtime.list_environments()
    mine = [e for e in listed if e["name"] in ids]
    assert sorted(e["name"] for e in mine) == names  # one each: no twin
    assert {e["name"]: e["id"] for e in mine} == ids


async def test_closing_the_runtime_ends_a_stream_another_task_reads(
    provider_url: str | None, provider_db: Path
) -> None:
    # a program that tails a session in a background task and leaves `async with`: the
    # close ends the tail's loop quietly (it was this program's own doing, not a lost
    # connection) and the close itself does not fail
    seen: list[str] = []
    key = "sk-test" if provider_url else None
    async with ManagedRuntime(provider_url=provider_url, api_key=key, db_path=provider_db) as rt:
        session_id = await _ready(rt)
        stream = rt.stream_events(session_id, follow=True)
        await stream.open()

        async def tail() -> None:
            async for event in stream:
                seen.append(event["type"])

        tailing = asyncio.create_task(tail())
        await rt.run_turn(session_id, "hello").collect()
        while len(seen) < 4:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(tailing, 10)  # ended without an error
    assert seen == [
        "user.message",
        "session.status_running",
        "agent.message",
        "session.status_idle",
    ]
    assert not stream.is_open

    # the same when the program closes the stream itself from another task
    async with ManagedRuntime(provider_url=provider_url, api_key=key, db_path=provider_db) as rt:
        stream = rt.stream_events(session_id, follow=True)
        await stream.open()
        tailing = asyncio.create_task(tail())
        await asyncio.sleep(0.1)
        await stream.aclose()
        await asyncio.wait_for(tailing, 10)
        assert (await rt.retrieve_session(session_id))["status"] == "idle"  # still usable


async def test_session_metadata_values_become_strings_as_managed_configs_do(
    rt: ManagedRuntime,
) -> None:
    """``create_session(metadata={"n": 1})`` went to the provider as is and came back a 400
    (metadata values are strings on the wire), while ``ManagedConfig(metadata={"n": 1})``
    sends ``"1"``. The session's metadata is converted the same way now: numbers to their
    decimal text, booleans to ``"true"``/``"false"``; None, lists and objects are a
    TypeError naming the key, before anything is sent."""
    agent_id = await rt.create_agent()
    env_id = await rt.create_environment()
    session_id = await rt.create_session(
        agent_id, env_id, metadata={"n": 1, "ratio": 0.5, "ok": True, "team": "infra"}
    )
    assert (await rt.retrieve_session(session_id))["metadata"] == {
        "n": "1",
        "ratio": "0.5",
        "ok": "true",
        "team": "infra",
    }
    sessions = len(await rt.list_sessions("all"))
    with pytest.raises(TypeError, match=r"^create_session\.metadata\['tags'\] is list"):
        await rt.create_session(agent_id, env_id, metadata={"tags": ["a"]})
    assert len(await rt.list_sessions("all")) == sessions
