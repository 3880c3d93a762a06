"""Response shapes the SDK checks strictly: an agent's multiagent roster, session snapshots.

The store keeps an agent's multiagent config as it was resolved on write, with a
coordinator's ``{"type": "self"}`` entry kept as such (its version is the version of the
object that holds it, known only when that object is rendered). What goes out is what the
SDK declares:

* an agent (``BetaManagedAgentsAgent``): ``self`` becomes ``{type: agent, id, version}`` of
  the agent version rendered; every other entry is already a resolved reference;
* a session's agent snapshot (``BetaManagedAgentsSessionAgent``): the agent's content
  without metadata, and every multiagent member (coordinator roster, predefined subagents
  and workflow agents) expanded into a full agent definition
  (``BetaManagedAgentsSessionThreadAgent``: no roster, no metadata) of the version it names.
"""

from __future__ import annotations

import copy
from typing import Any

from .defaults import AGENT_CONTENT_FIELDS
from .errors import not_found
from .store import Store

#: The fields of a session thread's agent definition (``BetaManagedAgentsSessionThreadAgent``):
#: an agent's content without its roster and metadata.
THREAD_AGENT_FIELDS = tuple(f for f in AGENT_CONTENT_FIELDS if f not in ("multiagent", "metadata"))
_MEMBERS = ("subagents", "workflows")


def _resolve_self(entry: Any, agent_id: str, version: int) -> Any:
    if isinstance(entry, dict) and entry.get("type") == "self":
        return {"type": "agent", "id": agent_id, "version": version}
    return entry


def render_multiagent(multiagent: Any, agent_id: str, version: int) -> Any:
    """``multiagent`` with every ``self`` entry resolved to ``agent_id`` at ``version``."""
    if not isinstance(multiagent, dict):
        return multiagent
    out = copy.deepcopy(multiagent)
    if out.get("type") == "coordinator":
        out["agents"] = [_resolve_self(e, agent_id, version) for e in out.get("agents") or []]
    for name in _MEMBERS:
        member = out.get(name)
        if isinstance(member, dict) and "predefined_agents" in member:
            member["predefined_agents"] = [
                _resolve_self(e, agent_id, version) for e in member["predefined_agents"] or []
            ]
    return out


def render_agent(agent: dict[str, Any]) -> dict[str, Any]:
    """An agent (or one of its versions) as the wire shows it."""
    if not agent.get("multiagent"):
        return agent
    return {
        **agent,
        "multiagent": render_multiagent(agent["multiagent"], agent["id"], agent["version"]),
    }


def thread_agent(store: Store, ref: dict[str, Any]) -> dict[str, Any]:
    """The full definition of the agent version ``ref`` names, as a session thread runs it."""
    data = store.get_version(ref["id"], ref["version"])
    if data is None:
        raise not_found("agent version", f"{ref['id']} v{ref['version']}")
    return {
        "type": "agent",
        "id": ref["id"],
        "version": ref["version"],
        **{k: copy.deepcopy(data.get(k)) for k in THREAD_AGENT_FIELDS},
    }


def _expand(store: Store, entry: Any) -> Any:
    if isinstance(entry, dict) and entry.get("type") == "agent":
        return thread_agent(store, entry)
    return entry  # an advisor stays as it is


def session_multiagent(store: Store, multiagent: Any, agent_id: str, version: int) -> Any:
    """A session's copy of an agent's multiagent config: members as full definitions."""
    resolved = render_multiagent(multiagent, agent_id, version)
    if not isinstance(resolved, dict):
        return resolved
    if resolved.get("type") == "coordinator":
        resolved["agents"] = [_expand(store, e) for e in resolved["agents"]]
    for name in _MEMBERS:
        member = resolved.get(name)
        if isinstance(member, dict) and "predefined_agents" in member:
            member["predefined_agents"] = [_expand(store, e) for e in member["predefined_agents"]]
    return resolved


def session_snapshot(
    store: Store, agent: dict[str, Any], fields: tuple[str, ...]
) -> dict[str, Any]:
    """The ``agent`` snapshot a session keeps of one agent version (``fields`` copied)."""
    snapshot = {
        "type": "agent",
        "id": agent["id"],
        "version": agent["version"],
        **{k: copy.deepcopy(agent.get(k)) for k in fields},
    }
    if snapshot.get("multiagent"):
        snapshot["multiagent"] = session_multiagent(
            store, snapshot["multiagent"], agent["id"], agent["version"]
        )
    return snapshot
