"""``rollback deployment.NAME [--to VERSION]``: parse, show the plan, ask, run, report.

What to roll back to and how is decided by ``reconciler.app.rollback``; this module only
renders the plan, asks on a terminal (or takes ``--auto-approve``) and sets the exit code.
"""

from __future__ import annotations

import click

from reconciler import app as usecases
from reconciler.app import Plan
from reconciler.cli import terminal
from reconciler.cli.app import App, not_empty, pass_app, signal_words
from reconciler.cli.failures import EXIT_INTERRUPTED, EXIT_TERMINATED, fail, interrupt_exit
from reconciler.cli.planning import rollout_report
from reconciler.render import render_apply_summary, render_plan


def register(group: click.Group) -> None:
    group.add_command(rollback)


@click.command()
@click.argument("address", metavar="deployment.NAME", callback=not_empty)
@click.option(
    "--to",
    "to",
    type=int,
    metavar="VERSION",
    help="The agent version to go back to (default: the one before the last pin move).",
)
@click.option(
    "--auto-approve",
    is_flag=True,
    help="Roll back without asking. Needed when stdin is not a terminal (CI).",
)
@click.option(
    "--allow-origin-change",
    is_flag=True,
    help="Roll back although the lockfile was applied to another provider (another "
    "--provider-url or embedded database); the lockfile then records this one.",
)
@pass_app
def rollback(
    app: App, address: str, to: int | None, auto_approve: bool, allow_origin_change: bool
) -> None:
    """Move a deployment's pin back to the version it had before (or to --to VERSION).

    Shown as a plan and applied through the executor; the agent is not touched. The version
    rolled back from is held: no later apply promotes it again (`apply --retry-held` does,
    after its checks). The lockfile's pin history (`reconciler state show deployment.NAME`)
    records the rollback. Exit 0 when the pin moved, 1 otherwise.
    """

    shown: list[Plan] = []

    def show(the_plan: Plan) -> None:
        shown.append(the_plan)
        click.echo(
            render_plan(
                the_plan, "text", color=terminal.stdout_color(), width=terminal.stdout_width()
            ),
            nl=False,
        )

    def confirm(the_plan: Plan) -> bool:
        # refused here, after the plan, as apply does: a wrong address or --to is told
        # first, and a CI log shows what the rollback would have done
        if not terminal.is_interactive():
            fail(
                "refusing to roll back without confirmation: stdin and stderr are not both a "
                "terminal, so there is no one to ask. Pass --auto-approve to roll back as the "
                "plan shows."
            )
        with app.signals.interrupting():
            return terminal.confirm_apply()

    stop = usecases.StopRequest()

    def draining() -> None:  # a first Ctrl-C (or SIGTERM) while the pin move is sent
        word, _, again = signal_words(stop)
        click.echo(
            f"{word}: waiting for the pin move in flight to finish and be recorded. {again} "
            "to stop at once.",
            err=True,
        )

    try:
        with app.signals.draining(stop, draining):
            result = app.run(
                usecases.rollback(
                    app.settings,
                    address,
                    to=to,
                    allow_origin_change=allow_origin_change,
                    confirm=None if auto_approve else confirm,
                    on_plan=show,
                    stop=stop,
                )
            )
    except terminal.PromptInterrupted:  # Ctrl-C at the question, as for apply
        click.echo("Rollback cancelled; nothing was changed.", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM before the move, or a second one
        word, code = interrupt_exit(err)
        if not shown:  # before its plan: nothing was sent
            click.echo(f"{word}. Rollback cancelled; nothing was changed.", err=True)
            raise click.exceptions.Exit(code) from None
        again = " again: stopped at once" if stop.reason is not None else ""
        click.echo(
            f"{word}{again}. The rollback of {address} may not have finished: if its pin move "
            "reached the provider, the next `reconciler plan`, `apply` or `rollback` records "
            f"it (its intent is kept in {app.settings.state_name}). Run `reconciler plan` to "
            "see where the pin is.",
            err=True,
        )
        raise click.exceptions.Exit(code) from None
    if result is None:
        click.echo("Rollback cancelled; nothing was changed.")
        raise click.exceptions.Exit(1)
    report = result.report
    rollout_report(report)
    done: dict[str, int] = {o.action.type: 1 for o in report.outcomes if o.ok}
    click.echo(render_apply_summary(done, report.failures, recorded_in=app.settings.recorded_in))
    if stop.reason is not None:  # the first Ctrl-C (or SIGTERM) waited for the move
        word, _, _ = signal_words(stop)
        moved = all(o.ok for o in report.outcomes)
        click.echo(
            f"{word}. The pin move in flight finished"
            + (f" and is recorded in {app.settings.state_name}." if moved else ", refused (see")
            + ("" if moved else " above); run `reconciler plan` to see where the pin is."),
            err=True,
        )
        raise click.exceptions.Exit(EXIT_TERMINATED if app.signals.terminated else EXIT_INTERRUPTED)
    if not report.ok:
        raise click.exceptions.Exit(1)

