"""Interruptions the crash matrix does not make (session 9's QA): a full disk, SIGTERM and
Ctrl-C at exact points, replaces, a killed rollback, a saved plan applied again after a kill,
a killed import, and a lockfile deleted after a crash.

Each case runs ``reconciler`` as its own process (forked from the shared ``Zygote``) against
the local provider served over loopback TCP (with some latency), and interrupts it at one
point:

* the disk fills up from the k-th lockfile write on (crash point ``enospc``: every later
  write to the lockfile's temp file or journal fails with ENOSPC), the lockfile rewritten
  at every write or journaled (``RECONCILER_JOURNAL_ABOVE=0``): exit 1, one clear error and
  no traceback, what was recorded said;
* SIGTERM (``docker stop``) and SIGINT (Ctrl-C) inside a lockfile write (crash points with
  ``signal``) and as the provider answers an upload, a seed, a credential, an agent update,
  a pin move, or either half of a replace: exit 143 / 130, the lock released, the lockfile
  whole (``slow``);
* ``rollback`` SIGKILLed around its pin move: the next plan records the rollback that
  happened (the version left held), never moves the pin forward again;
* ``apply plan.bin`` SIGKILLed after a skill upload, then ``apply plan.bin`` again: the
  upload is refused as possibly done, never sent twice (a twin skill);
* ``import --all-unmanaged`` SIGKILLed while or after writing the manifests, before tagging:
  the next apply creates no twin of the hand-made agents, and names the import that finishes;
* ``drift`` after a killed apply says that apply died holding the lock; a credential whose
  create was not recorded says why its secret is sent again; a gated pin move killed once it
  landed keeps what moved it (checks, skip-checks) in the pin history;
* SIGKILL after a memory store's create, or at a random moment, then the lockfile (backup,
  journal and history too) deleted, or the PostgreSQL database replaced by an empty one:
  the next apply heals from the ownership tags (skills by slug, seeds by the stores' memory
  history) with no twin and no seed missing.

After each: the next apply exits 0 and converges (every address live once, never created
twice, recorded with its live id, nothing pending), then ``plan --detailed-exitcode`` and
``drift`` exit 0. One case of each family runs by default; the rest (and the PostgreSQL
variants) is ``slow``.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.reliability import (
    CREATE_PATH,
    Fleet,
    FleetWorkspace,
    Hook,
    Run,
    Zygote,
    assert_converged,
    owned_objects,
    provider,
    shared_zygote,
    write_fleet,
)

if TYPE_CHECKING:
    from support.postgres import PostgresServer

    from reconciler.state import Lockfile

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


class Workspace(FleetWorkspace):
    """Manifests, the lockfile and the provider database in one temp folder; the state in
    PostgreSQL with ``backend``."""

    def __init__(
        self, root: Path, *, journal: bool = False, backend: str | None = None, **size: int
    ) -> None:
        super().__init__(root, size or SIZE)
        if journal:  # every write after the first appends to the journal
            self.env["RECONCILER_JOURNAL_ABOVE"] = "0"
        #: the PostgreSQL state's URL (None: the lockfile)
        self.backend = backend
        if backend is not None:  # a dead run's lease expires after 2 s
            self.env.update(RECONCILER_BACKEND=backend, RECONCILER_LEASE_TTL="2")

    def state(self) -> Lockfile:
        """The state as the next run reads it, from the lockfile or the database."""
        from reconciler.state import open_location

        location = open_location(self.backend, self.lockfile, PROJECT)
        try:
            return location.read()
        finally:
            location.close()

    def wait_for_the_lease(self) -> None:
        """PostgreSQL: until a killed run's lease expired (a lockfile's dead pid is seen at
        once)."""
        if self.backend is None:
            return
        import psycopg
        from support.postgres import wait_for

        def expired() -> bool:
            with psycopg.connect(self.backend, autocommit=True) as conn:
                try:
                    rows = conn.execute(
                        b"SELECT expires_at < clock_timestamp() FROM reconciler_leases "
                        b"WHERE project = %s",
                        (PROJECT,),
                    ).fetchall()
                except psycopg.errors.UndefinedTable:
                    return True  # a new database that only plan read: no tables, no lease
            return not rows or bool(rows[0][0])

        wait_for("the dead run's lease expired", expired)

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

    ws.wait_for_the_lease()
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
        backend=ws.backend,
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


# --- a rollback killed around its pin move ---------------------------------------------------

GATED = """\
kind: Environment
name: env
spec: {}
---
kind: Agent
name: reviewer
spec:
  model: claude-sonnet-4-6
  system: You review code. Revision REV.
