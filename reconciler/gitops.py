"""The library behind ``drift``, ``import`` and ``fmt``: what a CI job or a GitOps bot calls.

Each function does what one command does, minus flags and rendering, and prints nothing:

    report = asyncio.run(drift(settings))                      # DriftReport; has_drift
    result = asyncio.run(import_resource(settings, "agent.coder", "agent_01..."))
    result = asyncio.run(import_unmanaged(settings, Path("manifests")))
    report = format_paths([Path("manifests")], check=True)     # FormatReport; changed

``settings`` is any object with the attributes of ``reconciler.operations.Settings`` (this
module sits beside ``operations`` and does not import it). Detection and derivation are pure
(``engine.drift``, ``engine.importing``); this module reads the manifests and the lockfile,
talks to the provider (one list per kind, plus the version history of changed agents), tags
adopted objects with the ownership metadata and records them under the apply lock.

Formatting uses ruamel.yaml, which keeps comments: a comment stays after the key it follows,
also when ``fmt`` moves that key. ``fmt`` refuses a file it cannot format without losing a
comment or changing what the YAML means, and says so.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from reconciler.engine.desired import (
    DesiredResource,
    desired_resources,
    is_owned,
    ownership,
    spec_digest,
)
from reconciler.engine.drift import (
    Unmanaged,
    agents_to_annotate,
    build_drift,
    find_unmanaged,
    manifest_differences,
)
from reconciler.engine.importing import (
    KIND_FILES,
    NAME_RE,
    Derivation,
    ImportedDocument,
    ImportedResource,
    SecretVariable,
    Skipped,
    derive_documents,
    key_order,
)
from reconciler.engine.model import (
    ADDRESS_KEY,
    OWNER_KEY,
    OWNER_VALUE,
    PROJECT_KEY,
    DriftReport,
    Kind,
    kind_of,
)
from reconciler.engine.normalize import normalize
from reconciler.engine.refresh import Observed, refresh
from reconciler.errors import (
    ManifestError,
    ManifestIssue,
    NotFoundError,
    PlanError,
    ProviderError,
    ReconcilerError,
)
from reconciler.manifest import Document, load_manifests
from reconciler.manifest.yamlsource import parse_documents
from reconciler.provider import ProviderClient, open_client
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    ApplyLock,
    LockEntry,
    Lockfile,
    StateStore,
    read_lockfile,
    utc_timestamp,
)
from reconciler.state import spec_digest as digest_of

JSON = dict[str, Any]

#: Id prefixes of the wire (provider-wire.md §13): an id that shows another kind is refused.
ID_PREFIXES: dict[str, str] = {
    "agent": "agent_",
    "environment": "env_",
    "vault": "vlt_",
    "credential": "vcrd_",
    "deployment": "depl_",
}
#: ``type`` of each kind's wire object.
WIRE_TYPES: dict[str, str] = {
    "agent": "agent",
    "environment": "environment",
    "vault": "vault",
    "credential": "vault_credential",
    "deployment": "deployment",
}
#: Tags written at once when adopting many objects.
TAG_PARALLELISM = 8


class Workspace(Protocol):
    """Where things are: the attributes of ``reconciler.operations.Settings`` used here."""

    @property
    def manifests(self) -> Path: ...
    @property
    def lockfile(self) -> Path: ...
    @property
    def project(self) -> str: ...
    @property
    def provider_url(self) -> str | None: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def db_path(self) -> Path: ...
    @property
    def client_options(self) -> dict[str, Any]: ...


@asynccontextmanager
async def _connect(ws: Workspace) -> AsyncIterator[ProviderClient]:
    async with open_client(
        ws.provider_url, ws.api_key, db_path=ws.db_path, **dict(ws.client_options)
    ) as client:
        yield client


async def _observe(client: ProviderClient, lockfile: Lockfile, project: str) -> Observed:
    """The plan's refresh: one paged list per kind, credentials of the managed vaults."""
    vault_ids = [e.id for e in lockfile.resources.values() if e.kind == "vault"]
    return await refresh(ClientBackedProvider(client), project=project, known_vault_ids=vault_ids)


