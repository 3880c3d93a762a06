"""Ctrl-C or SIGTERM (a cancelled CI job) while `rollback --auto-approve` moves the pin.

As for apply: a first signal lets the pin move in flight finish, records it, says what was
done, and exits 130 (Ctrl-C) or 143 (SIGTERM). It printed a bare "Terminated (SIGTERM)." or
"Interrupted." instead, whether or not the pin had moved, and nothing said what to do next.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import pytest
from support.reliability import Zygote, provider, shared_zygote
from test_crash_interrupts import GATED, PIN_MOVE, gated_workspace, live_pin


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_the_rollback_moves_the_pin_lets_it_finish_and_says_so(
    zygote: Zygote, tmp_path: Path, signum: int, code: int
) -> None:
    ws = gated_workspace(tmp_path)
    with provider(ws.db) as (url, tap):
        assert ws.run(zygote, url, "apply").code == 0
        (tmp_path / "manifests" / "gated.yaml").write_text(GATED.replace("REV", "2"))
        assert ws.run(zygote, url, "apply").code == 0
        assert live_pin(ws) == 2
        holder: dict[str, int] = {}
        fired = threading.Event()

        def signal_it(method: str, path: str) -> bool:
            if method == "POST" and re.match(PIN_MOVE, path) and not fired.is_set():
                fired.set()
                os.kill(holder["pid"], signum)
            return False  # the provider moves the pin

        tap.before = signal_it
        args = ws.args(url, "rollback", "deployment.nightly", "--auto-approve")
        rollback = zygote.start(args, cwd=ws.root, env=ws.env)
        holder["pid"] = rollback.pid
        assert rollback.wait(120) == code, (rollback.stdout, rollback.stderr)
        tap.before = None
        assert fired.is_set()

    assert live_pin(ws) == 1
    assert "deployment.nightly: agent.reviewer@2 -> @1 rolled back; v2 is now held." in (
        rollback.stdout
    )
    assert "The pin move in flight finished and is recorded in" in rollback.stderr, rollback.stderr
    assert "Traceback" not in rollback.stderr
    state = ws.state()
    entry = state.resources["deployment.nightly"]
    assert entry.pins == {"agent.reviewer": 1}
    assert [h.version for h in entry.held] == [2]
    assert not state.pending
