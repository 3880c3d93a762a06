"""Races: concurrent applies on one lockfile, and the live system changing under a plan.

* Two and four ``reconciler apply --auto-approve`` processes started together on one lockfile:
  exactly one proceeds; every other exits 1 at once, naming the holder (its pid); nothing is
  created twice. The provider holds the winner's first create until every loser has exited,
  so the applies really overlap however the machine schedules them.
* The same after a ``kill -9`` left a stale lock: exactly one of the racers takes it over.
* An out-of-band edit between ``plan --out`` and ``apply PLANFILE``: exactly the actions whose
  resource changed are refused (and named), the others are applied, exit 1; a fresh plan and
  apply then converge.
* An out-of-band edit between the refresh of an apply and its update of that agent: the
  version precondition refuses the update instead of overwriting the console edit.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.reliability import (
    BETA,
    CREATE_PATH,
    Zygote,
    assert_converged,
    clean_env,
    owned_objects,
    provider,
    shared_zygote,
    write_fleet,
)

PROJECT = "races"
SIZE = {"agents": 10, "environments": 3, "credentials": 2, "deployments": 3}
HEADERS = {"anthropic-beta": BETA, "anthropic-version": "2026-10-21", "x-api-key": "test"}


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


class HoldFirstCreate:
    """Middleware: the first create waits (without blocking the server) until released."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.released = threading.Event()
        self.held = threading.Event()
        self._first = True

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and re.search(CREATE_PATH, scope["path"])
            and self._first
        ):
            self._first = False
            self.held.set()
            deadline = time.monotonic() + 60
            while not self.released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        await self.app(scope, receive, send)


def _apply_args(url: str) -> list[str]:
    return ["--project", PROJECT, "--provider-url", url, "apply", "--auto-approve"]


def race(zygote: Zygote, work: Path, n: int, *, stale_pid: int | None = None) -> None:
    fleet = write_fleet(work / "manifests", **SIZE)
    env = clean_env(**fleet.env)
    db = work / ".reconciler" / "provider.db"
    gates: list[HoldFirstCreate] = []

    def wrap(app: Any) -> Any:
        gates.append(HoldFirstCreate(app))
        return gates[0]

    with provider(db, wrap=wrap) as (url, tap):
        runs = [zygote.start(_apply_args(url), cwd=work, env=env) for _ in range(n)]
        # every loser must end while the winner is parked on its first create
        assert gates[0].held.wait(60), [r.stderr for r in runs]
        deadline = time.monotonic() + 60
        while sum(r.poll() is not None for r in runs) < n - 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        ended = [r for r in runs if r.code is not None]
        gates[0].released.set()
        for r in runs:
            r.wait(120)
    codes = sorted(r.code for r in runs)  # type: ignore[type-var]
    assert codes == [0] + [1] * (n - 1), [(r.code, r.stderr[-500:]) for r in runs]
    assert len(ended) == n - 1, "losers must not wait for the winner"
    winner = next(r for r in runs if r.code == 0)
    for loser in (r for r in runs if r.code == 1):
        assert loser.stderr.startswith("Error: "), loser.stderr
        assert "is locked by apply" in loser.stderr, loser.stderr
        assert f"pid {winner.pid} " in loser.stderr, (winner.pid, loser.stderr)
        assert "reconciler unlock" in loser.stderr
        assert "Traceback" not in loser.stderr
        assert loser.stdout == "", "a refused apply shows no plan"
        assert loser.ended is not None and loser.ended - loser.started < 15
    if stale_pid is not None:
        assert "took over stale lock" in winner.stderr, winner.stderr
        assert f"process {stale_pid} is gone" in winner.stderr, winner.stderr
    # the losers sent nothing: every create came from the winner, once per resource
    creates = tap.count("POST", CREATE_PATH)
    assert creates == len(fleet.addresses), creates
    assert_converged(work / "state/reconciler.lock", db, PROJECT, fleet.addresses)


def test_two_concurrent_applies_exactly_one_proceeds(zygote: Zygote, tmp_path: Path) -> None:
    race(zygote, tmp_path, 2)


