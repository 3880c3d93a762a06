"""Reading and atomically writing the lockfile file (``state/reconciler.lock``).

One job: turn the file into a ``Lockfile`` and back without ever leaving a torn, truncated or
foreign-version file behind. It does not lock (``reconciler.state.lock`` does) and does not
decide what goes into the lockfile (the engine does).

Files next to the lockfile ``PATH``, all matched by the git-ignore pattern ``PATH.*``:

    PATH                 the lockfile (committed to git)
    PATH.backup          the previous version, kept at every write
    PATH.tmp-XXXXXXXXXXXX  a write in progress (left behind only by a crash; swept later)

A write goes: temp file in the same folder, write, fsync, hard-link the current file to
``PATH.backup`` (temp + rename too; a copy where hard links are unsupported), ``os.replace``
the temp onto ``PATH``, fsync the folder. A reader, or a ``kill -9`` at any instant, sees
either the old or the new file, never a mix.

A file that does not parse, or has a newer ``lockfile_version``, is an error naming the file
and is never overwritten: a write first checks that the file on disk is the one the lockfile
was read from (same lineage and serial).
"""

from __future__ import annotations

import bisect
import errno
import itertools
import json
import operator
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import LockfileError
from reconciler.kinds import kind_of
from reconciler.state.files import fsync_dir
from reconciler.state.journalfile import replay_journal
from reconciler.state.model import LOCKFILE_VERSION, Lockfile, MigratedTo, new_lockfile

BACKUP_SUFFIX = ".backup"
TEMP_MARK = ".tmp-"

#: (st_dev, st_ino, st_size, st_mtime_ns) of a lockfile as this process last saw it.
FileStamp = tuple[int, int, int, int]

_PLACEHOLDER = f"@@section-{secrets.token_hex(8)}@@"


def backup_path(path: str | os.PathLike[str]) -> Path:
    """Where the previous version of the lockfile at ``path`` is kept: ``PATH.backup``."""
    path = Path(path)
    return path.with_name(path.name + BACKUP_SUFFIX)


def read_lockfile(path: str | os.PathLike[str], *, project: str = "default") -> Lockfile:
    """Read the lockfile at ``path``.

    Args:
        path: the lockfile, e.g. ``state/reconciler.lock``.
        project: the project of the new lockfile returned when the file does not exist.

    Returns:
        The parsed lockfile with the writes of its journal (``PATH.journal``, see
        ``journalfile.py``) applied, or a new empty one (fresh lineage and salt, serial 0) if
        the file does not exist.

    Raises:
        LockfileError: the file cannot be read, is not valid JSON, is not a lockfile, or was
            written by a newer reconciler. The message names the file and what to do.
    """
    return replay_journal(Path(path), read_stamped(Path(path), project=project)[0])


class MigratedState(LockfileError):
    """A state ``state migrate`` moved elsewhere, marked so (``Lockfile.migrated_to``): no
    command reads or writes it (``lockfile`` is what it holds, for ``state migrate --force``
    and the way back)."""

    def __init__(self, message: str, lockfile: Lockfile) -> None:
        super().__init__(message)
        self.lockfile = lockfile


def _moved_into_a_database(moved: MigratedTo) -> bool:
    """Whether ``state migrate`` moved the state into a database (else into a lockfile)."""
    from reconciler.state.postgres.conninfo import is_database_url  # no psycopg import

    return is_database_url(moved.backend)


class MigratedLockfile(MigratedState):
    """A lockfile whose state ``state migrate`` moved into a database or another lockfile."""

    def __init__(self, path: str | os.PathLike[str], lockfile: Lockfile) -> None:
        moved = lockfile.migrated_to
        assert moved is not None
        if _moved_into_a_database(moved):
            use = "Set RECONCILER_BACKEND (or --backend) to that database in every runner"
            back = f"`reconciler --backend DB state migrate --to {path}`"
        else:
            use = (
                f"Pass --lockfile {moved.backend} (or set RECONCILER_LOCKFILE to it) in every "
                "runner"
            )
            back = f"`reconciler --lockfile {moved.backend} state migrate --to {path}`"
        super().__init__(
            f"{path}: its state was moved to {moved.backend} by `reconciler state migrate` on "
            f"{moved.at} (serial {moved.serial}), and this file only says so: no command reads "
            f"or writes it. {use}, and `git rm {path}`; to bring the state back into this "
            f"lockfile: {back}",
            lockfile,
        )


