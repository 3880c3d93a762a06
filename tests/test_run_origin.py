"""`run` and the runtime's lookups warn about a lockfile applied to another provider.

A user applies the example manifests to ``reconciler provider serve`` (loopback TCP), then
runs an agent or looks one up from a program without the provider URL: the lockfile's ids
belong to the served provider, not to the embedded one. The user saw only a 404 about an
unknown agent; now a warning first names both origins and the option to check. (A warning,
not a refusal: the same database may be served at another URL.)
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok

from reconciler.provider.local import create_app
from reconciler.provider.local.server import BackgroundServer
from reconciler.runtime import ManagedRuntime, OriginMismatch


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    make_workdir(tmp_path, monkeypatch)
    with BackgroundServer(create_app(tmp_path / "served.db")) as server:
        ok("--provider-url", server.url, "apply", "--auto-approve")
        yield server.url


def test_run_without_the_provider_url_names_both_origins(served: str) -> None:
    result = cli("run", "reviewer", "-m", "hi")
    assert result.exit_code == 1
    warning = "Warning: the lockfile was applied to http://127.0.0.1:"
    assert warning in result.stderr, result.stderr
    assert "this run talks to the embedded provider at .reconciler/provider.db" in result.stderr
    assert "Check --provider-url" in result.stderr

    good = cli("--provider-url", served, "run", "reviewer", "-m", "hi")
    assert good.exit_code == 0, good.stderr
    assert "echo: hi" in good.stdout
    assert "Warning" not in good.stderr


def test_runtime_lookups_warn_about_a_lockfile_of_another_provider(served: str) -> None:
    async def lookup(**options: str) -> str:
        async with ManagedRuntime(**options) as rt:
            return rt.agent("reviewer")

    with pytest.warns(OriginMismatch, match="was applied to http://127.0.0.1:.*provider_url="):
        asyncio.run(lookup())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert asyncio.run(lookup(provider_url=served)).startswith("agent_")


def test_the_origin_warning_points_at_the_callers_line(served: str) -> None:
    """Whichever lookup a program calls, the warning names the program's line (not the
    runtime's modules or asyncio's), as a UserWarning should."""

    async def lookups() -> None:
        async with ManagedRuntime() as rt:
            rt.agent("reviewer")
            rt.applied("deployment.nightly-review")
            rt.memory_store_resource("review-notes", access="read_only")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(lookups())
    where = [(Path(w.filename).name, w.category) for w in caught]
    assert where == [(Path(__file__).name, OriginMismatch)] * 3, [
        (w.filename, w.lineno) for w in caught
    ]


def test_the_embedded_providers_in_an_origin_warning_are_paths_from_where_the_user_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the lockfile records the embedded provider relative to its folder (state/): run's
    # warning said "applied to local:../.reconciler/provider.db, but this run talks to
    # local:../other.db", paths that name nothing from the project directory
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    result = cli("--provider-db", "other.db", "run", "reviewer", "-m", "hi")
    said = " ".join(result.stderr.split())
    assert "local:../" not in said, said
    assert (
        "Warning: the lockfile was applied to the embedded provider at .reconciler/provider.db, "
        "but this run talks to the embedded provider at other.db" in said
    ), said
    planned = cli("--provider-db", "other.db", "plan")
    assert planned.exit_code == 1
    said = " ".join(planned.stderr.split())
    assert "local:../" not in said, said
    assert (
        "was applied to the embedded provider at .reconciler/provider.db, but this run talks "
        "to the embedded provider at other.db" in said
    ), said
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    elsewhere = cli(
        "-f",
        "../manifests",
        "--lockfile",
        "../state/reconciler.lock",
        "run",
        "reviewer",
        "-m",
        "hi",
    )
    said = " ".join(elsewhere.stderr.split())
    assert (
        "applied to the embedded provider at ../.reconciler/provider.db, but this run talks to "
        "the embedded provider at .reconciler/provider.db" in said
    ), said
