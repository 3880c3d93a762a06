"""``reconciler provider serve`` as a user starts it answers the official ``anthropic`` SDK.

Issue #2's "done when": the command itself (a process of its own, ``--port 0``, its banner
read for the URL), not an app built by the test, serves the SDK; its fault flags act on
the wire as documented (``--rate-limit``: 429 ``rate_limit_error`` with ``retry-after``,
which the SDK honours) and the CLI's ``apply --provider-url`` lands in the same server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from support.reliability import clean_env, served_process

MANIFESTS = """\
kind: Agent
name: served
spec: {model: claude-sonnet-4-6, system: "local-reply: served {text}"}
---
kind: Environment
name: served-env
spec: {}
"""

pytestmark = pytest.mark.tcp


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``provider serve --port 0 --rate-limit 5 --seed 1`` in tmp_path; its URL."""
    flags = ["--db", str(tmp_path / "served.db"), "--rate-limit", "5", "--seed", "1"]
    with served_process(*flags, cwd=tmp_path) as served:
        yield served.url


def test_provider_serve_answers_the_sdk_and_the_cli(served: str, tmp_path: Path) -> None:
    strict = anthropic.Anthropic(base_url=served, api_key="k", max_retries=0)
    patient = anthropic.Anthropic(base_url=served, api_key="k", max_retries=5)

    # --rate-limit 5: a burst of reads without retries meets the SDK's RateLimitError
    with pytest.raises(anthropic.RateLimitError) as limited:
        for _ in range(20):
            strict.beta.agents.list()
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

    # the CLI applies through the same server (its client retries the 429s too)
    work = tmp_path / "work"
    (work / "manifests").mkdir(parents=True)
    (work / "manifests" / "m.yaml").write_text(MANIFESTS)
    applied = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "--provider-url", served]
        + ["apply", "--auto-approve"],
        check=False,
        cwd=work,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert applied.returncode == 0, applied.stderr

    # the SDK, retrying as it does by default, sees what apply created, in its own types
    (agent,) = [a for a in patient.beta.agents.list() if a.name == "served"]
    assert agent.version == 1 and agent.model.id == "claude-sonnet-4-6"
    assert agent.metadata["reconciler-address"] == "agent.served"
    (env,) = [e for e in patient.beta.environments.list() if e.name == "served-env"]
    session = patient.beta.sessions.create(agent=agent.id, environment_id=env.id)
    with patient.beta.sessions.events.stream(session.id) as stream:
        patient.beta.sessions.events.send(
            session.id,
            events=[{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}],
        )
        texts = []
        for event in stream:
            if event.type == "agent.message":
                texts += [block.text for block in event.content]
            if event.type == "session.status_idle":
                break
    assert texts == ["served hi"]
    assert not (work / ".reconciler").exists()  # nothing went to an embedded store


def test_the_announced_address_already_listens(served: str) -> None:
    """A client that connects the moment the "listening on" line appears is not refused
    (the line used to come before uvicorn had bound the port)."""
    host, port = served.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10):
        pass
