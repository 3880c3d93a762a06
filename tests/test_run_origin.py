"""`run` and the runtime's lookups warn about a lockfile applied to another provider.

A user applies the example manifests to ``reconciler provider serve`` (loopback TCP), then
runs an agent or looks one up from a program without the provider URL: the lockfile's ids
belong to the served provider, not to the embedded one. The user saw only a 404 about an
unknown agent; now a warning first names both origins and the option to check. (A warning,
not a refusal: the same database may be served at another URL.)
"""

from __future__ import annotations

import asyncio
import shutil
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
    # no embedded database here: refused before one is made (it would know none of the ids)
    result = cli("run", "reviewer", "-m", "hi")
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "it was applied to http://127.0.0.1:" in said, said
    assert "the embedded provider at .reconciler/provider.db does not exist" in said
    assert "--provider-url" in said
    assert not Path(".reconciler/provider.db").exists()

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
    shutil.copyfile(".reconciler/provider.db", "other.db")  # a copy: another origin
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


def test_run_refuses_an_embedded_provider_that_does_not_exist_and_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run from a subdirectory with -f and --lockfile pointing back: the embedded provider is
    # looked for under the subdirectory, where there is none. run created an empty database
    # there and then said the deployment "was deleted outside reconciler ... `reconciler
    # apply` creates it again"
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    result = cli(
        "-f",
        "../manifests",
        "--lockfile",
        "../state/reconciler.lock",
        "run",
        "nightly-review",
        "-m",
        "hi",
    )
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert "deleted outside reconciler" not in said, said
    assert (
        "Error: the embedded provider at .reconciler/provider.db does not exist, so it holds "
        "none of the ids ../state/reconciler.lock records (it was applied to the embedded "
        "provider at ../.reconciler/provider.db): run from the project directory, or pass "
        "--provider-db (or --provider-url)" in said
    ), said
    assert not (tmp_path / "sub" / ".reconciler").exists()