@contextmanager
def _held(lockfile: Path, operation: str) -> Iterator[ApplyLock]:
    """The apply lock, held as ``operation`` (the name a refused apply is told)."""
    lock = ApplyLock(lockfile)
    lock.acquire(operation)
    try:
        yield lock
    finally:
        lock.release()


def _documents(ws: Workspace) -> tuple[Document, ...]:
    """The manifest documents; none when the manifests path does not exist yet (a team that
    is about to import everything has no manifests)."""
    if not Path(ws.manifests).exists():
        return ()
    return load_manifests(ws.manifests).documents


# --- drift ---------------------------------------------------------------------------------


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
    lockfile = read_lockfile(ws.lockfile, project=ws.project)
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


# --- import ADDR ID ------------------------------------------------------------------------


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
                f"{remote_id} is the id of {'an' if other[0] in 'ae' else 'a'} {other} "
                f"({prefix}...), but {address} is {'an' if kind[0] in 'ae' else 'a'} {kind} "
                f"address; use a {kind} id ({ID_PREFIXES[kind]}...)"
            )


def _foreign_owner(obj: JSON, project: str) -> str | None:
    md = obj.get("metadata") or {}
    if md.get(OWNER_KEY) == OWNER_VALUE and md.get(PROJECT_KEY) not in (None, project):
        return f"project {md.get(PROJECT_KEY)!r} ({md.get(ADDRESS_KEY)})"
    return None


def _remote_name(kind: str, obj: JSON) -> str | None:
    return obj.get("display_name") if kind in ("vault", "credential") else obj.get("name")


def _live_digest(kind: str, obj: JSON) -> str:
    """A spec digest of what is live (no manifest was applied to it)."""
    return digest_of(normalize(kind, obj))


def _entry(
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
        spec_digest=spec_digest(res) if res is not None else _live_digest(kind, obj),
        protect=res.protect if res is not None else False,
        secret_fingerprints={},
        remote_name=res.remote_name if res is not None else _remote_name(kind, obj),
        created_at=now,
        updated_at=now,
    )


async def _tag(
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
    wanted = ownership(project, address)
    md = obj.get("metadata") or {}
    body: JSON = {k: v for k, v in (fill or {}).items() if obj.get(k) != v}
    if any(md.get(k) != v for k, v in wanted.items()):
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
    ws: Workspace, address: str, remote_id: str, *, force: bool = False
) -> ImportResult:
    """Adopt one live object as ``address``: tag it with the ownership metadata and record it
    in the lockfile (under the apply lock). Importing a vault also adopts the live credentials
    its manifest declares (matched by MCP server URL or secret name).

    Args:
        ws: where the manifests and the lockfile are, and the provider.
        address: ``agent.coder``, ``vault.github.credential.token``, ...
        remote_id: the live object's id.
        force: replace an existing lockfile entry of ``address``, and re-tag an object this
            project tagged for another address. Never takes another project's object.

    Raises:
        PlanError: the address or id is wrong, the object is archived or owned elsewhere, or
            the address is already recorded with another id.
        LockHeld: an apply is running.
        ProviderError: the object does not exist, or tagging failed.
    """
    kind = _check_address(address)
    _check_id(kind, remote_id, address)
    documents = _documents(ws)
    desired = {r.address: r for r in desired_resources(documents)}
    warnings: list[str] = []
    with _held(ws.lockfile, "import"):
        store = StateStore(ws.lockfile, project=ws.project)
        lockfile = store.load()
        if not _needs_import(lockfile, address, remote_id, force):
            return ImportResult(adopted=(), already=True)
        parent_id = _vault_id(lockfile, address) if kind == "credential" else None
        now = utc_timestamp()
        adopted: list[Adopted] = []
        async with _connect(ws) as client:
            provider = ClientBackedProvider(client)
            obj = await _retrieve(provider, kind, remote_id, parent_id, address)
            _check_adoptable(kind, obj, ws.project, address, force)
            res = desired.get(address)
            obj, tagged = await _tag(provider, kind, obj, ws.project, address, parent_id)
            pins = _deployment_pins(obj, res, lockfile) if kind == "deployment" else {}
            entry = _entry(kind, obj, res=res, parent_id=parent_id, pins=pins, now=now)
            if res is not None:
                observed = await _observe(client, lockfile.with_entry(address, entry), ws.project)
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
            store.commit(_recording(address, entry))
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
        raise PlanError(f"{remote_id} is a {obj.get('type')}, but {address} is a {kind} address")
    return obj


