"""``validate``, ``plan`` and ``apply``: parse flags, call ``reconciler.app``, render.

The plan is rendered by ``reconciler.render``; the apply summary by ``render_apply_summary``.
Progress (a spinner while refreshing, a bar while applying) goes to stderr on a terminal
only. What would change and whether it may is decided by the library, never here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from reconciler import app as usecases
from reconciler.app import (
    CHANGE_TYPES,
    IGNORE_FILE,
    Action,
    ApplyReport,
    ManifestSet,
    Outcome,
    Plan,
    load_manifests,
)
from reconciler.cli import terminal
from reconciler.cli.app import (
    App,
    format_option,
    full_option,
    not_empty,
    out_file_option,
    pass_app,
    signal_words,
)
from reconciler.cli.failures import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    WARNING_REPORTERS,
    fail,
    interrupt_exit,
)
from reconciler.errors import ManifestIssue, PolicyError
from reconciler.render import render_apply_summary, render_plan
from reconciler.render.values import printable

#: ``plan --detailed-exitcode`` when the plan has changes.
EXIT_CHANGES = 2

_target_option = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDR",
    callback=not_empty,
    help="Plan only ADDR (e.g. agent.coder) and what it depends on. Repeatable.",
)
_prune_option = click.option(
    "--prune",
    is_flag=True,
    help="Archive owned resources whose documents were removed from the manifests "
    "(never protect: true ones). Without it the plan lists them as left alone.",
)


_allow_empty_option = click.option(
    "--allow-empty",
    is_flag=True,
    help="Allow --prune when the manifests hold no document at all: archive everything this "
    "project owns. Without it such a plan is refused, as a wrong -f would otherwise do that.",
)


_allow_origin_change_option = click.option(
    "--allow-origin-change",
    is_flag=True,
    help="Plan or apply although the lockfile was applied to another provider (another "
    "--provider-url or embedded database); apply then records this one.",
)


_skip_checks_option = click.option(
    "--skip-checks",
    is_flag=True,
    help="EMERGENCY: move gated deployment pins without running their rollout checks "
    "(with --retry-held, to held candidates too). Recorded in the lockfile's pin history.",
)
_retry_held_option = click.option(
    "--retry-held",
    is_flag=True,
    help="Run the checks of held candidates again (and promote those that pass); without "
    "it a held or rolled-back version is never promoted.",
)
#: the options ``plan`` and ``apply`` share, in the order of their ``--help``
_CHOICE_OPTIONS = (
    _prune_option,
    _allow_empty_option,
    _allow_origin_change_option,
    _target_option,
    _skip_checks_option,
    _retry_held_option,
)


def _plan_choices(command: Callable[..., None]) -> Callable[..., None]:
    """``_CHOICE_OPTIONS`` on ``command``, handed to it as one ``choices: PlanChoices`` (each
    option's value goes to the field of its name)."""

    @functools.wraps(command)
    def with_choices(*args: Any, **kwargs: Any) -> None:
        names = {f.name for f in dataclasses.fields(usecases.PlanChoices)} & kwargs.keys()
        choices = usecases.PlanChoices(**{name: kwargs.pop(name) for name in names})
        command(*args, choices=choices, **kwargs)

    decorated: Callable[..., None] = with_choices
    for option in reversed(_CHOICE_OPTIONS):
        decorated = option(decorated)
    return decorated


def warn_if_empty(path: Path, documents: int | None = None) -> None:
    """Warn on stderr when the manifests hold no document (``documents``, when known, else
    whether any ``*.yaml``/``*.yml`` file there has more than blank lines and comments): an
    empty directory is most often a wrong ``-f``, and must not read as a clean, empty
    project."""
    if documents is None:
        if not path.exists():
            return  # the command that loads them says so
        # the files load_manifests would read (hidden and .reconcilerignore'd ones left out),
        # and whether any can hold a document (not only blank lines or comments)
        documents = 1 if usecases.may_hold_documents(usecases.manifest_files([path])) else 0
    if documents == 0:
        click.echo(f"Warning: no manifest documents in {path}; is --manifests/-f right?", err=True)


def register(group: click.Group) -> None:
    group.add_command(validate)
    group.add_command(plan)
    group.add_command(apply)


def _count_files(manifests: ManifestSet) -> int:
    return len({manifests.location(d.address).file for d in manifests.documents})


def refreshing(app: App) -> str:
    """The spinner's words, naming the provider, so nobody mistakes the local one for prod."""
    settings = app.settings
    where = f"the embedded local provider ({settings.db_path})"
    if settings.provider_url:
        where = usecases.provider_origin(settings)  # normalised: no user:password
    return f"Refreshing from {where}..."


@click.command()
@click.option(
    "--policies",
    "policies_dir",
    type=click.Path(path_type=Path, exists=True),
    metavar="DIR",
    help="Also check the manifests against the kind: Policy documents in DIR (a platform "
    "team's central policies), besides the policies among the manifests.",
)
@pass_app
def validate(app: App, policies_dir: Path | None) -> None:
    """Check the manifests: schema, references and policies, with no network.

    Prints `OK: N resources in M files` (credentials count as resources, as in a plan)
    and, below it, each file read with the addresses it holds and the YAML files
    .reconcilerignore left out; or every error as `file:line:col: ...` on stderr, exit 1.
    A mandatory policy rule that fails is such an error; an advisory one is a warning.
    """
    manifests = load_manifests(app.settings.manifests, check_secret_files=True)
    central = usecases.load_policies(policies_dir) if policies_dir is not None else ()
    try:
        warnings = usecases.check_policies(manifests, central)
    except PolicyError as error:  # the advisory findings are said beside the error
        for issue in error.advisories:
            _policy_warning(issue)
        raise
    n = len(manifests.documents) + len(manifests.credentials())
    files = len(manifests.files) or _count_files(manifests)
    warn_if_empty(app.settings.manifests, len(manifests.documents))
    policies = [*manifests.policies, *central]
    checked = ""
    if policies:
        rules = sum(len(p.document.spec.rules) for p in policies)
        checked = (
            f", checked against {len(policies)} polic{'ies' if len(policies) != 1 else 'y'} "
            f"({rules} rule{'s' if rules != 1 else ''})"
        )
    click.echo(
        f"OK: {n} resource{'s' if n != 1 else ''} in {files} file{'s' if files != 1 else ''}"
        + checked
    )
    by_file: dict[str, list[str]] = {f: [] for f in manifests.files}
    for doc in manifests.documents:
        creds = len(doc.credentials())
        shown = doc.address + (f" ({creds} credential{'s' if creds != 1 else ''})" if creds else "")
        by_file.setdefault(manifests.location(doc.address).file, []).append(shown)
    for policy in manifests.policies:
        by_file.setdefault(policy.location.file, []).append(policy.document.address)
    width = max((len(f) for f in by_file), default=0)
    for file, addresses in by_file.items():
        click.echo(f"  {file.ljust(width)}  {', '.join(addresses) or '(no documents)'}")
    if manifests.ignored:
        click.echo(f"Left out by {IGNORE_FILE}: {', '.join(manifests.ignored)}")
    for w in warnings:
        sentence = f"{w.address}: {w.message} (policy {w.policy}, {w.rule}, advisory)"
        file, line, col = w.location.rsplit(":", 2)  # a file name may hold a colon
        _policy_warning(ManifestIssue(file, int(line), int(col), sentence))


def _policy_warning(issue: ManifestIssue) -> None:
    """An advisory policy finding: a warning on stderr (and an annotation in CI)."""
    click.echo(printable(f"Warning: {issue}"), err=True)
    for report in WARNING_REPORTERS:  # e.g. ::warning annotations in GitHub Actions
        report(issue)


@click.command()
@out_file_option("Also save the plan to FILE, for `reconciler apply FILE`.")
@format_option("fmt", "PR comments")
@full_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when apply would do nothing, 2 when it would change the live system or "
    "only the lockfile, or when twins or lockfile entries not ours need a person (1 stays "
    "an error).",
)
@_plan_choices
@pass_app
@click.pass_context
def plan(
    ctx: click.Context,
    app: App,
    out: Path | None,
    fmt: str,
    full: bool,
    detailed_exitcode: bool,
    choices: usecases.PlanChoices,
) -> None:
    """Show what apply would do, and why. Changes nothing.

    Exit 0, or with --detailed-exitcode 0 when apply would do nothing and 2 when it would
    do something: change the live system, or only record in the lockfile (resources adopted
    by their ownership tags after a lost lockfile, entries out of date); the plan says which.
    Twins and lockfile entries not ours exit 2 too: they need a person. 1 on error.
    """
    if out is not None:
        usecases.check_plan_out(app.settings, out)
    with terminal.status(refreshing(app)):
        result = app.run(usecases.make_plan(app.settings, choices))
    warn_if_empty(app.settings.manifests, len(result.manifests.documents))
    the_plan = result.plan
    color = terminal.stdout_color() if fmt == "text" else False
    click.echo(
        render_plan(the_plan, fmt, color=color, width=terminal.stdout_width(), full=full),  # type: ignore[arg-type]
        nl=False,
    )
    skip_checks_note(the_plan, choices)
    if out is not None:
        origin = usecases.provider_origin(app.settings)
        usecases.save_plan(the_plan, out, manifests=result.manifests, origin=origin)
        click.echo(f"Saved the plan to {out}; apply it with `reconciler apply {out}`", err=True)
    if the_plan.has_changes or the_plan.has_lockfile_changes:
        # Terraform's plan would wait for the lock; this one says what it raced
        state = app.settings.state_name
        if result.running is not None:
            click.echo(
                f"Warning: {result.running.describe()} holds the lock of {state}: it may be "
                "making some of these changes right now; plan again once it is done.",
                err=True,
            )
        if result.finished is not None:
            # it let go during the refresh: the state this plan read may predate its work
            click.echo(
                f"Warning: {result.finished.describe()} held the lock of {state} when this "
                "plan read the state, and has let it go since: it may have made some of these "
                "changes already; plan again.",
                err=True,
            )
        if result.running_unknown is not None:
            # the plan is what the state read said; only the lease could not be asked about
            click.echo(
                f"Warning: could not check whether a run holds the lease of {state} "
                f"({result.running_unknown}): it may be making some of these changes right now.",
                err=True,
            )
    if detailed_exitcode and (the_plan.has_changes or the_plan.has_lockfile_changes):
        ctx.exit(EXIT_CHANGES)


