"""The official SDK (``anthropic`` 2.10.0) drives every skills route over loopback TCP.

Every response body must pass the SDK's own model with strict validation
(``Model.model_validate_json(body, strict=True)``: no coercion, so a ``source`` string where
the model wants ``{"type": ...}`` fails), and every error must come back as the SDK's class
with a body that parses as ``BetaErrorResponse``. ``max_retries=0``: a wrong status is never
papered over by a retry.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import pytest
from anthropic.lib import files_from_dir
from anthropic.pagination import SyncPageCursor
from anthropic.types.beta import BetaDeletedSkill, BetaSkill
from anthropic.types.beta.skills import BetaDeletedSkillVersion, BetaSkillVersion
from anthropic.types.beta_error_response import BetaErrorResponse
from pydantic import BaseModel

pytestmark = pytest.mark.tcp

M = TypeVar("M", bound=BaseModel)


def strict(model: type[M], raw: Any) -> M:
    """The raw response's body, parsed by ``model`` with strict validation."""
    return model.model_validate_json(raw.http_response.content, strict=True)


def md(slug: str, description: str = "Cleans data.") -> bytes:
    return f"---\nname: {slug}\ndescription: {description}\n---\n# {slug}\n".encode()


@pytest.fixture
def sdk(tcp_provider: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=tcp_provider, api_key="test", max_retries=0) as client:
        yield client


def test_every_skills_route_through_the_sdk_with_strict_models(
    sdk: anthropic.Anthropic, tmp_path: Path
) -> None:
    folder = tmp_path / "clean-data"
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_bytes(md("clean-data"))
    (folder / "scripts" / "run.py").write_bytes(b"print('run')\n")
    raw = sdk.beta.skills.with_raw_response.create(files=files_from_dir(folder))
    skill = strict(BetaSkill, raw)
    assert skill.source.type == "custom" and skill.display_name == "clean-data"
    assert raw.http_response.status_code == 200

    assert strict(BetaSkill, sdk.beta.skills.with_raw_response.retrieve(skill.id)) == skill
    typed = sdk.beta.skills.retrieve(skill.id)
    assert isinstance(typed, BetaSkill) and typed.latest_version_id == skill.latest_version_id

    versions = sdk.beta.skills.versions
    raw_version = versions.with_raw_response.create(
        skill.id, files=[("clean-data/SKILL.md", md("clean-data", "v2"))]
    )
    v2 = strict(BetaSkillVersion, raw_version)
    assert (v2.name, v2.description, v2.skill_id) == ("clean-data", "v2", skill.id)
    assert sdk.beta.skills.retrieve(skill.id).latest_version_id == v2.id

    for ref in (v2.id, "latest"):
        got = strict(BetaSkillVersion, versions.with_raw_response.retrieve(ref, skill_id=skill.id))
        assert got == v2
    page = strict(
        SyncPageCursor[BetaSkillVersion],
        versions.with_raw_response.list(skill.id, limit=1),
    )
    assert [v.id for v in page.data] == [v2.id] and page.next_page
    assert [v.id for v in versions.list(skill.id, limit=1)] == [v2.id, skill.latest_version_id]

    content = versions.download(skill.latest_version_id, skill_id=skill.id)
    with zipfile.ZipFile(io.BytesIO(content.read())) as z:
        assert sorted(z.namelist()) == ["clean-data/SKILL.md", "clean-data/scripts/run.py"]
        assert z.read("clean-data/scripts/run.py") == b"print('run')\n"
    assert content.http_response.headers["content-type"] == "application/zip"

    deleted_version = strict(
        BetaDeletedSkillVersion, versions.with_raw_response.delete(v2.id, skill_id=skill.id)
    )
    assert (deleted_version.id, deleted_version.type) == (v2.id, "skill_version_deleted")
    assert sdk.beta.skills.retrieve(skill.id).latest_version_id == skill.latest_version_id

    deleted = strict(BetaDeletedSkill, sdk.beta.skills.with_raw_response.delete(skill.id))
    assert (deleted.id, deleted.type) == (skill.id, "skill_deleted")
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.beta.skills.retrieve(skill.id)
    envelope = BetaErrorResponse.model_validate(missing.value.body, strict=True)
    assert envelope.error.type == "not_found_error"


def test_sdk_auto_pagination_and_a_thousand_per_page(sdk: anthropic.Anthropic) -> None:
    made = [sdk.beta.skills.create(files=[(f"s-{i}/SKILL.md", md(f"s-{i}"))]).id for i in range(7)]
    anthropic_ids = ["docx", "pdf", "pptx", "xlsx"]  # every workspace sees them, listed last
    assert [s.id for s in sdk.beta.skills.list(limit=3)] == made + anthropic_ids
    first = sdk.beta.skills.with_raw_response.list(limit=1000)
    page = strict(SyncPageCursor[BetaSkill], first)
    assert [s.id for s in page.data] == made + anthropic_ids and page.next_page is None
    assert [s.id for s in sdk.beta.skills.list(source="custom", limit=3)] == made
    assert [s.id for s in sdk.beta.skills.list(source="anthropic")] == anthropic_ids


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([("lone/README.md", b"x")], "no SKILL.md"),
        ([("a/SKILL.md", md("a")), ("b/SKILL.md", md("b"))], "same top-level directory"),
        ([("SKILL.md", md("flat"))], "outside a directory"),
    ],
)
def test_sdk_sees_bad_uploads_as_bad_requests(
    sdk: anthropic.Anthropic, files: list[Any], words: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk.beta.skills.create(files=files)
    envelope = BetaErrorResponse.model_validate(refused.value.body, strict=True)
    assert envelope.error.type == "invalid_request_error"
    assert words in refused.value.message
    assert list(sdk.beta.skills.list(source="custom")) == []


def test_sdk_version_with_another_name_and_agent_references(sdk: anthropic.Anthropic) -> None:
    skill = sdk.beta.skills.create(files=[("one/SKILL.md", md("one"))], display_name="One")
    assert skill.display_name == "One"
    with pytest.raises(anthropic.BadRequestError, match="fixed by its first upload"):
        sdk.beta.skills.versions.create(skill.id, files=[("two/SKILL.md", md("two"))])
    agent = sdk.beta.agents.create(
        name="uses-skill",
        model="claude-sonnet-4-6",
        skills=[{"type": "custom", "skill_id": skill.id}],
    )
    (resolved,) = agent.skills
    assert resolved.type == "custom" and resolved.version == skill.latest_version_id
    with pytest.raises(anthropic.NotFoundError):
        sdk.beta.agents.create(
            name="dangling",
            model="claude-sonnet-4-6",
            skills=[{"type": "custom", "skill_id": "skill_01gone"}],
        )


@pytest.mark.parametrize("skill_id", ["docx", "pdf", "pptx", "xlsx"])
def test_sdk_downloads_an_anthropic_skill_whose_skill_md_is_a_valid_skill(
    sdk: anthropic.Anthropic, skill_id: str
) -> None:
    """A download of one of Anthropic's skills holds a SKILL.md whose frontmatter is YAML
    that names the skill and says what the version says (the descriptions hold ': ')."""
    import yaml

    skill = sdk.beta.skills.retrieve(skill_id)
    version = sdk.beta.skills.versions.retrieve(skill.latest_version_id, skill_id=skill_id)
    content = sdk.beta.skills.versions.download(skill.latest_version_id, skill_id=skill_id)
    with zipfile.ZipFile(io.BytesIO(content.read())) as archive:
        text = archive.read(f"{skill_id}/SKILL.md").decode()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front == {"name": version.name, "description": version.description}
