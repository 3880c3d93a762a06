"""A skill's source directory (``reconciler.manifest.skilldir``): what is uploaded, the digest
that decides whether a new version is, and what the provider would refuse, said at validate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.manifest import skilldir
from reconciler.manifest.skilldir import SkillSourceError, read_skill_source

SKILL_MD = "---\nname: pdf-tools\ndescription: Fill PDF forms\n---\n# PDF tools\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    return tmp_path


def make_skill(repo: Path, files: dict[str, str], where: str = "skills/pdf") -> Path:
    root = repo / where
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_skill_directory_is_read_with_its_slug_files_and_digest(repo: Path) -> None:
    root = make_skill(repo, {"SKILL.md": SKILL_MD, "fill.py": "x", "forms/w9.json": "{}"})
    source = read_skill_source(root, repository=repo.resolve())
    assert (source.slug, source.description) == ("pdf-tools", "Fill PDF forms")
    assert [f.path for f in source.files] == ["SKILL.md", "fill.py", "forms/w9.json"]
    assert source.digest.startswith("sha256:") and source.total_bytes == len(SKILL_MD) + 3


def test_the_digest_follows_content_and_paths_not_order_or_times(repo: Path) -> None:
    files = {"SKILL.md": SKILL_MD, "a.py": "1", "b/c.py": "2"}
    one = read_skill_source(make_skill(repo, files, "one"), repository=repo.resolve())
    two = read_skill_source(
        make_skill(repo, dict(reversed(list(files.items()))), "two"), repository=repo.resolve()
    )
    os.utime(repo / "two" / "a.py", (1, 1))
    assert one.digest == two.digest
    renamed = read_skill_source(
        make_skill(repo, {"SKILL.md": SKILL_MD, "a2.py": "1", "b/c.py": "2"}, "three"),
        repository=repo.resolve(),
    )
    edited = read_skill_source(
        make_skill(repo, {"SKILL.md": SKILL_MD, "a.py": "1!", "b/c.py": "2"}, "four"),
        repository=repo.resolve(),
    )
    assert len({one.digest, renamed.digest, edited.digest}) == 3
    added, changed, removed = edited.changed_files({f.path: f.sha256 for f in one.files})
    assert (added, changed, removed) == ([], ["a.py"], [])


def test_what_git_ignores_is_not_uploaded(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n/skills/pdf/build/\n")
    root = make_skill(
        repo,
        {
            "SKILL.md": SKILL_MD,
            "run.py": "x",
            "debug.log": "noise",
            "build/out.bin": "o",
            "__pycache__/run.cpython-311.pyc": "c",
            "data/.gitignore": "tmp/\n",
            "data/tmp/scratch": "s",
            "data/keep.csv": "k",
        },
    )
    before = read_skill_source(root, repository=repo.resolve())
    assert [f.path for f in before.files] == [
        "SKILL.md",
        "data/.gitignore",
        "data/keep.csv",
        "run.py",
    ]
    (root / "debug.log").write_text("other noise")
    assert read_skill_source(root, repository=repo.resolve()).digest == before.digest


@pytest.mark.parametrize(
    ("skill_md", "message"),
    [
        ("# no frontmatter\n", "has no frontmatter"),
        ("---\ndescription: x\n---\n", "has no 'name'"),
        ("---\nname: PDF Tools\n---\n", "is not a skill slug"),
        ("---\nname: [unclosed\n---\n", "not valid YAML"),
        ("---\nname: claude-helper\ndescription: x\n---\n", "reserved word 'claude'"),
        ("---\nname: pdf\n---\n", "has no 'description'"),
    ],
)
def test_a_bad_skill_md_is_refused_naming_it(repo: Path, skill_md: str, message: str) -> None:
    root = make_skill(repo, {"SKILL.md": skill_md})
    with pytest.raises(SkillSourceError, match=message) as caught:
        read_skill_source(root, repository=repo.resolve())
    assert "SKILL.md" in str(caught.value)


def test_a_directory_without_skill_md_or_missing_is_refused(repo: Path) -> None:
    root = make_skill(repo, {"README.md": "x"})
    (root / "x" / "y").mkdir(parents=True)
    with pytest.raises(SkillSourceError, match="has no SKILL.md at its top"):
        read_skill_source(root, repository=repo.resolve())
    with pytest.raises(SkillSourceError, match="does not exist"):
        read_skill_source(repo / "nowhere", repository=repo.resolve())


def test_a_symlink_leaving_the_skill_or_a_skill_outside_the_repository_is_refused(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = make_skill(repo, {"SKILL.md": SKILL_MD, "inner.txt": "i"})
    os.symlink(root / "inner.txt", root / "alias.txt")  # inside: fine
    assert "alias.txt" in [f.path for f in read_skill_source(root, repository=repo).files]
    os.symlink("/etc/hostname", root / "leak")
    with pytest.raises(SkillSourceError, match="leak .* is a symlink to"):
        read_skill_source(root, repository=repo.resolve())
    elsewhere = make_skill(tmp_path_factory.mktemp("outside"), {"SKILL.md": SKILL_MD}, "s")
    with pytest.raises(SkillSourceError, match="outside the repository"):
        read_skill_source(elsewhere, repository=repo.resolve())


def test_the_upload_limits_are_checked_before_anything_is_sent(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(skilldir, "MAX_FILES", 3)
    root = make_skill(repo, {"SKILL.md": SKILL_MD, **{f"f{i}.txt": "x" for i in range(4)}})
    with pytest.raises(SkillSourceError, match="more than 3 files"):
        read_skill_source(root, repository=repo.resolve())
    monkeypatch.setattr(skilldir, "MAX_FILES", 1000)
    monkeypatch.setattr(skilldir, "MAX_TOTAL_BYTES", 64)
    with pytest.raises(SkillSourceError, match="larger than"):
        read_skill_source(root, repository=repo.resolve())


def test_the_limits_checked_at_validate_are_the_local_providers() -> None:
    """What validate refuses is what the provider would: each limit kept in both places
    (the provider imports nothing above it) must agree."""
    from reconciler.provider.local import skill_bundle

    assert skilldir.MAX_FILES == skill_bundle.MAX_FILES
    assert skilldir.MAX_TOTAL_BYTES == skill_bundle.MAX_TOTAL_BYTES
    assert skilldir.MAX_PATH_CHARS == skill_bundle.MAX_PATH_CHARS
    assert skilldir.MAX_SLUG == skill_bundle.MAX_SLUG_CHARS
    assert skilldir.MAX_DESCRIPTION == skill_bundle.MAX_DESCRIPTION_CHARS
    assert skilldir.MAX_FRONTMATTER_CHARS == skill_bundle.MAX_FRONTMATTER_CHARS
