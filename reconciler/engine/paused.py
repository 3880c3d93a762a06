"""A deployment the provider reports paused: why, and what brings it back.

The provider pauses a deployment by hand (``POST /v1/deployments/{id}/pause``, the Console)
or by itself when a scheduled run fails with an error that pauses (its agent, environment or
a vault archived or gone: provider-wire.md section 9.5). No manifest field says a deployment
is paused, and apply never unpauses one - an operator's pause may be the very thing that
stopped an incident - so drift reports it and the plan notes it, each saying how to resume.
"""

from __future__ import annotations

from reconciler.jsontypes import JSON


def _why_paused(live: JSON) -> str | None:
    """Why the live deployment ``live`` is paused, as a clause; None when it is not."""
    if live.get("status") != "paused" or live.get("archived_at"):
        return None
    reason = live.get("paused_reason")
    kind = reason.get("type") if isinstance(reason, dict) else None
    if kind == "manual":
        return "paused by hand (the Console or the API)"
    if kind == "error":
        error = reason.get("error") if isinstance(reason, dict) else None
        what = error.get("type") if isinstance(error, dict) else None
        failed = f"with {what}" if isinstance(what, str) and what else ""
        return f"paused by the provider after a scheduled run failed {failed}".rstrip()
    return "paused"


def _how_to_resume(live: JSON) -> str:
    """What brings the paused ``live`` back: apply never unpauses."""
    reason = live.get("paused_reason")
    first = (
        "once what it runs with is back (`reconciler plan` shows what apply restores), "
        if isinstance(reason, dict) and reason.get("type") == "error"
        else ""
    )
    return (
        "its schedule does not fire, and `reconciler apply` leaves it paused: "
        f"{first}unpause it in the Console or with the API "
        f"(POST /v1/deployments/{live['id']}/unpause)"
    )


def paused_message(live: JSON) -> str | None:
    """Why the live deployment ``live`` is paused and how to resume it (drift's item and the
    plan's note say it alike); None when it is not paused."""
    why = _why_paused(live)
    return None if why is None else f"{why}; {_how_to_resume(live)}"
