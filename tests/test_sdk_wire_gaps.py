"""Gaps between the local provider and the wire the official SDK (``anthropic`` 2.10.0) speaks.

Over loopback TCP (``tcp_provider``), as a client of the real API would meet them: a ``HEAD``
request answered as its ``GET`` without a body; the Anthropic skills (``xlsx``, ``pptx``,
``docx``, ``pdf``) that every workspace sees; and the session resources routes. Every answer
is read through the SDK with ``_strict_response_validation=True`` and checked against its
models strictly (no coercion, no undeclared field), every error against ``BetaErrorResponse``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import BetaErrorResponse

pytestmark = pytest.mark.tcp

HEADERS = {
    "x-api-key": "k",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "managed-agents-2026-04-01",
}


@pytest.fixture
def sdk(tcp_provider: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=tcp_provider, api_key="k", max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


@pytest.fixture
def raw(tcp_provider: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=tcp_provider, headers=HEADERS, timeout=30) as client:
        yield client


def error_of(response: Any) -> BetaErrorResponse:
    """The body of an error answer, strictly the SDK's error envelope."""
    envelope = BetaErrorResponse.model_validate_json(response.content, strict=True)
    assert response.headers["request-id"] == envelope.request_id
    return envelope


# -- HEAD ---------------------------------------------------------------------------------------


def test_head_is_answered_as_get_without_a_body(
    sdk: anthropic.Anthropic, raw: httpx2.Client
) -> None:
    """A monitoring probe or a proxy health check sends HEAD: the answer is the GET's status
    and headers with no body (RFC 9110), not a 405."""
    agent = sdk.beta.agents.create(name="probe", model="claude-haiku-4-5")
    env = sdk.beta.environments.create(name="probe-env")
    session = sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
    for path in (
        f"/v1/agents/{agent.id}",
        "/v1/agents",
        f"/v1/environments/{env.id}",
        f"/v1/sessions/{session.id}/events",
        f"/v1/sessions/{session.id}/events/stream",  # a stream ends at once: no body
    ):
        head = raw.head(path)
        got = raw.get(path) if not path.endswith("stream") else None
        assert head.status_code == 200, (path, head.status_code, head.text)
        assert head.content == b""
        assert head.headers["request-id"].startswith("req_")
        if got is not None:
            assert head.headers["content-type"] == got.headers["content-type"]
            assert int(head.headers["content-length"]) == len(got.content)
        else:
            assert head.headers["content-type"].startswith("text/event-stream")

    missing = raw.head("/v1/agents/agent_011CZkYpogX7uDKUyvBTophP")
    assert (missing.status_code, missing.content) == (404, b"")
    assert missing.headers["request-id"].startswith("req_")
    anonymous = raw.head(f"/v1/agents/{agent.id}", headers={"x-api-key": ""})
    assert (anonymous.status_code, anonymous.content) == (401, b"")
    # a path whose only method is POST still says which methods it takes
    archive = raw.head(f"/v1/agents/{agent.id}/archive")
    assert archive.status_code == 405 and archive.headers["allow"] == "POST"
    assert raw.options("/v1/agents").headers["allow"] == "GET, HEAD, POST"
    # nothing was changed by any of it
    assert sdk.beta.agents.retrieve(agent.id).archived_at is None
