"""What a plan needs to know about skills beyond one list, and the files an upload sends.

A skill has no metadata, and its list says only each skill's ``latest_version_id``. So:

- ``describe_skills`` reads, for the skills where the plan must know more, what their latest
  version holds: the slug (``name``) of a live skill no lockfile entry records, when a
  desired skill has no live skill recorded (a lost lockfile, an upload whose lockfile write
  was lost: found again by its slug, never uploaded twice); and the files (one download) of
  a latest version this project did not record, to tell an upload of ours whose record was
  lost (the same files) from one made out of band (drift). Skills whose latest version the
  lockfile records cost nothing beyond the list.
- ``check_skills`` refuses, at the place it is written, what the provider would refuse
  later: a slug changed under an existing skill, an agent pinning a version that does not
  exist; and a takeover: a live skill with a declared skill's slug that the state does not
  record, where the state was not lost (``engine.skills.may_find_by_slug``). A slug proves
  no ownership, so that skill is named with the command that adopts it.
- ``skill_files`` is the executor's ``read_files``: the files ``manifest.skilldir`` selected
  and digested, read again when the upload is sent and refused if they changed since.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reconciler.engine.refresh import Observed
from reconciler.engine.skills import (
    may_find_by_slug,
    refused_by_slug,
    skill_users,
    unrecorded_by_slug,
)
from reconciler.errors import NotFoundError, PlanError, ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import Kind
from reconciler.manifest import ManifestSet
from reconciler.manifest.agent import AgentSpec, SkillRef
from reconciler.manifest.files import read_limited
from reconciler.manifest.skill import SkillSpec
from reconciler.manifest.skilldir import MAX_TOTAL_BYTES, SkillSource, archive_files, files_digest
from reconciler.state import Lockfile

if TYPE_CHECKING:  # the HTTP stack loads when a command connects (tests/test_startup.py)
    from reconciler.provider import ProviderClient, SkillUpload


async def describe_skills(
    client: ProviderClient, manifests: ManifestSet, lockfile: Lockfile, observed: Observed
) -> Observed:
    """``observed`` with ``skill_versions`` filled where the plan needs them (see above).

    Raises:
        ProviderError: a read failed.
    """
    live = [s for s in observed.all("skill") if s.get("latest_version_id")]
    if not live:
        return observed
    entries = {e.id: e for e in lockfile.resources.values() if e.kind == "skill"}
    live_ids = {s["id"] for s in live}
    # skills to find by their slug: no entry, or its skill is gone; the name each would
    # have been given, to read only the versions of skills that could be one of them.
    # Where the state was lost and the document sets no display_name, the skill may carry
    # any (one it was created with, since left out of the manifest): every unrecorded
    # skill is read then, as a twin would be uploaded if it were missed
    wanted: dict[str, set[str]] = {}  # slug -> display names (two documents may share one)
    any_name = False
    for address, source in manifests.skills.items():
        entry = lockfile.resources.get(address)
        if entry is None or entry.id not in live_ids or address in lockfile.pending:
            doc = manifests.get(address)
            shown = doc.spec.display_name if doc and isinstance(doc.spec, SkillSpec) else None
            wanted.setdefault(source.slug, set()).add(shown or source.slug)
            any_name |= shown is None and may_find_by_slug(lockfile, address)
    skills = client.skills.versions

    async def read(skill: JSON) -> JSON | None:
        """What the plan must know of ``skill``'s latest version (None: nothing)."""
        latest = skill["latest_version_id"]
        entry = entries.get(skill["id"])
        if entry is not None:
            if latest in entry.uploaded:
                return None
            name = entry.slug
        elif any_name or any(skill.get("display_name") in names for names in wanted.values()):
            name = (await skills.retrieve(skill["id"], latest)).get("name")
            if name not in wanted:
                return {"id": latest, "name": name}
        else:
            return None
        files = archive_files(await skills.download(skill["id"], latest))
        info: JSON = {"id": latest, "name": name}
        if files is not None:
            info.update(files=files, digest=files_digest(files))
        if entry is not None and entry.latest and entry.latest != latest:
            # ours is no longer the latest: deleted, or a later upload outside git on top
            try:
                await skills.retrieve(skill["id"], entry.latest)
            except NotFoundError:
                info["deleted"] = entry.latest
        return info

    # side by side: the client bounds how many requests are in flight
    read_all = await asyncio.gather(*(read(skill) for skill in live))
    found: dict[str, JSON] = dict(observed.skill_versions)
    found.update({s["id"]: info for s, info in zip(live, read_all, strict=True) if info})
    return replace(observed, skill_versions=found)


