"""``import --all-unmanaged``: write manifests for everything live that nothing owns, and adopt it.

The adoption is a plan of ``Adopt`` actions run by the engine's executor (``adopt.run_adoptions``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from reconciler.app.adoptions import (
    Adopted,
    adopted_from,
    adoption,
    import_lock,
    intend_adoptions,
    run_adoptions,
)
from reconciler.app.fmt import dump_documents
from reconciler.app.skillimport import (
    SKILLS_DIR,
    DownloadedSkill,
    download_skill,
    imported_skill,
    refuse_left_out,
    skill_adoption,
    unmanaged_skill_files,
)
from reconciler.app.skills import describe_skills, skills_by_slug
from reconciler.app.workspace import Settings, connect, observe, read_manifests
from reconciler.engine.derive import (
    KIND_FILES,
    Derivation,
    ImportedDocument,
    ImportedResource,
    SecretVariable,
    Skipped,
    derive_documents,
    slugify,
    unique_name,
)
from reconciler.engine.desired import (
    DesiredResource,
    desired_resources,
)
from reconciler.engine.executor import ApplyReport
from reconciler.engine.model import Adopt
from reconciler.engine.refresh import Observed
from reconciler.engine.unmanaged import Unmanaged, find_unmanaged
from reconciler.errors import (
    PlanError,
    ProviderError,
    ReconcilerError,
)
from reconciler.jsontypes import JSON
from reconciler.kinds import (
    KIND_ORDER,
    MAX_METADATA_KEYS,
    TAG_KEYS,
    Kind,
    keys_without_room,
    other_manager,
    owned_address,
)
from reconciler.manifest import Document, ManifestSet
from reconciler.manifest.loader import escape_interpolation
from reconciler.manifest.messages import explain, format_path
from reconciler.manifest.yamlsource import parse_documents
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    Lockfile,
    StateBackend,
    StateLock,
    write_text_atomic,
)

#: Tags written at once when adopting many objects.
TAG_PARALLELISM = 8

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient


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
    #: what the executor did (one outcome per ``Adopt`` action); None when nothing ran
    report: ApplyReport | None = None
    #: skipped objects that nothing owns (not another tool's, not this project's twins)
    left_behind: int = 0

    @property
    def complete(self) -> bool:
        """Everything live that nothing owns was imported (the command's exit 0)."""
        return not self.failures and not self.left_behind


def _validate(derivation: Derivation) -> tuple[list[ImportedDocument], list[Skipped]]:
    """Documents the manifest schema accepts; a refused one takes its dependents along."""
    docs = list(derivation.documents)
    skipped: list[Skipped] = []
    for doc in list(docs):
        try:
            Document.model_validate(doc.data)
        except ValidationError as err:
            # said as validate says it: the manifest's own path (spec.credentials[0].auth.
            # mcp_server_url, no schema tags) and its words
            said = explain(err.errors()[0], doc.data, Document)
            docs.remove(doc)
            skipped.append(
                Skipped(
                    doc.kind.lower(),
                    doc.resources[0].remote_id,
                    "its manifest would be refused "
                    f"({format_path(said.shown_path)}: {said.message})",
                )
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
    for kind in ("agent", "environment", "vault", "memory_store"):
        for obj in observed.all(kind):
            tagged = owned_address(obj, project)
            if tagged in addresses and not obj.get("archived_at"):
                known[(kind, obj["id"])] = tagged.split(".", 1)[1]
    for address, entry in lockfile.resources.items():
        if entry.kind in ("agent", "environment", "vault", "memory_store"):
            known[(entry.kind, entry.id)] = address.split(".", 1)[1]
        elif entry.kind == "skill" and address in addresses:  # an agent may name it
            known[("skill", entry.id)] = address.split(".", 1)[1]
    return known


#: the first line of each file ``import --all-unmanaged`` writes
ALL_UNMANAGED_HEADER = (
    "# Imported by `reconciler import --all-unmanaged`: the live resources, as manifests."
)


def _file_text(
    kind: str, docs: Sequence[ImportedDocument], secrets: Sequence[SecretVariable], first_line: str
) -> str:
    header = [first_line, "# Review and commit; `reconciler plan` should show no changes."]
    notes = [f"{d.address}: {note}." for d in docs for note in d.notes]
    if notes:  # what the manifest says other than the live object, where it is read
        header[1] = "# Review and commit; `reconciler plan` should show no changes, except:"
        for note in notes:
            header += textwrap.wrap(note, 88, initial_indent="# - ", subsequent_indent="#   ")
    if kind == "Vault" and secrets:
        header += [
            "#",
            "# The provider never returns secrets: set these environment variables (or switch",
            "# to from_file) before `reconciler plan`; the first apply writes the secrets, and",
            "# its plan shows them as sensitive updates.",
        ]
    return "\n".join(header) + "\n" + dump_documents([d.data for d in docs])


async def import_unmanaged(
    ws: Settings,
    out: Path,
    *,
    client: ProviderClient | None = None,
    allow_origin_change: bool = False,
) -> UnmanagedImport:
    """Write manifests for everything live that nothing owns, and adopt it.

    Lists every kind once (and the credentials of the unmanaged vaults), derives one document
    per resource (``engine.derive``), writes one file per kind (``agents.yaml`` ...
    ``skills.yaml``, a skill's files beside) under ``out`` (never over an existing file), then
    tags each object with the ownership metadata and records it in the lockfile, under the
    apply lock. Afterwards ``reconciler plan`` (with ``out`` in the manifests) shows no change,
    except each credential's secret, which the first apply writes.

    Raises:
        PlanError: a file to write exists already.
        ManifestError: the current manifests are invalid.
        LockHeld: an apply is running.
    """
    manifests = read_manifests(ws, missing_ok=True)
    with import_lock(ws, allow_change=allow_origin_change) as (lock, store, lockfile, origin):
        if client is None:
            async with connect(ws) as c:
                return await _import_unmanaged(c, ws, out, manifests, store, lock, lockfile, origin)
        return await _import_unmanaged(client, ws, out, manifests, store, lock, lockfile, origin)


async def _import_unmanaged(
    client: ProviderClient,
    ws: Settings,
    out: Path,
    manifests: ManifestSet | None,
    store: StateBackend,
    lock: StateLock,
    lockfile: Lockfile,
    origin: str,
) -> UnmanagedImport:
    provider = ClientBackedProvider(client)
    observed = await observe(client, lockfile, ws.project)
    documents = manifests.documents if manifests is not None else ()
    # a skill carries no tags: one that plan finds by its slug for a document (an upload
    # whose record a killed apply lost) is this project's, as drift says, not unmanaged
    found: dict[str, tuple[Kind, JSON]] = {}
    if manifests is not None:
        described = await describe_skills(client, manifests, lockfile, observed)
        found = skills_by_slug(manifests, described, lockfile, ws.project)
    claimed = {str(obj["id"]) for _, obj in found.values()}
    unmanaged = [
        u
        for u in find_unmanaged(documents, observed, lockfile, ws.project)
        if not (u.kind == "skill" and u.remote_id in claimed)
    ]
    # another tool's (its managed-by names it): not "nothing owns", so never taken in bulk
    elsewhere = [_managed_elsewhere(u) for u in unmanaged if other_manager(u.obj)]
    unmanaged = [u for u in unmanaged if not other_manager(u.obj)]
    # no room for the ownership tags: the tagging update would be refused (a 400)
    full = [_no_room(u) for u in unmanaged if u.kind != "skill" and keys_without_room(u.obj)[1]]
    unmanaged = [u for u in unmanaged if u.kind == "skill" or not keys_without_room(u.obj)[1]]
    vault_ids = [u.remote_id for u in unmanaged if u.kind == "vault" and u.duplicate_of is None]
    lists = await asyncio.gather(*(provider.list_all("credential", parent_id=v) for v in vault_ids))
    # skills first: an agent imported with a skill names it ({ref: NAME})
    skills = await _skills(client, unmanaged, _taken_names(documents, lockfile).get("skill", set()))
    known = _known_names(documents, lockfile, observed, ws.project)
    known.update({("skill", str(found.skill["id"])): name for name, (_, found) in skills.items()})
    derivation = derive_documents(
        unmanaged,
        dict(zip(vault_ids, lists, strict=True)),
        taken=_taken_names(documents, lockfile),
        known=known,
        skill_latest=_skill_latest(observed),
    )
    docs, refused = _validate(derivation)
    skipped = tuple(elsewhere) + tuple(full) + tuple(derivation.skipped) + tuple(refused)
    twins = {u.remote_id for u in unmanaged if u.duplicate_of is not None}
    left_behind = sum(1 for s in skipped[len(elsewhere) :] if s.remote_id not in twins)
    docs += [doc for doc, _ in skills.values()]
    if not docs:
        return UnmanagedImport(skipped=skipped, left_behind=left_behind)
    kept = {r.address for d in docs for r in d.resources}
    secrets = tuple(s for s in derivation.secrets if s.address in kept)
    for name in skills:
        if (out / SKILLS_DIR / name).exists():
            raise PlanError(
                f"{out / SKILLS_DIR / name} already exists; nothing was imported. Pass an "
                "--out directory without it"
            )
    # the adoptions' intents go to disk before the manifests that name these objects: an
    # import killed in between never leaves a manifest the next apply would create a twin for
    adopting = [
        (r.kind, r.address, r.remote_id, r.parent_id)
        for d in docs
        if d.kind != "Skill"
        for r in d.resources
    ]
    files = _write_documents(
        out,
        Path(ws.manifests),
        docs,
        secrets,
        before_writing=lambda: intend_adoptions(store, lock, adopting),
    )
    left = unmanaged_skill_files(out, {name: found for name, (_, found) in skills.items()})
    docs = [
        dataclasses.replace(d, notes=(*d.notes, left[d.name]))
        if d.kind == "Skill" and d.name in left
        else d
        for d in docs
    ]
    if left:  # the Skill file's header promised no changes: it says what plan will show
        skill_files = {"Skill": KIND_FILES["Skill"]}
        skill_docs = [d for d in docs if d.kind == "Skill"]
        texts = _document_texts(out, skill_docs, (), skill_files, ALL_UNMANAGED_HEADER)
        for path, text in texts.items():
            write_text_atomic(path, text)
    res_by_address = {r.address: r for r in desired_resources(_as_documents(docs))}
    listed: dict[tuple[str, str], JSON] = {
        (k, o["id"]): o for k in KIND_ORDER for o in observed.all(k)
    }
    listed.update({("credential", c["id"]): c for creds in lists for c in creds})
    plain = [d for d in docs if d.kind != "Skill"]
    actions, failures = await _adoptions(provider, plain, res_by_address, ws.project, listed)
    actions += [skill_adoption(d.address, found, d.data) for d, found in skills.values()]
    report = await run_adoptions(
        client, store, lock, actions, ws.project, origin=origin, parallelism=TAG_PARALLELISM
    )
    adopted = tuple(adopted_from(o) for o in report.outcomes if o.ok)
    failures = dict(sorted({**failures, **report.failures}.items()))
    return UnmanagedImport(
        files=files,
        documents=tuple(docs),
        adopted=adopted,
        skipped=skipped,
        secrets=secrets,
        failures=failures,
        report=report,
        left_behind=left_behind,
    )


def _no_room(u: Unmanaged) -> Skipped:
    own, extra = keys_without_room(u.obj)
    return Skipped(
        u.kind,
        u.remote_id,
        f"its {own} metadata keys leave no room for the {len(TAG_KEYS)} ownership tags (the "
        f"provider keeps {MAX_METADATA_KEYS}); remove {extra} of them on the provider, then "
        "run this import again",
    )


def _managed_elsewhere(u: Unmanaged) -> Skipped:
    return Skipped(
        u.kind,
        u.remote_id,
        f"its managed-by metadata says {other_manager(u.obj)} manages it, not the "
        f"reconciler; `reconciler import {u.kind}.NAME {u.remote_id} --force` takes it over",
    )


def _skill_latest(observed: Observed) -> dict[str, str]:
    """skill id -> its latest version id (an agent running it follows it: ``{ref: NAME}``)."""
    return {s["id"]: s.get("latest_version_id") or "" for s in observed.all("skill")}


@dataclass(frozen=True)
class UndeclaredDocument:
    """The manifest ``import ADDR ID`` writes for an object no manifest declares."""

    derived: ImportedDocument
    #: the files to write (the document; a long system prompt beside it) -> their text
    texts: Mapping[Path, str]
    #: the environment variables its credentials' secrets are read from (a vault)
    secrets: tuple[SecretVariable, ...]
    #: a vault's live credentials, by id, as listed
    credentials: Mapping[str, JSON]

    @property
    def document(self) -> Document:
        return Document.model_validate(self.derived.data)

    def check_absent(self, manifests: Path) -> None:
        """Refuse (``PlanError``, nothing imported) when a file to write exists already, or
        the ``manifests`` would not read it (``refuse_left_out``)."""
        refuse_left_out(manifests, self.texts)
        existing = [str(p) for p in self.texts if p.exists()]
        if existing:
            raise PlanError(
                f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''} but "
                f"{'does' if len(existing) == 1 else 'do'} not declare "
                f"{self.derived.address}; nothing was imported. Move "
                f"{'it' if len(existing) == 1 else 'them'} away, or write the document of "
                f"{self.derived.address} yourself and import again"
            )

    def write(self, before_writing: Callable[[], None]) -> tuple[Path, ...]:
        """Write the files, after ``before_writing`` (the adoptions' intents)."""
        return _write_texts(self.texts, before_writing)


async def undeclared_document(
    client: ProviderClient,
    ws: Settings,
    kind: Kind,
    address: str,
    obj: JSON,
    documents: Sequence[Document],
    lockfile: Lockfile,
) -> UndeclaredDocument | Skipped:
    """The document of ``obj`` for ``import ADDR ID`` when no manifest declares ``address``.

    It is derived from the live object as ``--all-unmanaged`` derives one (a vault with its
    live credentials, their secrets as ``from_env`` placeholders; references to what this
    project manages by name) and goes to ``<manifests>/<kind's file name>/NAME.yaml``, e.g.
    ``manifests/agents/coder.yaml`` (as an imported skill's goes to ``skills/NAME.yaml``).
    A ``Skipped`` says why there is none (the manifests path is a single file; a deployment
    runs an agent this project does not manage: its ``unmanaged_refs``; the schema refuses
    what is live): the object is then imported without it.
    """
    manifests = Path(ws.manifests)
    if not manifests.is_dir():
        why = f"{manifests} is a file, not a directory a document can be added to"
        return Skipped(kind, obj["id"], why)
    # only an agent (its skills) and a deployment (its agent, environment and vaults) name
    # other resources, by the names this project manages them under: the others need no
    # listing of everything
    refers = kind in ("agent", "deployment")
    observed = await observe(client, lockfile, ws.project) if refers else Observed(objects={})
    credentials: tuple[JSON, ...] = ()
    if kind == "vault":
        listed = ClientBackedProvider(client).list_all("credential", parent_id=obj["id"])
        credentials = tuple(await listed)
    name = address.split(".", 1)[1]
    taken = _taken_names(documents, lockfile)
    taken.get(kind, set()).discard(name)  # its own entry, when imported again with --force
    derivation = derive_documents(
        # named as the address asks: the name its tags would give it
        [Unmanaged(kind, obj, tagged=address)],
        {obj["id"]: credentials},
        taken=taken,
        known=_known_names(documents, lockfile, observed, ws.project),
        skill_latest=_skill_latest(observed),
    )
    docs, refused = _validate(derivation)
    if not docs:
        reasons = [s for s in (*derivation.skipped, *refused) if s.remote_id == obj["id"]]
        nothing = Skipped(kind, obj["id"], "nothing could be derived from it")
        return reasons[0] if reasons else nothing
    (doc,) = docs
    first_line = f"# Imported by `reconciler import {address} {obj['id']}`: the live resource."
    folder = manifests / Path(KIND_FILES[doc.kind]).stem
    return UndeclaredDocument(
        derived=doc,
        texts=_document_texts(
            folder, [doc], derivation.secrets, {doc.kind: f"{name}.yaml"}, first_line
        ),
        secrets=derivation.secrets,
        credentials={str(c["id"]): c for c in credentials},
    )


async def _skills(
    client: ProviderClient, unmanaged: Sequence[Unmanaged], taken: set[str]
) -> dict[str, tuple[ImportedDocument, DownloadedSkill]]:
    """name -> the document and downloaded files of each unmanaged skill."""
    ids = [u.remote_id for u in unmanaged if u.kind == "skill" and u.duplicate_of is None]
    found = await asyncio.gather(*(download_skill(client, i) for i in ids))
    out: dict[str, tuple[ImportedDocument, DownloadedSkill]] = {}
    names = set(taken)
    for skill in sorted(found, key=lambda f: (f.slug, str(f.skill["id"]))):
        name = unique_name(slugify(skill.slug or skill.skill.get("display_name"), "skill"), names)
        names.add(name)
        doc, _ = imported_skill(name, skill, f"{SKILLS_DIR}/{name}")
        out[name] = (doc, skill)
    return out


def _as_documents(docs: Sequence[ImportedDocument]) -> list[Document]:
    return [Document.model_validate(d.data) for d in docs]


#: an agent's system prompt of this many lines or more is written to a file of its own
PROMPT_FILE_LINES = 4
#: where those files go, beside the manifests (``from_file`` is relative to them)
PROMPTS_DIR = "prompts"


def _prompt_files(
    docs: Sequence[ImportedDocument],
) -> tuple[list[ImportedDocument], dict[str, str]]:
    """The documents as written: each long system prompt moved to ``prompts/NAME.md`` and
    named by ``{from_file: ...}``; and those files (relative path -> text, exactly as live)."""
    files: dict[str, str] = {}
    written: list[ImportedDocument] = []
    for doc in docs:
        spec = doc.data.get("spec") or {}
        system = spec.get("system") if doc.kind == "Agent" else None
        if isinstance(system, str) and len(system.splitlines()) >= PROMPT_FILE_LINES:
            name = f"{PROMPTS_DIR}/{doc.name}.md"
            files[name] = system
            data = {**doc.data, "spec": {**spec, "system": {"from_file": name}}}
            doc = dataclasses.replace(doc, data=data)
        written.append(doc)
    return written, files


def _write_documents(
    out: Path,
    manifests: Path,
    docs: Sequence[ImportedDocument],
    secrets: Sequence[SecretVariable],
    *,
    before_writing: Callable[[], None] | None = None,
) -> tuple[Path, ...]:
    texts = _document_texts(out, docs, secrets, KIND_FILES, ALL_UNMANAGED_HEADER)
    refuse_left_out(manifests, texts)
    existing = [str(p) for p in texts if p.exists()]
    if existing:
        raise PlanError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; nothing was "
            "imported. Pass an --out directory without them, e.g. a new folder inside your "
            "manifests directory (manifests are read recursively)"
        )
    return _write_texts(texts, before_writing)


