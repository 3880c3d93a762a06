"""Crash matrix: ``kill -9`` of apply at many points; the lockfile survives, the next run heals.

Each case starts ``reconciler apply --auto-approve`` as its own process against the local
provider (served over loopback TCP by this test process, behind a ``Tap``) and SIGKILLs it at
one point:

* before a create reaches the provider (its intent is already in the lockfile's ``pending``);
* after the provider executed a create, before the answer arrives and the lockfile is written;
* after the provider executed an agent update whose answer never arrived;
* in the middle of a lockfile write: half the temp file written, temp written but not
  fsynced, just before and just after the rename (the process kills itself there);
* while archiving (a ``--prune`` run), before and after the provider archived;
* after a memory store's create, before its seed memories were written, and between two
  seeds (the next run writes the absent seeds, never over a memory an agent wrote);
* around a skill's upload, as a create and as a new version (a skill carries no tags: the
  next run finds an upload whose record was lost by its slug and its files, and never
  uploads a twin skill or the same version twice);
* at random moments, repeatedly, in a large apply (issue #4).

After every kill: the lockfile (and its backup) parses; the apply lock of the dead process is
taken over by the next run, which exits 0 and converges: every address live exactly once and
never created twice, recorded in the lockfile with the live id, no owned object the manifests
do not declare, nothing pending, ``plan --detailed-exitcode`` and ``drift`` exit 0. Skills
are counted by slug: one live skill each, no two versions holding the same files.

A few representative kills run by default; the whole matrix is ``slow``.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.reliability import (
    ARCHIVE_PATH,
    CREATE_PATH,
    SEED_PATH,
    SKILL_PATH,
    SKILL_VERSION_PATH,
    Fleet,
    FleetWorkspace,
    Run,
    Zygote,
    assert_converged,
    kill_hook,
    owned_objects,
    provider,
    shared_zygote,
    store_memories,
    write_fleet,
)

PROJECT = "crash"
SIZE = {
    "agents": 16,
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
    """A manifests folder, a lockfile, and the provider database, in one temp folder."""

    def __init__(self, root: Path, **size: int) -> None:
        super().__init__(root, size or SIZE)

    def rewrite(self, **size: int) -> None:
        self.size = size
        self.fleet = write_fleet(self.root / "manifests", **size)

    def args(self, url: str, *extra: str) -> list[str]:
        # each provider() serves the same database on a new port: another origin, on purpose
        return [
            "--project", PROJECT, "--provider-url", url,
            "apply", "--auto-approve", "--allow-origin-change", *extra,
        ]  # fmt: skip


def killed(run: Run) -> None:
    code = run.wait(120)
    assert code == -signal.SIGKILL, (
        f"the apply was not killed (exit {code}); the kill point was never reached.\n"
        f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-2000:]}"
    )


def survives(ws: Workspace) -> None:
    """Right after a kill: the lockfile and its backup parse."""
    from reconciler.state import backup_path, read_lockfile

    read_lockfile(ws.lockfile, project=PROJECT)
    if backup_path(ws.lockfile).exists():
        read_lockfile(backup_path(ws.lockfile), project=PROJECT)


def heals(zygote: Zygote, ws: Workspace, url: str, *extra: str) -> Run:
    """The next apply takes the dead process's lock over, exits 0, and converges."""
    from reconciler.state import read_lock

    stale = read_lock(ws.lockfile)
    run = zygote.run(ws.args(url, *extra), cwd=ws.root, env=ws.env)
    assert run.code == 0, (run.stdout[-3000:], run.stderr[-3000:])
    assert "Traceback" not in run.stdout + run.stderr
    if stale is not None:
        assert f"took over stale lock apply {stale.id}" in run.stderr, run.stderr
    assert read_lock(ws.lockfile) is None, "the lock is released at the end"
    assert_converged(
        ws.lockfile,
        ws.db,
        PROJECT,
        ws.fleet.addresses,
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
    assert drift.code == 0, ("a healed lockfile shows no drift", drift.stdout[-3000:])
    return run


def lock_of_dead_process(ws: Workspace, pid: int) -> None:
    from reconciler.state import read_lock

    info = read_lock(ws.lockfile)
    assert info is not None and info.pid == pid, "a SIGKILLed apply leaves its lock behind"


def _pending(ws: Workspace) -> set[str]:
    from reconciler.state import read_lockfile

    return set(read_lockfile(ws.lockfile, project=PROJECT).pending)


# --- kills from the provider side: exactly between two steps ----------------------------------


def provider_kill(
    zygote: Zygote,
    ws: Workspace,
    *,
    method: str,
    pattern: str,
    nth: int,
    when: str,
    extra: tuple[str, ...] = (),
    latency_ms: int = 0,
    between: Callable[[str], None] | None = None,
) -> None:
    """Run apply; SIGKILL it at the ``nth`` request matching ``method pattern``: ``before``
    the provider runs it (the request is dropped) or ``after`` it ran (the answer is lost).
    ``between(url)`` runs after the kill, before the run that heals."""
    from reconciler.provider.local import FaultConfig

    faults = FaultConfig(latency_ms=latency_ms) if latency_ms else None
    holder: dict[str, int] = {}
    fired = threading.Event()
    with provider(ws.db, faults) as (url, tap):
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
        survives(ws)
        lock_of_dead_process(ws, run.pid)
        if when == "before" and method == "POST" and pattern == CREATE_PATH:
            assert _pending(ws), "the intent of a create is recorded before it is sent"
        if between is not None:
            between(url)
        heals(zygote, ws, url, *extra)


def test_kill_after_a_create_was_executed_before_the_lockfile_knew(
    zygote: Zygote, tmp_path: Path
) -> None:
    """The classic twin maker: the object exists, its id is nowhere in the lockfile."""
    ws = Workspace(tmp_path)
    provider_kill(zygote, ws, method="POST", pattern=CREATE_PATH, nth=7, when="after")


def test_kill_in_the_middle_of_a_lockfile_write(zygote: Zygote, tmp_path: Path) -> None:
    """Half of the temp file is written when the process dies: the lockfile stays whole."""
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, _tap):
        # (grouped writes: at least 3 for this fleet; the 2nd is in the middle of the apply)
        run = zygote.start(ws.args(url), cwd=ws.root, env=ws.env, crash={"point": "torn", "nth": 2})
        killed(run)
        survives(ws)
        assert list(ws.lockfile.parent.glob("reconciler.lock.tmp-*")), "the torn temp file"
        heals(zygote, ws, url)


