"""Read the live state: one paged list per kind, kinds in parallel, never a GET per resource.

Credentials live under vaults, so they take one list per managed vault (owned by this
project or recorded in the lockfile), after the vault list. Talks to the provider only
through ``ProviderReader``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.engine.interface import ProviderReader
from reconciler.jsontypes import JSON
from reconciler.kinds import TOP_LEVEL_KINDS, Kind, owned_address


@dataclass(frozen=True)
class Observed:
    """Every live object of every kind (archived included), as the provider returned them."""

    objects: Mapping[str, tuple[JSON, ...]]
    #: vault id -> its credentials
    credentials: Mapping[str, tuple[JSON, ...]] = field(default_factory=dict)
    #: skill id -> what its latest version holds, where a plan needs it (``app.skills``):
    #: ``{"id", "name" (the slug), "digest", "files"}`` (digest and files when downloaded;
    #: ``"deleted"``: the recorded latest version, found gone, when the live latest is not ours)
    skill_versions: Mapping[str, JSON] = field(default_factory=dict)
    #: memory store id -> every path its memory history names, for the stores a plan must
    #: ask (``app.memories``: found by their tags alone, after a lost state); None when the
    #: history cannot tell (a version redacted)
    memory_paths: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    #: memory store id -> the paths that hold a memory now, for the stores a plan would
    #: write seeds to (``app.memories``): apply writes a seed only where no memory is
    memories_present: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def all(self, kind: str) -> tuple[JSON, ...]:
        if kind == "credential":
            return tuple(c for creds in self.credentials.values() for c in creds)
        return tuple(self.objects.get(kind, ()))

    def index(self, kind: str) -> dict[str, JSON]:
        return {o["id"]: o for o in self.all(kind)}


async def refresh(
    reader: ProviderReader,
    *,
    project: str,
    known_vault_ids: Iterable[str] = (),
    kinds: tuple[Kind, ...] = TOP_LEVEL_KINDS,
) -> Observed:
    """List every kind in parallel, then the credentials of every managed vault.

    Args:
        reader: the read-only provider view.
        project: ownership project; its vaults get their credentials listed.
        known_vault_ids: vault ids from the lockfile (listed even if their tags were lost).
        kinds: kinds to list (``credential`` is implied by ``vault``).
    """
    results = await asyncio.gather(*(reader.list_all(k) for k in kinds))
    objects: dict[str, tuple[JSON, ...]] = {
        k: tuple(r) for k, r in zip(kinds, results, strict=True)
    }
    credentials: dict[str, tuple[JSON, ...]] = {}
    if "vault" in kinds:
        wanted = set(known_vault_ids)
        vault_ids = [
            v["id"]
            for v in objects["vault"]
            if not v.get("archived_at") and (v["id"] in wanted or owned_address(v, project))
        ]
        lists = await asyncio.gather(
            *(reader.list_all("credential", parent_id=vid) for vid in vault_ids)
        )
        credentials = {vid: tuple(c) for vid, c in zip(vault_ids, lists, strict=True)}
    return Observed(objects=objects, credentials=credentials)
