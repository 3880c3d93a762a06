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


# -- Anthropic skills ---------------------------------------------------------------------------


def test_anthropic_skills_are_served_read_only(sdk: anthropic.Anthropic) -> None:
    """``skills.retrieve("xlsx")`` is what a user calls before naming ``{type: anthropic,
    skill_id: xlsx}`` in an agent: the Anthropic skills are there, read-only, in the SDK's
    strict models; a list without ``source`` has every source, ``source=anthropic`` only those."""
    from anthropic.pagination import SyncPageCursor
    from anthropic.types.beta import BetaSkill
    from anthropic.types.beta.skills import BetaSkillVersion

    raw = sdk.beta.skills.with_raw_response.retrieve("xlsx")
    xlsx = BetaSkill.model_validate_json(raw.http_response.content, strict=True)
    assert (xlsx.id, xlsx.source.type) == ("xlsx", "anthropic")
    version = sdk.beta.skills.versions.retrieve("latest", skill_id="xlsx")
    assert (version.id, version.name, version.skill_id) == (xlsx.latest_version_id, "xlsx", "xlsx")
    got = sdk.beta.skills.versions.with_raw_response.retrieve(version.id, skill_id="xlsx")
    assert BetaSkillVersion.model_validate_json(got.http_response.content, strict=True) == version
    assert [v.id for v in sdk.beta.skills.versions.list("xlsx")] == [version.id]
    assert sdk.beta.skills.versions.download(version.id, skill_id="xlsx").read()[:2] == b"PK"

    anthropic_ids = ["docx", "pdf", "pptx", "xlsx"]
    assert [s.id for s in sdk.beta.skills.list(source="anthropic", limit=3)] == anthropic_ids
    page = sdk.beta.skills.with_raw_response.list(source="anthropic", limit=100)
    strict_page = SyncPageCursor[BetaSkill].model_validate_json(
        page.http_response.content, strict=True
    )
    assert strict_page.next_page is None and len(strict_page.data) == 4
    mine = b"---\nname: mine\ndescription: Mine.\n---\n# mine\n"
    made = sdk.beta.skills.create(files=[("mine/SKILL.md", mine)])
    assert [s.id for s in sdk.beta.skills.list(source="custom")] == [made.id]
    # one item per page: each skill once, the custom ones first
    assert [s.id for s in sdk.beta.skills.list(limit=1)] == [made.id, *anthropic_ids]

    # an agent names them as on the wire; an id or a version Anthropic does not publish is
    # refused, as an unknown custom skill is
    agent = sdk.beta.agents.create(
        name="sheets", model="claude-haiku-4-5", skills=[{"type": "anthropic", "skill_id": "pdf"}]
    )
    assert [(s.skill_id, s.version) for s in agent.skills] == [("pdf", version.id)]
    for bad, words in (
        ({"type": "anthropic", "skill_id": "xlsxx"}, "skills are docx, pdf, pptx, xlsx"),
        ({"type": "anthropic", "skill_id": "pdf", "version": "19990101"}, "19990101"),
        ({"type": "custom", "skill_id": "xlsx"}, "{type: anthropic, skill_id: xlsx}"),
    ):
        with pytest.raises(anthropic.NotFoundError) as refused:
            sdk.beta.agents.create(name="bad", model="claude-haiku-4-5", skills=[bad])  # type: ignore[list-item]
        assert words in error_of(refused.value.response).error.message
    assert [a.name for a in sdk.beta.agents.list()] == ["sheets"]

    # read-only: no delete, no new version, no version delete; nothing changed
    writes = [
        lambda: sdk.beta.skills.delete("xlsx"),
        lambda: sdk.beta.skills.versions.delete(version.id, skill_id="xlsx"),
        lambda: sdk.beta.skills.versions.create(
            "xlsx", files=[("xlsx/SKILL.md", b"---\nname: xlsx\ndescription: Mine.\n---\n")]
        ),
    ]
    for write in writes:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            write()
        assert error_of(denied.value.response).error.type == "permission_error"
    assert sdk.beta.skills.retrieve("xlsx") == xlsx


