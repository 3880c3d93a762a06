"""An apply that must stop: SIGTERM, a lost lock, a dead provider; and intents left behind.

Real ``reconciler`` processes (forked by the shared zygote of ``support.reliability``)
against the local provider over loopback TCP:

- SIGTERM (``docker stop``, CI cancellation) is handled as Ctrl-C: staged outcomes flushed,
  intents of unsent creates dropped, the lock released, a message, exit 143;
- an apply frozen (SIGSTOP) while another takes its lock over stops before its next write
  when it wakes, saying "lock lost to ...", instead of making a twin per slot;
- a provider killed in the middle of an apply: the apply stops sending once connections are
  refused on several actions in a row, says the provider at URL is unreachable, what was done,
  and exits 1 (it used to try every remaining action 5 x 5 times);
- intents of creates whose documents were removed since are dropped by the next apply, which
  says so (they used to pile up for ever).

The ``slow`` tests repeat the freeze (with the lock's real 30 s expiry) and the provider's
death at other moments and parallelisms.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support.reliability import (
    CREATE_PATH,
    Fleet,
    Run,
    Zygote,
    assert_converged,
    clean_env,
    kill_hook,
    owned_objects,
    provider,
    shared_zygote,
    write_fleet,
)

from reconciler.provider.local import FaultConfig
from reconciler.state.lock import lock_path

pytestmark = pytest.mark.tcp

PROJECT = "p"


@pytest.fixture
def zygote() -> Zygote:
    return shared_zygote()


def _lockfile_data(lockfile: Path) -> dict[str, Any]:
    for _ in range(50):  # replaced atomically; a read can only race a missing file
        try:
            data: dict[str, Any] = json.loads(lockfile.read_text())
            return data
        except FileNotFoundError:
            time.sleep(0.01)
    raise AssertionError(f"{lockfile} never appeared")


def _wait_until(what: str, ready: Callable[[], bool], run: Run, timeout: float = 60) -> None:
    """Poll ``ready`` until it holds; fail at once if ``run`` ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if run.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {run.stdout}\n{run.stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"never {what}: {run.stderr}")
        time.sleep(0.02)


def _recorded(lockfile: Path) -> int:
    return len(_lockfile_data(lockfile)["resources"]) if lockfile.exists() else 0


def _fleet(tmp_path: Path, agents: int, **kw: int) -> tuple[Fleet, dict[str, str], Path, Path]:
    fleet = write_fleet(tmp_path / "manifests", agents=agents, **kw)
    return fleet, clean_env(**fleet.env), tmp_path / "state" / "reconciler.lock", tmp_path / "p.db"


def _apply_args(url: str, parallelism: int = 4) -> list[str]:
    return [
        "--project",
        PROJECT,
        "--provider-url",
        url,
        "apply",
        "--auto-approve",
        "--parallelism",
        str(parallelism),
        # the same database is served again on a new port after a kill: another origin
        "--allow-origin-change",
    ]


# --- SIGTERM ----------------------------------------------------------------------------------


def test_sigterm_in_the_middle_of_an_apply_is_handled_as_ctrl_c(
    tmp_path: Path, zygote: Zygote
) -> None:
    fleet, env, lockfile, db = _fleet(
        tmp_path, agents=30, environments=2, credentials=1, deployments=2
    )
    with provider(db, FaultConfig(latency_ms=200)) as (url, _tap):
        run = zygote.start(_apply_args(url), cwd=tmp_path, env=env)
        _wait_until("4 resources were recorded", lambda: _recorded(lockfile) >= 4, run)
        os.kill(run.pid, signal.SIGTERM)
        assert run.wait(60) == 143, (run.stdout, run.stderr)
        assert "Terminated (SIGTERM). The " in run.stderr  # drained, as a first Ctrl-C
        assert "Traceback" not in run.stderr
        assert not lock_path(lockfile).exists(), "the apply lock was left behind"
        data = _lockfile_data(lockfile)
        done, pending = set(data["resources"]), set(data["pending"])
        live = owned_objects(db, PROJECT)
        assert 4 <= len(done) < len(fleet.addresses)
        assert done <= set(live)
        # staged outcomes were flushed and the intents of creates never sent were dropped:
        # only the (at most 4) creates in flight keep one
        assert len(pending) <= 4 and not pending & done, pending
        assert set(live) <= done | pending
        again = zygote.run(_apply_args(url), cwd=tmp_path, env=env)
        assert again.code == 0, again.stderr
    assert_converged(lockfile, db, PROJECT, fleet.addresses)


