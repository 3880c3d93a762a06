"""``import ADDR ID``: adopt one existing remote object, tag it, record it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.app.workspace import Settings, connect, held, observe, read_documents
from reconciler.engine.desired import (
    DesiredResource,
    desired_digest,
    desired_resources,
)
from reconciler.engine.drift import (
    manifest_differences,
)
from reconciler.engine.normalize import normalize
from reconciler.errors import (
    NotFoundError,
    PlanError,
    a_or_an,
)
from reconciler.kinds import (
    ID_PREFIXES,
    NAME_RE,
    WIRE_TYPES,
    Kind,
    kind_of,
    owned_address,
    owner_of,
    tags,
)
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    LockEntry,
    Lockfile,
    StateStore,
    json_digest,
    utc_timestamp,
)

JSON = dict[str, Any]


@dataclass(frozen=True)
class Adopted:
    """One object recorded in the lockfile by ``import``."""

    address: str
    kind: str
    remote_id: str
    #: agents: the version after tagging (tagging saves a new version)
    version: int | None = None
    #: False when the object already carried this address's ownership tags
    tagged: bool = True


@dataclass(frozen=True)
class ImportResult:
    """What ``import ADDR ID`` did."""

    adopted: tuple[Adopted, ...]
    #: the address was already recorded with this id: nothing was done
    already: bool = False
    warnings: tuple[str, ...] = ()


def _check_address(address: str) -> Kind:
    try:
        kind = kind_of(address)
    except ValueError:
        raise PlanError(
            f"{address!r} is not an address: expected agent.NAME, environment.NAME, vault.NAME, "
            "deployment.NAME or vault.NAME.credential.NAME"
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


def _remote_name(kind: str, obj: JSON) -> str | None:
    return obj.get("display_name") if kind in ("vault", "credential") else obj.get("name")


def _live_digest(kind: str, obj: JSON) -> str:
    """A spec digest of what is live (no manifest was applied to it)."""
    return json_digest(normalize(kind, obj))


def lock_entry(
    kind: str,
    obj: JSON,
    *,
    res: DesiredResource | None,
    parent_id: str | None,
    pins: dict[str, int],
    now: str,
) -> LockEntry:
    return LockEntry(
        kind=kind,
        id=obj["id"],
        parent_id=parent_id,
        version=int(obj["version"]) if kind == "agent" and obj.get("version") else None,
        pins=pins,
        # a digest of the live spec when no manifest has the address: the next plan then
        # records the manifest's digest once the document is written
        spec_digest=desired_digest(res) if res is not None else _live_digest(kind, obj),
        protect=res.protect if res is not None else False,
        secret_fingerprints={},
        remote_name=res.remote_name if res is not None else _remote_name(kind, obj),
        created_at=now,
        updated_at=now,
    )


async def tag_owned(
    provider: ClientBackedProvider,
    kind: str,
    obj: JSON,
    project: str,
    address: str,
    parent_id: str | None,
    fill: Mapping[str, Any] | None = None,
) -> tuple[JSON, bool]:
    """Write the ownership metadata (a metadata patch; agents save a new version), and the
    ``fill`` fields where the live object differs."""
    wanted = tags(project, address)
    body: JSON = {k: v for k, v in (fill or {}).items() if obj.get(k) != v}
    if owned_address(obj, project) != address:
        body["metadata"] = wanted
    if not body:
        return obj, False
    updated = await provider.update(kind, obj["id"], body, parent_id=parent_id)
    return updated, True


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
    ws: Settings, address: str, remote_id: str, *, force: bool = False
) -> ImportResult:
    """Adopt one live object as ``address``: tag it with the ownership metadata and record it
    in the lockfile (under the apply lock). Importing a vault also adopts the live credentials
    its manifest declares (matched by MCP server URL or secret name).

    Args:
        ws: where the manifests and the lockfile are, and the provider.
        address: ``agent.coder``, ``vault.github.credential.token``, ...
        remote_id: the live object's id.
        force: replace an existing lockfile entry of ``address``, re-tag an object this
            project tagged for another address, and take over an object another project's
            tags claim (a warning says whose it was).

    Raises:
        PlanError: the address or id is wrong, the object is archived, or (without
            ``force``) owned by another project or the address is recorded with another id.
        LockHeld: an apply is running.
        ProviderError: the object does not exist, or tagging failed.
    """
    kind = _check_address(address)
    _check_id(kind, remote_id, address)
    documents = read_documents(ws)
    desired = {r.address: r for r in desired_resources(documents)}
    warnings: list[str] = []
    with held(ws.lockfile, "import"):
        store = StateStore(ws.lockfile, project=ws.project)
        lockfile = store.load()
        recorded = not _needs_import(lockfile, address, remote_id, force)
        parent_id = _vault_id(lockfile, address) if kind == "credential" else None
        now = utc_timestamp()
        adopted: list[Adopted] = []
        async with connect(ws) as client:
            provider = ClientBackedProvider(client)
            obj = await _retrieve(provider, kind, remote_id, parent_id, address)
            if recorded and owned_address(obj, ws.project) == address:
                return ImportResult(adopted=(), already=True)
            # recorded but not tagged ours (a bad merge, or tags removed by hand): the
            # lockfile alone proves nothing, so the same checks as a new import apply
            owner = _check_adoptable(kind, obj, ws.project, address, force)
            if owner is not None:
                warnings.append(
                    f"{remote_id} belonged to {owner} and is now tagged for project "
                    f"{ws.project!r}: that project's plans report it as not theirs until its "
                    f"lockfile forgets it (`reconciler --project ... state rm ...`)"
                )
            res = desired.get(address)
            obj, tagged = await tag_owned(provider, kind, obj, ws.project, address, parent_id)
            pins = _deployment_pins(obj, res, lockfile) if kind == "deployment" else {}
            entry = lock_entry(kind, obj, res=res, parent_id=parent_id, pins=pins, now=now)
            if res is not None:
                observed = await observe(client, lockfile.with_entry(address, entry), ws.project)
                if address in manifest_differences(
                    documents, observed, lockfile.with_entry(address, entry), ws.project
                ):
                    # what is live was not applied from this manifest: the difference is a
                    # change for plan to show, not drift
                    entry = entry.model_copy(update={"spec_digest": _live_digest(kind, obj)})
                    warnings.append(
                        f"{address} differs from its manifest: `reconciler plan` shows the "
                        "update apply would make"
                    )
            store.commit(recording(address, entry))
            adopted.append(Adopted(address, kind, remote_id, entry.version, tagged))
            if kind == "vault":
                more, notes = await _adopt_credentials(
                    provider, store, desired, address, obj["id"], ws.project, now
                )
                adopted += more
                warnings += notes
    if address not in desired:
        warnings.append(
            f"{address} is not in the manifests: write its document (or run `reconciler import "
            "--all-unmanaged` instead); until then plan lists it as left alone, and "
            "`plan --prune` would archive it"
        )
    if any(a.kind == "credential" for a in adopted):
        warnings.append(
            "secrets cannot be read back from the provider: the next apply writes each "
            "credential's secret from its manifest (the plan shows it as a sensitive update)"
        )
    return ImportResult(adopted=tuple(adopted), warnings=tuple(warnings))


def _needs_import(lockfile: Lockfile, address: str, remote_id: str, force: bool) -> bool:
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
    owner = _foreign_owner(obj, project)
    if owner is not None:
        if not force:
            raise PlanError(
                f"{obj['id']} belongs to {owner}; pass that --project to manage it there, or "
                "--force to take it over from that project"
            )
        return owner
    tagged = owned_address(obj, project)
    if tagged is not None and tagged != address and not force:
        raise PlanError(
            f"{obj['id']} is tagged as {tagged} by this project; import it as {tagged}, or "
            "pass --force to re-tag it"
        )
    return None


def recording(address: str, entry: LockEntry) -> Callable[[Lockfile], Lockfile]:
    """The lockfile edit that records ``entry`` for ``address``."""
    return lambda lockfile: lockfile.with_entry(address, entry)


async def _adopt_credentials(
    provider: ClientBackedProvider,
    store: StateStore,
    desired: dict[str, DesiredResource],
    vault_address: str,
    vault_id: str,
    project: str,
    now: str,
) -> tuple[list[Adopted], list[str]]:
    """Adopt the live credentials of a just-imported vault that its manifest declares."""
    wanted = {
        _credential_key(r.spec.get("auth")): r
        for a, r in desired.items()
        if r.kind == "credential" and r.parent == vault_address
    }
    wanted.pop(None, None)
    if not wanted:
        return [], []
    adopted: list[Adopted] = []
    notes: list[str] = []
    lockfile = store.lockfile
    recorded = {e.id for e in lockfile.resources.values()}
    for cred in await provider.list_all("credential", parent_id=vault_id):
        res = wanted.get(_credential_key(cred.get("auth")))
        if res is None or cred.get("archived_at") or cred["id"] in recorded:
            continue
        if res.address in lockfile.resources or _foreign_owner(cred, project):
            continue
        tagged_as = owned_address(cred, project)
        if tagged_as is not None and tagged_as != res.address:
            notes.append(f"{cred['id']} is tagged as {tagged_as}; not adopted as {res.address}")
            continue
        cred, tagged = await tag_owned(provider, "credential", cred, project, res.address, vault_id)
        entry = lock_entry("credential", cred, res=res, parent_id=vault_id, pins={}, now=now)
        lockfile = store.commit(recording(res.address, entry))
        adopted.append(Adopted(res.address, "credential", cred["id"], None, tagged))
    return adopted, notes
