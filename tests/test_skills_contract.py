"""Contract: every skills route through ``client.skills``, in-process and over loopback TCP.

Each test runs twice - through ``embedded_client`` and through ``ProviderClient(url)``
against uvicorn on 127.0.0.1 - with real directories uploaded as multipart bodies.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import BadRequestError, NotFoundError, ReconcilerError
from reconciler.provider import ProviderClient, SkillUpload
from reconciler.provider.local.faults import bucket_of
from reconciler.provider.wire import collection_kind, describe_target, rate_bucket

MODEL = "claude-sonnet-4-6"


def skill_dir(
    root: Path,
    slug: str = "tidy-data",
    *,
    folder: str | None = None,
    description: str = "Tidies tables.",
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A skill directory on disk: SKILL.md plus ``extra`` files (relative paths)."""
    directory = root / (folder or slug)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SKILL.md").write_text(
        f"---\nname: {slug}\ndescription: {description}\n---\n# {slug}\n", encoding="utf-8"
    )
    for relative, content in (extra or {}).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return directory


def unzip(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return {name: z.read(name) for name in z.namelist()}


async def test_create_from_a_directory_and_retrieve(api: ProviderClient, tmp_path: Path) -> None:
    directory = skill_dir(tmp_path, extra={"scripts/clean.py": b"print('clean')\n"})
    skill = await api.skills.create(directory)
    assert skill["type"] == "skill" and skill["id"].startswith("skill_")
    assert skill["display_name"] == "tidy-data"  # from the frontmatter name
    assert skill["source"] == {"type": "custom"}
    assert skill["created_at"] == skill["updated_at"]
    assert await api.skills.retrieve(skill["id"]) == skill

    version = await api.skills.versions.retrieve(skill["id"], skill["latest_version_id"])
    assert version == {
        "type": "skill_version",
        "id": skill["latest_version_id"],
        "skill_id": skill["id"],
        "name": "tidy-data",
        "description": "Tidies tables.",
        "created_at": skill["created_at"],
    }
    assert await api.skills.versions.retrieve(skill["id"], "latest") == version

    named = await api.skills.create(skill_dir(tmp_path, "other"), display_name="Other one")
    assert named["display_name"] == "Other one"


async def test_download_is_exactly_what_was_uploaded(api: ProviderClient, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 64  # binary, not text
    directory = skill_dir(tmp_path, extra={"data/blob.bin": blob, "a/b/c.txt": b"deep\n"})
    upload = SkillUpload.from_directory(directory)
    skill = await api.skills.create(upload)
    archive = await api.skills.versions.download(skill["id"], skill["latest_version_id"])
    assert unzip(archive) == dict(upload.files)
    assert set(unzip(archive)) == {
        "tidy-data/SKILL.md",
        "tidy-data/a/b/c.txt",
        "tidy-data/data/blob.bin",
    }
    assert upload.same_as_zip(archive)
    # the same version always downloads as the same bytes
    assert await api.skills.versions.download(skill["id"], "latest") == archive


async def test_versions_move_latest_and_sort_by_creation(
    api: ProviderClient, tmp_path: Path
) -> None:
    skill = await api.skills.create(skill_dir(tmp_path, description="v1"))
    made = [skill["latest_version_id"]]
    for n in (2, 3, 4):
        # a version may come from a directory of another name: the slug is what must match
        folder = f"upload-{n}"
        version = await api.skills.versions.create(
            skill["id"], skill_dir(tmp_path, folder=folder, description=f"v{n}")
        )
        assert version["name"] == "tidy-data" and version["description"] == f"v{n}"
        now = await api.skills.retrieve(skill["id"])
        assert now["latest_version_id"] == version["id"]
        assert now["updated_at"] >= now["created_at"]
        made.append(version["id"])
    assert made == sorted(made), "version ids sort by creation"
    listed = await api.skills.versions.list(skill["id"]).to_list()
    assert [v["id"] for v in listed] == made[::-1], "newest first"
    assert [v["description"] for v in listed] == ["v4", "v3", "v2", "v1"]


async def test_delete_a_version_and_a_skill(api: ProviderClient, tmp_path: Path) -> None:
    skill = await api.skills.create(skill_dir(tmp_path))
    first = skill["latest_version_id"]
    second = (await api.skills.versions.create(skill["id"], skill_dir(tmp_path)))["id"]

    deleted = await api.skills.versions.delete(skill["id"], second)
    assert deleted == {"id": second, "type": "skill_version_deleted"}
    assert (await api.skills.retrieve(skill["id"]))["latest_version_id"] == first
    with pytest.raises(NotFoundError, match=second):
        await api.skills.versions.retrieve(skill["id"], second)

    with pytest.raises(BadRequestError, match="at least one version"):
        await api.skills.versions.delete(skill["id"], first)

    assert await api.skills.delete(skill["id"]) == {"id": skill["id"], "type": "skill_deleted"}
    with pytest.raises(NotFoundError, match=skill["id"]):
        await api.skills.retrieve(skill["id"])
    with pytest.raises(NotFoundError):
        await api.skills.versions.download(skill["id"], first)
    with pytest.raises(NotFoundError):
        await api.skills.delete(skill["id"])


async def test_list_is_paged_and_filtered_by_source(api: ProviderClient, tmp_path: Path) -> None:
    made = [(await api.skills.create(skill_dir(tmp_path, f"s-{i}")))["id"] for i in range(5)]
    assert [s["id"] for s in await api.skills.list().to_list()] == made
    anthropic = ["docx", "pdf", "pptx", "xlsx"]
    assert [s["id"] for s in await api.skills.list(source="anthropic").to_list()] == anthropic
    assert [s["id"] for s in await api.skills.list(source=None).to_list()] == made + anthropic
    # the raw wire: small pages walk to the end and the last says next_page null
    page = await api.request("GET", "/v1/skills", params={"limit": 2, "source": "custom"})
    assert [s["id"] for s in page["data"]] == made[:2] and page["next_page"]
    pages = 1
    while page["next_page"]:
        page = await api.request(
            "GET", "/v1/skills", params={"limit": 2, "source": "custom", "page": page["next_page"]}
        )
        pages += 1
    assert pages == 3 and page["next_page"] is None
    with pytest.raises(BadRequestError, match="source"):
        await api.request("GET", "/v1/skills", params={"source": "nobody"})
    with pytest.raises(BadRequestError, match="cursor"):
        await api.request("GET", "/v1/skills", params={"page": "page_garbage"})


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notes/README.md": b"x"}, "no SKILL.md"),
        ({"SKILL.md": b"---\ndescription: d\n---\n"}, "outside a directory"),
        (
            {"a/SKILL.md": b"---\ndescription: d\n---\n", "b/SKILL.md": b"---\n---\n"},
            "same top-level directory",
        ),
        ({"a/SKILL.md": b"# no frontmatter\n"}, "frontmatter"),
        ({"a/SKILL.md": b"---\nname: a\n---\n"}, "description"),
        ({"a/SKILL.md": b"---\nname: Not_Kebab\ndescription: d\n---\n"}, "kebab-case"),
        ({"a/SKILL.md": b"---\nname: my-claude\ndescription: d\n---\n"}, "reserved word"),
        ({"a/SKILL.md": b"---\ndescription: d\n---\n", "a/../x": b""}, "'..'"),
        ({"a/SKILL.md": b"---\ndescription: d\n---\n", "a/big": b"0" * (8 * 2**20)}, "8 MB"),
    ],
)
async def test_bad_uploads_are_refused_with_a_reason(
    api: ProviderClient, files: dict[str, bytes], message: str
) -> None:
    with pytest.raises(BadRequestError, match=message) as caught:
        await api.skills.create(SkillUpload(tuple(files.items())))
    assert caught.value.status == 400 and caught.value.error_type == "invalid_request_error"
    assert await api.skills.list().to_list() == [], "nothing was created"


