"""Seed memories a memory store's interrupted create left unwritten. Pure: no I/O.

A MemoryStore's ``memories:`` are seeds: created when absent and never changed afterwards
(the agents own the content). The adapter writes them right after the store's create, and
the create's outcome, which records the entry and clears the address's pending intent, is
recorded only once they are written. So a live store matched for an address that still has a
pending intent, and that is not the object the state records for it, was made by a create
whose run died (or failed) before its seeds were all written: the plan turns its seeds into
an update that writes the ones that are absent (``memories[PATH]`` changes), and the adapter
never overwrites a path that holds a memory.

A store matched through its recorded entry, or found by its tags after a lost state with no
intent, is never seeded again: its seeds were written (or cannot be known not to be), and a
seed an agent deleted on purpose must stay deleted.
"""

from __future__ import annotations

from reconciler.engine.desired import DesiredResource
from reconciler.engine.inputs import JSON, PlanInputs
from reconciler.engine.model import FieldChange

#: the top-level field of a memory store's seeds in request bodies (``update_body`` sends it)
SEEDS = "memories"


def unwritten_seeds(inputs: PlanInputs, res: DesiredResource, obj: JSON) -> tuple[FieldChange, ...]:
    """The seeds of ``res`` that apply must write to ``obj`` (when absent), as changes.

    Args:
        inputs: the plan's inputs (the state's entries and pending intents).
        res: the desired resource.
        obj: the live object matched for it.

    Returns:
        One ``add`` change per seed, at ``memories[PATH]``; empty unless ``obj`` is a memory
        store whose create's outcome was never recorded (see the module docstring).
    """
    if res.kind != "memory_store" or not inputs.pending(res.address):
        return ()
    entry = inputs.entry(res.address)
    if entry is not None and entry.id == obj.get("id"):
        return ()  # the recorded store: its create's outcome (after its seeds) was recorded
    return tuple(
        FieldChange(op="add", path=f"{SEEDS}[{seed['path']}]", new=seed["content"])
        for seed in res.spec.get(SEEDS) or ()
    )


def seeding_reason(changes: tuple[FieldChange, ...]) -> str | None:
    """The update's reason when it writes seeds, else None."""
    count = sum(1 for c in changes if c.path.startswith(SEEDS + "["))
    if not count:
        return None
    return (
        "its create was interrupted before its seed memories were all written: writes "
        f"those of its {count} seed{'s' if count != 1 else ''} that are absent (never "
        "overwrites a memory)"
    )
