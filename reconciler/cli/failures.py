"""The CLI's one error handler: exceptions to ``Error: ...`` on stderr and an exit code.

Every command raises; none prints its own errors. ``ReconcilingGroup`` (the class of the
``reconciler`` group) catches what a command raises and turns it into one line (or one block)
on stderr and an exit code from ``EXIT_CODES``; with ``--debug`` it re-raises instead, so the
traceback is shown. This module decides nothing about what went wrong, only how it is told.

Exit codes are small on purpose: ``0`` success, ``1`` any error, ``2`` only "there are
changes" (``plan --detailed-exitcode``) or "there is drift" (``drift``), ``130`` Ctrl-C,
``141`` stdout's reader went away early (``| head``), silently, as SIGPIPE would;
``143`` SIGTERM (what ``docker stop`` and CI cancellation send; handled as Ctrl-C is).
Usage errors (a bad flag) exit 1 too, not click's usual 2, so a CI script that reads 2 as
"changes" can never mistake a typo for a plan.
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from reconciler.cli.hoisting import hoist_global_options, suggest_options
from reconciler.errors import (
    ApplyError,
    LockfileError,
    LockHeld,
    ManifestError,
    ManifestIssue,
    PlanError,
    ProviderError,
    ReconcilerError,
)

#: Exit code per error class; the most specific class in an error's MRO wins.
EXIT_CODES: dict[type[BaseException], int] = {
    ReconcilerError: 1,
    ManifestError: 1,
    PlanError: 1,
    ApplyError: 1,
    LockfileError: 1,
    LockHeld: 1,
    ProviderError: 1,
    OSError: 1,
}

#: Ctrl-C, as shells report a process killed by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130

#: stdout's reader closed early (``| head``), as shells report a process killed by SIGPIPE
EXIT_BROKEN_PIPE = 141

#: SIGTERM, as shells report a process killed by it (128 + 15).
EXIT_TERMINATED = 143

#: Usage errors (unknown flag, bad value) exit with this, not click's 2 (see module doc).
EXIT_USAGE = 1

#: Extra reporters called with each error before it is told (they print, never raise).
#: gitops.register adds the GitHub Actions annotations of manifest errors here.
ERROR_REPORTERS: list[Callable[[BaseException], None]] = []

#: Extra reporters called with each warning a command prints about a place in a manifest
#: (an advisory policy finding at ``validate``); they print, never raise. gitops.register
#: adds the GitHub Actions ``::warning`` annotations here.
WARNING_REPORTERS: list[Callable[[ManifestIssue], None]] = []


def exit_code_of(error: BaseException) -> int:
    """The exit code for ``error``: ``EXIT_CODES`` by MRO, else 1."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def describe(error: BaseException) -> str:
    """What the person reads after ``Error: `` (never a secret: errors do not carry any)."""
    if isinstance(error, ProviderError):
        message = str(error)
        if error.request_id and error.request_id not in message:
            message += f" (request id {error.request_id})"
        return _without_controls(message)
    if isinstance(error, OSError) and error.filename is not None:
        return _without_controls(f"{error.filename}: {error.strerror or error}")
    return _without_controls(str(error) or type(error).__name__)


def _without_controls(message: str) -> str:
    """``message`` with each control character shown escaped (``\\x1b``), as plans show
    values, instead of sent to the terminal (a window title set, the screen cleared): an
    error quotes values of a manifest (a pull request's) or of the provider."""
    from reconciler.render.values import without_controls  # only when an error is shown

    return without_controls(message)


def _set_exit_code(error: click.ClickException, code: int) -> None:
    # click >= 8.5 types exit_code as a ClassVar; an instance attribute is what click reads
    error.exit_code = code  # type: ignore[misc, unused-ignore]


class Failure(click.ClickException):
    """A ``ReconcilerError`` (or OSError) as click shows it: ``Error: <message>`` on stderr."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        _set_exit_code(self, exit_code)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a command ran (``App.run`` raises it after the work was
    cancelled and cleaned up, as Ctrl-C's ``KeyboardInterrupt``): exit 143 instead of 130."""


def interrupt_exit(error: KeyboardInterrupt) -> tuple[str, int]:
    """The word and exit code of an interruption: Ctrl-C (130) or SIGTERM (143)."""
    if isinstance(error, Terminated):
        return "Terminated (SIGTERM)", EXIT_TERMINATED
    return "Interrupted", EXIT_INTERRUPTED


