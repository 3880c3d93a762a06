"""Crash matrix on the PostgreSQL state backend (issue #17): ``kill -9`` of apply at the
database's own kill points; the state stays whole, the next runner takes over and heals.

Each case runs ``reconciler apply --auto-approve --backend URL`` as its own process (forked
from the shared ``Zygote``) against the local provider over loopback TCP, with the state in a
fresh database of a real throwaway PostgreSQL server, and SIGKILLs it at one point:

* after the intent rows committed, before the create is sent (``before-send``);
* after the provider answered a create, before the transaction recording its outcome began
  (``pg-before-commit``, the first outcome write) or as the provider answers (the answer lost);
* in the middle of a grouped outcome transaction: its entry rows written, its intents not yet
  deleted, no history row, no COMMIT (``pg-mid-rows``); after every row, before COMMIT
  (``pg-mid-write``); just after COMMIT (``pg-after-commit``);
* inside a lease heartbeat's transaction (``pg-heartbeat``);
* while archiving (``--prune``), and at random moments of a large apply, repeatedly.

After every kill the database holds no row of an uncommitted write; the dead run's lease is
still there; once it expired (a 2 s TTL here) the next run takes it over, says so, exits 0 and
converges: every address live exactly once and never created twice, the state equals the
provider (each address recorded with its live id), nothing pending, and ``plan
--detailed-exitcode`` and ``drift`` exit 0. Skills (uploads without tags) are counted by
slug: one live skill each, no version uploaded twice; their create and new-version uploads
are killed around too.

Lockfile kill points with no PostgreSQL equivalent (``test_crash_matrix.py``):

* ``torn`` (half a temp file written) and ``journal-torn`` (half a journal append): the
  database has no file of ours to tear; a transaction is all or nothing, and the kill inside
  one (``pg-mid-rows``, ``pg-mid-write``) is the equivalent that exists;
* ``fsync`` (the temp file written, not yet durable): durability is the server's (its WAL);
  a killed client cannot leave a written-but-not-durable commit behind;
* ``before-rename`` / ``after-rename``, and polling for ``reconciler.lock.tmp-*``: there is
  no temp file and no rename; the commit is the switch, so ``pg-before-commit`` and
  ``pg-after-commit`` stand in for them;
* the stale apply lock of a dead pid taken over at once: a lease is taken over only once it
  expired (a dead holder stops heartbeating), since the next runner may be on another host.

Two representative kills run by default; the whole matrix is ``slow``.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.postgres import wait_for
from support.reliability import (
    ARCHIVE_PATH,
    CREATE_PATH,
    SEED_PATH,
    SKILL_PATH,
    SKILL_VERSION_PATH,
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

pytestmark = pytest.mark.tcp

PROJECT = "pgcrash"
SIZE = {
    "agents": 10,
    "environments": 3,
    "credentials": 2,
    "deployments": 4,
    "memory_stores": 2,
    "skills": 2,
}
#: each provider answer this far apart: longer than an outcome waits for company (at most
#: 0.25 s), so at --parallelism 1 every outcome is a state write of its own and the nth
#: write comes whatever the machine's load
SPACED_MS = 300
STORE_PATH = r"^/v1/memory_stores$"


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


class Workspace:
    """A manifests folder and the provider database in one temp folder; the state in the
    database ``url``."""

    def __init__(self, root: Path, url: str, **size: int) -> None:
        self.root = root
        self.url = url
        self.size = size or SIZE
        self.fleet: Fleet = write_fleet(root / "manifests", **self.size)
        self.env = clean_env(**self.fleet.env, RECONCILER_BACKEND=url, RECONCILER_LEASE_TTL="2")
        self.db = root / ".reconciler" / "provider.db"

    def rewrite(self, **size: int) -> None:
        self.size = size
        self.fleet = write_fleet(self.root / "manifests", **size)

    def args(self, provider_url: str, *extra: str) -> list[str]:
        # each provider() serves the same database on a new port: another origin, on purpose
        return [
            "--project", PROJECT, "--provider-url", provider_url,
            "apply", "--auto-approve", "--allow-origin-change", *extra,
        ]  # fmt: skip

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            try:
                return list(conn.execute(sql.encode()).fetchall())
            except psycopg.errors.UndefinedTable:
                return []

    def lease(self) -> tuple[Any, ...] | None:
        rows = self.query(
            "SELECT id, pid, expires_at < clock_timestamp() FROM reconciler_leases "
            f"WHERE project = '{PROJECT}'"
        )
        return rows[0] if rows else None

    def pending(self) -> set[str]:
        rows = self.query(f"SELECT address FROM reconciler_pending WHERE project = '{PROJECT}'")
        return {str(r[0]) for r in rows}

    def recorded(self) -> set[str]:
        rows = self.query(f"SELECT address FROM reconciler_resources WHERE project = '{PROJECT}'")
        return {str(r[0]) for r in rows}


def killed(run: Run) -> None:
    code = run.wait(180)
    assert code == -signal.SIGKILL, (
        f"the apply was not killed (exit {code}); the kill point was never reached.\n"
        f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-2000:]}"
    )


def survives(ws: Workspace, pid: int) -> None:
    """Right after a kill: no row of an uncommitted write stayed, and the dead run's lease is
    still held (until it expires)."""
    serial = ws.query(f"SELECT serial FROM reconciler_states WHERE project = '{PROJECT}'")
    newest = ws.query(f"SELECT max(serial) FROM reconciler_history WHERE project = '{PROJECT}'")
    stray = ws.query(
        "SELECT count(*) FROM reconciler_resources r JOIN reconciler_states s "
        "USING (project) WHERE r.updated_serial > s.serial"
    )
    if serial:
        assert not newest or newest[0][0] is None or newest[0][0] <= serial[0][0]
        assert stray == [(0,)], "a resource row of an uncommitted write"
    lease = ws.lease()
    assert lease is not None and lease[1] == pid, "a SIGKILLed apply leaves its lease behind"


def heals(zygote: Zygote, ws: Workspace, provider_url: str, *extra: str) -> Run:
    """Once the dead run's lease expired, the next apply takes it over, exits 0 and
    converges; plan and drift then show nothing."""
    lease = ws.lease()
    if lease is not None:
        wait_for("the lease expired", lambda: bool((ws.lease() or (0, 0, True))[2]))
    run = zygote.run(ws.args(provider_url, *extra), cwd=ws.root, env=ws.env)
    assert run.code == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert "Traceback" not in run.stdout + run.stderr
    if lease is not None:
        assert f"took over expired lease apply {lease[0]} (pid {lease[1]}" in run.stderr, (
            run.stderr[-2000:]
        )
    assert ws.lease() is None, "the lease is released at the end"
    assert_converged(
        ws.root / "unused.lock",
        ws.db,
        PROJECT,
        ws.fleet.addresses,
        backend=ws.url,
        seeds=ws.fleet.seeds,
        skills=ws.fleet.skills,
    )
    plan = zygote.run(
        ["--project", PROJECT, "plan", "--detailed-exitcode", "--allow-origin-change"],
        cwd=ws.root,
        env=ws.env,
    )
    assert plan.code == 0, (plan.stdout[-3000:], plan.stderr[-2000:])
    drift = zygote.run(
        ["--project", PROJECT, "drift", "--allow-origin-change"], cwd=ws.root, env=ws.env
    )
    assert drift.code == 0, ("a healed state shows no drift", drift.stdout[-3000:])
    return run


def crash_case(
    zygote: Zygote,
    ws: Workspace,
    crash: dict[str, Any],
    *,
    parallelism: int,
    latency_ms: int = 0,
) -> None:
    """Apply with ``crash`` (a point of the zygote's ``install_crash``), then heal."""
    from reconciler.provider.local import FaultConfig

    faults = FaultConfig(latency_ms=latency_ms) if latency_ms else None
    with provider(ws.db, faults) as (url, _tap):
        run = zygote.start(
            ws.args(url, "--parallelism", str(parallelism)), cwd=ws.root, env=ws.env, crash=crash
        )
        killed(run)
        survives(ws, run.pid)
        heals(zygote, ws, url)


def provider_kill(
    zygote: Zygote,
    ws: Workspace,
    *,
    method: str,
    pattern: str,
    nth: int,
    when: str,
    extra: tuple[str, ...] = (),
) -> None:
    """SIGKILL apply at the ``nth`` request matching ``method pattern``: ``before`` the
    provider runs it (dropped) or ``after`` it ran (the answer is lost)."""
    import threading

    holder: dict[str, int] = {}
    fired = threading.Event()
    with provider(ws.db) as (url, tap):
        hook = kill_hook(
            lambda: holder.get("pid"), method, pattern, nth, drop=(when == "before"), fired=fired
        )
        if when == "before":
            tap.before = hook
        else:
            tap.after = hook
        run = zygote.start(ws.args(url, *extra), cwd=ws.root, env=ws.env)
        holder["pid"] = run.pid
        killed(run)
        assert fired.is_set()
        tap.before = tap.after = None
        survives(ws, run.pid)
        heals(zygote, ws, url, *extra)


# --- the default run ------------------------------------------------------------------------------


def test_kill_after_the_create_answer_before_the_outcome_commits(
    zygote: Zygote, tmp_path: Path, pg_url: str
) -> None:
    """The twin maker on a database: the create's answer arrived, the process dies before
    the transaction recording it begins; the object exists, only its intent names it."""
    ws = Workspace(tmp_path, pg_url)
    from reconciler.provider.local import FaultConfig

    with provider(ws.db, FaultConfig(latency_ms=SPACED_MS)) as (url, _tap):
        # write 1 records the intents; write 2 is the first outcome
        run = zygote.start(
            ws.args(url, "--parallelism", "1"),
            cwd=ws.root,
            env=ws.env,
            crash={"point": "pg-before-commit", "nth": 2},
        )
        killed(run)
        survives(ws, run.pid)
        live = set(owned_objects(ws.db, PROJECT))
        assert live, "the first create was executed"
        assert live <= ws.pending(), "its outcome never committed: only its intent names it"
        assert not ws.recorded()
        heals(zygote, ws, url)


def test_kill_in_the_middle_of_a_grouped_outcome_transaction(
    zygote: Zygote, tmp_path: Path, pg_url: str
) -> None:
    """Ten creates answered together are recorded by one transaction; the process dies after
    its entry rows were written, before its intents were deleted and before COMMIT: the
    server rolls the whole group back."""
    crash_case(
        zygote,
        Workspace(tmp_path, pg_url),
        {"point": "pg-mid-rows", "nth": 1},
        parallelism=10,
        latency_ms=100,  # the ten answers arrive together: one grouped write
    )


# --- the matrix -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("nth", [1, 6])
def test_kill_after_the_intents_commit_before_the_create_is_sent(
    zygote: Zygote, tmp_path: Path, pg_url: str, nth: int
) -> None:
    ws = Workspace(tmp_path, pg_url)
    with provider(ws.db) as (url, tap):
        run = zygote.start(
            ws.args(url),
            cwd=ws.root,
            env=ws.env,
            crash={"point": "before-send", "nth": nth, "pattern": CREATE_PATH},
        )
        killed(run)
        survives(ws, run.pid)
        assert ws.pending(), "the intent rows committed before the create was sent"
        assert tap.count("POST", CREATE_PATH) <= nth - 1  # (others may be in flight)
        heals(zygote, ws, url)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "nth", "parallelism", "latency_ms"),
    # write 1 records the intents (nothing sent yet); spaced answers at --parallelism 1 make
    # every later write one outcome; at --parallelism 10 with 100 ms answers they group
    [
        ("pg-before-commit", 1, 1, 0),
        ("pg-before-commit", 4, 1, SPACED_MS),
        ("pg-mid-write", 2, 1, SPACED_MS),
        ("pg-mid-write", 2, 10, 100),
        ("pg-mid-rows", 2, 10, 100),
        ("pg-after-commit", 1, 1, 0),
        ("pg-after-commit", 3, 1, SPACED_MS),
        ("pg-after-commit", 2, 10, 100),
    ],
)
def test_kill_during_a_state_transaction(
    zygote: Zygote,
    tmp_path: Path,
    pg_url: str,
    point: str,
    nth: int,
    parallelism: int,
    latency_ms: int,
) -> None:
    crash_case(
        zygote,
        Workspace(tmp_path, pg_url),
        {"point": point, "nth": nth},
        parallelism=parallelism,
        latency_ms=latency_ms,
    )


