"""How apply records intents: all at once before the first create, and never left behind.

A create may be sent only once its pending intent is on disk (issue #4). Apply writes the
intents of every create whose parent is known in one go, before the first request, so that
creates do not queue for the disk one by one; a create whose parent is made in the same run
(a credential of a new vault) gets its intent when it is sent. These tests watch the lockfile
on disk from inside the provider, at the moment each create arrives.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.app import Settings, apply
from reconciler.provider import StreamingASGITransport
from reconciler.provider.local import create_app

EXAMPLES = Path(__file__).resolve().parent.parent / "manifests"
CREATE_PATHS = {
    "/v1/agents": "agent",
    "/v1/environments": "environment",
    "/v1/vaults": "vault",
    "/v1/memory_stores": "memory_store",
    "/v1/deployments": "deployment",
    "/v1/skills": "skill",
}


class Watch:
    """ASGI middleware: reads the lockfile's pending intents when a create arrives."""

    def __init__(self, app: Any, lockfile: Path, fail: Callable[[str], bool]) -> None:
        self.app, self.lockfile, self.fail = app, lockfile, fail
        self.seen: list[tuple[str, set[str]]] = []  # (path, pending addresses on disk)

    def pending_on_disk(self) -> set[str]:
        if not self.lockfile.exists():
            return set()
        return set(json.loads(self.lockfile.read_text())["pending"])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        creates = path in CREATE_PATHS or path.endswith("/credentials")
        if scope["type"] == "http" and scope["method"] == "POST" and creates:
            self.seen.append((path, self.pending_on_disk()))
            if self.fail(path):
                body = b'{"type":"error","error":{"type":"invalid_request_error","message":"no"}}'
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def workspace(
    tmp_path: Path, fail: Callable[[str], bool] = lambda _: False
) -> tuple[Settings, Watch]:
    shutil.copytree(EXAMPLES, tmp_path / "manifests")
    lockfile = tmp_path / "state" / "reconciler.lock"
    watch = Watch(create_app(tmp_path / "provider.db"), lockfile, fail)
    settings = Settings(
        manifests=tmp_path / "manifests",
        lockfile=lockfile,
        provider_url="http://local-provider",
        api_key="test",
        client_options={"transport": StreamingASGITransport(watch)},
    )
    return settings, watch


async def test_every_intent_is_on_disk_before_its_create(tmp_path: Path) -> None:
    settings, watch = workspace(tmp_path)
    result = await apply(settings)
    assert result is not None and result.report.ok, result and result.report.failures
    creates = [a for a in result.plan.actions if a.type == "create"]
    credential = "vault.github.credential.github-mcp"
    early = {a.address for a in creates if a.address != credential}
    assert len(watch.seen) == len(creates)
    first_path, first_pending = watch.seen[0]
    # one write, before anything was sent, holds every intent whose parent is known ...
    assert first_pending == early, first_path
    # ... and the credential of the new vault gets its own once the vault's id is known
    (at_credential,) = [p for path, p in watch.seen if path.endswith("/credentials")]
    assert credential in at_credential
    # every create found its own intent on disk
    assert all(pending for _, pending in watch.seen)
    assert watch.pending_on_disk() == set()
    assert set(json.loads(settings.lockfile.read_text())["resources"]) >= early | {credential}


async def test_intents_of_creates_never_sent_are_dropped(tmp_path: Path) -> None:
    """The environment fails, so the deployment that uses it is never sent."""
    settings, watch = workspace(tmp_path, fail=lambda path: path == "/v1/environments")
    result = await apply(settings)
    assert result is not None and not result.report.ok
    failed = {o.address for o in result.report.outcomes if not o.ok}
    assert failed == {"environment.python-data", "deployment.nightly-review"}
    assert not any(path == "/v1/deployments" for path, _ in watch.seen)
    # the environment's create was sent: its intent stays for the next run to resolve by
    # listing; the deployment's was never sent, so it leaves no intent behind
    assert watch.pending_on_disk() == {"environment.python-data"}
    # the next run (provider healthy again) converges and clears it
    watch.fail = lambda _: False
    again = await apply(settings)
    assert again is not None and again.report.ok, again.report.failures
    assert watch.pending_on_disk() == set()


