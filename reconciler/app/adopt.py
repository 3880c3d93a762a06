"""``import ADDR ID``: adopt one existing remote object, tag it, record it.

Adoption is a plan too: this module decides what to adopt (the object, the credentials a
vault's manifest declares, the document of an address none declares) and runs the ``Adopt``
actions with the engine's executor (``adoptions.run_adoptions``), the one path that writes
to the provider, with the outcomes committed to the lockfile through the journal as apply
commits them. It never sends a write itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.app.adoptions import (
    Adopted,
    adopted_from,
    adoption,
    import_lock,
    intend_adoptions,
    live_digest,
    run_adoptions,
)
from reconciler.app.workspace import (
    Settings,
    connect,
    observe,
    read_documents,
)
from reconciler.engine.derive import (
    SecretVariable,
    Skipped,
    credential_entry,
    running_skill_versions,
)
from reconciler.engine.desired import (
    DesiredResource,
    desired_resources,
)
from reconciler.engine.drift import (
    manifest_differences,
)
from reconciler.engine.executor import ApplyReport
from reconciler.engine.model import Adopt
from reconciler.errors import (
    ApplyError,
    NotFoundError,
    PlanError,
    a_or_an,
)
from reconciler.jsontypes import JSON
from reconciler.kinds import (
    ID_PREFIXES,
    Address,
    MAX_METADATA_KEYS,
    NAME_RE,
    TAG_KEYS,
    TOP_LEVEL_KINDS,
    WIRE_TYPES,
    Kind,
    keys_without_room,
    kind_of,
    other_manager,
    owned_address,
    owner_of,
)
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.provider.memory_stores import content_sha256
from reconciler.state import (
    LockEntry,
    Lockfile,
)

if TYPE_CHECKING:
    from reconciler.app.unmanaged import UndeclaredDocument
    from reconciler.provider import ProviderClient


@dataclass(frozen=True)
class ImportResult:
    """What ``import ADDR ID`` did."""

    adopted: tuple[Adopted, ...]
    #: the address was already recorded with this id: nothing was done
    already: bool = False
    warnings: tuple[str, ...] = ()
    #: what the executor did (one outcome per ``Adopt`` action); None when nothing ran
    report: ApplyReport | None = None
    #: the files written: the document of an address no manifest declared (and a long
    #: system prompt beside it)
    files: tuple[Path, ...] = ()
    #: the environment variables the written document reads its credentials' secrets from
    secrets: tuple[SecretVariable, ...] = ()


def _check_address(address: str) -> Kind:
    try:
        kind = kind_of(address)
    except ValueError:
        kinds = ", ".join(f"{k}.NAME" for k in TOP_LEVEL_KINDS)
        raise PlanError(
            f"{address!r} is not an address: expected {kinds} or vault.NAME.credential.NAME"
        ) from None
    parts = address.split(".")
    names = [parts[1], parts[3]] if kind == "credential" else parts[1:]
    if len(names) != (2 if kind == "credential" else 1) or not all(NAME_RE.match(n) for n in names):
        raise PlanError(
            f"{address!r} is not an address: names are 1-64 lowercase letters, digits, '-' or "
            "'_', e.g. agent.coder or vault.github.credential.token"
        )
    return kind


def _check_id(kind: str, remote_id: str, address: str) -> None:
    if not all("!" <= ch <= "~" for ch in remote_id):
        # a space, a control character, or a byte of another encoding the shell passed on
        # (which no request can carry): no provider id has one
        raise PlanError(
            f"{remote_id!r} is not a remote id: ids are printable ASCII with no spaces, "
            f"e.g. {ID_PREFIXES[kind]}01..."
        )
    if remote_id.startswith(ID_PREFIXES[kind]):
        return
    for other, prefix in ID_PREFIXES.items():
        if remote_id.startswith(prefix):
            raise PlanError(
                f"{remote_id} is the id of {a_or_an(other)} ({prefix}...), but {address} is "
                f"{a_or_an(kind)} address; use {a_or_an(kind)} id ({ID_PREFIXES[kind]}...)"
            )


def _foreign_owner(obj: JSON, project: str) -> str | None:
    owner = owner_of(obj)
    if owner is not None and owner.project not in (None, project):
        return f"project {owner.project!r} ({owner.address})"
    return None


def _deployment_pins(obj: JSON, res: DesiredResource | None, lockfile: Lockfile) -> dict[str, int]:
    agent = obj.get("agent") or {}
    version = agent.get("version")
    if version is None:
        return {}
    if res is not None and res.pin is not None:
        return {res.pin[0]: int(version)}
    for address, entry in lockfile.resources.items():
        if entry.kind == "agent" and entry.id == agent.get("id"):
            return {address: int(version)}
    return {}


def _credential_key(auth: Any) -> str | None:
    if not isinstance(auth, dict):
        return None
    return auth.get("secret_name") or auth.get("mcp_server_url")


async def import_resource(
    ws: Settings,
    address: str,
    remote_id: str,
    *,
    force: bool = False,
    allow_origin_change: bool = False,
) -> ImportResult:
    """Adopt one live object as ``address``: tag it with the ownership metadata and record it
    in the lockfile (under the apply lock). Importing a vault also adopts the live credentials
    its manifest declares (matched by MCP server URL or secret name). When no manifest
    declares ``address``, its document is written from the live object first
    (``unmanaged.undeclared_document``: a vault with its live credentials, adopted with it),
    or a warning says why it could not be.

    Args:
        ws: where the manifests and the lockfile are, and the provider.
        address: ``agent.coder``, ``vault.github.credential.token``, ...
        remote_id: the live object's id.
        force: replace an existing lockfile entry of ``address``, re-tag an object this
            project tagged for another address, and take over an object another project's
            tags claim (a warning says whose it was).
        allow_origin_change: import although the lockfile was applied to another provider
            origin (``check_origin``); the lockfile then records this one.

    Raises:
        PlanError: the address or id is wrong, the object is archived, (without
            ``force``) owned by another project or the address is recorded with another id,
            or a file the undeclared address's document would go to exists already.
        LockHeld: an apply is running.
        ProviderError: the object does not exist, or tagging failed.
    """
    kind = _check_address(address)
    _check_id(kind, remote_id, address)
    if kind == "skill":  # no tags to write: its files are downloaded instead
        from reconciler.app.skillimport import import_skill

        return await import_skill(
            ws, address, remote_id, force=force, allow_origin_change=allow_origin_change
        )
    documents = read_documents(ws)
    desired = {r.address: r for r in desired_resources(documents)}
    warnings: list[str] = []
    files: tuple[Path, ...] = ()
    not_written = ""  # why the document of an undeclared address was not written
    remedy = "write it"
    to_add = ""  # an undeclared credential: the item to add to its vault's document
    entry_secrets: tuple[SecretVariable, ...] = ()
    with import_lock(ws, allow_change=allow_origin_change) as (lock, store, lockfile, origin):
        recorded = not needs_import(lockfile, address, remote_id, force)
        replaced = lockfile.resources.get(address)  # with --force: the entry it replaces
        parent_id = _vault_id(lockfile, address) if kind == "credential" else None
        async with connect(ws) as client:
            provider = ClientBackedProvider(client)
            obj = await _retrieve(provider, kind, remote_id, parent_id, address)
            # recorded but undeclared (its document could not be written before: a
            # deployment imported before what it uses): go on, to write the document now
            if recorded and owned_address(obj, ws.project) == address and address in desired:
                return ImportResult(adopted=(), already=True)
            # recorded but not tagged ours (a bad merge, or tags removed by hand): the
            # lockfile alone proves nothing, so the same checks as a new import apply
            owner = _check_adoptable(kind, obj, ws.project, address, force)
            if owner is not None and other_manager(obj) is not None:
                warnings.append(
                    f"{remote_id} was managed by {owner} and is now tagged for project "
                    f"{ws.project!r}: stop managing it in {other_manager(obj)}, which may set "
                    "its managed-by back"
                )
            elif owner is not None:
                warnings.append(
                    f"{remote_id} belonged to {owner} and is now tagged for project "
                    f"{ws.project!r}: that project's plans report it as not theirs until its "
                    f"lockfile forgets it (`reconciler --project ... state rm ...`)"
                )
            res = desired.get(address)
            undeclared: UndeclaredDocument | None = None
            if res is None and kind != "credential":
                from reconciler.app.unmanaged import undeclared_document

                found = await undeclared_document(
                    client, ws, kind, address, obj, documents, lockfile
                )
                if isinstance(found, Skipped):
                    not_written = f" ({found.reason})"
                    if found.unmanaged_refs:
                        first = ", ".join(
                            f"`reconciler import {what.replace(' ', '.NAME ', 1)}`"
                            for what in found.unmanaged_refs
                        )
                        remedy = (
                            f"import them first ({first}), then run this import again to "
                            "write its document, or write it yourself"
                        )
                else:
                    undeclared = found
                    warnings += [f"{address}: {note}" for note in found.derived.notes]
            elif res is None:  # a credential: an item of its vault's document
                found_entry = credential_entry(obj, address)
                if found_entry is not None:
                    entry, entry_secrets = found_entry
                    vault_address = address.split(".credential.")[0]
                    to_add = (
                        f": add it to the credentials of {vault_address} in its manifest: "
                        f"{json.dumps(entry)}"
                    )
            if undeclared is not None:
                undeclared.check_absent(Path(ws.manifests))
                documents = (*documents, undeclared.document)
                desired = {r.address: r for r in desired_resources(documents)}
                res = desired[address]
            pins = _deployment_pins(obj, res, lockfile) if kind == "deployment" else {}
            seeds: tuple[str, ...] = ()
            if kind == "memory_store" and res is not None:
                seeds, differ = await _present_seeds(client, res, remote_id)
                warnings += [
                    f"{address}: the seed {path} differs from the memory the store holds "
                    "there; it is left as the agents wrote it (a seed is written only where "
                    "no memory is)"
                    for path in differ
                ]
            actions = [
                adoption(
                    kind,
                    address,
                    obj,
                    ws.project,
                    res=res,
                    parent_id=parent_id,
                    pins=pins,
                    previous_owner=owner,
                    skills=_agent_skills(obj, res, lockfile) if kind == "agent" else None,
                    seeds=seeds,
                )
            ]
            if undeclared is not None:
                # its credentials, as written: adopted with it (else the next apply would
                # create each again beside the live one)
                actions += _derived_credential_adoptions(undeclared, desired, ws.project)
                adopting = [(a.kind, a.address, a.remote_id, a.parent_id) for a in actions]
                # intents before the manifest that names these objects: killed in between,
                # the next plan refuses to create a twin of what the document declares
                files = undeclared.write(lambda: intend_adoptions(store, lock, adopting))
            elif kind == "vault":
                more, notes = await _credential_adoptions(
                    provider, lockfile, desired, address, obj["id"], ws.project
                )
                actions += more
                warnings += notes
            report = await run_adoptions(client, store, lock, actions, ws.project, origin=origin)
            main = report.outcome(address)
            if main is None or not main.ok:
                why = main.error if main is not None else "not run"
                left = "nothing was recorded"
                if address in store.lockfile.pending:  # its intent, written before the tags
                    left = (
                        f"its adoption stays pending in {ws.state_name}: `reconciler import "
                        f"{address} {remote_id}` finishes it, `reconciler state rm {address}` "
                        f"drops it (until then plan creates no {address} beside the object)"
                    )
                raise ApplyError(
                    f"import of {address} failed: {why}; {left}", failures=report.failures
                )
            if replaced is not None and replaced.id != remote_id:
                warnings += await _left_as_twin(provider, address, replaced, ws.project)
            if res is not None:
                lockfile = store.lockfile
                observed = await observe(client, lockfile, ws.project)
                if address in manifest_differences(documents, observed, lockfile, ws.project):
                    # what is live was not applied from this manifest: the difference is a
                    # change for plan to show, not drift
                    live = main.live if main.live is not None else obj
                    store.commit(_with_live_digest(address, live_digest(kind, live)))
                    warnings.append(
                        f"{address} differs from its manifest: `reconciler plan` shows the "
                        "update apply would make"
                    )
    adopted = tuple(adopted_from(o) for o in report.outcomes if o.ok)
    warnings += [f"{a} was not adopted: {why}" for a, why in report.failures.items()]
    if address not in desired and to_add:
        warnings.append(
            f"{address} is not in the manifests{to_add}; until then plan lists it as left "
            "alone, and `plan --prune` would archive it"
        )
    elif address not in desired:
        warnings.append(
            f"{address} is not in the manifests and its document was not written{not_written}: "
            f"{remedy}; until then plan lists it as left alone, and `plan --prune` would "
            "archive it"
        )
    if any(a.kind == "credential" for a in adopted):
        warnings.append(
            "secrets cannot be read back from the provider: the next apply writes each "
            "credential's secret from its manifest (the plan shows it as a sensitive update)"
        )
    secrets = undeclared.secrets if undeclared is not None else entry_secrets
    return ImportResult(
        adopted=adopted, warnings=tuple(warnings), report=report, files=files, secrets=secrets
    )


async def _present_seeds(
    client: ProviderClient, res: DesiredResource, store_id: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The manifest's seed paths that hold a memory in the store already, and those of them
    whose content is not the seed's (one paged list; contents compared by sha256)."""
    seeds = {str(s["path"]): str(s["content"]) for s in res.spec.get("memories") or ()}
    if not seeds:
        return (), ()
    live = {
        str(m["path"]): m.get("content_sha256")
        async for m in client.memory_stores.memories.list(store_id, view="basic")
        if m.get("type") == "memory" and m.get("path") in seeds
    }
    differ = tuple(p for p in sorted(live) if live[p] != content_sha256(seeds[p]))
    return tuple(sorted(live)), differ