---
kind: Deployment
name: nightly
spec:
  agent: {ref: reviewer}
  environment: env
  initial_events:
    - type: user.message
      content: [{type: text, text: Review the open pull requests.}]
  rollout:
    checks:
      - message: Review PR 42
        contains: ["PR 42"]
"""
GATED_ADDRESSES = ("agent.reviewer", "deployment.nightly", "environment.env")
PIN_MOVE = r"^/v1/deployments/[^/]+$"


def gated_workspace(root: Path, backend: str | None = None) -> Workspace:
    ws = Workspace(root, backend=backend, agents=0, environments=0, credentials=0, deployments=0)
    (root / "manifests" / "gated.yaml").write_text(GATED.replace("REV", "1"))
    ws.fleet = Fleet(root / "manifests", GATED_ADDRESSES, {})
    return ws


def applied_twice(zygote: Zygote, ws: Workspace, url: str) -> None:
    """The gated deployment applied at version 1, then moved to version 2 by a second apply
    whose checks passed: a pin a rollback can move back."""
    assert ws.run(zygote, url, "apply").code == 0
    (ws.root / "manifests" / "gated.yaml").write_text(GATED.replace("REV", "2"))
    assert ws.run(zygote, url, "apply").code == 0
    assert live_pin(ws) == 2


def live_pin(ws: Workspace) -> int:
    (deployment,) = owned_objects(ws.db, PROJECT)["deployment.nightly"]
    return int(deployment["agent"]["version"])


def recorded(ws: Workspace) -> tuple[dict[str, int], list[int], list[tuple[int, str]]]:
    """The deployment's lockfile pins, held versions and pin history ``(version, by)``."""
    entry = ws.state().resources["deployment.nightly"]
    return (
        dict(entry.pins),
        [h.version for h in entry.held],
        [(r.version, r.by) for r in entry.pin_history],
    )


@pytest.mark.parametrize("when", ["after", pytest.param("before", marks=pytest.mark.slow)])
def test_a_rollback_killed_around_its_pin_move_is_never_undone_by_the_next_apply(
    zygote: Zygote, tmp_path: Path, when: str
) -> None:
    rollback_killed(zygote, tmp_path, when)


@pytest.mark.slow
@pytest.mark.tcp
@pytest.mark.parametrize("when", ["after", "before"])
def test_a_rollback_killed_around_its_pin_move_on_postgresql(
    zygote: Zygote, tmp_path: Path, pg_url: str, when: str
) -> None:
    rollback_killed(zygote, tmp_path, when, backend=pg_url)


def rollback_killed(zygote: Zygote, tmp_path: Path, when: str, backend: str | None = None) -> None:
    """``rollback`` SIGKILLed once the provider moved the pin back (``after``: the answer
    lost) or before its request reached it (``before``). The lockfile recorded nothing of the
    rollback, so the next apply moved the pin forward again to the version just rolled back
    from (without its checks: "putting back" the recorded pin) and nothing was held. Now the
    rollback's intent is on disk before its move is sent, and the next plan resolves it by
    the live pin: the rollback as it happened, or nothing."""
    ws = gated_workspace(tmp_path, backend)
    with provider(ws.db) as (url, tap):
        applied_twice(zygote, ws, url)
        holder: dict[str, int] = {}
        fired = threading.Event()

        def kill(method: str, path: str) -> bool:
            if method != "POST" or not re.match(PIN_MOVE, path) or fired.is_set():
                return False
            fired.set()
            os.kill(holder["pid"], signal.SIGKILL)
            return when == "before"  # dropped: the provider never moves the pin

        if when == "before":
            tap.before = kill
        else:
            tap.after = kill
        args = ["--project", PROJECT, "--provider-url", url, "rollback", "deployment.nightly",
                "--auto-approve"]  # fmt: skip
        run = zygote.start(args, cwd=ws.root, env=ws.env)
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL, (run.stdout, run.stderr)
        assert fired.is_set()
        tap.before = tap.after = None
        moved = when == "after"
        assert live_pin(ws) == (1 if moved else 2)

        # nothing to send either way; apply records what happened (and forgets the intent)
        plan = ws.run(zygote, url, "plan", "--detailed-exitcode")
        assert plan.code == 2, (plan.stdout, plan.stderr)
        assert plan.stdout.startswith("No changes."), plan.stdout
        assert ("agent.reviewer v2 held: rolled back on " in plan.stdout) == moved, plan.stdout
        drift = ws.run(zygote, url, "drift")
        assert drift.code == 0, ("the killed rollback is no pin drift", drift.stdout)
        heals(zygote, ws, url)
    assert live_pin(ws) == (1 if moved else 2), "the rollback stands, or never was"
    pins, held, history = recorded(ws)
    assert history[:2] == [(1, "apply"), (2, "checks")], history
    if moved:
        assert pins == {"agent.reviewer": 1} and held == [2]
        assert history[2:] == [(1, "rollback")], history
    else:
        assert pins == {"agent.reviewer": 2} and held == [] and len(history) == 2, history


