"""Interruptions the crash matrix does not make: a full disk, SIGTERM and Ctrl-C at exact
points, replaces, gated pin moves, and a lockfile deleted after a crash (session 9's QA).

Each case runs ``reconciler apply --auto-approve`` as its own process (forked from the
shared ``Zygote``) against the local provider served over loopback TCP with some latency,
and interrupts it at one point:

* the disk fills up from the k-th lockfile write on (``enospc``: every later write to the
  lockfile's temp file or journal fails with ENOSPC), with the lockfile rewritten at every
  write and journaled (``RECONCILER_JOURNAL_ABOVE=0``): exit 1, one clear error and no
  traceback, what was recorded said, and the next apply (disk freed) converges;
* SIGTERM (``docker stop``) and SIGINT (Ctrl-C) delivered inside a lockfile write (the
  first one, which holds the intents, a middle one, the last one) and at the provider while
  a replace, a credential's replace or a gated pin move is in flight: exit 143 / 130, the
  lock released, the lockfile whole;
* SIGKILL during a gated pin move whose answer is lost (the pin moved, the lockfile did
  not say so): the next apply records the move as found, not as its own;
* SIGKILL at a random moment, then the lockfile (backup, journal and history too) deleted:
  the next apply heals from the ownership tags (skills by slug) with no twin.

After each: the next apply exits 0 and converges (every address live once, never created
twice, recorded with its live id, nothing pending), then ``plan --detailed-exitcode`` and
``drift`` exit 0. One case of each family runs by default; the rest is ``slow``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from support.reliability import (
    CREATE_PATH,
    Fleet,
    Run,
    Zygote,
    assert_converged,
    clean_env,
    owned_objects,
    provider,
    shared_zygote,
    write_fleet,
)

PROJECT = "qa-crash"
SIZE = {
    "agents": 12,
    "environments": 4,
    "credentials": 3,
    "deployments": 4,
    "memory_stores": 2,
    "skills": 2,
}


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


class Workspace:
    """Manifests, the lockfile and the provider database in one temp folder."""

    def __init__(self, root: Path, *, journal: bool = False, **size: int) -> None:
        self.root = root
        self.size = size or SIZE
        self.fleet: Fleet = write_fleet(root / "manifests", **self.size)
        self.env = clean_env(**self.fleet.env)
        if journal:  # every write after the first appends to the journal
            self.env["RECONCILER_JOURNAL_ABOVE"] = "0"
        self.db = root / ".reconciler" / "provider.db"
        self.lockfile = root / "state" / "reconciler.lock"

    def args(self, url: str, command: str, *extra: str) -> list[str]:
        auto = ["--auto-approve"] if command == "apply" else []
        # each provider() serves the same database on a new port: another origin, on purpose
        return ["--project", PROJECT, "--provider-url", url, command, *auto,
                "--allow-origin-change", *extra]  # fmt: skip

    def run(self, zygote: Zygote, url: str, command: str, *extra: str, **kw: object) -> Run:
        return zygote.run(self.args(url, command, *extra), cwd=self.root, env=self.env, **kw)  # type: ignore[arg-type]

    def start(self, zygote: Zygote, url: str, *extra: str) -> Run:
        return zygote.start(self.args(url, "apply", *extra), cwd=self.root, env=self.env)


def heals(zygote: Zygote, ws: Workspace, url: str, *, ever_once: bool = True) -> Run:
    """The next apply exits 0 and converges; then plan and drift say nothing is left."""
    from reconciler.state import read_lock

    run = ws.run(zygote, url, "apply")
    assert run.code == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert "Traceback" not in run.stdout + run.stderr
    assert read_lock(ws.lockfile) is None, "the lock is released at the end"
    assert_converged(
        ws.lockfile,
        ws.db,
        PROJECT,
        ws.fleet.addresses,
        ever_once=ever_once,
        seeds=ws.fleet.seeds,
        skills=ws.fleet.skills,
    )
    plan = ws.run(zygote, url, "plan", "--detailed-exitcode")
    assert plan.code == 0, (plan.stdout[-3000:], plan.stderr[-2000:])
    drift = ws.run(zygote, url, "drift")
    assert drift.code == 0, ("a healed state shows no drift", drift.stdout[-3000:])
    return run


def interrupted_cleanly(ws: Workspace, run: Run, code: int) -> None:
    """A handled interruption: its exit code, no traceback, the lock released, the
    lockfile (and its journal) readable."""
    from reconciler.state import read_lock, read_lockfile

    assert run.code == code, (run.code, run.stdout[-2000:], run.stderr[-3000:])
    assert "Traceback" not in run.stdout + run.stderr, run.stderr[-5000:]
    assert read_lock(ws.lockfile) is None, "the apply lock was left behind"
    if ws.lockfile.exists():
        read_lockfile(ws.lockfile, project=PROJECT)


# --- a full disk ------------------------------------------------------------------------------


def full_disk(zygote: Zygote, tmp_path: Path, *, journal: bool, nth: int, parallelism: int) -> None:
    from reconciler.provider.local import FaultConfig

    ws = Workspace(tmp_path, journal=journal)
    with provider(ws.db, FaultConfig(latency_ms=10)) as (url, _tap):
        run = ws.run(
            zygote, url, "apply", "--parallelism", str(parallelism),
            crash={"point": "enospc", "nth": nth},
        )  # fmt: skip
        interrupted_cleanly(ws, run, 1)
        errors = [line for line in run.stderr.splitlines() if line.strip()]
        assert errors[-1].startswith(
            "Error: cannot write the lockfile state/reconciler.lock: No space left on device; "
            "free some disk space and run again ("
        ), run.stderr
        if nth > 1:
            assert "the apply stopped after" in errors[-1], errors[-1]
        heals(zygote, ws, url)


def test_a_full_disk_while_the_journal_is_appended_is_one_error_not_a_traceback(
    zygote: Zygote, tmp_path: Path
) -> None:
    """The journal's append failed, then folding the journal in at the end failed too (the
    disk still full): that second failure printed three chained tracebacks on stderr."""
    full_disk(zygote, tmp_path, journal=True, nth=3, parallelism=4)


@pytest.mark.slow
@pytest.mark.parametrize("journal", [False, True])
@pytest.mark.parametrize(("nth", "parallelism"), [(1, 4), (2, 1), (2, 10), (3, 10), (5, 1)])
def test_a_full_disk_at_each_write(
    zygote: Zygote, tmp_path: Path, journal: bool, nth: int, parallelism: int
) -> None:
    full_disk(zygote, tmp_path, journal=journal, nth=nth, parallelism=parallelism)