def _check_adoptable(kind: str, obj: JSON, project: str, address: str, force: bool) -> None:
    if obj.get("archived_at"):
        raise PlanError(
            f"{obj['id']} was archived at {obj['archived_at']}; an archived {kind} cannot be "
            "adopted (the provider has no unarchive)"
        )
    owner = _foreign_owner(obj, project)
    if owner is not None:
        raise PlanError(f"{obj['id']} belongs to {owner}; pass that --project to manage it there")
    tagged = is_owned(obj, project)
    if tagged is not None and tagged != address and not force:
        raise PlanError(
            f"{obj['id']} is tagged as {tagged} by this project; import it as {tagged}, or "
            "pass --force to re-tag it"
        )


def _recording(address: str, entry: LockEntry) -> Callable[[Lockfile], Lockfile]:
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
        tagged_as = is_owned(cred, project)
        if tagged_as is not None and tagged_as != res.address:
            notes.append(f"{cred['id']} is tagged as {tagged_as}; not adopted as {res.address}")
            continue
        cred, tagged = await _tag(provider, "credential", cred, project, res.address, vault_id)
        entry = _entry("credential", cred, res=res, parent_id=vault_id, pins={}, now=now)
        lockfile = store.commit(_recording(res.address, entry))
        adopted.append(Adopted(res.address, "credential", cred["id"], None, tagged))
    return adopted, notes


# --- import --all-unmanaged ----------------------------------------------------------------


