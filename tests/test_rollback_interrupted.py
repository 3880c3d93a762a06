"""Ctrl-C or SIGTERM (a cancelled CI job) while `rollback --auto-approve` moves the pin.

As for apply: a first signal lets the pin move in flight finish, records it, says what was
done, and exits 130 (Ctrl-C) or 143 (SIGTERM). It printed a bare "Terminated (SIGTERM)." or
"Interrupted." instead, whether or not the pin had moved, and nothing said what to do next.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.reliability import Zygote, provider, shared_zygote
from test_crash_interrupts import (
    PIN_MOVE,
    applied_twice,
    gated_workspace,
    live_pin,
    signal_hook,
)


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_the_rollback_moves_the_pin_lets_it_finish_and_says_so(
    zygote: Zygote, tmp_path: Path, signum: int, code: int
) -> None:
    ws = gated_workspace(tmp_path)
    with provider(ws.db) as (url, tap):
        applied_twice(zygote, ws, url)
        holder: dict[str, int] = {}
        # before the provider moves the pin (which it then does)
        tap.before, fired = signal_hook(lambda: holder.get("pid"), signum, "POST", PIN_MOVE, 1)
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
