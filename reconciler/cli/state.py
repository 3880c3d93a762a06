"""``state list | show | rm | mv | history | migrate`` and ``unlock``: read, edit and move the state.

The state (the lockfile, or PostgreSQL with ``--backend``) and its lock belong to
``reconciler.state``; these commands call ``reconciler.app.state`` and print. ``state rm``
edits under the apply lock, like apply does, and never touches the remote object.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.app.state import (
    LockEntry,
    MigrateResult,
    close_addresses,
    declared,
    list_entries,
    migrate_state,
    missing_local_history,
    move_state_entry,
    remove_entry,
    show_entry,
    state_history,
    state_snapshot,
    unlock_state,
)
from reconciler.cli.app import App, not_empty, pass_app
from reconciler.cli.failures import fail
from reconciler.kinds import DEFAULT_LOCKFILE, KIND_INFO, noun


def register(group: click.Group) -> None:
    group.add_command(state)
    group.add_command(unlock_command)


@click.group()
def state() -> None:
    """Inspect, edit and move the state (never the provider)."""


@state.command("list")
@pass_app
def state_list(app: App) -> None:
    """Every address in the state, sorted, with its kind, remote id and what it is at: an
    agent's version, a skill's latest version, a deployment's pins (agent.NAME@VERSION)."""
    lockfile, exists = state_snapshot(app.settings)
    name = app.settings.state_name
    rows = [
        (address, entry.kind, entry.id, _at(entry)) for address, entry in list_entries(lockfile)
    ]
    pending = sorted(lockfile.pending.items())
    if not rows and not pending:
        if not exists:  # say so: a wrong --lockfile is not "empty"
            what = "--lockfile" if app.settings.backend is None else "--backend and --project"
            click.echo(
                f"{name} does not exist: no entries (nothing was applied with it yet; check "
                f"{what}).",
                err=True,
            )
        else:
            click.echo(f"{name} has no entries.", err=True)
        return
    # pending rows share the address and kind columns, so the table stays one table
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    widths[0] = max([widths[0], *(len(address) for address, _ in pending)])
    widths[1] = max([widths[1], *(len(intent.kind) for _, intent in pending)])
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        click.echo("  ".join(cells).rstrip())
    for address, intent in pending:
        click.echo(
            f"{address.ljust(widths[0])}  {intent.kind.ljust(widths[1])}  (pending "
            f"{intent.operation} since {intent.started_at}; the next apply resolves it)"
        )


def _at(entry: LockEntry) -> str:
    """What ``state list`` says an entry is at: ``v3``, ``skillver_...``, ``agent.x@3``."""
    if entry.version is not None:
        return f"v{entry.version}"
    if entry.kind == "skill":
        return entry.latest or ""
    return ", ".join(f"{agent}@{version}" for agent, version in sorted(entry.pins.items()))


@state.command("show")
@click.argument("address", callback=not_empty)
@pass_app
def state_show(app: App, address: str) -> None:
    """The state entry of ADDRESS as JSON (it holds no secret values, only fingerprints)."""
    lockfile, exists = state_snapshot(app.settings)
    if not exists and not lockfile.resources:  # a wrong --lockfile is not "no entry"
        what = "--lockfile" if app.settings.backend is None else "--backend and --project"
        fail(
            f"no entry for {address}: {app.settings.state_name} does not exist: no entries "
            f"(nothing was applied with it yet; check {what})"
        )
    entry = show_entry(lockfile, address)
    data = {"address": address, **entry.model_dump(mode="json")}
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@state.command("rm")
@click.argument("address", callback=not_empty)
@pass_app
def state_rm(app: App, address: str) -> None:
    """Forget ADDRESS: remove its state entry (a vault's: with its credentials' entries, as
    `state mv` moves them along). The remote object is NOT touched.

    The object keeps this project's ownership metadata, so the next plan finds it again
    while ADDRESS is in the manifests, and `plan --prune` archives it once ADDRESS is not:
    this mends a wrong entry (a bad merge); it does not stop managing the object. Takes the
    apply lock, so it never races an apply.
    """
    entry, intent, inside = remove_entry(app.settings, address)
    if entry is None and intent is not None:
        # only an intent: the object may never have been made, so "it still exists" is unsaid
        click.echo(
            f"Removed the pending {intent.operation} of {address} from "
            f"{app.settings.state_name} (a run stopped before recording its outcome). Nothing "
            "was sent to the provider."
        )
        if intent.operation == "adopt" and intent.remote_id:
            click.echo(
                f"The object it was adopting ({intent.kind} {intent.remote_id}) may not carry "
                f"this project's tags yet: `reconciler import {address} {intent.remote_id}` "
                "adopts it again; a plan without it may create a twin."
            )
        elif intent.operation in ("create", "replace"):
            click.echo(
                f"If that {intent.operation} went through, the next plan finds the object "
                f"again while {address} is in the manifests (by its ownership metadata; a "
                "skill by its slug)."
            )
        return
    remote = f" ({entry.kind} {entry.id})" if entry is not None else ""
    info = KIND_INFO.get(entry.kind) if entry is not None else None
    dropped = f" and its pending {intent.operation}" if intent is not None else ""
    if inside:  # as `state mv` takes them along
        dropped += f" with its credential{'s' if len(inside) > 1 else ''} {', '.join(inside)}"
    click.echo(f"Removed {address}{dropped} from {app.settings.state_name}.")
    untouched = f"The remote object{remote} was NOT touched: it still exists on the provider."
    if info is not None and not info.has_metadata and entry is not None:
        # a skill carries no tags: nothing proves it is this project's any more
        click.echo(
            f"{untouched} A {noun(entry.kind)} carries no ownership metadata, so while "
            f"{address} is in the manifests the next plan refuses to take it over; "
            f"`reconciler import {address} {entry.id}` adopts it again."
        )
        return
    # `state rm` is not Terraform's "stop managing it": the tags still say it is ours
    click.echo(
        f"{untouched} While {address} is in the manifests, the next plan finds it again by "
        "its ownership metadata. That metadata still names this project: once "
        f"{address} is gone from the manifests, `reconciler plan --prune` archives it. "
        "To keep it out of this project's reach, remove its managed-by, "
        "reconciler-project and reconciler-address metadata on the provider."
    )