class MigratedDatabase(MigratedState):
    """A database state (one project's) that ``state migrate`` moved into a lockfile or
    another database."""

    def __init__(self, name: str, lockfile: Lockfile) -> None:
        moved = lockfile.migrated_to
        assert moved is not None
        if _moved_into_a_database(moved):
            use = "Set RECONCILER_BACKEND (or --backend) to that database in every runner"
            back = "`reconciler --backend NEW_DB state migrate --to DB`"
        else:
            use = (
                f"Unset RECONCILER_BACKEND (and --backend) in every runner and pass --lockfile "
                f"{moved.backend} (or set RECONCILER_LOCKFILE to it)"
            )
            back = f"`reconciler --lockfile {moved.backend} state migrate --to DB`"
        super().__init__(
            f"{name}: its state was moved to {moved.backend} by `reconciler state migrate` on "
            f"{moved.at} (serial {moved.serial}), and the database only says so: no command "
            f"reads or writes this project's state there. {use}; to bring the state back into "
            f"the database: {back}",
            lockfile,
        )


def check_project(lockfile: Lockfile, path: str | os.PathLike[str], project: str) -> None:
    """Refuse a lockfile that another ``--project`` wrote, or one whose state was moved into a
    database.

    Raises:
        LockfileError: ``lockfile.project`` is not ``project``.
        MigratedLockfile: ``state migrate`` moved its state into a database.
    """
    if lockfile.migrated_to is not None:
        raise MigratedLockfile(path, lockfile)
    if lockfile.project != project:
        raise LockfileError(
            f"{path}: belongs to project {lockfile.project!r}, not {project!r}; "
            f"pass --project {lockfile.project} (in a program: project={lockfile.project!r}) "
            "or use another lockfile"
        )


def read_project_lockfile(path: str | os.PathLike[str], project: str) -> Lockfile:
    """``read_lockfile`` for one project: a lockfile of another project is refused.

    Raises:
        LockfileError: unreadable, newer, or another project's lockfile.
    """
    lockfile = read_lockfile(path, project=project)
    check_project(lockfile, path, project)
    return lockfile


def write_lockfile(path: str | os.PathLike[str], lockfile: Lockfile) -> Lockfile:
    """Atomically write ``lockfile`` to ``path`` with its serial increased by one.

    The file on disk must still be the one ``lockfile`` was read from (same lineage and
    serial) or absent for a never-written lockfile; anything else means another process
    changed it, or it is unreadable, and nothing is written.

    Returns:
        The lockfile as written (``serial`` = ``lockfile.serial + 1``).

    Raises:
        LockfileError: the file on disk is unreadable, newer, or changed by another process.
        OSError: the folder is not writable or the disk is full (the old file is intact).
    """
    return write_checked(Path(path), lockfile, encoder=LockfileEncoder(), expected=None)[0]