@pytest.mark.slow
@pytest.mark.parametrize("nth", [1, 3])
def test_kill_during_the_lease_heartbeat(
    zygote: Zygote, tmp_path: Path, pg_url: str, nth: int
) -> None:
    """The holder dies inside a renewal of its lease (the row updated, not committed): the
    lease keeps its last committed expiry, expires, and the next runner takes it over."""
    crash_case(
        zygote,
        Workspace(tmp_path, pg_url),
        {"point": "pg-heartbeat", "nth": nth},
        parallelism=1,
        latency_ms=SPACED_MS,  # the apply outlives a few heartbeats (every 0.5 s)
    )


@pytest.mark.slow
@pytest.mark.parametrize(("when", "nth"), [("before", 3), ("after", 1), ("after", 9)])
def test_kill_around_a_create(
    zygote: Zygote, tmp_path: Path, pg_url: str, when: str, nth: int
) -> None:
    ws = Workspace(tmp_path, pg_url)
    provider_kill(zygote, ws, method="POST", pattern=CREATE_PATH, nth=nth, when=when)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pattern", "when", "nth"),
    # the store made, no seed written; the second seed dropped; its answer lost
    [(STORE_PATH, "after", 1), (SEED_PATH, "before", 2), (SEED_PATH, "after", 2)],
)
def test_kill_around_a_store_create_and_its_seeds(
    zygote: Zygote, tmp_path: Path, pg_url: str, pattern: str, when: str, nth: int
) -> None:
    """Issue #15 on a database: a store whose create's outcome never committed is found by
    its tags (no twin) and gets the seeds that are absent, each written once."""
    ws = Workspace(tmp_path, pg_url, **{**SIZE, "memory_stores": 1})
    provider_kill(zygote, ws, method="POST", pattern=pattern, nth=nth, when=when)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("upload", "when"), [("create", "before"), ("create", "after"), ("version", "after")]
)
def test_kill_around_a_skill_upload(
    zygote: Zygote, tmp_path: Path, pg_url: str, upload: str, when: str
) -> None:
    """Issue #15 on a database: a skill upload (create or new version) whose outcome never
    committed is recorded by the next run (by its slug, or by its latest version's files),
    never uploaded again."""
    ws = Workspace(tmp_path, pg_url, **{**SIZE, "skills": 3})
    pattern = SKILL_PATH
    if upload == "version":
        with provider(ws.db) as (url, _tap):
            heals(zygote, ws, url)
        ws.fleet = write_fleet(ws.root / "manifests", **ws.size, tag=" Changed.")
        pattern = SKILL_VERSION_PATH
    provider_kill(zygote, ws, method="POST", pattern=pattern, nth=2, when=when)


