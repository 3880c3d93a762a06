"""``state list | show | rm | mv`` and ``unlock``: read and edit the lockfile by hand.

The lockfile and the apply lock belong to ``reconciler.state``; these commands only call it
and print. ``state rm`` edits under the apply lock, like apply does, and never touches the
remote object.
"""

from __future__ import annotations

import json

import click

from reconciler.app.state import (
    ApplyLock,
    StateStore,
    list_entries,
    move_entry,
    read_project_lockfile,
    show_entry,
    unlock,
)
from reconciler.cli.app import App, pass_app
from reconciler.errors import LockfileError


def register(group: click.Group) -> None:
    group.add_command(state)
    group.add_command(unlock_command)


@click.group()
def state() -> None:
    """Inspect and edit the lockfile (never the provider)."""


@state.command("list")
@pass_app
def state_list(app: App) -> None:
    """Every address in the lockfile with its kind, remote id and agent version, sorted."""
    lockfile = read_project_lockfile(app.settings.lockfile, app.settings.project)
    rows = [
        (address, entry.kind, entry.id, f"v{entry.version}" if entry.version is not None else "")
        for address, entry in list_entries(lockfile)
    ]
    pending = sorted(lockfile.pending.items())
    if not rows and not pending:
        if not app.settings.lockfile.exists():  # say so: a wrong --lockfile is not "empty"
            click.echo(
                f"{app.settings.lockfile} does not exist: no entries (nothing was applied with "
                "it yet; check --lockfile).",
                err=True,
            )
        else:
            click.echo(f"{app.settings.lockfile} has no entries.", err=True)
        return
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(3)] + [row[3]]
        click.echo("  ".join(cells).rstrip())
    for address, intent in pending:
        click.echo(
            f"{address}  {intent.kind}  (pending {intent.operation} since {intent.started_at}; "
            "the next apply resolves it)"
        )


@state.command("show")
@click.argument("address")
@pass_app
def state_show(app: App, address: str) -> None:
    """The lockfile entry of ADDRESS as JSON (it holds no secret values, only fingerprints)."""
    lockfile = read_project_lockfile(app.settings.lockfile, app.settings.project)
    entry = show_entry(lockfile, address)
    data = {"address": address, **entry.model_dump(mode="json")}
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@state.command("rm")
@click.argument("address")
@pass_app
def state_rm(app: App, address: str) -> None:
    """Forget ADDRESS: remove its lockfile entry. The remote object is NOT touched.

    Takes the apply lock, so it never races an apply.
    """
    if not app.settings.lockfile.exists():
        raise LockfileError(f"{app.settings.lockfile} does not exist; there is nothing to remove")
    lock = ApplyLock(app.settings.lockfile)
    lock.acquire("state rm")
    try:
        store = StateStore(app.settings.lockfile, project=app.settings.project)
        entry = store.load().resources.get(address)
        store.commit(lambda lf: lf.without(address))
    finally:
        lock.release()
    remote = f" ({entry.kind} {entry.id})" if entry is not None else ""
    click.echo(f"Removed {address} from {app.settings.lockfile}.")
    click.echo(
        f"The remote object{remote} was NOT touched: it still exists on the provider. While "
        f"{address} is in the manifests, the next plan finds it again by its ownership metadata."
    )


@state.command("mv")
@click.argument("old")
@click.argument("new")
@pass_app
def state_mv(app: App, old: str, new: str) -> None:
    """Move the entry of OLD to NEW (a rename made by hand). The remote object is NOT touched.

    A vault's credentials move with it, and deployment pins follow a moved agent. The next
    plan shows the object as moved (OLD -> NEW): it retags it for NEW (and renames it when
    its name follows the document). In the manifests, `moved_from: OLD_NAME` on the renamed
    document does the same without this command. Takes the apply lock.
    """
    if not app.settings.lockfile.exists():
        raise LockfileError(f"{app.settings.lockfile} does not exist; there is nothing to move")
    lock = ApplyLock(app.settings.lockfile)
    lock.acquire("state mv")
    try:
        store = StateStore(app.settings.lockfile, project=app.settings.project)
        entry = store.load().resources.get(old)
        store.commit(lambda lf: move_entry(lf, old, new))
    finally:
        lock.release()
    remote = f" ({entry.kind} {entry.id})" if entry is not None else ""
    click.echo(f"Moved {old} to {new} in {app.settings.lockfile}.")
    click.echo(
        f"The remote object{remote} was NOT touched: the next apply retags it for {new} "
        "(its reconciler-address metadata) and renames it if its name follows the document."
    )


@click.command("unlock")
@click.argument("lock_id")
@pass_app
def unlock_command(app: App, lock_id: str) -> None:
    """Clear a stale apply lock LOCK_ID (the id the refused apply printed).

    Only do this when no apply is running: the lock keeps two applies from writing the same
    lockfile.
    """
    info = unlock(app.settings.lockfile, lock_id)
    click.echo(f"Removed the lock of {info.describe()} from {app.settings.lockfile}.")
