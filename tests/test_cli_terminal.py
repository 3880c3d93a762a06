"""The apply question on a real terminal: a pseudo-terminal, a real process, a real Ctrl-C.

``CliRunner`` has no terminal, so these run ``python -m reconciler.cli`` with stdin and stderr
on a pty (``pty.openpty``), as a person at a shell would, and stdout on the pty or a pipe
(``| tee apply.log``). Ctrl-C is the byte ``\\x03`` typed into the pty: the terminal's line
discipline turns it into SIGINT for the foreground process group, as a keyboard does.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.gitops import make_workdir, ok
from support.reliability import clean_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

#: A guard against a hung child, never an assertion about speed.
PATIENCE = 60.0


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


class Terminal:
    """A child process whose stdin and stderr (and, unless piped, stdout) are a pty."""

    def __init__(self, proc: subprocess.Popen[bytes], master: int) -> None:
        self.proc = proc
        self.master = master
        self.seen = b""

    def read_until(self, needle: str) -> str:
        """What the terminal showed, up to ``needle``; fails if the child ends first."""
        deadline = time.monotonic() + PATIENCE
        while needle.encode() not in self.seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never shown; the terminal shows:\n{self.text}")
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the pty
                    chunk = b""
                if not chunk:
                    raise AssertionError(
                        f"{needle!r} never shown; the terminal shows:\n{self.text}"
                    )
                self.seen += chunk
        return self.text

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self) -> int:
        """The exit code; the rest of the terminal's output is drained into ``seen``."""
        deadline = time.monotonic() + PATIENCE
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the command did not end; the terminal shows:\n{self.text}")
            self._drain(0.1)
        self._drain(0)
        return self.proc.returncode

    def _drain(self, wait: float) -> None:
        ready, _, _ = select.select([self.master], [], [], wait)
        if ready:
            try:
                self.seen += os.read(self.master, 4096)
            except OSError:
                pass

    @property
    def text(self) -> str:
        return self.seen.decode(errors="replace").replace("\r\n", "\n")


#: Runs first in the child: a session of its own (start_new_session) with the pty on fd 0 as
#: its controlling terminal, so that ^C typed into the pty signals the child's process group,
#: as in a shell; then it becomes the reconciler.
_TAKE_THE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'reconciler.cli', *sys.argv[1:]])"
)


@contextmanager
def on_terminal(args: list[str], *, pipe_stdout: bool, term: str = "dumb") -> Iterator[Terminal]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", _TAKE_THE_TERMINAL, *args],
        stdin=slave,
        stdout=subprocess.PIPE if pipe_stdout else slave,
        stderr=slave,
        env=clean_env(TERM=term),
        start_new_session=True,
    )
    os.close(slave)
    try:
        yield Terminal(proc, master)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        os.close(master)


def _lockfile_resources(workdir: Path) -> dict[str, object]:
    path = workdir / "state/reconciler.lock"
    if not path.exists():
        return {}
    data: dict[str, object] = json.loads(path.read_text())["resources"]
    return data


def test_one_ctrl_c_at_the_question_cancels_at_once(workdir: Path) -> None:
    with on_terminal(["apply"], pipe_stdout=False) as term:
        term.read_until("Enter a value")
        term.type("\x03")
        code = term.wait()
    assert code == 130, term.text
    assert "Apply cancelled; nothing was changed" in term.text
    assert "Traceback" not in term.text
    assert _lockfile_resources(workdir) == {}
    assert not (workdir / "state/reconciler.lock.lock").exists()


def test_apply_piped_to_tee_asks_on_the_terminal(workdir: Path) -> None:
    # `reconciler apply | tee apply.log`: stdout is a pipe, stdin and stderr the terminal
    with on_terminal(["apply"], pipe_stdout=True) as term:
        shown = term.read_until("Enter a value")
        term.type("yes\n")
        code = term.wait()
        assert term.proc.stdout is not None
        log = term.proc.stdout.read().decode()
    assert code == 0, term.text + log
    assert "Do you want to perform these actions?" in shown
    # the log holds the plan and the result, not the question
    assert "Plan: 8 to create" in log
    assert "Apply complete: 8 created" in log
    assert "Enter a value" not in log
    assert len(_lockfile_resources(workdir)) == 8


