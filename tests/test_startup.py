"""Start-up: commands that never talk to a provider import no HTTP stack, server or diff library.

``validate``, ``fmt``, ``schema`` and ``--version`` run in pre-commit hooks and on every CI
push, so their start-up is paid often. Each runs here as a user runs it - a new process,
the equivalent of ``python -m reconciler.cli ...`` - which lists at exit every module it
loaded; none of the heavy packages may be among them. No timing is asserted (the numbers are
in ``bench/RESULTS.md``); only which modules load.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.reliability import clean_env

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
        # the CEL library and its parser: only manifests with kind: Policy documents load it
        "celpy",
        "lark",
        "psycopg",  # the PostgreSQL state backend: only with --backend
    }
)
#: ``python -m ENTRY ARGS`` (ENTRY in argv[2]) that prints, at exit on stderr, every module
#: the process loaded (a failed optional import leaves None in sys.modules: not loaded).
_RUN_AND_LIST = """
import atexit, json, runpy, sys
atexit.register(
    lambda: print("MODULES " + json.dumps([n for n, m in sys.modules.items() if m]), file=sys.stderr)
)
entry, sys.argv = sys.argv[2], ["reconciler", *sys.argv[3:]]
runpy.run_module(entry, run_name="__main__", alter_sys=True)
"""


def python_with_this_checkout(
    script: str, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -c SCRIPT ARGS`` in ``cwd``, this checkout first on its path; its output."""
    return python_of_this_checkout("-c", script, *args, cwd=cwd)