@click.command()
@click.argument("planfile", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--auto-approve",
    is_flag=True,
    help="Apply without asking. Needed when stdin is not a terminal (CI), unless a PLANFILE "
    "is given.",
)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1, max=256),
    default=10,
    show_default=True,
    metavar="N",
    help="Most actions in flight at once.",
)
@_plan_choices
@full_option
@pass_app
def apply(
    app: App,
    planfile: Path | None,
    auto_approve: bool,
    parallelism: int,
    choices: usecases.PlanChoices,
    full: bool,
) -> None:
    """Converge the provider to the manifests, or carry out a saved PLANFILE.

    Without PLANFILE it plans, shows the plan and asks for `yes` on a terminal (or goes ahead
    with --auto-approve). A PLANFILE was reviewed already and is applied without asking;
    actions whose resource changed since it was saved are refused, and listed. Every finished
    action is recorded in the lockfile at once, so an error or Ctrl-C loses nothing. A first
    Ctrl-C (or SIGTERM) starts no new action and waits for those in flight; a second stops at
    once.

    Exit 0 when everything was done, 1 otherwise.
    """
    if planfile is not None and choices.decided_when_planning:
        fail(
            "--prune, --allow-empty, --target, --skip-checks and --retry-held are decided when "
            "planning; run `reconciler plan --out "
            f"{planfile}` with them, then `reconciler apply {planfile}`"
        )
    if planfile is None:
        warn_if_empty(app.settings.manifests)
    session = _ApplySession(planfile, refreshing(app), app, full=full, choices=choices)
    session.spinner.start()
    stop = session.stop = usecases.StopRequest()
    try:
        with app.signals.draining(stop, session.draining):
            result = app.run(
                usecases.apply(
                    app.settings,
                    choices,
                    plan_file=planfile,
                    parallelism=parallelism,
                    confirm=None if auto_approve or planfile is not None else session.confirm,
                    on_plan=session.show_plan,
                    on_start=session.started,
                    on_outcome=session.finished,
                    stop=stop,
                )
            )
    except terminal.PromptInterrupted:  # Ctrl-C at the question: nothing was sent
        session.close()
        click.echo("Apply cancelled; nothing was changed.", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (``Terminated``)
        session.close()
        word, code = interrupt_exit(err)
        if stop.reason is not None and not session.in_flight:  # the apply was finishing
            click.echo(
                f"{word} again: stopped at once, with no action in flight. Every action that "
                f"finished is recorded in {app.settings.state_name}, or found again and "
                "recorded by the next `reconciler apply`. Run `reconciler plan` to see what "
                "is left.",
                err=True,
            )
        elif stop.reason is not None:  # the second Ctrl-C: what was in flight is abandoned
            n = len(session.in_flight)
            click.echo(
                f"{word} again: stopped at once. {n} action{'s' if n != 1 else ''} in flight "
                f"{'was' if n == 1 else 'were'} abandoned: the provider may have finished "
                f"{'it' if n == 1 else 'them'}, and the next `reconciler apply` finds and "
                f"records {'it' if n == 1 else 'them'} (their intents are kept in "
                f"{app.settings.state_name}); every action that finished before is recorded "
                "there. Run `reconciler plan` to see what is left.",
                err=True,
            )
        else:
            click.echo(
                f"{word}. Every action that finished is recorded in "
                f"{app.settings.state_name}; run `reconciler plan` to see what is left.",
                err=True,
            )
        raise click.exceptions.Exit(code) from None
    finally:
        session.close()
    if result is None:
        click.echo("Apply cancelled; nothing was changed.")
        raise click.exceptions.Exit(EXIT_TERMINATED if app.signals.terminated else 1)
    rollout_report(result.report)
    exit_code = _report(result, planfile, app.settings.recorded_in)
    if stop.reason is not None and result.report.stopped == stop.reason:
        _drained(app, result, session)
    if result.report.stopped is not None:
        _stopped(app, result)
    if exit_code:
        raise click.exceptions.Exit(exit_code)


class _ApplySession:
    """The terminal side of one apply: spinner, plan display, question, progress bar."""

    def __init__(
        self,
        planfile: Path | None,
        refreshing: str,
        app: App,
        *,
        full: bool = False,
        choices: usecases.PlanChoices | None = None,
    ) -> None:
        self.app = app
        self.choices = choices
        self.planfile = planfile
        self.full = full
        self.spinner = terminal.Spinner(refreshing)
        self.progress: terminal.ApplyProgress | None = None
        #: actions started and not finished yet
        self.in_flight: set[str] = set()
        #: how many were in flight at a first Ctrl-C (or SIGTERM)
        self.waited_for = 0
        #: the apply's "start no new action", which a first Ctrl-C or SIGTERM requests
        self.stop: usecases.StopRequest | None = None

    @property
    def signal_words(self) -> tuple[str, str, str]:
        """How the drain's messages name its signal: (word, signal, how to stop at once)."""
        return signal_words(self.stop)

    def show_plan(self, the_plan: Plan) -> None:
        self.spinner.stop()
        total = sum(1 for a in the_plan.actions if a.type in CHANGE_TYPES)
        self.progress = terminal.ApplyProgress(total)
        if self.planfile is not None:
            click.echo(f"Applying the saved plan {self.planfile}. {the_plan.summary}")
            return
        click.echo(
            render_plan(
                the_plan,
                "text",
                color=terminal.stdout_color(),
                width=terminal.stdout_width(),
                full=self.full,
            ),
            nl=False,
        )
        if self.choices is not None:
            skip_checks_note(the_plan, self.choices)

    def confirm(self, the_plan: Plan) -> bool:
        """Asked only when the plan changes something: with nothing to do, an apply with
        no one to ask ends as Terraform's does, "No changes", exit 0."""
        if not terminal.is_interactive():
            fail(
                "refusing to apply without confirmation: stdin and stderr are not "
                "both a terminal, so there is no one to ask. Pass "
                "--auto-approve to apply what the plan shows, or save a reviewed plan with "
                "`reconciler plan --out FILE` and run `reconciler apply FILE`."
            )
        # SIGTERM at the prompt declines, as Ctrl-C does (click turns both into Abort)
        with self.app.signals.interrupting():
            return terminal.confirm_apply()

    def started(self, action: Action) -> None:
        self.in_flight.add(action.address)
        if self.progress is not None:
            self.progress.started(action)

    def finished(self, outcome: Outcome) -> None:
        self.in_flight.discard(outcome.address)
        if self.progress is not None:
            self.progress.finished(outcome)

    def draining(self) -> None:
        """A first Ctrl-C (or SIGTERM) while the actions run: say what happens now."""
        n = self.waited_for = len(self.in_flight)
        word, _, again = self.signal_words
        click.echo(
            f"\n{word}: starting no new action; waiting for the {n} in flight to finish "
            f"and be recorded (each within its usual timeouts). {again} to stop at once.",
            err=True,
        )

    def close(self) -> None:
        self.spinner.stop()
        if self.progress is not None:
            self.progress.close()


def skip_checks_note(the_plan: Plan, choices: usecases.PlanChoices) -> None:
    """``--skip-checks`` without ``--retry-held`` moves no held candidate: say so on stderr,
    and how to (a plan that says only "No changes" would read as the emergency move done)."""
    held = sorted({h.deployment for h in the_plan.held})
    if not choices.skip_checks or choices.retry_held or not held:
        return
    click.echo(
        f"Note: --skip-checks moves no held candidate ({', '.join(held)} "
        f"{'stays' if len(held) == 1 else 'stay'} where the plan says); add --retry-held to "
        "move to it without its checks: `reconciler apply --skip-checks --retry-held`.",
        err=True,
    )


def rollout_report(report: ApplyReport) -> None:
    """What each gated pin move did: checks passed (and their archived sessions), held, or
    moved without checks (said loudly, on stderr)."""
    for verdict in report.verdicts:
        gate = verdict.gate
        where = f"{gate.deployment}: {gate.agent}@{gate.from_version} -> @{verdict.candidate}"
        ids = ", ".join(verdict.session_ids)
        sessions = f" (check sessions, archived: {ids})" if ids else ""
        if gate.mode == "skip-checks":
            click.echo(
                f"WARNING: {where} moved WITHOUT its {len(gate.checks)} rollout checks "
                "(--skip-checks); the lockfile's pin history records it.",
                err=True,
            )
        elif gate.mode == "rollback":
            forward = (gate.from_version or 0) < (verdict.candidate or 0)
            done = "moved forward" if forward else "rolled back"
            click.echo(f"{where} {done}; v{gate.from_version} is now held.")
        elif verdict.passed and not verdict.results:  # a deployment without checks
            click.echo(f"{where} moved (a held candidate, retried; no checks to run).")
        elif verdict.passed:
            n = len(verdict.results)
            click.echo(f"{where} moved: {n} of {n} checks passed{sessions}.")
        elif verdict.inconclusive:
            n, total = len(verdict.failed), len(verdict.results)
            click.echo(
                f"{where} not checked: {n} of {total} checks could not run (the provider "
                f"failed); the pin stays at @{gate.from_version} and v{verdict.candidate} is "
                f"not held: the next apply runs its checks again{sessions}."
            )
        else:
            n, total = len(verdict.failed), len(verdict.results)
            click.echo(
                f"{where} held: {n} of {total} checks failed on v{verdict.candidate}; the pin "
                f"stays at @{gate.from_version}{sessions}. Next: fix {gate.agent} and apply "
                f"(its next version is checked), or `reconciler apply --retry-held` checks "
                f"v{verdict.candidate} again (if the check itself is wrong, `--skip-checks "
                "--retry-held` moves the pin without it)."
            )


def _done_counts(report: ApplyReport) -> dict[str, int]:
    """Successful actions by type (``create``...), and how many of them moved an address,
    as ``render_apply_summary`` counts them."""
    done = [o.action for o in report.outcomes if o.ok]
    counts = Counter("forget" if usecases.forgets_only(a) else a.type for a in done)
    counts["moved"] = sum(1 for a in done if getattr(a, "moved_from", None) is not None)
    return dict(counts)


def _warn_twins(the_plan: Plan) -> None:
    """Twins a plan without --prune left live: said after the apply too, not only above."""
    if not the_plan.twins or the_plan.prune:
        return
    n = len(the_plan.twins)
    click.echo(
        f"{n} twin{'s' if n != 1 else ''} left live (a second object claiming an address of "
        "this project, listed in the plan above); `reconciler apply --prune` archives "
        f"{'them' if n != 1 else 'it'}.",
        err=True,
    )


def _drained(app: App, result: usecases.ApplyResult, session: _ApplySession) -> None:
    """The apply stopped starting actions at a first Ctrl-C (or SIGTERM): what finished,
    what never started, exit 130 (143)."""
    report = result.report
    changes = [o for o in report.outcomes if o.action.type in CHANGE_TYPES]
    done = sum(1 for o in changes if o.ok)
    never = sum(1 for o in changes if not o.attempted)
    failed = len(changes) - done - never
    waited = session.waited_for
    word, signal_name, _ = session.signal_words
    click.echo(
        f"{word}. The {waited} action{'s' if waited != 1 else ''} in flight at {signal_name} "
        f"finished; {done} of {len(changes)} changes were done and are recorded in "
        f"{app.settings.state_name}"
        + (f", {failed} failed" if failed else "")
        + f"; {never} {'was' if never == 1 else 'were'} never started. "
        "Run `reconciler plan` to see what is left.",
        err=True,
    )
    raise click.exceptions.Exit(EXIT_TERMINATED if app.signals.terminated else EXIT_INTERRUPTED)


def _stopped(app: App, result: usecases.ApplyResult) -> None:
    """The apply stopped early because the provider is down: one sentence, exit 1."""
    report = result.report
    where = app.settings.provider_url or f"the embedded local provider ({app.settings.db_path})"
    changes = [o for o in report.outcomes if o.action.type in CHANGE_TYPES]
    done = sum(1 for o in changes if o.ok)
    skipped = sum(1 for o in changes if not o.attempted)
    failed = len(changes) - done - skipped
    fail(
        f"the provider at {where} is unreachable ({report.stopped}). Apply stopped sending: "
        f"{done} of {len(changes)} changes were done and are recorded in "
        f"{app.settings.state_name}; {failed} failed and {skipped} "
        f"{'was' if skipped == 1 else 'were'} not attempted. Run `reconciler apply` again "
        "once the provider is back"
    )


def _forgotten(result: usecases.ApplyResult) -> None:
    forgotten = result.forgotten_intents
    if not forgotten:
        return
    n = len(forgotten)
    click.echo(
        f"Forgot {n} pending create intent{'s' if n != 1 else ''} of resources no longer in "
        "the manifests (left by interrupted applies):"
    )
    for address, what in forgotten.items():
        click.echo(f"  {printable(address)}: {printable(what)}")


def _report(result: usecases.ApplyResult, planfile: Path | None, recorded_in: str) -> int:
    """Print the end of an apply; return its exit code."""
    report = result.report
    conflicts = result.plan.conflicts
    _forgotten(result)
    if not report.outcomes and not result.stale and not conflicts:
        if planfile is not None and not result.plan.twins:
            click.echo("No changes. The live system matches the saved plan.")
        _warn_twins(result.plan)
        return 0  # the plan text already said "No changes." (or showed the twins)
    failures = dict(report.failures)
    for address in report.not_sent:  # counted in the sentence that says why it stopped
        failures.pop(address, None)
    for address, reason in result.stale.items():
        failures[address] = f"refused: {reason}"
    for conflict in conflicts:
        failures[conflict.address] = f"refused: {conflict.message}"
    never = sum(1 for o in report.outcomes if not o.attempted and o.action.type in CHANGE_TYPES)
    summary = render_apply_summary(
        _done_counts(report), failures, recorded_in=recorded_in, never_started=never
    )
    click.echo(summary)
    recorded = sum(
        1
        for o in report.outcomes
        if o.ok and o.action.type == "noop" and getattr(o.action, "target", None) is not None
    )
    if recorded:
        noun = "resource" if recorded == 1 else "resources"
        click.echo(f"Recorded {recorded} unchanged {noun} in {recorded_in} (adopted or refreshed).")
    if report.adopted:
        click.echo(
            "Adopted after an uncertain create (found by ownership metadata, no twin made): "
            + ", ".join(report.adopted)
        )
    if result.stale:
        click.echo(
            "Some actions of the saved plan were refused because their resources changed "
            "since it was made; run `reconciler plan` to review the change."
        )
    _warn_twins(result.plan)
    stats = result.requests
    if stats is not None and stats.rate_limited:
        click.echo(
            f"The provider answered {stats.rate_limited} of {stats.requests:,} requests with "
            "429 (rate limit); apply slowed down to its pace and sent them again.",
            err=True,
        )
    return 1 if failures else 0