STORE_PATH = r"^/v1/memory_stores$"
#: one memory store with two seeds: its seed creates are the 1st and 2nd ``SEED_PATH``
ONE_STORE = {**SIZE, "memory_stores": 1}


def plan_writes_the_seeds(zygote: Zygote, ws: Workspace, url: str) -> None:
    """Before the healing run: the plan shows the seeds it will write, as an update."""
    plan = zygote.run(
        ["--project", PROJECT, "--provider-url", url, "plan", "--detailed-exitcode",
         "--allow-origin-change"],
        cwd=ws.root,
        env=ws.env,
    )  # fmt: skip
    assert plan.code == 2, (plan.stdout[-3000:], plan.stderr[-2000:])
    assert "memory_store.store-0" in plan.stdout
    assert "its create was interrupted before its seed memories were all written" in plan.stdout, (
        plan.stdout
    )


def test_kill_after_a_store_create_before_its_seeds(zygote: Zygote, tmp_path: Path) -> None:
    """The store was created, the process died before any seed was written: the next run
    finds the store by its tags (no twin) and writes its seeds (issue #15)."""
    ws = Workspace(tmp_path, **ONE_STORE)

    def unseeded(url: str) -> None:
        (store,) = owned_objects(ws.db, PROJECT)["memory_store.store-0"]
        assert store_memories(ws.db, store["id"]) == {}, "no seed was written before the kill"
        plan_writes_the_seeds(zygote, ws, url)

    provider_kill(
        zygote, ws, method="POST", pattern=STORE_PATH, nth=1, when="after", between=unseeded
    )