class Interrupted(click.exceptions.Exit):
    """Ctrl-C or SIGTERM: a short line on stderr, exit 130 or 143, never a traceback."""

    def __init__(self, message: str = "Interrupted.", code: int = EXIT_INTERRUPTED) -> None:
        click.echo(message, err=True)
        super().__init__(code)


def fail(message: str) -> NoReturn:
    """Stop a command with ``Error: <message>`` and exit 1 (for CLI-only refusals)."""
    raise Failure(message, 1)


def silence_stdout() -> None:
    """Point stdout at the null device, so that nothing left in its buffer fails again at
    exit ("Exception ignored ... BrokenPipeError"); a no-op where stdout has no descriptor."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        pass


class _WholeWrites(io.RawIOBase):
    """A pipe's descriptor whose every write is written whole, or fails.

    When the reader of a pipe leaves in the middle of one large write (a plan of 300 KB
    into ``head -c 100``), the kernel returns the part it took and Python's buffered
    writer drops the rest without a word: the command ended 0 as if the reader had all of
    it. Writing the rest makes that second write fail with ``BrokenPipeError``, which ends
    the command with 141 as for any reader that leaves early.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += os.write(self._fd, view[done:])
        return done


def write_stdout_whole() -> None:
    """Make every write to stdout whole when stdout is a pipe (see ``_WholeWrites``); a
    terminal, a file or a test runner's stream is left as it is."""
    stream = sys.stdout
    try:
        fd = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        raw = getattr(getattr(stream, "buffer", None), "raw", None)
        if isinstance(raw, _WholeWrites) or not isinstance(stream, io.TextIOWrapper):
            return
        stream.flush()
    except (OSError, ValueError, AttributeError):  # no descriptor, or closed
        return
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_WholeWrites(fd)),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
        write_through=stream.write_through,
    )


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.params or {}).get("debug"))


#: the commands that take no argument and read the manifests
_READ_MANIFESTS_ONLY = frozenset({"validate", "plan", "drift"})
_EXTRA_ARGUMENT = re.compile(r"^Got unexpected extra argument \((?P<path>[^ ]+)\)$")


def _point_to_manifests_option(err: click.UsageError) -> None:
    """``reconciler validate ./manifests`` (kubectl's and terraform's habits): an extra
    argument that names a directory or a YAML file gets the ``-f`` it meant."""
    match = _EXTRA_ARGUMENT.match(err.message)
    command = err.ctx.info_name if err.ctx is not None else None
    if match is None or command not in _READ_MANIFESTS_ONLY:
        return
    path = Path(match["path"])
    if path.is_dir() or (path.is_file() and path.suffix.lower() in (".yaml", ".yml")):
        err.message += (
            f"; manifests are read from --manifests/-f: reconciler -f {match['path']} {command}"
        )


class ReconcilingGroup(click.Group):
    """A click group whose subcommands share one error handler (see module doc), and whose
    own options may also come after the command (``hoist_global_options``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, args))

    def _suggest_global_options(self, ctx: click.Context, err: click.NoSuchOption) -> None:
        # click >= 8.5 types possibilities as Final; the instance attribute is what it reads
        err.possibilities = suggest_options(self, ctx, err)  # type: ignore[misc, unused-ignore]

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            _set_exit_code(err, EXIT_USAGE)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as err:
            self._suggest_global_options(ctx, err)
            _set_exit_code(err, EXIT_USAGE)
            raise
        except click.UsageError as err:
            _point_to_manifests_option(err)
            _set_exit_code(err, EXIT_USAGE)
            raise
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as err:
            if _debug(ctx):
                raise
            word, code = interrupt_exit(err)
            raise Interrupted(f"{word}.", code) from None
        except BrokenPipeError:
            # the reader went away (`state list | head -3`): not an error worth a word
            silence_stdout()
            raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None
        except (ReconcilerError, OSError) as err:
            if _debug(ctx):
                raise
            for report in ERROR_REPORTERS:  # e.g. ::error annotations in GitHub Actions
                report(err)
            raise Failure(describe(err), exit_code_of(err)) from None
        except Exception as err:
            if _debug(ctx):
                raise
            raise Failure(
                f"unexpected {type(err).__name__}: {_without_controls(str(err))}\n"
                "This is a bug in reconciler. Run the command again with --debug for the "
                "traceback and include it in a bug report.",
                1,
            ) from None
