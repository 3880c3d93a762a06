"""Live objects no manifest of this project owns ("unmanaged"), and how drift words them.

``find_unmanaged`` is shared by ``drift`` (which reports them) and ``import --all-unmanaged``
(which adopts them, ``engine.derive`` writing their manifests). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reconciler.engine.desired import desired_resources
from reconciler.engine.model import DriftItem, DriftType
from reconciler.engine.refresh import Observed
from reconciler.jsontypes import JSON
from reconciler.kinds import (
    KIND_ORDER,
    Address,
    TAG_KEYS,
    Kind,
    keys_without_room,
    kind_of,
    noun,
    other_manager,
    owned_address,
    owner_of,
    remote_name_of,
)
from reconciler.manifest import Document
from reconciler.state import Lockfile

UNMANAGED_MESSAGE = "live, but no manifest of this project owns it; `reconciler import` adopts it"


@dataclass(frozen=True)
class Unmanaged:
    """A live, non-archived object that no manifest of this project owns.

    Attributes:
        kind: its kind.
        obj: the live object as listed.
        tagged: the address this project's ownership tags name, if it carries them.
        duplicate_of: the remote id the lockfile records for ``tagged`` (a twin), if any.
    """

    kind: Kind
    obj: JSON
    tagged: str | None = None
    duplicate_of: str | None = None

    @property
    def remote_id(self) -> str:
        return str(self.obj["id"])

    @property
    def remote_name(self) -> str | None:
        return remote_name_of(self.kind, self.obj)


def _foreign(obj: JSON, project: str) -> bool:
    """Tagged by the reconciler for another project: theirs, never reported."""
    owner = owner_of(obj)
    return owner is not None and owner.project not in (None, project)


def _foreign_skills(observed: Observed, project: str) -> set[str]:
    """The ids of the skills that live agents of another project use: a skill carries no
    ownership tags, so this is what says it is theirs (the project that uploaded it holds
    it in its state), not a hand-made one of nobody's."""
    return {
        str(skill["skill_id"])
        for agent in observed.all("agent")
        if not agent.get("archived_at") and _foreign(agent, project)
        for skill in agent.get("skills") or ()
        if isinstance(skill, dict) and skill.get("type") == "custom" and skill.get("skill_id")
    }


def find_unmanaged(
    documents: Iterable[Document], observed: Observed, lockfile: Lockfile | None, project: str
) -> list[Unmanaged]:
    """Every live, non-archived object no manifest of ``project`` owns, sorted by kind and id.

    An object recorded in the lockfile is managed, and so is a skill (which carries no
    tags) that an agent of another project uses: that project's. Untagged objects are
    unmanaged; objects tagged by this project are unmanaged when their address is in neither the manifests nor
    the lockfile, or when the lockfile records another live object for it (a duplicate). An
    object tagged for an address only the manifests know is not: the next plan adopts it.

    Args:
        documents: manifest documents.
        observed: the live state (credentials only of the vaults refresh listed).
        lockfile: the current ``Lockfile`` (or None).
        project: this project.
    """
    resources = desired_resources(documents)
    # an address a document moves from is the manifests' too, until the move is applied
    desired = {r.address for r in resources} | {r.moved_from for r in resources if r.moved_from}
    entries = dict(lockfile.resources) if lockfile is not None else {}
    recorded = {(e.kind, e.id) for e in entries.values()}
    theirs = _foreign_skills(observed, project)
    out: list[Unmanaged] = []
    twin_vaults: set[str] = set()
    for kind in KIND_ORDER:
        index = observed.index(kind)
        for obj in sorted(observed.all(kind), key=lambda o: str(o["id"])):
            if obj.get("archived_at") or (kind, obj["id"]) in recorded or _foreign(obj, project):
                continue
            if kind == "skill" and obj["id"] in theirs:
                continue
            if kind == "credential" and obj.get("vault_id") in twin_vaults:
                continue  # a twin vault's credentials go with it
            tagged = owned_address(obj, project)
            if tagged is None or _kind_or_none(tagged) != kind:
                # untagged, or a tag edited by hand into no address of its kind
                out.append(Unmanaged(kind, obj))
                continue
            entry = entries.get(tagged)
            if entry is not None:
                twin = index.get(entry.id) if entry.kind == kind else None
                # the recorded object tagged for another address (or not ours) makes the
                # entry the wrong one (a bad merge, reported as not ours), not ``obj`` a twin
                held = twin is not None and owned_address(twin, project) == tagged
                if held and twin is not None and not twin.get("archived_at"):
                    out.append(Unmanaged(kind, obj, tagged, duplicate_of=entry.id))
                    if kind == "vault":
                        twin_vaults.add(str(obj["id"]))
                continue
            if tagged not in desired:
                out.append(Unmanaged(kind, obj, tagged))
                continue
            kept = _newest_tagged(observed.all(kind), project, tagged, obj)
            if kept is not None and kept["id"] != obj["id"]:
                out.append(Unmanaged(kind, obj, tagged, duplicate_of=str(kept["id"])))
                if kind == "vault":
                    twin_vaults.add(str(obj["id"]))
    return out


