"""What one state edit changed: the entries, pending intents and head fields it touched.

A state edit is a pure function from one ``Lockfile`` to the next (``backend.Edit``). Writing
the whole result costs O(all state); writing only what changed costs O(the changed
resources). ``diff`` finds the change by identity (entries are frozen and an edit keeps the
untouched ones as the very same objects), ``apply_delta`` replays it, and the JSON forms are
what the lockfile's journal and the PostgreSQL backend store. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reconciler.errors import LockfileError
from reconciler.state.model import LOCKFILE_VERSION, LockEntry, Lockfile, PendingIntent

#: the scalar fields of a lockfile besides its two per-address sections and its serial
HEAD_FIELDS = ("lockfile_version", "lineage", "salt", "project", "origin")

V = TypeVar("V")


@dataclass(frozen=True)
class Delta:
    """The change from one lockfile to the next.

    Attributes:
        head: head fields (``HEAD_FIELDS``) whose value changed, with their new value.
        entries: address -> its new entry, or None when the entry was removed.
        pending: address -> its new pending intent, or None when the intent was removed.
    """

    head: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, LockEntry | None] = field(default_factory=dict)
    pending: dict[str, PendingIntent | None] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.head or self.entries or self.pending)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (``None`` marks a removal)."""
        return {
            "head": dict(self.head),
            "entries": {
                a: (e.model_dump(mode="json") if e is not None else None)
                for a, e in self.entries.items()
            },
            "pending": {
                a: (p.model_dump(mode="json") if p is not None else None)
                for a, p in self.pending.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delta:
        """The inverse of ``to_json`` (raises pydantic's ValidationError on a bad entry)."""
        return cls(
            head={k: v for k, v in dict(data.get("head") or {}).items() if k in HEAD_FIELDS},
            entries={
                a: (LockEntry.model_validate(e) if e is not None else None)
                for a, e in dict(data.get("entries") or {}).items()
            },
            pending={
                a: (PendingIntent.model_validate(p) if p is not None else None)
                for a, p in dict(data.get("pending") or {}).items()
            },
        )


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    if old is new:
        return {}
    out: dict[str, Any] = {}
    get = old.get
    for address, value in new.items():
        before = get(address)
        if before is not value and before != value:
            out[address] = value
    if len(new) != len(old) or out:
        for address in old.keys() - new.keys():
            out[address] = None
    return out


def _patched(current: Mapping[str, V], changes: Mapping[str, V | None]) -> dict[str, V]:
    """``current`` with ``changes`` applied: a value sets its address, None removes it
    (what ``_changed`` produced)."""
    out = dict(current)
    for address, value in changes.items():
        if value is None:
            out.pop(address, None)
        else:
            out[address] = value
    return out


def diff(old: Lockfile, new: Lockfile) -> Delta:
    """What turns ``old`` into ``new`` (the serial aside)."""
    head = {f: getattr(new, f) for f in HEAD_FIELDS if getattr(old, f) != getattr(new, f)}
    return Delta(
        head=head,
        entries=_changed(old.resources, new.resources),
        pending=_changed(old.pending, new.pending),
    )


def apply_delta(lockfile: Lockfile, delta: Delta) -> Lockfile:
    """``lockfile`` with ``delta`` applied (the serial unchanged)."""
    if delta.empty:
        return lockfile
    update: dict[str, Any] = dict(delta.head)
    if delta.entries:
        update["resources"] = _patched(lockfile.resources, delta.entries)
    if delta.pending:
        update["pending"] = _patched(lockfile.pending, delta.pending)
    return lockfile.model_copy(update=update)


def next_state(current: Lockfile, updated: object, where: str) -> Lockfile | None:
    """What a commit writes when an edit turned ``current`` into ``updated``: the same state
    with the next serial, or None when the edit changed nothing. Both backends' ``commit``.

    Raises:
        TypeError: the edit returned something other than a ``Lockfile``.
        LockfileError: the edit returned another state (lineage or serial), not an edit of
            ``current``; ``where`` names the state in the message.
    """
    if updated is current:
        return None
    if not isinstance(updated, Lockfile):
        raise TypeError(f"commit edit must return a Lockfile, got {type(updated).__name__}")
    if (updated.lineage, updated.serial) != (current.lineage, current.serial):
        raise LockfileError(
            f"{where}: a commit must edit the current state (lineage {current.lineage} "
            f"serial {current.serial}), not another one"
        )
    return updated.model_copy(
        update={"serial": current.serial + 1, "lockfile_version": LOCKFILE_VERSION}
    )