async def check_skills(
    client: ProviderClient,
    manifests: ManifestSet,
    lockfile: Lockfile,
    observed: Observed,
    project: str,
) -> None:
    """Refuse a slug changed under a live skill, and a pin to a skill version that does
    not exist, each at the place it is written.

    Raises:
        PlanError: ``file:line:col: ...`` of the first such problem.
    """
    live = observed.index("skill")
    for address, source in sorted(manifests.skills.items()):
        doc = manifests.get(address)
        moved = doc.moved_from_address if doc is not None else None
        entry = lockfile.resources.get(address) or (
            lockfile.resources.get(moved) if moved is not None else None
        )
        if entry is None or entry.id not in live:
            _check_unrecorded(manifests, address, source, lockfile, observed, project)
            continue
        if entry.slug is None:
            continue
        if entry.slug != source.slug:
            where = manifests.location(address, "source")
            raise PlanError(
                f"{where}: {address}: SKILL.md names the skill '{source.slug}', but the skill "
                f"{entry.id} was uploaded as '{entry.slug}', and a skill's slug cannot change. "
                f"Keep name: {entry.slug} in SKILL.md, or make a new skill under a new document "
                "name (and remove this one with --prune)"
            )
        _check_display_name(manifests, address, live[entry.id])
    for pin in await missing_pins(client, manifests, lockfile, observed):
        where = manifests.location(pin.agent, f"skills[{pin.index}].version")
        shown = ", ".join(pin.versions[-5:]) or "none yet: it is uploaded by this apply"
        raise PlanError(
            f"{where}: {pin.agent} pins {pin.skill} version {pin.version}, which does "
            f"not exist (its versions: {shown}). Pin an existing version, or omit "
            "version to follow the newest"
        )


@dataclass(frozen=True)
class MissingPin:
    """An agent's ``skills[index]`` pinning a version of ``skill`` that does not exist (never
    did, or deleted behind git's back); ``versions``: those that exist, sorted."""

    agent: str
    index: int
    skill: str
    version: str
    versions: tuple[str, ...]


async def missing_pins(
    client: ProviderClient, manifests: ManifestSet, lockfile: Lockfile, observed: Observed
) -> list[MissingPin]:
    """Every agent pin (``{ref, version: ID}``) to a skill version that does not exist. A
    pin to the live latest costs nothing; any other lists the skill's versions, once per
    skill (a version this project uploaded may have been deleted since)."""
    live = observed.index("skill")
    listed: dict[str, set[str]] = {}  # skill -> the versions its listing gave, read once
    out: list[MissingPin] = []
    for doc in manifests.by_kind("Agent"):
        if not isinstance(doc.spec, AgentSpec):
            continue
        for index, item in enumerate(doc.spec.skills or ()):
            if not isinstance(item, SkillRef) or item.version is None:
                continue
            skill = f"skill.{item.ref}"
            recorded = _live_skill(manifests, skill, lockfile, observed)
            known = await _versions(client, skill, recorded, live, item.version, listed)
            if item.version not in known:
                versions = tuple(sorted(known))
                out.append(MissingPin(doc.address, index, skill, item.version, versions))
    return out


