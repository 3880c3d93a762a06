"""QA of ``reconciler provider serve``, the local provider's agent and ``reconciler run``,
as a user and the official SDK meet them: each test reproduces a defect that was found.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from support.local_provider import new_agent, new_env, new_session, ok, walk
from support.reliability import served_process

from reconciler.cli import main

HEADERS = {
    "x-api-key": "local-provider",
    "anthropic-beta": "managed-agents-2026-04-01",
    "anthropic-version": "2026-10-21",
}


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def fake_serve(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record ``local.serve`` calls instead of serving; every port counts as free."""
    from reconciler.cli import provider
    from reconciler.provider import local

    calls: list[dict[str, Any]] = []

    def serve(**kw: Any) -> None:
        calls.append(kw)
        kw["ready"]()  # as the real one does once its database is open and the port bound

    monkeypatch.setattr(local, "serve", serve)
    monkeypatch.setattr(provider, "_free_port", lambda host, port: port)
    return calls


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--fault-rate", "nan"),  # was "unexpected ValueError ... This is a bug in reconciler"
        ("--rate-limit", "nan"),  # was served with no limit at all, saying "rate limit nan/s"
        ("--rate-limit", "inf"),  # likewise: a limit that never limits
    ],
)
def test_serve_refuses_a_rate_that_is_not_a_number(
    fake_serve: list[dict[str, Any]], tmp_path: Path, flag: str, value: str
) -> None:
    result = cli("provider", "serve", "--db", str(tmp_path / "p.db"), flag, value)
    assert result.exit_code == 1, result.stderr
    assert f"Invalid value for '{flag}'" in result.stderr, result.stderr
    assert "bug" not in result.stderr and "listening" not in result.stderr
    assert fake_serve == []


def test_fault_config_refuses_a_rate_limit_that_is_not_a_number() -> None:
    from reconciler.provider.local import FaultConfig

    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            FaultConfig(rate_limit=bad)
        with pytest.raises(ValueError):
            FaultConfig(bucket_limits={"agents": bad})


def test_serve_refuses_an_infinite_bucket_limit(fake_serve: list[dict[str, Any]]) -> None:
    result = cli("provider", "serve", "--bucket-limit", "agents=inf")
    assert result.exit_code == 1, result.stderr
    assert "--bucket-limit" in result.stderr and fake_serve == []


@pytest.mark.tcp
def test_ctrl_c_stops_a_slow_server_with_an_answer_still_delayed(tmp_path: Path) -> None:
    """``--latency-ms`` holds every answer back; Ctrl-C waited for the held answers (here
    ten minutes) with "Waiting for background tasks to complete", even when their client
    had already given up."""
    flags = ("--db", str(tmp_path / "p.db"), "--latency-ms", "600000")
    with served_process(*flags, cwd=tmp_path) as served:
        with pytest.raises(httpx.ReadTimeout):  # the request reached the server: it waits
            httpx.get(served.url + "/v1/agents", headers=HEADERS, timeout=1.0)
        served.proc.send_signal(signal.SIGINT)  # only the server this test started
        try:
            # a guard against hanging, not a timing assertion: before, it took ten minutes
            _, err = served.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("provider serve did not stop on Ctrl-C while an answer was delayed")
    assert served.proc.returncode == 0
    assert "Traceback" not in err, err
    assert "Local provider stopped." in err


@pytest.mark.parametrize("host", ["nonexistent.invalid", "192.0.2.1"])
def test_serve_on_an_address_this_machine_lacks_says_to_check_host(host: str) -> None:
    """Said "another process may be using it: pick another with --port", which no port
    fixes (a name that does not resolve; an address of no interface here)."""
    result = cli("provider", "serve", "--host", host, "--port", "0")
    assert result.exit_code == 1, result.stderr
    assert f"cannot listen on {host}" in result.stderr
    assert "--host" in result.stderr and "--port" not in result.stderr, result.stderr


def test_serve_on_ipv6_announces_a_url_that_works(fake_serve: list[dict[str, Any]]) -> None:
    """``--host ::1`` announced ``http://::1:8787``, which no client can parse."""
    result = cli("provider", "serve", "--host", "::1")
    assert result.exit_code == 0, result.stderr
    assert "listening on http://[::1]:8787 " in result.stderr, result.stderr
    assert httpx.URL("http://[::1]:8787").port == 8787


