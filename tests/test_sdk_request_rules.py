"""Rules the SDK's parameter docs state about what a request may hold, checked through the SDK.

Each case is a request the SDK lets a user send and its docstring says the API refuses (or
takes): the local provider must answer as the API would, a 400 ``BadRequestError`` for a
refusal, so that a client that is wrong about a rule fails here, not only in production.
Runs against the provider over loopback TCP, the SDK validating every answer strictly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

pytestmark = pytest.mark.tcp


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[anthropic.Anthropic]:
    from reconciler.provider.local import BackgroundServer, create_app

    db = tmp_path_factory.mktemp("rules") / "provider.db"
    with (
        BackgroundServer(create_app(db)) as server,
        anthropic.Anthropic(
            base_url=server.url, api_key="test", max_retries=0, _strict_response_validation=True
        ) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def vault(sdk: anthropic.Anthropic) -> str:
    return sdk.beta.vaults.create(display_name="hosts").id


def _env_var(name: str, hosts: list[str]) -> Any:
    return {
        "type": "environment_variable",
        "secret_name": name,
        "secret_value": "s3cret",
        "networking": {"type": "limited", "allowed_hosts": hosts},
    }


# "Each entry is a bare hostname (`api.example.com`), an IPv4 address (`192.0.2.1`), or a `*.`
# wildcard (`*.example.com`). URLs, ports, paths, and IPv6 addresses aren't accepted."
GOOD_HOSTS = ["api.example.com", "localhost", "192.0.2.1", "*.example.com", "API.Example.COM"]
BAD_HOSTS = [
    "https://api.example.com",
    "api.example.com:443",
    "192.0.2.1:8080",
    "api.example.com/v1",
    "::1",
    "[::1]",
    "2001:db8::1",
    "api..example.com",
    "-api.example.com",
    "api.example.com.",
    "api example.com",
    "*",
    "*.",
    "a.*.example.com",
    "**.example.com",
    "",
]


def test_credential_hosts_are_bare_hosts_ipv4_or_wildcards(
    sdk: anthropic.Anthropic, vault: str
) -> None:
    credentials = sdk.beta.vaults.credentials
    for i, host in enumerate(GOOD_HOSTS):
        made = credentials.create(vault, auth=_env_var(f"GOOD_{i}", [host]))
        assert made.auth.networking.allowed_hosts == [host]  # type: ignore[union-attr]
    for i, host in enumerate(BAD_HOSTS):
        with pytest.raises(anthropic.BadRequestError, match="allowed_hosts"):
            credentials.create(vault, auth=_env_var(f"BAD_{i}", ["ok.example.com", host]))
    kept = credentials.create(vault, auth=_env_var("KEPT", ["ok.example.com"]))
    with pytest.raises(anthropic.BadRequestError, match="allowed_hosts"):
        credentials.update(
            kept.id,
            vault_id=vault,
            auth={
                "type": "environment_variable",
                "networking": {"type": "limited", "allowed_hosts": ["https://x.example.com"]},
            },
        )
    names = {c.auth.secret_name for c in credentials.list(vault, limit=100)}  # type: ignore[union-attr]
    assert names == {f"GOOD_{i}" for i in range(len(GOOD_HOSTS))} | {"KEPT"}


def _web_tool(name: str, **config: Any) -> Any:
    return [{"type": "agent_toolset_20260401", "configs": [{"name": name, **config}]}]


def test_web_tool_domains_are_plain_hostnames(sdk: anthropic.Anthropic) -> None:
    """web_fetch: "a plain hostname ... (no scheme, port, or path)"; web_search: "(no scheme
    or port; an optional path suffix is accepted)"."""
    agents = sdk.beta.agents
    for key in ("allowed_domains", "blocked_domains"):
        ok = agents.create(
            name="ok", model="claude-haiku-4-5", tools=_web_tool("web_fetch", **{key: ["a.com"]})
        )
        assert ok.tools[0].configs[0].model_dump()[key] == ["a.com"]  # type: ignore[union-attr]
        searched = agents.create(
            name="ok",
            model="claude-haiku-4-5",
            tools=_web_tool("web_search", **{key: ["docs.a.com/guides"]}),
        )
        assert searched.tools[0].configs[0].model_dump()[key] == ["docs.a.com/guides"]  # type: ignore[union-attr]
        for tool, bad in (
            ("web_fetch", "https://a.com"),
            ("web_fetch", "a.com:8080"),
            ("web_fetch", "a.com/path"),
            ("web_fetch", "a b.com"),
            ("web_search", "https://a.com"),
            ("web_search", "a.com:8080"),
            ("web_search", "/path-only"),
        ):
            with pytest.raises(anthropic.BadRequestError, match=key):
                agents.create(
                    name="bad", model="claude-haiku-4-5", tools=_web_tool(tool, **{key: [bad]})
                )


