"""Import skills: download a hand-made skill's latest version beside the manifests, adopt it.

A skill carries no metadata, so adopting one sends nothing: its lockfile entry (the id, the
slug, and the latest version recorded as holding the downloaded files) is its ownership.

- ``import skill.NAME ID``: with a Skill document for NAME, its directory is left as it is
  (the next plan uploads it as a new version when its files differ from the live ones);
  without one, the latest version is written to ``<manifests>/skills/NAME/`` and its
  document to ``<manifests>/skills/NAME.yaml``.
- ``import --all-unmanaged --out DIR``: each unmanaged skill's files go to
  ``DIR/skills/NAME/`` and its document into ``DIR/skills.yaml`` (``unmanaged.py``).

Either way, the next ``reconciler plan`` shows no change for it, unless the skill holds files
that git ignores where they are written (``upload_leaves_out``: the import says so, and the
plan shows a new version without them).
"""

from __future__ import annotations


import hashlib
import io
import textwrap
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from reconciler.app.adopt import ImportResult, needs_import
from reconciler.app.adoptions import Adopted, import_lock, run_adoptions
from reconciler.app.fmt import dump_documents
from reconciler.app.workspace import Settings, connect, read_documents
from reconciler.engine.derive import ImportedDocument, ImportedResource
from reconciler.engine.desired import desired_digest, desired_resources
from reconciler.engine.model import Adopt, SkillTarget, Target
from reconciler.engine.skills import skill_users
from reconciler.errors import ApplyError, NotFoundError, PlanError
from reconciler.jsontypes import JSON
from reconciler.manifest import Document
from reconciler.manifest.files import left_out
from reconciler.manifest.skill import SkillSpec, files_named, skill_source
from reconciler.manifest.skilldir import SkillSourceError, files_digest
from reconciler.state import write_text_atomic

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient

#: where imported skills' directories go, beside the manifests
SKILLS_DIR = "skills"


@dataclass(frozen=True)
class DownloadedSkill:
    """A live skill and the files of its latest version (path -> bytes, the skill's top
    directory dropped)."""

    skill: JSON
    version_id: str
    slug: str
    files: dict[str, bytes]

    @property
    def shas(self) -> dict[str, str]:
        return {p: hashlib.sha256(b).hexdigest() for p, b in self.files.items()}


async def download_skill(client: ProviderClient, skill_id: str) -> DownloadedSkill:
    """The skill ``skill_id`` and its latest version's files.

    Raises:
        PlanError: no such skill, or its version cannot be read as a skill directory.
    """
    try:
        skill = dict(await client.skills.retrieve(skill_id))
    except NotFoundError:
        raise PlanError(f"no skill {skill_id} on the provider") from None
    source = skill.get("source")
    origin = source.get("type") if isinstance(source, dict) else source
    if origin == "anthropic":
        raise PlanError(
            f"{skill_id} is one of Anthropic's skills: read-only and in every workspace, it is "
            "not adopted (nothing was imported). Agents name it as it is: "
            f"{{type: anthropic, skill_id: {skill_id}}}"
        )
    if origin not in (None, "custom"):
        raise PlanError(
            f"skill {skill_id} is not a custom skill (its source is {origin}); only custom "
            "skills can be imported (nothing was imported)"
        )
    latest = str(skill.get("latest_version_id") or "")
    version = await client.skills.versions.retrieve(skill_id, latest)
    archive = await client.skills.versions.download(skill_id, latest)
    files: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            for name in z.namelist():
                rel = name.split("/", 1)[1] if "/" in name else name
                path = PurePosixPath(rel)
                if name.endswith("/") or path.is_absolute() or ".." in path.parts:
                    continue  # never written outside the skill's directory
                files[rel] = z.read(name)
    except zipfile.BadZipFile:
        raise PlanError(
            f"skill {skill_id}: its version {latest} did not download as a zip"
        ) from None
    return DownloadedSkill(skill, latest, str(version.get("name") or ""), files)