def test_kill_after_a_skill_upload_before_the_lockfile_knew(zygote: Zygote, tmp_path: Path) -> None:
    """A skill's create answered, its id nowhere in the lockfile: its intent is pending, so
    the next run finds it by its slug (it has no tags) and records it, never a twin."""
    ws = Workspace(tmp_path)
    provider_kill(zygote, ws, method="POST", pattern=SKILL_PATH, nth=1, when="after")


def test_kill_while_archiving(zygote: Zygote, tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, _tap):
        heals(zygote, ws, url)
    ws.rewrite(agents=6, environments=4, credentials=1, deployments=2, memory_stores=1)
    provider_kill(
        zygote, ws, method="POST", pattern=ARCHIVE_PATH, nth=4, when="after", extra=("--prune",)
    )


# --- the matrix -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("when", "nth"), [("before", 1), ("before", 11), ("after", 2), ("after", 24)]
)
def test_kill_around_a_create(zygote: Zygote, tmp_path: Path, when: str, nth: int) -> None:
    ws = Workspace(tmp_path)
    provider_kill(zygote, ws, method="POST", pattern=CREATE_PATH, nth=nth, when=when)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_between_two_seeds_never_overwrites_an_agents_memory(
    zygote: Zygote, tmp_path: Path, when: str
) -> None:
    """Killed at the second seed (``before``: it never reached the provider; ``after``: its
    answer was lost); meanwhile an agent rewrote the first seed. The next run writes what
    is absent and leaves the agent's memory as the agent wrote it."""
    import asyncio

    from reconciler.provider import embedded_client

    ws = Workspace(tmp_path, **ONE_STORE)
    first, second = ws.fleet.seeds["memory_store.store-0"]

    def agent_rewrites_the_first_seed(url: str) -> None:
        (store,) = owned_objects(ws.db, PROJECT)["memory_store.store-0"]
        held = store_memories(ws.db, store["id"])
        assert first in held and (second in held) == (when == "after"), held
        if when == "before":
            plan_writes_the_seeds(zygote, ws, url)

        async def rewrite() -> None:
            async with embedded_client(ws.db) as client:
                memory = await client.memory_stores.memories.find(store["id"], first)
                assert memory is not None
                await client.memory_stores.memories.update(
                    store["id"], memory["id"], content="Rewritten by an agent."
                )

        asyncio.run(rewrite())

    seeds = ws.fleet.seeds
    ws.fleet = Fleet(ws.fleet.root, ws.fleet.addresses, ws.fleet.env, {})  # checked below
    provider_kill(
        zygote,
        ws,
        method="POST",
        pattern=SEED_PATH,
        nth=2,
        when=when,
        between=agent_rewrites_the_first_seed,
    )
    (store,) = owned_objects(ws.db, PROJECT)["memory_store.store-0"]
    assert store_memories(ws.db, store["id"]) == {
        first: ("Rewritten by an agent.", 1),
        second: (seeds["memory_store.store-0"][second], 1),
    }


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_around_a_store_create(zygote: Zygote, tmp_path: Path, when: str) -> None:
    ws = Workspace(tmp_path, **{**SIZE, "memory_stores": 3})
    provider_kill(zygote, ws, method="POST", pattern=STORE_PATH, nth=2, when=when)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("upload", "when"),
    [("create", "before"), ("create", "after"), ("version", "before"), ("version", "after")],
)
def test_kill_around_a_skill_upload(zygote: Zygote, tmp_path: Path, upload: str, when: str) -> None:
    """A skill's create or new version killed before it reached the provider, or after it
    ran (the answer lost). The next run uploads what never arrived, and records what did
    (found by its slug, or its latest version found to hold the manifest's files): one
    skill per slug, no version uploaded twice. A new version changes every agent too."""
    ws = Workspace(tmp_path, **{**SIZE, "skills": 3})
    pattern = SKILL_PATH
    if upload == "version":
        with provider(ws.db) as (url, _tap):
            heals(zygote, ws, url)
        ws.fleet = write_fleet(ws.root / "manifests", **ws.size, tag=" Changed.")
        pattern = SKILL_VERSION_PATH
    provider_kill(zygote, ws, method="POST", pattern=pattern, nth=2, when=when)


