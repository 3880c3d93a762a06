"""The command line as a shell: options, the one error handler, exit codes, small commands.

The plan/apply flows are in ``test_e2e.py``; here each test is one command and what the
person reading the terminal sees.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir

import reconciler
from reconciler.cli import _register_all, main
from reconciler.cli.failures import EXIT_INTERRUPTED, ReconcilingGroup
from reconciler.errors import LockHeld, ManifestError, ReconcilerError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


# --- global options ---------------------------------------------------------------------------


def test_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"reconciler, version {reconciler.__version__}\n"


def test_help_lists_every_command_of_the_design() -> None:
    text = cli("--help").stdout
    for command in ("validate", "plan", "apply", "state", "unlock", "schema", "provider", "run"):
        assert re.search(rf"^  {command}\b", text, re.MULTILINE), command
    for option in ("--manifests", "-f", "--lockfile", "--project", "--provider-url", "--api-key"):
        assert option in text


def test_global_options_come_from_the_environment(workdir: Path) -> None:
    (workdir / "manifests").rename(workdir / "desired")
    result = cli(
        "validate", env={"RECONCILER_MANIFESTS": "desired", "RECONCILER_LOCKFILE": "x/y.lock"}
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("OK: ")


def test_the_embedded_provider_db_can_be_moved(workdir: Path) -> None:
    result = cli("plan", env={"RECONCILER_PROVIDER_DB": "elsewhere/p.db"})
    assert result.exit_code == 0, result.stderr
    assert (workdir / "elsewhere/p.db").exists()
    assert not (workdir / ".reconciler").exists()


def test_usage_errors_exit_1_never_2(workdir: Path) -> None:
    # 2 means "changes" for plan --detailed-exitcode; a typo must never look like that
    for args in (["plan", "--format", "yaml"], ["plan", "--no-such-flag"], ["nope"], ["-x"]):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert "Error:" in result.stderr


# --- the error handler ------------------------------------------------------------------------


def _group_raising(error: BaseException) -> click.Group:
    @click.group(cls=ReconcilingGroup)
    @click.option("--debug", is_flag=True)
    def group(debug: bool) -> None:
        pass

    @group.command()
    def boom() -> None:
        raise error

    return group


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ReconcilerError("the thing failed; do this instead"), "the thing failed; do this instead"),
        (LockHeld("state/reconciler.lock is locked by apply 1234"), "locked by apply 1234"),
        (FileNotFoundError(2, "No such file or directory", "plan.json"), "plan.json: No such file"),
        (RuntimeError("bug"), "unexpected RuntimeError: bug"),
    ],
)
def test_errors_are_one_line_on_stderr_with_exit_1(error: BaseException, message: str) -> None:
    result = CliRunner().invoke(_group_raising(error), ["boom"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_debug_reraises_with_the_traceback() -> None:
    error = ReconcilerError("with details")
    result = CliRunner().invoke(_group_raising(error), ["--debug", "boom"])
    assert result.exception is error


def test_ctrl_c_exits_130_with_a_short_message() -> None:
    result = CliRunner().invoke(_group_raising(KeyboardInterrupt()), ["boom"])
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.stderr == "Interrupted.\n"


def test_optional_gitops_module_registers_its_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    gitops = types.ModuleType("reconciler.cli.gitops")

    def register(group: click.Group) -> None:
        @group.command()
        def drift() -> None:
            click.echo("no drift")

    gitops.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reconciler.cli.gitops", gitops)
    group = click.Group()
    _register_all(group)
    assert "drift" in group.commands
    assert {"plan", "apply", "validate", "run"} <= set(group.commands)


# --- validate and schema ----------------------------------------------------------------------


def test_validate_the_examples(workdir: Path) -> None:
    result = cli("validate")
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: 8 resources in 6 files\n")
    assert not (workdir / ".reconciler").exists()  # no network, no provider


def test_validate_reports_every_error_with_its_place(workdir: Path) -> None:
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("  system: |", "  systen: |", 1))
    deployments = workdir / "manifests/deployments.yaml"
    deployments.write_text(
        deployments.read_text().replace("environment: python-data", "environment: nowhere")
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: 2 errors in manifests:\n")
    assert re.search(
        r"manifests/agents\.yaml:\d+:\d+: .*systen.*did you mean 'system'", result.stderr
    )
    assert re.search(r"manifests/deployments\.yaml:\d+:\d+: .*nowhere", result.stderr)


def test_debug_shows_the_manifest_error_itself(workdir: Path) -> None:
    (workdir / "manifests/bad.yaml").write_text("kind: Agent\nname: x\nspec: {model: 5}\n")
    result = CliRunner().invoke(main, ["--debug", "validate"])
    assert isinstance(result.exception, ManifestError)


def test_schema_prints_the_json_schema(tmp_path: Path) -> None:
    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "Agent" in json.dumps(schema)
    assert result.stdout.startswith('{\n  "')  # indent 2

    out = tmp_path / "schema.json"
    written = cli("schema", "--out", str(out))
    assert written.exit_code == 0
    assert json.loads(out.read_text()) == schema
    assert str(out) in written.stderr


# --- lockfile and lock --------------------------------------------------------------------------


def test_a_bad_lockfile_stops_plan_and_apply_and_is_left_untouched(workdir: Path) -> None:
    lock = workdir / "state/reconciler.lock"
    lock.parent.mkdir()
    lock.write_bytes(b"{ this is not json")
    for args in (["plan"], ["apply", "--auto-approve"], ["state", "list"]):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("Error: ")
        assert "state/reconciler.lock" in result.stderr
        assert "Traceback" not in result.stderr
    assert lock.read_bytes() == b"{ this is not json"


def test_a_held_lock_stops_apply_and_unlock_clears_it(workdir: Path) -> None:
    from reconciler.state import ApplyLock

    (workdir / "state").mkdir()
    holder = ApplyLock(workdir / "state/reconciler.lock")
    info = holder.acquire()
    try:
        refused = cli("apply", "--auto-approve")
        assert refused.exit_code == 1
        assert refused.stderr.startswith("Error: ")
        assert info.id in refused.stderr

        assert cli("state", "rm", "agent.coder").exit_code == 1  # the lockfile does not exist

        wrong = cli("unlock", "deadbeef")
        assert wrong.exit_code == 1
        assert info.id in wrong.stderr

        live = cli("unlock", info.id)  # its holder (this process) runs: refused
        assert live.exit_code == 1 and "--force" in live.stderr, live.stderr
        cleared = cli("unlock", "--force", info.id)
        assert cleared.exit_code == 0, cleared.stderr
        assert info.id in cleared.stdout
    finally:
        holder.release()
    assert cli("unlock", info.id).exit_code == 1  # nothing left to unlock


def test_state_on_an_empty_lockfile(workdir: Path) -> None:
    listed = cli("state", "list")
    assert listed.exit_code == 0
    assert listed.stdout == ""
    assert "no entries" in listed.stderr
    shown = cli("state", "show", "agent.coder")
    assert shown.exit_code == 1
    assert "no entries" in shown.stderr


def test_apply_says_when_the_provider_rate_limited_it(workdir: Path) -> None:
    from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

    app = create_app(workdir / "p.db", FaultConfig(rate_limit=2))
    with BackgroundServer(app) as server:
        # one action at a time: 2 requests/s for every route together is far below any
        # documented limit, and concurrent creates could spend their whole retry budget
        # (tests/test_retry_policy.py) before the note this test is about is printed
        args = ["--provider-url", server.url, "apply", "--auto-approve", "--parallelism", "1"]
        applied = cli(*args)
        assert applied.exit_code == 0, applied.stderr
        assert "Apply complete: 8 created" in applied.stdout
        assert re.search(r"answered \d+ of \d+ requests with 429", applied.stderr), applied.stderr
        assert "429" not in applied.stdout  # scripts reading stdout see the usual summary
    unlimited = cli("--lockfile", "state/other.lock", "apply", "--auto-approve")
    assert unlimited.exit_code == 0 and "429" not in unlimited.stderr  # no limit, no note


def test_state_commands_refuse_another_projects_lockfile(workdir: Path) -> None:
    assert cli("--project", "team-a", "apply", "--auto-approve").exit_code == 0
    lock = workdir / "state/reconciler.lock"
    before = lock.read_bytes()
    for args in (
        ["state", "list"],
        ["state", "show", "agent.reviewer"],
        ["state", "rm", "agent.reviewer"],
    ):
        result = cli("--project", "team-b", *args)
        assert result.exit_code == 1, args
        assert "team-a" in result.stderr and "--project" in result.stderr, result.stderr
    assert lock.read_bytes() == before
    listed = cli("--project", "team-a", "state", "list")
    assert listed.exit_code == 0 and "agent.reviewer" in listed.stdout


# --- secrets ----------------------------------------------------------------------------------


def test_no_secret_is_ever_printed(workdir: Path) -> None:
    token = (workdir / "manifests/secrets/github-token.txt").read_text().strip()
    api_key = "sk-ant-test-never-print-me"
    env = {"ANTHROPIC_API_KEY": api_key}
    outputs = []
    for args in (
        ["plan"],
        ["plan", "--format", "json"],
        ["plan", "--format", "markdown"],
        ["--debug", "apply", "--auto-approve"],
        ["state", "list"],
        ["state", "show", "vault.github.credential.github-mcp"],
    ):
        result = cli(*args, env=env)
        assert result.exit_code == 0, (args, result.stderr)
        outputs.append(result.stdout + result.stderr)
    text = "\n".join(outputs)
    assert token and token not in text
    assert api_key not in text
    assert api_key not in (workdir / "state/reconciler.lock").read_text()


# --- provider serve ---------------------------------------------------------------------------


@pytest.fixture
def fake_serve(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record ``local.serve`` calls instead of serving; every port counts as free."""
    from reconciler.cli import provider
    from reconciler.provider import local

    calls: list[dict[str, Any]] = []

    def serve(**kw: Any) -> None:
        calls.append(kw)
        if kw.get("ready") is not None:
            kw["ready"]()  # as the real one does once its database is open

    monkeypatch.setattr(local, "serve", serve)
    monkeypatch.setattr(provider, "_free_port", lambda host, port: port)
    return calls


