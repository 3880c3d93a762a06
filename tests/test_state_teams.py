"""Teams on one PostgreSQL state (issue #17): real ``reconciler`` processes, separate work
directories, one database, one provider.

* the whole command line works with ``--backend`` and never prints the password;
* two and four applies started at once: exactly one proceeds, the others fail fast naming it;
* ``kill -9`` of the holder mid-apply (before and after a create reached the provider): the
  next runner takes the expired lease over, says so, and converges with no twins;
* the database connections cut mid-apply: the apply reconnects and converges.

The provider holds the winner's first create at a gate until the losers have exited, so the
outcome never depends on how fast each interpreter starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from support.postgres import PostgresServer, wait_for
from support.reliability import (
    CREATE_PATH,
    Fleet,
    assert_converged,
    clean_env,
    kill_hook,
    owned_objects,
    provider,
    write_fleet,
)

pytestmark = pytest.mark.tcp

PROJECT = "team"
PASSWORD = "pw-canary-9f3e"


def password_url(url: str) -> str:
    """``url`` with a password (the test cluster trusts local connections: any will do)."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def workdirs(root: Path, n: int) -> tuple[Fleet, list[Path]]:
    """``n`` checkouts of one repository: the same manifests, each its own folder."""
    fleet = write_fleet(root / "repo" / "manifests", agents=6, environments=2, credentials=1,
                        deployments=2)  # fmt: skip
    dirs = []
    for i in range(n):
        work = root / f"runner-{i}"
        shutil.copytree(root / "repo", work)
        dirs.append(work)
    return fleet, dirs


def env_for(fleet: Fleet, backend: str, **extra: str) -> dict[str, str]:
    return clean_env(**fleet.env, RECONCILER_BACKEND=backend, RECONCILER_PROJECT=PROJECT,
                     NO_COLOR="1", **extra)  # fmt: skip