@pytest.mark.slow
@pytest.mark.parametrize(("when", "nth"), [("before", 1), ("after", 2)])
def test_kill_around_an_archive(
    zygote: Zygote, tmp_path: Path, pg_url: str, when: str, nth: int
) -> None:
    ws = Workspace(tmp_path, pg_url)
    with provider(ws.db) as (url, _tap):
        heals(zygote, ws, url)
    ws.rewrite(agents=4, environments=2, credentials=1, deployments=2, memory_stores=1)
    provider_kill(
        zygote, ws, method="POST", pattern=ARCHIVE_PATH, nth=nth, when=when, extra=("--prune",)
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_repeated_random_kills_in_a_large_apply(
    zygote: Zygote, tmp_path: Path, pg_url: str, seed: int
) -> None:
    """Issue #4 on a database: kill -9 at random points, again and again; after each the
    state is whole; then one run converges with no duplicates."""
    from reconciler.provider.local import FaultConfig

    rng = random.Random(seed)
    ws = Workspace(
        tmp_path,
        pg_url,
        agents=40,
        environments=6,
        credentials=4,
        deployments=8,
        memory_stores=4,
        skills=3,
    )
    with provider(ws.db, FaultConfig(latency_ms=15)) as (url, tap):
        for _ in range(5):
            if ws.lease() is not None:
                wait_for("the lease expired", lambda: bool((ws.lease() or (0, 0, True))[2]))
            base = len(tap.answers)
            target = base + rng.randint(3, 40)
            run = zygote.start(
                ws.args(url, "--parallelism", str(rng.choice([1, 4, 10]))),
                cwd=ws.root,
                env=ws.env,
            )
            deadline = time.monotonic() + 90
            while len(tap.answers) < target and time.monotonic() < deadline:
                if run.poll() is not None:
                    break
                time.sleep(0.002)
            time.sleep(rng.random() * 0.03)
            run.kill()
            code = run.wait()
            if code == 0:
                break  # it finished first: nothing left to interrupt
            assert code == -signal.SIGKILL, (code, run.stderr[-2000:])
            survives(ws, run.pid)
        heals(zygote, ws, url)
