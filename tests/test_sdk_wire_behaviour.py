"""What the local provider does, judged by the official SDK (``anthropic`` 2.10.0) in strict mode.

``test_sdk_strict.py`` checks the shape of every answer; this file checks behaviour the SDK
relies on, over loopback TCP with ``_strict_response_validation=True``: how the SDK's own
retry policy meets each refusal (a deterministic 409 is sent once, a 429 is waited out), the
request ids it reads, every list walked by its auto-pagination one item per page (each item
once, the last page's ``next_page`` null, a cursor of one list refused by another), the
``limit`` bounds each list declares, the request size limit (413), and the SDK's own helpers
(``files_from_dir``, the skill download and the memory-store sync of ``anthropic.lib``)
run end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.lib import files_from_dir

from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

pytestmark = pytest.mark.tcp

MESSAGE = {"type": "user.message", "content": [{"type": "text", "text": "ping"}]}


class Counting(httpx2.HTTPTransport):
    """Counts the requests the SDK really sends (its retries included)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        self.sent.append((request.method, request.url.path, response.status_code))
        return response


def strict_sdk(url: str, transport: httpx2.BaseTransport | None = None, **kw: Any) -> Any:
    """The SDK as a careful user builds it, validating every answer strictly."""
    http = httpx2.Client(transport=transport) if transport is not None else None
    return anthropic.Anthropic(
        base_url=url, api_key="test", _strict_response_validation=True, http_client=http, **kw
    )


@pytest.fixture
def counting() -> Counting:
    return Counting()


@pytest.fixture
def sdk(tcp_provider: str, counting: Counting) -> Iterator[anthropic.Anthropic]:
    """The SDK with its default retries (2): a refusal it retries shows in ``counting``."""
    with strict_sdk(tcp_provider, counting) as client:
        yield client


# -- request size -----------------------------------------------------------------------------


def test_a_body_over_32_mb_is_a_413_before_it_is_read(
    sdk: anthropic.Anthropic, counting: Counting
) -> None:
    """The API refuses a request body over 32 MB with a 413 (the SDK's ContentTooLargeError,
    not retried). Four 9 MB messages pass every field limit: only the size can refuse them."""
    agent = sdk.beta.agents.create(name="a", model="claude-haiku-4-5")
    env = sdk.beta.environments.create(name="e")
    session = sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
    text = "x" * (9 * 1024 * 1024)
    big = [{"type": "user.message", "content": [{"type": "text", "text": text}]}] * 4
    del counting.sent[:]
    with pytest.raises(anthropic.ContentTooLargeError) as refused:
        sdk.beta.sessions.events.send(session.id, events=big)  # type: ignore[arg-type]
    assert refused.value.status_code == 413
    assert "32" in refused.value.message and refused.value.request_id
    assert len(counting.sent) == 1
    assert list(sdk.beta.sessions.events.list(session.id)) == []
    # just under the limit is read and judged on its fields as before
    assert len(sdk.beta.sessions.events.send(session.id, events=big[:3]).data or []) == 3  # type: ignore[arg-type]