def test_a_first_sigterm_lets_the_actions_in_flight_finish_as_a_first_ctrl_c_does(
    tmp_path: Path, zygote: Zygote
) -> None:
    """README: SIGTERM (`docker stop`, a cancelled CI job) is handled as Ctrl-C is, and a
    first Ctrl-C starts no new action, waits for the requests in flight and records them. A
    first SIGTERM cancelled them at once instead (their intents left pending, the provider's
    objects unrecorded) and said nothing of what never started. Now it drains: exit 143,
    nothing pending, the counts said; a second SIGTERM would stop at once."""
    fleet, env, lockfile, db = _fleet(tmp_path, agents=30, environments=2)
    with provider(db, FaultConfig(latency_ms=400)) as (url, _tap):
        run = zygote.start(_apply_args(url), cwd=tmp_path, env=env)
        _wait_until("4 resources were recorded", lambda: _recorded(lockfile) >= 4, run)
        os.kill(run.pid, signal.SIGTERM)
        assert run.wait(60) == 143, (run.stdout, run.stderr)
        assert "Traceback" not in run.stderr
        assert "starting no new action" in run.stderr, run.stderr
        assert "SIGTERM again" in run.stderr, run.stderr
        assert re.search(r"\d+ (?:was|were) never started", run.stderr), run.stderr
        assert "Apply complete" not in run.stdout
        assert not lock_path(lockfile).exists(), "the apply lock was left behind"
        data = _lockfile_data(lockfile)
        done, pending = set(data["resources"]), set(data["pending"])
        assert not pending, f"creates in flight were abandoned, not finished: {pending}"
        assert 4 <= len(done) < len(fleet.addresses)
        assert set(owned_objects(db, PROJECT)) == done  # every object made is recorded
        again = zygote.run(_apply_args(url), cwd=tmp_path, env=env)
        assert again.code == 0, again.stderr
    assert_converged(lockfile, db, PROJECT, fleet.addresses)


def test_sigterm_at_the_confirmation_prompt_declines(tmp_path: Path) -> None:
    """On a terminal, apply waits for `yes`; SIGTERM there declines at once (as Ctrl-C does)
    instead of waiting for an answer: nothing changed, no lock left, exit 143."""
    import pty
    import select
    import subprocess
    import sys

    _, env, lockfile, db = _fleet(tmp_path, agents=2, environments=1, credentials=0, deployments=0)
    with provider(db) as (url, tap):
        master, terminal = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "--project", PROJECT, "--provider-url", url]
            + ["apply"],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,  # input() writes its prompt there
            cwd=tmp_path,
            env={**env, "TERM": "dumb"},  # no spinner
        )
        os.close(terminal)
        try:
            shown = b""
            deadline = time.monotonic() + 60
            while b"Enter a value" not in shown:
                assert time.monotonic() < deadline and proc.poll() is None, shown
                if select.select([master], [], [], 0.1)[0]:
                    shown += os.read(master, 65536)
            # waiting for the answer: blocked in read(). (A signal that lands between the
            # prompt's write and that read() is only seen once the read returns; nothing in
            # Python can close that window of microseconds.)
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 143
            while select.select([master], [], [], 0.1)[0]:
                try:
                    shown += os.read(master, 65536)
                except OSError:  # the other end closed
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        assert b"Apply cancelled; nothing was changed." in shown, shown
        assert tap.count("POST", ".") == 0
        assert not lock_path(lockfile).exists()


# --- a frozen apply whose lock is taken over ------------------------------------------------------


def _creates(tap: Any) -> int:
    return int(tap.count("POST", CREATE_PATH))


def _lock_id(lockfile: Path) -> str:
    return str(json.loads(lock_path(lockfile).read_text())["id"])