def _kind_or_none(address: str) -> str | None:
    try:
        return kind_of(address)
    except ValueError:
        return None


def _newest_tagged(objects: Iterable[JSON], project: str, address: str, like: JSON) -> JSON | None:
    """The object plan adopts for an unrecorded ``address``: the newest live one tagged
    for it (a credential: in the same vault as ``like``)."""
    tagged = [
        o
        for o in objects
        if not o.get("archived_at")
        and owned_address(o, project) == address
        and o.get("vault_id") == like.get("vault_id")
    ]
    return max(tagged, key=lambda o: str(o.get("created_at"))) if tagged else None


def unmanaged_message(kind: str, remote_id: str | None, vault: str | None = None) -> str:
    """What an unmanaged resource is and the whole command that adopts it, e.g.
    ``... `reconciler import agent.NAME agent_01...` adopts it (NAME: ...)``; a credential's
    names its vault's address when the vault is managed (``vault``)."""
    address = f"{kind}.NAME"
    if kind == "credential":
        address = f"{vault or 'vault.VAULT'}.credential.NAME"
    return (
        f"{UNMANAGED_MESSAGE.split(';')[0]}; `reconciler import {address} {remote_id or 'ID'}` "
        "adopts it (NAME: the name to give it in the manifests)"
    )


def _is_address_of(text: str, kind: str) -> bool:
    try:
        return Address.parse(text).kind == kind
    except ValueError:
        return False


def unmanaged_item(
    u: Unmanaged, vault_names: Mapping[str, str], refused_skills: Mapping[str, str] | None = None
) -> DriftItem:
    """The drift item of an unmanaged object (or a twin). ``refused_skills``: remote id ->
    the declared skill whose slug it carries and that plan refuses to take it for: its
    message names that address's import, as plan's error does."""
    vault_address = vault_names.get(str(u.obj.get("vault_id"))) if u.kind == "credential" else None
    message = unmanaged_message(u.kind, u.remote_id, vault_address)
    slugged = (refused_skills or {}).get(u.remote_id) if u.kind == "skill" else None
    if slugged is not None:
        message = (
            f"{UNMANAGED_MESSAGE.split(';')[0]}: it carries the slug of {slugged}, but this "
            "project's state does not record it and a skill carries no ownership tags, so it "
            "may be another project's or made by hand (`reconciler plan` refuses "
            f"{slugged} while it is there); `reconciler import {slugged} {u.remote_id}` "
            "adopts it, or give the skill another name in SKILL.md"
        )
    drift_type: DriftType = "unmanaged"
    if u.duplicate_of is not None:
        drift_type = "twin"
        message = (
            f"a twin: tagged {u.tagged} by this project, but {u.duplicate_of} holds that "
            "address (two applies that did not share a lockfile each created one); "
            "`reconciler apply --prune` archives this one"
        )
    elif other_manager(u.obj) is not None:
        message = (
            f"{UNMANAGED_MESSAGE.split(';')[0]}: its managed-by metadata says "
            f"{other_manager(u.obj)} manages it; `reconciler import {u.kind}.NAME "
            f"{u.remote_id} --force` takes it over"
        )
    elif keys_without_room(u.obj)[1] > 0:
        own, extra = keys_without_room(u.obj)
        message = (
            f"{UNMANAGED_MESSAGE.split(';')[0]}; its {own} metadata keys leave no room for the "
            f"{len(TAG_KEYS)} ownership tags: remove {extra} of them on the provider, then "
            f"`reconciler import {u.kind}.NAME {u.remote_id}` adopts it"
        )
    elif u.tagged is not None and not _is_address_of(u.tagged, u.kind):
        # its reconciler-address metadata edited into no address: import retags it anyway
        message = (
            f"{unmanaged_message(u.kind, u.remote_id, vault_address)}; its "
            f"reconciler-address metadata {u.tagged!r} is no {noun(u.kind)} address"
        )
    elif u.tagged is not None:
        message = (
            f"tagged {u.tagged} by this project, but neither the manifests nor the lockfile "
            f"know that address; write its document and `reconciler import {u.tagged} "
            f"{u.remote_id}`, or archive it"
        )
    if u.kind == "credential":
        vault_id = str(u.obj.get("vault_id"))
        vault = vault_names.get(vault_id, vault_id)
        message = f"in {vault}: {message}"
    return DriftItem(
        type=drift_type,
        address=u.tagged if drift_type == "twin" else None,
        kind=u.kind,
        remote_id=u.remote_id,
        remote_name=u.remote_name,
        message=message,
    )


__all__ = [
    "UNMANAGED_MESSAGE",
    "Unmanaged",
    "find_unmanaged",
    "unmanaged_item",
    "unmanaged_message",
]