def _check_unrecorded(
    manifests: ManifestSet,
    address: str,
    source: SkillSource,
    lockfile: Lockfile,
    observed: Observed,
    project: str,
) -> None:
    """Refuse to plan a skill the state does not record while a live skill it does not
    record either carries its slug and may be someone else's: where the state was lost, one
    the plan would upload a new version into although neither its files nor an agent of this
    project say it is ours; elsewhere any (``engine.skills.refused_by_slug``, which drift
    shares). A skill another project's agents use is theirs and left alone: this project's
    is created beside it."""
    slug = source.slug
    refused = refused_by_slug(observed, lockfile, slug, source.digest, address, project)
    if refused is None:
        return
    found, lost = refused
    rid = found["id"]
    if lost:
        raise PlanError(
            f"{manifests.location(address)}: {address}: a live skill with the slug '{slug}' "
            f"({rid}) is not recorded in this project's state (lost, or never written), its "
            "latest version differs from the manifest's files, and no agent of this project "
            "uses it: a skill carries no ownership tags, so it may be another project's or "
            "made by hand, and is neither given a new version nor uploaded again beside it. "
            f"`reconciler import {address} {rid}` adopts it (the next plan uploads the "
            "manifest's files as its new version), or give the skill another name in SKILL.md"
        )
    raise PlanError(
        f"{manifests.location(address)}: {address}: a skill with the slug '{slug}' exists "
        f"already ({rid}), and this project's state does not record it (made by hand, or "
        "by another project); a slug proves no ownership, so it is neither taken over nor "
        f"uploaded again beside it. `reconciler import {address} {rid}` adopts it (the "
        "directory here is kept: the next plan uploads it as a new version if its files "
        "differ), or give the skill another name in SKILL.md"
    )


def _check_display_name(manifests: ManifestSet, address: str, live: JSON) -> None:
    """A skill's display name is fixed when it is created (the wire has no rename): a
    manifest that names another is refused, not recorded as if applied."""
    doc = manifests.get(address)
    wanted = doc.spec.display_name if doc is not None and isinstance(doc.spec, SkillSpec) else None
    shown = live.get("display_name")
    if wanted is None or shown is None or wanted == shown:
        return
    where = manifests.location(address, "display_name")
    raise PlanError(
        f"{where}: {address}: display_name '{wanted}' differs from the live skill's '{shown}', "
        f"and a skill's display name is fixed when it is created. Write display_name: {shown} "
        "(or leave it out), or make a new skill under a new document name (and remove this "
        "one with --prune)"
    )


def _live_skill(
    manifests: ManifestSet, skill: str, lockfile: Lockfile, observed: Observed
) -> tuple[str, set[str]] | None:
    """The live skill that ``skill`` plans against, and the versions the state records of
    it: its lockfile entry's, or the entry of the address it moved from (a rename keeps the
    skill), or, where the state was lost, the skill found again by its slug (as
    ``engine.skills.plan_skill`` finds it); None for a skill the apply uploads anew."""
    live = observed.index("skill")
    doc = manifests.get(skill)
    moved = doc.moved_from_address if doc is not None else None
    for address in (skill, moved):
        entry = lockfile.resources.get(address) if address is not None else None
        if entry is not None and entry.kind == "skill" and entry.id in live:
            return entry.id, set(entry.uploaded)
    source = manifests.skills.get(skill)
    if source is None or not may_find_by_slug(lockfile, skill):
        return None
    found = unrecorded_by_slug(
        observed.all("skill"), lockfile, observed.skill_versions, source.slug, (), source.digest
    )
    return (str(found["id"]), set()) if found is not None else None


async def _versions(
    client: ProviderClient,
    skill: str,
    recorded: tuple[str, set[str]] | None,
    live: dict[str, JSON],
    wanted: str,
    listed: dict[str, set[str]],
) -> set[str]:
    """The versions of ``skill`` (its live id and the versions the state records, from
    ``_live_skill``) known to exist: the live latest, and when ``wanted`` is not it, every
    version the provider lists (kept in ``listed``, so agents pinning the same skill share
    one listing). A version the state records as uploaded proves nothing: it may have been
    deleted since; it counts only when the listing fails."""
    if recorded is None:
        return set()
    skill_id, uploaded = recorded
    latest = {live[skill_id].get("latest_version_id") or ""} - {""}
    if wanted in latest:
        return latest
    if skill not in listed:
        try:
            versions = await client.skills.versions.list(skill_id).to_list()
        except ProviderError:
            return uploaded | latest
        listed[skill] = {str(v["id"]) for v in versions}
    return latest | listed[skill]


