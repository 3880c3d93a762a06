"""What a lost lockfile would have said, as far as ownership tags can tell. Pure: no I/O.

``drift`` without a lockfile entry for an address (a lost lockfile, an entry removed by hand)
compares the live object this project tagged for it instead, as plan adopts it; this module
finds those objects. It decides nothing about drift itself (``engine.drift``).
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.engine.desired import desired_resources
from reconciler.engine.refresh import Observed
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_ORDER, Kind, owned_address
from reconciler.manifest import Document
from reconciler.state import Lockfile


def heal_from_tags(
    documents: Iterable[Document], observed: Observed, lockfile: Lockfile | None, project: str
) -> tuple[dict[str, tuple[Kind, JSON]], tuple[str, ...]]:
    """What a lost lockfile would have said, as far as ownership tags can tell.

    For every manifest address the lockfile has no entry for, the live object this project
    tagged with that address (the newest one not archived, else the newest archived one), as
    plan adopts it. Credentials are matched within their vault's healed or recorded id.

    Returns:
        (address -> (kind, live object)), and the manifest addresses no tagged object was
        found for: never applied, or deleted behind git's back; without the lockfile, which
        one cannot be told. An object found by the tags of the address a document moves
        from (``moved_from``, not applied yet) is returned under that old address.
    """
    entries = dict(lockfile.resources) if lockfile is not None else {}
    tagged: dict[tuple[str, str], list[JSON]] = {}
    for kind in KIND_ORDER:
        for obj in observed.all(kind):
            address = owned_address(obj, project)
            if address is not None:
                tagged.setdefault((kind, address), []).append(obj)
    found: dict[str, tuple[Kind, JSON]] = {}
    unseen: list[str] = []
    resources = desired_resources(documents)
    by_address = {r.address: r for r in resources}
    for kind in KIND_ORDER:  # vaults before their credentials
        for res in resources:
            if res.kind != kind or res.address in entries:
                continue
            address = res.address
            candidates = tagged.get((kind, address), [])
            if not candidates and res.moved_from is not None and res.moved_from not in entries:
                # a rename not applied yet: the object carries its old address's tags, and is
                # healed there, as the lost lockfile recorded it (plan moves it, drift says
                # nothing of a pending move)
                address = res.moved_from
                candidates = tagged.get((kind, address), [])
            if res.parent is not None:
                parent = entries.get(res.parent)
                vault_id = parent.id if parent is not None else None
                moved_parent = (
                    by_address[res.parent].moved_from if res.parent in by_address else None
                )
                for healed_as in (res.parent, moved_parent):
                    if healed_as is not None and healed_as in found:
                        vault_id = found[healed_as][1]["id"]
                candidates = [c for c in candidates if c.get("vault_id") == vault_id]
            if not candidates:
                unseen.append(res.address)
                continue
            best = max(
                candidates,
                key=lambda o: (not o.get("archived_at"), str(o.get("created_at") or "")),
            )
            found[address] = (kind, best)
    return found, tuple(sorted(unseen))


__all__ = ["heal_from_tags"]
