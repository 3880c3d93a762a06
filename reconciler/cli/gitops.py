"""``drift``, ``import`` and ``fmt``, and GitHub Actions annotations of manifest errors.

Thin: each command parses its flags, calls ``reconciler.app``, renders, and sets the exit
code. ``register(group)`` adds the commands to the ``reconciler`` group and hooks
``annotate_for_github`` into the one error handler (``failures.ERROR_REPORTERS``), so that in
GitHub Actions (``GITHUB_ACTIONS=true``) every manifest error also becomes an
``::error file=...,line=...,col=...::message`` annotation on the pull request, and every
warning about a place in a manifest (an advisory policy finding at ``validate``,
``failures.WARNING_REPORTERS``) a ``::warning`` one.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import app as usecases
from reconciler.cli import failures, terminal
from reconciler.cli.app import App, format_option, full_option, not_empty, pass_app
from reconciler.cli.planning import refreshing, warn_if_empty
from reconciler.errors import ManifestError, ManifestIssue
from reconciler.kinds import noun
from reconciler.render import render_drift

if TYPE_CHECKING:  # loaded by ``import --all-unmanaged`` only, not by every command's start
    from reconciler.app import Skipped

#: ``drift`` when the live system drifted (0: no drift, 1: error).
EXIT_DRIFT = 2


def register(group: click.Group) -> None:
    group.add_command(drift)
    group.add_command(import_command)
    group.add_command(fmt)
    reporters = getattr(failures, "ERROR_REPORTERS", None)
    if reporters is not None and annotate_for_github not in reporters:
        reporters.append(annotate_for_github)
    warners = getattr(failures, "WARNING_REPORTERS", None)
    if warners is not None and annotate_warning_for_github not in warners:
        warners.append(annotate_warning_for_github)


# --- GitHub Actions annotations ------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(error: BaseException) -> list[str]:
    """Workflow commands that annotate each manifest issue of ``error`` on its line.

    Example: ``::error file=manifests/agents.yaml,line=7,col=10,title=spec.model::unknown
    field``. Errors other than ``ManifestError`` give none (they have no place in a file).
    """
    if not isinstance(error, ManifestError):
        return []
    return [github_annotation("error", issue) for issue in error.issues]


def github_annotation(command: str, issue: ManifestIssue) -> str:
    """The workflow command (``error`` or ``warning``) that annotates ``issue`` on its line."""
    props = []
    if issue.line >= 1 and not issue.file.startswith("<"):  # a place in a file
        props += [f"file={_escape_property(issue.file)}", f"line={issue.line}"]
        props += [f"col={issue.col}"] if issue.col >= 1 else []
    if issue.path:
        props.append(f"title={_escape_property(issue.path)}")
    head = f"::{command} {','.join(props)}" if props else f"::{command}"
    return f"{head}::{_escape_data(issue.message)}"


def annotate_for_github(error: BaseException) -> None:
    """In GitHub Actions, print ``github_annotations(error)`` on stderr (the runner reads
    workflow commands on stdout and stderr alike, and stdout is often redirected to a file:
    ``plan --format markdown > plan.md``); elsewhere do nothing."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    for line in github_annotations(error):
        click.echo(line, err=True)


