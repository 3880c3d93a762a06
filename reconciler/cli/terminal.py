"""What the CLI shows on a terminal and hides from a pipe: spinners, progress, prompts.

Everything here writes to stderr and only when stderr is a terminal, so piped or captured
output (CI logs, ``> plan.txt``) holds the result and nothing else. Results themselves are
printed by the commands on stdout. Nothing here decides anything about a plan.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from reconciler.render import DONE, should_color

if TYPE_CHECKING:  # rich loads when something is drawn, not by validate/fmt/schema
    from rich.console import Console
    from rich.progress import Progress

    from reconciler.app import Action, Outcome

#: Width of rendered plans when stdout is not a terminal: fixed, so output is byte-stable.
PIPE_WIDTH = 100

_STARTING = {
    "create": "creating",
    "update": "updating",
    "replace": "replacing",
    "archive": "archiving",
    "delete": "deleting",
    "noop": "recording",
}
_DONE = {**DONE, "noop": "recorded"}


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(callable(isatty) and isatty())
    except (ValueError, OSError):
        return False


def is_interactive() -> bool:
    """Whether a person can answer a prompt: stdin and stderr are terminals.

    The question goes to stderr and the answer comes from stdin, so ``apply | tee apply.log``
    still asks on the terminal (as Terraform does) and the log holds the plan and the result
    only. ``< /dev/null`` or a CI runner (no terminal on stdin) cannot answer: apply refuses.
    """
    return _isatty(sys.stdin) and _isatty(sys.stderr)


def shows_progress() -> bool:
    """Whether stderr is a terminal that can draw a spinner (not ``TERM=dumb``)."""
    return _isatty(sys.stderr) and os.environ.get("TERM") != "dumb"


def stdout_color() -> bool:
    """Colour for what goes to stdout: a terminal, ``NO_COLOR`` unset, ``TERM`` not dumb."""
    return should_color(sys.stdout)


def stdout_width() -> int:
    """The width to lay a plan out for: the terminal's, or ``PIPE_WIDTH`` when piped."""
    if not _isatty(sys.stdout):
        return PIPE_WIDTH
    return max(60, shutil.get_terminal_size((PIPE_WIDTH, 24)).columns)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(
        file=sys.stderr,
        no_color=not should_color(sys.stderr),
        highlight=False,
        emoji=False,
    )


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with ``message`` on stderr while the block runs, on a terminal only."""
    if not shows_progress():
        yield
        return
    with stderr_console().status(message):
        yield


class Spinner:
    """A spinner that can be stopped early (e.g. before a plan is printed), at most once."""

    def __init__(self, message: str) -> None:
        self._cm = status(message)
        self._running = False

    def start(self) -> None:
        self._cm.__enter__()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._cm.__exit__(None, None, None)


class ApplyProgress:
    """A progress bar of an apply on stderr (done/total and the current action).

    Fed by ``reconciler.app.apply``'s ``on_start`` and ``on_outcome`` callbacks. On a terminal it
    also prints one line per finished action above the bar; when stderr is not a terminal
    every method does nothing.
    """

    def __init__(self, total: int) -> None:
        self.enabled = shows_progress() and total > 0
        self._total = total
        self._progress: Progress | None = None
        self._task: object = None

    def _ensure(self) -> Progress | None:
        if not self.enabled:
            return None
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=stderr_console(),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("Applying", total=self._total)
        return self._progress

    def started(self, action: Action) -> None:
        progress = self._ensure()
        if progress is not None:
            verb = _STARTING.get(action.type, action.type)
            progress.update(self._task, description=f"{verb} {action.address}")  # type: ignore[arg-type]

    def finished(self, outcome: Outcome) -> None:
        progress = self._ensure()
        if progress is None:
            return
        kind = outcome.action.type
        if kind != "noop":
            progress.advance(self._task)  # type: ignore[arg-type]
        elif outcome.ok and getattr(outcome.action, "target", None) is None:
            return  # unchanged and nothing to record: not shown, as in the plan
        if outcome.ok:
            what = _DONE.get(kind, kind)
            details = ", ".join(
                x
                for x in (
                    outcome.remote_id or "",
                    f"version {outcome.version}" if outcome.version is not None else "",
                )
                if x
            )
            line = f"  {outcome.address}: {what}" + (f" ({details})" if details else "")
        else:
            line = f"  {outcome.address}: failed: {outcome.error or 'failed'}"
        progress.console.print(line, markup=False, highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class PromptInterrupted(Exception):
    """Ctrl-C at a question: the command stops before doing anything (exit 130)."""


@contextmanager
def _ctrl_c_interrupts() -> Iterator[list[bool]]:
    """Make one Ctrl-C interrupt a blocking read at once, and say whether it did.

    The question is asked from inside the event loop (``reconciler.app.apply`` calls back), where
    asyncio's own SIGINT handler only cancels the main task, which a blocking read never
    notices: the first Ctrl-C did nothing. The default handler raises in the read instead.
    """
    hit: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        hit.append(True)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave the handler alone
        yield hit
        return
    try:
        yield hit
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminal_fd() -> int | None:
    """stdin's descriptor when it is a real terminal we can wait on (not a test's buffer)."""
    if os.name != "posix" or not _isatty(sys.stdin):
        return None
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _read_line(prompt: str) -> str:
    """One line typed at the terminal, ``prompt`` shown on stderr.

    Waits in short ``select`` slices rather than one blocking read: a Ctrl-C is delivered
    to whichever thread of the process the kernel picks, and a read blocked in the main thread
    is interrupted only when that is the main thread; between slices the main thread runs
    the signal handler whichever thread took the signal. Elsewhere: ``click.prompt``.

    Raises:
        EOFError: Ctrl-D (end of input).
    """
    fd = _terminal_fd()
    if fd is None:
        try:
            return str(click.prompt(prompt, default="", show_default=False, err=True))
        except click.Abort:
            raise EOFError from None
    import select

    click.echo(prompt + ": ", nl=False, err=True)
    while not select.select([fd], [], [], 0.2)[0]:
        pass
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def _let_the_pipe_drain(patience: float = 2.0) -> None:
    """Wait (at most ``patience`` seconds) until the reader of a piped stdout has read what
    was written to it: with ``apply | tee apply.log`` the plan reaches the screen through
    tee, while the question goes straight to the terminal, and asked at once it came out
    above the plan. Linux's FIONREAD tells how much of a pipe is still unread; elsewhere,
    or when stdout is no pipe, nothing to wait for."""
    import stat
    import time

    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        import fcntl
        import struct
        import termios

        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
            if unread == 0:
                time.sleep(0.05)  # tee read it: let it write it out too
                return
            time.sleep(0.02)
    except (AttributeError, ImportError, OSError, ValueError):
        return


def confirm_apply() -> bool:
    """Terraform's question, on stderr: only ``yes`` approves; anything else (or Ctrl-D)
    declines.

    Raises:
        PromptInterrupted: Ctrl-C while asking.
    """
    with _ctrl_c_interrupts() as interrupted:
        try:
            _let_the_pipe_drain()
            click.echo(err=True)
            click.echo("Do you want to perform these actions?", err=True)
            click.echo("  Only 'yes' will be accepted to approve.", err=True)
            click.echo(err=True)
            answer = _read_line("  Enter a value")
        except (EOFError, KeyboardInterrupt):
            click.echo(err=True)
            if interrupted:
                raise PromptInterrupted from None
            return False
    click.echo(err=True)
    return answer.strip() == "yes"
