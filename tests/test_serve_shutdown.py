"""``reconciler provider serve`` stops on Ctrl-C while event streams are open.

A ``reconciler run``, a runtime's ``stream_events(..., follow=True)`` or the SDK's
``events.stream`` keeps an SSE response open; uvicorn's graceful shutdown waits for open
responses, so the server printed "Waiting for connections to close" and never exited.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from support.reliability import served_process

pytestmark = pytest.mark.tcp

HEADERS = {
    "x-api-key": "local-provider",
    "anthropic-beta": "managed-agents-2026-04-01",
    "anthropic-version": "2026-10-21",
}


def test_ctrl_c_stops_the_server_with_a_stream_open(tmp_path: Path) -> None:
    with served_process("--db", str(tmp_path / "served.db"), cwd=tmp_path) as served:
        proc = served.proc
        with httpx.Client(base_url=served.url, headers=HEADERS, timeout=60) as http:
            agent = http.post("/v1/agents", json={"name": "a", "model": "claude-sonnet-4-6"})
            env = http.post("/v1/environments", json={"name": "e"})
            session = http.post(
                "/v1/sessions",
                json={"agent": agent.json()["id"], "environment_id": env.json()["id"]},
            ).json()
            with http.stream("GET", f"/v1/sessions/{session['id']}/events/stream") as stream:
                assert stream.status_code == 200
                proc.send_signal(signal.SIGINT)  # only the server this test started
                # a guard against hanging, not a timing assertion: before, it never exited
                _, err = proc.communicate(timeout=30)
        assert proc.returncode is not None
        assert "Traceback" not in err, err
