"""Helpers shared by the drift, import, fmt and CI tests (this module holds no tests).

Every test works in a temporary directory with a copy of the repository's ``manifests/``;
the CLI's embedded provider keeps its data in ``.reconciler/provider.db`` there, and changes
"behind git's back" are made by a second client on the same database file, as a colleague
clicking in the console would.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.provider import ProviderClient, embedded_client
from support.reliability import RECONCILER_VARS

REPO = Path(__file__).resolve().parents[2]
DB = ".reconciler/provider.db"
LOCKFILE = "state/reconciler.lock"
T = TypeVar("T")


def make_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, manifests: bool = True
) -> Path:
    """A project directory: the example manifests (optionally), cwd, a clean environment."""
    if manifests:
        shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    for var in RECONCILER_VARS:
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def cli(*args: str) -> Result:
    """``reconciler ARGS`` in-process; unexpected exceptions propagate."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def out_of_band(action: Callable[[ProviderClient], Awaitable[T]]) -> T:
    """Run ``action`` with a second client of the same provider database."""

    async def run() -> T:
        async with embedded_client(DB) as client:
            return await action(client)

    return asyncio.run(run())


def lockfile() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(LOCKFILE).read_text())
    return data


def remote_id(address: str) -> str:
    return str(lockfile()["resources"][address]["id"])


def drift_json(*args: str, code: int = 2) -> dict[str, Any]:
    result = cli("drift", "--format", "json", *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def items(report: dict[str, Any], drift_type: str | None = None) -> list[dict[str, Any]]:
    return [i for i in report["items"] if drift_type is None or i["type"] == drift_type]


def plan_is_clean(*args: str) -> Result:
    """``plan --detailed-exitcode`` exits 0 (no change)."""
    result = cli(*args, "plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout
    assert "No changes." in result.stdout
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def position(text: str, at: int) -> str:
    """``line:col`` (from 1) of offset ``at`` in ``text``: where an error should point."""
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return f"{line}:{column}"