def refuse_left_out(manifests: Path, paths: Iterable[Path]) -> None:
    """Refuse (``PlanError``, nothing imported) to write a document where the manifests'
    ``.reconcilerignore`` (or a hidden folder) leaves it out: the next plan would not read
    it, and would offer to archive what import adopted."""
    for path in paths:
        why = left_out(manifests, path) if path.suffix.lower() in (".yaml", ".yml") else None
        if why is not None:
            raise PlanError(
                f"{path} {why} (the next plan would not read it); nothing was imported. "
                "Change that, or import into a folder the manifests read"
            )


def skill_document(name: str, source: str, found: DownloadedSkill) -> JSON:
    """The Skill document of a downloaded skill (its display name only when it is not the
    one the provider derives from the slug)."""
    spec: JSON = {"source": source}
    shown = found.skill.get("display_name")
    if shown and shown != found.slug:
        spec["display_name"] = shown
    return {"kind": "Skill", "name": name, "spec": spec}


def write_skill_files(directory: Path, found: DownloadedSkill, hint: str | None = None) -> None:
    """Write the skill's files under ``directory`` (which must not exist yet; ``hint``: what
    to do then, when not the default)."""
    if directory.exists():
        raise PlanError(
            f"{directory} already exists; nothing was imported. "
            + (hint or "Move it away, or import into another directory")
        )
    for rel, data in sorted(found.files.items()):
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def upload_leaves_out(found: DownloadedSkill, source: str, manifest_file: Path) -> str | None:
    """What the next plan will do about the written files that no upload of the skill's
    directory holds (git ignores them, as ``manifest.skilldir`` reads it; ``source`` and
    ``manifest_file``: the Skill document's, as plan reads them), or None: none, or the
    directory cannot be read (plan and validate say why)."""
    try:
        kept = {f.path for f in skill_source(SkillSpec(source=source), manifest_file).files}
    except SkillSourceError:
        return None
    paths = sorted(set(found.files) - kept)
    if not paths:
        return None
    one = len(paths) == 1
    directory = manifest_file.parent / source
    return (
        f"{len(paths)} of the files of its latest version {'is' if one else 'are'} left out "
        f"of every upload of {directory} ({files_named(paths)}: git ignores "
        f"{'it' if one else 'them'}); the next plan shows a new version without "
        f"{'it' if one else 'them'}"
    )


def skill_adoption(address: str, found: DownloadedSkill, document: JSON) -> Adopt:
    """Adopt a downloaded skill as ``address``: nothing is sent (a skill has no tags); the
    lockfile records its id, slug and latest version as holding these files."""
    [res] = desired_resources([Document.model_validate(document)])
    shas = found.shas
    target = Target(
        spec_digest=desired_digest(res),
        remote_name=res.remote_name,
        protect=res.protect,
        skill=SkillTarget(
            slug=found.slug, digest=files_digest(shas), files=shas, version_id=found.version_id
        ),
    )
    return Adopt(
        address=address,
        kind="skill",
        reason="import: an existing skill, taken under management",
        remote_id=str(found.skill["id"]),
        target=target,
    )


def imported_skill(name: str, found: DownloadedSkill, source: str) -> tuple[ImportedDocument, JSON]:
    """The derived document of an unmanaged skill (``import --all-unmanaged``)."""
    data = skill_document(name, source, found)
    resource = ImportedResource(f"skill.{name}", "skill", str(found.skill["id"]))
    return ImportedDocument("Skill", name, data, (resource,)), data