def _document_texts(
    out: Path,
    docs: Sequence[ImportedDocument],
    secrets: Sequence[SecretVariable],
    file_names: Mapping[str, str],
    first_line: str,
) -> dict[Path, str]:
    """The files that hold ``docs`` under ``out`` (path -> text): one per kind, named by
    ``file_names`` (kind -> file name), and each long system prompt in a file of its own.
    Each document file reads back as its documents (checked)."""
    docs, prompts = _prompt_files(docs)
    # a live "${" is written "$${" (the loader refuses "${" and reads "$${" as "${"); prompt
    # files are read as written, so their text stays as live
    docs = [
        dataclasses.replace(doc, data={**doc.data, "spec": escape_interpolation(doc.data["spec"])})
        if "spec" in doc.data
        else doc
        for doc in docs
    ]
    texts: dict[Path, str] = {out / name: text for name, text in prompts.items()}
    for kind, filename in file_names.items():
        of_kind = [d for d in docs if d.kind == kind]
        if of_kind:
            texts[out / filename] = text = _file_text(kind, of_kind, secrets, first_line)
            _check_round_trip(text, [d.data for d in of_kind], out / filename)
    return texts


def _write_texts(
    texts: Mapping[Path, str], before_writing: Callable[[], None] | None
) -> tuple[Path, ...]:
    """Write ``texts`` (path -> text, folders made as needed), after ``before_writing``."""
    if before_writing is not None:
        before_writing()
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    return tuple(texts)


