"""The pin history after an apply killed once its gated move landed, then another apply.

The killed apply left only its intent (the move from v1 to v2, which the provider made). The
next apply's plan read the move as done, and wrote its own intent (v2 to v3) over the first:
the v1 -> v2 move, made by its checks, was never recorded in the pin history.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.reliability import Zygote, provider, shared_zygote
from test_crash_interrupts import (
    GATED,
    PIN_MOVE,
    gated_workspace,
    live_pin,
    recorded,
    signal_hook,
)


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


@pytest.mark.slow
def test_a_move_a_killed_apply_made_stays_in_the_history_after_the_next_apply(
    zygote: Zygote, tmp_path: Path
) -> None:
    ws = gated_workspace(tmp_path)
    manifest = tmp_path / "manifests" / "gated.yaml"
    with provider(ws.db) as (url, tap):
        assert ws.run(zygote, url, "apply").code == 0
        manifest.write_text(GATED.replace("REV", "2"))
        holder: dict[str, int] = {}
        # after the provider moved the pin: its answer is lost
        tap.after, _ = signal_hook(lambda: holder.get("pid"), signal.SIGKILL, "POST", PIN_MOVE, 1)
        run = zygote.start(ws.args(url, "apply"), cwd=ws.root, env=ws.env)
        holder["pid"] = run.pid
        assert run.wait(120) == -signal.SIGKILL, (run.stdout, run.stderr)
        tap.after = None
        assert live_pin(ws) == 2

        manifest.write_text(GATED.replace("REV", "3"))
        again = ws.run(zygote, url, "apply")
        assert again.code == 0, (again.stdout, again.stderr)
    assert live_pin(ws) == 3
    pins, held, history = recorded(ws)
    assert pins == {"agent.reviewer": 3} and held == []
    assert history == [(1, "apply"), (2, "checks"), (3, "checks")], history
    entry = ws.state().resources["deployment.nightly"]
    assert [r.from_version for r in entry.pin_history] == [None, 1, 2]
