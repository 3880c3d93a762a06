"""A program that runs the agents a team applied with its state in PostgreSQL
(``reconciler --backend URL apply``): the runtime's lookups read that state, as the CLI's
``run`` does, when told where it is (``backend=`` or ``RECONCILER_BACKEND``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from support.gitops import make_workdir, ok

from reconciler.runtime import ManagedRuntime

pytestmark = pytest.mark.tcp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_workdir(tmp_path, monkeypatch)
    monkeypatch.delenv("RECONCILER_BACKEND", raising=False)
    return path


def test_a_runtime_runs_the_agent_applied_to_a_database_state(
    workdir: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    recorded = json.loads(ok("--backend", pg_url, "state", "show", "agent.coder").stdout)

    async def main() -> list[str]:
        async with ManagedRuntime(backend=pg_url) as rt:
            assert rt.agent("coder") == recorded["id"]
            assert rt.applied("deployment.nightly-review").pins == {"agent.reviewer": 1}
            session_id = await rt.create_session(rt.agent("coder"), rt.environment("python-data"))
            events = await rt.run_turn(session_id, "hello").collect()
            return [e["content"][0]["text"] for e in events if e["type"] == "agent.message"]

    assert asyncio.run(main()) == ["echo: hello"]

    monkeypatch.setenv("RECONCILER_BACKEND", pg_url)  # as the team's CI exports it
    assert ManagedRuntime().agent("coder") == recorded["id"]
    # a lockfile path is not a backend: refused when the runtime is built, never shown
    with pytest.raises(ValueError, match="^backend takes a PostgreSQL connection string"):
        ManagedRuntime(backend="state/reconciler.lock")


def test_a_name_not_in_the_database_state_says_where_it_was_looked_for(
    workdir: Path, pg_url: str
) -> None:
    from reconciler.runtime import NotApplied
    from reconciler.state.postgres.conninfo import redact

    ok("--backend", pg_url, "apply", "--auto-approve")

    with pytest.raises(NotApplied) as caught:
        ManagedRuntime(backend=pg_url).agent("coderr")

    assert str(caught.value) == (
        f"agent.coderr is not in the state in {redact(pg_url)} (project default): apply the "
        "manifests first (`reconciler apply`); did you mean agent.coder?"
    )


def test_a_program_elsewhere_on_the_applied_embedded_database_gets_no_origin_warning(
    workdir: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--backend`` keeps no lockfile folder an embedded provider's path could be relative
    to: a program run from another directory, given the very database that was applied
    (an absolute ``db_path``), is on the same provider and hears no ``OriginMismatch``."""
    import warnings

    ok("--backend", pg_url, "apply", "--auto-approve")
    recorded = json.loads(ok("--backend", pg_url, "state", "show", "agent.coder").stdout)
    db = (workdir / ".reconciler" / "provider.db").resolve()
    elsewhere = tmp_path / "jobs" / "nightly"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any OriginMismatch fails the test
        assert ManagedRuntime(backend=pg_url, db_path=db).agent("coder") == recorded["id"]

    # another embedded database is still another provider, wherever it is named from
    from reconciler.runtime import OriginMismatch

    with pytest.warns(OriginMismatch, match="was applied to the embedded provider at "):
        ManagedRuntime(backend=pg_url, db_path=elsewhere / "other.db").agent("coder")
    # and the CLI, run from the project directory again, still plans against it
    monkeypatch.chdir(workdir)
    ok("--backend", pg_url, "plan")


def test_a_database_state_with_an_embedded_origin_of_before_stays_usable(
    workdir: Path, pg_url: str
) -> None:
    """A database state written when embedded origins were relative to ``state/`` of the
    folder the command ran from still matches from that folder; apply records it anew."""
    import warnings

    from reconciler.state.postgres.db import Database
    from reconciler.state.postgres.store import PgStateStore

    ok("--backend", pg_url, "apply", "--auto-approve")
    store = PgStateStore(Database(pg_url), "default")
    store.load()
    store.commit(lambda lf: lf.model_copy(update={"origin": "local:../.reconciler/provider.db"}))
    store.db.close()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ManagedRuntime(backend=pg_url).agent("coder")
    ok("--backend", pg_url, "plan")
    ok("--backend", pg_url, "apply", "--auto-approve")
    store = PgStateStore(Database(pg_url), "default")
    origin = store.load().origin
    store.db.close()
    assert origin == "local:" + (workdir / ".reconciler" / "provider.db").resolve().as_posix()