def start(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def run(args: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def lease_row(url: str) -> tuple[object, ...] | None:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            return conn.execute(
                "SELECT id, pid, expires_at < clock_timestamp() FROM reconciler_leases "
                "WHERE project = %s",
                (PROJECT,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None


class Gate:
    """A tap hook: holds every create until ``open()`` (the server thread waits)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.reached = threading.Event()

    def __call__(self, method: str, path: str) -> bool:
        if method == "POST" and path.startswith("/v1/"):
            self.reached.set()
            self.opened.wait(120)
        return False


def test_the_command_line_on_a_database_never_prints_its_password(
    pg_url: str, tmp_path: Path
) -> None:
    fleet, (work,) = workdirs(tmp_path, 1)
    backend = password_url(pg_url)
    env = env_for(fleet, backend)
    db = tmp_path / "provider.db"
    outputs = []
    with provider(db) as (url, _tap):
        steps = [
            ["--provider-url", url, "apply", "--auto-approve"],
            ["--provider-url", url, "plan", "--detailed-exitcode"],
            ["--provider-url", url, "drift"],
            ["state", "list"],
            ["state", "show", "agent.agent-00"],
            ["state", "history", "agent.agent-00"],
            ["state", "history"],
            ["unlock", "nope"],
            ["--debug", "state", "list"],
            ["--provider-url", "http://127.0.0.1:9", "plan"],
        ]
        for args in steps:
            done = run(args, cwd=work, env=env)
            outputs.append((args, done))
    codes = [d.returncode for _, d in outputs]
    assert codes == [0, 0, 0, 0, 0, 0, 0, 1, 0, 1], [(a, d.stderr[-800:]) for a, d in outputs]
    for args, done in outputs:
        assert PASSWORD not in done.stdout + done.stderr, args
        assert "Traceback" not in done.stderr, (args, done.stderr)
    assert not (work / "state").exists(), "with --backend no lockfile is written"
    listed = outputs[3][1].stdout
    assert all(address in listed for address in fleet.addresses)
    history = outputs[5][1].stdout
    assert "created  agent.agent-00" in history and " apply plan sha256:" in history
    assert "is not locked: no lease is held" in outputs[7][1].stderr
    assert "postgresql://postgres@127.0.0.1:" in outputs[7][1].stderr
    # another provider is refused naming the flags that pick this state, not --lockfile
    other_origin = outputs[9][1].stderr
    assert "this run talks to http://127.0.0.1:9" in other_origin, other_origin
    assert "--backend, --project" in other_origin and "--lockfile" not in other_origin
    assert_converged(work / "unused.lock", db, PROJECT, fleet.addresses, backend=pg_url)
    # secrets never reach the database: only their salted fingerprints
    dump = database_text(pg_url)
    assert "scrypt:" in dump
    assert fleet.env and not any(value in dump for value in fleet.env.values())


def database_text(url: str) -> str:
    """Every row of every reconciler table, as text."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'reconciler_%'")]  # fmt: skip
        return "\n".join(
            str(conn.execute(f"SELECT t::text FROM {t} t".encode()).fetchall()) for t in tables
        )


def test_migrate_from_the_lockfile_to_the_database_and_back(pg_url: str, tmp_path: Path) -> None:
    """``state migrate``: file -> PostgreSQL -> file, lineage and serial kept; the database
    then plans no change; a non-empty target is refused without --force."""
    fleet, (work,) = workdirs(tmp_path, 1)
    file_env = env_for(fleet, "")
    db_env = env_for(fleet, pg_url)
    db = tmp_path / "provider.db"
    with provider(db) as (url, _tap):
        assert (
            run(
                ["--provider-url", url, "apply", "--auto-approve"], cwd=work, env=file_env
            ).returncode
            == 0
        )
        from reconciler.state import read_lockfile

        original = read_lockfile(work / "state" / "reconciler.lock", project=PROJECT)
        moved = run(["state", "migrate", "--to", pg_url], cwd=work, env=file_env)
        assert moved.returncode == 0, moved.stderr
        assert f"lineage {original.lineage}, serial {original.serial}" in moved.stdout
        assert "remove state/reconciler.lock from git" in moved.stdout  # the old copy
        plan = run(["--provider-url", url, "plan", "--detailed-exitcode"], cwd=work, env=db_env)
        assert plan.returncode == 0, (plan.stdout[-2000:], plan.stderr[-2000:])
        again = run(["state", "migrate", "--to", pg_url], cwd=work, env=file_env)
        assert again.returncode == 1 and "its state was moved to postgresql://" in again.stderr
        back = run(["state", "migrate", "--to", "state/back.lock"], cwd=work, env=db_env)
        assert back.returncode == 0, back.stderr
        assert "git rm" not in back.stdout  # from the database: nothing to remove from git
    returned = read_lockfile(work / "state" / "back.lock", project=PROJECT)
    assert returned == original


@pytest.mark.parametrize("runners", [2, 4])
def test_concurrent_applies_exactly_one_proceeds(pg_url: str, tmp_path: Path, runners: int) -> None:
    fleet, dirs = workdirs(tmp_path, runners)
    env = env_for(fleet, pg_url)
    db = tmp_path / "provider.db"
    gate = Gate()
    with provider(db) as (url, tap):
        tap.before = gate
        procs = [start(["--provider-url", url, "apply", "--auto-approve"], cwd=d, env=env)
                 for d in dirs]  # fmt: skip
        try:
            # every runner but one fails on the lease; the one holding it waits at the gate
            wait_for(
                f"{runners - 1} runners refused",
                lambda: sum(p.poll() is not None for p in procs) >= runners - 1,
                timeout=180,
            )
            wait_for("the winner's first create at the gate", gate.reached.is_set)
            row = lease_row(pg_url)
            assert row is not None, "the winner holds the lease while it waits at the gate"
            lease_id, pid, _ = row
            losers = [p for p in procs if p.poll() is not None]
            winners = [p for p in procs if p.poll() is None]
            assert len(winners) == 1 and winners[0].pid == pid
        finally:
            gate.opened.set()
        outs = {p.pid: p.communicate(timeout=300) for p in procs}
    assert winners[0].returncode == 0, outs[winners[0].pid]
    for p in losers:
        out, err = outs[p.pid]
        assert p.returncode == 1, (out, err)
        assert f"is locked by apply {lease_id} (pid {pid} on host " in err, err
        assert "Traceback" not in err
    assert_converged(tmp_path / "unused.lock", db, PROJECT, fleet.addresses, backend=pg_url)


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_9_of_the_holder_then_the_next_runner_takes_over(
    pg_url: str, tmp_path: Path, when: str
) -> None:
    """SIGKILL at the 4th create: before it reached the provider, or after the provider made
    it and before the answer arrived. The lease expires (TTL 2 s here), the next runner takes
    it over, says so, and converges: every address once, no twins."""
    fleet, (first, second) = workdirs(tmp_path, 2)
    env = env_for(fleet, pg_url, RECONCILER_LEASE_TTL="2")
    db = tmp_path / "provider.db"
    with provider(db) as (url, tap):
        args = ["--provider-url", url, "apply", "--auto-approve", "--parallelism", "1"]
        holder = start(args, cwd=first, env=env)
        hook = kill_hook(lambda: holder.pid, "POST", CREATE_PATH, 4, drop=when == "before")
        if when == "before":
            tap.before = hook
        else:
            tap.after = hook
        holder.communicate(timeout=300)
        assert holder.returncode == -signal.SIGKILL
        tap.before = tap.after = None
        row = lease_row(pg_url)
        assert row is not None and row[1] == holder.pid, "the dead holder's lease stays behind"
        wait_for("the lease expired", lambda: bool((lease_row(pg_url) or (0, 0, True))[2]))
        done = run(args, cwd=second, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"took over expired lease apply {row[0]} (pid {holder.pid}" in done.stderr
    assert lease_row(pg_url) is None, "released at the end"
    assert_converged(tmp_path / "unused.lock", db, PROJECT, fleet.addresses, backend=pg_url)


@pytest.mark.parametrize("nth", [1, 3])
def test_kill_9_inside_a_state_transaction(pg_url: str, tmp_path: Path, nth: int) -> None:
    """SIGKILL between the rows of a state write and its COMMIT: the server rolls the whole
    transaction back (no half-written state), and the next runner takes over and converges."""
    from support.reliability import shared_zygote

    zygote = shared_zygote()
    fleet, (work,) = workdirs(tmp_path, 1)
    env = env_for(fleet, pg_url, RECONCILER_LEASE_TTL="2")
    db = tmp_path / "provider.db"
    # each answer 0.3 s apart, longer than outcomes wait for company (at most 0.25 s): every
    # outcome is a state write of its own, so the nth write comes whatever the machine's load
    from reconciler.provider.local import FaultConfig

    with provider(db, FaultConfig(latency_ms=300)) as (url, _tap):
        args = ["--provider-url", url, "apply", "--auto-approve", "--parallelism", "1"]
        dead = zygote.start(args, cwd=work, env=env, crash={"point": "pg-mid-write", "nth": nth})
        assert dead.wait(120) == -signal.SIGKILL, dead.stderr[-2000:]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            serial = conn.execute("SELECT serial FROM reconciler_states").fetchone()
            newest = conn.execute("SELECT max(serial) FROM reconciler_history").fetchone()
            stray = conn.execute(
                "SELECT count(*) FROM reconciler_resources WHERE updated_serial > "
                "(SELECT serial FROM reconciler_states)"
            ).fetchone()
        assert serial is not None and newest is not None and stray == (0,)
        assert newest[0] is None or newest[0] <= serial[0], "no row of the killed write stayed"
        wait_for("the lease expired", lambda: bool((lease_row(pg_url) or (0, 0, True))[2]))
        healed = zygote.run(args, cwd=work, env=env)
    assert healed.code == 0, healed.stderr[-3000:]
    assert "took over expired lease" in healed.stderr
    assert_converged(tmp_path / "unused.lock", db, PROJECT, fleet.addresses, backend=pg_url)


def test_connections_cut_mid_apply_reconnect_and_converge(
    pg_url: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    fleet, (work,) = workdirs(tmp_path, 1)
    env = env_for(fleet, pg_url)
    db = tmp_path / "provider.db"
    dbname = pg_url.rsplit("/", 1)[1]
    cut: list[int] = []

    def sever(method: str, path: str) -> bool:
        if method == "POST" and path.startswith("/v1/") and len(cut) < 3:
            cut.append(postgres_server.terminate(dbname))
        return False

    with provider(db) as (url, tap):
        tap.after = sever
        done = run(["--provider-url", url, "apply", "--auto-approve", "--parallelism", "2"],
                   cwd=work, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert sum(cut) >= 2, "the apply's connections were cut"
    assert "reconnecting" in done.stderr
    assert_converged(tmp_path / "unused.lock", db, PROJECT, fleet.addresses, backend=pg_url)
    owned = owned_objects(db, PROJECT, archived=True)
    assert all(len(objs) == 1 for objs in owned.values())
    assert os.path.exists(db)
