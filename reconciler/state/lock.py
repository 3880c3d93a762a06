"""The apply lock: at most one apply (or state edit) per lockfile at a time.

One job: make sure two processes never write the same lockfile at once, and say who holds it
when they try. It does not read or write the lockfile itself.

Files next to the lockfile ``PATH`` (git-ignore them with ``PATH.*``):

    PATH.lock     the lock: JSON {id, holder, pid, host, user, started_at, heartbeat_at, operation};
                  it exists exactly while someone holds the lock
    PATH.guard    an empty file, ``flock``-ed for the few microseconds it takes to create,
                  check, take over, refresh or remove ``PATH.lock``. The kernel drops the
                  flock when its process dies, so a crash never leaves it held. It is deleted
                  (under its flock) only by a release that leaves no lockfile: a command that
                  failed where nothing was ever applied leaves no state folder behind; a
                  process that waited on the deleted file sees so and takes the new one.

Every change to ``PATH.lock`` happens under the guard, so two processes that both find a
stale lock cannot both take it over, and a release never deletes a lock someone else just
took. The holder rewrites ``heartbeat_at`` every ``heartbeat_interval`` seconds from a daemon
thread. A lock is stale, and is taken over with a warning on the ``reconciler.state`` logger,
when its process is gone (same host, ``os.kill(pid, 0)`` fails) or its heartbeat is older
than ``stale_after`` seconds (any host). Otherwise ``acquire`` fails at once with ``LockHeld``.
POSIX only (``fcntl.flock``).

A holder that was frozen (SIGSTOP, a suspended VM) past ``stale_after`` may have been taken
over meanwhile. ``ensure_held`` is what it calls before each write: it raises ``LockLost``
naming the new holder instead of letting the write go ahead (see its docstring for the cost).
"""

from __future__ import annotations

import fcntl
import getpass
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from reconciler.errors import LockfileError, LockHeld, LockLost
from reconciler.state.history import ci_run
from reconciler.state.lockfile import LockfileWriteError

logger = logging.getLogger("reconciler.state")

LOCK_SUFFIX = ".lock"
GUARD_SUFFIX = ".guard"

#: Most seconds between two reads of the lock file by ``ApplyLock.ensure_held``.
VERIFY_EVERY = 0.5

#: How long to wait for the guard: it is held for microseconds, so this only trips when the
#: folder is unusable or a process is frozen (SIGSTOP) in the middle of a lock change.
_GUARD_TIMEOUT = 0.5