def test_four_concurrent_applies_exactly_one_proceeds(zygote: Zygote, tmp_path: Path) -> None:
    race(zygote, tmp_path, 4)


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 4])
def test_racers_after_a_kill_9_exactly_one_takes_the_stale_lock_over(
    zygote: Zygote, tmp_path: Path, n: int
) -> None:
    """A SIGKILLed apply left its lock; n applies race to take it over; one wins."""
    from reconciler.state import read_lock

    fleet = write_fleet(tmp_path / "manifests", **SIZE)
    env = clean_env(**fleet.env)
    with provider(tmp_path / "first.db") as (url, tap):
        parked = threading.Event()

        def park(method: str, path: str) -> bool:
            parked.set()
            return False

        tap.before = park
        run = zygote.start(_apply_args(url), cwd=tmp_path, env=env)
        assert parked.wait(60)
        run.kill()
        assert run.wait() == -signal.SIGKILL
    dead = read_lock(tmp_path / "state/reconciler.lock")
    assert dead is not None and dead.pid == run.pid
    race(zygote, tmp_path, n, stale_pid=run.pid)


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 4])
def test_repeated_races_never_let_two_through(zygote: Zygote, tmp_path: Path, n: int) -> None:
    for i in range(4):
        race(zygote, tmp_path / f"round{i}", n)


# --- out-of-band edits ------------------------------------------------------------------------


