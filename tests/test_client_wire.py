"""The client speaks the wire: headers, query encoding, idempotency, typed errors, retry headers.

Exact exchanges are scripted with ``httpx.MockTransport`` (the seam httpx ships) where the local
provider cannot produce them on demand: a chosen ``retry-after`` header, ``x-should-retry``, a
dropped connection after a create. Everything else is tested against the local provider.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler import __version__
from reconciler.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from reconciler.provider import ProviderClient
from reconciler.provider.client import error_for
from reconciler.provider.retry import is_idempotent, parse_retry_after
from reconciler.provider.wire import collection_kind, describe_target, encode_query, item_path

# Marked at collection time so anyio's plugin keeps parametrisation (see the conftest hook).
pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(status: int, error_type: str, message: str, code: str | None = None) -> Any:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error, "request_id": "req_env"}


def scripted(*replies: httpx.Response | Exception) -> tuple[list[httpx.Request], Handler]:
    """A handler that answers with ``replies`` in order and records every request."""
    seen: list[httpx.Request] = []
    queue = list(replies)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return seen, handle


def make_client(handler: Handler, **kw: Any) -> ProviderClient:
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_max", 0.002)
    return ProviderClient(
        "http://provider.test", "sk-test", transport=httpx.MockTransport(handler), **kw
    )


def ok(body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"id": "x"}, headers=headers)


# --------------------------------------------------------------------------- wire shape


async def test_every_request_carries_the_wire_headers() -> None:
    seen, handler = scripted(ok())
    async with make_client(handler) as client:
        await client.agents.retrieve("agent_1")
    headers = seen[0].headers
    assert headers["x-api-key"] == "sk-test"
    assert headers["anthropic-version"] == "2026-10-21"
    assert headers["anthropic-beta"] == "managed-agents-2026-04-01"
    assert headers["user-agent"] == f"reconciler/{__version__}"


async def test_no_api_key_header_without_a_key() -> None:
    seen, handler = scripted(ok())
    transport = httpx.MockTransport(handler)
    async with ProviderClient("http://provider.test", transport=transport) as client:
        await client.vaults.retrieve("vlt_1")
    assert "x-api-key" not in seen[0].headers


def test_query_encoding_matches_the_sdk() -> None:
    query = encode_query(
        {
            "created_at": {"gte": "2026-01-01T00:00:00Z", "lte": None},
            "statuses": ["idle", "running"],
            "include_archived": True,
            "has_error": False,
            "page": None,
            "created_at_lt": "2027",
        }
    )
    assert query == [
        ("created_at[gte]", "2026-01-01T00:00:00Z"),
        ("statuses[]", "idle"),
        ("statuses[]", "running"),
        ("include_archived", "true"),
        ("has_error", "false"),
        ("created_at[lt]", "2027"),
    ]


async def test_list_filters_reach_the_url_bracketed() -> None:
    seen, handler = scripted(ok({"data": [], "next_page": None}))
    async with make_client(handler) as client:
        await client.sessions.list(statuses=["idle", "running"], created_at_gte="2026").to_list()
        await client.agents.list(include_archived=True, created_at_lte="2027").to_list()
    assert seen[0].url.params.get_list("statuses[]") == ["idle", "running"]
    assert seen[0].url.params["created_at[gte]"] == "2026"
    assert seen[0].url.params["limit"] == "100"
    assert seen[1].url.params["include_archived"] == "true"
    assert seen[1].url.params["created_at[lte]"] == "2027"


def test_ids_are_percent_encoded_and_never_empty() -> None:
    assert item_path("agents", "a/b c") == "/v1/agents/a%2Fb%20c"
    with pytest.raises(ValueError, match="non-empty id"):
        item_path("agents", "")


async def test_a_dot_id_never_addresses_the_parent(client: ProviderClient) -> None:
    """``..`` percent-encodes to itself and the URL then drops it with the segment before:
    deleting the credential ``..`` of a vault sent ``DELETE /v1/vaults/{id}``, the vault and
    all its credentials. As the SDK does, ``.`` and ``..`` are refused before anything is
    sent."""
    vault = await client.vaults.create({"display_name": "kept"})
    store = await client.memory_stores.create({"name": "kept"})
    for call in (
        lambda: client.credentials.delete(vault["id"], ".."),
        lambda: client.credentials.archive(vault["id"], "."),
        lambda: client.memory_stores.memories.delete(store["id"], ".."),
        lambda: client.vaults.retrieve(".."),
    ):
        with pytest.raises(ValueError, match="dot segment"):
            await call()
    assert (await client.vaults.retrieve(vault["id"]))["archived_at"] is None
    assert (await client.memory_stores.retrieve(store["id"]))["archived_at"] is None


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", "/v1/agents", None, True),
        ("DELETE", "/v1/vaults/vlt_1", None, True),
        ("POST", "/v1/agents", {"name": "a"}, False),
        ("POST", "/v1/vaults/vlt_1/credentials", {}, False),
        ("POST", "/v1/agents/agent_1", {"system": "s"}, True),
        ("POST", "/v1/agents/agent_1", {"system": "s", "version": 3}, False),
        ("POST", "/v1/agents/agent_1/archive", None, True),
        ("POST", "/v1/vaults/v/credentials/c/archive", None, True),
        ("POST", "/v1/deployments/depl_1/pause", None, True),
        ("POST", "/v1/deployments/depl_1/unpause", None, True),
        ("POST", "/v1/deployments/depl_1/run", None, False),
        ("POST", "/v1/sessions/sesn_1/events", {"events": []}, False),
    ],
)
def test_idempotency_follows_method_path_and_precondition(
    method: str, path: str, body: Any, expected: bool
) -> None:
    assert is_idempotent(method, path, body) is expected


def test_describe_target_names_the_innermost_item() -> None:
    assert describe_target("/v1/agents/agent_1") == ("agent", "agent_1")
    assert describe_target("/v1/vaults/v/credentials/c/archive") == ("credential", "c")
    assert describe_target("/v1/agents") == ("agent", None)
    assert describe_target("/v1/sessions/s1/events/stream") == ("session", "s1")
    assert describe_target("/v1/sessions/s1/events") == ("session", "s1")
    assert describe_target("/v1/agents/a1/versions") == ("agent", "a1")
    assert describe_target("/v1/vaults/v1/credentials") == ("vault", "v1")
    assert collection_kind("/v1/vaults/v1/credentials") == "credential"
    assert collection_kind("/v1/agents") == "agent"


# --------------------------------------------------------------------------- typed errors


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "invalid_request_error", BadRequestError),
        (401, "authentication_error", AuthenticationError),
        (404, "not_found_error", NotFoundError),
        (409, "conflict_error", ConflictError),
        (500, "api_error", ServerError),
        (418, "teapot_error", ProviderError),
    ],
)
async def test_status_maps_to_one_error_class(
    status: int, error_type: str, cls: type[ProviderError]
) -> None:
    reply = httpx.Response(
        status,
        json=envelope(status, error_type, "nope", "some_code"),
        headers={"request-id": "req_7"},
    )
    seen, handler = scripted(reply)
    async with make_client(handler, max_retries=0) as client:
        with pytest.raises(cls) as caught:
            await client.agents.retrieve("agent_01X")
    err = caught.value
    assert type(err) is cls
    assert (err.status, err.error_type, err.error_code) == (status, error_type, "some_code")
    assert (err.request_id, err.method, err.path) == ("req_7", "GET", "/v1/agents/agent_01X")
    assert len(seen) == 1


def test_not_found_message_names_the_resource_and_keeps_the_providers_words() -> None:
    def not_found(message: str, path: str = "/v1/agents/agent_01X") -> str:
        payload = envelope(404, "not_found_error", message) if message else ""
        return str(error_for(404, payload, method="GET", path=path, request_id="req_1"))

    assert not_found("") == "agent agent_01X not found (404, request req_1)"
    assert not_found("agent agent_01X not found") == (
        "agent agent_01X not found (404 not_found_error, request req_1)"
    )
    assert not_found("no such agent") == (
        "agent agent_01X: no such agent (404 not_found_error, request req_1)"
    )
    # the deployment exists; what is missing is the agent version it pins
    assert not_found("agent version agent_01X v7 not found", "/v1/deployments/depl_1") == (
        "deployment depl_1: agent version agent_01X v7 not found "
        "(404 not_found_error, request req_1)"
    )


def test_bad_request_message_quotes_the_server() -> None:
    err = error_for(
        400,
        envelope(400, "invalid_request_error", "too many metadata keys", "invalid_metadata"),
        method="POST",
        path="/v1/agents",
    )
    assert str(err) == (
        "the provider rejected POST /v1/agents: too many metadata keys "
        "(400 invalid_request_error, code invalid_metadata, request req_env)"
    )


@pytest.mark.parametrize(
    ("status", "path", "said", "expected"),
    [
        (404, "/v1/agents", ": no such route", "GET /v1/agents not found: no such route"),
        (404, "/v1/agents", ": skill s not found", "GET /v1/agents: skill s not found"),
        (400, "/v1/agents/agent_1", "", "the provider rejected GET /v1/agents/agent_1"),
        (
            401,
            "/v1/agents/agent_1",
            ": bad key",
            "the provider refused the API key: bad key{tags}; check ANTHROPIC_API_KEY (or the "
            "command line's --api-key, a program's ManagedRuntime(api_key=...))",
        ),
        (403, "/v1/agents/agent_1", ": no", "not allowed to GET /v1/agents/agent_1: no"),
        (409, "/v1/agents/agent_1", ": stale", "conflict on agent agent_1: stale"),
        (409, "/v1/x/y/z", ": taken", "conflict on GET /v1/x/y/z: taken"),
        (429, "/v1/agents/agent_1", "", "rate limited on GET /v1/agents/agent_1"),
        (
            503,
            "/v1/agents/agent_1",
            ": down",
            "the provider failed on GET /v1/agents/agent_1: down",
        ),
        (418, "/v1/agents/agent_1", ": tea", "GET /v1/agents/agent_1 failed: tea"),
    ],
)
def test_each_status_reads_as_its_own_message(
    status: int, path: str, said: str, expected: str
) -> None:
    """Every class's wording, with the provider's words, the tags and the note where they go."""
    payload = {"error": {"message": said.removeprefix(": ")}} if said else ""
    err = error_for(status, payload, method="GET", path=path, request_id="req_1", note="gave up")
    tags = f" ({status}, request req_1)"
    if "{tags}" not in expected:
        expected += "{tags}"
    assert str(err) == expected.format(tags=tags) + "; gave up"


def test_non_json_error_body_is_summarised() -> None:
    err = error_for(502, "<html>\n  Bad   gateway</html>", method="GET", path="/v1/vaults")
    assert isinstance(err, ServerError)
    assert "Bad gateway" in str(err)


# --------------------------------------------------------------------------- retries


def rate_limited(**headers: str) -> httpx.Response:
    return httpx.Response(429, json=envelope(429, "rate_limit_error", "slow down"), headers=headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_parse_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = parse_retry_after(httpx.Headers({"retry-after": when}))
    assert value is not None and 28 <= value <= 31


async def test_429_waits_retry_after_ms_then_succeeds() -> None:
    seen, handler = scripted(rate_limited(**{"retry-after-ms": "200"}), ok())
    async with make_client(handler) as client:
        started = time.monotonic()
        assert await client.agents.create({"name": "a", "model": "m"}) == {"id": "x"}
        waited = time.monotonic() - started
    assert len(seen) == 2
    assert 0.19 <= waited < 1.0
    assert (client.stats.requests, client.stats.retries, client.stats.rate_limited) == (2, 1, 1)


async def test_429_exhausting_retries_raises_rate_limit_error_with_retry_after() -> None:
    # a 429 with retry-after has its own budget (max_rate_limit_retries), not max_retries
    seen, handler = scripted(rate_limited(**{"retry-after": "0.01"}))
    async with make_client(handler, max_retries=0, max_rate_limit_retries=2) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.agents.list().to_list()
    assert len(seen) == 3
    assert caught.value.retry_after == 0.01
    assert "gave up after 2 retries" in str(caught.value)


async def test_a_retry_after_longer_than_a_minute_fails_at_once() -> None:
    seen, handler = scripted(rate_limited(**{"retry-after": "3600"}), ok())
    async with make_client(handler) as client:
        with pytest.raises(RateLimitError):
            await client.vaults.retrieve("vlt_1")
    assert len(seen) == 1


async def test_x_should_retry_false_forbids_and_true_forces() -> None:
    seen, handler = scripted(
        httpx.Response(
            503, json=envelope(503, "overloaded_error", "busy"), headers={"x-should-retry": "false"}
        )
    )
    async with make_client(handler) as client:
        with pytest.raises(ServerError):
            await client.vaults.retrieve("vlt_1")
    assert len(seen) == 1

    seen, handler = scripted(
        httpx.Response(
            409, json=envelope(409, "conflict_error", "lock"), headers={"x-should-retry": "true"}
        ),
        ok(),
    )
    async with make_client(handler) as client:
        await client.vaults.retrieve("vlt_1")
    assert len(seen) == 2


async def test_a_409_the_server_calls_final_is_final() -> None:
    # the wire's deterministic 409s (a stale version, a name taken) say x-should-retry: false
    final = {"x-should-retry": "false"}
    seen, handler = scripted(
        httpx.Response(409, json=envelope(409, "conflict_error", "stale version"), headers=final)
    )
    async with make_client(handler) as client:
        with pytest.raises(ConflictError, match="conflict on agent agent_1: stale version"):
            await client.agents.update("agent_1", {"system": "s", "version": 1})
    assert len(seen) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.vaults.retrieve("vlt_1"),
        lambda c: c.agents.update("agent_1", {"system": "s", "version": 1}),
        lambda c: c.agents.create({"name": "a", "model": "m"}),
    ],
    ids=["read", "versioned-update", "create"],
)
async def test_a_409_without_x_should_retry_is_retried_as_the_sdk_retries_it(call: Any) -> None:
    # the SDK retries a 409 ("lock timeouts") unless told not to; we never did. A 409 is a
    # refusal (nothing was written), so even a create is sent again without making a twin
    lock = httpx.Response(409, json=envelope(409, "conflict_error", "lock timeout"))
    seen, handler = scripted(lock, ok({"id": "x"}))
    async with make_client(handler) as client:
        assert await call(client) == {"id": "x"}
    assert len(seen) == 2
    seen, handler = scripted(lock)
    async with make_client(handler, max_retries=2) as client:
        with pytest.raises(ConflictError, match="lock timeout"):
            await call(client)
    assert len(seen) == 3


async def test_idempotent_get_survives_dropped_connections_and_5xx() -> None:
    seen, handler = scripted(
        httpx.RemoteProtocolError("server disconnected"),
        httpx.Response(500, json=envelope(500, "api_error", "oops")),
        httpx.ReadTimeout("slow"),
        ok({"id": "agent_1"}),
    )
    async with make_client(handler) as client:
        assert await client.agents.retrieve("agent_1") == {"id": "agent_1"}
    assert len(seen) == 4
    assert client.stats.retries == 3
    assert client.stats.by_method == {"GET": 4}


async def test_max_retries_is_respected_for_connection_failures() -> None:
    seen, handler = scripted(httpx.ConnectError("refused"))
    async with make_client(handler, max_retries=3) as client:
        with pytest.raises(ProviderConnectionError) as caught:
            await client.agents.retrieve("agent_1")
    assert len(seen) == 4
    assert str(caught.value).startswith("could not reach the provider at http://provider.test:")
    assert "after 3 retries" in str(caught.value)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("reset"),
        httpx.Response(502, json=envelope(502, "api_error", "bad gateway")),
        httpx.Response(504, json=envelope(504, "timeout_error", "gateway timeout")),
    ],
    ids=["read-timeout", "disconnect", "read-error", "502", "504"],
)
async def test_create_after_the_request_was_sent_is_ambiguous(
    failure: httpx.Response | Exception,
) -> None:
    seen, handler = scripted(failure, ok())
    async with make_client(handler) as client:
        with pytest.raises(AmbiguousWriteError) as caught:
            await client.agents.create({"name": "a", "model": "m"})
    assert len(seen) == 1, "an ambiguous create must never be retried blindly"
    err = caught.value
    assert (err.method, err.path) == ("POST", "/v1/agents")
    assert "may or may not have been applied" in str(err)
    if isinstance(failure, httpx.Response):
        assert err.status == failure.status_code
        # one sentence: it read "...applied: the provider answered the provider failed on..."
        assert str(err).startswith(
            "POST /v1/agents (agent) may or may not have been applied: it was answered with an "
            f"error (the provider failed on POST /v1/agents: {failure.json()['error']['message']}"
        ), str(err)


async def test_create_is_retried_when_it_never_left() -> None:
    seen, handler = scripted(httpx.ConnectError("refused"), ok({"id": "agent_1"}))
    async with make_client(handler) as client:
        assert await client.agents.create({"name": "a", "model": "m"}) == {"id": "agent_1"}
    assert len(seen) == 2


async def test_versioned_update_is_not_idempotent_but_plain_update_is() -> None:
    seen, handler = scripted(httpx.ReadError("reset"), ok())
    async with make_client(handler) as client:
        with pytest.raises(AmbiguousWriteError):
            await client.agents.update("agent_1", {"system": "s", "version": 2})
    seen, handler = scripted(httpx.ReadError("reset"), ok())
    async with make_client(handler) as client:
        await client.agents.update("agent_1", {"system": "s"})
    assert len(seen) == 2


async def test_idempotent_override() -> None:
    seen, handler = scripted(httpx.ReadError("reset"), ok())
    async with make_client(handler) as client:
        await client.request("POST", "/v1/agents", json={"name": "a"}, idempotent=True)
    assert len(seen) == 2


async def test_bodies_follow_the_wire() -> None:
    seen, handler = scripted(ok({"data": [{"id": "e1"}]}))
    async with make_client(handler) as client:
        await client.agents.archive("agent_1")
        events = await client.sessions.send_events("sesn_1", [{"type": "user.message"}])
    assert seen[0].content == b""
    assert json.loads(seen[1].content) == {"events": [{"type": "user.message"}]}
    assert events == [{"id": "e1"}]


async def test_non_json_success_is_an_actionable_error() -> None:
    _, handler = scripted(httpx.Response(200, text="<html>hello</html>"))
    async with make_client(handler) as client:
        with pytest.raises(ProviderError, match="not JSON"):
            await client.agents.retrieve("agent_1")


# --------------------------------------------------------------------------- pagination


async def test_pager_follows_next_page_until_null() -> None:
    pages = {
        None: {"data": [{"id": 1}, {"id": 2}], "next_page": "c1"},
        "c1": {"data": [], "next_page": "c2"},  # an empty page does not end the walk
        "c2": {"data": [{"id": 3}], "next_page": ""},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        return ok(pages[request.url.params.get("page")])

    async with make_client(handle) as client:
        pager = client.agents.list()
        assert [a["id"] async for a in pager] == [1, 2, 3]
        assert await pager.to_list() == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert client.stats.requests == 6


async def test_pager_refuses_a_cursor_loop() -> None:
    async with make_client(lambda r: ok({"data": [{"id": 1}], "next_page": "same"})) as client:
        with pytest.raises(ProviderError, match="twice"):
            await client.agents.list().to_list()
