"""What a planned resource leaves for the resources planned after it. Pure: no I/O.

``resource.plan_resource`` returns a ``Planned`` per address; the planner passes them on, so
a referrer (a deployment of an agent, an agent of a skill) can predict the id and version
its reference resolves to once the plan is applied, and compare its request with those
placeholders resolved as far as the plan can know them (``UNKNOWN`` where only apply can).
Nothing here decides an action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.engine.model import LITERAL, Action, Conflict, Note
from reconciler.jsontypes import JSON

#: the stand-in for a value only apply learns (an id of a resource this apply creates)
UNKNOWN = "(known after apply)"


@dataclass(frozen=True)
class Planned:
    """One desired resource, planned: its action, and what the resources after it (which
    reference it) may assume once the plan is applied."""

    action: Action | None = None
    #: the remote id after apply; None while only apply can know it (a create, a replace)
    id: str | None = None
    #: an agent's version after apply
    version: int | None = None
    #: the live object the plan manages for the address
    live: JSON | None = None
    #: the recorded object is not this project's: no action at all
    conflict: Conflict | None = None
    #: a change refused on purpose (a protected replace), said in "Left alone"
    refused: Note | None = None
    #: paths that differ but ``ignore_changes`` hides (said in a note)
    hidden: tuple[str, ...] = ()
    #: the old address this resource's object came from (a move), whose entry it takes
    moved_from: str | None = None
    #: a ``moved_from`` that names nothing in the state (said in a note)
    move_note: Note | None = None
    #: a skill's newest version after apply; None while only apply can know it (an upload)
    skill_version: str | None = None


def predicted_id(planned: Mapping[str, Planned], address: str) -> str | None:
    p = planned.get(address)
    return p.id if p is not None else None


def predicted_version(planned: Mapping[str, Planned], address: str) -> int | None:
    p = planned.get(address)
    return p.version if p is not None else None


def resolve_planned(value: Any, planned: Mapping[str, Planned]) -> Any:
    """Placeholders -> what the live object would hold, as far as the plan can know."""
    if isinstance(value, dict):
        # the placeholders' exact shapes, as the executor resolves them: a map that merely
        # has such a key (metadata `$ref: x`) is data
        keys = set(value)
        if keys == {LITERAL}:  # the manifest's own value, sent as written
            return value[LITERAL]
        if keys == {"$ref"}:
            return predicted_id(planned, value["$ref"]) or UNKNOWN
        if "$pin" in keys and keys <= {"$pin", "version"}:
            addr = value["$pin"]
            version = value.get("version") or predicted_version(planned, addr) or UNKNOWN
            return {
                "type": "agent",
                "id": predicted_id(planned, addr) or UNKNOWN,
                "version": version,
            }
        if "$skill" in keys and keys <= {"$skill", "version"}:
            skill = planned.get(value["$skill"])
            version = value.get("version") or (skill.skill_version if skill else None)
            return {
                "type": "custom",
                "skill_id": (skill.id if skill else None) or UNKNOWN,
                "version": version or UNKNOWN,
            }
        if keys == {"$secret"}:
            return None
        return {k: resolve_planned(v, planned) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_planned(v, planned) for v in value]
    return value


__all__ = ["UNKNOWN", "Planned", "predicted_id", "predicted_version", "resolve_planned"]