@pytest.mark.slow
@pytest.mark.parametrize("nth", [1, 9])
def test_kill_after_the_intent_before_the_create_leaves(
    zygote: Zygote, tmp_path: Path, nth: int
) -> None:
    """The process dies between recording a create's intent and sending it."""
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, tap):
        run = zygote.start(
            ws.args(url),
            cwd=ws.root,
            env=ws.env,
            crash={"point": "before-send", "nth": nth, "pattern": CREATE_PATH},
        )
        killed(run)
        survives(ws)
        assert _pending(ws), "the intent is recorded before the create is sent"
        assert tap.count("POST", CREATE_PATH) <= nth - 1  # (others may be in flight)
        heals(zygote, ws, url)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vaults", "credentials", "deployments"])
def test_kill_after_the_first_create_of_each_kind(
    zygote: Zygote, tmp_path: Path, kind: str
) -> None:
    ws = Workspace(tmp_path)
    pattern = {
        "agents": r"^/v1/agents$",
        "environments": r"^/v1/environments$",
        "vaults": r"^/v1/vaults$",
        "credentials": r"^/v1/vaults/[^/]+/credentials$",
        "deployments": r"^/v1/deployments$",
    }[kind]
    provider_kill(zygote, ws, method="POST", pattern=pattern, nth=1, when="after")


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_around_an_agent_update(zygote: Zygote, tmp_path: Path, when: str) -> None:
    """An update's answer lost: the next run must not update again (the version stays +1)."""
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, _tap):
        heals(zygote, ws, url)
    ws.fleet = write_fleet(ws.root / "manifests", **ws.size, tag=" Changed.")
    provider_kill(zygote, ws, method="POST", pattern=r"^/v1/agents/agent_[^/]+$", nth=3, when=when)
    for address, objs in owned_objects(ws.db, PROJECT).items():
        if address.startswith("agent."):
            assert objs[0]["version"] == 2, (address, objs[0]["version"])


@pytest.mark.slow
@pytest.mark.parametrize(("when", "nth"), [("before", 1), ("after", 1), ("before", 3)])
def test_kill_around_an_archive(zygote: Zygote, tmp_path: Path, when: str, nth: int) -> None:
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, _tap):
        heals(zygote, ws, url)
    ws.rewrite(agents=6, environments=3, credentials=1, deployments=2, memory_stores=1)
    provider_kill(
        zygote, ws, method="POST", pattern=ARCHIVE_PATH, nth=nth, when=when, extra=("--prune",)
    )


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_around_the_archive_of_a_vault_with_credentials(
    zygote: Zygote, tmp_path: Path, when: str
) -> None:
    """The vault leaves the manifests with its credentials: their entries go with it."""
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, _tap):
        heals(zygote, ws, url)
    ws.rewrite(agents=6, environments=3, credentials=0, deployments=2, memory_stores=1)
    provider_kill(
        zygote,
        ws,
        method="POST",
        pattern=r"^/v1/vaults/[^/]+/archive$",
        nth=1,
        when=when,
        extra=("--prune",),
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "nth", "parallelism"),
    # Apply writes the intents of every create whose parent is known in one write, then the
    # outcomes as they arrive, grouped (an outcome waits up to ~20 ms for company): for
    # this fleet 6 or more writes one action at a time, 3 or more at the default parallelism.
    # The first write is the intents' (nothing sent yet); the later ones are mid-apply.
    [
        ("torn", 1, 1),
        ("torn", 3, 1),
        ("fsync", 2, 1),
        ("fsync", 4, 1),
        ("before-rename", 2, 1),
        ("before-rename", 4, 1),
        ("after-rename", 1, 1),
        ("after-rename", 3, 1),
        ("torn", 2, 10),
        ("fsync", 2, 10),
        ("before-rename", 2, 10),
        ("after-rename", 2, 10),
    ],
)
def test_kill_during_a_lockfile_write(
    zygote: Zygote, tmp_path: Path, point: str, nth: int, parallelism: int
) -> None:
    ws = Workspace(tmp_path)
    with provider(ws.db) as (url, _tap):
        run = zygote.start(
            ws.args(url, "--parallelism", str(parallelism)),
            cwd=ws.root,
            env=ws.env,
            crash={"point": point, "nth": nth},
        )
        killed(run)
        survives(ws)
        if point in ("torn", "fsync", "before-rename"):
            assert list(ws.lockfile.parent.glob("reconciler.lock.tmp-*"))
        heals(zygote, ws, url)