def _check_round_trip(text: str, expected: list[JSON], path: Path) -> None:
    parsed, issues = parse_documents(text)
    if issues or [d.data for d in parsed] != expected:
        raise ReconcilerError(
            f"internal error: the YAML written for {path} does not read back as the derived "
            "documents; nothing was imported. Please report this bug"
        )


async def _adoptions(
    provider: ClientBackedProvider,
    docs: Sequence[ImportedDocument],
    res_by_address: dict[str, DesiredResource],
    project: str,
    listed: dict[tuple[str, str], JSON],
) -> tuple[list[Adopt], dict[str, str]]:
    """One ``Adopt`` per derived resource, from its object as this run listed it (read again
    only when the listing lacks it); address -> why for the objects that could not be read.
    An agent's version precondition still guards against an edit since the listing."""
    gate = asyncio.Semaphore(TAG_PARALLELISM)
    failures: dict[str, str] = {}

    async def adopt(r: ImportedResource) -> Adopt | None:
        async with gate:
            try:
                obj = listed.get((r.kind, r.remote_id)) or await provider.retrieve(
                    r.kind, r.remote_id, parent_id=r.parent_id
                )
            except ProviderError as err:
                failures[r.address] = str(err)
                return None
        return adoption(
            r.kind,
            r.address,
            obj,
            project,
            res=res_by_address[r.address],
            parent_id=r.parent_id,
            pins=r.pins,
            fill=r.fill,
            skills=r.skills,
        )

    found = await asyncio.gather(*(adopt(r) for d in docs for r in d.resources))
    return [a for a in found if a is not None], failures