# -- session resources --------------------------------------------------------------------------


def test_session_resources_through_the_sdk(sdk: anthropic.Anthropic) -> None:
    """``client.beta.sessions.resources``: what a session mounts is listed (all of it when no
    ``limit``; paged by ``next_page`` with one), retrieved, added to (a file), its GitHub token
    rotated and removed, each change visible on the session; refusals are wire errors."""
    agent = sdk.beta.agents.create(name="mounts", model="claude-haiku-4-5")
    env = sdk.beta.environments.create(name="mounts-env")
    store = sdk.beta.memory_stores.create(name="notes")
    upload = sdk.beta.files.upload(file=("a.csv", b"a,b\n", "text/csv"))
    session = sdk.beta.sessions.create(
        agent=agent.id,
        environment_id=env.id,
        resources=[
            {
                "type": "github_repository",
                "url": "https://github.com/o/r",
                "authorization_token": "t",
            },
            {"type": "memory_store", "memory_store_id": store.id},
        ],
    )
    api = sdk.beta.sessions.resources
    repo_id = session.resources[0].id  # type: ignore[union-attr]
    listed = api.list(session.id)
    assert [r.type for r in listed.data] == ["github_repository", "memory_store"]
    assert listed.next_page is None
    assert [r.type for r in api.list(session.id, limit=1)] == ["github_repository", "memory_store"]
    assert api.retrieve(repo_id, session_id=session.id) == session.resources[0]
    assert api.retrieve(store.id, session_id=session.id) == session.resources[1]

    added = api.add(session.id, type="file", file_id=upload.id)
    assert (added.file_id, added.mount_path) == (upload.id, f"/mnt/session/uploads/{upload.id}")
    rotated = api.update(repo_id, session_id=session.id, authorization_token="t2")
    assert rotated.type == "github_repository" and "authorization_token" not in rotated.to_dict()
    deleted = api.delete(store.id, session_id=session.id)
    assert (deleted.id, deleted.type) == (store.id, "session_resource_deleted")
    now = sdk.beta.sessions.retrieve(session.id)
    assert [r.type for r in now.resources] == ["github_repository", "file"]
    assert now.updated_at > session.updated_at
    assert [s.id for s in sdk.beta.sessions.list(memory_store_id=store.id)] == []

    refusals: list[tuple[type[anthropic.APIStatusError], Any]] = [
        (anthropic.NotFoundError, lambda: api.retrieve("sesrsc_nope", session_id=session.id)),
        (anthropic.NotFoundError, lambda: api.list("sesn_011CZkYpogX7uDKUyvBTophP")),
        (anthropic.NotFoundError, lambda: api.add(session.id, type="file", file_id="file_nope")),
        (
            anthropic.BadRequestError,
            lambda: api.update(added.id, session_id=session.id, authorization_token="x"),
        ),
        (anthropic.BadRequestError, lambda: api.add(session.id, type="file", file_id=upload.id)),
    ]
    for kind, call in refusals:
        with pytest.raises(kind) as refused:
            call()
        error_of(refused.value.response)
    sdk.beta.sessions.archive(session.id)
    with pytest.raises(anthropic.BadRequestError, match="archived"):
        api.delete(added.id, session_id=session.id)
    assert len(sdk.beta.sessions.retrieve(session.id).resources) == 2


