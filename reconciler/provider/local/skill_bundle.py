"""What a skill upload must look like, and the zip a version downloads as.

Pure functions over ``(path, bytes)`` pairs: no HTTP, no storage. An upload is accepted when
its files share one top-level directory holding ``SKILL.md`` at its root, whose YAML
frontmatter gives a ``description`` (and optionally the ``name`` slug; else the directory's
name is the slug). Every refusal is a 400 ``invalid_request_error`` naming the rule.

The limits are the ones Anthropic documents for custom skills (8 MB per upload; a ``name``
of at most 64 lowercase letters, digits and hyphens, without "anthropic" or "claude"; a
non-empty ``description`` of at most 1024 characters; ``display_name`` at most 255
characters) plus three of ours that the docs leave open: at most 500 files, paths of at
most 512 characters, and a frontmatter of at most 64 KB. docs/architecture.md ("Skills") lists them.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from .errors import bad_request

MAX_FILES = 500
MAX_TOTAL_BYTES = 8 * 1024 * 1024
MAX_PATH_CHARS = 512
MAX_SLUG_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
MAX_DISPLAY_NAME_CHARS = 255
#: the frontmatter is a few keys; a bound keeps the YAML parser's work small
MAX_FRONTMATTER_CHARS = 64 * 1024
RESERVED_WORDS = ("anthropic", "claude")
MANIFEST = "SKILL.md"

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: the fixed timestamp of every zip entry, so one version always downloads as the same bytes
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    """A checked upload.

    Attributes:
        top: the one top-level directory every path starts with.
        slug: the kebab-case ``name`` (frontmatter ``name``, else ``top``).
        description: the frontmatter ``description``.
        title: the frontmatter ``name`` as written (the default display name), or ``top``.
        files: ``(path, content)`` in upload order.
    """

    top: str
    slug: str
    description: str
    title: str
    files: tuple[tuple[str, bytes], ...]


def check_upload(files: Sequence[tuple[str, bytes]]) -> Bundle:
    """Check an upload's files and read its SKILL.md.

    Raises:
        ApiError: 400 naming the first rule the upload breaks.
    """
    if not files:
        raise bad_request(
            f"files[] is required: upload the files of one directory with {MANIFEST} at its root"
        )
    if len(files) > MAX_FILES:
        raise bad_request(f"a skill upload holds at most {MAX_FILES} files, not {len(files)}")
    total = sum(len(content) for _, content in files)
    if total > MAX_TOTAL_BYTES:
        raise bad_request(
            f"a skill upload is at most {MAX_TOTAL_BYTES} bytes (8 MB) in total, not {total}"
        )
    tops: set[str] = set()
    seen: set[str] = set()
    for path, _ in files:
        _check_path(path)
        if path in seen:
            raise bad_request(f"the file {path!r} is uploaded twice")
        seen.add(path)
        tops.add(path.split("/", 1)[0])
    if len(tops) > 1:
        names = ", ".join(sorted(tops)[:5])
        raise bad_request(
            f"all files must be in the same top-level directory; this upload has {len(tops)} "
            f"({names})"
        )
    top = tops.pop()
    manifest = dict(files).get(f"{top}/{MANIFEST}")
    if manifest is None:
        raise bad_request(f"the upload has no {MANIFEST} at the root of its directory {top!r}")
    name, description = _frontmatter(top, manifest)
    slug = name if name is not None else top
    check_slug(slug, "the frontmatter name" if name is not None else "the directory name")
    return Bundle(top, slug, description, name or top, tuple(files))


def check_slug(slug: str, what: str) -> None:
    """Refuse a skill name that is not kebab-case, too long or uses a reserved word."""
    if len(slug) > MAX_SLUG_CHARS or not _SLUG.fullmatch(slug):
        raise bad_request(
            f"{what} {slug!r} is not a skill name: at most {MAX_SLUG_CHARS} lowercase letters, "
            "digits and single hyphens (kebab-case)"
        )
    for word in RESERVED_WORDS:
        if word in slug:
            raise bad_request(f"{what} {slug!r} may not contain the reserved word {word!r}")


def check_display_name(value: str) -> str:
    """A display name as sent: one line of at most 255 characters, not blank."""
    if not value.strip():
        raise bad_request("display_name must not be blank; omit it to use the SKILL.md name")
    if len(value) > MAX_DISPLAY_NAME_CHARS:
        raise bad_request(f"display_name is at most {MAX_DISPLAY_NAME_CHARS} characters")
    if "\n" in value or "\r" in value:
        raise bad_request("display_name must be a single line")
    return value


def _check_path(path: str) -> None:
    if not path or len(path) > MAX_PATH_CHARS:
        raise bad_request(f"every file needs a path of 1-{MAX_PATH_CHARS} characters")
    segments = path.split("/")
    if path.startswith("/") or "\\" in path or any(s in ("", ".", "..") for s in segments):
        raise bad_request(
            f"the file path {path!r} must be relative, use '/' and have no empty, '.' or '..' parts"
        )
    if len(segments) < 2:
        raise bad_request(
            f"the file {path!r} is outside a directory: every file must be under one "
            f"top-level directory (e.g. my-skill/{MANIFEST})"
        )
    if any(ord(c) < 32 for c in path):
        raise bad_request(f"the file path {path!r} contains control characters")


def _frontmatter(top: str, manifest: bytes) -> tuple[str | None, str]:
    """(name or None, description) from SKILL.md's YAML frontmatter."""
    where = f"{top}/{MANIFEST}"
    try:
        text = manifest.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise bad_request(f"{where} is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise bad_request(f"{where} must start with YAML frontmatter between '---' lines")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise bad_request(f"{where}: the frontmatter has no closing '---' line") from None
    front = "\n".join(lines[1:end])
    if len(front) > MAX_FRONTMATTER_CHARS:
        raise bad_request(
            f"{where}: the frontmatter is longer than {MAX_FRONTMATTER_CHARS} characters"
        )
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 2})" if mark is not None else ""
        raise bad_request(f"{where}: the frontmatter is not valid YAML{at}") from None
    if not isinstance(meta, dict):
        raise bad_request(f"{where}: the frontmatter must be a mapping with a description")
    name, description = meta.get("name"), meta.get("description")
    if name is not None and not isinstance(name, str):
        raise bad_request(f"{where}: the frontmatter name must be a string")
    if not isinstance(description, str) or not description.strip():
        raise bad_request(f"{where}: the frontmatter needs a non-empty description")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise bad_request(f"{where}: the description is at most {MAX_DESCRIPTION_CHARS} characters")
    return name, description


def to_zip(files: Sequence[tuple[str, bytes]]) -> bytes:
    """The files as a zip archive, in upload order, with fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, content in files:
            info = zipfile.ZipInfo(path, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()
