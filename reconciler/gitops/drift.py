"""``drift``: live state vs the lockfile and the manifests, read-only."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.engine.drift import (
    agents_to_annotate,
    build_drift,
)
from reconciler.engine.model import (
    DriftReport,
)
from reconciler.gitops.common import Workspace, _connect, _documents, _observe
from reconciler.manifest import Document
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    Lockfile,
    read_project_lockfile,
)

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient


async def drift(
    ws: Workspace, *, ignore_unmanaged: bool = False, client: ProviderClient | None = None
) -> DriftReport:
    """Compare the live system with the lockfile and the manifests. Changes nothing.

    One paged list per kind (as ``plan``), then the version history of each agent that
    changed, to say which version changed it and when. Secrets are not read: drift needs no
    secret variables.

    Raises:
        ManifestError: the manifests are invalid.
        LockfileError: the lockfile cannot be read.
        ProviderError: the provider failed.
    """
    documents = _documents(ws)
    lockfile = read_project_lockfile(ws.lockfile, ws.project)
    if client is None:
        async with _connect(ws) as c:
            return await _drift(c, documents, lockfile, ws.project, ignore_unmanaged)
    return await _drift(client, documents, lockfile, ws.project, ignore_unmanaged)


async def _drift(
    client: ProviderClient,
    documents: Sequence[Document],
    lockfile: Lockfile,
    project: str,
    ignore_unmanaged: bool,
) -> DriftReport:
    observed = await _observe(client, lockfile, project)
    report = build_drift(documents, observed, lockfile, project, ignore_unmanaged=ignore_unmanaged)
    agent_ids = agents_to_annotate(report)
    if not agent_ids:
        return report
    reader = ClientBackedProvider(client)
    histories = await asyncio.gather(*(reader.list_versions(a) for a in agent_ids))
    return build_drift(
        documents,
        observed,
        lockfile,
        project,
        ignore_unmanaged=ignore_unmanaged,
        versions=dict(zip(agent_ids, histories, strict=True)),
    )