def python_of_this_checkout(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` in ``cwd``, this checkout first on its path; its output."""
    env = clean_env(PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def imported_modules(
    args: list[str], cwd: Path, entry: str = "reconciler.cli", *, whole: bool = False
) -> set[str]:
    """Top-level packages (``whole``: modules) loaded by ``python -m ENTRY ARGS`` (it must
    exit 0)."""
    result = python_with_this_checkout(_RUN_AND_LIST, "--", entry, *args, cwd=cwd)
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    listing = result.stderr.rsplit("MODULES ", 1)[1]
    return {name if whole else name.split(".")[0] for name in json.loads(listing)}


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


def test_validate_loads_the_cel_library_only_for_policies(tmp_path: Path) -> None:
    """The check above can fail: a policy among the manifests does load CEL."""
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    shutil.copy(REPO / "examples/policies/owner-required.yaml", tmp_path / "manifests")
    assert "celpy" in imported_modules(["validate"], tmp_path)


def test_a_command_that_connects_does_load_the_http_stack(workdir: Path) -> None:
    """The check above can fail: ``plan`` (embedded provider) loads what it needs."""
    args = ["--provider-db", str(workdir / "provider.db"), "plan"]
    assert {"httpx", "fastapi"} <= imported_modules(args, workdir)


#: Modules of the reconciler that only other commands need: ``import`` (adopt, unmanaged and
#: what they derive), ``--format markdown``, the embedded provider's transport.
NOT_FOR_PLANNING = frozenset(
    {
        "reconciler.app.adopt",
        "reconciler.app.adoptions",
        "reconciler.app.unmanaged",
        "reconciler.app.skillimport",
        "reconciler.engine.derive",
        "reconciler.render.markdown",
        "reconciler.provider.asgi_transport",
        "reconciler.runtime",  # sessions: rollout checks and ``run`` load it when they run
    }
)


@pytest.mark.tcp
def test_plan_over_http_imports_only_what_planning_needs(workdir: Path, tcp_provider: str) -> None:
    """``plan`` and ``apply`` start without the modules of other commands (each costs start-up
    time: bench/RESULTS.md, issue #12 session 7)."""
    args = ["--provider-url", tcp_provider, "plan"]
    modules = imported_modules(args, workdir, entry="reconciler.launch", whole=True)
    assert {"reconciler.app.plan", "reconciler.render.text"} <= modules  # read right
    assert not modules & NOT_FOR_PLANNING, sorted(modules & NOT_FOR_PLANNING)
    markdown = imported_modules([*args, "--format", "markdown"], workdir, whole=True)
    assert "reconciler.render.markdown" in markdown  # loaded when asked for


@pytest.mark.tcp
def test_the_console_script_skips_what_it_never_uses(workdir: Path, tcp_provider: str) -> None:
    """The console script's entry (``reconciler.launch``, pyproject.toml) does not import
    httpx's own command line (pygments) over HTTP, where ``python -m reconciler.cli`` does
    (when it is installed); and neither imports httpcore, h11, anyio or trio: the client's
    transport (``provider.asyncio_transport``) is HTTP/1.1 on asyncio and httptools."""
    args = ["--provider-url", tcp_provider, "plan"]
    spared = {"pygments", "trio", "httpcore", "h11", "anyio"}
    plain = imported_modules(args, workdir)
    assert "httpx" in plain and not plain & (spared - {"pygments"}), sorted(plain & spared)
    modules = imported_modules(args, workdir, entry="reconciler.launch")
    assert "httpx" in modules and not modules & spared, sorted(modules & spared)
    if importlib.util.find_spec("pygments") is not None:
        assert "pygments" in plain  # what the entry spares, where pygments is installed


#: ``python -m reconciler.launch ARGS`` that says, from an ``atexit`` handler (run after the
#: command, as the interpreter shuts down), how many objects the heap holds frozen.
_RUN_AND_COUNT_FROZEN = """
import atexit, gc, runpy, sys
atexit.register(lambda: print(f"FROZEN {gc.get_freeze_count()}", file=sys.stderr))
sys.argv = ["reconciler", *sys.argv[1:]]
runpy.run_module("reconciler.launch", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    ("args", "code"), [(["--version"], 0), (["-f", "missing", "validate"], 1)], ids=["ok", "error"]
)
def test_the_console_script_exits_with_its_heap_frozen(
    args: list[str], code: int, tmp_path: Path
) -> None:
    """The entry freezes the heap once the command is done, so the interpreter's last
    collections skip it (bench/RESULTS.md, issue #12 session 7); the exit code, the output
    and the ``atexit`` handlers are as before."""
    result = python_with_this_checkout(_RUN_AND_COUNT_FROZEN, *args, cwd=tmp_path)
    assert result.returncode == code, result.stderr[-3000:]
    assert (result.stdout if code == 0 else result.stderr).strip()  # what the command says
    frozen = int(result.stderr.rsplit("FROZEN ", 1)[1].split()[0])
    assert frozen > 10_000, frozen  # the command's modules and data, not a handful


def test_the_console_script_freezes_its_modules_before_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What importing the command line made lives as long as the process: the entry freezes
    it before the command runs, so the collector's first passes do not walk it."""
    import gc

    import reconciler.cli
    from reconciler import launch

    frozen: list[int] = []
    monkeypatch.setattr(reconciler.cli, "main", lambda **_: frozen.append(gc.get_freeze_count()))
    monkeypatch.setattr(launch, "_trim_imports", lambda: None)  # this process keeps trio
    ended: list[int] = []
    monkeypatch.setattr(launch, "_exit_now", ended.append)  # not this test process
    gc.unfreeze()
    try:
        launch.run()
    finally:
        gc.unfreeze()
    assert frozen and frozen[0] > 1_000, frozen
    assert ended == [0]


#: ``python -m ENTRY ARGS``, its stdout read by a pipe.
_ENTRIES = ("reconciler.cli", "reconciler.launch")


@pytest.mark.parametrize(
    "args",
    [["schema"], ["-f", "missing", "validate"], ["--no-such-option"]],
    ids=["output", "error", "usage"],
)
def test_the_console_script_ends_as_the_interpreter_would(args: list[str], tmp_path: Path) -> None:
    """The entry ends the process with ``os._exit`` once the command is done, skipping the
    teardown of its objects: every byte of output still arrives, the exit status and the
    ``atexit`` handlers are those of an ordinary exit (``python -m reconciler.cli``)."""
    script = """
import atexit, runpy, sys
atexit.register(lambda: print("ATEXIT", file=sys.stderr))
entry = sys.argv[1]
sys.argv = ["reconciler", *sys.argv[2:]]
runpy.run_module(entry, run_name="__main__", alter_sys=True)
"""
    plain, launched = (
        python_with_this_checkout(script, entry, *args, cwd=tmp_path) for entry in _ENTRIES
    )
    assert launched.returncode == plain.returncode, launched.stderr[-3000:]
    assert launched.stdout == plain.stdout
    assert launched.stderr == plain.stderr
    assert launched.stderr.rstrip().endswith("ATEXIT")
    if args == ["schema"]:
        assert len(launched.stdout) > 10_000  # more than one buffer's worth, all of it


def test_a_reader_that_leaves_early_is_no_error(tmp_path: Path) -> None:
    """``reconciler schema | head -1``: the entry ends quietly, as the command line does."""
    env = clean_env(PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    args = [sys.executable, "-m", "reconciler.launch", "schema"]
    with subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()
        proc.stdout.close()  # the reader leaves
        err = proc.stderr.read().decode()
        status = proc.wait(timeout=120)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert status in (0, 141), (status, err)  # done before it noticed, or the broken pipe's


@pytest.mark.parametrize(("before", "after"), [(None, "__all__"), ("", ""), ("1", "1")])
def test_the_console_script_turns_pydantic_plugins_off_unless_told(
    before: str | None, after: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic scans every installed distribution's entry points for plugins when the
    first model is built; the command uses none, so its entry turns them off, unless the
    user's environment says otherwise (empty: keep them)."""
    import sys

    from reconciler import launch

    if before is None:
        monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", before)
    for name in ("trio", "pydantic.v1"):  # restored after
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
    launch._trim_imports()
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == after


def test_ctrl_c_while_the_console_script_starts_is_no_traceback(tmp_path: Path) -> None:
    """Ctrl-C in the first second of `reconciler run ...` (while the command's modules load)
    printed a Python traceback; the console script now ends as a Ctrl-C does later: a word
    on stderr and exit 130. (The interrupt is raised where the command line is imported.)"""
    script = """
import sys

class Interrupting:
    def find_spec(self, name, path=None, target=None):
        if name == "reconciler.cli":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupting())
sys.argv = ["reconciler", "run", "coder", "-m", "hi"]
from reconciler.launch import run
run()
"""
    result = python_with_this_checkout(script, cwd=tmp_path)
    assert result.returncode == 130, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip() == "Interrupted."


def test_ctrl_c_while_python_m_reconciler_cli_starts_is_no_traceback(tmp_path: Path) -> None:
    """``python -m reconciler.cli plan`` sent Ctrl-C in its first second printed a Python
    traceback (the interpreter imports the package, and so the whole command line, before
    its ``__main__`` runs); it now ends as the console script does: "Interrupted.", exit 130.
    A real SIGINT reaches the process while ``reconciler.app`` is being imported (a
    ``sitecustomize`` on the path sends it)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "class Interrupting:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'reconciler.app':\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Interrupting())\n"
    )
    env = clean_env(
        PYTHONPATH=os.pathsep.join([str(hooks), str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "plan"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 130, result.stderr[-3000:]
    assert result.stderr.strip() == "Interrupted."
    assert result.stdout == ""


@pytest.mark.parametrize("closed", [1, 2], ids=["stdout", "stderr"])
def test_the_console_script_with_a_closed_stream_ends_as_the_interpreter_would(
    closed: int, tmp_path: Path
) -> None:
    """``reconciler --version >&-`` (a stream closed when the process starts, so
    ``sys.stdout`` is None) ended in a traceback from the entry's last flush, "'NoneType'
    object has no attribute 'flush'", exit 1; it now ends as ``python -m reconciler.cli``
    does."""
    runs = [
        subprocess.run(
            [sys.executable, "-m", entry, "--version"],
            cwd=tmp_path,
            env=clean_env(
                PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if closed == 2 else None,
            stderr=subprocess.PIPE if closed == 1 else None,
            preexec_fn=lambda: os.close(closed),
            timeout=120,
            check=False,
        )
        for entry in _ENTRIES
    ]
    plain, launched = runs
    seen = launched.stderr if closed == 1 else launched.stdout
    assert b"Traceback" not in seen, seen[-3000:]
    assert launched.returncode == plain.returncode == 0


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--version"], 0), (["-f", "missing", "validate"], 1), (["--help"], 0)],
    ids=["ok", "error", "help"],
)
def test_python_m_reconciler_is_the_command(args: list[str], code: int, tmp_path: Path) -> None:
    """``python -m reconciler`` (where the console script is not on PATH) runs the command
    through the console script's own entry: the same output, the same exit status."""
    short, entry = (
        python_of_this_checkout("-m", entry, *args, cwd=tmp_path)
        for entry in ("reconciler", "reconciler.launch")
    )
    assert short.returncode == code, short.stderr[-3000:]
    assert (short.returncode, short.stdout, short.stderr) == (
        entry.returncode,
        entry.stdout,
        entry.stderr,
    )
    assert (short.stdout if code == 0 else short.stderr).strip()
    if args == ["--help"]:
        assert short.stdout.startswith("Usage: reconciler ")
