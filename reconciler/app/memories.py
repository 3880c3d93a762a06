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

A seed is written only where no memory is (the agents own the content). So for each store
the plan would write seeds to (seeds the state does not know written: added to the manifest
since, or an imported store's; or an interrupted create's), ``read_present_memories`` lists
the paths that hold a memory now (``Observed.memories_present``), and the plan shows only the
seeds apply really writes.
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


async def read_present_memories(
    client: ProviderClient,
    manifests: ManifestSet,
    lockfile: Lockfile,
    observed: Observed,
    project: str,
) -> Observed:
    """``observed`` with the paths holding a memory now in each live store the plan would
    write seeds to (``engine.seeds``): one recorded whose entry does not know every seed
    path of the manifest, or one tagged for an address with a pending intent."""
    live = {str(o["id"]): o for o in observed.all("memory_store") if not o.get("archived_at")}
    wanted: set[str] = set()
    for res in desired_resources(manifests.documents):
        seeds = res.spec.get("memories") if res.kind == "memory_store" else None
        if not seeds:
            continue
        entry = lockfile.resources.get(res.address)
        if entry is None and res.moved_from is not None:
            entry = lockfile.resources.get(res.moved_from)
        if entry is not None and entry.seeds is not None and entry.id in live:
            if any(seed["path"] not in entry.seeds for seed in seeds):
                wanted.add(entry.id)
        if res.address in lockfile.pending:
            wanted.update(i for i, o in live.items() if owned_address(o, project) == res.address)
    if not wanted:
        return observed
    found = await asyncio.gather(*(_present(client, store_id) for store_id in sorted(wanted)))
    return replace(observed, memories_present={**observed.memories_present, **dict(found)})


async def _present(client: ProviderClient, store_id: str) -> tuple[str, frozenset[str]]:
    """The paths that hold a memory in the store now (one paged list, no content)."""
    paths = {
        str(item["path"])
        async for item in client.memory_stores.memories.list(store_id, view="basic")
        if item.get("type") == "memory"
    }
    return store_id, frozenset(paths)
