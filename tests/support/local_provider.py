"""Shared helpers of the local provider tests (plain httpx over the ASGI app).

It holds no tests: only the client factory, the assertions and the small builders that
``test_local_provider*.py`` share.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

BETA = {"anthropic-beta": "managed-agents-2026-04-01"}
#: What every request to the local provider carries: the API version, the beta and a key (any
#: key will do, none is a 401; no version is a 400).
HEADERS = {**BETA, "anthropic-version": "2026-10-21", "x-api-key": "test"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TEXT = {"type": "user.message", "content": [{"type": "text", "text": "hello world"}]}


def local_client(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://local",
        headers=HEADERS if headers is None else headers,
    )


async def ok(response: httpx.Response | Any) -> dict[str, Any]:
    r = await response if not isinstance(response, httpx.Response) else response
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def assert_error(r: httpx.Response, status: int, error_type: str, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"].startswith("req_")
    assert r.headers["request-id"] == body["request_id"]
    if code is not None:
        assert body["error"]["details"]["error_code"] == code


async def new_agent(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    return await ok(
        http.post("/v1/agents", json={"name": "coder", "model": "claude-sonnet-4-6", **fields})
    )


async def new_env(http: httpx.AsyncClient, name: str = "python", **fields: Any) -> dict[str, Any]:
    return await ok(http.post("/v1/environments", json={"name": name, **fields}))


async def new_session(http: httpx.AsyncClient, **agent_fields: Any) -> dict[str, Any]:
    """A session of a new agent (``new_agent(**agent_fields)``) in a new environment."""
    agent = await new_agent(http, **agent_fields)
    env = await new_env(http)
    return await ok(
        http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
    )


def skill_md(slug: str, description: str = "Does a thing.") -> bytes:
    """A SKILL.md whose frontmatter names ``slug``."""
    return f"---\nname: {slug}\ndescription: {description}\n---\n# {slug}\n".encode()


async def new_skill(
    http: httpx.AsyncClient, slug: str = "tidy-data", *extra: tuple[str, bytes]
) -> dict[str, Any]:
    """Upload a one-directory skill (``SKILL.md`` plus ``extra`` files) as a new skill."""
    files = [("files[]", (f"{slug}/SKILL.md", skill_md(slug))), *(("files[]", e) for e in extra)]
    return await ok(http.post("/v1/skills", files=files))


async def walk(http: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = None
    while True:
        query = {**params, **({"page": page} if page else {})}
        body = await ok(http.get(path, params=query))
        items.extend(body["data"])
        page = body["next_page"]
        if page is None:
            return items