async def test_the_sdks_worker_downloads_a_sessions_anthropic_skill(
    tcp_provider: str, tmp_path: Any
) -> None:
    """``download_session_skills`` (what the SDK's self-hosted worker runs) fetches every skill
    of the session, Anthropic's included: retrieve the version, download its archive."""
    from anthropic.lib.tools._skills import download_session_skills

    async with anthropic.AsyncAnthropic(
        base_url=tcp_provider, api_key="k", max_retries=0, _strict_response_validation=True
    ) as sdk:
        agent = await sdk.beta.agents.create(
            name="a", model="claude-haiku-4-5", skills=[{"type": "anthropic", "skill_id": "xlsx"}]
        )
        env = await sdk.beta.environments.create(name="e")
        session = await sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
        made = await download_session_skills(sdk, workdir=tmp_path, session=session)
    assert made == [(tmp_path / "skills" / "xlsx").resolve()]
    assert (made[0] / "SKILL.md").read_text().startswith("---\nname: xlsx\n")


def test_apply_naming_an_anthropic_skill_that_does_not_exist_says_which(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in an Anthropic skill id is said by its id and place (plan lists Anthropic's
    skills before anything is sent), never as a 'POST /v1/agents not found' that reads as if
    the endpoint were missing; nothing is created."""
    from support.gitops import cli, make_workdir, out_of_band

    work = make_workdir(tmp_path, monkeypatch, manifests=False)
    (work / "manifests").mkdir()
    (work / "manifests" / "a.yaml").write_text(
        "kind: Agent\nname: sheets\nspec:\n  model: claude-sonnet-4-6\n"
        "  skills: [{type: anthropic, skill_id: xlsx}, {type: anthropic, skill_id: excel}]\n"
    )
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1, (result.stdout, result.stderr, result.output)
    assert "manifests/a.yaml:5:65: agent.sheets: Anthropic skill 'excel' does not exist" in (
        result.output
    )
    assert "POST /v1/agents not found" not in result.output
    assert out_of_band(lambda client: client.agents.list().to_list()) == []


# -- what the SDK reaches and the local provider does not serve ---------------------------------


def test_sdk_calls_the_local_provider_does_not_serve_say_so(sdk: anthropic.Anthropic) -> None:
    """Session threads, the self-hosted work queue, dreams, tunnels, models: the SDK has
    methods for them and the local provider does not serve them. The answer is the API's 404
    envelope, saying which family is missing, not a 'not found' that reads as a wrong id."""
    agent = sdk.beta.agents.create(name="a", model="claude-haiku-4-5")
    env = sdk.beta.environments.create(name="e", config={"type": "self_hosted"})
    session = sdk.beta.sessions.create(agent=agent.id, environment_id=env.id)
    calls = {
        "session threads": lambda: sdk.beta.sessions.threads.list(session.id),
        "work queue": lambda: sdk.beta.environments.work.list(env.id),
        "dreams": lambda: sdk.beta.dreams.list(),
        "MCP tunnels": lambda: sdk.beta.tunnels.list(),
        "Models API": lambda: sdk.models.list(),
    }
    for family, call in calls.items():
        with pytest.raises(anthropic.NotFoundError) as missing:
            call()
        envelope = error_of(missing.value.response)
        assert envelope.error.type == "not_found_error"
        assert "does not serve" in envelope.error.message and family in envelope.error.message
    with pytest.raises(anthropic.NotFoundError) as plain:
        sdk.beta.sessions.retrieve("sesn_011CZkYpogX7uDKUyvBTophP")
    assert "does not serve" not in error_of(plain.value.response).error.message


def test_an_agent_naming_an_anthropic_skill_that_does_not_exist_is_refused_by_name(
    sdk: anthropic.Anthropic,
) -> None:
    """The provider's own answer to a misspelt Anthropic skill (what a plan checks first,
    and what a program using the SDK meets): a 404 that names the skill, not the endpoint."""
    with pytest.raises(anthropic.NotFoundError) as info:
        sdk.beta.agents.create(
            name="sheets",
            model="claude-haiku-4-5",
            skills=[{"type": "anthropic", "skill_id": "excel"}],
        )
    assert "Anthropic skill 'excel' not found" in str(info.value), str(info.value)
