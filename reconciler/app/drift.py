"""``drift``: live state vs the lockfile and the manifests, read-only.

A lockfile that is missing (or lacks an address) is healed the way plan heals it: the live
object this project's ownership tags name stands in for the entry (``heal_from_tags``), so an
out-of-band change is still found. What the tags cannot tell (an object deleted behind git's
back leaves nothing to list) is said in the report's ``warnings``, never hidden.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from reconciler.app.plan import placed
from reconciler.app.skills import describe_skills, missing_pins, refused_skills, skills_by_slug
from reconciler.app.workspace import (
    Settings,
    check_origin,
    connect,
    lock_left_in,
    observe,
    state_exists,
    state_location,
)
from reconciler.engine.desired import desired_digest, desired_resources
from reconciler.engine.drift import agents_to_annotate, build_drift
from reconciler.engine.heal import heal_from_tags
from reconciler.engine.model import (
    DriftItem,
    DriftReport,
    found_by,
)
from reconciler.engine.refresh import Observed
from reconciler.errors import PlanError
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_INFO, noun
from reconciler.manifest import ManifestSet, load_manifests
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    LockEntry,
    Lockfile,
)
from reconciler.state.model import utc_timestamp

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient


async def drift(
    ws: Settings,
    *,
    ignore_unmanaged: bool = False,
    allow_origin_change: bool = False,
    client: ProviderClient | None = None,
) -> DriftReport:
    """Compare the live system with the lockfile and the manifests. Changes nothing.

    One paged list per kind (as ``plan``), then the version history of each agent that
    changed, to say which version changed it and when. Secrets are not read: drift needs no
    secret variables. When there is drift while an apply holds the state's lock (before or
    after the refresh), the report's ``warnings`` name it: its unrecorded changes show as
    drift.

    Raises:
        ManifestError: the manifests are invalid.
        LockfileError: the lockfile cannot be read.
        PlanError: the lockfile was applied to another provider origin than this run's
            (without ``allow_origin_change``).
        ProviderError: the provider failed.
    """
    manifests = load_manifests(ws.manifests)
    # One state location throughout: under --backend one connection to the database reads
    # the state and asks about its lease before and after the refresh (not one each).
    with state_location(ws) as location:
        lockfile = location.read()
        running = location.running_lock()
        missing = None if state_exists(ws, lockfile) else ws.state_name
        # under --backend there is no lockfile: messages name the database's state
        kept = "lockfile" if ws.backend is None else "state"
        try:
            if client is None:
                # another provider holds none of the lockfile's ids: all would be reported
                # deleted
                check_origin(ws, lockfile, allow_change=allow_origin_change)
                async with connect(ws) as c:
                    report = await _drift(
                        c, manifests, lockfile, ws.project, ignore_unmanaged, missing, kept
                    )
            else:
                report = await _drift(
                    client, manifests, lockfile, ws.project, ignore_unmanaged, missing, kept
                )
        except PlanError as err:
            raise placed(err, manifests) from None
        # held before the refresh, or taken during it
        running = running or location.running_lock()
        if running is not None and report.items:
            # an apply's changes show as drift until it records them: say so, naming it
            busy = (
                f"{running.describe()} holds the lock of {ws.state_name}: what an apply in "
                "progress changed but has not recorded yet shows as drift; run drift again "
                "once it is done"
            )
            report = report.model_copy(update={"warnings": (*report.warnings, busy)})
        left = lock_left_in(location) if running is None and report.items else None
        if left is not None:
            # a killed apply's changes are its own, not edits outside git: say it died
            died = (
                f"{left.describe()} ended without releasing the lock of {ws.state_name} (it "
                "was killed, or its machine went away): what it changed but did not record "
                "shows as drift; `reconciler apply` records it"
            )
            report = report.model_copy(update={"warnings": (*report.warnings, died)})
    if ws.backend is None:
        return report
    return report.model_copy(update={"compared_with": ws.recorded_in})


def _healed(
    manifests: ManifestSet,
    observed: Observed,
    lockfile: Lockfile,
    project: str,
    refused: Mapping[str, str],
) -> tuple[Lockfile, frozenset[str], tuple[str, ...]]:
    """``lockfile`` with an entry for each manifest address its ownership tags name live
    (see ``heal_from_tags``), and each skill found by its slug (but the ``refused`` ones,
    see ``refused_skills``); the healed addresses; the addresses nothing was found for."""
    documents = manifests.documents
    found, unseen = heal_from_tags(documents, observed, lockfile, project)
    skills = skills_by_slug(manifests, observed, lockfile, project, refused)
    found.update(skills)
    unseen = tuple(a for a in unseen if a not in skills)
    if not found:
        return lockfile, frozenset(), unseen
    resources = desired_resources(documents)
    desired = {r.address: r for r in resources}
    # an object found under the address its document moves from (see heal_from_tags)
    desired.update({r.moved_from: r for r in resources if r.moved_from and r.moved_from in found})
    now = utc_timestamp()
    healed = lockfile
    for address, (kind, obj) in found.items():
        res = desired[address]
        pins = {res.pin[0]: res.pin[1]} if res.pin is not None and res.pin[1] is not None else {}
        healed = healed.with_entry(
            address,
            LockEntry(
                kind=kind,
                id=str(obj["id"]),
                parent_id=obj.get("vault_id") if kind == "credential" else None,
                version=obj.get("version") if kind == "agent" else None,
                pins=pins,
                spec_digest=desired_digest(res),
                protect=res.protect,
                remote_name=res.remote_name,
                created_at=now,
                updated_at=now,
            ),
        )
    return healed, frozenset(found), unseen


def _warnings(
    missing: str | None, healed: frozenset[str], unseen: tuple[str, ...], kept: str = "lockfile"
) -> list[str]:
    if missing is None and not healed:
        return []
    # a skill carries no tags: it is found by its slug, and the message says so
    kinds = {address.split(".", 1)[0] for address in healed}
    slugged = "".join(
        f", and the {noun(k)}s their slugs name"
        for k in sorted(kinds)
        if k in KIND_INFO and not KIND_INFO[k].has_metadata
    )
    head = (
        f"no {kept} at {missing}: drift compared the manifests with the live objects that "
        f"this project's ownership tags name{slugged}"
        if missing is not None
        else f"the {kept} has no entry for {len(healed)} address"
        f"{'es' if len(healed) != 1 else ''} found live by {found_by(kinds)}"
    )
    out = [
        head + "; whether a difference was made outside git or in the manifests cannot be "
        "told, and `reconciler apply` records them"
    ]
    if missing is not None and unseen:
        shown = ", ".join(unseen[:5]) + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
        out.append(
            f"{len(unseen)} address{'es' if len(unseen) != 1 else ''} of the manifests "
            f"{'have' if len(unseen) != 1 else 'has'} no live object ({shown}): never "
            f"applied, or deleted behind git's back; without the {kept} drift cannot tell "
            "which"
        )
    return out


async def _drift(
    client: ProviderClient,
    manifests: ManifestSet,
    lockfile: Lockfile,
    project: str,
    ignore_unmanaged: bool,
    missing: str | None = None,
    kept: str = "lockfile",
) -> DriftReport:
    documents = manifests.documents
    observed = await observe(client, lockfile, project)
    observed = await describe_skills(client, manifests, lockfile, observed)
    refused = refused_skills(manifests, observed, lockfile, project)
    lockfile, healed, unseen = _healed(manifests, observed, lockfile, project, refused)
    # a refused skill's address has a live skill with its slug: its item says so
    unseen = tuple(a for a in unseen if a not in refused.values())
    warnings = tuple(_warnings(missing, healed, unseen, kept))
    skills = manifests.skills

    def drift(versions: dict[str, list[JSON]] | None = None) -> DriftReport:
        return build_drift(
            documents,
            observed,
            lockfile,
            project,
            ignore_unmanaged=ignore_unmanaged,
            versions=versions,
            healed=healed,
            skills=skills,
            refused_skills=refused,
        )

    report = drift()
    # a second pass once the versions of the agents that drifted are known (to say which
    # version changed what)
    agent_ids = agents_to_annotate(report)
    if agent_ids:
        reader = ClientBackedProvider(client)
        histories = await asyncio.gather(*(reader.list_versions(a) for a in agent_ids))
        report = drift(dict(zip(agent_ids, histories, strict=True)))
    gone = await _deleted_skill_pins(client, manifests, lockfile, observed)
    if gone:
        items = sorted((*report.items, *gone), key=lambda i: (i.address or "", i.type))
        report = report.model_copy(update={"items": tuple(items)})
    return report.model_copy(update={"warnings": warnings}) if warnings else report


async def _deleted_skill_pins(
    client: ProviderClient, manifests: ManifestSet, lockfile: Lockfile, observed: Observed
) -> list[DriftItem]:
    """An applied agent pinning a skill version (``{ref, version: ID}``) that was deleted
    behind git's back: the agent runs a version that is gone, and plan refuses the pin."""
    items = []
    for pin in await missing_pins(client, manifests, lockfile, observed):
        entry = lockfile.resources.get(pin.agent)
        if entry is None or entry.skills.get(pin.skill) != pin.version:
            continue  # never applied: a mistake in the manifests that plan names, not drift
        shown = ", ".join(pin.versions[-5:]) or "none"
        message = (
            f"pins {pin.skill} version {pin.version}, which was deleted behind git's back "
            f"(its versions: {shown}); `reconciler plan` refuses the pin: pin an existing "
            "version, or omit version to follow the newest"
        )
        items.append(
            DriftItem(
                type="changed",
                address=pin.agent,
                kind="agent",
                remote_id=entry.id,
                remote_name=entry.remote_name,
                message=message,
            )
        )
    return items