def _agent_skills(obj: JSON, res: DesiredResource | None, lockfile: Lockfile) -> dict[str, str]:
    """Skill address -> the version the live agent runs, for each skill its manifest names
    by ref (``{ref: NAME}``): recorded as an apply records them, or the next plan would
    record them as an entry out of date."""
    running = running_skill_versions(obj)
    out: dict[str, str] = {}
    for address in res.skill_refs if res is not None else ():
        entry = lockfile.resources.get(address)
        if entry is not None and entry.id in running:
            out[address] = running[entry.id]
    return out


def _derived_credential_adoptions(
    undeclared: UndeclaredDocument, desired: Mapping[str, DesiredResource], project: str
) -> list[Adopt]:
    """The adoptions of the credentials an imported vault's written document declares."""
    vault, *credentials = undeclared.derived.resources
    return [
        adoption(
            "credential",
            r.address,
            undeclared.credentials[r.remote_id],
            project,
            res=desired[r.address],
            parent_id=r.parent_id,
            pins={},
            fill=r.fill,
            depends_on=(vault.address,),
        )
        for r in credentials
    ]


def _with_live_digest(address: str, digest: str) -> Callable[[Lockfile], Lockfile]:
    def edit(lockfile: Lockfile) -> Lockfile:
        entry = lockfile.resources[address]
        return lockfile.with_entry(address, entry.model_copy(update={"spec_digest": digest}))

    return edit


