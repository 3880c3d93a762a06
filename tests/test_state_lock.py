"""The apply lock: one apply per lockfile, a fast refusal naming the holder, takeovers."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.errors import LockfileError, LockHeld
from reconciler.state import ApplyLock, LockInfo, lock_path, read_lock, unlock

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lockfile(tmp_path: Path) -> Path:
    return tmp_path / "state" / "reconciler.lock"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def forge(lockfile: Path, **fields: object) -> LockInfo:
    """Write a lock file as another process would have left it."""
    now = iso(datetime.now(UTC))
    info = LockInfo.model_validate(
        {
            "id": "deadbeef",
            "pid": 999_999,
            "host": "elsewhere",
            "user": "mallory",
            "started_at": now,
            "heartbeat_at": now,
            "operation": "apply",
        }
        | fields
    )
    lock_path(lockfile).parent.mkdir(parents=True, exist_ok=True)
    lock_path(lockfile).write_text(info.model_dump_json())
    return info


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def run_python(code: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_lock_file_names_the_holder_and_goes_away_on_release(lockfile: Path) -> None:
    with ApplyLock(lockfile) as lock:
        assert lock.info is not None and lock.held
        assert lock.path == lockfile.with_name("reconciler.lock.lock")
        data = json.loads(lock.path.read_text())
        assert set(data) == {
            *("id", "holder", "pid", "host", "user", "started_at", "heartbeat_at", "operation")
        }
        assert data["pid"] == os.getpid() and data["host"] == socket.gethostname()
        assert data["holder"] == f"{data['user']}@{data['host']}:{data['pid']}"
        assert read_lock(lockfile) == lock.info
    assert not lock.path.exists() and read_lock(lockfile) is None
    assert not lock.held


def test_second_acquire_in_this_process_fails_at_once_naming_the_holder(lockfile: Path) -> None:
    with ApplyLock(lockfile) as first:
        info = first.info
        assert info is not None
        started = time.monotonic()
        with pytest.raises(LockHeld) as refused:
            ApplyLock(lockfile).acquire("state rm")
        assert time.monotonic() - started < 1.0
    message = str(refused.value)
    assert (
        f"is locked by apply {info.id} (pid {os.getpid()} on host {socket.gethostname()}" in message
    )
    assert f"run `reconciler unlock {info.id}` if it is stale" in message
    assert refused.value.holder["id"] == info.id
    assert refused.value.holder["pid"] == os.getpid()


def test_acquire_from_another_process_fails_within_a_second(lockfile: Path) -> None:
    with ApplyLock(lockfile) as held:
        info = held.info
        assert info is not None
        proc = run_python(
            f"""
            import time
            from reconciler.errors import LockHeld
            from reconciler.state import ApplyLock
            started = time.monotonic()
            try:
                ApplyLock({str(lockfile)!r}).acquire()
            except LockHeld as e:
                print(f"{{time.monotonic() - started:.3f}}")
                print(e)
            """
        )
        with proc:
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    elapsed, message = out.split("\n", 1)
    assert float(elapsed) < 1.0
    assert f"apply {info.id} (pid {os.getpid()}" in message


def test_acquire_while_another_process_holds_it_fails_within_a_second(lockfile: Path) -> None:
    proc = run_python(
        f"""
        import sys
        from reconciler.state import ApplyLock
        with ApplyLock({str(lockfile)!r}) as lock:
            print(lock.info.id, flush=True)
            sys.stdin.read()   # hold until the test closes stdin
        """
    )
    with proc:
        assert proc.stdout is not None and proc.stdin is not None
        holder_id = proc.stdout.readline().strip()
        assert holder_id, proc.stderr.read() if proc.stderr else ""
        started = time.monotonic()
        with pytest.raises(LockHeld, match=rf"apply {holder_id} \(pid {proc.pid} on host "):
            ApplyLock(lockfile).acquire()
        assert time.monotonic() - started < 1.0
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    # released on exit: free again
    with ApplyLock(lockfile):
        pass


def test_lock_of_a_dead_process_on_this_host_is_taken_over(
    lockfile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid = dead_pid()
    forge(lockfile, id="0ldl0ck0", pid=pid, host=socket.gethostname())
    with caplog.at_level(logging.WARNING, logger="reconciler.state"), ApplyLock(lockfile) as lock:
        assert lock.info is not None and lock.info.id != "0ldl0ck0"
        assert read_lock(lockfile) == lock.info
    warnings = [r for r in caplog.records if r.name == "reconciler.state"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert f"took over stale lock apply 0ldl0ck0 (pid {pid}" in warnings[0].getMessage()
    assert f"process {pid} is gone" in warnings[0].getMessage()


def test_fresh_lock_of_another_host_is_respected(lockfile: Path) -> None:
    forge(lockfile, host="ci-runner-7")
    with pytest.raises(LockHeld, match=r"pid 999999 on host ci-runner-7, user mallory"):
        ApplyLock(lockfile).acquire()


def test_lock_with_a_stale_heartbeat_is_taken_over(
    lockfile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    an_hour_ago = iso(datetime.now(UTC) - timedelta(hours=1))
    forge(lockfile, host="ci-runner-7", started_at=an_hour_ago, heartbeat_at=an_hour_ago)
    with caplog.at_level(logging.WARNING, logger="reconciler.state"), ApplyLock(lockfile):
        pass
    assert "no heartbeat for 3600s" in caplog.text


def test_stale_heartbeat_wins_even_if_the_pid_looks_alive(lockfile: Path) -> None:
    # pid reuse: our own pid is alive, but the heartbeat says the holder is long gone
    old = iso(datetime.now(UTC) - timedelta(minutes=5))
    forge(lockfile, pid=os.getpid(), host=socket.gethostname(), heartbeat_at=old)
    with ApplyLock(lockfile, stale_after=60):
        pass


def test_unreadable_lock_is_respected_while_young_and_taken_over_when_old(lockfile: Path) -> None:
    path = lock_path(lockfile)
    path.parent.mkdir(parents=True)
    path.write_text("{half a lock")
    with pytest.raises(LockHeld, match="is unreadable"):
        ApplyLock(lockfile).acquire()
    os.utime(path, (time.time() - 120, time.time() - 120))
    with ApplyLock(lockfile, stale_after=30) as lock:
        assert read_lock(lockfile) == lock.info


def test_heartbeat_refreshes_the_lock(lockfile: Path) -> None:
    with ApplyLock(lockfile, stale_after=5, heartbeat_interval=0.05) as lock:
        assert lock.info is not None
        first = lock.info.heartbeat_at
        deadline = time.monotonic() + 5
        while (current := read_lock(lockfile)) is not None and current.heartbeat_at == first:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)
        assert current is not None and current.id == lock.info.id


def test_unlock_by_id(lockfile: Path) -> None:
    info = forge(lockfile, id="cafe0001")
    with pytest.raises(
        LockfileError, match="no lock with id nope; the current lock is apply cafe0001"
    ):
        unlock(lockfile, "nope")
    with pytest.raises(LockfileError, match="may still be running .* pass --force"):
        unlock(lockfile, "cafe0001")  # a fresh heartbeat from elsewhere: maybe alive
    assert read_lock(lockfile) == info
    assert unlock(lockfile, "cafe0001", force=True) == info
    assert read_lock(lockfile) is None
    with pytest.raises(LockfileError, match="no lock is held"):
        unlock(lockfile, "cafe0001")


def test_holder_notices_a_manual_unlock_and_release_leaves_the_new_lock_alone(
    lockfile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = ApplyLock(lockfile, stale_after=5, heartbeat_interval=0.02)
    info = lock.acquire()
    unlock(lockfile, info.id, force=True)
    other = ApplyLock(lockfile)
    other_info = other.acquire()
    try:
        deadline = time.monotonic() + 5
        while lock.held:
            assert time.monotonic() < deadline, "the heartbeat never noticed"
            time.sleep(0.01)
        assert lock.lost
        with caplog.at_level(logging.WARNING, logger="reconciler.state"):
            lock.release()
        assert read_lock(lockfile) == other_info
        assert "taken over or cleared while held" in caplog.text
    finally:
        other.release()


def test_racing_takers_of_a_stale_lock_produce_exactly_one_winner(lockfile: Path) -> None:
    forge(lockfile, pid=dead_pid(), host=socket.gethostname())
    locks = [ApplyLock(lockfile) for _ in range(8)]
    barrier = threading.Barrier(len(locks))
    outcomes: list[str] = []

    def take(lock: ApplyLock) -> None:
        barrier.wait()
        try:
            lock.acquire()
            outcomes.append("won")
        except LockHeld:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [lock for lock in locks if lock.held]
    try:
        assert sorted(outcomes) == ["refused"] * 7 + ["won"]
        assert len(winners) == 1 and winners[0].info is not None
        assert read_lock(lockfile) == winners[0].info
    finally:
        for lock in winners:
            lock.release()


def test_bad_intervals_are_refused(lockfile: Path) -> None:
    with pytest.raises(ValueError):
        ApplyLock(lockfile, stale_after=5, heartbeat_interval=5)


def test_a_guard_deleted_while_another_process_waited_on_it_is_not_taken_for_held(
    tmp_path: Path,
) -> None:
    # a release that leaves no lockfile deletes the guard under its flock; whoever waited on
    # that file must take the new one, or two processes would each hold "the" guard
    from reconciler.state.lock import _guard

    lockfile = tmp_path / "state" / "reconciler.lock"
    guard = lockfile.with_name(lockfile.name + ".guard")
    inside = threading.Event()
    waited: list[bool] = []

    def waiter() -> None:
        inside.wait()
        with _guard(lockfile, 5.0):
            waited.append(guard.exists())  # the file it holds is the one named

    thread = threading.Thread(target=waiter)
    thread.start()
    with _guard(lockfile, 5.0):
        inside.set()
        time.sleep(0.05)  # the waiter has opened the file and waits on its flock
        guard.unlink()
    thread.join(5)
    assert waited == [True]
    assert guard.exists()  # the waiter made a new one, and held it
