"""Gated rollouts over loopback TCP: a check that times out, and ``kill -9`` during checks.

The local provider is served by this test process (``support.reliability.provider``), behind
a ``Tap`` that can SIGKILL the apply at an exact request. The apply runs as its own process
(forked from the shared zygote) for the kill, and in-process (``CliRunner``) otherwise.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, make_workdir, ok
from support.reliability import Zygote, clean_env, kill_hook, provider, shared_zygote

from reconciler.provider import embedded_client

DB = Path(".reconciler/provider.db")
MANIFEST = """\
kind: Agent
name: reviewer
spec:
  model: claude-sonnet-4-6
  system: You review code. Revision 0.
---
kind: Environment
name: env
spec: {}
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
"""
PASSING = '      - message: Review PR 42\n        contains: ["PR 42"]\n'
EVENTS_PATH = r"^/v1/sessions/[^/]+/events$"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch, manifests=False)
    (root / "manifests").mkdir()
    return root


def write(*checks: str, revision: int = 0) -> None:
    text = MANIFEST.replace("Revision 0.", f"Revision {revision}.")
    Path("manifests/all.yaml").write_text(text + "".join(checks))


def lock() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path("state/reconciler.lock").read_text())
    return data


def deployment() -> dict[str, Any]:
    data: dict[str, Any] = lock()["resources"]["deployment.nightly"]
    return data


def live(path: str) -> list[dict[str, Any]]:
    """The live objects of a collection, read straight from the database file."""
    import asyncio

    async def read() -> list[dict[str, Any]]:
        async with embedded_client(DB) as client:
            return await client.paginate(path, {"include_archived": True}).to_list()

    return asyncio.run(read())


def live_pin() -> int:
    (dep,) = live("/v1/deployments")
    return int(dep["agent"]["version"])


def test_a_gated_rollout_over_tcp_and_a_check_that_times_out(workdir: Path) -> None:
    from reconciler.provider.local import FaultConfig

    write(PASSING)
    with provider(DB) as (url, _tap):
        ok("--provider-url", url, "apply", "--auto-approve")
        write(PASSING, revision=1)
        result = ok("--provider-url", url, "apply", "--auto-approve")
        assert "1 of 1 checks passed" in result.stdout
        assert live_pin() == 2
    # every request now takes 0.6 s: a check allowed 0.2 s cannot answer in time
    write(PASSING.replace("\n", "\n        timeout: 0.2\n", 1).rstrip() + "\n", revision=2)
    slow = FaultConfig(latency_ms=600)
    with provider(DB, slow) as (url, _tap):
        args = ("--provider-url", url, "apply", "--auto-approve", "--allow-origin-change")
        result = cli(*args)
    assert result.exit_code == 1, result.stdout
    # it read "expected contains 'PR 42'; got timed out after 0.2 s", the failure as an answer
    assert (
        "check 'Review PR 42': timed out after 0.2 s (expected contains 'PR 42') (session "
        in result.stdout + result.stderr
    )
    assert live_pin() == 2
    assert [h["version"] for h in deployment()["held"]] == [3]
    assert all(s["archived_at"] for s in live("/v1/sessions")), "archived, timed out or not"


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


def test_kill_9_during_the_checks_leaves_the_pin_and_the_next_apply_reruns_them(
    workdir: Path, zygote: Zygote
) -> None:
    write(PASSING, PASSING.replace("42", "43"))
    env = clean_env()
    with provider(DB) as (url, tap):
        args = ["--provider-url", url, "apply", "--auto-approve"]
        first = zygote.run(args, cwd=workdir, env=env)
        assert first.code == 0, first.stderr
        write(PASSING, PASSING.replace("42", "43"), revision=1)
        # killed once the provider has answered the first check's message
        holder: dict[str, int] = {}
        fired = threading.Event()
        tap.after = kill_hook(lambda: holder.get("pid"), "POST", EVENTS_PATH, 1, fired=fired)
        run = zygote.start(args, cwd=workdir, env=env)
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL, (run.stdout, run.stderr)
        assert fired.is_set()
        tap.after = None

        assert live_pin() == 1, "the pin stays where it was"
        assert deployment()["pins"] == {"agent.reviewer": 1}
        assert "held" not in deployment(), "a killed check is not a failed one"
        left = [s for s in live("/v1/sessions") if not s["archived_at"]]
        assert left, "the killed run left its check sessions"

        again = zygote.run(args, cwd=workdir, env=env)
        assert again.code == 0, (again.stdout, again.stderr)
        assert "took over stale lock" in again.stderr
        assert "2 of 2 checks passed" in again.stdout
    assert live_pin() == 2
    assert [(h["version"], h["by"]) for h in deployment()["pin_history"]] == [
        (1, "apply"),
        (2, "checks"),
    ]
    sessions = [s for s in live("/v1/sessions") if "reconciler-check" in s["metadata"]]
    assert len(sessions) == len(left) + 2, "the checks ran again, in new sessions"
    assert all(s["archived_at"] for s in sessions), "leftovers of the killed run are archived"


def interrupted(tap: Any, args: list[str], method: str, pattern: str, hold: float = 0.0) -> str:
    """Run ``reconciler ARGS`` as its own process and send it SIGINT once the provider has
    answered the first METHOD request whose path matches PATTERN (that answer held back
    ``hold`` seconds, so the interrupt comes first); its stderr, after checking that it
    stopped as Ctrl-C stops it (exit 130, no traceback)."""
    import os
    import re
    import time

    from support.reliability import cli_process

    holder: dict[str, int] = {}
    fired = threading.Event()

    def ctrl_c(m: str, path: str) -> bool:
        if m == method and re.fullmatch(pattern, path) and not fired.is_set():
            fired.set()
            os.kill(holder["pid"], signal.SIGINT)
            time.sleep(hold)
        return False

    tap.after = ctrl_c
    try:
        with cli_process(args, env=clean_env(), cwd=Path.cwd()) as proc:
            holder["pid"] = proc.pid
            out, err = proc.communicate(timeout=120)
    finally:
        tap.after = None
    assert fired.is_set(), (out, err)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    return str(err)


def test_ctrl_c_while_a_rollback_leaves_its_record_keeps_the_rollback(workdir: Path) -> None:
    # Ctrl-C once the pin had moved back, while the rollback left its record at the provider
    # (a session create): the lockfile kept the old pin, so the next apply "put back" the
    # version just rolled back from, without its checks and without a word
    write(PASSING)
    with provider(DB) as (url, tap):
        base = ["--provider-url", url]
        ok(*base, "apply", "--auto-approve")
        write(PASSING, revision=1)
        ok(*base, "apply", "--auto-approve")
        assert live_pin() == 2
        rollback = [*base, "rollback", "deployment.nightly", "--auto-approve"]
        err = interrupted(tap, rollback, "POST", r"/v1/sessions")
        assert "Interrupted." in err, err
        assert live_pin() == 1, "the pin had moved back"
        assert deployment()["pins"] == {"agent.reviewer": 1}, err
        assert [h["version"] for h in deployment()["held"]] == [2]

        plan = ok(*base, "plan", "--detailed-exitcode").stdout
        assert "pin agent.reviewer@1 -> @2" not in plan
        assert "agent.reviewer v2 held: rolled back on " in plan
    assert live_pin() == 1


def test_ctrl_c_once_a_gated_pin_move_is_sent_keeps_what_moved_it(workdir: Path) -> None:
    # Ctrl-C while the answer to a gated pin move (checks passed, update committed) was on
    # its way: the apply's clean-up forgot the move's intent with the never-sent creates', so
    # the lockfile kept the old pin and nothing said the checks had moved it
    write(PASSING)
    with provider(DB) as (url, tap):
        base = ["--provider-url", url]
        ok(*base, "apply", "--auto-approve")
        write(PASSING, revision=1)
        apply = [*base, "apply", "--auto-approve"]
        interrupted(tap, apply, "POST", r"/v1/deployments/[^/]+", hold=0.5)
        assert live_pin() == 2, "the pin had moved"
        entry, pending = deployment(), lock().get("pending", {})
        assert entry["pins"] == {"agent.reviewer": 2} or "deployment.nightly" in pending, (
            entry,
            pending,
        )

        plan = ok(*base, "plan").stdout
        assert "pin agent.reviewer" not in plan, plan
        ok(*apply)
    assert [(h["version"], h["by"]) for h in deployment()["pin_history"]] == [
        (1, "apply"),
        (2, "checks"),
    ]
