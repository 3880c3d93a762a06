"""Seed memories a memory store's interrupted create left unwritten. Pure: no I/O.

A MemoryStore's ``memories:`` are seeds: created when absent and never changed afterwards
(the agents own the content). The adapter writes them right after the store's create, and
the create's outcome, which records the entry and clears the address's pending intent, is
recorded only once they are written. So a live store matched for an address that still has a
pending intent, and that is not the object the state records for it, was made by a create
whose run died (or failed) before its seeds were all written: the plan turns its seeds into
an update that writes the ones that are absent (``memories[PATH]`` changes), and the adapter
never overwrites a path that holds a memory.

A store matched through its recorded entry is never seeded again: its seeds were written,
and a seed an agent deleted on purpose must stay deleted. The one exception is a seed added
to the manifest later: the entry records the seed paths it knows (``LockEntry.seeds``), and a
path it does not know is absent by the contract's words, so the plan writes it (when absent,
as ever), once. An entry older than that record knows none, and counts every seed as written.

A store found by its tags alone after a lost state (no entry, no intent: a run killed between
the store's create and its seeds, then the lockfile deleted) cannot say from the state whether
its seeds were written. Its memory history can: memory versions are append-only, so a seed
path no version ever named was never written, and no agent can have deleted it. The plan
reads that history for such stores only (``app/memories.py``, ``Observed.memory_paths``) and
writes the seeds it never named; a store whose history cannot tell (a redacted version) is
left as it is.
"""

from __future__ import annotations

from reconciler.engine.desired import DesiredResource
from reconciler.engine.inputs import PlanInputs
from reconciler.engine.model import FieldChange
from reconciler.jsontypes import JSON

#: the top-level field of a memory store's seeds in request bodies (``update_body`` sends it)
SEEDS = "memories"


def unwritten_seeds(
    inputs: PlanInputs, res: DesiredResource, obj: JSON, moved_from: str | None = None
) -> tuple[FieldChange, ...]:
    """The seeds of ``res`` that apply must write to ``obj`` (when absent), as changes.

    Args:
        inputs: the plan's inputs (the state's entries and pending intents).
        res: the desired resource.
        obj: the live object matched for it.
        moved_from: the old address of a store the plan moves: its entry records the seeds.

    Returns:
        One ``add`` change per seed, at ``memories[PATH]``: every seed of a memory store
        whose create's outcome was never recorded, the seeds added to the manifest since
        of a recorded one, else none (see the module docstring).
    """
    if res.kind != "memory_store":
        return ()
    present = {f"{SEEDS}[{p}]" for p in inputs.memories_present.get(str(obj.get("id")), ())}
    # apply writes a seed only where no memory is: one present (the agents' or an imported
    # store's, whatever its content) is no write, and the plan does not show it
    return tuple(c for c in _seeds_to_write(inputs, res, obj, moved_from) if c.path not in present)


def _seeds_to_write(
    inputs: PlanInputs, res: DesiredResource, obj: JSON, moved_from: str | None
) -> tuple[FieldChange, ...]:
    entry = inputs.entry(res.address)
    if (entry is None or entry.id != obj.get("id")) and moved_from is not None:
        entry = inputs.entry(moved_from)  # a rename: the same store, its seeds recorded there
    if entry is not None and entry.id == obj.get("id"):
        # the recorded store: its create's outcome (after its seeds) was recorded; only a
        # seed added to the manifest since is unwritten
        if entry.seeds is None:
            return ()  # an entry older than its seeds record: every seed counts as written
        known = set(entry.seeds)
        return tuple(_add(s) for s in res.spec.get(SEEDS) or () if s["path"] not in known)
    if not inputs.pending(res.address):
        # found by its tags alone: the seeds its memory history never named, if it was read
        seen = inputs.memory_paths.get(str(obj.get("id")), None)
        if entry is not None or seen is None:
            return ()
        return tuple(_add(s) for s in res.spec.get(SEEDS) or () if s["path"] not in seen)
    return tuple(_add(seed) for seed in res.spec.get(SEEDS) or ())


def _add(seed: JSON) -> FieldChange:
    return FieldChange(op="add", path=f"{SEEDS}[{seed['path']}]", new=seed["content"])


def seed_paths(res: DesiredResource) -> tuple[str, ...] | None:
    """The paths of a memory store's seeds, for its lockfile entry; None for other kinds."""
    if res.kind != "memory_store":
        return None
    return tuple(sorted(str(seed["path"]) for seed in res.spec.get(SEEDS) or ()))


def only_unwritten_seeds(body: JSON, changes: tuple[FieldChange, ...] | list[FieldChange]) -> JSON:
    """An update ``body`` whose seeds are only those ``changes`` add (``update_body`` sends
    the manifest's whole list): a seed written before is never sent again, so one an agent
    deleted stays deleted."""
    if SEEDS not in body:
        return body
    adds = {c.path for c in changes if c.op == "add"}
    kept = [s for s in body[SEEDS] or () if f"{SEEDS}[{s['path']}]" in adds]
    return {**body, SEEDS: kept}


def seeding_reason(
    changes: tuple[FieldChange, ...], *, interrupted: bool = True, found: bool = False
) -> str | None:
    """The update's reason when it writes seeds, else None; ``interrupted``: an interrupted
    create's seeds, else seeds added to the manifest of a recorded store; ``found``: a store
    found by its tags alone, whose history shows seeds never written."""
    count = sum(1 for c in changes if c.path.startswith(SEEDS + "["))
    if not count:
        return None
    plural = "s" if count != 1 else ""
    if found:
        return (
            f"its memory history shows {count} of its seeds never written (a create "
            "interrupted before the lockfile was lost): writes them (when absent; never "
            "overwrites a memory)"
        )
    if not interrupted:
        return (
            f"writes {count} new seed{plural}: absent from the store, never written by "
            "this project (a seed is written only where no memory is)"
        )
    return (
        "its create was interrupted before its seed memories were all written: writes the "
        f"{count} seed{plural} absent from the store (never overwrites a memory)"
    )