# --- the lockfile deleted after a crash --------------------------------------------------------

STORE_CREATE = r"^/v1/memory_stores$"


def lose_the_lockfile(ws: Workspace) -> None:
    """What a person does with a lockfile they no longer trust: delete it and everything
    beside it (backup, journal, history, temp files); the dead run's lock stays."""
    for path in ws.lockfile.parent.iterdir():
        if path.name.startswith(ws.lockfile.name) and not path.name.endswith(".lock.lock"):
            path.unlink()


def test_a_store_created_before_a_kill_gets_its_seeds_after_the_lockfile_is_lost(
    zygote: Zygote, tmp_path: Path
) -> None:
    seeds_after_a_lost_state(zygote, tmp_path)


@pytest.mark.slow
@pytest.mark.tcp
def test_a_store_created_before_a_kill_gets_its_seeds_after_the_database_is_lost(
    zygote: Zygote, tmp_path: Path, postgres_server: object
) -> None:
    """The same with the state in PostgreSQL, lost as a database is: the next runs are
    pointed at a new, empty one."""
    from support.postgres import PostgresServer

    assert isinstance(postgres_server, PostgresServer)
    seeds_after_a_lost_state(zygote, tmp_path, postgres_server)


def seeds_after_a_lost_state(
    zygote: Zygote, tmp_path: Path, server: PostgresServer | None = None
) -> None:
    """Killed once a memory store was created, before any of its seeds was written; then
    the lockfile is deleted. The next plan found the store by its tags and, with no intent
    left to say its seeding was cut short, never wrote the manifest's seeds: "no changes"
    while the live store lacked every seed. Its memory history (append-only) shows no seed
    path was ever written, so none of them can have been deleted by an agent: the plan
    writes them, as it does for an intent."""
    from reconciler.provider.local import FaultConfig

    backend = server.new_database() if server is not None else None
    ws = Workspace(tmp_path, backend=backend, **{**SIZE, "memory_stores": 1})
    with provider(ws.db, FaultConfig(latency_ms=5)) as (url, tap):
        holder: dict[str, int] = {}
        fired = threading.Event()

        def kill(method: str, path: str) -> bool:
            if method == "POST" and re.match(STORE_CREATE, path) and not fired.is_set():
                fired.set()
                os.kill(holder["pid"], signal.SIGKILL)
            return False

        tap.after = kill
        run = ws.start(zygote, url, "--parallelism", "2")
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL, (run.stdout, run.stderr)
        tap.after = None
        if server is None:
            lose_the_lockfile(ws)
        else:
            ws.backend = server.new_database()
            ws.env["RECONCILER_BACKEND"] = ws.backend
        plan = ws.run(zygote, url, "plan")
        assert plan.code == 0, plan.stderr
        assert "memory_store.store-0" in plan.stdout
        assert "never written" in plan.stdout, plan.stdout
        heals(zygote, ws, url)


# --- a saved plan applied again after a kill --------------------------------------------------

SKILL_CREATE = r"^/v1/skills$"


