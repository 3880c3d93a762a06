"""`run DEPLOYMENT` after a rollback (or a gated apply) was killed once the provider moved the
pin: the session runs the version the deployment runs, as plan and drift say it does.

The killed run left only its intent in the lockfile (the pin there is the one before the
move); plan, drift and rollback resolve it by the live pin. `run` read the lockfile's pin
alone and started its session on the version the rollback had just left.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.reliability import Zygote, provider, shared_zygote
from test_crash_interrupts import (
    PIN_MOVE,
    PROJECT,
    applied_twice,
    gated_workspace,
    live_pin,
    signal_hook,
)


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


@pytest.mark.slow
def test_run_after_a_rollback_killed_once_the_pin_moved_runs_the_version_rolled_back_to(
    zygote: Zygote, tmp_path: Path
) -> None:
    ws = gated_workspace(tmp_path)
    with provider(ws.db) as (url, tap):
        applied_twice(zygote, ws, url)
        holder: dict[str, int] = {}
        # after the provider moved the pin: its answer is lost
        tap.after, _ = signal_hook(lambda: holder.get("pid"), signal.SIGKILL, "POST", PIN_MOVE, 1)
        args = ws.args(url, "rollback", "deployment.nightly", "--auto-approve")
        rollback = zygote.start(args, cwd=ws.root, env=ws.env)
        holder["pid"] = rollback.pid
        assert rollback.wait(120) == -signal.SIGKILL, (rollback.stdout, rollback.stderr)
        tap.after = None
        assert live_pin(ws) == 1
        assert ws.state().resources["deployment.nightly"].pins == {"agent.reviewer": 1 + 1}

        args = ["--project", PROJECT, "--provider-url", url, "run", "nightly", "-m", "hi"]
        run = zygote.run(args, cwd=ws.root, env=ws.env)
        assert run.code == 0, (run.stdout, run.stderr)
        said = "(deployment.nightly: agent.reviewer version 1 in environment.env)"
        assert said in run.stderr, run.stderr
        assert "Warning" not in run.stderr, run.stderr
        drift = ws.run(zygote, url, "drift")
        assert drift.code == 0, drift.stdout