def _fetch_sources(**sources: Any) -> Any:
    return _web_tool("web_fetch", url_sources=sources)


def _custom(name: str) -> Any:
    return {
        "type": "custom",
        "name": name,
        "description": "d",
        "input_schema": {"type": "object", "properties": {}},
    }


def _only(*names: str, kind: str = "only") -> Any:
    return {"type": kind, "tools": [{"type": "tool_reference", "name": n} for n in names]}


def test_url_source_lists_name_tools_of_the_right_kind(sdk: anthropic.Anthropic) -> None:
    """client_tool_results: "Each name in a list must be a custom tool in the same tools
    array"; server_tool_results: "Each name in a list must be "web_search" or "web_fetch"."""
    agents = sdk.beta.agents
    fine = agents.create(
        name="fine",
        model="claude-haiku-4-5",
        tools=[
            *_fetch_sources(
                client_tool_results=_only("lookup"),
                server_tool_results=_only("web_search", "web_fetch", kind="except"),
            ),
            _custom("lookup"),
        ],
    )
    with pytest.raises(anthropic.BadRequestError, match="client_tool_results"):
        agents.create(
            name="bad",
            model="claude-haiku-4-5",
            tools=_fetch_sources(client_tool_results=_only("lookup")),
        )
    with pytest.raises(anthropic.BadRequestError, match="client_tool_results"):
        agents.create(
            name="bad",
            model="claude-haiku-4-5",
            tools=[*_fetch_sources(client_tool_results=_only("bash", kind="except")), _custom("x")],
        )
    with pytest.raises(anthropic.BadRequestError, match="server_tool_results"):
        agents.create(
            name="bad",
            model="claude-haiku-4-5",
            tools=_fetch_sources(server_tool_results=_only("bash")),
        )
    # an update that drops the custom tool a kept filter names is refused the same way
    with pytest.raises(anthropic.BadRequestError, match="client_tool_results"):
        agents.update(fine.id, tools=_fetch_sources(client_tool_results=_only("lookup")))
    assert agents.retrieve(fine.id).version == 1


def _budget(amount: str) -> Any:
    return {"type": "limit", "max_list_cost": {"amount": amount, "currency": "USD"}}


def test_a_session_budget_is_replaced_never_added_nor_lowered_to_the_spend(
    sdk: anthropic.Anthropic,
) -> None:
    """ "A budget cannot be added to a session created without one (rejected with reason
    `budget_create_only`), and a removed budget cannot be re-added. [...] Lowering
    `max_list_cost` to at or below the session's consumed list cost is rejected with reason
    `budget_not_raised`": the reasons are the errors' ``details.error_code``."""
    b = sdk.beta
    agent = b.agents.create(name="a", model="claude-haiku-4-5")
    env = b.environments.create(name="budgets")
    capped = b.sessions.create(agent=agent.id, environment_id=env.id, budget=_budget("500"))
    raised = b.sessions.update(capped.id, budget=_budget("900")).budget
    assert raised is not None and raised.max_list_cost.amount == "900"
    with pytest.raises(anthropic.BadRequestError) as lowered:
        b.sessions.update(capped.id, budget=_budget("0"))  # nothing spent yet: 0 is not above
    assert lowered.value.body["error"]["details"]["error_code"] == "budget_not_raised"  # type: ignore[index]
    assert b.sessions.update(capped.id, budget=None).budget is None
    uncapped = b.sessions.create(agent=agent.id, environment_id=env.id)
    for session in (capped, uncapped):
        with pytest.raises(anthropic.BadRequestError) as added:
            b.sessions.update(session.id, budget=_budget("100"))
        assert added.value.body["error"]["details"]["error_code"] == "budget_create_only"  # type: ignore[index]
        assert b.sessions.retrieve(session.id).budget is None


