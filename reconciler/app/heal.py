"""A lost lockfile's rollout state, read back from the provider: held versions, pin history.

Every gated pin move and every held candidate leaves a record at the provider: an archived
session that never ran, tagged with the deployment it is about (``app.checks``:
``reconciler-rollout``, ``reconciler-record``). When the lockfile has no entry for a
deployment this project's tags still name (the lockfile was lost), ``recover_rollouts``
lists the sessions of that deployment's agent and replays its records
(``engine.pinlog.replay_records``), so held candidates stay held and the pin history goes
on. A deployment archived behind git's back keeps its tags and its pin: its records are read
too, and it is created again where it was pinned while its candidate is held. A deployment
renamed with ``moved_from`` also reads the records its old address left. Pin moves of
deployments without ``rollout`` checks leave no record and restart their history with a
``healed`` entry. Reads only; prints nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from reconciler.engine.gate import RecoveredRollout
from reconciler.engine.pinlog import replay_records
from reconciler.engine.refresh import Observed
from reconciler.errors import ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import PROJECT_KEY, RECORD_KEY, ROLLOUT_KEY, owned_address
from reconciler.manifest import Document
from reconciler.state import Lockfile

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient


async def recover_rollouts(
    client: ProviderClient,
    documents: Iterable[Document],
    lockfile: Lockfile,
    observed: Observed,
    project: str,
) -> dict[str, RecoveredRollout]:
    """Deployment address -> its rollout record, for each deployment of the manifests that
    the lockfile has no entry for but a deployment of this project is tagged for (a live
    one; else an archived one, whose pin the record then carries).

    One paged list of sessions per agent object such a deployment ran or its agent is now
    (nothing at all when the lockfile knows every deployment, the usual case). A provider
    error leaves that agent's records out: its history then restarts, as without records.
    """
    known = set(lockfile.resources)
    # address -> the addresses its tags and records may name: a deployment renamed with
    # ``moved_from`` left its records (and, until the move is applied, its tags) under the
    # old one
    wanted = {
        f"deployment.{d.name}": {f"deployment.{d.name}"}
        | ({f"deployment.{d.moved_from}"} if d.moved_from is not None else set())
        for d in documents
        if d.kind == "Deployment"
        and f"deployment.{d.name}" not in known
        # a renamed one (``moved_from``) keeps the entry of its old address
        and not (d.moved_from is not None and f"deployment.{d.moved_from}" in known)
    }
    if not wanted:
        return {}
    tagged: dict[str, list[JSON]] = {}
    for obj in observed.all("deployment"):
        tag = owned_address(obj, project)
        for address, names in wanted.items():
            if tag in names:
                tagged.setdefault(address, []).append(obj)
    recorded_ids = {e.id for e in lockfile.resources.values()}
    out: dict[str, RecoveredRollout] = {}
    for address, objs in sorted(tagged.items()):
        live = [o for o in objs if not o.get("archived_at")]
        # the agents they ran, not the one at the same address now: that one is recorded
        # again by the first apply after a lost lockfile, though the deployment was not
        ran = {str((o.get("agent") or {}).get("id")) for o in objs}
        if not live and recorded_ids & ran:
            # the lockfile records the agent it ran, so it was not lost: the deployment left
            # it on purpose (archived by --prune, or `state rm`), and comes back a new one
            continue
        # archived behind git's back too: its records are still there, and it pinned the
        # version the deployment stays at while a candidate is held
        last = max(objs, key=lambda o: (str(o.get("archived_at") or ""), o.get("created_at")))
        agent_ids = _agent_ids(live or objs, observed, project)
        records: list[tuple[str, JSON]] = []
        for agent_id in agent_ids:
            try:
                sessions = await client.sessions.list(
                    agent_id=agent_id, include_archived=True, order="asc"
                ).to_list()
            except ProviderError:
                continue
            records += _records(sessions, wanted[address], project)
        if not records and live:
            continue
        recovered = replay_records(sorted(records, key=lambda r: r[0]))
        pin = last.get("agent") or {}
        if not live and isinstance(pin.get("version"), int) and isinstance(pin.get("id"), str):
            recovered = recovered.model_copy(
                update={"archived_pin": pin["version"], "archived_agent_id": pin["id"]}
            )
        if recovered.held or recovered.pin_history:
            out[address] = recovered
    return out


def _agent_ids(deployments: list[JSON], observed: Observed, project: str) -> list[str]:
    """The agent objects whose sessions may hold a deployment's records: those its
    ``deployments`` run, and the live agent of this project at the same address (a held
    candidate's record is a session of the candidate's agent, created again since)."""
    ids = {
        str(d["agent"]["id"])
        for d in deployments
        if isinstance(d.get("agent"), dict) and isinstance(d["agent"].get("id"), str)
    }
    agents = observed.index("agent")
    addresses = {owned_address(agents[i], project) for i in ids if i in agents}
    ids |= {
        str(a["id"])
        for a in observed.all("agent")
        if not a.get("archived_at") and owned_address(a, project) in addresses - {None}
    }
    return sorted(ids)


def _records(sessions: list[JSON], addresses: set[str], project: str) -> list[tuple[str, JSON]]:
    found: list[tuple[str, JSON]] = []
    for s in sessions:
        metadata = s.get("metadata") or {}
        if metadata.get(ROLLOUT_KEY) not in addresses or metadata.get(PROJECT_KEY) != project:
            continue
        try:
            record = json.loads(metadata.get(RECORD_KEY) or "")
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(s.get("created_at"), str):
            agent_id = (s.get("agent") or {}).get("id")
            if isinstance(agent_id, str):  # the agent object the record is of
                record["agent_id"] = agent_id
            found.append((s["created_at"], record))
    return sorted(found, key=lambda r: r[0])