def test_apply_piped_to_tee_asks_once_tee_has_the_plan(workdir: Path) -> None:
    # `reconciler apply | tee apply.log`: the plan reaches the screen through tee, the question
    # goes straight to the terminal; asked at once, the question came out above the plan.
    # Here the pipe's reader (tee) is slow: the question waits until it has read the plan.
    import threading

    with on_terminal(["apply"], pipe_stdout=True) as term:
        assert term.proc.stdout is not None
        pipe = term.proc.stdout
        read_at: list[float] = []

        def tee() -> None:
            select.select([pipe], [], [], PATIENCE)  # the plan arrives: a slow tee reads it
            time.sleep(1.0)
            data = b""
            while b"Plan: 8 to create" not in data:
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    return
                data += chunk
            read_at.append(time.monotonic())

        reader = threading.Thread(target=tee, daemon=True)
        reader.start()
        term.read_until("Enter a value")
        asked_at = time.monotonic()
        term.type("no\n")
        assert term.wait() == 1, term.text
        reader.join(PATIENCE)
    assert read_at and read_at[0] <= asked_at, "the question came before tee read the plan"


def test_answering_no_on_the_terminal_changes_nothing(workdir: Path) -> None:
    with on_terminal(["apply"], pipe_stdout=True) as term:
        term.read_until("Enter a value")
        term.type("no\n")
        code = term.wait()
        assert term.proc.stdout is not None
        log = term.proc.stdout.read().decode()
    assert code == 1
    assert "Apply cancelled; nothing was changed." in log
    assert _lockfile_resources(workdir) == {}


def test_rollback_asks_on_the_terminal(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind.", "Be brief."))
    ok("apply", "--auto-approve")  # the deployment follows latest: @1 -> @2

    def pins() -> object:
        entry = _lockfile_resources(workdir)["deployment.nightly-review"]
        assert isinstance(entry, dict)
        return entry["pins"]

    assert pins() == {"agent.reviewer": 2}
    with on_terminal(["rollback", "deployment.nightly-review"], pipe_stdout=False) as term:
        shown = term.read_until("Enter a value")
        term.type("no\n")
        assert term.wait() == 1, term.text
    assert "pin agent.reviewer@2 -> @1  (rollback)" in shown
    assert pins() == {"agent.reviewer": 2}
    # one Ctrl-C at the question cancels at once, with apply's exit code for it
    with on_terminal(["rollback", "deployment.nightly-review"], pipe_stdout=False) as term:
        term.read_until("Enter a value")
        term.type("\x03")
        assert term.wait() == 130, term.text
    assert "Rollback cancelled; nothing was changed." in term.text
    assert "Traceback" not in term.text
    assert pins() == {"agent.reviewer": 2}
    with on_terminal(["rollback", "deployment.nightly-review"], pipe_stdout=False) as term:
        term.read_until("Enter a value")
        term.type("yes\n")
        assert term.wait() == 0, term.text
    assert pins() == {"agent.reviewer": 1}


def test_apply_on_a_terminal_shows_progress_and_a_pipe_gets_none(workdir: Path) -> None:
    # DESIGN: "Long work shows progress on a TTY and nothing extra when piped"; issue #4: a
    # progress bar (done/total, current action) on a terminal. TERM=dumb (the other tests)
    # turns it off, so this one runs on a terminal that can draw.
    with on_terminal(["apply", "--auto-approve"], pipe_stdout=True, term="xterm") as term:
        code = term.wait()
        assert term.proc.stdout is not None
        log = term.proc.stdout.read().decode()
    assert code == 0, term.text + log
    assert "/8" in term.text, term.text  # rich's done/total column
    assert "agent.coder: created" in term.text, term.text
    assert "Apply complete: 8 created" in log
    # the pipe holds the plan and the summary, not the bar nor its per-action lines
    assert "agent.coder: created" not in log
    assert "/8" not in log


def test_apply_on_a_terminal_says_recorded_only_of_what_it_records(workdir: Path) -> None:
    # the progress lines said "recorded" of every unchanged resource, while the summary (and
    # the plan) said apply records one: only the entry that was lost is written again
    ok("apply", "--auto-approve")
    ok("state", "rm", "agent.coder")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind.", "Be brief."))
    with on_terminal(["apply", "--auto-approve"], pipe_stdout=True, term="xterm") as term:
        code = term.wait()
        assert term.proc.stdout is not None
        log = term.proc.stdout.read().decode()
    assert code == 0, term.text + log
    assert "Recorded 1 unchanged resource" in log
    assert "agent.reviewer: updated" in term.text, term.text
    assert "agent.coder: recorded" in term.text, term.text
    assert "environment.python-data: recorded" not in term.text, term.text
    assert "vault.github: recorded" not in term.text, term.text