def test_url_source_lists_hold_1_to_128_distinct_tools(sdk: anthropic.Anthropic) -> None:
    """ "Between 1 and 128 entries, each with a different name. An empty list is rejected"."""
    agents = sdk.beta.agents
    names = [f"t{i}" for i in range(128)]
    made = agents.create(
        name="wide",
        model="claude-haiku-4-5",
        tools=[*_fetch_sources(client_tool_results=_only(*names)), *map(_custom, names)],
    )
    assert len(made.tools) == 129
    for sources in (
        {"server_tool_results": _only()},
        {"server_tool_results": _only(kind="except")},
        {"server_tool_results": _only("web_fetch", "web_fetch")},
        {"client_tool_results": _only(*names, "t128")},
    ):
        with pytest.raises(anthropic.BadRequestError, match="tools"):
            agents.create(
                name="bad",
                model="claude-haiku-4-5",
                tools=[*_fetch_sources(**sources), *map(_custom, [*names, "t128"])],
            )


def test_a_deployment_without_a_budget_has_no_budget_field(sdk: anthropic.Anthropic) -> None:
    """The deployment's ``budget``: "Absent when no budget is set" (created without one, or
    cleared with null); present when set."""
    b = sdk.beta
    agent = b.agents.create(name="a", model="claude-haiku-4-5")
    env = b.environments.create(name="deploy-budgets")
    message: Any = {"type": "user.message", "content": [{"type": "text", "text": "go"}]}
    plain = b.deployments.create(
        name="plain", agent=agent.id, environment_id=env.id, initial_events=[message]
    )
    capped = b.deployments.create(
        name="capped",
        agent=agent.id,
        environment_id=env.id,
        initial_events=[message],
        budget=_budget("500"),
    )
    fields = lambda deployment_id: b.deployments.with_raw_response.retrieve(deployment_id).json()
    assert "budget" not in fields(plain.id)
    assert fields(capped.id)["budget"]["max_list_cost"]["amount"] == "500"
    b.deployments.update(capped.id, budget=None)
    assert "budget" not in fields(capped.id)
    listed = b.deployments.with_raw_response.list().json()["data"]
    assert [d for d in listed if "budget" in d] == []


def test_a_deny_message_goes_only_with_a_deny(sdk: anthropic.Anthropic) -> None:
    """``deny_message``: "Only allowed when result is 'deny'"."""
    b = sdk.beta
    agent = b.agents.create(name="a", model="claude-haiku-4-5")
    env = b.environments.create(name="confirmations")
    session = b.sessions.create(agent=agent.id, environment_id=env.id)
    with pytest.raises(anthropic.BadRequestError, match="deny_message"):
        b.sessions.events.send(
            session.id,
            events=[
                {
                    "type": "user.tool_confirmation",
                    "tool_use_id": "sevt_011CZkYpogX7uDKUyvBTophP",
                    "result": "allow",
                    "deny_message": "no",
                }
            ],
        )
    assert list(b.sessions.events.list(session.id)) == []
    # with a deny the message passes: what is refused is the tool use that never happened
    with pytest.raises(anthropic.BadRequestError, match="tool_use_id sevt_"):
        b.sessions.events.send(
            session.id,
            events=[
                {
                    "type": "user.tool_confirmation",
                    "tool_use_id": "sevt_011CZkYpogX7uDKUyvBTophP",
                    "result": "deny",
                    "deny_message": "not now",
                }
            ],
        )


def _oauth(url: str, auth: Any) -> Any:
    return {
        "type": "mcp_oauth",
        "access_token": "a",
        "mcp_server_url": url,
        "refresh": {
            "client_id": "c",
            "refresh_token": "r",
            "token_endpoint": "https://auth.example.com/token",
            "token_endpoint_auth": auth,
        },
    }


