"""A skill's source directory: which files it holds, what its SKILL.md says, its digest.

A Skill manifest names a directory (``spec.source``) holding ``SKILL.md``; apply uploads a
new skill version when the directory's content changes. This module reads such a directory
the way the provider will judge the upload (provider-wire.md §15), so that what the provider
would refuse is refused at ``validate``, with the file that is wrong:

- ``SKILL.md`` at the root, with YAML frontmatter whose ``name`` is the skill's slug (1-64
  lowercase letters, digits and hyphens) and an optional ``description``;
- at most ``MAX_FILES`` files and ``MAX_TOTAL_BYTES`` in all;
- no symlink that leads outside the directory, and nothing outside the repository;
- no control character and no backslash in a file's path.

Which files: what git would commit. ``.gitignore`` files from the repository root down to
and inside the directory are honoured (pathspec, git's own rules), and ``.git``,
``__pycache__``, ``*.pyc`` and ``.DS_Store`` are always left out, so a digest is the same on
every machine whatever the tests or the editor left behind.

The digest (``sha256:...``) covers each file's path (relative, ``/``-separated) and bytes, in
path order: independent of the file system's order, timestamps and permissions.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .files import SKILL_FILE, FileRefused, read_limited

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

#: limits of one upload: Anthropic's documented ones for custom skills (8 MB, the slug and
#: description rules), and the local provider's for what the docs leave open (file count,
#: path length, frontmatter size); ``provider/local/skill_bundle.py`` holds the server's copy
#: (tests/test_skill_source.py checks they agree)
MAX_FILES = 500
MAX_TOTAL_BYTES = 8 * 1024 * 1024
MAX_PATH_CHARS = 512
MAX_SLUG = 64
MAX_DESCRIPTION = 1024
MAX_FRONTMATTER_CHARS = 64 * 1024
RESERVED_WORDS = ("anthropic", "claude")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: left out of every skill whatever .gitignore says (gitignore syntax)
ALWAYS_IGNORED = (".git/", "__pycache__/", "*.pyc", ".DS_Store")


class SkillSourceError(ValueError):
    """The directory cannot be uploaded as a skill; the message says why and which file."""


@dataclass(frozen=True)
class SkillFile:
    """One file of a skill: its path relative to the skill directory, size and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SkillSource:
    """What a skill directory holds, as the provider will see the upload.

    Attributes:
        root: the directory (symlinks resolved).
        slug: SKILL.md's frontmatter ``name``; fixed by the first upload.
        description: SKILL.md's frontmatter ``description``.
        files: every file uploaded, sorted by path.
        digest: ``sha256:...`` of the paths and bytes.
    """

    root: Path
    slug: str
    description: str
    files: tuple[SkillFile, ...]
    digest: str

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def changed_files(self, before: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
        """(added, changed, removed) paths against ``before`` (path -> sha256)."""
        now = {f.path: f.sha256 for f in self.files}
        added = sorted(p for p in now if p not in before)
        changed = sorted(p for p in now if p in before and before[p] != now[p])
        removed = sorted(p for p in before if p not in now)
        return added, changed, removed


def read_skill_source(directory: str | Path, *, repository: Path | None = None) -> SkillSource:
    """Read and check the skill directory ``directory``.

    Args:
        directory: the skill's directory.
        repository: where it must stay (the repository root); None to skip that check.

    Raises:
        SkillSourceError: the directory is missing, has no SKILL.md or a bad one, holds a
            symlink leading outside it, or is over a limit.
    """
    given = Path(directory)
    try:
        if not given.exists():
            # exists() is False for a link that leads nowhere: say which
            what = "is a symbolic link loop" if _loops(given) else "does not exist"
            raise SkillSourceError(f"skill source {given} {what}")
        root = given.resolve()
        if not root.is_dir():
            raise SkillSourceError(f"skill source {given} is not a directory")
    except (OSError, RuntimeError) as exc:  # a name too long; 3.11's resolve on a loop
        reason = exc.strerror if isinstance(exc, OSError) else "a symbolic link loop"
        raise SkillSourceError(f"skill source {given} cannot be read: {reason}") from None
    if repository is not None and not root.is_relative_to(repository):
        raise SkillSourceError(
            f"skill source {given} is outside the repository ({repository}), after following "
            "symlinks: a skill's files must be kept in the repository"
        )
    ignored = _ignore_matcher(root, repository)
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            rel = (here / name).relative_to(root).as_posix()
            _check_utf8(rel, given)
            if ignored(rel + "/"):
                continue
            if (here / name).is_symlink():
                _inside(root, here / name, rel, given)
                # a link to a directory inside the skill: its files are uploaded where they are
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            _check_utf8(rel, given)
            if ignored(rel):
                continue
            if path.is_symlink():
                _inside(root, path, rel, given)
            if any(ord(c) < 32 or c == "\\" for c in rel):
                # the provider refuses such a path (400): said here, before anything is sent
                raise SkillSourceError(
                    f"{rel!r} in skill source {given}: a file name in a skill may hold no "
                    "control character (a newline, a tab) and no backslash; rename it"
                )
            if len(root.name) + 1 + len(rel) > MAX_PATH_CHARS:
                # the upload names each file under the directory's name (app.skills)
                sent = f"{root.name}/{rel}"
                raise SkillSourceError(
                    f"{rel[:80]}... in skill source {given}: its path as uploaded "
                    f"({sent[:40]}..., {len(sent)} characters, the skill directory's name "
                    f"included) is longer than the {MAX_PATH_CHARS} the provider takes; "
                    "shorten it"
                )
            files.append((rel, path))
            if len(files) > MAX_FILES:
                raise SkillSourceError(
                    f"skill source {given} holds more than {MAX_FILES} files; the provider "
                    "takes at most that many in one skill version"
                )
    if not any(rel == SKILL_FILE for rel, _ in files):
        raise SkillSourceError(
            f"skill source {given} has no {SKILL_FILE} at its top: a skill is a directory "
            f"with {SKILL_FILE} (frontmatter name and description) at its root"
        )
    entries: list[SkillFile] = []
    total = 0
    skill_md = b""
    for rel, path in sorted(files):
        data = _read(path, rel, given, MAX_TOTAL_BYTES - total)
        total += len(data)
        entries.append(SkillFile(rel, len(data), hashlib.sha256(data).hexdigest()))
        if rel == SKILL_FILE:
            skill_md = data
    slug, description = parse_skill_md(skill_md, given / SKILL_FILE)
    digest = files_digest({f.path: f.sha256 for f in entries})
    return SkillSource(root, slug, description, tuple(entries), digest)


def files_digest(files: dict[str, str]) -> str:
    """The digest of a skill's files given as path -> sha256 (hex): ``sha256:...`` over each
    path and its file's hash, in path order. The one algorithm of a skill's content, for a
    directory read here and for a version downloaded from the provider alike."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel].encode() + b"\n")
    return "sha256:" + digest.hexdigest()


def archive_files(archive: bytes) -> dict[str, str] | None:
    """path -> sha256 of the files of a downloaded skill version (a zip whose names carry
    the skill's top directory, which is dropped); None when it is no such zip."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            out: dict[str, str] = {}
            for name in z.namelist():
                if name.endswith("/"):
                    continue
                rel = name.split("/", 1)[1] if "/" in name else name
                out[rel] = hashlib.sha256(z.read(name)).hexdigest()
            return out
    except (zipfile.BadZipFile, KeyError, ValueError):
        return None


def parse_skill_md(data: bytes, shown: str | Path = SKILL_FILE) -> tuple[str, str]:
    """(name, description) from SKILL.md's YAML frontmatter.

    Raises:
        SkillSourceError: not UTF-8, no frontmatter (or not YAML, said at its line), no
            ``name``, or a name that is not a slug.
    """
    import yaml  # the manifest layer's parser; imported when a skill is read

    try:
        text = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise SkillSourceError(f"{shown} is not UTF-8 text") from None
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.DOTALL)
    if match is None:
        raise SkillSourceError(
            f"{shown} has no frontmatter: start it with a '---' block holding name and "
            "description, e.g. '---\\nname: pdf-tools\\ndescription: ...\\n---'"
        )
    size = len("\n".join(match.group(1).splitlines()))  # as the provider counts it
    if size > MAX_FRONTMATTER_CHARS:
        raise SkillSourceError(
            f"{shown}: its frontmatter is {size} characters; the provider takes at most "
            f"{MAX_FRONTMATTER_CHARS}: keep long text in the body, below the closing '---'"
        )
    try:
        front = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise SkillSourceError(_yaml_error(shown, error)) from None
    if (
        isinstance(front, dict)
        and front.get("name") is not None
        and not isinstance(front["name"], str)
    ):
        raise SkillSourceError(
            f"{shown}: its frontmatter's name is not text: write the skill's slug, e.g. "
            "name: pdf-tools"
        )
    if not isinstance(front, dict) or not isinstance(front.get("name"), str):
        raise SkillSourceError(f"{shown}: its frontmatter has no 'name' (the skill's slug)")
    name = front["name"]  # as the provider reads it: ' pdf-tools ' is no slug there either
    if len(name) > MAX_SLUG or not SLUG_RE.match(name):
        raise SkillSourceError(
            f"{shown}: name '{name[:80]}' is not a skill slug: use 1-{MAX_SLUG} lowercase "
            "letters, digits and single hyphens, e.g. pdf-tools"
        )
    reserved = [word for word in RESERVED_WORDS if word in name]
    if reserved:
        raise SkillSourceError(
            f"{shown}: name '{name}' contains the reserved word '{reserved[0]}'; choose another"
        )
    description = front.get("description")
    if description is not None and not isinstance(description, str):
        raise SkillSourceError(
            f"{shown}: its frontmatter's description is not text ({str(description)[:40]}): "
            "quote it, e.g. description: \"2024 tax forms\""
        )
    description = description.strip() if isinstance(description, str) else ""
    if not description:
        raise SkillSourceError(
            f"{shown}: its frontmatter has no 'description' (what the skill does and when to "
            "use it; the agent reads it to decide)"
        )
    if len(description) > MAX_DESCRIPTION:
        raise SkillSourceError(
            f"{shown}: description is {len(description)} characters; the limit is {MAX_DESCRIPTION}"
        )
    return name, description


def _yaml_error(shown: str | Path, error: Exception) -> str:
    """``SKILL.md:LINE:COL: its frontmatter is not valid YAML: PROBLEM``, one line, its place
    counted in the file (the frontmatter starts on its second line)."""
    mark = getattr(error, "problem_mark", None)
    where = f"{shown}:{mark.line + 2}:{mark.column + 1}" if mark is not None else str(shown)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{where}: its frontmatter is not valid YAML: {problem}"


def _check_utf8(rel: str, given: Path) -> None:
    """Refuse a path that is not UTF-8 (os.walk hands its bytes over as surrogates): the
    upload names each file in UTF-8, and .gitignore matching cannot read it either."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise SkillSourceError(
            f"{shown!r} in skill source {given}: its name is not UTF-8, and a skill's files "
            "are named in UTF-8; rename it"
        ) from None


def _inside(root: Path, link: Path, rel: str, given: Path) -> None:
    try:
        target = link.resolve()
    except (RuntimeError, OSError):  # a loop: Python 3.11 raises RuntimeError, 3.13 OSError
        raise SkillSourceError(
            f"{rel} in skill source {given} is a symlink loop; remove it"
        ) from None
    if not target.is_relative_to(root):
        raise SkillSourceError(
            f"{rel} in skill source {root} is a symlink to {target}, outside the skill's "
            "directory: copy the file in instead"
        )


def _read(path: Path, rel: str, given: Path, room: int) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if not path.is_symlink():
            raise SkillSourceError(
                f"{rel} in skill source {given} was removed while read"
            ) from None
        raise SkillSourceError(
            f"{rel} in skill source {given} is a symlink to {os.readlink(path)}, which does "
            "not exist; remove it or copy the file in"
        ) from None
    except OSError as error:
        raise SkillSourceError(
            f"{rel} in skill source {given} cannot be read ({error.strerror})"
        ) from None
    if not stat.S_ISREG(mode):
        raise SkillSourceError(f"{rel} in skill source {given} is not a regular file")
    try:
        return read_limited(path, max(room, 0))
    except FileRefused:
        raise SkillSourceError(
            f"skill source {given} is larger than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB "
            f"(reached at {rel}); the provider takes at most that much in one skill version"
        ) from None
    except OSError as error:
        raise SkillSourceError(
            f"{rel} in skill source {given} cannot be read ({error.strerror})"
        ) from None


def _ignore_matcher(root: Path, repository: Path | None) -> Callable[[str], bool]:
    """``ignored(path relative to root)``: .gitignore rules from the repository down to and
    inside ``root``, plus ``ALWAYS_IGNORED``."""
    lines: list[str] = list(ALWAYS_IGNORED)
    top = repository if repository is not None and root.is_relative_to(repository) else root
    chain = [top, *[p for p in reversed(root.parents) if p.is_relative_to(top) and p != top]]
    if root != top:
        chain.append(root)
    for directory in chain:
        prefix = root.relative_to(directory).as_posix()
        for line in _gitignore_lines(directory / ".gitignore"):
            lines.append(_rebase(line, prefix))
    inner: list[tuple[str, GitIgnoreSpec]] = []
    for dirpath, _, filenames in os.walk(root):
        if ".gitignore" in filenames and Path(dirpath) != root:
            rel = Path(dirpath).relative_to(root).as_posix()
            rules = _gitignore_lines(Path(dirpath) / ".gitignore")
            inner.append((rel + "/", _gitignore_spec(rules)))
    outer = _gitignore_spec([line for line in lines if line])

    def ignored(rel: str) -> bool:
        if outer.match_file(rel):
            return True
        return any(
            rel.startswith(base) and spec.match_file(rel[len(base) :]) for base, spec in inner
        )

    return ignored


def _loops(path: Path) -> bool:
    """Whether ``path`` is a symbolic link that never reaches a file (a loop)."""
    try:
        os.stat(path)
    except OSError as err:
        return err.errno == errno.ELOOP
    return False


def _gitignore_spec(lines: list[str]) -> GitIgnoreSpec:
    """The rules of ``lines``, without the patterns pathspec cannot read (``notes\\``,
    ``[z-a]``): git skips such a line of a .gitignore and reads the rest, and so does this."""
    from pathspec import GitIgnoreSpec

    try:
        return GitIgnoreSpec.from_lines(lines)
    except (ValueError, re.error):
        pass
    kept = []
    for line in lines:
        try:
            GitIgnoreSpec.from_lines([line])
        except (ValueError, re.error):
            continue
        kept.append(line)
    return GitIgnoreSpec.from_lines(kept)


def _gitignore_lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    # utf-8-sig: git skips the byte-order mark of a .gitignore (left in, it made the first
    # pattern match nothing, and that file was uploaded)
    return read_limited(path, 1024 * 1024).decode("utf-8-sig", "replace").splitlines()


def _rebase(line: str, prefix: str) -> str:
    """A .gitignore line of a directory ``prefix`` above the skill, as a rule relative to
    the skill's directory; "" when it cannot apply inside it."""
    text = line.strip()
    if not text or text.startswith("#") or prefix == ".":
        return "" if not text or text.startswith("#") else line
    negate = text.startswith("!")
    body = text[1:] if negate else text
    anchored = "/" in body.rstrip("/")
    if not anchored:
        return line  # a bare name matches at any depth, inside the skill too
    body = body.lstrip("/")
    if not body.startswith(prefix + "/"):
        return ""
    rebased = "/" + body[len(prefix) + 1 :]
    return ("!" if negate else "") + rebased