@pytest.mark.slow
def test_kill_while_the_lockfile_temp_file_exists_by_polling(
    zygote: Zygote, tmp_path: Path
) -> None:
    """An outside observer's kill -9: poll for ``reconciler.lock.tmp-*`` and kill at once."""
    ws = Workspace(
        tmp_path, agents=40, environments=6, credentials=4, deployments=6, memory_stores=4
    )
    caught = 0
    with provider(ws.db) as (url, _tap):
        for _attempt in range(6):
            run = zygote.start(ws.args(url), cwd=ws.root, env=ws.env)
            deadline = time.monotonic() + 60
            spins = 0
            while time.monotonic() < deadline:
                try:
                    names = os.listdir(ws.lockfile.parent)
                except FileNotFoundError:
                    names = []
                if any(n.startswith("reconciler.lock.tmp-") for n in names):
                    run.kill()
                    caught += 1
                    break
                spins += 1
                if spins % 500 == 0 and run.poll() is not None:
                    break
            code = run.wait()
            survives(ws)
            if code == 0:
                break  # finished before a temp file was seen
        heals(zygote, ws, url)
    assert caught >= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_repeated_random_kills_in_a_large_apply(zygote: Zygote, tmp_path: Path, seed: int) -> None:
    """Issue #4: kill -9 at random points in a large apply, again and again; every time the
    lockfile parses; then one run converges with no duplicates."""
    random_kills(
        zygote,
        tmp_path,
        seed=seed,
        rounds=8,
        size={
            "agents": 60,
            "environments": 8,
            "credentials": 6,
            "deployments": 10,
            "memory_stores": 6,
            "skills": 4,
        },
    )


def random_kills(
    zygote: Zygote, tmp_path: Path, *, seed: int, rounds: int, size: dict[str, int]
) -> None:
    from reconciler.provider.local import FaultConfig

    rng = random.Random(seed)
    ws = Workspace(tmp_path, **size)
    with provider(ws.db, FaultConfig(latency_ms=15)) as (url, tap):
        for _ in range(rounds):
            base = len(tap.answers)
            target = base + rng.randint(3, 45)
            run = zygote.start(
                ws.args(url, "--parallelism", str(rng.choice([1, 4, 10]))), cwd=ws.root, env=ws.env
            )
            deadline = time.monotonic() + 90
            while len(tap.answers) < target and time.monotonic() < deadline:
                if run.poll() is not None:
                    break
                time.sleep(0.002)
            time.sleep(rng.random() * 0.03)
            run.kill()
            code = run.wait()
            survives(ws)
            if code == 0:
                break  # it finished first: nothing left to interrupt
        heals(zygote, ws, url)
