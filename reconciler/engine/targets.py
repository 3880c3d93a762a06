"""``--target``: which addresses a targeted plan keeps. Pure: no I/O.

A target brings along what it depends on (its references, a credential's vault) and a vault
brings its credentials (a vault that comes only as a targeted credential's parent does not:
its other credentials stay out), so a targeted apply never creates something whose
references do not exist. ``targeted_addresses`` answers before planning (only those secrets are read);
``wanted_addresses`` answers for a whole plan (and refuses an unknown target), and ``narrow``
keeps the part of the plan it names.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping

from reconciler.engine.desired import DesiredResource, desired_resources
from reconciler.engine.model import Action, Conflict, NoOp, Note, Replace, Twin, Update
from reconciler.engine.ownership import twin_address
from reconciler.errors import PlanError
from reconciler.manifest import Document


def closure(
    targets: Iterable[str], desired: Mapping[str, DesiredResource], extra: Collection[str] = ()
) -> set[str]:
    """``targets`` and everything they depend on; a vault's credentials come with it, unless
    the vault comes only as the parent of a targeted credential (its siblings stay out).

    Args:
        targets: the addresses given with ``--target``.
        desired: the desired resources by address.
        extra: other known addresses (lockfile entries, twins) a vault target may bring along.
    """
    wanted: set[str] = set()
    whole: set[str] = set()  # reached otherwise than as a credential's parent
    stack = [(t, True) for t in targets]
    while stack:
        addr, with_credentials = stack.pop()
        if addr in wanted and (addr in whole or not with_credentials):
            continue
        wanted.add(addr)
        res = desired.get(addr)
        if res is not None:
            parent = addr.partition(".credential.")[0]
            stack.extend((ref, ref != parent) for ref in res.refs)
        if with_credentials:
            whole.add(addr)
            stack.extend((a, True) for a in desired if a.startswith(addr + ".credential."))
            stack.extend((a, True) for a in extra if a.startswith(addr + ".credential."))
    return wanted


def targeted_addresses(documents: Iterable[Document], targets: Iterable[str]) -> frozenset[str]:
    """The desired addresses a ``--target`` plan of ``targets`` plans: each target and what
    it depends on (a vault's credentials with it). Only their secrets are read."""
    desired = {r.address: r for r in desired_resources(documents)}
    return frozenset(closure(targets, desired))


def check_targets(
    targets: Iterable[str], known: Collection[str], moved: Mapping[str, str] | None = None
) -> None:
    """Raise ``PlanError`` for a target that names no known address (with a close match),
    or the old address of a move (``moved``: old -> new)."""
    for t in targets:
        if moved and t in moved and t not in known:
            raise PlanError(
                f"--target {t}: the manifests move it to {moved[t]} (moved_from); target {moved[t]}"
            )
        if t not in known and t.startswith("policy."):
            raise PlanError(
                f"--target {t}: a Policy is no remote resource, so it is not planned: its "
                "rules are checked at every validate, plan and apply; target the resources "
                "it checks"
            )
        if t not in known:
            hint = difflib.get_close_matches(t, sorted(known), n=1)
            did = f"; did you mean {hint[0]}?" if hint else ""
            raise PlanError(f"--target {t}: no such address in the manifests or lockfile{did}")


def wanted_addresses(
    targets: tuple[str, ...],
    desired: Mapping[str, DesiredResource],
    actions: list[Action],
    notes: list[Note],
    conflicts: list[Conflict],
    twins: list[Twin],
) -> set[str]:
    """The addresses of a whole plan that ``targets`` and their dependencies touch (the
    archive of a targeted address's twin included).

    Raises:
        PlanError: a target names no address of the manifests, the lockfile or the plan.
    """
    known = (
        set(desired)
        | {a.address for a in actions}
        | {n.address for n in notes}
        | {c.address for c in conflicts}
    )
    moved = {
        a.moved_from: a.address
        for a in actions
        if isinstance(a, Update | Replace | NoOp) and a.moved_from is not None
    }
    check_targets(targets, known, moved)
    wanted = closure(targets, desired, known)
    return wanted | {twin_address(t.address, t.remote_id) for t in twins if t.address in wanted}


def narrow(
    wanted: set[str],
    actions: list[Action],
    notes: list[Note],
    conflicts: list[Conflict],
    twins: list[Twin],
) -> tuple[list[Action], list[Note], list[Conflict], list[Twin]]:
    """The part of a whole plan ``wanted`` names; dependencies on what is left out are
    dropped (those actions are not in this apply)."""
    twins = [t for t in twins if t.address in wanted]
    actions = [a for a in actions if a.address in wanted]
    kept = {a.address for a in actions}
    actions = [
        a.model_copy(update={"depends_on": tuple(d for d in a.depends_on if d in kept)})
        for a in actions
    ]
    notes = [n for n in notes if n.address in wanted]
    conflicts = [c for c in conflicts if c.address in wanted]
    return actions, notes, conflicts, twins
