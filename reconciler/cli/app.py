"""What every command gets from the global options: the ``Settings`` and the ``--debug`` flag.

The ``reconciler`` group builds one ``App`` from its options and stores it on the click
context; commands take it with ``@pass_app``. ``App.run`` runs a library coroutine to the
end. Nothing here talks to the provider or the filesystem.
"""

from __future__ import annotations

import asyncio
import signal
import stat
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from reconciler.app import Settings, StopRequest
from reconciler.cli.failures import Terminated
from reconciler.render import FORMATS

#: ``ApplyReport.stopped`` after a first Ctrl-C
INTERRUPTED = "interrupted (Ctrl-C)"
#: ``ApplyReport.stopped`` after a first SIGTERM (drained as a first Ctrl-C is)
TERMINATED = "terminated (SIGTERM)"


def signal_words(stop: StopRequest | None) -> tuple[str, str, str]:
    """How the messages of a run a first signal is draining name that signal: (word, signal,
    how to stop at once)."""
    if stop is not None and stop.reason == TERMINATED:
        return "Terminated (SIGTERM)", "SIGTERM", "Send SIGTERM again (or press Ctrl-C)"
    return "Interrupted", "Ctrl-C", "Press Ctrl-C again"

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Signals:
    """SIGTERM while ``App.run`` runs: cancel its main task, as asyncio does for Ctrl-C.

    Cancelling runs every ``finally`` and ``except CancelledError`` of the library on the way
    out (staged lockfile writes flushed, intents of unsent creates dropped, the apply lock
    released), exactly what Ctrl-C does; ``App.run`` then raises ``Terminated``. Without it,
    SIGTERM killed the process on the spot: the lock stayed behind and staged outcomes were
    lost. Another SIGTERM during that cleanup is ignored (it is short, and cutting it short
    is what this avoids); ``docker stop`` follows up with SIGKILL anyway.

    Ctrl-C while an apply's actions run (``draining``), as Terraform takes it: the first asks
    the apply to start nothing more (``StopRequest``; those in flight finish and are
    recorded) and calls ``on_drain``; the second cancels the main task, as asyncio's own
    handler does for a first Ctrl-C (``App.run`` then raises ``KeyboardInterrupt``), and a
    third raises ``KeyboardInterrupt`` where it lands. Elsewhere Ctrl-C is asyncio's.
    SIGTERM there is taken the same way (Terraform does too): the first drains, a second
    signal of either kind cancels (GitHub Actions sends SIGINT, then SIGTERM, to cancel).
    """

    def __init__(self) -> None:
        self.terminated = False
        #: Ctrl-C cancelled the main task (``App.run`` raises ``KeyboardInterrupt``)
        self.interrupted = False
        self._stop: StopRequest | None = None
        self._on_drain: Callable[[], None] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._blocked = False
        #: a first SIGTERM asked the apply to drain (a second one cancels)
        self._draining_on_term = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers live in the main thread only (e.g. a test's worker)
            return
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        previous_int = None
        if self._stop is not None:  # not asyncio's: a first Ctrl-C drains the apply
            previous_int = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            # None: a handler installed from C, which Python cannot put back; the default
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            if self._stop is not None:
                signal.signal(
                    signal.SIGINT,
                    previous_int if previous_int is not None else signal.default_int_handler,
                )
            self._task = self._loop = None

    @contextmanager
    def draining(self, stop: StopRequest, on_drain: Callable[[], None]) -> Iterator[None]:
        """While ``App.run`` runs an apply: a first Ctrl-C requests ``stop`` (heard while
        its actions run; before, it cancels as usual) and then calls ``on_drain`` in the
        loop."""
        self._stop, self._on_drain = stop, on_drain
        try:
            yield
        finally:
            self._stop = self._on_drain = None

    @contextmanager
    def interrupting(self) -> Iterator[None]:
        """While a blocking call runs in the loop (a prompt): SIGTERM interrupts it at once,
        raising ``Terminated`` there, as Ctrl-C raises ``KeyboardInterrupt`` (a cancel
        would wait for the prompt's answer)."""
        self._blocked = True
        try:
            yield
        finally:
            self._blocked = False

    def watch(self) -> None:
        """Called by the main task: the task a SIGTERM cancels."""
        self._task, self._loop = asyncio.current_task(), asyncio.get_running_loop()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        first, self.terminated = not self.terminated, True
        task, loop = self._task, self._loop
        if task is None or loop is None or task.done() or self._blocked:
            raise Terminated()  # not inside the event loop, or blocked in a prompt
        stop = self._stop
        if first and stop is not None and stop.reason is None and stop.request(TERMINATED):
            self._draining_on_term = True
            if self._on_drain is not None:
                loop.call_soon_threadsafe(self._on_drain)
            return
        if first or self._draining_on_term:
            self._draining_on_term = False
            loop.call_soon_threadsafe(task.cancel)  # also wakes the loop from its select

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        task, loop, stop = self._task, self._loop, self._stop
        if task is None or loop is None or task.done() or self._blocked:
            raise KeyboardInterrupt  # not inside the event loop, or blocked in a prompt
        if self.interrupted:
            raise KeyboardInterrupt  # a third Ctrl-C: at once, wherever it lands
        if stop is not None and stop.reason is None and stop.request(INTERRUPTED):
            if self._on_drain is not None:
                loop.call_soon_threadsafe(self._on_drain)
            return
        self.interrupted = True
        loop.call_soon_threadsafe(task.cancel)


@dataclass(frozen=True)
class App:
    """The parsed global options."""

    settings: Settings
    debug: bool = False
    #: what ``run`` saw of SIGTERM (``signals.terminated``)
    signals: Signals = field(default_factory=Signals, compare=False, repr=False)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the library on a fresh event loop and return its result.

        Raises:
            Terminated: SIGTERM arrived and cancelled the coroutine (after it cleaned up).
        """
        box: list[T] = []

        async def main() -> None:
            # The result leaves through ``box``, not as the main task's result: Python 3.11's
            # asyncio.run formats that result when it restores the SIGINT handler (twice), and
            # the repr of a large plan or report takes seconds.
            self.signals.watch()
            box.append(await coro)

        with self.signals.installed():
            try:
                asyncio.run(main(), debug=False)
            except asyncio.CancelledError:
                if self.signals.terminated:
                    raise Terminated() from None
                if self.signals.interrupted:
                    raise KeyboardInterrupt() from None
                raise
        return box[0]


pass_app = click.make_pass_decorator(App)


def format_option(name: str, markdown_for: str) -> Callable[[F], F]:
    """``--format text|json|markdown`` (stored as ``name``); markdown is ``markdown_for``."""
    return click.option(
        "--format",
        name,
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help=f"text for people, json for programs (docs/json-format.md), markdown for "
        f"{markdown_for}.",
    )


def out_file_option(help: str) -> Callable[[F], F]:
    """``--out FILE``: a file the command writes (a path; not a directory, not ``-``), in a
    folder that exists: a missing one is refused naming it, never made silently (a typo
    would leave the file where nobody looks; Terraform's ``plan -out`` refuses it too)."""
    return click.option(
        "--out",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="FILE",
        help=help,
        callback=_a_file_not_dash,
    )


def _a_file_not_dash(_ctx: click.Context, param: click.Parameter, value: Path | None) -> Any:
    """``--out -`` (stdout to many tools) would write a file named ``-``."""
    if value is not None and str(value) == "-":
        raise click.BadParameter(
            "'-' is not a file: leave --out out and the output goes to stdout", param=param
        )
    if value is not None and value.exists() and not value.is_file():
        # /dev/stdout, /dev/full, a FIFO: written as a temporary file renamed over the path,
        # the device node (or the link to it) was replaced by a file; a FIFO blocked
        raise click.BadParameter(
            f"{value} is {_what_is(value)}, not a regular file: --out saves to a file; leave "
            "--out out and the output goes to stdout",
            param=param,
        )
    folder = value.parent if value is not None else None
    if folder is not None and not folder.is_dir():
        if folder.exists():
            raise click.BadParameter(f"{folder} is not a folder", param=param)
        raise click.BadParameter(
            f"the folder {folder} does not exist: create it first (mkdir -p {folder}), or "
            "give a path in an existing folder",
            param=param,
        )
    return value


def _what_is(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def not_empty(_ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An address, name or id argument (or each of a repeated option's) as given; an empty
    one (``"$ADDR"`` with ADDR unset in a script) is a usage error naming the argument, not
    a name looked up (which read "no entry for  in the lockfile")."""
    for given in value if isinstance(value, tuple) else (value,):
        if isinstance(given, str) and not given.strip():
            raise click.BadParameter("is empty (is a variable unset?)", param=param)
    return value


def full_option(f: F) -> F:
    """``--full``: text and Markdown show long values and diffs whole."""
    return click.option(
        "--full",
        is_flag=True,
        help="Show long values and diffs whole in text and markdown (by default they are "
        "shortened, and markdown keeps within a GitHub comment).",
    )(f)
