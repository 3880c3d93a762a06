"""Crash-safe file writing: atomic replacement of a text file, and append-only JSON-lines
files (the lockfile's journal and history) that a kill can tear but never corrupt.

``write_text_atomic`` serves manifests rewritten by ``fmt`` or written by ``import``, and plan
files.
The lockfile has its own writer (``lockfile.py``: backup, kept mode), which shares
``fsync_dir`` from here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from reconciler.errors import LockfileError


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` as an editor saving it would: a temp file in the same
    folder, fsync, ``os.replace``. Through a symlink the file it names is rewritten (the link
    stays a link); a file that exists keeps its permissions (a private manifest stays private,
    also while the new text is written), a new one gets the usual ``0o666`` less the umask."""
    real = path.resolve()
    try:
        mode: int | None = stat.S_IMODE(real.stat().st_mode)
    except FileNotFoundError:
        mode = None
    tmp = real.with_name(f".{real.name}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, real)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_lines(path: Path, data: bytes, *, sync: bool) -> int:
    """Append ``data`` (whole lines) to ``path``, fsynced when ``sync``; the bytes written.

    A kill can leave the file's last line without its newline: then a newline goes first,
    so that the torn line ends there and not inside the first line of ``data``.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o666)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return len(data)


def read_lines(path: Path, what: str) -> list[bytes]:
    """The non-blank lines of ``path``; [] when there is no such file.

    Raises:
        LockfileError: the file cannot be read (``what`` names it in the message).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise LockfileError(f"{path}: cannot read {what}: {e.strerror or e}") from e
    return [line for line in raw.split(b"\n") if line.strip()]


def fsync_dir(directory: Path) -> None:
    """Make a rename or a file creation in ``directory`` durable, where the system can."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename itself is still atomic
    finally:
        os.close(fd)