def test_a_saved_plan_applied_again_after_a_kill_never_uploads_a_twin_skill(
    zygote: Zygote, tmp_path: Path
) -> None:
    """``apply plan.bin`` killed once a skill's upload was answered, then ``apply plan.bin``
    again (the CI job retried): every other create of the plan was refused as made since
    (its object carries this project's tags), but a skill carries none, and the state only
    held its pending intent, so the saved plan uploaded it a second time: two live skills
    with one slug. A skill create is now refused when the state moved on since the plan and
    holds an intent to upload it."""
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, tap):
        made = ws.run(zygote, url, "plan", "--out", "plan.bin")
        assert made.code == 0, made.stderr
        holder: dict[str, int] = {}
        fired = threading.Event()

        def kill(method: str, path: str) -> bool:
            if method == "POST" and re.match(SKILL_CREATE, path) and not fired.is_set():
                fired.set()
                os.kill(holder["pid"], signal.SIGKILL)
            return False

        tap.after = kill
        run = ws.start(zygote, url, "plan.bin")
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL, (run.stdout, run.stderr)
        tap.after = None
        again = ws.run(zygote, url, "apply", "plan.bin")
        assert again.code == 1, (again.stdout[-3000:], again.stderr[-3000:])
        assert "Traceback" not in again.stdout + again.stderr
        said = again.stdout + again.stderr
        assert re.search(r"skill\.skill-\d may have been uploaded since the plan", said), said
        heals(zygote, ws, url)


# --- an import killed before it tagged what it wrote manifests for -----------------------------

AGENT_UPDATE = r"^/v1/agents/[^/]+$"


def test_an_import_killed_before_tagging_never_leads_to_twins(
    zygote: Zygote, tmp_path: Path
) -> None:
    """``import --all-unmanaged`` writes the manifests, then tags each object. Killed in
    between, the next plan found manifests for agents no tag named and planned to create them
    all: apply made a twin of every hand-made agent (agent names are not unique; the
    environments were refused by name). The adoptions' intents are now on disk before the
    first tag is sent, and the plan refuses to create what an interrupted import was
    adopting, naming the command that finishes it."""
    import asyncio

    from reconciler.provider import embedded_client
    from reconciler.provider.local import FaultConfig

    ws = Workspace(tmp_path, agents=0, environments=0, credentials=0, deployments=0)
    ws.fleet = Fleet(ws.root / "manifests", ("agent.hand-0", "agent.hand-1", "agent.hand-2"), {})

    async def by_hand() -> None:
        ws.db.parent.mkdir(parents=True, exist_ok=True)
        async with embedded_client(ws.db) as client:
            for i in range(3):
                await client.agents.create(
                    {"name": f"hand-{i}", "model": "claude-sonnet-4-6", "system": f"Hand {i}."}
                )

    asyncio.run(by_hand())
    with provider(ws.db, FaultConfig(latency_ms=100)) as (url, tap):
        holder: dict[str, int] = {}
        fired = threading.Event()

        def kill(method: str, path: str) -> bool:
            if method == "POST" and re.match(AGENT_UPDATE, path) and not fired.is_set():
                fired.set()
                os.kill(holder["pid"], signal.SIGKILL)
                return True  # dropped: this tag never lands (others may be in flight)
            return False

        tap.before = kill
        args = ["--project", PROJECT, "--provider-url", url, "import", "--all-unmanaged",
                "--out", "manifests"]  # fmt: skip
        run = zygote.start(args, cwd=ws.root, env=ws.env)
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL, (run.stdout, run.stderr)
        tap.before = None
        assert list((ws.root / "manifests").glob("*.yaml")), "the manifests were written"

        applied = ws.run(zygote, url, "apply")
        said = applied.stdout + applied.stderr
        assert "Traceback" not in said
        names = [a["name"] for a in live_agents(ws)]
        assert sorted(names) == ["hand-0", "hand-1", "hand-2"], f"twins made: {names}"
        # (tags in flight at the kill may have landed since; the dropped one never does)
        untagged = untagged_agents(ws)
        assert untagged, "a tag was dropped: at least one agent is still untagged"
        for address, rid in untagged.items():
            assert f"reconciler import {address} {rid}" in said, said
        assert applied.code == 1, said
        for address, rid in untagged.items():
            done = ws.run(zygote, url, "import", address, rid)
            assert done.code == 0, (done.stdout, done.stderr)
        heals(zygote, ws, url)


def live_agents(ws: Workspace) -> list[dict[str, object]]:
    import json
    import sqlite3

    con = sqlite3.connect(f"file:{ws.db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT data FROM objects WHERE kind = 'agent' AND archived = 0")
        return [json.loads(data) for (data,) in rows.fetchall()]
    finally:
        con.close()


def untagged_agents(ws: Workspace) -> dict[str, str]:
    """agent.NAME -> id of each live agent that carries no tags."""
    return {
        f"agent.{agent['name']}": str(agent["id"])
        for agent in live_agents(ws)
        if not agent.get("metadata")
    }


# --- SIGTERM and Ctrl-C at exact points ---------------------------------------------------------


