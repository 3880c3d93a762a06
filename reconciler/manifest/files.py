"""The files of a manifests directory and bounded reads of the files a user names.

Which files: a manifests directory may hold YAML that is not a manifest (a CI workflow, a
template). ``.reconcilerignore`` at its top lists such files in gitignore syntax; the patterns
are matched by pathspec, the maintained implementation of git's rules, so ``ci/``,
``*.tmpl.yaml`` and ``!keep.tmpl.yaml`` mean what they mean to git. Hidden files and
directories are never read, nor a directory below the top holding ``SKILL.md``: a skill's
files (a Skill's ``source``, where ``import`` writes skills), whose YAML is the skill's data. Nothing here parses YAML.

Bounded reads: a manifest, a ``from_file`` secret or a saved plan could be ``/dev/zero``,
``/dev/urandom``, a FIFO (whose ``open`` waits for a writer forever) or a sparse file of a
gigabyte. Each is refused before any byte is read: the path is ``stat``-ed first (a FIFO is
never opened), its size is checked against the limit, and the read itself stops one byte past
the limit in case the file grew in between. The limits are documented in the README ("Limits").
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from reconciler.errors import ManifestError, ManifestIssue

MANIFEST_SUFFIXES = (".yaml", ".yml")
#: a directory holding this file is a skill's source (``skilldir`` reads it): not manifests
SKILL_FILE = "SKILL.md"

#: A gitignore-syntax file at the top of the manifests directory naming files to skip.
IGNORE_FILE = ".reconcilerignore"


def ignore_matcher(root: Path) -> Callable[[str], bool] | None:
    """``matches(path relative to root)`` from ``root/.reconcilerignore``, or None without one."""
    ignore = root / IGNORE_FILE
    if not ignore.is_file():
        return None
    # imported here: only a directory that has the file pays for it
    from pathspec import GitIgnoreSpec

    try:
        raw = read_limited(ignore, MAX_MANIFEST_BYTES)
    except (OSError, FileRefused) as exc:
        reason = exc.reason if isinstance(exc, FileRefused) else f"cannot be read: {exc.strerror}"
        raise _ignore_error(ignore, 1, reason) from None
    # utf-8-sig: a byte-order mark (a Windows editor's) is skipped, as git skips that of a
    # .gitignore; left in, it made the first pattern match nothing
    lines = raw.decode("utf-8-sig", "replace").splitlines()
    try:
        spec = GitIgnoreSpec.from_lines(lines)
    except (ValueError, re.error):
        # the file is ours, not git's (which skips such a line): said at the line, as
        # ignoring it could read a CI workflow as a manifest
        for number, line in enumerate(lines, 1):
            try:
                GitIgnoreSpec.from_lines([line])
            except (ValueError, re.error) as exc:
                raise _ignore_error(
                    ignore,
                    number,
                    f"the pattern '{line}' is not gitignore syntax ({exc}); fix or remove it",
                ) from None
        raise
    return spec.match_file


def _ignore_error(ignore: Path, line: int, message: str) -> ManifestError:
    from .manifestset import display_path  # it imports this module

    return ManifestError(ManifestIssue(display_path(ignore), line, 1, message))


def left_out(root: Path, path: Path) -> str | None:
    """Why ``manifest_files(root)`` leaves out the YAML file ``path`` (which need not exist
    yet), read after the path: ``.reconcilerignore`` names it, or it or a folder on its way
    is hidden; None when it is read, or outside ``root``."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return None
    if any(part.startswith(".") for part in rel.parts):
        return "is hidden (a name starting with '.'), which the manifests do not read"
    matches = ignore_matcher(root)
    if matches is not None and matches(rel.as_posix()):
        return f"would be left out by {root / IGNORE_FILE}"
    return None


