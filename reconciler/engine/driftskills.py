"""Which changes of an agent's ``skills`` are a skill's drift, not the agent's. Pure.

The drift of a skill (a new version uploaded, the skill deleted or forgotten) shows in the plan
of every agent that uses it too, as a change of ``skills[ID]`` or ``skills[ID].version``.
``engine.drift`` reports it once, at the skill, and an agent only for what was done to the
agent itself (re-pinned to another version behind git's back). These functions tell the two
apart from the agent's planned changes and the lockfile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.engine.model import FieldChange
from reconciler.state import LockEntry, Lockfile

_SKILL_PATH = re.compile(r"skills\[([^\]]+)\]")
_SKILL_VERSION_PATH = re.compile(r"skills\[([^\]]+)\]\.version")


def _agent_skills(
    address: str, lockfile: Lockfile | None
) -> tuple[LockEntry, dict[str, str]] | None:
    """The agent's entry and the recorded skills by id (id -> address), when the last apply
    resolved the agent's skills; else None."""
    entry = lockfile.resources.get(address) if lockfile is not None else None
    if lockfile is None or entry is None or entry.kind != "agent" or not entry.skills:
        return None
    return entry, {e.id: a for a, e in lockfile.resources.items() if e.kind == "skill"}


def followed_skill_paths(
    address: str, changes: Iterable[FieldChange], lockfile: Lockfile | None
) -> set[str]:
    """An agent's ``skills[ID].version`` changes whose live value is the version the last
    apply left it on (the lockfile's ``skills``): the skill got a new version since (an
    apply of the skill alone, or one whose agent update failed), so the manifest moved,
    not the live agent. ``plan`` shows that update; it is no drift."""
    found = _agent_skills(address, lockfile)
    if found is None:
        return set()
    entry, ids = found
    out: set[str] = set()
    for change in changes:
        match = _SKILL_VERSION_PATH.fullmatch(change.path)
        skill = ids.get(match.group(1)) if match else None
        if skill is not None and change.old is not None and entry.skills.get(skill) == change.old:
            out.add(change.path)
    return out


def pins_off_record(
    address: str, changes: Iterable[FieldChange], unknown: set[str], lockfile: Lockfile | None
) -> tuple[FieldChange, ...]:
    """An agent's ``skills[ID].version`` that the plan moves to a version not uploaded yet
    (the skill's own drift: its files differ) while the live agent is not on the version the
    last apply left it on (the lockfile's ``skills``): someone re-pinned the agent behind our
    back, e.g. to a version they uploaded. That move is the agent's drift (recorded -> live),
    not only a consequence of the skill's."""
    found = _agent_skills(address, lockfile)
    if found is None:
        return ()
    entry, ids = found
    out: list[FieldChange] = []
    for change in changes:
        match = _SKILL_VERSION_PATH.fullmatch(change.path)
        skill = ids.get(match.group(1)) if match and change.path in unknown else None
        recorded = entry.skills.get(skill) if skill is not None else None
        if recorded is not None and change.old is not None and change.old != recorded:
            out.append(FieldChange(op="change", path=change.path, old=recorded, new=change.old))
    return tuple(out)


def unrecorded_skill_paths(
    changes: Iterable[FieldChange],
    unknown: set[str],
    lockfile: Lockfile | None,
    gone: set[str],
) -> set[str]:
    """An agent's ``skills[ID]`` that its manifest names by a skill the state does not
    record (``state rm skill.X``), or records but the plan creates again (``gone``: deleted
    behind our back): the planned list holds that skill as unknown and the live one at its
    old id. That pair is the skill's own drift (reported at the skill), not an edit of the
    agent."""
    if not any(p.startswith("skills[") for p in unknown):
        return set()
    recorded = {e.id for e in lockfile.resources.values()} if lockfile is not None else set()
    recorded -= gone
    out: set[str] = set()
    for change in changes:
        match = _SKILL_PATH.fullmatch(change.path)
        if match and change.new is None and match.group(1) not in recorded:
            out.add(change.path)
    return out


def agents_on_version(
    skill_id: str,
    version: str,
    agents: Iterable[Mapping[str, Any]],
    entries: Mapping[str, LockEntry],
) -> str:
    """``; agent.coder still runs it``: the live agents (not archived) whose skills hold
    ``version`` of the skill, by address when the state records them (else by name and id),
    for a drift item saying that version was deleted; "" when none does."""
    addresses = {e.id: a for a, e in entries.items() if e.kind == "agent"}
    names = sorted(
        addresses.get(str(agent["id"])) or f"agent {agent.get('name')} ({agent['id']})"
        for agent in agents
        if not agent.get("archived_at")
        and any(
            isinstance(s, Mapping) and (s.get("skill_id"), s.get("version")) == (skill_id, version)
            for s in agent.get("skills") or ()
        )
    )
    if not names:
        return ""
    runs = "still runs it" if len(names) == 1 else "still run it"
    return f"; {', '.join(names)} {runs}"
