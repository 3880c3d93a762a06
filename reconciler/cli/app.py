"""What every command gets from the global options: the ``Settings`` and the ``--debug`` flag.

The ``reconciler`` group builds one ``App`` from its options and stores it on the click
context; commands take it with ``@pass_app``. ``App.run`` runs a library coroutine to the
end. Nothing here talks to the provider or the filesystem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from reconciler.operations import Settings
from reconciler.render import FORMATS

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class App:
    """The parsed global options."""

    settings: Settings
    debug: bool = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the library on a fresh event loop and return its result."""
        box: list[T] = []

        async def main() -> None:
            # The result leaves through ``box``, not as the main task's result: Python 3.11's
            # asyncio.run formats that result when it restores the SIGINT handler (twice), and
            # the repr of a large plan or report takes seconds.
            box.append(await coro)

        asyncio.run(main(), debug=False)
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


def full_option(f: F) -> F:
    """``--full``: text and Markdown show long values and diffs whole."""
    return click.option(
        "--full",
        is_flag=True,
        help="Show long values and diffs whole in text and markdown (by default they are "
        "shortened, and markdown keeps within a GitHub comment).",
    )(f)