async def import_skill(
    ws: Settings,
    address: str,
    remote_id: str,
    *,
    force: bool = False,
    allow_origin_change: bool = False,
) -> ImportResult:
    """``import skill.NAME ID`` (see the module docstring).

    Raises:
        PlanError: no such skill, (without ``force``) the address or the id is recorded
            otherwise or another project's agents use the skill, or the directory or
            document to write exists already.
    """
    name = address.split(".", 1)[1]
    declared = {d.address: d for d in read_documents(ws, missing_ok=True)}
    warnings: list[str] = []
    with import_lock(ws, allow_change=allow_origin_change) as (lock, store, lockfile, origin):
        if not needs_import(lockfile, address, remote_id, force):
            return ImportResult(adopted=(), already=True)
        async with connect(ws) as client:
            found = await download_skill(client, remote_id)
            # a skill has no tags: the agents that use it say whose it is, as an agent's
            # own tags do for `import agent.X` (refused without --force)
            _, theirs = skill_users(await client.agents.list().to_list(), ws.project)
            user = theirs.get(remote_id)
            if user is not None and not force:
                raise PlanError(
                    f"{remote_id} is used by {user}: it is that project's skill; pass that "
                    "--project to manage it there, or --force to take it over"
                )
            if user is not None:
                warnings.append(
                    f"{remote_id} is now recorded by project {ws.project!r} as well, though "
                    f"{user} uses it: both projects' applies may upload new versions of it "
                    "(`reconciler --project ... state rm ...` there forgets it)"
                )
            doc = declared.get(address)
            if doc is not None:
                document = doc.model_dump(mode="json", exclude_defaults=True)
            else:
                document = skill_document(name, name, found)
                directory = Path(ws.manifests) / SKILLS_DIR
                target = directory / f"{name}.yaml"
                refuse_left_out(Path(ws.manifests), [target])
                if target.exists():
                    raise PlanError(f"{target} already exists; nothing was imported")
                write_skill_files(
                    directory / name,
                    found,
                    "Move it away, import the skill under another name (reconciler import "
                    f"skill.OTHER {remote_id}), or write a Skill document for it first (import "
                    "then keeps the directory it names)",
                )
                left = upload_leaves_out(found, name, target)
                header = (
                    f"# Imported by `reconciler import {address} {remote_id}`: the live "
                    "resource.\n# Review and commit; `reconciler plan` should show no changes"
                )
                header += (  # what plan will show instead, as `import --all-unmanaged` says it
                    ", except:\n"
                    + "\n".join(
                        textwrap.wrap(
                            f"{address}: {left}.",
                            88,
                            initial_indent="# - ",
                            subsequent_indent="#   ",
                        )
                    )
                    + "\n"
                    if left
                    else ".\n"
                )
                write_text_atomic(target, header + dump_documents([document]))
                warnings.append(
                    f"wrote {directory / name} ({_files(len(found.files))} of its latest "
                    f"version {found.version_id}) and its document {target}"
                )
                warnings += [f"{address}: {left}"] if left else []
            action = skill_adoption(address, found, document)
            report = await run_adoptions(client, store, lock, [action], ws.project, origin=origin)
    outcome = report.outcome(address)
    if outcome is None or not outcome.ok:
        why = outcome.error if outcome is not None else "not run"
        raise ApplyError(f"import of {address} failed: {why}", failures=report.failures)
    adopted = (Adopted(address, "skill", remote_id, tagged=False),)
    return ImportResult(adopted=adopted, warnings=tuple(warnings), report=report)


def unmanaged_skill_files(out: Path, found: Mapping[str, DownloadedSkill]) -> dict[str, str]:
    """Write each imported skill's directory under ``out/skills/`` (name -> skill); name ->
    what the next plan does about files no upload holds (``upload_leaves_out``), where there are."""
    notes: dict[str, str] = {}
    for name, skill in sorted(found.items()):
        write_skill_files(out / SKILLS_DIR / name, skill)
        left = upload_leaves_out(skill, f"{SKILLS_DIR}/{name}", out / f"{SKILLS_DIR}.yaml")
        notes.update({name: left} if left else {})
    return notes


def _files(n: int) -> str:
    return "the one file" if n == 1 else f"the {n} files"
