"""Refuse, at plan time, a credential write that sends an ``expires_at`` already past.

The provider takes only a future ``expires_at`` for an OAuth credential (provider-wire.md
5.5), and refuses the write with a 400 otherwise: at apply, after the actions before it were
done. Whether an expiry is past depends on the clock, so ``validate`` (which reads the
manifests alone) cannot say; the plan can, for exactly the writes that would send one (a
create, a replace, an update whose body carries it). An unchanged credential whose expiry
passed is left alone: nothing is sent for it. This module reads the plan; it sends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.engine.model import Create, Plan, Replace, Update
from reconciler.errors import PlanError
from reconciler.manifest import ManifestSet

__all__ = ["check_expiries"]


def _now() -> datetime:
    return datetime.now(UTC)


def check_expiries(plan: Plan, manifests: ManifestSet) -> None:
    """Refuse the first write of ``plan`` that would send an ``auth.expires_at`` not in the
    future, at its ``file:line:col``.

    Raises:
        PlanError: naming the credential, the expiry and what to do.
    """
    now = _now()
    for action in plan.actions:
        if not isinstance(action, Create | Replace | Update) or action.kind != "credential":
            continue
        auth = action.body.get("auth")
        expires_at = auth.get("expires_at") if isinstance(auth, dict) else None
        if not isinstance(expires_at, str):
            continue
        try:
            when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            continue  # validate refuses what is no timestamp; the provider says the rest
        if when.tzinfo is None or when > now:
            continue
        try:
            where = f"{manifests.location(action.address, 'auth.expires_at')}: "
        except KeyError:
            where = ""
        raise PlanError(
            f"{where}{action.address}: auth.expires_at {expires_at} is in the past; the "
            "provider takes only a future expiry. Set the expiry of the token the manifest "
            "names (or remove expires_at if it has none)"
        )