def wait_for_intents(lockfile: Path) -> None:
    """Until ``lockfile`` holds pending intents (written by another thread meanwhile)."""
    deadline = time.monotonic() + 30  # a guard against hanging, not a timing assertion
    while not (lockfile.exists() and json.loads(lockfile.read_text())["pending"]):
        assert time.monotonic() < deadline, "the intents were not written while the plan showed"
        time.sleep(0.01)


async def test_with_nobody_to_ask_the_intents_are_written_while_the_plan_is_shown(
    tmp_path: Path,
) -> None:
    """No question (--auto-approve): the first write is under way when the plan is shown,
    so its fsyncs pass during the rendering; nothing is sent before it is done."""
    settings, watch = workspace(tmp_path)
    shown: list[str] = []

    def on_plan(plan: Any) -> None:
        wait_for_intents(settings.lockfile)
        shown.append("plan")

    result = await apply(settings, on_plan=on_plan)
    assert shown == ["plan"]
    assert result is not None and result.report.ok, result and result.report.failures
    assert all(pending for _, pending in watch.seen)


async def test_a_plan_that_cannot_be_shown_takes_its_intents_back(tmp_path: Path) -> None:
    """The plan's output fails (a closed pipe): nothing is sent and no intent stays behind."""
    settings, watch = workspace(tmp_path)

    def on_plan(plan: Any) -> None:
        wait_for_intents(settings.lockfile)  # written while the plan was being shown
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        await apply(settings, on_plan=on_plan)
    assert watch.seen == []
    assert watch.pending_on_disk() == set()
    again = await apply(settings)
    assert again is not None and again.report.ok, again.report.failures
    assert not again.forgotten_intents


async def test_a_question_comes_before_any_intent(tmp_path: Path) -> None:
    """Asked and declined: nothing was written, nothing sent."""
    settings, watch = workspace(tmp_path)
    asked: list[bool] = []

    def confirm(plan: Any) -> bool:
        asked.append(settings.lockfile.exists())
        return False

    assert await apply(settings, confirm=confirm) is None
    assert asked == [False]
    assert watch.seen == [] and watch.pending_on_disk() == set()


def test_ctrl_c_in_the_middle_of_an_apply(tmp_path: Path) -> None:
    """SIGINT to a real ``reconciler apply``: exit 130, a lockfile that holds what was done
    and intents only for creates that were sent, and a next run that converges, no twins."""
    import os
    import subprocess
    import sys
    import time

    from support.reliability import cli_process, interrupt, owned_objects, write_fleet

    from reconciler.provider.local import BackgroundServer, FaultConfig

    fleet = write_fleet(
        tmp_path / "manifests", agents=30, environments=2, credentials=1, deployments=2
    )
    env = {**os.environ, **fleet.env, "NO_COLOR": "1"}
    for var in ("RECONCILER_PROVIDER_URL", "RECONCILER_PROJECT", "RECONCILER_LOCKFILE"):
        env.pop(var, None)
    lockfile = tmp_path / "state" / "reconciler.lock"
    db = tmp_path / "provider.db"
    with BackgroundServer(create_app(db, FaultConfig(latency_ms=200))) as slow:
        args = ["--project", "p", "--provider-url", slow.url, "apply", "--auto-approve"]
        with cli_process([*args, "--parallelism", "4"], env=env, cwd=tmp_path) as proc:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until a few creates are done
                if lockfile.exists() and len(json.loads(lockfile.read_text())["resources"]) >= 4:
                    break
                time.sleep(0.05)
            out, err = interrupt(proc)
        assert proc.returncode == 130, (out, err)
        assert "Traceback" not in err
        data = json.loads(lockfile.read_text())
        done, pending = set(data["resources"]), set(data["pending"])
        live = owned_objects(db, "p")
        assert 4 <= len(done) < len(fleet.addresses)
        assert done <= set(live)  # every recorded create exists
        # only creates that were sent keep an intent: at most the 4 in flight
        assert len(pending) <= 4 and not pending & done
        assert set(live) <= done | pending  # nothing live that the lockfile does not know
        again = subprocess.run(
            [sys.executable, "-m", "reconciler.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            check=False,
            text=True,
        )
        assert again.returncode == 0, again.stderr
    live = owned_objects(db, "p")
    assert set(live) == set(fleet.addresses)
    assert all(len(objs) == 1 for objs in live.values()), "a create was made twice"
    assert json.loads(lockfile.read_text())["pending"] == {}