def signal_hook(
    get_pid: Callable[[], int | None], sig: int, method: str, pattern: str, nth: int
) -> tuple[Hook, threading.Event]:
    """A tap hook that sends ``sig`` to the apply at the ``nth`` matching request."""
    regex = re.compile(pattern)
    seen = [0]
    fired = threading.Event()

    def hook(m: str, p: str) -> bool:
        if m != method or not regex.search(p):
            return False
        seen[0] += 1
        pid = get_pid()
        if seen[0] == nth and pid is not None:
            fired.set()
            os.kill(pid, sig)
        return False

    return hook, fired


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("journal", [False, True])
@pytest.mark.parametrize(
    ("point", "nth"),
    [("fsync", 1), ("before-rename", 1), ("after-rename", 1), ("fsync", 2), ("after-rename", 3)],
)
def test_a_signal_inside_a_lockfile_write(
    zygote: Zygote, tmp_path: Path, sig: str, journal: bool, point: str, nth: int
) -> None:
    """SIGTERM or Ctrl-C while the lockfile is being written (the first write holds the
    intents; with the journal the later ones are appends, the rename the final fold): the
    write finishes, the apply stops as an interruption does, the next apply converges."""
    from reconciler.provider.local import FaultConfig

    ws = Workspace(tmp_path, journal=journal)
    with provider(ws.db, FaultConfig(latency_ms=10)) as (url, _tap):
        run = ws.run(
            zygote, url, "apply", "--parallelism", "4",
            crash={"point": point, "nth": nth, "signal": sig},
        )  # fmt: skip
        assert run.code in (0, 130 if sig == "SIGINT" else 143), (run.code, run.stderr[-3000:])
        interrupted_cleanly(ws, run, run.code)
        assert not list(ws.lockfile.parent.glob("reconciler.lock.tmp-*"))
        heals(zygote, ws, url)


def replaces(root: Path) -> None:
    """Every credential's key and two environments' type change: replaces."""
    vaults = root / "manifests" / "vaults.yaml"
    vaults.write_text(vaults.read_text().replace("example.com/mcp", "example.org/mcp"))
    path = root / "manifests" / "environments.yaml"
    docs = path.read_text().split("---\n")
    for i in (0, 2):
        docs[i] = (
            f"kind: Environment\nname: env-{i}\nspec:\n  description: environment {i}\n"
            f"  config:\n    type: self_hosted\n  metadata: {{team: t{i % 3}}}\n"
        )
    path.write_text("---\n".join(docs))


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM", "SIGINT"])
@pytest.mark.parametrize(
    ("method", "pattern", "nth"),
    [
        ("POST", r"/archive$", 1),  # the old environment archived, the new one not made
        ("DELETE", r"/credentials/", 1),  # the old credential deleted, the new one not made
        ("POST", CREATE_PATH, 1),  # the new one made, its answer lost
        ("POST", CREATE_PATH, 3),
    ],
)
def test_an_interrupted_replace(
    zygote: Zygote, tmp_path: Path, sig: str, method: str, pattern: str, nth: int
) -> None:
    """A replace (archive or delete the old object, then create the new) interrupted
    between its halves: the next apply finishes it, one live object per address."""
    from reconciler.provider.local import FaultConfig

    ws = Workspace(tmp_path, agents=4, environments=4, credentials=3, deployments=4)
    with provider(ws.db, FaultConfig(latency_ms=20)) as (url, tap):
        assert ws.run(zygote, url, "apply").code == 0
        replaces(ws.root)
        holder: dict[str, int] = {}
        tap.after, fired = signal_hook(
            lambda: holder.get("pid"), getattr(signal, sig), method, pattern, nth
        )
        run = ws.start(zygote, url, "--parallelism", "1")
        holder["pid"] = run.pid
        code = run.wait(120)
        tap.after = None
        assert fired.is_set()
        if sig == "SIGKILL":
            assert code == -signal.SIGKILL
        else:
            interrupted_cleanly(ws, run, 130 if sig == "SIGINT" else 143)
        heals(zygote, ws, url, ever_once=False)  # a replace makes a second object on purpose
        every = owned_objects(ws.db, PROJECT, archived=True)
        assert all(len(objs) <= 2 for objs in every.values()), {a: len(o) for a, o in every.items()}


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize(
    ("pattern", "nth", "change"),
    [
        (r"^/v1/skills$", 2, False),
        (r"^/v1/skills/[^/]+/versions$", 2, True),
        (r"^/v1/memory_stores/[^/]+/memories$", 2, False),
        (r"^/v1/vaults/[^/]+/credentials$", 1, False),
        (r"^/v1/agents/[^/]+$", 3, True),
        (r"^/v1/deployments/[^/]+$", 1, True),
    ],
)
def test_a_signal_at_the_provider(
    zygote: Zygote, tmp_path: Path, sig: str, pattern: str, nth: int, change: bool
) -> None:
    """SIGTERM or Ctrl-C as the provider answers an upload, a seed, a credential, an agent
    update or a pin move: exit 143 / 130, the lock released, the next apply converges."""
    from reconciler.provider.local import FaultConfig

    ws = Workspace(tmp_path)
    with provider(ws.db, FaultConfig(latency_ms=15)) as (url, tap):
        if change:
            assert ws.run(zygote, url, "apply").code == 0
            ws.fleet = write_fleet(ws.root / "manifests", **ws.size, tag=" Changed.")
        holder: dict[str, int] = {}
        tap.after, fired = signal_hook(
            lambda: holder.get("pid"), getattr(signal, sig), "POST", pattern, nth
        )
        run = ws.start(zygote, url, "--parallelism", "3")
        holder["pid"] = run.pid
        run.wait(120)
        tap.after = None
        assert fired.is_set()
        interrupted_cleanly(ws, run, 130 if sig == "SIGINT" else 143)
        heals(zygote, ws, url)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [4, 6, 12, 21])