class LockInfo(BaseModel):
    """Who holds the apply lock: the content of ``PATH.lock``.

    Unknown keys are ignored (not forbidden) so that a lock written by a newer reconciler
    still names its holder instead of looking unreadable.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    pid: int
    host: str
    user: str
    started_at: str
    heartbeat_at: str
    operation: str = "apply"
    #: the CI run of the holder (``history.ci_run``), when one was recognised
    ci_run: str | None = None
    #: when the holder's lease runs out unless it heartbeats (PostgreSQL leases)
    expires_at: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def holder(self) -> str:
        """Who holds it, in one word for people and scripts: ``user@host:pid``. Written to the
        lock file beside the fields it is made of; read back from them, never trusted."""
        return f"{self.user}@{self.host}:{self.pid}"

    def describe(self) -> str:
        """E.g. ``apply 3f2a9c1e (pid 4242 on host ci-7, user alice, since 2026-05-01T12:00:01.000Z)``."""
        ci = f", CI run {self.ci_run}" if self.ci_run else ""
        return (
            f"{self.operation} {self.id} (pid {self.pid} on host {self.host}, "
            f"user {self.user}{ci}, since {self.started_at})"
        )


def lock_path(lockfile_path: str | os.PathLike[str]) -> Path:
    """Where the apply lock of the lockfile at ``lockfile_path`` lives: ``PATH.lock``."""
    path = Path(lockfile_path)
    return path.with_name(path.name + LOCK_SUFFIX)


def read_lock(lockfile_path: str | os.PathLike[str]) -> LockInfo | None:
    """The current holder of the apply lock, or None when it is free or unreadable."""
    return _observe(lock_path(lockfile_path)).info


def running_lock(lockfile_path: str | os.PathLike[str]) -> LockInfo | None:
    """The holder of the apply lock while it may be alive (its heartbeat fresh and, on this
    host, its process there); None when the lock is free, unreadable or stale."""
    lock = ApplyLock(lockfile_path)
    seen = _observe(lock.path)
    if seen.info is None or lock._stale_reason(seen) is not None:
        return None
    return seen.info


class HeartbeatLock(ABC):
    """What the lock file and the PostgreSQL lease share: a lock held while a heartbeat
    thread keeps it fresh, used as a context manager (acquire on enter, release on exit)."""

    def __init__(self) -> None:
        #: True once the heartbeat found the lock taken over or cleared while held.
        self.lost = False
        self._info: LockInfo | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._verify_mutex = threading.Lock()
        self._reported = False  # a LockLost was raised: the logs need not say it again

    @property
    def info(self) -> LockInfo | None:
        """This process's lock while held, else None."""
        return self._info

    @property
    def held(self) -> bool:
        """True while acquired and not lost to a takeover or ``unlock``."""
        return self._info is not None and not self.lost

    @abstractmethod
    def acquire(self, operation: str = "apply") -> LockInfo:
        """Take the lock, or fail at once naming the holder."""

    def release(self) -> None:
        """Stop the heartbeat and give the lock up if it is still ours (no-op if not held)."""
        info = self._info
        if info is None:
            return
        self._stop_heartbeat()
        try:
            self._give_up(info)
        finally:
            self._info = None

    @abstractmethod
    def _give_up(self, info: LockInfo) -> None:
        """Remove the lock ``info`` if it is still ours (its heartbeat has stopped)."""

    @abstractmethod
    def _beat(self, info: LockInfo, stop: threading.Event) -> None:
        """The heartbeat thread: keep ``info`` fresh until ``stop`` is set or it is lost."""

    def _hold(self, info: LockInfo, thread_name: str) -> None:
        """Mark ``info`` as held and start its heartbeat thread."""
        self._info, self.lost, self._reported = info, False, False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(info, self._stop), name=thread_name, daemon=True
        )
        self._thread.start()

    def _stop_heartbeat(self) -> None:
        """Stop the heartbeat thread and wait for it (unless this is that thread)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class ApplyLock(HeartbeatLock):
    """The apply lock of one lockfile, held by this process.

    Example::

        with ApplyLock("state/reconciler.lock") as lock:   # raises LockHeld if taken
            ...                                             # lock.info.id names it

    Args:
        lockfile_path: the lockfile (the lock is ``PATH.lock`` beside it).
        stale_after: seconds without a heartbeat after which any host may take the lock over.
        heartbeat_interval: seconds between heartbeats; must be below ``stale_after``.
    """

    def __init__(
        self,
        lockfile_path: str | os.PathLike[str],
        *,
        stale_after: float = 30.0,
        heartbeat_interval: float = 5.0,
    ) -> None:
        if not 0 < heartbeat_interval < stale_after:
            raise ValueError("need 0 < heartbeat_interval < stale_after")
        super().__init__()
        self.lockfile_path = Path(lockfile_path)
        self.path = lock_path(self.lockfile_path)
        #: the lockfile's folder did not exist before this lock made it (``_discard_guard``)
        self._made_folder = False
        self.stale_after = stale_after
        self.heartbeat_interval = heartbeat_interval
        #: monotonic time of the last successful ``ensure_held`` read of the lock file
        self._verified_at = 0.0

    def acquire(self, operation: str = "apply") -> LockInfo:
        """Take the lock, or fail at once naming the holder.

        Args:
            operation: what the holder does, shown to whoever is refused (``apply``,
                ``state rm``, ...).

        Returns:
            The lock now held (its ``id`` is what ``reconciler unlock`` takes).

        Raises:
            LockHeld: a live process holds the lock; ``.holder`` is its ``LockInfo`` as a dict.
            RuntimeError: this object already holds the lock.
        """
        if self._info is not None:
            raise RuntimeError(f"{self.lockfile_path}: this ApplyLock is already held")
        if self.lockfile_path.exists() and not self.lockfile_path.is_file():
            # a device or a FIFO (--lockfile /dev/null): refused before a guard is made beside it
            raise LockfileError(
                f"{self.lockfile_path}: not a regular file, so not a lockfile; move it away or "
                "pass another --lockfile"
            )
        now = _now()
        info = LockInfo(
            id=uuid.uuid4().hex[:8],
            pid=os.getpid(),
            host=socket.gethostname(),
            user=_user(),
            started_at=now,
            heartbeat_at=now,
            operation=operation,
            ci_run=ci_run(),
        )
        self._made_folder = not self.lockfile_path.parent.exists()
        try:
            _refuse_a_lockfile_as_lock(self.lockfile_path, self.path, _observe(self.path))
            with _guard(self.lockfile_path, _GUARD_TIMEOUT):
                seen = _observe(self.path)
                _refuse_a_lockfile_as_lock(self.lockfile_path, self.path, seen)
                if seen.exists:
                    reason = self._stale_reason(seen)
                    if reason is None:
                        raise LockHeld(self._held_message(seen), holder=_holder(seen))
                    what = seen.info.describe() if seen.info else f"lock file {self.path}"
                    logger.warning(
                        "%s: took over stale lock %s: %s", self.lockfile_path, what, reason
                    )
                _write_lock(self.path, info)
        except OSError as exc:  # a read-only or full folder: name it, not a temp file
            raise LockfileWriteError(
                self.lockfile_path, exc, doing="take the apply lock of the lockfile"
            ) from None
        self._verified_at = time.monotonic()
        self._hold(info, f"apply-lock-{info.id}")
        return info

    def ensure_held(self) -> None:
        """Raise ``LockLost`` unless this process still holds the lock. Call before each write.

        Cheap enough to call before every request: the lock file is read at most every
        ``VERIFY_EVERY`` seconds (a read is tens of microseconds). A longer gap since the last
        read (the process was paused: SIGSTOP, a suspended VM; CLOCK_MONOTONIC counts the
        pause) always reads it. After a gap longer than ``heartbeat_interval`` the check also
        renews the heartbeat under the guard, so nobody can find the lock stale between this
        check and the write that follows it.

        Raises:
            LockLost: the lock was taken over or removed (``.holder`` names who has it now).
            RuntimeError: the lock was never acquired or was released.
        """
        info = self._info
        if info is None:
            raise RuntimeError(f"{self.lockfile_path}: the apply lock is not held")
        with self._verify_mutex:
            now = time.monotonic()
            gap = now - self._verified_at
            if not self.lost and gap < VERIFY_EVERY:
                return
            seen = _observe(self.path)
            if not self.lost and seen.info is not None and seen.info.id == info.id:
                if gap > self.heartbeat_interval:
                    seen = self._renew(info)
                if seen.info is not None and seen.info.id == info.id:
                    self._verified_at = now
                    return
            self.lost = self._reported = True
            raise LockLost(self._lost_message(info, seen, gap), holder=_holder(seen))

    def _renew(self, info: LockInfo) -> _Seen:
        """Refresh the heartbeat if the lock is still ours; what the lock file holds now."""
        try:
            with _guard(self.lockfile_path, 1.0):
                seen = _observe(self.path)
                if seen.info is not None and seen.info.id == info.id:
                    _write_lock(self.path, seen.info.model_copy(update={"heartbeat_at": _now()}))
                return seen
        except (OSError, LockHeld):  # the guard is busy: what the file says is the answer
            return _observe(self.path)

    def _lost_message(self, info: LockInfo, seen: _Seen, gap: float) -> str:
        paused = f" (it was not checked for {gap:.0f}s: paused?)" if gap > self.stale_after else ""
        if seen.info is not None:
            whom = seen.info.describe()
            how = "another process took it over"
        else:
            whom = "nobody"
            how = "it was removed (`reconciler unlock`, or taken over and released since)"
        return (
            f"lock lost to {whom}: the apply lock {info.id} of {self.lockfile_path} was held by "
            f"this apply, and {how}{paused}. This apply stopped before its next write; what it "
            "finished is in the lockfile or is found again by its ownership tags. Run "
            "`reconciler plan` once the other apply is done"
        )

    def _give_up(self, info: LockInfo) -> None:
        with _guard(self.lockfile_path, 5.0):
            seen = _observe(self.path)
            if seen.info is not None and seen.info.id == info.id:
                os.unlink(self.path)
                self._discard_guard()
            else:
                now_held = seen.info.describe() if seen.info else "nobody"
                # once LockLost told the user, this would only say it again
                log = logger.debug if self._reported else logger.warning
                log(
                    "%s: lock %s was taken over or cleared while held (now: %s); left it alone",
                    self.lockfile_path,
                    info.id,
                    now_held,
                )

    def _discard_guard(self) -> None:
        """Delete the guard (held by the caller) and the folder this lock made, when nothing
        else of the lockfile is there: a command that failed before its first write, where
        nothing was ever applied, leaves no ``state/`` behind."""
        folder, name = self.lockfile_path.parent, self.lockfile_path.name
        guard = folder / (name + GUARD_SUFFIX)
        try:
            if any(
                p.name != guard.name and (p.name == name or p.name.startswith(name + "."))
                for p in folder.iterdir()
            ):
                return
            os.unlink(guard)
            if self._made_folder:
                os.rmdir(folder)  # only when empty
        except OSError:
            pass  # left as it is: a guard file is harmless

    def _stale_reason(self, seen: _Seen) -> str | None:
        """Why the lock ``seen`` may be taken over, or None if its holder may be alive."""
        now = time.time()
        if seen.info is None:
            age = now - (seen.mtime or now)
            return f"unreadable and {age:.0f}s old" if age > self.stale_after else None
        info = seen.info
        if info.host == socket.gethostname() and not _pid_alive(info.pid):
            return f"process {info.pid} is gone"
        beat = _parse_time(info.heartbeat_at)
        if beat is None:
            beat = seen.mtime or now
        if now - beat > self.stale_after:
            return f"no heartbeat for {now - beat:.0f}s (stale after {self.stale_after:g}s)"
        return None

    def _held_message(self, seen: _Seen) -> str:
        if seen.info is None:
            return (
                f"{self.lockfile_path} is locked, but the lock file {self.path} is unreadable "
                f"(it counts as stale after {self.stale_after:g}s); wait, or delete it if no "
                "apply is running"
            )
        return (
            f"{self.lockfile_path} is locked by {seen.info.describe()}; wait for it or run "
            f"`reconciler unlock {seen.info.id}` if it is stale"
        )

    def _beat(self, info: LockInfo, stop: threading.Event) -> None:
        """Heartbeat thread: refresh ``heartbeat_at`` until stopped or the lock is lost."""
        while not stop.wait(self.heartbeat_interval):
            try:
                with _guard(self.lockfile_path, 1.0):
                    seen = _observe(self.path)
                    if seen.info is None or seen.info.id != info.id:
                        now_held = seen.info.describe() if seen.info else "nobody"
                        log = logger.debug if self._reported else logger.error
                        self.lost = True
                        log(
                            "%s: lost the apply lock %s (now held by %s)",
                            self.lockfile_path,
                            info.id,
                            now_held,
                        )
                        return
                    _write_lock(self.path, seen.info.model_copy(update={"heartbeat_at": _now()}))
            except (OSError, LockHeld) as e:  # a passing I/O error must not end the heartbeat
                logger.warning(
                    "%s: heartbeat of lock %s failed: %s", self.lockfile_path, info.id, e
                )


def unlock(lockfile_path: str | os.PathLike[str], lock_id: str, *, force: bool = False) -> LockInfo:
    """Remove the apply lock by hand (``reconciler unlock LOCK_ID``), if ``lock_id`` is it.

    A lock whose holder may be alive (its process on this host, or a fresh heartbeat) is
    removed only with ``force``: the apply holding it stops at its next write.

    Returns:
        The lock that was removed.

    Raises:
        LockfileError: no lock is held, it is unreadable, its id is not ``lock_id``, or its
            holder may be alive and ``force`` is not given.
    """
    path = lock_path(lockfile_path)
    _refuse_a_lockfile_as_lock(Path(lockfile_path), path, _observe(path))
    with _guard(Path(lockfile_path), 5.0):
        seen = _observe(path)
        if not seen.exists:
            raise LockfileError(f"{lockfile_path} is not locked: no lock is held")
        if seen.info is None:
            raise LockfileError(
                f"{lockfile_path}: the lock file {path} is unreadable; delete it by hand if no "
                "apply is running"
            )
        if seen.info.id != lock_id:
            raise LockfileError(
                f"{lockfile_path}: no lock with id {lock_id}; the current lock is "
                f"{seen.info.describe()}"
            )
        alive = None if force else _alive_reason(seen.info, ApplyLock(lockfile_path), seen)
        if alive is not None:
            raise LockfileError(live_lock_refusal(str(lockfile_path), seen.info, alive))
        os.unlink(path)
        return seen.info


def gone_from_this_host(info: LockInfo) -> bool:
    """Whether the holder ``info`` ran on this host and its process is gone (surely dead)."""
    return info.host == socket.gethostname() and not _pid_alive(info.pid)


def _alive_reason(info: LockInfo, lock: ApplyLock, seen: _Seen) -> str | None:
    """Why the holder of ``info`` may still be running, or None when it is surely gone."""
    if info.host == socket.gethostname():
        return f"its process {info.pid} runs on this host" if _pid_alive(info.pid) else None
    if lock._stale_reason(seen) is None:
        return f"its last heartbeat, at {info.heartbeat_at}, is fresh"
    return None


def live_lock_refusal(where: str, info: LockInfo, alive: str) -> str:
    """Why ``reconciler unlock`` leaves the lock of a holder that may be alive (no --force)."""
    return (
        f"{where} is locked by {info.describe()}, which may still be running ({alive}): "
        f"removing its lock makes that {info.operation} stop at its next write. Wait for it "
        "to finish, or pass --force to remove the lock anyway"
    )


# -- internals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """What ``PATH.lock`` looked like: absent, a parsed lock, or unreadable (info None)."""

    exists: bool
    info: LockInfo | None = None
    mtime: float | None = None
    #: it is a lockfile, not a lock (``--lockfile state/reconciler``: its lock's path is
    #: the real ``state/reconciler.lock``)
    lockfile: bool = False


def _observe(path: Path) -> _Seen:
    try:
        with open(path, "rb") as f:
            mtime = os.fstat(f.fileno()).st_mtime
            raw = f.read()
    except FileNotFoundError:
        return _Seen(exists=False)
    try:
        return _Seen(exists=True, info=LockInfo.model_validate_json(raw), mtime=mtime)
    except ValidationError:
        return _Seen(exists=True, info=None, mtime=mtime, lockfile=_is_lockfile(raw))


def _is_lockfile(raw: bytes) -> bool:
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and "lockfile_version" in data


def _refuse_a_lockfile_as_lock(lockfile_path: Path, path: Path, seen: _Seen) -> None:
    """Never take over, delete or advise deleting a lockfile found where a lock should be."""
    if seen.lockfile:
        raise LockfileError(
            f"{path} is a lockfile, not the apply lock of {lockfile_path} (a lockfile's lock "
            f"is its path plus {LOCK_SUFFIX!r}); did you mean --lockfile {path}? Nothing was "
            "changed"
        )


def _holder(seen: _Seen) -> dict[str, object]:
    return seen.info.model_dump() if seen.info is not None else {}


def _write_lock(path: Path, info: LockInfo) -> None:
    """Replace ``path`` by ``info`` (temp + rename; no fsync: a lock does not outlive a boot)."""
    temp = path.with_name(path.name + ".tmp-" + secrets.token_hex(6))
    try:
        temp.write_text(info.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


@contextmanager
def _guard(lockfile_path: Path, timeout: float) -> Iterator[None]:
    """Hold the ``PATH.guard`` flock, or raise LockHeld after ``timeout`` seconds."""
    guard = lockfile_path.with_name(lockfile_path.name + GUARD_SUFFIX)
    deadline = time.monotonic() + timeout
    while True:
        guard.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(guard, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockHeld(
                            f"{lockfile_path}: another process is changing the apply lock "
                            f"right now ({guard} stays busy); try again"
                        ) from None
                    time.sleep(0.002)
            if _same_file(fd, guard):
                yield
                return
            # deleted by its holder meanwhile (``_discard_guard``): this flock guards nothing
        finally:
            os.close(fd)  # closing drops the flock


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> float | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: alive, owned by someone else; anything else: assume alive
    return True


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): fall back to the uid
        return str(os.getuid())