class LockfileEncoder:
    """Encodes lockfiles byte-for-byte as ``json.dumps(..., sort_keys=True, indent=2)``.

    ``json.dumps`` with ``indent`` runs in pure Python (~70 ms for 2,000 entries), too slow
    to run after every action. Entries and pending intents are immutable, so the encoder
    keeps the text of each and only re-encodes those that changed since its last call
    (compared by identity). It also keeps the sorted order of the addresses, so a write of a
    large lockfile costs one pass in C over the entries rather than a Python loop (~20 ms at
    10,000 entries).
    """

    #: the two per-address sections; everything else in the lockfile is a few scalars
    SECTIONS = ("pending", "resources")

    def __init__(self) -> None:
        self._sections = {name: _SectionText() for name in self.SECTIONS}

    def encode(self, lockfile: Lockfile) -> str:
        """The file text of ``lockfile``: sorted keys, two-space indent, trailing newline."""
        head: dict[str, Any] = lockfile.model_dump(mode="json", exclude=set(self.SECTIONS))
        for name in self.SECTIONS:
            head[name] = _placeholder(name)
        text = json.dumps(head, sort_keys=True, indent=2)
        pieces: list[str] = []
        for name in sorted(self.SECTIONS, key=lambda n: text.index(json.dumps(_placeholder(n)))):
            before, text = text.split(json.dumps(_placeholder(name)), 1)
            pieces.append(before)
            pieces.extend(self._sections[name].encode(getattr(lockfile, name)))
        pieces += (text, "\n")
        # one join for the whole text: at 10,000 entries it is 5 MB, and every copy counts
        return "".join(pieces)


def _placeholder(section: str) -> str:
    return f"{_PLACEHOLDER}-{section}"


class _SectionText:
    """The cached text of one ``{address: model}`` section of the lockfile."""

    def __init__(self) -> None:
        self._order: list[str] = []  # addresses of the last call, sorted
        self._items: list[Any] = []  # their models, in that order
        self._parts: list[str] = []  # their text, in that order
        self._known: set[str] = set()

    def encode(self, section: dict[str, Any]) -> tuple[str, ...]:
        """The pieces of text of ``section`` as a value at the second level of the file."""
        order, items, parts, known = self._order, self._items, self._parts, self._known
        if section.keys() != known:
            for address in known - section.keys():
                i = bisect.bisect_left(order, address)
                del order[i], items[i], parts[i]
            added = section.keys() - known
            for address in sorted(added):
                i = bisect.bisect_left(order, address)
                order.insert(i, address)
                items.insert(i, None)
                parts.insert(i, "")
            known.intersection_update(section.keys())
            known.update(added)
        current: list[Any] = list(map(section.__getitem__, order))
        for i in itertools.compress(itertools.count(), map(operator.is_not, current, items)):
            body = _indented(current[i].model_dump(mode="json"), "\n    ")
            parts[i] = f"    {_quote(order[i])}: {body}"
        self._items = current
        if not parts:
            return ("{}",)
        return ("{\n", ",\n".join(parts), "\n  }")


_quote = json.encoder.encode_basestring_ascii  # C, as json.dumps uses
_float = json.JSONEncoder().iterencode  # json's own spelling of floats (NaN, Infinity, repr)


def _indented(value: Any, newline: str) -> str:
    """``json.dumps(value, sort_keys=True, indent=2)``, byte for byte, nested at ``newline``.

    The standard library encodes with ``indent`` in pure Python through generators; this
    plain recursion does the same for the JSON types a lockfile holds, about 3x faster.
    """
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return "".join(_float(value))
    inner = newline + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = sorted(value.items())
        return (
            "{"
            + inner
            + ("," + inner).join(_quote(k) + ": " + _indented(v, inner) for k, v in items)
            + newline
            + "}"
        )
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        return "[" + inner + ("," + inner).join(_indented(v, inner) for v in value) + newline + "]"
    raise TypeError(f"a lockfile holds no {type(value).__name__}")


def remove_stale_temp_files(
    path: str | os.PathLike[str], *, older_than: float = 3600.0
) -> list[Path]:
    """Delete ``PATH.tmp-*`` files a crashed write left behind, if older than ``older_than`` s.

    Returns:
        The files removed.
    """
    path = Path(path)
    removed: list[Path] = []
    cutoff = time.time() - older_than
    try:
        candidates = list(path.parent.glob(path.name + TEMP_MARK + "*"))
        candidates += path.parent.glob(path.name + BACKUP_SUFFIX + TEMP_MARK + "*")
    except OSError:
        return removed
    for candidate in candidates:
        try:
            if candidate.stat().st_mtime < cutoff:
                candidate.unlink()
                removed.append(candidate)
        except OSError:
            continue
    return removed


