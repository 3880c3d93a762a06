"""kill -9 in the middle of lockfile writes never leaves a torn or unreadable lockfile."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.reliability import writer_zygote

from reconciler.state import backup_path, read_lockfile
from reconciler.state.history import history_path

REPO = Path(__file__).resolve().parents[1]

# A helper process that imports once, then forks a writer per round; the test kills each
# writer with SIGKILL at a random moment. Forking avoids paying interpreter start-up per kill.
ZYGOTE = writer_zygote()


def torn(folder: Path) -> bool:
    """Whether a killed write left its temp file in ``folder``."""
    return any(".tmp-" in p.name for p in folder.iterdir()) if folder.exists() else False


def test_kill_9_during_writes_never_corrupts_the_lockfile(tmp_path: Path) -> None:
    path = tmp_path / "state" / "reconciler.lock"
    rng = random.Random(1234)
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, str(path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert zygote.stdin is not None and zygote.stdout is not None

    def ask(command: str) -> str:
        assert zygote.stdin is not None and zygote.stdout is not None
        zygote.stdin.write(command + "\n")
        zygote.stdin.flush()
        return zygote.stdout.readline().strip()

    try:
        assert zygote.stdout.readline().strip() == "ready"
        last_serial = 0
        kills = 0
        # 20 kills at least, and on until the writers wrote 20 times and a kill fell inside a
        # write: on a loaded machine a writer may be killed before it ran at all
        while kills < 20 or (kills < 200 and (last_serial <= 20 or not torn(path.parent))):
            pid = int(ask("fork"))
            time.sleep(rng.uniform(0.0, 0.06))
            os.kill(pid, signal.SIGKILL)
            status = int(ask(f"reap {pid}"))
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"writer died on its own (status {status}); see stderr"
            )
            kills += 1
            if path.exists():
                lockfile = read_lockfile(path)  # raises LockfileError if torn
                assert lockfile.serial >= last_serial
                last_serial = lockfile.serial
            if backup_path(path).exists():
                # the backup is the previous version, or equal to the file when the kill fell
                # between keeping the backup and renaming the new version into place
                assert read_lockfile(backup_path(path)).serial in (last_serial - 1, last_serial)
        assert last_serial > 20, "the writers barely wrote; the test proves nothing"
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=10)
        zygote.stdout.close()
    leftovers = {p.name for p in path.parent.iterdir()} - {
        path.name,
        backup_path(path).name,
        history_path(path).name,  # the audit log, appended beside the lockfile
    }
    assert all(".tmp-" in name for name in leftovers), leftovers
    assert leftovers, "no kill landed in the middle of a write; the test proves nothing"
