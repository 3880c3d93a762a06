"""``reconciler provider serve`` stops on Ctrl-C while event streams are open.

A ``reconciler run``, a runtime's ``stream_events(..., follow=True)`` or the SDK's
``events.stream`` keeps an SSE response open; uvicorn's graceful shutdown waits for open
responses, so the server printed "Waiting for connections to close" and never exited.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support.reliability import clean_env

pytestmark = pytest.mark.tcp

HEADERS = {"x-api-key": "local-provider", "anthropic-beta": "managed-agents-2026-04-01"}


def test_ctrl_c_stops_the_server_with_a_stream_open(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "provider", "serve", "--port", "0"]
        + ["--db", str(tmp_path / "served.db")],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = ""
        for line in proc.stderr:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "provider serve printed no URL"
        with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as http:
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
