"""Pending intents no manifest claims any more: what became of each, so apply can drop them.

An intent is recorded before a create is sent and is resolved by the next plan of its
address: found by its ownership tags and recorded, or created again. When the document was
removed from the manifests meanwhile, nothing plans that address any more, and the intent
stayed for ever (60 of them after repeated kills). Such an intent needs no resolving: a live
object this project owns is found by its ownership tags with or without an intent naming it
(the plan lists it as not in the manifests, and ``--prune`` archives it), and a create that
never reached the provider left nothing behind. Apply drops them and says which was which.
Pure: the caller gives the lockfile, the addresses the manifests declare and what refresh saw.
"""

from __future__ import annotations

from collections.abc import Collection

from reconciler.engine.refresh import Observed
from reconciler.kinds import owned_address
from reconciler.state import Lockfile

__all__ = ["leftover_intents"]


def leftover_intents(
    lockfile: Lockfile, declared: Collection[str], observed: Observed, project: str
) -> dict[str, str]:
    """The pending intents of addresses the manifests no longer declare.

    Args:
        lockfile: the current ``Lockfile``.
        declared: every address of the manifests (credentials included), whatever
            ``--target`` says: an intent of a declared address is resolved by its plan.
        observed: what refresh listed.
        project: the project whose ownership tags count.

    Returns:
        address -> what its create left behind, a clause such as ``never created`` or
        ``created as agent_01 (not in the manifests: left alone; --prune archives it)``;
        sorted by address.
    """
    left: dict[str, str] = {}
    for address in sorted(set(lockfile.pending) - set(declared)):
        intent = lockfile.pending[address]
        if intent.operation in ("rollback", "pin"):  # no create: nothing to look for
            left[address] = f"an interrupted {intent.operation} move, not a create"
            continue
        if intent.operation == "adopt":
            left[address] = f"an unfinished import of {intent.remote_id}, not a create"
            continue
        live = [
            o
            for o in observed.all(intent.kind)
            if not o.get("archived_at") and owned_address(o, project) == address
        ]
        if live:
            ids = ", ".join(sorted(str(o.get("id")) for o in live))
            left[address] = (
                f"created as {ids} (not in the manifests: left alone; --prune archives it)"
            )
        elif intent.kind == "credential" and intent.parent_id not in observed.credentials:
            left[address] = f"its vault {intent.parent_id} is not managed any more"
        else:
            left[address] = "never created"
    return left