def test_a_random_kill_then_the_lockfile_deleted(zygote: Zygote, tmp_path: Path, seed: int) -> None:
    """kill -9 at a random moment of an apply, then the lockfile (and everything beside
    it) deleted: the next apply heals from the ownership tags (skills by their slug, seeds
    by the stores' memory history) with no twin."""
    from reconciler.provider.local import FaultConfig

    rng = random.Random(seed)
    ws = Workspace(tmp_path)
    with provider(ws.db, FaultConfig(latency_ms=10)) as (url, tap):
        run = ws.start(zygote, url, "--parallelism", str(rng.choice([1, 4, 10])))
        target = len(tap.answers) + rng.randint(2, 40)
        while len(tap.answers) < target and run.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.random() * 0.02)
        run.kill()
        run.wait()
        lose_the_lockfile(ws)
        heals(zygote, ws, url)


# --- drift after a killed apply --------------------------------------------------------------


def test_drift_after_a_killed_apply_says_the_apply_died_not_only_outside_git(
    zygote: Zygote, tmp_path: Path
) -> None:
    """kill -9 of an apply after some agent updates landed, then ``drift`` (a cron): it said
    each agent was "edited outside git" and nothing else, though the edits were that apply's
    own. It now also says that apply died holding the lock, and that apply records them."""
    import json

    from reconciler.provider.local import FaultConfig

    ws = Workspace(tmp_path, agents=6, environments=2, credentials=1, deployments=2)
    with provider(ws.db, FaultConfig(latency_ms=10)) as (url, tap):
        assert ws.run(zygote, url, "apply").code == 0
        ws.fleet = write_fleet(ws.root / "manifests", **ws.size, tag=" Changed.")
        holder: dict[str, int] = {}
        tap.after, _fired = signal_hook(
            lambda: holder.get("pid"), signal.SIGKILL, "POST", AGENT_UPDATE, 3
        )
        run = ws.start(zygote, url, "--parallelism", "2")
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL
        tap.after = None
        drift = ws.run(zygote, url, "drift", "--format", "json")
        assert drift.code == 2, (drift.stdout, drift.stderr)
        (warning,) = json.loads(drift.stdout)["warnings"]
        assert warning.startswith("apply ") and f"(pid {run.pid} " in warning, warning
        assert "ended without releasing the lock" in warning, warning
        assert "`reconciler apply` records it" in warning, warning
        heals(zygote, ws, url)


# --- a gated pin move whose answer is lost -----------------------------------------------------


