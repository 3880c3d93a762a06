"""The ``spec`` of a Skill manifest, and how a skill's next step is decided from its lockfile.

A skill (provider-wire.md §15) is a directory of files with immutable versions and no
metadata: ownership lives in the lockfile, which records the skill's id and each version this
project uploaded with its digest (and each file's sha256, for the plan's change summary).

- ``SkillSpec``: ``source`` (a directory holding SKILL.md, relative to the manifest FILE) and
  an optional ``display_name``.
- ``skill_source``: reads that directory with ``skilldir`` as the provider will judge it.
- ``SkillLock`` / ``skill_step``: what apply does next (create, new version, nothing) given
  the lockfile entry, the directory and the live skill's latest version. Pure: no I/O.

Planned by ``engine/skills.py``; see docs/architecture.md "Skills".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from .fields import NonEmptyStr, SpecModel, fail
from .secret import repository_root
from .skilldir import SkillSource, read_skill_source

#: the limit on a skill's display_name (the local provider's, routes_skills.py)
MAX_DISPLAY_NAME = 255

#: Anthropic's own skills (``{type: anthropic, skill_id: xlsx}``), so that ``{ref: xlsx}``, which
#: names a Skill manifest, is told how to write one (the local provider serves the same,
#: ``provider/local/anthropic_skills.py``; a test checks they agree)
ANTHROPIC_SKILLS = ("docx", "pdf", "pptx", "xlsx")

#: how many changed files a one-line summary names (the plan lists every file below it)
NAMED_FILES = 5


def files_named(paths: Sequence[str]) -> str:
    """``a.py, b.py and 7 more``: the first ``NAMED_FILES`` paths, and how many others."""
    named = ", ".join(paths[:NAMED_FILES])
    return f"{named} and {len(paths) - NAMED_FILES} more" if len(paths) > NAMED_FILES else named


def new_version_words(paths: Sequence[str]) -> str:
    """``new version (2 files changed: fill.py, forms/w9.json)``, naming a few files."""
    n = len(paths)
    return f"new version ({n} file{'s' if n != 1 else ''} changed: {files_named(paths)})"


class SkillSpec(SpecModel):
    """Desired state of a skill: where its files are, and the title shown for it."""

    source: NonEmptyStr = Field(
        description="Directory holding SKILL.md, relative to this manifest file."
    )
    display_name: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_DISPLAY_NAME,
                # _one_line's rules, for editors: not blank, no line break
                json_schema_extra={"pattern": r"\S", "not": {"pattern": r"[\r\n]"}},
            ),
        ]
        | None
    ) = Field(default=None, description="Title shown for the skill (one line); fixed at create.")

    @field_validator("display_name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        # what the provider refuses at upload, said here (routes_skills: check_display_name)
        if value is not None and not value.strip():
            fail("display_name must not be blank; leave it out to use SKILL.md's name")
        if value is not None and ("\n" in value or "\r" in value):
            fail("display_name must be one line")
        return value


def skill_source(spec: SkillSpec, manifest_file: str | Path) -> SkillSource:
    """Read the skill directory ``spec.source`` names, relative to ``manifest_file``'s
    directory and confined to the repository holding the manifest.

    Raises:
        SkillSourceError: missing directory, SKILL.md without a name, over a limit, a symlink
            leaving the directory, or a directory outside the repository.
    """
    base = Path(manifest_file).parent
    directory = base / spec.source
    return read_skill_source(directory, repository=repository_root(base))


@dataclass(frozen=True)
class UploadedVersion:
    """A version this project uploaded: its digest and each file's sha256 (path -> sha)."""

    digest: str
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SkillLock:
    """A skill's lockfile entry: its id and the versions this project uploaded (id ->)."""

    skill_id: str
    versions: dict[str, UploadedVersion] = field(default_factory=dict)


@dataclass(frozen=True)
class SkillStep:
    """What apply does for one skill.

    Attributes:
        action: ``create`` (upload a new skill), ``new_version``, or ``none``.
        changed: the paths added, changed or removed since the live latest (new_version).
        foreign_latest: the live latest version was not uploaded by this project (drift).
    """

    action: Literal["create", "new_version", "none"]
    changed: tuple[str, ...] = ()
    foreign_latest: bool = False

    def summary(self) -> str:
        """The plan's words: ``new version (2 files changed: fill.py, forms/w9.json)``."""
        if self.action == "create":
            return "create"
        if self.action == "none":
            return "no changes"
        if self.foreign_latest:
            return "new version (the live latest version was not uploaded by this project)"
        return new_version_words(self.changed)


def skill_step(lock: SkillLock | None, source: SkillSource, live_latest: str | None) -> SkillStep:
    """Decide the next step of a skill.

    Args:
        lock: its lockfile entry; None when the project has none (a lost lockfile is
            resolved before this, by finding the skill by its slug).
        source: its directory as read now.
        live_latest: the live skill's ``latest_version_id``; None when it does not exist.
    """
    if lock is None or live_latest is None:
        return SkillStep("create")
    ours = lock.versions.get(live_latest)
    if ours is None:
        return SkillStep("new_version", foreign_latest=True)
    if ours.digest == source.digest:
        return SkillStep("none")
    added, changed, removed = source.changed_files(ours.files)
    return SkillStep("new_version", tuple(sorted({*added, *changed, *removed})))