@dataclass(frozen=True)
class UnmanagedImport:
    """What ``import --all-unmanaged --out DIR`` did."""

    files: tuple[Path, ...] = ()
    documents: tuple[ImportedDocument, ...] = ()
    adopted: tuple[Adopted, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    secrets: tuple[SecretVariable, ...] = ()
    #: address -> why tagging or recording failed (its document was written anyway)
    failures: dict[str, str] = field(default_factory=dict)


def _validate(derivation: Derivation) -> tuple[list[ImportedDocument], list[Skipped]]:
    """Documents the manifest schema accepts; a refused one takes its dependents along."""
    docs = list(derivation.documents)
    skipped: list[Skipped] = []
    for doc in list(docs):
        try:
            Document.model_validate(doc.data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function"))
            docs.remove(doc)
            skipped.append(
                Skipped(doc.kind.lower(), doc.resources[0].remote_id, f"{where}: {first['msg']}")
            )
    while True:
        kept = {d.address for d in docs}
        dropped = [d for d in docs if any(_ref_missing(r, kept, derivation) for r in d.refs)]
        if not dropped:
            return docs, skipped
        for d in dropped:
            docs.remove(d)
            skipped.append(
                Skipped(
                    d.kind.lower(),
                    d.resources[0].remote_id,
                    "it uses a resource that could not be imported",
                )
            )


def _ref_missing(ref: str, kept: set[str], derivation: Derivation) -> bool:
    """A reference to a derived document that was dropped (references to already managed
    resources are not derived here and always resolve)."""
    derived = {d.address for d in derivation.documents}
    return ref in derived and ref not in kept


def _taken_names(documents: Sequence[Document], lockfile: Lockfile) -> dict[str, set[str]]:
    taken: dict[str, set[str]] = {}
    for doc in documents:
        taken.setdefault(doc.kind.lower(), set()).add(doc.name)
    for address, entry in lockfile.resources.items():
        if entry.kind != "credential":
            taken.setdefault(entry.kind, set()).add(address.split(".", 1)[1])
    return taken


def _known_names(
    documents: Sequence[Document], lockfile: Lockfile, observed: Observed, project: str
) -> dict[tuple[str, str], str]:
    """(kind, remote id) -> manifest name of what this project already manages."""
    known: dict[tuple[str, str], str] = {}
    addresses = {d.address for d in documents}
    for kind in ("agent", "environment", "vault"):
        for obj in observed.all(kind):
            tagged = is_owned(obj, project)
            if tagged in addresses and not obj.get("archived_at"):
                known[(kind, obj["id"])] = tagged.split(".", 1)[1]
    for address, entry in lockfile.resources.items():
        if entry.kind in ("agent", "environment", "vault"):
            known[(entry.kind, entry.id)] = address.split(".", 1)[1]
    return known


def _file_text(
    kind: str, docs: Sequence[ImportedDocument], secrets: Sequence[SecretVariable]
) -> str:
    header = [
        "# Imported by `reconciler import --all-unmanaged`: the live resources, as manifests.",
        "# Review and commit; `reconciler plan` should show no changes.",
    ]
    if kind == "Vault" and secrets:
        header += [
            "#",
            "# The provider never returns secrets: set these environment variables (or switch",
            "# to from_file) before `reconciler plan`; the first apply writes the secrets, and",
            "# its plan shows them as sensitive updates.",
        ]
    return "\n".join(header) + "\n" + dump_documents([d.data for d in docs])


async def import_unmanaged(
    ws: Workspace, out: Path, *, client: ProviderClient | None = None
) -> UnmanagedImport:
    """Write manifests for everything live that nothing owns, and adopt it.

    Lists every kind once (and the credentials of the unmanaged vaults), derives one document
    per resource (``engine.importing``), writes ``agents.yaml``, ``environments.yaml``,
    ``vaults.yaml``, ``deployments.yaml`` under ``out`` (never over an existing file), then
    tags each object with the ownership metadata and records it in the lockfile, under the
    apply lock. Afterwards ``reconciler plan`` (with ``out`` in the manifests) shows no change,
    except each credential's secret, which the first apply writes.

    Raises:
        PlanError: a file to write exists already.
        ManifestError: the current manifests are invalid.
        LockHeld: an apply is running.
    """
    documents = _documents(ws)
    with _held(ws.lockfile, "import"):
        store = StateStore(ws.lockfile, project=ws.project)
        lockfile = store.load()
        if client is None:
            async with _connect(ws) as c:
                return await _import_unmanaged(c, ws, out, documents, store, lockfile)
        return await _import_unmanaged(client, ws, out, documents, store, lockfile)


async def _import_unmanaged(
    client: ProviderClient,
    ws: Workspace,
    out: Path,
    documents: Sequence[Document],
    store: StateStore,
    lockfile: Lockfile,
) -> UnmanagedImport:
    provider = ClientBackedProvider(client)
    observed = await _observe(client, lockfile, ws.project)
    unmanaged = find_unmanaged(documents, observed, lockfile, ws.project)
    vault_ids = [u.remote_id for u in unmanaged if u.kind == "vault" and u.duplicate_of is None]
    lists = await asyncio.gather(*(provider.list_all("credential", parent_id=v) for v in vault_ids))
    derivation = derive_documents(
        unmanaged,
        dict(zip(vault_ids, lists, strict=True)),
        taken=_taken_names(documents, lockfile),
        known=_known_names(documents, lockfile, observed, ws.project),
    )
    docs, refused = _validate(derivation)
    skipped = tuple(derivation.skipped) + tuple(refused)
    if not docs:
        return UnmanagedImport(skipped=skipped)
    kept = {r.address for d in docs for r in d.resources}
    secrets = tuple(s for s in derivation.secrets if s.address in kept)
    files = _write_documents(out, docs, secrets)
    res_by_address = {r.address: r for r in desired_resources(_as_documents(docs))}
    adopted, failures = await _adopt_all(provider, store, docs, res_by_address, ws.project)
    return UnmanagedImport(
        files=files,
        documents=tuple(docs),
        adopted=adopted,
        skipped=skipped,
        secrets=secrets,
        failures=failures,
    )


def _as_documents(docs: Sequence[ImportedDocument]) -> list[Document]:
    return [Document.model_validate(d.data) for d in docs]


def _write_documents(
    out: Path, docs: Sequence[ImportedDocument], secrets: Sequence[SecretVariable]
) -> tuple[Path, ...]:
    texts: dict[Path, str] = {}
    for kind, filename in KIND_FILES.items():
        of_kind = [d for d in docs if d.kind == kind]
        if of_kind:
            texts[out / filename] = _file_text(kind, of_kind, secrets)
    existing = [str(p) for p in texts if p.exists()]
    if existing:
        raise PlanError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; nothing was "
            "imported. Pass an --out directory without them, e.g. a new folder inside your "
            "manifests directory (manifests are read recursively)"
        )
    for path, text in texts.items():
        _check_round_trip(text, [d.data for d in docs if KIND_FILES[d.kind] == path.name], path)
    out.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        _write_atomic(path, text)
    return tuple(texts)


def _check_round_trip(text: str, expected: list[JSON], path: Path) -> None:
    parsed, issues = parse_documents(text)
    if issues or [d.data for d in parsed] != expected:
        raise ReconcilerError(
            f"internal error: the YAML written for {path} does not read back as the derived "
            "documents; nothing was imported. Please report this bug"
        )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


async def _adopt_all(
    provider: ClientBackedProvider,
    store: StateStore,
    docs: Sequence[ImportedDocument],
    res_by_address: dict[str, DesiredResource],
    project: str,
) -> tuple[tuple[Adopted, ...], dict[str, str]]:
    now = utc_timestamp()
    gate = asyncio.Semaphore(TAG_PARALLELISM)
    adopted: list[Adopted] = []
    failures: dict[str, str] = {}

    async def adopt(r: ImportedResource) -> None:
        res = res_by_address[r.address]
        async with gate:
            try:
                obj = await provider.retrieve(r.kind, r.remote_id, parent_id=r.parent_id)
                obj, tagged = await _tag(
                    provider, r.kind, obj, project, r.address, r.parent_id, r.fill
                )
            except ProviderError as err:
                failures[r.address] = str(err)
                return
        entry = _entry(r.kind, obj, res=res, parent_id=r.parent_id, pins=dict(r.pins), now=now)
        store.commit(_recording(r.address, entry))
        adopted.append(Adopted(r.address, r.kind, r.remote_id, entry.version, tagged))

    await asyncio.gather(*(adopt(r) for d in docs for r in d.resources))
    return tuple(sorted(adopted, key=lambda a: a.address)), dict(sorted(failures.items()))


# --- fmt -----------------------------------------------------------------------------------

MANIFEST_SUFFIXES = (".yaml", ".yml")


def _yaml() -> Any:
    from ruamel.yaml import YAML  # imported late: only fmt and import need it

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never fold a long line
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _inline(key: Any, value: JSON) -> bool:
    """Small leaf mappings read best on one line: ``permission_policy: {type: always_ask}``,
    ``token: {from_env: GITHUB_TOKEN}``, ``agent: {ref: coder, version: 3}``."""
    if key in (None, "spec", "metadata") or not 1 <= len(value) <= 2:
        return False
    scalars = all(isinstance(v, str | int | float | bool) for v in value.values())
    return scalars and sum(len(f"{k}: {v}, ") for k, v in value.items()) <= 60


def _plain_to_yaml(value: Any, key: Any = None) -> Any:
    """Plain data -> ruamel nodes: multi-line strings as literal blocks (``|``), small leaf
    mappings in flow style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, dict):
        node = CommentedMap((k, _plain_to_yaml(v, k)) for k, v in value.items())
        if _inline(key, value):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        return CommentedSeq(_plain_to_yaml(v) for v in value)
    if isinstance(value, str) and "\n" in value.rstrip("\n") and _literal_safe(value):
        return LiteralScalarString(value)
    return value


def _literal_safe(text: str) -> bool:
    # literal blocks cannot carry trailing spaces on a line, tabs or a leading space exactly
    return not any(line != line.rstrip() for line in text.split("\n")) and not text.startswith(
        (" ", "\t")
    )


def dump_documents(documents: Iterable[JSON]) -> str:
    """Plain-data documents as one canonical multi-document YAML text (as ``fmt`` writes it)."""
    out = io.StringIO()
    _yaml().dump_all([_plain_to_yaml(d) for d in documents], out)
    return out.getvalue()


def _reorder(node: Any, kind: str | None, path: tuple[str | int, ...]) -> None:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        if path == ():
            kind = node.get("kind") if isinstance(node.get("kind"), str) else None
        keys = list(node.keys())
        wanted = key_order(path, [k for k in keys if isinstance(k, str)], kind)
        wanted += [k for k in keys if not isinstance(k, str)]
        if wanted != keys:
            for key in wanted:
                node.move_to_end(key)
        for key in wanted:
            _reorder(node[key], kind, path + (key,))
    elif isinstance(node, CommentedSeq):
        for i, item in enumerate(node):
            _reorder(item, kind, path + (i,))


_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


def _comments(text: str) -> Counter[str]:
    """Every ``# ...`` of a text (block-scalar lines too: they are kept verbatim anyway)."""
    found: Counter[str] = Counter()
    for line in text.splitlines():
        match = _COMMENT.search(line)
        if match:
            found[match.group(1).strip()] += 1
    return found


class FormatError(ReconcilerError):
    """``fmt`` cannot format a file without losing something; the file is left as it is."""


def format_text(text: str, *, name: str = "<string>") -> str:
    """``text`` in canonical form: key order (see ``engine.importing.key_order``), two-space
    indentation, sequences indented under their key, one ``---`` between documents, every
    comment and every quoting style kept.

    Raises:
        ManifestError: the text is not YAML (the issue says where).
        FormatError: formatting would drop a comment or change the data.
    """
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    y = _yaml()
    try:
        docs = [d for d in y.load_all(text) if d is not None]
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise ManifestError(
            ManifestIssue(name, line, col, f"not valid YAML: {err.problem}")
        ) from None
    except YAMLError as err:
        raise ManifestError(ManifestIssue(name, 1, 1, f"not valid YAML: {err}")) from None
    for doc in docs:
        _reorder(doc, None, ())
    out = io.StringIO()
    y.dump_all(docs, out)
    result = out.getvalue()
    if _data(result) != _data(text):
        raise FormatError(f"{name}: formatting would change the data; left unchanged")
    if _comments(result) != _comments(text):
        raise FormatError(
            f"{name}: formatting would lose or move a comment the YAML library cannot keep "
            "(e.g. a comment before the first ---); left unchanged"
        )
    return result


def _data(text: str) -> list[Any]:
    from ruamel.yaml import YAML

    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]


