"""A second Ctrl-C that lands once the gated pin move in flight at the first one finished.

The apply was finishing (its last lockfile write) with no action in flight; the message said
"0 actions in flight were abandoned: the provider may have finished them, and the next
`reconciler apply` finds and records them", which describes nothing that happened.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from support.reliability import Zygote, provider, shared_zygote
from test_crash_interrupts import GATED, PIN_MOVE, gated_workspace, live_pin


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


@pytest.mark.slow
def test_a_second_ctrl_c_with_nothing_in_flight_says_so(zygote: Zygote, tmp_path: Path) -> None:
    ws = gated_workspace(tmp_path)
    with provider(ws.db) as (url, tap):
        assert ws.run(zygote, url, "apply").code == 0
        (tmp_path / "manifests" / "gated.yaml").write_text(GATED.replace("REV", "2"))
        holder: dict[str, int] = {}

        def first(method: str, path: str) -> bool:
            if method == "POST" and re.match(PIN_MOVE, path):
                os.kill(holder["pid"], signal.SIGINT)  # the gated move is on its way
            return False

        tap.before = first
        # the second Ctrl-C right after the lockfile write that records the move
        crash = {"point": "after-rename", "nth": 3, "signal": "SIGINT"}
        run = zygote.start(ws.args(url, "apply"), cwd=ws.root, env=ws.env, crash=crash)
        holder["pid"] = run.pid
        assert run.wait(120) == 130, (run.stdout, run.stderr)
        tap.before = None
        assert "Interrupted again: stopped at once" in run.stderr, run.stderr
        assert "0 actions" not in run.stderr, run.stderr
        assert "with no action in flight" in run.stderr, run.stderr
        assert live_pin(ws) == 2
        state = ws.state()
        assert state.resources["deployment.nightly"].pins == {"agent.reviewer": 2}
        plan = ws.run(zygote, url, "plan", "--detailed-exitcode")
        assert plan.code == 0, plan.stdout