async def test_too_many_files_are_refused(api: ProviderClient) -> None:
    files = [("a/SKILL.md", b"---\ndescription: d\n---\n")]
    files += [(f"a/f{i}.txt", b"") for i in range(500)]
    with pytest.raises(BadRequestError, match="at most 500 files"):
        await api.skills.create(SkillUpload(tuple(files)))


async def test_a_version_must_keep_the_skill_name(api: ProviderClient, tmp_path: Path) -> None:
    skill = await api.skills.create(skill_dir(tmp_path, "tidy-data"))
    with pytest.raises(BadRequestError, match="fixed by its first upload"):
        await api.skills.versions.create(skill["id"], skill_dir(tmp_path, "messy-data"))
    # the slug falls back to the directory name when the frontmatter has none
    bare = tmp_path / "from-dir"
    bare.mkdir()
    (bare / "SKILL.md").write_text("---\ndescription: named by its folder\n---\n")
    named = await api.skills.create(bare)
    version = await api.skills.versions.retrieve(named["id"], "latest")
    assert version["name"] == "from-dir" == named["display_name"]
    with pytest.raises(NotFoundError):
        await api.skills.versions.create("skill_01missing", skill_dir(tmp_path))
    assert len(await api.skills.versions.list(skill["id"]).to_list()) == 1