@dataclass(frozen=True)
class FormatReport:
    """What ``fmt`` found: every file looked at, those not in canonical form, and those it
    could not format (path -> why)."""

    files: tuple[Path, ...]
    changed: tuple[Path, ...]
    refused: dict[Path, str] = field(default_factory=dict)


def manifest_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files of ``paths``: files as given, directories searched recursively
    (hidden entries skipped), sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files += [
                    Path(dirpath) / f
                    for f in sorted(filenames)
                    if not f.startswith(".") and f.lower().endswith(MANIFEST_SUFFIXES)
                ]
        elif path.exists():
            files.append(path)
        else:
            raise ManifestError(ManifestIssue(str(path), 1, 1, "no such file or directory"))
    return sorted(dict.fromkeys(files))


def format_paths(paths: Iterable[Path], *, check: bool = False) -> FormatReport:
    """Bring manifest files into canonical form (``format_text``), or with ``check`` only say
    which are not.

    Raises:
        ManifestError: a file is not YAML, or a path does not exist.
    """
    files = manifest_files(paths)
    changed: list[Path] = []
    refused: dict[Path, str] = {}
    for file in files:
        text = file.read_text(encoding="utf-8")
        try:
            formatted = format_text(text, name=str(file))
        except FormatError as err:
            refused[file] = str(err)
            continue
        if formatted != text:
            changed.append(file)
            if not check:
                _write_atomic(file, formatted)
    return FormatReport(tuple(files), tuple(changed), refused)


__all__ = [
    "Adopted",
    "FormatError",
    "FormatReport",
    "ImportResult",
    "Unmanaged",
    "UnmanagedImport",
    "Workspace",
    "drift",
    "dump_documents",
    "format_paths",
    "format_text",
    "import_resource",
    "import_unmanaged",
    "manifest_files",
]