def test_a_new_client_secret_keeps_the_stored_endpoint_auth_type(
    sdk: anthropic.Anthropic, vault: str
) -> None:
    """A new ``client_secret``: "The credential must already use `client_secret_basic` or
    `client_secret_post`. It keeps its current `token_endpoint_auth` type, even if the `type`
    sent with this secret is the other one."""
    credentials = sdk.beta.vaults.credentials
    for stored, sent in (
        ("client_secret_post", "client_secret_basic"),
        ("client_secret_basic", "client_secret_post"),
        ("client_secret_basic", "client_secret_basic"),
    ):
        made = credentials.create(
            vault,
            auth=_oauth(
                f"https://{stored}.{sent}.example.com",
                {"type": stored, "client_secret": "old"},
            ),
        )
        updated = credentials.update(
            made.id,
            vault_id=vault,
            auth={
                "type": "mcp_oauth",
                "refresh": {"token_endpoint_auth": {"type": sent, "client_secret": "new"}},  # type: ignore[typeddict-item]
            },
        )
        assert updated.auth.refresh.token_endpoint_auth.type == stored  # type: ignore[union-attr]
    public = credentials.create(vault, auth=_oauth("https://public.example.com", {"type": "none"}))
    with pytest.raises(anthropic.BadRequestError, match="client_secret"):
        credentials.update(
            public.id,
            vault_id=vault,
            auth={
                "type": "mcp_oauth",
                "refresh": {
                    "token_endpoint_auth": {"type": "client_secret_basic", "client_secret": "s"}
                },
            },
        )
    kept = credentials.retrieve(public.id, vault_id=vault)
    assert kept.auth.refresh.token_endpoint_auth.type == "none"  # type: ignore[union-attr]


def _custom(name: str) -> Any:
    return {
        "type": "custom",
        "name": name,
        "description": "Looks things up.",
        "input_schema": {"type": "object"},
    }


def test_custom_tool_names_are_unique(sdk: anthropic.Anthropic) -> None:
    """A custom tool's ``name``: "Unique name for the tool" - on an agent, in an update and in
    a session's per-session tool overrides alike."""
    b = sdk.beta
    twice = [_custom("lookup"), _custom("fetch"), _custom("lookup")]
    with pytest.raises(anthropic.BadRequestError, match="custom tool 'lookup'"):
        b.agents.create(name="twice", model="claude-sonnet-4-6", tools=twice)
    agent = b.agents.create(name="once", model="claude-sonnet-4-6", tools=twice[:2])
    with pytest.raises(anthropic.BadRequestError, match="custom tool 'lookup'"):
        b.agents.update(agent.id, version=agent.version, tools=twice)
    assert b.agents.retrieve(agent.id).version == agent.version  # the refusal changed nothing
    env = b.environments.create(name="tool-names")
    with pytest.raises(anthropic.BadRequestError, match="custom tool 'lookup'"):
        b.sessions.create(
            agent={"type": "agent_with_overrides", "id": agent.id, "tools": twice},
            environment_id=env.id,
        )
    session = b.sessions.create(agent=agent.id, environment_id=env.id)
    with pytest.raises(anthropic.BadRequestError, match="custom tool 'lookup'"):
        b.sessions.update(session.id, agent={"tools": twice})


MISSING_ID: Any = {"type": "custom"}  # a skill reference without its skill_id


def test_a_refusal_names_the_field_as_the_request_spelled_it(sdk: anthropic.Anthropic) -> None:
    """A field that takes one of several shapes (``model``: a string or an object; a session's
    ``agent``: an id, a reference or overrides) was refused with the first shape's complaint
    and pydantic's names for the shapes: an object whose ``effort`` was wrong read
    "model.constrained-str: Input should be a valid string". A rule of the provider's own read
    "scope: Value error, 'account' is refused ..."."""
    b = sdk.beta
    refusals: list[tuple[Any, str]] = [
        (
            lambda: b.agents.create(name="x", model={"id": "claude-sonnet-4-6", "effort": "most"}),
            r"^model\.effort: Input should be 'low', 'medium'",
        ),
        (
            lambda: b.agents.create(name="x", model={"id": ""}),
            r"^model\.id: String should have at least 1 character",
        ),
        (
            lambda: b.agents.create(name="x", model=""),
            r"^model: String should have at least 1 character",
        ),
        (
            lambda: b.agents.create(name="x", model="claude-sonnet-4-6", tools=[_custom("a b")]),
            r"^tools\.0\.name: String should match pattern",
        ),
        (
            lambda: b.agents.create(name="x", model="claude-sonnet-4-6", skills=[MISSING_ID]),
            r"^skills\.0\.skill_id: Field required",
        ),
        (
            lambda: b.sessions.create(
                agent={"type": "agent", "id": "agent_1", "version": 0}, environment_id="env_1"
            ),
            r"^agent\.version: Input should be greater than or equal to 1",
        ),
        (
            lambda: b.sessions.create(
                agent={"type": "agent_with_overrides", "id": "agent_1", "system": "s" * 100_001},
                environment_id="env_1",
            ),
            r"^agent\.system: String should have at most 100000 characters",
        ),
        (
            lambda: b.environments.create(name="x", scope="account"),
            r"^scope: 'account' is refused for API organizations",
        ),
    ]
    for call, message in refusals:
        with pytest.raises(anthropic.BadRequestError) as refused:
            call()
        assert isinstance(refused.value.body, dict)
        assert re.match(message, refused.value.body["error"]["message"]), refused.value.body


