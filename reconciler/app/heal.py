"""A lost lockfile's rollout state, read back from the provider: held versions, pin history.

Every gated pin move and every held candidate leaves a record at the provider: an archived
session that never ran, tagged with the deployment it is about (``app.checks``:
``reconciler-rollout``, ``reconciler-record``). When the lockfile has no entry for a
deployment this project's tags still name (the lockfile was lost), ``recover_rollouts``
lists the sessions of that deployment's agent and replays its records
(``engine.pinlog.replay_records``), so held candidates stay held and the pin history goes
on. Pin moves of deployments without ``rollout`` checks leave no record and restart their
history with a ``healed`` entry. Reads only; prints nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from reconciler.app.checks import RECORD_KEY, ROLLOUT_KEY
from reconciler.engine.gate import RecoveredRollout
from reconciler.engine.pinlog import replay_records
from reconciler.engine.refresh import Observed
from reconciler.errors import ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import PROJECT_KEY, owned_address
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
    the lockfile has no entry for but a live deployment of this project is tagged for.

    One paged list of sessions per such deployment's agent (nothing at all when the lockfile
    knows every deployment, the usual case). A provider error leaves that deployment out:
    its history then restarts, as without records.
    """
    known = set(lockfile.resources)
    wanted = {
        f"deployment.{d.name}"
        for d in documents
        if d.kind == "Deployment"
        and f"deployment.{d.name}" not in known
        # a renamed one (``moved_from``) keeps the entry of its old address
        and not (d.moved_from is not None and f"deployment.{d.moved_from}" in known)
    }
    if not wanted:
        return {}
    live: dict[str, JSON] = {}
    for obj in observed.all("deployment"):
        address = owned_address(obj, project)
        if address in wanted and not obj.get("archived_at"):
            live[address] = obj
    out: dict[str, RecoveredRollout] = {}
    for address, obj in sorted(live.items()):
        agent_id = (obj.get("agent") or {}).get("id")
        if not isinstance(agent_id, str):
            continue
        try:
            sessions = await client.sessions.list(
                agent_id=agent_id, include_archived=True, order="asc"
            ).to_list()
        except ProviderError:
            continue
        records = _records(sessions, address, project)
        if records:
            out[address] = replay_records(records)
    return out


def _records(sessions: list[JSON], address: str, project: str) -> list[tuple[str, JSON]]:
    found: list[tuple[str, JSON]] = []
    for s in sessions:
        metadata = s.get("metadata") or {}
        if metadata.get(ROLLOUT_KEY) != address or metadata.get(PROJECT_KEY) != project:
            continue
        try:
            record = json.loads(metadata.get(RECORD_KEY) or "")
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(s.get("created_at"), str):
            found.append((s["created_at"], record))
    return sorted(found, key=lambda r: r[0])
