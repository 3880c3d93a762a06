"""Start-up: commands that never talk to a provider import no HTTP stack, server or diff library.

``validate``, ``fmt``, ``schema`` and ``--version`` run in pre-commit hooks and on every CI
push, so their start-up is paid often. Each runs here as a user runs it - a new process,
``python -m reconciler.cli ...`` - under ``-X importtime``, which lists every module the
process imported; none of the heavy packages may be among them. No timing is asserted (the
numbers are in ``bench/RESULTS.md``); only which modules load.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_reliability_support import clean_env

REPO = Path(__file__).resolve().parent.parent

#: Top-level packages that only commands talking to a provider (or serving one) may load.
HEAVY = frozenset(
    {
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "fastapi",
        "starlette",
        "uvicorn",
        "deepdiff",
        "rich",
        "anthropic",
    }
)
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(?P<module>[\w.]+)$", re.MULTILINE)


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    """Top-level packages imported by ``python -m reconciler.cli ARGS`` (it must exit 0)."""
    env = clean_env(PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reconciler.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    return {m["module"].split(".")[0] for m in _IMPORTED.finditer(result.stderr)}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("startup")
    shutil.copytree(REPO / "manifests", work / "manifests")
    return work


@pytest.mark.parametrize(
    "args",
    [["validate"], ["fmt", "--check"], ["schema"], ["--version"]],
    ids=["validate", "fmt", "schema", "version"],
)
def test_offline_commands_import_no_http_server_or_diff_library(
    args: list[str], workdir: Path
) -> None:
    modules = imported_modules(args, workdir)
    assert "reconciler" in modules and "click" in modules  # the listing is read right
    assert not modules & HEAVY, f"reconciler {' '.join(args)} imported {sorted(modules & HEAVY)}"


def test_a_command_that_connects_does_load_the_http_stack(workdir: Path) -> None:
    """The check above can fail: ``plan`` (embedded provider) loads what it needs."""
    modules = imported_modules(["--provider-db", str(workdir / "provider.db"), "plan"], workdir)
    assert {"httpx", "fastapi"} <= modules