def test_an_archived_vault_is_refused_as_attached_not_as_changed(
    sdk: anthropic.Anthropic,
) -> None:
    """A session or deployment naming an archived vault was refused with "vault ... is
    archived and cannot be changed", as if the request changed the vault; it attaches it."""
    b = sdk.beta
    agent = b.agents.create(name="vaulted", model="claude-sonnet-4-6")
    env = b.environments.create(name="vaulted")
    vault = b.vaults.archive(b.vaults.create(display_name="gone").id)
    message = f"vault {vault.id} is archived; archived vaults cannot be attached"
    event: Any = {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
    deployment = b.deployments.create(
        name="vaulted", agent=agent.id, environment_id=env.id, initial_events=[event]
    )
    for call in (
        lambda: b.sessions.create(agent=agent.id, environment_id=env.id, vault_ids=[vault.id]),
        lambda: b.deployments.create(
            name="v",
            agent=agent.id,
            environment_id=env.id,
            initial_events=[event],
            vault_ids=[vault.id],
        ),
        lambda: b.deployments.update(deployment.id, vault_ids=[vault.id]),
    ):
        with pytest.raises(anthropic.BadRequestError) as refused:
            call()
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["error"]["message"] == message


def test_an_unknown_event_type_filter_is_refused_not_an_empty_list(
    sdk: anthropic.Anthropic,
) -> None:
    """``types`` is a list of ``BetaManagedAgentsSessionEventType`` and ``event_deltas`` of
    ``BetaManagedAgentsDeltaType``: a typo ("agent.mesage") listed nothing, as if the session
    had no messages, and a stream took any delta name."""
    b = sdk.beta
    agent = b.agents.create(name="typo", model="claude-haiku-4-5")
    env = b.environments.create(name="typo")
    session = b.sessions.create(agent=agent.id, environment_id=env.id)
    assert list(b.sessions.events.list(session.id, types=["agent.message"])) == []
    with pytest.raises(
        anthropic.BadRequestError, match=r"types\[\]\.0: Input should be 'user.message'"
    ):
        b.sessions.events.list(session.id, types=["agent.mesage"])  # type: ignore[list-item]
    with pytest.raises(
        anthropic.BadRequestError, match=r"event_deltas\[\]\.0: Input should be 'agent.message'"
    ):
        b.sessions.events.stream(session.id, event_deltas=["agent.thinkin"])  # type: ignore[list-item]


def test_a_bad_metadata_key_is_named_as_a_key(sdk: anthropic.Anthropic) -> None:
    """An empty metadata key was refused as "metadata..[key]: ..." (pydantic's path, with the
    empty key between two dots); a key that is too long as "metadata.<key>.[key]: ..."."""
    b = sdk.beta
    long_key = "k" * 65
    for metadata, message in (
        ({"": "x"}, "metadata key '': String should have at least 1 character"),
        ({long_key: "x"}, f"metadata key {long_key!r}: String should have at most 64 characters"),
    ):
        with pytest.raises(anthropic.BadRequestError) as refused:
            b.agents.create(name="keys", model="claude-haiku-4-5", metadata=metadata)
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["error"]["message"] == message
        assert refused.value.body["error"]["details"]["error_code"] == "invalid_metadata"
    vault = b.vaults.create(display_name="keys")
    with pytest.raises(anthropic.BadRequestError, match="metadata key '': "):
        b.vaults.update(vault.id, metadata={"": None})


def test_the_256_tool_cap_counts_the_tools_inside_toolsets(sdk: anthropic.Anthropic) -> None:
    """``tools``: "Maximum of 256 tools across all toolsets allowed." The cap counted entries
    of ``tools``, so the agent toolset's eight built-in tools plus 255 custom tools passed."""
    b = sdk.beta
    toolset: Any = {"type": "agent_toolset_20260401"}
    customs = [_custom(f"t{i}") for i in range(249)]
    with pytest.raises(anthropic.BadRequestError, match="at most 256 tools.*257"):
        b.agents.create(name="many", model="claude-sonnet-4-6", tools=[toolset, *customs])
    made = b.agents.create(name="many", model="claude-sonnet-4-6", tools=[toolset, *customs[:248]])
    assert len(made.tools) == 249


def test_an_agent_has_one_built_in_toolset(sdk: anthropic.Anthropic) -> None:
    """Two ``agent_toolset_20260401`` entries were taken: each built-in tool then existed
    twice, with policies that may disagree, and tool names are unique to an agent."""
    b = sdk.beta
    ask: Any = {
        "type": "agent_toolset_20260401",
        "default_config": {"permission_policy": {"type": "always_ask"}},
    }
    allow: Any = {"type": "agent_toolset_20260401"}
    with pytest.raises(anthropic.BadRequestError, match="agent_toolset_20260401 .* twice"):
        b.agents.create(name="twice", model="claude-sonnet-4-6", tools=[allow, ask])
    agent = b.agents.create(name="once", model="claude-sonnet-4-6", tools=[allow])
    with pytest.raises(anthropic.BadRequestError, match="agent_toolset_20260401 .* twice"):
        b.agents.update(agent.id, version=agent.version, tools=[allow, ask])
    assert b.agents.retrieve(agent.id).version == agent.version


def _bearer(url: str) -> Any:
    return {"type": "static_bearer", "token": "s3cret", "mcp_server_url": url}


def test_a_credentials_mcp_server_url_is_an_http_url_unique_whatever_its_hosts_case(
    sdk: anthropic.Anthropic,
) -> None:
    """``mcp_server_url``: "URL of the MCP server this credential authenticates against".
    "not a url" and "ftp://..." were stored, and a second credential for
    ``https://MCP.Example.com/mcp`` passed beside one for ``https://mcp.example.com/mcp``
    (a URL's scheme and host are case-insensitive: it is the same server)."""
    credentials = sdk.beta.vaults.credentials
    vault = sdk.beta.vaults.create(display_name="mcp urls").id
    for url in ("not a url", "ftp://mcp.example.com/mcp", "https://", "mcp.example.com/mcp"):
        with pytest.raises(anthropic.BadRequestError, match=r"^.*mcp_server_url: .*http"):
            credentials.create(vault, auth=_bearer(url))
    assert list(credentials.list(vault)) == []
    credentials.create(vault, auth=_bearer("https://mcp.example.com/mcp"))
    with pytest.raises(anthropic.ConflictError, match="already uses mcp_server_url"):
        credentials.create(vault, auth=_bearer("HTTPS://MCP.Example.com/mcp"))
    other = credentials.create(vault, auth=_bearer("https://mcp.example.com/MCP"))  # a path is not
    assert other.auth.mcp_server_url == "https://mcp.example.com/MCP"  # type: ignore[union-attr]


def test_a_tool_answer_names_a_tool_use_of_the_session(sdk: anthropic.Anthropic) -> None:
    """``tool_use_id`` is "the id of the ``agent.tool_use`` or ``agent.mcp_tool_use`` event
    this result corresponds to", ``custom_tool_use_id`` that of an ``agent.custom_tool_use``:
    answers to tool uses that never happened were stored as if they answered something."""
    b = sdk.beta
    agent = b.agents.create(name="answers", model="claude-haiku-4-5")
    env = b.environments.create(name="answers")
    session = b.sessions.create(agent=agent.id, environment_id=env.id)
    hello: Any = {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
    sent = b.sessions.events.send(session.id, events=[hello]).data
    assert sent is not None
    before = [e.id for e in b.sessions.events.list(session.id)]
    for ref in ("sevt_011CZkYpogX7uDKUyvBTophP", sent[0].id):  # unknown; not a tool use
        answers: list[tuple[Any, str]] = [
            (
                {"type": "user.tool_confirmation", "tool_use_id": ref, "result": "allow"},
                "tool_use_id",
            ),
            ({"type": "user.custom_tool_result", "custom_tool_use_id": ref}, "custom_tool_use_id"),
            ({"type": "user.tool_result", "tool_use_id": ref}, "tool_use_id"),
        ]
        for answer, field in answers:
            with pytest.raises(
                anthropic.BadRequestError, match=rf"^.*{field} {ref} is not an agent\."
            ):
                b.sessions.events.send(session.id, events=[hello, answer])
    assert [e.id for e in b.sessions.events.list(session.id)] == before  # nothing stored