# -- internals shared with reconciler.state.store ------------------------------------------


def _stamp(st: os.stat_result) -> FileStamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_stamped(path: Path, *, project: str) -> tuple[Lockfile, FileStamp | None]:
    """Read and parse ``path``; also return its stamp (None when the file is missing)."""
    try:
        # O_NONBLOCK: a FIFO in the lockfile's place is opened without waiting for a writer,
        # and then refused with a device like /dev/zero, before anything is read
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        with open(os.open(path, flags), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise LockfileError(
                    f"{path}: not a regular file, so not a lockfile; move it away or pass "
                    "another --lockfile"
                )
            raw = f.read()
    except FileNotFoundError:
        return new_lockfile(project), None
    except IsADirectoryError:
        raise LockfileError(
            f"{path}: a folder, not a lockfile; pass the lockfile's path with --lockfile "
            "(in a program: lockfile=)"
        ) from None
    except OSError as e:
        raise LockfileError(f"{path}: cannot read the lockfile: {e.strerror or e}") from e
    return _parse(path, raw), _stamp(st)


def _restore_hint(path: Path) -> str:
    backup = backup_path(path)
    if backup.exists():
        return f"restore it from {backup} or from git"
    return "restore it from git"


def _refuse_merge_conflict(path: Path, text: str) -> None:
    """Raise when ``text`` holds git's conflict markers (two branches applied and committed
    the lockfile): hand-merging entries is error-prone, keeping one side is not, since apply
    finds what the other side created by its ownership tags."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("<<<<<<<"):
            raise LockfileError(
                f"{path}:{number}:1: an unresolved git merge conflict (<<<<<<<); keep one side "
                f"whole (`git checkout --ours {path}` or `--theirs`, then `git add`), and run "
                "`reconciler apply`: it finds the resources the other side created by their "
                "ownership tags and records them"
            )


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _position_of_second(text: str, key: str) -> str:
    """``:line:col`` of the second ``"key":`` in ``text`` when it occurs exactly twice (so
    the place named is the duplicate), else ``""``."""
    needle = json.dumps(key) + ":"
    spots = [m.start() for m in re.finditer(re.escape(needle), text)]
    if len(spots) != 2:
        return ""
    return position_at(text, spots[1])


def _parse(path: Path, raw: bytes) -> Lockfile:
    try:
        text = raw.decode("utf-8-sig")  # a BOM an editor added is no content
    except UnicodeDecodeError as e:
        raise LockfileError(
            f"{path}: not valid UTF-8 (byte {e.start}); {_restore_hint(path)}"
        ) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as dup:
        # json.loads keeps the last silently: one of two entries of an address would vanish
        raise LockfileError(
            f"{path}{_position_of_second(text, dup.key)}: {dup.key!r} appears twice in one object (a merge that kept "
            f"both sides?); keep one side whole (`git checkout --ours {path}` or `--theirs`) "
            "and run `reconciler apply`: it finds what the other side created by its "
            "ownership tags"
        ) from None
    except json.JSONDecodeError as e:
        _refuse_merge_conflict(path, text)
        raise LockfileError(
            f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg}); {_restore_hint(path)}"
        ) from None
    except RecursionError:  # absurdly deep nesting: no lockfile looks like that
        raise LockfileError(
            f"{path}{position_of_deepest(text)}: not a lockfile (JSON nested too deeply); "
            f"{_restore_hint(path)}"
        ) from None
    if not isinstance(data, dict):
        raise LockfileError(
            f"{path}: not a lockfile (a JSON object was expected, found "
            f"{type(data).__name__}); {_restore_hint(path)}"
        )
    version = data.get("lockfile_version")
    if type(version) is not int:
        raise LockfileError(
            f"{path}: not a lockfile (lockfile_version is missing or not a number); "
            f"{_restore_hint(path)}"
        )
    if version > LOCKFILE_VERSION:
        raise LockfileError(
            f"{path}: written by a newer reconciler (lockfile_version {version} > "
            f"{LOCKFILE_VERSION}); upgrade reconciler"
        )
    try:
        lockfile = Lockfile.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        shown = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in errors[:3]
        )
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        where = position_of_path(text, errors[0]["loc"]) if errors else ""
        raise LockfileError(
            f"{path}{where}: not a valid lockfile: {shown}{more}; {_restore_hint(path)}"
        ) from None
    _refuse_contradicting_kinds(path, text, lockfile)
    return lockfile


def _refuse_contradicting_kinds(path: Path, text: str, lockfile: Lockfile) -> None:
    """Refuse an entry (or pending intent) whose ``kind`` is not the kind its address names
    (``"agent.coder": {"kind": "environment"}``, a hand edit): every command would treat the
    object as the other kind, and no apply ever corrects it."""
    for section, items in (("resources", lockfile.resources), ("pending", lockfile.pending)):
        for address, item in items.items():
            try:
                expected = kind_of(address)
            except ValueError:
                continue  # no kind in the address to contradict
            if item.kind == expected:
                continue
            where = position_of_path(text, (section, address, "kind"))
            raise LockfileError(
                f"{path}{where}: not a valid lockfile: {section}.{address}.kind: "
                f"{item.kind!r} contradicts the address (kind {expected!r}); set it "
                f'back to "{expected}" or {_restore_hint(path)}'
            )


def position_of_path(text: str, loc: tuple[int | str, ...]) -> str:
    """``:line:col`` of the key (or list item) that ``loc``, a validation error's path,
    leads to in the JSON ``text``: as deep as the path can be followed (a step of the model's
    own, not a key of the file, stops it), or ``""`` when not even its first step is found."""
    decoder = json.JSONDecoder()

    def skip(at: int) -> int:  # past the whitespace at ``at``
        while at < len(text) and text[at] in " \t\n\r":
            at += 1
        return at

    def after(at: int, separator: str) -> int:  # past ``separator`` (and space) at ``at``
        at = skip(at)
        if not text.startswith(separator, at):
            raise ValueError(f"no {separator!r} at {at}")
        return skip(at + 1)

    at, found = skip(0), None
    try:
        for step in loc:
            if text.startswith("{", at) and isinstance(step, str):
                at = skip(at + 1)
                while text.startswith('"', at):
                    key, end = decoder.raw_decode(text, at)
                    value = after(end, ":")
                    if key == step:
                        found, at = at, value
                        break
                    end = skip(decoder.raw_decode(text, value)[1])
                    at = after(end, ",") if text.startswith(",", end) else end
                else:
                    break
            elif text.startswith("[", at) and isinstance(step, int):
                at = skip(at + 1)
                for _ in range(step):
                    at = after(decoder.raw_decode(text, at)[1], ",")
                found = at
            else:
                break
    except ValueError:  # the path leads out of what the text holds: as far as it went
        pass
    return "" if found is None else position_at(text, found)


def position_at(text: str, offset: int) -> str:
    """``:line:col`` (from 1) of ``offset`` in ``text``, as an error names a place."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f":{line}:{column}"


def position_of_deepest(text: str) -> str:
    """``:line:col`` of the first ``[`` or ``{`` where the JSON ``text`` is nested deepest
    (outside strings): where a "nested too deeply" error points."""
    depth = deepest = 0
    found, in_string, escaped = 0, False, False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, found = depth, offset
        elif char in "]}":
            depth -= 1
    return position_at(text, found)


def check_on_disk(path: Path, lockfile: Lockfile, expected: FileStamp | None) -> None:
    """Refuse to write unless the file on disk is the one ``lockfile`` came from."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if lockfile.serial != 0:
            raise LockfileError(
                f"{path}: was removed while in use (this process had serial "
                f"{lockfile.serial}); nothing was written; {_restore_hint(path)}"
            ) from None
        return
    if expected is not None and _stamp(st) == expected:
        return  # the very file this process last read or wrote
    on_disk, _ = read_stamped(path, project=lockfile.project)
    if on_disk.lineage != lockfile.lineage:
        raise LockfileError(
            f"{path}: changed on disk by another process (lineage {on_disk.lineage}, "
            f"expected {lockfile.lineage}); nothing was written; re-run to start from it"
        )
    if on_disk.serial != lockfile.serial:
        raise LockfileError(
            f"{path}: changed on disk by another process (serial {on_disk.serial}, "
            f"expected {lockfile.serial}); nothing was written; re-run to start from it"
        )


def write_checked(
    path: Path, lockfile: Lockfile, *, encoder: LockfileEncoder, expected: FileStamp | None
) -> tuple[Lockfile, FileStamp]:
    """Check the file on disk, then write ``lockfile`` with serial+1; return it and its stamp."""
    check_on_disk(path, lockfile, expected)
    written = lockfile.model_copy(
        update={"serial": lockfile.serial + 1, "lockfile_version": LOCKFILE_VERSION}
    )
    try:
        stamp = _atomic_write(path, encoder.encode(written).encode("utf-8"))
    except OSError as exc:
        raise LockfileWriteError(path, exc) from exc
    return written, stamp


class LockfileWriteError(LockfileError):
    """The disk refused a lockfile write (full, read-only, too large); the old file is intact.

    The message names the lockfile, never the temp file the write went through.
    """

    def __init__(
        self, path: Path, cause: OSError, summary: str = "", *, doing: str = "write the lockfile"
    ) -> None:
        self.path = path
        self.cause = cause
        self.summary = summary
        hints = {
            errno.ENOSPC: "free some disk space and run again",
            errno.EDQUOT: "free some disk space (disk quota) and run again",
            errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
            errno.EROFS: f"{path.parent} is on a read-only file system; use another --lockfile",
            errno.EACCES: f"make {path.parent} writable, or use another --lockfile",
            errno.EPERM: f"make {path.parent} writable, or use another --lockfile",
            errno.ENOTDIR: f"{path.parent} is not a folder; use another --lockfile",
            errno.EEXIST: f"{path.parent} is not a folder; use another --lockfile",
        }
        reason = cause.strerror or str(cause)
        hint = hints.get(cause.errno or 0, "check the disk and run again")
        message = f"cannot {doing} {path}: {reason}; {hint}"
        super().__init__(message + (f" ({summary})" if summary else ""))


def _temp_path(path: Path) -> Path:
    return path.with_name(path.name + TEMP_MARK + secrets.token_hex(6))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_bytes_atomic(path: Path, data: bytes) -> FileStamp:
    """Replace ``path`` by ``data`` atomically and durably, keeping ``PATH.backup``; return
    the new file's stamp (raises OSError, the old file intact)."""
    return _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes) -> FileStamp:
    """Replace ``path`` by ``data`` atomically and durably, keeping ``PATH.backup``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(path)
    # 0o666 minus the umask, as any new file; an existing file's mode is kept below.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            try:
                os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
            except FileNotFoundError:
                pass
            _write_all(fd, data)
            os.fsync(fd)
            stamp = _stamp(os.fstat(fd))  # rename keeps inode, size and mtime
        finally:
            os.close(fd)
        _keep_backup(path)
        os.replace(temp, path)
    except BaseException:
        _unlink_quietly(temp)
        raise
    fsync_dir(path.parent)
    return stamp


def _keep_backup(path: Path) -> None:
    """Make ``PATH.backup`` the current ``PATH`` (before it is replaced), atomically."""
    backup = backup_path(path)
    temp = _temp_path(backup)
    try:
        os.link(path, temp)  # same inode: free, and durable since PATH was fsynced
    except FileNotFoundError:
        return  # first write: nothing to keep
    except OSError:
        try:
            shutil.copyfile(path, temp)  # file systems without hard links
        except FileNotFoundError:
            return
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        os.replace(temp, backup)
    except BaseException:
        _unlink_quietly(temp)
        raise


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