def needs_import(lockfile: Lockfile, address: str, remote_id: str, force: bool) -> bool:
    """False when ``address`` is recorded as ``remote_id`` already; raises when the lockfile
    records the address or the id otherwise."""
    existing = lockfile.resources.get(address)
    if existing is not None and existing.id == remote_id:
        return False
    if existing is not None and not force:
        raise PlanError(
            f"{address} is already in the lockfile as {existing.id}; run `reconciler state rm "
            f"{address}` first, or pass --force to replace the entry"
        )
    for other, entry in lockfile.resources.items():
        if entry.id == remote_id and other != address:
            raise PlanError(
                f"{remote_id} is already in the lockfile as {other}; "
                f"`reconciler state rm {other}` first to record it under another address"
            )
    return True


def _vault_id(lockfile: Lockfile, credential_address: str) -> str:
    vault_address = credential_address.split(".credential.")[0]
    vault = lockfile.resources.get(vault_address)
    if vault is None:
        raise PlanError(
            f"import the vault first: {vault_address} is not in the lockfile, and a credential "
            f"is found through its vault (`reconciler import {vault_address} vlt_...`)"
        )
    return vault.id


async def _retrieve(
    provider: ClientBackedProvider,
    kind: str,
    remote_id: str,
    parent_id: str | None,
    address: str,
) -> JSON:
    try:
        obj = await provider.retrieve(kind, remote_id, parent_id=parent_id)
    except NotFoundError:
        where = f" in vault {parent_id}" if parent_id else ""
        raise PlanError(f"no {kind} {remote_id}{where} on the provider") from None
    if obj.get("type") not in (None, WIRE_TYPES[kind]):
        raise PlanError(
            f"{remote_id} is {a_or_an(str(obj.get('type')))}, but {address} is "
            f"{a_or_an(kind)} address"
        )
    return obj