@state.command("mv")
@click.argument("old", callback=not_empty)
@click.argument("new", callback=not_empty)
@pass_app
def state_mv(app: App, old: str, new: str) -> None:
    """Move the entry of OLD to NEW (a rename made by hand). The remote object is NOT touched.

    A vault's credentials move with it, and deployment pins follow a moved agent. The next
    plan shows the object as moved (OLD -> NEW): it retags it for NEW (and renames it when
    its name follows the document). In the manifests, `moved_from: OLD_NAME` on the renamed
    document does the same without this command. Takes the apply lock.
    """
    entry = move_state_entry(app.settings, old, new)
    remote = f" ({entry.kind} {entry.id})" if entry is not None else ""
    click.echo(f"Moved {old} to {new} in {app.settings.state_name}.")
    info = KIND_INFO.get(entry.kind) if entry is not None else None
    if entry is not None and info is not None and not info.has_metadata:
        click.echo(  # a skill: no tag to rewrite, no name to follow the document
            f"The remote object{remote} was NOT touched, and the next apply sends nothing "
            f"for it: a {noun(entry.kind)} carries no ownership metadata and no name that "
            f"follows the document; the entry alone says it is {new}."
        )
        return
    if declared(app.settings, new) is False:
        click.echo(
            f"The remote object{remote} was NOT touched. {new} is not in the manifests yet: "
            f"rename its document there (and the references to it) before the next plan, "
            f"which then retags the object for {new} (its reconciler-address metadata) and "
            f"renames it if its name follows the document; until then plan shows the entry "
            f"as not ours and apply exits 1."
        )
        return
    click.echo(
        f"The remote object{remote} was NOT touched: the next apply retags it for {new} "
        "(its reconciler-address metadata) and renames it if its name follows the document."
    )


@state.command("history")
@click.argument("address", required=False, callback=not_empty)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_app
def state_history_command(app: App, address: str | None, as_json: bool) -> None:
    """Who changed what and when: every write of the state, oldest first.

    With the lockfile, the writes made in this checkout (PATH.history beside it is kept out
    of git; the lockfile's git log is the shared history); with --backend, every runner's.

    With ADDRESS, only the writes that changed it (exit 1 when the state has neither an entry
    for ADDRESS nor a write that changed it, as `state show`). Each line: serial, time, actor
    (user@host, and the CI run when one was recognised), operation, the digest of the plan
    applied, and what changed.
    """
    records = state_history(app.settings, address)
    if not records:
        if app.settings.lockfile_missing:  # as `state list` says it
            click.echo(
                f"{app.settings.lockfile} does not exist: no history (nothing was applied with "
                "it yet; check --lockfile).",
                err=True,
            )
            return
        what = f" of {address}" if address else ""
        close = close_addresses(app.settings, address) if address else []
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        current, _ = state_snapshot(app.settings)
        if address and address not in current.resources and address not in current.pending:
            # as `state show` says it: an address the state does not know is an error
            fail(f"{app.settings.state_name} has no history of {address} and no entry for it{hint}")
        local = missing_local_history(app.settings)
        if local is not None:  # a fresh clone: the history file is not in git
            click.echo(
                f"{app.settings.state_name} has no history{what} in this checkout: {local} "
                "records only the writes made here and is not in git; `git log -p "
                f"{app.settings.lockfile}` shows the writes made elsewhere{hint or '.'}",
                err=True,
            )
            return
        click.echo(f"{app.settings.state_name} has no history{what}{hint or '.'}", err=True)
        return
    previous: int | None = None
    for record in records:
        if as_json:
            click.echo(record.model_dump_json())
            continue
        if previous is not None and record.serial <= previous:
            # the lockfile was replaced (lost and healed, restored from git, migrated over)
            click.echo(
                f"  (the state was replaced here: serial #{previous} is followed by "
                f"#{record.serial}, as after a lost, restored or migrated lockfile)"
            )
        previous = record.serial
        ci = f" [{record.ci_run}]" if record.ci_run else ""
        plan = f" plan {record.plan_digest[:19]}" if record.plan_digest else ""
        click.echo(f"#{record.serial}  {record.at}  {record.actor}{ci}  {record.operation}{plan}")
        for change in record.changes:
            version = f" v{change.version}" if change.version is not None else ""
            ident = f" {change.id}" if change.id else ""
            moved = f" (from {change.moved_from})" if change.moved_from else ""
            click.echo(f"    {change.change:<8} {change.address}{ident}{version}{moved}")