def _lock_pid(lockfile: Path) -> int | None:
    try:
        return int(json.loads(lock_path(lockfile).read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


@contextmanager
def _reaped(runs: list[Run]) -> Iterator[None]:
    """Kill and reap whatever run is still going when the block ends (a failed test)."""
    try:
        yield
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait(30)


@contextmanager
def _frozen(run: Run) -> Iterator[None]:
    os.kill(run.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(run.pid, signal.SIGCONT)


def _freeze_and_take_over(
    tmp_path: Path,
    zygote: Zygote,
    *,
    expire: bool,
    resume_while_second_runs: bool,
    frozen_after: int = 4,
    agents: int = 40,
) -> None:
    """Apply A is frozen after ``frozen_after`` records; B takes the lock (after its real
    expiry, or after `reconciler unlock`) and creates the rest; A wakes up while B still runs
    (or after B finished). A must stop before its next write; nothing is made twice."""
    fleet, env, lockfile, db = _fleet(
        tmp_path, agents=agents, environments=2, credentials=1, deployments=2
    )
    runs: list[Run] = []
    with provider(db, FaultConfig(latency_ms=150)) as (url, tap), _reaped(runs):
        a = zygote.start(_apply_args(url), cwd=tmp_path, env=env)
        runs.append(a)
        _wait_until(f"{frozen_after} records", lambda: _recorded(lockfile) >= frozen_after, a)
        with _frozen(a):
            a_lock = _lock_id(lockfile)
            if expire:
                time.sleep(31)  # the lock's heartbeat expiry is 30 s: B takes it over
            else:
                unlocked = zygote.run(
                    ["--lockfile", str(lockfile), "unlock", "--force", a_lock], cwd=tmp_path
                )  # A is frozen, not dead: its lock is live
                assert unlocked.code == 0, unlocked.stderr
            time.sleep(0.5)  # A's requests in flight when it froze reach the provider
            before = _creates(tap)
            b = zygote.start(_apply_args(url), cwd=tmp_path, env=env)
            runs.append(b)
            if resume_while_second_runs:
                # B holds the lock and is creating what A planned to create too
                _wait_until("B creates", lambda: _creates(tap) >= before + 2, b)
                b_lock = _lock_id(lockfile)
                assert _lock_pid(lockfile) == b.pid
            else:
                assert b.wait(120) == 0, b.stderr
        assert a.wait(60) == 1, (a.stdout, a.stderr)
        assert b.wait(120) == 0, (b.stdout, b.stderr)
    if resume_while_second_runs:
        assert re.search(rf"lock lost to apply {b_lock} \(pid {b.pid} ", a.stderr), a.stderr
    else:
        assert "lock lost to nobody" in a.stderr, a.stderr
    assert "stopped before its next write" in a.stderr
    assert "left it alone" not in a.stderr  # said once, by the error
    if expire:
        assert "took over stale lock" in b.stderr
    # no twin: every address exactly once, ever; the lockfile is B's, complete
    assert_converged(lockfile, db, PROJECT, fleet.addresses)


def test_a_frozen_apply_whose_lock_was_taken_over_stops_before_its_next_write(
    tmp_path: Path, zygote: Zygote
) -> None:
    _freeze_and_take_over(tmp_path, zygote, expire=False, resume_while_second_runs=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("resume_while_second_runs", "frozen_after"),
    [(True, 1), (False, 10), (True, 25)],
    ids=["resumed-while-B-runs", "resumed-after-B", "frozen-late-resumed-while-B-runs"],
)
def test_frozen_past_the_lock_expiry(
    tmp_path: Path, zygote: Zygote, resume_while_second_runs: bool, frozen_after: int
) -> None:
    _freeze_and_take_over(
        tmp_path,
        zygote,
        expire=True,
        resume_while_second_runs=resume_while_second_runs,
        frozen_after=frozen_after,
    )


@pytest.mark.slow
@pytest.mark.parametrize("pause", [1.0, 6.0])
def test_a_pause_shorter_than_the_expiry_does_not_stop_the_apply(
    tmp_path: Path, zygote: Zygote, pause: float
) -> None:
    """Frozen for less than the expiry, nobody may take the lock: A goes on to the end."""
    fleet, env, lockfile, db = _fleet(
        tmp_path, agents=30, environments=2, credentials=1, deployments=2
    )
    runs: list[Run] = []
    with provider(db, FaultConfig(latency_ms=100)) as (url, _tap), _reaped(runs):
        a = zygote.start(_apply_args(url), cwd=tmp_path, env=env)
        runs.append(a)
        _wait_until("4 records", lambda: _recorded(lockfile) >= 4, a)
        with _frozen(a):
            time.sleep(pause)
        assert a.wait(120) == 0, a.stderr
    assert_converged(lockfile, db, PROJECT, fleet.addresses)


# --- a dead provider --------------------------------------------------------------------------


def _serve(zygote: Zygote, db: Path, cwd: Path) -> tuple[Run, str]:
    """``reconciler provider serve`` as a process of its own (it can be killed); its URL."""
    server = zygote.start(
        ["provider", "serve", "--port", "0", "--db", str(db), "--latency-ms", "150"],
        cwd=cwd,
        env=clean_env(),
    )
    found: list[str] = []

    def listening() -> bool:
        if server.err.exists():  # created by the forked child, a moment after the fork
            found[:] = re.findall(r"listening on (http://\S+)", server.stderr)
        return bool(found)

    _wait_until("the provider listens", listening, server)
    return server, found[0]


def _provider_dies(
    tmp_path: Path, zygote: Zygote, *, agents: int, parallelism: int, killed_after: int
) -> None:
    fleet, env, lockfile, db = _fleet(
        tmp_path, agents=agents, environments=2, credentials=0, deployments=0
    )
    server, url = _serve(zygote, db, tmp_path)
    runs = [server]
    with _reaped(runs):
        a = zygote.start(_apply_args(url, parallelism), cwd=tmp_path, env=env)
        runs.append(a)
        try:
            _wait_until(f"{killed_after} records", lambda: _recorded(lockfile) >= killed_after, a)
        finally:
            server.kill()
        _check_stopped(a, server, url, fleet, lockfile, parallelism)
    # the provider comes back: the next apply finishes the job, no twins
    server, url = _serve(zygote, db, tmp_path)
    with _reaped([server]):
        again = zygote.run(_apply_args(url, 16), cwd=tmp_path, env=env)
        assert again.code == 0, again.stderr
        server.kill()
    assert_converged(lockfile, db, PROJECT, fleet.addresses)


def _check_stopped(
    a: Run, server: Run, url: str, fleet: Fleet, lockfile: Path, parallelism: int
) -> None:
    assert server.wait(30) == -signal.SIGKILL
    # a hang guard, not a timing: the old behaviour took minutes (5 x 5 tries per action)
    assert a.wait(150) == 1, (a.stdout, a.stderr)
    assert f"the provider at {url} is unreachable" in a.stderr, a.stderr
    assert "Run `reconciler apply` again once the provider is back" in a.stderr
    assert "Traceback" not in a.stderr
    said = re.search(
        r"(\d+) of (\d+) changes were done .*?; (\d+) failed and (\d+) (?:was|were) not "
        r"attempted",
        a.stderr,
    )
    assert said is not None, a.stderr
    done, total, failed, not_sent = map(int, said.groups())
    data = _lockfile_data(lockfile)
    assert done == len(data["resources"]) and total == len(fleet.addresses)
    # every change is counted once: the summary's list above names the same ones
    assert done + failed + not_sent == total, a.stderr
    # it stopped sending: most of the plan was never tried ...
    assert not_sent >= total - done - 2 * parallelism - 3, a.stderr
    # ... and those never sent left no intent; only creates that were sent may have one
    assert len(data["pending"]) <= parallelism + 3, sorted(data["pending"])
    assert not lock_path(lockfile).exists()


def test_apply_stops_when_the_provider_dies(tmp_path: Path, zygote: Zygote) -> None:
    _provider_dies(tmp_path, zygote, agents=150, parallelism=10, killed_after=10)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("parallelism", "killed_after"),
    [(1, 1), (4, 20), (16, 40), (32, 5)],
)
def test_provider_death_at_other_moments(
    tmp_path: Path, zygote: Zygote, parallelism: int, killed_after: int
) -> None:
    _provider_dies(tmp_path, zygote, agents=300, parallelism=parallelism, killed_after=killed_after)


# --- intents left behind by removed documents ------------------------------------------------------


def test_intents_of_removed_documents_are_dropped_and_said(tmp_path: Path, zygote: Zygote) -> None:
    """An apply of 30 agents is killed at its 6th create (5 were made); then 27 of the
    documents are removed. The next apply drops their intents and says which were created
    (left alone, found by their tags) and which never were."""
    _, env, lockfile, db = _fleet(tmp_path, agents=30, environments=0, credentials=0, deployments=0)
    with provider(db) as (url, tap):
        runs: list[Run] = []
        tap.before = kill_hook(
            lambda: runs[0].pid if runs else None, "POST", CREATE_PATH, 6, drop=True
        )
        runs.append(zygote.start(_apply_args(url, parallelism=1), cwd=tmp_path, env=env))
        assert runs[0].wait(60) == -signal.SIGKILL
        tap.before = None
        created = set(owned_objects(db, PROJECT))
        assert len(created) == 5, created
        before = _lockfile_data(lockfile)
        write_fleet(tmp_path / "manifests", agents=3, environments=0, credentials=0, deployments=0)
        kept = {f"agent.agent-{i:02d}" for i in range(3)}
        leftover = set(before["pending"]) - kept
        assert len(leftover) >= 25, sorted(leftover)
        again = zygote.run(_apply_args(url), cwd=tmp_path, env=env)
        assert again.code == 0, again.stderr
    after = _lockfile_data(lockfile)
    assert after["pending"] == {}
    # the resources recorded before stay recorded (not in the manifests: left alone)
    assert set(after["resources"]) == kept | set(before["resources"])
    n = len(leftover)
    said = f"Forgot {n} pending create intents of resources no longer in the manifests"
    assert said in again.stdout, again.stdout
    for address in sorted(leftover & created):
        assert re.search(
            rf"  {re.escape(address)}: created as agent_\S+ \(not in the", again.stdout
        )
    assert "  agent.agent-29: never created" in again.stdout
    # the created ones are left alone, still found by their tags (--prune would archive them)
    assert set(owned_objects(db, PROJECT)) == created | kept
    plan = zygote.run(["--project", PROJECT, "--provider-url", url, "plan"], cwd=tmp_path, env=env)
    assert "Forgot" not in plan.stdout