@pytest.mark.anyio
async def test_a_file_rubric_is_graded_on_the_quoted_phrases_of_its_text(
    http: httpx.AsyncClient,
) -> None:
    """A file rubric was "satisfied by any answer" (the local provider kept no files, it
    said), so a check whose rubric lives in a file passed whatever the agent answered. The
    SDK: "File rubrics are currently resolved to their text content"."""
    rubric = b'The answer names "PR 42" and says "approved".\n'
    uploaded = await ok(
        http.post("/v1/files", files={"file": ("rubric.md", rubric, "text/markdown")})
    )
    session = await new_session(http, system="local-reply: looked at PR 42")
    event = {
        "type": "user.define_outcome",
        "description": "review it",
        "rubric": {"type": "file", "file_id": uploaded["id"]},
    }
    await ok(http.post(f"/v1/sessions/{session['id']}/events", json={"events": [event]}))
    events = await walk(http, f"/v1/sessions/{session['id']}/events")
    [end] = [e for e in events if e["type"] == "span.outcome_evaluation_end"]
    assert end["result"] == "needs_revision", end
    assert '"approved"' in end["explanation"] and '"PR 42"' not in end["explanation"]


@pytest.mark.tcp
def test_an_injected_dropped_connection_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """``--fault-rate``: every dropped connection printed "ERROR: Exception in ASGI
    application" and a 25-line traceback on the server's stderr, as if it had crashed."""
    flags = ("--db", str(tmp_path / "p.db"), "--fault-rate", "1", "--seed", "1")
    with served_process(*flags, cwd=tmp_path) as served:
        with httpx.Client(base_url=served.url, headers=HEADERS, timeout=30) as http:
            statuses = []
            for _ in range(10):
                try:
                    statuses.append(http.get("/v1/agents").status_code)
                except httpx.TransportError:
                    statuses.append(0)  # the injected drop
        assert 0 in statuses and 529 in statuses, statuses
        served.proc.send_signal(signal.SIGINT)  # only the server this test started
        _, err = served.proc.communicate(timeout=60)
    assert "Traceback" not in err and "Exception in ASGI application" not in err, err
    assert err.count("injected fault: connection dropped") == statuses.count(0), err


def test_run_help_names_every_exit_code() -> None:
    """``run --help`` named 0, 1 (only "on a session error") and 130; the run also exits 1
    on any other stop reason or error, and 143 after SIGTERM (README, ``run``)."""
    text = " ".join(cli("run", "--help").stdout.split())
    assert "1 on a session error, any other stop reason or an error" in text
    assert "130 after Ctrl-C and 143 after SIGTERM" in text


@pytest.mark.tcp
def test_the_url_serve_announces_on_all_interfaces_works_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --host 0.0.0.0`` announced ``http://0.0.0.0:PORT``; given to
    ``--provider-url``, which reaches this machine, the CLI sent no key (only loopback
    names got the local one) and the provider refused it: "check --api-key"."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "a.yaml").write_text(
        "kind: Agent\nname: a\nspec: {model: claude-sonnet-4-6}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("RECONCILER_PROVIDER_URL", raising=False)
    flags = ("--db", str(tmp_path / "p.db"), "--host", "0.0.0.0")
    with served_process(*flags, cwd=tmp_path) as served:
        assert served.url.startswith("http://0.0.0.0:")
        result = cli("--provider-url", served.url, "plan")
    assert result.exit_code == 0, result.stderr
    assert "agent.a" in result.stdout


@pytest.mark.anyio
async def test_a_deployment_run_whose_rubric_file_is_gone_fails_as_a_missing_file(
    http: httpx.AsyncClient,
) -> None:
    """A deployment's outcome rubric file deleted after the deployment was made: its run
    opened a session whose outcome was graded against nothing and "satisfied" by any
    answer; a run whose mounted file is gone fails with ``file_not_found_error``, and so
    now does one whose rubric file is gone."""
    uploaded = await ok(
        http.post("/v1/files", files={"file": ("rubric.md", b'Says "approved".', "text/plain")})
    )
    agent = await new_agent(http, system="local-reply: rejected")
    env = await new_env(http)
    outcome = {
        "type": "user.define_outcome",
        "description": "review it",
        "rubric": {"type": "file", "file_id": uploaded["id"]},
    }
    deployment = await ok(
        http.post(
            "/v1/deployments",
            json={
                "name": "nightly",
                "agent": agent["id"],
                "environment_id": env["id"],
                "initial_events": [outcome],
            },
        )
    )
    await ok(http.delete(f"/v1/files/{uploaded['id']}"))
    run = await ok(http.post(f"/v1/deployments/{deployment['id']}/run"))
    assert run["session_id"] is None, run
    assert run["error"]["type"] == "file_not_found_error"
    assert uploaded["id"] in run["error"]["message"]