@state.command("migrate")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL|PATH",
    help="Where to move the state: a PostgreSQL connection string, or a lockfile path.",
)
@click.option("--force", is_flag=True, help="Replace a target that already holds entries.")
@pass_app
def state_migrate(app: App, to: str, force: bool) -> None:
    """Copy the state to another backend (lockfile -> PostgreSQL -> lockfile).

    Lineage, serial, entries, pending intents and history are kept; a target that already
    holds entries is refused unless --force. The source (a lockfile or a database's state)
    is marked as moved: every command refuses it after, naming where the state went (--force
    migrates it again), so no two live states of one lineage are left. Point --backend
    (RECONCILER_BACKEND) at a database target afterwards, or unset it and pass --lockfile
    (RECONCILER_LOCKFILE) for a lockfile target; the command says which.
    """
    result = migrate_state(app.settings, to, force=force)
    if result.already_there:
        # a migration stopped (killed) after its copy landed, before the source was marked
        click.echo(
            f"{result.target} already holds this state (lineage {result.lineage}, serial "
            f"{result.serial}, {result.entries} entries): an earlier migration copied it and "
            "stopped before it marked the source; nothing was copied again."
        )
    else:
        click.echo(
            f"Copied {result.entries} entries, {result.pending} pending intents and "
            f"{result.history} history records (lineage {result.lineage}, serial "
            f"{result.serial}) from {result.source} to {result.target}."
        )
    if result.history_left:
        records = "record" if result.history_left == 1 else "records"
        click.echo(
            f"{result.history_left} earlier history {records}, of a state this one replaced "
            "(a lost lockfile healed, or one restored from git), were not copied; they stay "
            f"in {result.history_left_in}."
        )
    if app.settings.backend is not None:
        readers = "every command run with that --backend"
    elif result.to_database:
        readers = "every command run without --backend"
    else:
        readers = "every command that reads it"
    target = "the database" if result.to_database else "the lockfile"
    click.echo(
        f"{result.source} now only says where the state went: {readers} refuses it, naming "
        f"{target}. Use the new state from now on:"
    )
    for line in _after_migrate(app, result):
        click.echo(f"  {line}")


def _after_migrate(app: App, result: MigrateResult) -> list[str]:
    """What to point runs at after a migration: the database, or the lockfile copied to."""
    source_is_db = app.settings.backend is not None
    if result.to_database:
        lines = [f"point --backend / RECONCILER_BACKEND at {result.target} in every runner."]
        if not source_is_db:
            # a lockfile left in git is still the state of every run without --backend: one
            # that plans against it sees an old state (ownership tags keep it from twins)
            lines.append(
                f"Once every runner sets RECONCILER_BACKEND, remove {app.settings.lockfile} "
                "from git (git rm)."
            )
        return lines
    lines = []
    if source_is_db:
        lines.append("unset --backend / RECONCILER_BACKEND, so that runs read the lockfile;")
    if Path(result.target) != Path(DEFAULT_LOCKFILE):
        lines.append(f"pass --lockfile {result.target} (or set RECONCILER_LOCKFILE to it);")
    lines.append(f"commit {result.target} next to the manifests.")
    return lines


@click.command("unlock")
@click.argument("lock_id", callback=not_empty)
@click.option(
    "--force",
    is_flag=True,
    help="Remove the lock even though its holder may still be running; that apply then "
    "stops at its next write.",
)
@pass_app
def unlock_command(app: App, lock_id: str, force: bool) -> None:
    """Clear a stale apply lock or lease LOCK_ID (the id the refused apply printed).

    Only do this when no apply is running: the lock keeps two applies from writing the same
    state. The next apply takes a stale lock over by itself anyway: one whose process is gone
    (on this host) or whose heartbeat is older than 30 s, and with --backend an expired lease.

    A lock whose holder may still be running (its process alive on this host, its heartbeat
    fresh, or its lease not expired) is refused, naming who holds it since when; --force
    removes it anyway, and the running apply stops at its next write.
    """
    info = unlock_state(app.settings, lock_id, force=force)
    click.echo(f"Removed the lock of {info.describe()} from {app.settings.state_name}.")