def test_provider_serve_passes_its_options(
    fake_serve: list[dict[str, Any]], tmp_path: Path
) -> None:
    from reconciler.provider import local

    calls = fake_serve
    db = tmp_path / "p.db"
    result = cli(
        "provider", "serve", "--port", "9999", "--db", str(db), "--latency-ms", "5",
        "--fault-rate", "0.1", "--rate-limit", "50", "--seed", "7",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"Local provider listening on http://127.0.0.1:9999 (db: {db})" in result.stderr
    (call,) = calls
    assert (call["host"], call["port"], call["db_path"]) == ("127.0.0.1", 9999, db)
    assert call["faults"] == local.FaultConfig(latency_ms=5, fault_rate=0.1, rate_limit=50, seed=7)


def test_provider_serve_without_faults(fake_serve: list[dict[str, Any]]) -> None:
    calls = fake_serve
    result = cli("provider", "serve")
    assert result.exit_code == 0
    assert "http://127.0.0.1:8787 (db: .reconciler/provider.db)" in result.stderr
    assert calls[0]["faults"] is None


def test_provider_serve_on_a_busy_port_says_so_before_listening() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("provider", "serve", "--port", str(port))
    assert result.exit_code == 1
    assert "listening" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


# --- run: Ctrl-C --------------------------------------------------------------------------------


class _EndlessTurn:
    """A turn whose agent starts and then never finishes (until interrupted)."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        yield {"type": "session.status_running"}
        await asyncio.Event().wait()
        yield {}  # pragma: no cover

    async def aclose(self) -> None:
        self.closed = True


class _Runtime:
    def __init__(self) -> None:
        self.turn = _EndlessTurn()
        self.interrupted: list[str] = []

    def run_turn(self, session_id: str, message: str, **_: Any) -> _EndlessTurn:
        return self.turn

    async def interrupt(self, session_id: str) -> list[dict[str, Any]]:
        self.interrupted.append(session_id)
        return [{"type": "user.interrupt"}]


async def test_ctrl_c_during_run_sends_an_interrupt() -> None:
    from reconciler.cli.run import talk

    rt = _Runtime()
    seen: list[Any] = []
    task = asyncio.ensure_future(talk(rt, "sesn_1", "hi", seen.append))
    while not seen:
        await asyncio.sleep(0)
    task.cancel()  # what asyncio.run does on Ctrl-C
    outcome = await task
    assert outcome.interrupted
    assert rt.interrupted == ["sesn_1"]
    assert rt.turn.closed