def skill_files(manifests: ManifestSet) -> SkillFileReader:
    """The executor's ``read_files`` over the skills ``manifests`` read at load."""
    return SkillFileReader(manifests)


class SkillFileReader:
    """``reader(address, digest)`` -> the ``SkillUpload`` of a skill's files, named
    ``<directory>/<path>``; each file is read again and must still have the sha256 it had
    at load, and the whole the plan's ``digest``."""

    def __init__(self, manifests: ManifestSet) -> None:
        self._skills = dict(manifests.skills)

    def __call__(self, address: str, digest: str | None) -> SkillUpload:
        from reconciler.provider import SkillUpload

        source = self._skills.get(address)
        if source is None:
            raise PlanError(f"{address} is not a skill of these manifests")
        if digest is not None and digest != source.digest:
            raise PlanError(_changed(address, "its directory"))
        files: list[tuple[str, bytes]] = []
        for item in source.files:
            data = read_limited(source.root / item.path, MAX_TOTAL_BYTES)
            if hashlib.sha256(data).hexdigest() != item.sha256:
                raise PlanError(_changed(address, item.path))
            files.append((f"{source.root.name}/{item.path}", data))
        return SkillUpload(tuple(files))


def _changed(address: str, what: str) -> str:
    return (
        f"the files of {address} changed since the plan was made ({what}); run plan again "
        "(nothing of it was uploaded)"
    )


def skills_by_slug(
    manifests: ManifestSet,
    observed: Observed,
    lockfile: Lockfile,
    project: str,
    refused: Mapping[str, str] | None = None,
) -> dict[str, tuple[Kind, JSON]]:
    """Skills without an entry, found by their slug (a skill carries no tags) where the
    state was lost (``may_find_by_slug``; a slug proves nothing anywhere else), each taken by
    one address only, the one whose files it holds first (as plan finds them); never one
    another project's agents use (``skill_users``: theirs), nor one plan refuses
    (``refused``: what ``refused_skills`` returns for the same arguments, computed when not
    given)."""
    found: dict[str, tuple[Kind, JSON]] = {}
    taken: set[str] = set(skill_users(observed.all("agent"), project)[1])
    if refused is None:
        refused = refused_skills(manifests, observed, lockfile, project)
    for address, source in sorted(manifests.skills.items()):
        if address in lockfile.resources or not may_find_by_slug(lockfile, address):
            continue
        if address in refused.values():
            continue  # plan refuses to take it: reported unmanaged, naming the import
        named = unrecorded_by_slug(
            observed.all("skill"),
            lockfile,
            observed.skill_versions,
            source.slug,
            taken,
            source.digest,
        )
        if named is not None:
            taken.add(named["id"])
            found[address] = ("skill", named)
    return found


def refused_skills(
    manifests: ManifestSet, observed: Observed, lockfile: Lockfile, project: str
) -> dict[str, str]:
    """The live skills plan refuses to take for a declared skill with no live recorded
    skill (``engine.skills.refused_by_slug``), each with that skill's address: drift finds
    none of them by its slug, and reports each unmanaged naming ``reconciler import
    ADDRESS ID``, as plan's error does."""
    live = observed.index("skill")
    out: dict[str, str] = {}
    for address, source in sorted(manifests.skills.items()):
        entry = lockfile.resources.get(address)
        if entry is not None and entry.kind == "skill" and entry.id in live:
            continue
        refused = refused_by_slug(observed, lockfile, source.slug, source.digest, address, project)
        if refused is not None:
            out.setdefault(str(refused[0]["id"]), address)
    return out