def manifest_files(root: Path) -> tuple[list[Path], list[Path]]:
    """(YAML files to read, YAML files ``.reconcilerignore`` leaves out) under ``root``,
    searched recursively, each sorted by path relative to ``root``.

    Example: with ``ci/`` in ``manifests/.reconcilerignore``,
    ``manifest_files(Path("manifests"))`` is
    ``([.../agents.yaml, ...], [.../ci/workflow.yaml])``.
    """
    matches = ignore_matcher(root)
    found: list[tuple[str, Path]] = []
    skipped: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if SKILL_FILE in filenames and Path(dirpath) != root:
            dirnames[:] = []  # a skill's directory: its YAML files are the skill's own
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(MANIFEST_SUFFIXES):
                full = Path(dirpath) / name
                rel = full.relative_to(root).as_posix()
                (skipped if matches is not None and matches(rel) else found).append((rel, full))
    return [path for _, path in sorted(found)], [path for _, path in sorted(skipped)]


#: largest manifest file read (a manifest of 1,000 agents is ~200 KiB)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: largest ``from_file`` secret read (a PEM bundle is a few KiB)
MAX_SECRET_BYTES = 1024 * 1024
#: largest text file a manifest names (``system: {from_file: ...}``); a system prompt is at
#: most 100,000 characters
MAX_TEXT_FILE_BYTES = 1024 * 1024
#: largest saved plan read (``plan --out`` of 10,000 actions is ~15 MiB)
MAX_PLAN_BYTES = 64 * 1024 * 1024

_CHUNK = 1024 * 1024


class FileRefused(Exception):
    """The path is not a regular file, or it is larger than the limit; ``reason`` says which.

    ``reason`` reads after the path: ``f"{path} {reason}"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files of ``paths``: files as given, directories searched recursively
    (hidden entries and what their ``.reconcilerignore`` names skipped), sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += manifest_files(path)[0]
        elif path.exists():
            files.append(path)
        else:
            raise ManifestError(ManifestIssue(str(path), 1, 1, "no such file or directory"))
    return sorted(dict.fromkeys(files))


def may_hold_documents(files: list[Path]) -> bool:
    """Whether any of ``files`` has a line that can start a YAML document: one that is not
    blank, a comment, a ``---`` / ``...`` marker or a ``%`` directive. False means that
    loading them finds no document at all (an empty file, or only comments); True does not
    promise one. A cheap look for the "no manifest documents" warning of commands that
    load the manifests only later, or not themselves."""
    for file in files:
        try:
            text = read_limited(file, MAX_MANIFEST_BYTES).decode("utf-8", "replace")
        except (OSError, FileRefused):
            return True  # said by the command that reads it
        for line in text.removeprefix("\ufeff").splitlines():
            bare = line.strip()
            if not bare or bare.startswith("#") or line.startswith("%"):
                continue
            if bare.split("#", 1)[0].strip() in ("---", "..."):  # `--- # a comment`
                continue
            return True
    return False


def _what(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _refuse_mode(mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise FileRefused("is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise FileRefused(f"is {_what(mode)}; only regular files are read")


def too_large(size: int, limit: int) -> FileRefused:
    """The refusal of a file of ``size`` bytes, over ``limit`` (to raise, or to report)."""
    # just over the limit, the rounded size reads like the limit itself: give the bytes
    said = _size(size) if _size(size) != _size(limit) else f"{size:,} bytes"
    return FileRefused(f"is larger than {_size(limit)} ({said}), the most that is read")


def read_limited(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing anything else or anything larger.

    Raises:
        FileRefused: ``path`` is a directory, FIFO, device or socket, or larger than
            ``limit`` bytes (checked before reading and while reading).
        OSError: ``path`` cannot be found or opened (its ``filename`` is set).
    """
    _refuse_mode((before := os.stat(path)).st_mode)
    if before.st_size > limit:
        raise too_large(before.st_size, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags | getattr(os, "O_NOCTTY", 0))
    try:
        _refuse_mode(os.fstat(fd).st_mode)  # swapped for a FIFO since the stat: still refused
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew since the stat
                raise FileRefused(f"is larger than {_size(limit)}, the most that is read")
        return b"".join(chunks)
    finally:
        os.close(fd)