@pytest.mark.parametrize("extra", [(), ("--skip-checks",)])
def test_a_gated_pin_move_killed_after_it_landed_keeps_what_moved_it(
    zygote: Zygote, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    """An apply killed once the provider moved a gated pin (its checks passed, or
    ``--skip-checks`` in an emergency), before the lockfile said so: the next apply recorded
    the move as its own plain ``apply``, so the pin history lost that checks (or an
    emergency skip of them) moved it. The move's intent now says."""
    ws = gated_workspace(tmp_path)
    with provider(ws.db) as (url, tap):
        assert ws.run(zygote, url, "apply").code == 0
        (tmp_path / "manifests" / "gated.yaml").write_text(GATED.replace("REV", "2"))
        holder: dict[str, int] = {}
        tap.after, fired = signal_hook(
            lambda: holder.get("pid"), signal.SIGKILL, "POST", PIN_MOVE, 1
        )
        run = ws.start(zygote, url, *extra)
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL, (run.stdout, run.stderr)
        assert fired.is_set()
        tap.after = None
        assert live_pin(ws) == 2
        heals(zygote, ws, url)
    by = "skip-checks" if extra else "checks"
    pins, held, history = recorded(ws)
    assert pins == {"agent.reviewer": 2} and held == []
    assert history == [(1, "apply"), (2, by)], history


# --- a credential created, its record lost ------------------------------------------------------


def test_a_credential_whose_create_was_not_recorded_says_why_its_secret_is_sent_again(
    zygote: Zygote, tmp_path: Path
) -> None:
    """kill -9 once a credential's create was answered: the next plan finds it by its tags
    and sends its secret again (it cannot be read back). It said "the live object differs
    from the manifest", which nobody knows: the plan must be exact about what it knows."""
    ws = Workspace(tmp_path, agents=1, environments=1, credentials=2, deployments=0)
    with provider(ws.db) as (url, tap):
        holder: dict[str, int] = {}
        tap.after, fired = signal_hook(
            lambda: holder.get("pid"), signal.SIGKILL, "POST", r"/credentials$", 1
        )
        run = ws.start(zygote, url, "--parallelism", "1")
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL
        assert fired.is_set()
        tap.after = None
        plan = ws.run(zygote, url, "plan")
        assert plan.code == 0, plan.stderr
        block = plan.stdout.split("vault.keys.credential.c0  update", 1)[1].split("\n\n", 1)[0]
        assert "the live object differs from the manifest" not in block, block
        assert "cannot be read back" in block, block
        heals(zygote, ws, url)


def test_an_import_killed_while_writing_its_manifests_never_leads_to_twins(
    zygote: Zygote, tmp_path: Path
) -> None:
    """``import --all-unmanaged`` killed once its manifest file was written, before any tag
    was sent (and before ``run_adoptions`` recorded its intents, as it first did): the
    adoptions' intents are now on disk before the first manifest, so the next apply creates
    no twin of what that file declares."""
    import asyncio

    from reconciler.provider import embedded_client

    ws = Workspace(tmp_path, agents=0, environments=0, credentials=0, deployments=0)

    async def by_hand() -> None:
        ws.db.parent.mkdir(parents=True, exist_ok=True)
        async with embedded_client(ws.db) as client:
            for i in range(3):
                await client.agents.create(
                    {"name": f"hand-{i}", "model": "claude-sonnet-4-6", "system": f"Hand {i}."}
                )

    asyncio.run(by_hand())
    with provider(ws.db) as (url, _tap):
        args = ["--project", PROJECT, "--provider-url", url, "import", "--all-unmanaged",
                "--out", "manifests"]  # fmt: skip
        run = zygote.run(
            args, cwd=ws.root, env=ws.env, crash={"point": "manifest-written", "nth": 1}
        )
        assert run.code == -signal.SIGKILL, (run.code, run.stdout, run.stderr)
        written = sorted(p.name for p in (ws.root / "manifests").glob("*.yaml"))
        assert len(written) == 1, written
        untagged = untagged_agents(ws)
        applied = ws.run(zygote, url, "apply")
        said = applied.stdout + applied.stderr
        assert "Traceback" not in said
        names = sorted(a["name"] for a in live_agents(ws))
        assert names == ["hand-0", "hand-1", "hand-2"], f"twins made: {names}"
        declared = (ws.root / "manifests" / written[0]).read_text()
        finishing = [a for a in untagged if f"name: {a.split('.', 1)[1]}\n" in declared]
        for address in finishing:
            assert f"reconciler import {address} {untagged[address]}" in said, said
            done = ws.run(zygote, url, "import", address, untagged[address])
            assert done.code == 0, (done.stdout, done.stderr)
        ws.fleet = Fleet(ws.root / "manifests", tuple(sorted(finishing)), {})
        heals(zygote, ws, url)


# --- Ctrl-C as Terraform takes it: once finishes what is in flight, twice stops at once -------


@contextmanager
def _one_ctrl_c_during_the_creates(zygote: Zygote, ws: Workspace) -> Iterator[tuple[str, Run]]:
    """An apply at --parallelism 3 against a provider answering in 700 ms, sent one SIGINT
    when its fourth create arrives; yields the provider's URL (still serving) and the run."""
    from reconciler.provider.local import FaultConfig

    with provider(ws.db, FaultConfig(latency_ms=700)) as (url, tap):
        holder: dict[str, int] = {}
        tap.before, fired = signal_hook(
            lambda: holder.get("pid"), signal.SIGINT, "POST", CREATE_PATH, 4
        )
        run = ws.start(zygote, url, "--parallelism", "3")
        holder["pid"] = run.pid
        run.wait(120)
        tap.before = None
        assert fired.is_set()
        yield url, run


def test_one_ctrl_c_lets_the_creates_in_flight_finish_and_records_them(
    zygote: Zygote, tmp_path: Path
) -> None:
    """A first Ctrl-C starts no new action, lets the requests in flight finish and records
    them: nothing the provider made is left pending; the message counts what finished and
    what never started, and says a second Ctrl-C stops at once."""
    from reconciler.state import read_lockfile

    ws = Workspace(tmp_path)
    with _one_ctrl_c_during_the_creates(zygote, ws) as (url, run):
        interrupted_cleanly(ws, run, 130)
        err = run.stderr
        assert "Ctrl-C again" in err, err[-2000:]
        assert re.search(r"\d+ (?:was|were) never started", err), err[-2000:]
        assert "finished" in err, err[-2000:]
        lf = read_lockfile(ws.lockfile, project=PROJECT)
        assert not lf.pending, f"creates the provider finished left pending: {sorted(lf.pending)}"
        live = owned_objects(ws.db, PROJECT)
        assert live, "the creates in flight finished"
        unrecorded = {
            a: [o["id"] for o in objs]
            for a, objs in live.items()
            if a not in lf.resources or lf.resources[a].id != objs[0]["id"]
        }
        assert not unrecorded, f"live objects the lockfile does not record: {unrecorded}"
        heals(zygote, ws, url)


def test_an_apply_a_first_ctrl_c_stopped_early_never_says_apply_complete(
    zygote: Zygote, tmp_path: Path
) -> None:
    """After a first Ctrl-C the apply ends with changes never started: its summary on stdout
    (what a CI log or `| tee` keeps) said "Apply complete: 2 created, ..." all the same; it
    says the apply was interrupted and how many changes never started."""
    ws = Workspace(tmp_path)
    with _one_ctrl_c_during_the_creates(zygote, ws) as (url, run):
        assert run.code == 130, run.stderr[-2000:]
        assert "Apply complete" not in run.stdout, run.stdout[-2000:]
        summary = re.search(
            r"Apply interrupted: (\d+) created, .*; (\d+) never started\.", run.stdout
        )
        assert summary, run.stdout[-2000:]
        assert int(summary[1]) >= 1 and int(summary[2]) >= 1
        heals(zygote, ws, url)


def test_a_second_ctrl_c_stops_at_once_and_says_what_it_abandoned(
    zygote: Zygote, tmp_path: Path
) -> None:
    """A second Ctrl-C while the first waits for the requests in flight stops at once: exit
    130, a message that says the requests in flight were abandoned (their intents kept for
    the next apply to find), and the next apply converges."""
    from reconciler.provider.local import FaultConfig

    ws = Workspace(tmp_path)
    with provider(ws.db, FaultConfig(latency_ms=1500)) as (url, tap):
        holder: dict[str, int] = {}
        regex = re.compile(CREATE_PATH)
        seen = [0]
        fired = threading.Event()

        def twice(m: str, p: str) -> bool:
            if m == "POST" and regex.search(p):
                seen[0] += 1
                if seen[0] == 4:
                    fired.set()
                    os.kill(holder["pid"], signal.SIGINT)
                    time.sleep(0.3)
                    os.kill(holder["pid"], signal.SIGINT)
            return False

        tap.before = twice
        run = ws.start(zygote, url, "--parallelism", "3")
        holder["pid"] = run.pid
        run.wait(120)
        tap.before = None
        assert fired.is_set()
        interrupted_cleanly(ws, run, 130)
        assert "abandoned" in run.stderr, run.stderr[-2000:]
        assert "Every action that finished is recorded" not in run.stderr
        heals(zygote, ws, url)
