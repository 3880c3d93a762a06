"""What a plan reads of memory stores beyond their list: the history of a store found by its
ownership tags alone.

A memory store's seeds are written right after its create; the create's pending intent is
the state's record that they may not all be (``engine/seeds.py``). When the state is lost
too (a run killed between the create and its seeds, then the lockfile deleted), the store
is found by its tags and nothing says whether its seeds were written. Its memory history
does: memory versions are append-only, so a path no version names was never written, and
no agent can have deleted it. ``read_memory_histories`` reads that history, one paged list
per such store (none in a run whose state records its stores), into
``Observed.memory_paths``; the plan writes the seeds it never named.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.engine.desired import desired_resources
from reconciler.engine.refresh import Observed
from reconciler.kinds import owned_address
from reconciler.manifest import ManifestSet
from reconciler.state import Lockfile

if TYPE_CHECKING:  # the HTTP stack loads when a command connects (tests/test_startup.py)
    from reconciler.provider import ProviderClient


async def read_memory_histories(
    client: ProviderClient,
    manifests: ManifestSet,
    lockfile: Lockfile,
    observed: Observed,
    project: str,
) -> Observed:
    """``observed`` with the memory history of each live store that only its tags tie to a
    declared store with seeds (no lockfile entry, no pending intent)."""
    seeded = {
        r.address
        for r in desired_resources(manifests.documents)
        if r.kind == "memory_store" and r.spec.get("memories")
    }
    wanted = [
        str(o["id"])
        for o in observed.all("memory_store")
        if not o.get("archived_at")
        and (address := owned_address(o, project)) in seeded
        and address not in lockfile.resources
        and address not in lockfile.pending
    ]
    if not wanted:
        return observed
    histories = await asyncio.gather(*(_paths(client, store_id) for store_id in wanted))
    return replace(observed, memory_paths={**observed.memory_paths, **dict(histories)})


async def _paths(client: ProviderClient, store_id: str) -> tuple[str, frozenset[str] | None]:
    """Every path the store's memory history names; None when a version hides its path
    (redacted), as the history then cannot tell which paths were written."""
    paths: set[str] = set()
    async for version in client.memory_stores.versions.list(store_id):
        path = version.get("path")
        if not isinstance(path, str) or not path:
            return store_id, None
        paths.add(path)
    return store_id, frozenset(paths)