async def _left_as_twin(
    provider: ClientBackedProvider, address: str, replaced: LockEntry, project: str
) -> list[str]:
    """What becomes of the object an ``import --force`` took ``address``'s entry from: while
    it carries this project's tags for ``address``, plans call it a twin and ``--prune``
    archives it."""
    try:
        old = await provider.retrieve(replaced.kind, replaced.id, parent_id=replaced.parent_id)
    except NotFoundError:
        return []
    if old.get("archived_at") or owned_address(old, project) != address:
        return []
    return [
        f"{address} recorded {replaced.id} before, which still carries this project's tags "
        f"for {address}: plans now list it as a twin, and `reconciler apply --prune` archives "
        "it; remove its managed-by, reconciler-project and reconciler-address metadata on the "
        "provider to keep it out of this project's reach"
    ]


def _check_adoptable(kind: str, obj: JSON, project: str, address: str, force: bool) -> str | None:
    """Refuse what import must not take; with ``force``, whose the object was (another
    project's), for a warning.

    Raises:
        PlanError: archived; another project's or tagged for another address, without force.
    """
    if obj.get("archived_at"):
        raise PlanError(
            f"{obj['id']} was archived at {obj['archived_at']}; an archived {kind} cannot be "
            "adopted (the provider has no unarchive)"
        )
    manager = other_manager(obj)
    if manager is not None and not force:
        raise PlanError(
            f"{obj['id']} is managed by {manager} (its managed-by metadata), not by the "
            f"reconciler: importing it would overwrite that tag and take it from {manager}. "
            "Stop managing it there first, or pass --force to take it over"
        )
    if manager is not None:
        return f"{manager} (its managed-by metadata)"
    owner = _foreign_owner(obj, project)
    if owner is not None:
        if not force:
            raise PlanError(
                f"{obj['id']} belongs to {owner}; pass that --project to manage it there, or "
                "--force to take it over from that project"
            )
        return owner
    tagged = owned_address(obj, project)
    try:  # a tag edited by hand into no address of this kind names nothing to keep
        tagged = tagged if tagged is not None and Address.parse(tagged).kind == kind else None
    except ValueError:
        tagged = None
    if tagged is not None and tagged != address and not force:
        raise PlanError(
            f"{obj['id']} is tagged as {tagged} by this project; import it as {tagged}, or "
            "pass --force to re-tag it"
        )
    _check_room_for_tags(obj)
    return None


