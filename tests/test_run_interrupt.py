"""`reconciler run` end to end over loopback TCP, including Ctrl-C.

The local provider answers every request after injected latency, so the turn is still in
flight when the test sends SIGINT to the real `reconciler run` process: it must send a
`user.interrupt` to the session, say how to continue, and exit 130.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.reliability import cli_process, interrupt

from reconciler.cli import main
from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.tcp


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not seen in time; stderr so far:\n{seen}")


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_ctrl_c_interrupts_the_session_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, code: int
) -> None:
    """Ctrl-C (and SIGTERM, handled the same way, exit 143)."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    db = tmp_path / "provider.db"
    with BackgroundServer(create_app(db)) as fast:
        applied = CliRunner().invoke(
            main, ["--provider-url", fast.url, "apply", "--auto-approve"], catch_exceptions=False
        )
        assert applied.exit_code == 0, applied.output
    # the same database, now slow: every request takes 1.5 s
    with BackgroundServer(create_app(db, FaultConfig(latency_ms=1500))) as slow:
        env = {**os.environ, "NO_COLOR": "1"}
        args = ["--provider-url", slow.url, "run", "coder", "-m", "take your time"]
        with cli_process(args, env=env) as proc:
            before = _read_until(proc, "Session sesn_", timeout=60)
            session_id = before.split("Session ", 1)[1].split()[0]
            time.sleep(0.5)  # the message is on its way; the turn is not over
            if sig == signal.SIGINT:
                out, err = interrupt(proc)
            else:
                proc.send_signal(sig)
                out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, (out, err)
        assert "--session" in before + err
        assert "Traceback" not in err

    async def events() -> list[str]:
        from reconciler.provider import embedded_client

        async with embedded_client(db) as client:
            return [e["type"] for e in await client.sessions.list_events(session_id).to_list()]

    import asyncio

    assert "user.interrupt" in asyncio.run(events())