def _oob(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An edit in the console: straight to the provider, no reconciler involved."""
    r = httpx.request(method, url + path, json=body, headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def test_out_of_band_edits_between_plan_out_and_apply_planfile(
    zygote: Zygote, tmp_path: Path
) -> None:
    fleet = write_fleet(tmp_path / "manifests", **SIZE)
    env = clean_env(**fleet.env)
    db = tmp_path / ".reconciler" / "provider.db"
    lockfile = tmp_path / "state/reconciler.lock"
    with provider(db) as (url, _tap):
        first = zygote.run(_apply_args(url), cwd=tmp_path, env=env)
        assert first.code == 0, first.stderr
        # every agent and environment changes in git...
        fleet = write_fleet(tmp_path / "manifests", **SIZE, tag=" Reviewed.")
        (tmp_path / "manifests/environments.yaml").write_text(
            (tmp_path / "manifests/environments.yaml")
            .read_text()
            .replace("description: environment", "description: the environment")
        )
        saved = zygote.run(
            ["--project", PROJECT, "--provider-url", url, "plan", "--out", "plan.json"],
            cwd=tmp_path,
            env=env,
        )
        assert saved.code == 0, saved.stderr
        before = json.loads(lockfile.read_text())["resources"]
        ids = {a: e["id"] for a, e in before.items()}
        # ...and, before the saved plan is applied, someone edits the live system
        live = _oob(url, "GET", f"/v1/agents/{ids['agent.agent-00']}")
        _oob(
            url,
            "POST",
            f"/v1/agents/{ids['agent.agent-00']}",
            {"version": live["version"], "description": "edited in the console"},
        )
        _oob(url, "POST", f"/v1/agents/{ids['agent.agent-01']}/archive")
        _oob(
            url,
            "POST",
            f"/v1/environments/{ids['environment.env-0']}",
            {"metadata": {"team": "console"}},
        )
        changed = {"agent.agent-00", "agent.agent-01", "environment.env-0"}

        result = zygote.run(
            ["--project", PROJECT, "--provider-url", url, "apply", "plan.json"],
            cwd=tmp_path,
            env=env,
        )
        assert result.code == 1, (result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        refused = set(re.findall(r"refused: (\S+) ", result.stdout))
        assert refused == changed, result.stdout
        assert "agent.agent-00 changed since the plan (version 1 -> 2)" in result.stdout
        assert "agent.agent-01" in result.stdout and "archived since the plan" in result.stdout
        after = json.loads(lockfile.read_text())["resources"]
        for address in changed:
            assert after[address] == before[address], f"{address} was recorded though refused"
        # everything else was applied: a new version per agent, new environment specs
        for address in fleet.addresses:
            if address in changed:
                continue
            if address.startswith("agent."):
                assert after[address]["version"] == 2, address
            if address.startswith("environment."):
                assert after[address]["spec_digest"] != before[address]["spec_digest"], address
        # the console edits were not overwritten
        console = _oob(url, "GET", f"/v1/agents/{ids['agent.agent-00']}")
        assert console["description"] == "edited in the console"
        assert console["version"] == 2
        # a fresh plan takes the edits into account and converges
        again = zygote.run(_apply_args(url), cwd=tmp_path, env=env)
        assert again.code == 0, (again.stdout, again.stderr)
    assert_converged(lockfile, db, PROJECT, fleet.addresses, ever_once=False)
    # the embedded provider over the server's database: another origin, on purpose
    args = ["--project", PROJECT, "plan", "--detailed-exitcode", "--allow-origin-change"]
    clean = zygote.run(args, cwd=tmp_path, env=env)
    assert clean.code == 0, clean.stdout


class EditFirst:
    """Middleware: just before the provider sees the apply's update of ``agent_id``, a
    console user updates that agent (through the same provider, on another connection)."""

    def __init__(self, app: Any, url: list[str], agent_id: list[str]) -> None:
        self.app, self.url, self.agent_id = app, url, agent_id
        self.fired = False

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            not self.fired
            and self.agent_id
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == f"/v1/agents/{self.agent_id[0]}"
            and not any(k == b"x-console" for k, _ in scope.get("headers", []))
        ):
            self.fired = True

            def console_edit() -> None:
                path = f"/v1/agents/{self.agent_id[0]}"
                live = httpx.get(self.url[0] + path, headers=HEADERS, timeout=30).json()
                r = httpx.post(
                    self.url[0] + path,
                    json={"version": live["version"], "description": "console wins"},
                    headers={**HEADERS, "x-console": "1"},
                    timeout=30,
                )
                assert r.status_code == 200, r.text

            await asyncio.to_thread(console_edit)
        await self.app(scope, receive, send)


def test_out_of_band_edit_during_apply_fails_that_update_only(
    zygote: Zygote, tmp_path: Path
) -> None:
    fleet = write_fleet(tmp_path / "manifests", **SIZE)
    env = clean_env(**fleet.env)
    db = tmp_path / ".reconciler" / "provider.db"
    lockfile = tmp_path / "state/reconciler.lock"
    url_box: list[str] = []
    agent_box: list[str] = []
    editors: list[EditFirst] = []

    def wrap(app: Any) -> Any:
        editors.append(EditFirst(app, url_box, agent_box))
        return editors[0]

    with provider(db, wrap=wrap) as (url, _tap):
        url_box.append(url)
        assert zygote.run(_apply_args(url), cwd=tmp_path, env=env).code == 0
        target = json.loads(lockfile.read_text())["resources"]["agent.agent-03"]["id"]
        agent_box.append(target)
        fleet = write_fleet(tmp_path / "manifests", **SIZE, tag=" Again.")
        result = zygote.run(_apply_args(url), cwd=tmp_path, env=env)
        assert editors[0].fired
        assert result.code == 1, (result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        failed = result.stdout.split("failed:", 1)[-1]
        assert "agent.agent-03" in failed, result.stdout
        live = owned_objects(db, PROJECT)["agent.agent-03"][0]
        assert live["description"] == "console wins", "the console edit was overwritten"
        assert live["version"] == 2
        recorded = json.loads(lockfile.read_text())["resources"]
        assert recorded["agent.agent-03"]["version"] == 1, "a refused update is not recorded"
        others = [a for a in fleet.addresses if a.startswith("agent.") and a != "agent.agent-03"]
        assert all(recorded[a]["version"] == 2 for a in others)
        # the next run plans the update against the console's version and converges
        again = zygote.run(_apply_args(url), cwd=tmp_path, env=env)
        assert again.code == 0, (again.stdout, again.stderr)
        assert "agent.agent-03" in again.stdout
    assert_converged(lockfile, db, PROJECT, fleet.addresses)
    assert owned_objects(db, PROJECT)["agent.agent-03"][0]["version"] == 3