async def test_agents_check_and_resolve_custom_skill_references(
    api: ProviderClient, tmp_path: Path
) -> None:
    skill = await api.skills.create(skill_dir(tmp_path))
    pinned = skill["latest_version_id"]
    newer = (await api.skills.versions.create(skill["id"], skill_dir(tmp_path)))["id"]

    agent = await api.agents.create(
        {
            "name": "a",
            "model": MODEL,
            "skills": [
                {"type": "custom", "skill_id": skill["id"]},
                {"type": "anthropic", "skill_id": "xlsx"},
            ],
        }
    )
    assert agent["skills"] == [
        {"type": "custom", "skill_id": skill["id"], "version": newer},  # resolved: the latest
        {"type": "anthropic", "skill_id": "xlsx", "version": "20251013"},  # as before
    ]
    updated = await api.agents.update(
        agent["id"], {"skills": [{"type": "custom", "skill_id": skill["id"], "version": pinned}]}
    )
    assert updated["skills"] == [{"type": "custom", "skill_id": skill["id"], "version": pinned}]

    def with_skill(ref: dict[str, Any]) -> dict[str, Any]:
        return {"name": "b", "model": MODEL, "skills": [{"type": "custom", **ref}]}

    with pytest.raises(NotFoundError, match="skill_01nope"):
        await api.agents.create(with_skill({"skill_id": "skill_01nope"}))
    with pytest.raises(NotFoundError, match="skillver_01nope"):
        await api.agents.create(with_skill({"skill_id": skill["id"], "version": "skillver_01nope"}))
    other = await api.skills.create(skill_dir(tmp_path, "other-skill"))
    with pytest.raises(NotFoundError):  # a version of another skill is not this skill's
        await api.agents.create(
            with_skill({"skill_id": skill["id"], "version": other["latest_version_id"]})
        )
    names = [a["name"] for a in await api.agents.list().to_list()]
    assert names == ["a"], "no agent was created by a refused reference"


def test_a_directory_that_cannot_be_uploaded_is_refused_before_sending(tmp_path: Path) -> None:
    with pytest.raises(ReconcilerError, match="does not exist"):
        SkillUpload.from_directory(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReconcilerError, match="holds no files"):
        SkillUpload.from_directory(tmp_path / "empty")
    odd = skill_dir(tmp_path, "odd", extra={'say "hi".txt': b""})
    with pytest.raises(ReconcilerError, match="cannot carry"):
        SkillUpload.from_directory(odd)


def test_skill_paths_in_the_wire_vocabulary() -> None:
    assert rate_bucket("POST", "/v1/skills") == "skills create"
    assert rate_bucket("POST", "/v1/skills/skill_1/versions") == "skills create"
    assert rate_bucket("GET", "/v1/skills/skill_1/versions/v/content") == "skills"
    assert bucket_of("POST", "/v1/skills/skill_1/versions") == "skills create"
    assert describe_target("/v1/skills/skill_1/versions/skillver_2") == (
        "skill version",
        "skillver_2",
    )
    assert describe_target("/v1/agents/agent_1/versions") == ("agent", "agent_1")
    assert collection_kind("/v1/agents/agent_1/versions") == "agent version"
    assert collection_kind("/v1/skills/skill_1/versions") == "skill version"