def _check_room_for_tags(obj: JSON) -> None:
    """Refuse an object whose metadata leaves no room for the ownership tags: the provider
    would refuse the tagging update (400) after the adoption's intent was recorded."""
    own, extra = keys_without_room(obj)
    if extra > 0:
        raise PlanError(
            f"{obj['id']} has {own} metadata keys: the ownership tags need {len(TAG_KEYS)} of "
            f"the provider's {MAX_METADATA_KEYS}, so it may keep at most "
            f"{MAX_METADATA_KEYS - len(TAG_KEYS)}; remove {extra} of them on the provider, "
            "then run this import again"
        )


async def _credential_adoptions(
    provider: ClientBackedProvider,
    lockfile: Lockfile,
    desired: dict[str, DesiredResource],
    vault_address: str,
    vault_id: str,
    project: str,
) -> tuple[list[Adopt], list[str]]:
    """Adoptions of the live credentials of a vault being imported that its manifest
    declares (each runs once the vault's own adoption succeeded)."""
    wanted = {
        _credential_key(r.spec.get("auth")): r
        for a, r in desired.items()
        if r.kind == "credential" and r.parent == vault_address
    }
    wanted.pop(None, None)
    if not wanted:
        return [], []
    actions: list[Adopt] = []
    notes: list[str] = []
    recorded = {e.id for e in lockfile.resources.values()}
    taken: set[str] = set()
    for cred in await provider.list_all("credential", parent_id=vault_id):
        res = wanted.get(_credential_key(cred.get("auth")))
        if res is None or cred.get("archived_at") or cred["id"] in recorded:
            continue
        if res.address in lockfile.resources or res.address in taken:
            continue
        if _foreign_owner(cred, project):
            continue
        tagged_as = owned_address(cred, project)
        if tagged_as is not None and tagged_as != res.address:
            notes.append(f"{cred['id']} is tagged as {tagged_as}; not adopted as {res.address}")
            continue
        taken.add(res.address)
        actions.append(
            adoption(
                "credential",
                res.address,
                cred,
                project,
                res=res,
                parent_id=vault_id,
                pins={},
                depends_on=(vault_address,),
            )
        )
    return actions, notes
