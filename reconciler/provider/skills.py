"""``client.skills``: custom skills and their versions over the wire (provider-wire.md 15).

A skill is uploaded from a directory: every file under it becomes one ``files[]`` part of a
multipart body, named by its path with the directory's own name in front
(``my-skill/SKILL.md``, ``my-skill/lib/x.py``), as the SDK's ``files_from_dir`` does. The
body is encoded once, so every attempt sends the same bytes.

An upload is not idempotent. When an attempt's answer is lost (a 5xx, a timeout, a dropped
connection after sending), the client never sends it again blind; it first looks for what
the upload would have made, by content:

* a version upload: the skill's versions, newest first, back to ``after_version`` (the
  latest version the caller knew before uploading; when not given, only the newest one);
* a skill upload: the skills that are not in ``existing`` (the ids the caller knew before
  uploading; when not given, any) and carry the display name it would have (the one sent,
  else SKILL.md's name, which the provider derives it from), newest first, looking at each
  one's latest version;

downloading at most ``LOOKUP_DOWNLOADS`` of them. A version whose files are byte for byte
the upload's (same paths, same contents) is the answer; if none is, the upload did not
happen and is sent again, under the client's one retry budget. Without ``after_version`` /
``existing``, an identical version or skill that existed before counts as the upload's
result: the provider then already holds exactly those files, so no twin is made.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import zipfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import ReconcilerError
from reconciler.jsontypes import JSON
from reconciler.provider.resources import Namespace
from reconciler.provider.wire import item_path

if TYPE_CHECKING:
    from reconciler.provider.client import AmbiguityResolver, ProviderClient
    from reconciler.provider.pager import Pager

__all__ = ["LOOKUP_DOWNLOADS", "SkillUpload", "SkillVersions", "Skills"]

#: the most versions an ambiguous upload's lookup downloads to compare
LOOKUP_DOWNLOADS = 5
#: page size of skill and version lists (the wire allows 1-1000)
PAGE_SIZE = 1000
#: a frontmatter line naming the skill: ``name: pdf-tools`` (or quoted)
_NAME_LINE = re.compile(r"name:[ \t]*(['\"]?)([a-z0-9]+(?:-[a-z0-9]+)*)\1")


@dataclass(frozen=True)
class SkillUpload:
    """The files of one upload: ``(path, content)`` pairs, paths under one directory."""

    files: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_directory(cls, directory: str | os.PathLike[str]) -> SkillUpload:
        """Every regular file under ``directory`` (sorted), named ``<dir name>/<relative>``.

        Takes the directory as it is, for library callers; a Skill manifest's upload is built
        from the files ``manifest.skilldir`` selected (git's ignore rules applied) and
        digested, so what is uploaded is exactly what the lockfile's digest covers.

        Raises:
            ReconcilerError: the directory is missing, empty, or a file cannot be read or
                has a name a multipart upload cannot carry.
        """
        root = Path(directory)
        if not root.is_dir():
            raise ReconcilerError(f"skill directory {root} does not exist or is not a folder")
        top = root.resolve().name
        files: list[tuple[str, bytes]] = []
        for folder, subfolders, names in os.walk(root):
            subfolders.sort()
            for name in sorted(names):
                path = Path(folder) / name
                relative = f"{top}/{path.relative_to(root).as_posix()}"
                if any(c in relative for c in '"\\\r\n'):
                    raise ReconcilerError(
                        f"skill file {path} has a name a multipart upload cannot carry "
                        "(a quote, backslash or line break); rename it"
                    )
                try:
                    files.append((relative, path.read_bytes()))
                except OSError as exc:
                    raise ReconcilerError(
                        f"cannot read skill file {path}: {exc.strerror or exc}"
                    ) from None
        if not files:
            raise ReconcilerError(f"skill directory {root} holds no files")
        return cls(tuple(files))

    def multipart(self, display_name: str | None = None) -> tuple[bytes, str]:
        """The multipart/form-data body and its content type."""
        boundary = secrets.token_hex(16)
        parts: list[bytes] = []
        for path, content in self.files:
            head = (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="files[]"; filename="{path}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            )
            parts.extend((head.encode(), content, b"\r\n"))
        if display_name is not None:
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="display_name"\r\n\r\n'
            parts.extend((head.encode(), display_name.encode(), b"\r\n"))
        parts.append(f"--{boundary}--\r\n".encode())
        return b"".join(parts), f"multipart/form-data; boundary={boundary}"

    @property
    def slug(self) -> str | None:
        """SKILL.md's frontmatter ``name``, the display name the provider derives when none
        is sent; read without a YAML parser (a kebab-case name, plain or quoted), so None
        for any other spelling."""
        skill_md = next((c for p, c in self.files if p.split("/", 1)[1:] == ["SKILL.md"]), b"")
        lines = skill_md.decode("utf-8", "replace").lstrip("\ufeff").splitlines()
        if not lines or lines[0].strip() != "---":
            return None
        for line in lines[1:]:
            if line.strip() == "---":
                return None
            match = _NAME_LINE.fullmatch(line.rstrip())
            if match is not None:
                return match.group(2)
        return None

    def same_as_zip(self, archive: bytes) -> bool:
        """Whether a downloaded version holds exactly these files."""
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as z:
                names = z.namelist()
                if len(names) != len(self.files) or set(names) != {p for p, _ in self.files}:
                    return False
                return all(z.read(path) == content for path, content in self.files)
        except (zipfile.BadZipFile, KeyError, ValueError):
            return False


def _as_upload(source: SkillUpload | str | os.PathLike[str]) -> SkillUpload:
    return source if isinstance(source, SkillUpload) else SkillUpload.from_directory(source)


class SkillVersions(Namespace):
    """``/v1/skills/{skill_id}/versions``: immutable uploads of one skill."""

    async def create(
        self,
        skill_id: str,
        source: SkillUpload | str | os.PathLike[str],
        *,
        after_version: str | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON:
        """Upload a new version (the directory's files); it becomes the skill's latest.

        Args:
            skill_id: the skill.
            source: a directory or a ``SkillUpload``.
            after_version: the latest version id known before this upload; an ambiguous
                attempt is looked up among the versions newer than it (module docstring).
            resolve: a lookup of the caller's own instead of that one.
        """
        upload = _as_upload(source)

        async def find() -> JSON | None:
            return await self._find(skill_id, upload, after_version)

        path = item_path("skills", skill_id, "versions")
        return await self._upload(path, upload.multipart(), resolve or find)

    async def _find(
        self, skill_id: str, upload: SkillUpload, after_version: str | None
    ) -> JSON | None:
        downloads = 0
        async for version in self.list(skill_id):
            if version["id"] == after_version or downloads >= LOOKUP_DOWNLOADS:
                return None
            downloads += 1
            if upload.same_as_zip(await self.download(skill_id, version["id"])):
                return version
            if after_version is None:
                return None  # only the newest one is a candidate
        return None

    def list(self, skill_id: str) -> Pager:
        """Every version of the skill, newest first."""
        return self._client.paginate(item_path("skills", skill_id, "versions"), limit=PAGE_SIZE)

    async def retrieve(self, skill_id: str, version: str) -> JSON:
        """One version, by id or ``latest``."""
        return await self._object("GET", item_path("skills", skill_id, "versions", version))

    async def delete(self, skill_id: str, version: str) -> JSON:
        """Delete a version (not the skill's last one); ``{"id", "type"}``."""
        return await self._object("DELETE", item_path("skills", skill_id, "versions", version))

    async def download(self, skill_id: str, version: str) -> bytes:
        """The version's files as a zip archive (exactly what was uploaded)."""
        return await self._client.download(
            item_path("skills", skill_id, "versions", version, "content")
        )


class Skills(Namespace):
    """``/v1/skills``: custom skills (no metadata, no update, no archive; delete only)."""

    def __init__(self, client: ProviderClient) -> None:
        super().__init__(client)
        self.versions = SkillVersions(client)

    async def create(
        self,
        source: SkillUpload | str | os.PathLike[str],
        *,
        display_name: str | None = None,
        existing: Collection[str] | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON:
        """Create a skill from a directory (its first version).

        Args:
            source: a directory or a ``SkillUpload``.
            display_name: the label; the provider derives it from SKILL.md when omitted.
            existing: ids of the skills known before this upload; an ambiguous attempt is
                looked up among the others (module docstring).
            resolve: a lookup of the caller's own instead of that one.
        """
        upload = _as_upload(source)
        known = frozenset(existing) if existing is not None else None

        async def find() -> JSON | None:
            return await self._find(upload, display_name, known)

        return await self._upload("/v1/skills", upload.multipart(display_name), resolve or find)

    async def _find(
        self, upload: SkillUpload, display_name: str | None, known: frozenset[str] | None
    ) -> JSON | None:
        # by the name it would carry: the other uploads of one apply, landed meanwhile,
        # must not push it out of the LOOKUP_DOWNLOADS compared
        named = display_name if display_name is not None else upload.slug
        candidates = [
            skill
            for skill in reversed(await self.list().to_list())
            if (known is None or skill["id"] not in known)
            and (named is None or skill.get("display_name") == named)
        ]
        for skill in candidates[:LOOKUP_DOWNLOADS]:
            archive = await self.versions.download(skill["id"], skill["latest_version_id"])
            if upload.same_as_zip(archive):
                return dict(skill)
        return None

    async def retrieve(self, id: str) -> JSON:
        """One skill."""
        return await self._object("GET", item_path("skills", id))

    def list(self, source: str | None = "custom") -> Pager:
        """Every skill (custom ones by default), oldest first, up to 1000 per page."""
        return self._client.paginate("/v1/skills", {"source": source}, limit=PAGE_SIZE)

    async def delete(self, id: str) -> JSON:
        """Delete a skill and all its versions; ``{"id", "type": "skill_deleted"}``."""
        return await self._object("DELETE", item_path("skills", id))