@pytest.mark.anyio
async def test_a_session_whose_initial_outcome_names_no_file_is_refused(
    http: httpx.AsyncClient,
) -> None:
    """Sent as an event, an outcome whose rubric file does not exist is a 404; as an
    initial event of a new session it was taken, and graded "satisfied" against nothing."""
    agent = await new_agent(http)
    env = await new_env(http)
    outcome = {
        "type": "user.define_outcome",
        "description": "review it",
        "rubric": {"type": "file", "file_id": "file_01NoSuchFile"},
    }
    body = {"agent": agent["id"], "environment_id": env["id"], "initial_events": [outcome]}
    response = await http.post("/v1/sessions", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["details"]["error_code"] == "file_not_found"
    assert (await ok(http.get("/v1/sessions")))["data"] == []


def test_serve_help_does_not_promise_the_same_faults_to_concurrent_runs() -> None:
    """``--seed`` said "a run with the same seed meets the same faults"; draws follow the
    order requests arrive in, which concurrent requests (apply's) do not keep."""
    text = " ".join(cli("provider", "serve", "--help").stdout.split())
    assert "a run with the same seed meets the same faults" not in text
    assert "the same sequence of requests meets the same faults" in text


@pytest.mark.tcp
def test_sigterm_stops_the_server_as_ctrl_c_does(tmp_path: Path) -> None:
    """SIGTERM (``docker stop``, a CI job cancelled) killed the server with the signal
    uvicorn re-raises after its graceful shutdown: no "Local provider stopped." and no exit
    code of the CLI's own; now it is handled as Ctrl-C is, exit 143 as for every command."""
    with served_process("--db", str(tmp_path / "p.db"), cwd=tmp_path) as served:
        assert httpx.get(served.url + "/v1/agents", headers=HEADERS).status_code == 200
        served.proc.send_signal(signal.SIGTERM)  # only the server this test started
        _, err = served.proc.communicate(timeout=60)
    assert served.proc.returncode == 143, (served.proc.returncode, err)
    assert "Local provider stopped." in err and "Traceback" not in err, err


def test_serve_refuses_a_bucket_the_provider_does_not_have(
    fake_serve: list[dict[str, Any]],
) -> None:
    """``--bucket-limit agent=1`` (not ``agents``) was taken and limited nothing: no request
    falls in a bucket named ``agent``, so the test it was meant for ran unthrottled."""
    result = cli("provider", "serve", "--bucket-limit", "agent create=1")
    assert result.exit_code == 1, result.stderr
    assert "'agent create'" in result.stderr and "'agents create'" in result.stderr
    assert fake_serve == []
    ok_result = cli("provider", "serve", "--bucket-limit", "memory_stores create=2")
    assert ok_result.exit_code == 0, ok_result.stderr


@pytest.mark.anyio
async def test_an_outcome_sent_with_max_iterations_null_gets_the_default(
    http: httpx.AsyncClient,
) -> None:
    """The wire's max_iterations defaults to 3: an outcome sent with null was echoed and
    stored with null, where one that left it out got 3."""
    session = await new_session(http)
    event = {
        "type": "user.define_outcome",
        "description": "review it",
        "rubric": {"type": "text", "content": 'names "PR 42"'},
        "max_iterations": None,
    }
    sent = await ok(http.post(f"/v1/sessions/{session['id']}/events", json={"events": [event]}))
    assert sent["data"][0]["max_iterations"] == 3, sent
    events = await walk(http, f"/v1/sessions/{session['id']}/events")
    [stored] = [e for e in events if e["type"] == "user.define_outcome"]
    assert stored["max_iterations"] == 3, stored