def annotate_warning_for_github(issue: ManifestIssue) -> None:
    """In GitHub Actions, print a ``::warning`` annotation of ``issue`` on stderr (as
    ``annotate_for_github`` does errors); elsewhere do nothing."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        click.echo(github_annotation("warning", issue), err=True)


# --- drift ---------------------------------------------------------------------------------


@click.command()
@format_option("fmt_", "issues")
@full_option
@click.option(
    "--ignore-unmanaged",
    is_flag=True,
    help="Leave out live resources that no manifest of this project owns (twins stay in).",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Accepted as plan takes it, so CI scripts can pass it to both: drift always exits "
    "0 (no drift), 2 (drift) or 1 (error).",
)
@click.option(
    "--allow-origin-change",
    is_flag=True,
    help="Compare although the lockfile was applied to another provider (another "
    "--provider-url or embedded database): the same objects served elsewhere.",
)
@pass_app
@click.pass_context
def drift(
    ctx: click.Context,
    app: App,
    fmt_: str,
    full: bool,
    ignore_unmanaged: bool,
    detailed_exitcode: bool,
    allow_origin_change: bool,
) -> None:
    """Tell whether the live system changed behind git's back. Changes nothing.

    Compares the live resources with the lockfile and the manifests, with the same one list
    per kind as plan, and reports per address: changed out of band (the fields, and for
    agents the version that changed them and when), archived or deleted behind our back, pin
    drift (a deployment runs another agent version than the one pinned), unmanaged
    resources (live, but owned by no manifest of this project) and twins (a second live
    object this project tagged for an address).

    A lockfile applied to another provider origin is refused (its objects would all look
    deleted), unless --allow-origin-change says it is the same provider.

    Exit 0 when there is no drift, 2 when there is, 1 on error.
    """
    with terminal.status(refreshing(app)):
        report = app.run(
            usecases.drift(
                app.settings,
                ignore_unmanaged=ignore_unmanaged,
                allow_origin_change=allow_origin_change,
            )
        )
    warn_if_empty(app.settings.manifests)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}.", err=True)
    color = terminal.stdout_color() if fmt_ == "text" else False
    click.echo(
        render_drift(report, fmt_, color=color, width=terminal.stdout_width(), full=full),  # type: ignore[arg-type]
        nl=False,
    )
    if report.has_drift:
        ctx.exit(EXIT_DRIFT)


# --- import --------------------------------------------------------------------------------


@click.command("import")
@click.argument("address", metavar="[ADDR]", required=False, callback=not_empty)
@click.argument("remote_id", metavar="[ID]", required=False, callback=not_empty)
@click.option(
    "--all-unmanaged",
    is_flag=True,
    help="Adopt everything live that no manifest owns, writing its manifests to --out.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="With --all-unmanaged: where to write one file per kind (agents.yaml, "
    "environments.yaml, vaults.yaml, deployments.yaml, memory_stores.yaml, skills.yaml, and "
    "the skills' directories under skills/); existing files are never overwritten.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With ADDR ID: replace ADDR's lockfile entry, re-tag an object this project "
    "tagged for another address, or take over an object another project's tags claim "
    "(a skill, which has no tags: one another project's agents use), or one whose "
    "managed-by names another tool.",
)
@click.option(
    "--allow-origin-change",
    is_flag=True,
    help="Import although the lockfile was applied to another provider (another "
    "--provider-url or embedded database); the lockfile then records this one.",
)
@pass_app
def import_command(
    app: App,
    address: str | None,
    remote_id: str | None,
    all_unmanaged: bool,
    out: Path | None,
    force: bool,
    allow_origin_change: bool,
) -> None:
    """Adopt existing remote resources.

    \b
      reconciler import ADDR ID
          Record the live object ID as ADDR (e.g. agent.coder agent_01...) in the
          lockfile and tag it with the ownership metadata. Tagging an agent saves a new
          version. Importing a vault also adopts the credentials its manifest declares.
          When no manifest declares ADDR, its document is written from the live object
          to MANIFESTS/KIND/NAME.yaml (e.g. manifests/agents/coder.yaml; a vault with
          its live credentials, secrets as {from_env: ...}) and never over a file.
      reconciler import --all-unmanaged --out DIR
          Write manifests for everything live that nothing owns (one file per kind,
          secrets as {from_env: ...} placeholders to fill in) and adopt it all.

    Afterwards `reconciler plan` shows no change, except credential secrets: the provider
    never returns them, so the first apply writes them from the manifests.

    Exit 0 when everything was imported, 1 otherwise (with --all-unmanaged: 1 when an
    object nothing owns was skipped; one whose managed-by names another tool does not count).
    """
    if all_unmanaged:
        if address or remote_id or force:
            failures.fail("--all-unmanaged takes no ADDR, ID or --force")
        if out is None:
            failures.fail(
                "--all-unmanaged needs --out DIR, the directory to write the manifests to"
            )
        _import_all(app, out, allow_origin_change)
        return
    if out is not None:
        failures.fail("--out goes with --all-unmanaged")
    if not address or not remote_id:
        failures.fail(
            "give an address and a remote id (`reconciler import agent.coder agent_01...`), "
            "or --all-unmanaged --out DIR"
        )
    with terminal.status("Importing..."):
        result = app.run(
            usecases.import_resource(
                app.settings,
                address,
                remote_id,
                force=force,
                allow_origin_change=allow_origin_change,
            )
        )
    if result.already:
        click.echo(f"{address} is already recorded as {remote_id}; nothing to do.")
        return
    for path in result.files:
        prompt = path.parent.name == "prompts"  # a long system prompt, in its own file
        click.echo(
            f"Wrote {path} ({'its system prompt' if prompt else f'the document of {address}'})."
        )
    for adopted in result.adopted:
        click.echo(_adopted_line("Imported", adopted))
    if any(adopted.kind == "memory_store" for adopted in result.adopted):
        click.echo(
            "The memory store is imported without its memories: the agents own that content."
        )
    click.echo(
        f"Recorded in {app.settings.state_name}. Run `reconciler plan` to compare with the manifests."
    )
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    _secret_variables(result.secrets)


def _secret_variables(secrets: tuple[usecases.SecretVariable, ...]) -> None:
    """The variables a written vault document reads its secrets from, to set before plan."""
    if not secrets:
        return
    click.echo(
        "\nThe provider never returns secrets. Set these variables before `reconciler plan`;"
        " the first apply writes them:"
    )
    width = max(len(s.variable) for s in secrets)
    for s in secrets:
        click.echo(f"  {s.variable.ljust(width)}  {s.address} {s.path}")


def _adopted_line(verb: str, adopted: usecases.Adopted) -> str:
    what = "tagged with the ownership metadata" if adopted.tagged else "already tagged"
    if adopted.kind == "skill":  # no metadata: the lockfile entry is its ownership
        what = "recorded with its latest version (a skill carries no tags)"
    if adopted.kind == "agent" and adopted.version is not None:
        what += f", now version {adopted.version}" if adopted.tagged else ""
    return f"{verb} {adopted.address} ({adopted.remote_id}): {what}."


def _import_all(app: App, out: Path, allow_origin_change: bool = False) -> None:
    with terminal.status("Importing..."):
        result = app.run(
            usecases.import_unmanaged(app.settings, out, allow_origin_change=allow_origin_change)
        )
    if not result.documents:
        if result.left_behind:
            click.echo("Nothing was imported.")
        else:
            click.echo("Nothing to import: no live resource is unmanaged.")
        _skipped(result.skipped)
        _incomplete(result)
        return
    for path in result.files:
        counts = Counter(
            d.kind for d in result.documents if usecases.KIND_FILES[d.kind] == path.name
        )
        described = ", ".join(
            f"{n} {noun(kind)}{'s' if n != 1 else ''}" for kind, n in counts.items()
        )
        if not described and path.parent.name == "prompts":  # a long prompt, in its own file
            described = f"the system prompt of agent.{path.stem}"
        click.echo(f"Wrote {path} ({described})." if described else f"Wrote {path}.")
    if any(d.kind == "MemoryStore" for d in result.documents):
        click.echo(
            "Memory stores are imported without their memories: the agents own that content."
        )
    for adopted in result.adopted:
        click.echo(_adopted_line("Adopted", adopted))
    n = len(result.adopted)
    click.echo(f"Recorded {n} resource{'' if n == 1 else 's'} in {app.settings.state_name}.")
    _skipped(result.skipped)
    notes = [f"{d.address}: {note}" for d in result.documents for note in d.notes]
    for note in notes:
        click.echo(f"Note: {note}.", err=True)
    _secret_variables(result.secrets)
    manifests = Path(app.settings.manifests).resolve()
    inside = out.resolve() == manifests or manifests in out.resolve().parents
    plan = (
        "`reconciler plan`"
        if inside
        else f"`reconciler plan` with {out} moved into {app.settings.manifests}"
    )
    expect = "show only the updates noted above" if notes else "show no change"
    click.echo(
        f"\nReview {out}, commit it with {app.settings.state_name}, and run {plan}: it should "
        f"{expect}."
    )
    if result.failures:
        lines = "\n".join(f"  {a}: {why}" for a, why in result.failures.items())
        ids = {r.address: r.remote_id for d in result.documents for r in d.resources}
        retry = "\n".join(f"  reconciler import {a} {ids[a]}" for a in result.failures)
        failures.fail(
            f"{len(result.failures)} resources could not be adopted (their documents were "
            f"written):\n{lines}\nFix the cause, then adopt each one before planning:\n{retry}"
        )
    _incomplete(result)


def _incomplete(result: usecases.UnmanagedImport) -> None:
    """Exit 1 when an object nothing owns was skipped (another tool's and this project's
    twins are not "unmanaged" in that sense: they leave the exit code alone)."""
    if n := result.left_behind:
        failures.fail(
            f"{n} unmanaged object{'s were' if n != 1 else ' was'} not imported "
            "(skipped above): fix what each line says, then run this import again"
        )


def _skipped(skipped: tuple[Skipped, ...]) -> None:
    for s in skipped:
        click.echo(f"Skipped {s.kind} {s.remote_id}: {s.reason}.", err=True)


# --- fmt -----------------------------------------------------------------------------------


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATHS]...")
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing: list the files that are not formatted and exit 1 if any.",
)
@pass_app
@click.pass_context
def fmt(ctx: click.Context, app: App, paths: tuple[Path, ...], check: bool) -> None:
    """Rewrite manifests in canonical form (default: the --manifests directory).

    Canonical: documents ordered kind, name, moved_from, protect, ignore_changes, spec; spec
    fields in a fixed order per kind, then nested keys by a stable rank (type, name, ...
    first); two-space indentation with list items indented under their key; one `---`
    between documents; UTF-8 with LF line endings and no byte-order mark (a file saved with
    CRLF is rewritten).
    Metadata keys and values, quoting and flow style ({a: b}) stay as written.

    Comments are kept: a comment after a value stays on its line, a comment line above a key
    moves with that key, and comment lines at the top or end of a document (or alone between
    two ---) stay there. A file fmt cannot format without losing a comment or changing its
    data is left alone and reported. Below the --manifests directory, a file it does not read as a
    manifest (a skill's files, what .reconcilerignore leaves out, hidden ones) is left alone
    also when named, as the pre-commit hook names every changed YAML file.

    Prints the files it changed (with --check: that it would change). Exit 0, or 1 when
    --check finds unformatted files or a file cannot be formatted.
    """
    report = usecases.format_paths(
        list(paths) or [app.settings.manifests], check=check, manifests=app.settings.manifests
    )
    for why in report.skipped.values():
        click.echo(f"Skipped {why}.", err=True)
    for path in report.changed:
        click.echo(f"would reformat {path}" if check else f"reformatted {path}")
    for path, why in report.refused.items():
        click.echo(f"Error: {why}", err=True)  # left alone, and the exit is 1
    if report.refused or (check and report.changed):
        ctx.exit(1)
