"""Files a manifest names by id (a deployment's ``{type: file, file_id}`` resources, an
outcome rubric given as a file) are checked at plan, each at the place it is written.

Files are no managed kind: they are uploaded by people or programs, and a manifest names
them by id. The provider refuses a deployment whose file does not exist or has expired, so a
plan that let it through would fail halfway through apply (after creating what the
deployment needs) with a bare 404. One list of the named ids (``GET /v1/files?ids[]=``,
100 a page) is asked only when some manifest names a file.

Custom skills (an agent's ``{type: custom, skill_id}``) and memory stores (a deployment's
``{type: memory_store, memory_store_id}``) named by id are refused the same way when they do
not exist (or the store is archived), against the lists the plan reads anyway
(``check_listed_refs``: no request of its own). An Anthropic skill id (``{type: anthropic,
skill_id}``) that Anthropic does not serve is refused too, against one list of Anthropic's
skills (``source=anthropic``), asked only when some agent names one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reconciler.engine.refresh import Observed
from reconciler.errors import PlanError
from reconciler.manifest import ManifestSet
from reconciler.manifest.agent import AgentSpec, Skill
from reconciler.manifest.deployment import (
    DefineOutcomeEvent,
    DeploymentSpec,
    FileResource,
    FileRubric,
    MemoryStoreResource,
)
from reconciler.manifest.messages import did_you_mean

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient

#: ids the Files API takes in one ``ids[]`` list
IDS_PER_PAGE = 100


def file_refs(manifests: ManifestSet) -> Iterator[tuple[str, str, str]]:
    """``(address, spec path, file id)`` of every file a deployment names."""
    for doc in manifests.by_kind("Deployment"):
        spec = doc.spec
        if not isinstance(spec, DeploymentSpec):
            continue
        for i, resource in enumerate(spec.resources or ()):
            if isinstance(resource, FileResource):
                yield doc.address, f"resources[{i}].file_id", resource.file_id
        for i, event in enumerate(spec.initial_events):
            if isinstance(event, DefineOutcomeEvent) and isinstance(event.rubric, FileRubric):
                yield doc.address, f"initial_events[{i}].rubric.file_id", event.rubric.file_id


async def check_file_refs(client: ProviderClient, manifests: ManifestSet) -> None:
    """Refuse a file id that names no file, or an expired one, at its ``file:line:col``.

    Raises:
        PlanError: the first such reference.
    """
    refs = list(file_refs(manifests))
    if not refs:
        return
    wanted = sorted({file_id for _, _, file_id in refs})
    found: dict[str, str | None] = {}
    for start in range(0, len(wanted), IDS_PER_PAGE):
        async for meta in client.files.list_ids(wanted[start : start + IDS_PER_PAGE]):
            found[str(meta["id"])] = meta.get("expires_at")
    now = datetime.now(UTC)
    for address, path, file_id in refs:
        if file_id not in found:
            problem = "does not exist (upload it first, or fix the id)"
        elif _expired(found[file_id], now):
            problem = f"expired at {found[file_id]} (upload it again and name the new id)"
        else:
            continue
        where = manifests.location(address, path)
        raise PlanError(f"{where}: {address}: file {file_id} {problem}")


def _expired(expires_at: str | None, now: datetime) -> bool:
    if not expires_at:
        return False
    try:
        return datetime.fromisoformat(expires_at) <= now
    except ValueError:
        return False


def check_listed_refs(manifests: ManifestSet, observed: Observed) -> None:
    """Refuse a custom skill id or a memory store id that names no live object (or an
    archived store) at its ``file:line:col``; ``observed``: the plan's lists.

    Raises:
        PlanError: the first such reference.
    """
    skills, stores = observed.index("skill"), observed.index("memory_store")
    for doc in manifests.by_kind("Agent"):
        listed = doc.spec.skills if isinstance(doc.spec, AgentSpec) else None
        for i, skill in enumerate(listed or ()):
            if isinstance(skill, Skill) and skill.type == "custom" and skill.skill_id not in skills:
                where = manifests.location(doc.address, f"skills[{i}].skill_id")
                raise PlanError(
                    f"{where}: {doc.address}: custom skill {skill.skill_id} does not exist "
                    "(deleted, or a typo); fix the id, or name a Skill manifest as {ref: NAME}"
                )
    for doc in manifests.by_kind("Deployment"):
        mounts = doc.spec.resources if isinstance(doc.spec, DeploymentSpec) else None
        for i, mount in enumerate(mounts or ()):
            if not isinstance(mount, MemoryStoreResource):
                continue
            live = stores.get(mount.memory_store_id)
            if live is None or live.get("archived_at"):
                problem = "does not exist" if live is None else "is archived"
                where = manifests.location(doc.address, f"resources[{i}].memory_store_id")
                raise PlanError(
                    f"{where}: {doc.address}: memory store {mount.memory_store_id} {problem}; "
                    "fix the id, or mount a MemoryStore manifest as {memory_store: NAME}"
                )


async def check_anthropic_skills(client: ProviderClient, manifests: ManifestSet) -> None:
    """Refuse an agent's ``{type: anthropic, skill_id}`` that names none of Anthropic's skills
    (a typo such as ``xlsxx``) at its ``file:line:col``, with the closest id; the provider
    would refuse it halfway through apply.

    Raises:
        PlanError: every such reference, one line each.
    """
    named = [
        (doc.address, i, skill.skill_id)
        for doc in manifests.by_kind("Agent")
        if isinstance(doc.spec, AgentSpec)
        for i, skill in enumerate(doc.spec.skills or ())
        if isinstance(skill, Skill) and skill.type == "anthropic"
    ]
    if not named:
        return
    ids = sorted({str(s["id"]) for s in await client.skills.list(source="anthropic").to_list()})
    problems = []
    for address, i, skill_id in named:
        if skill_id in ids:
            continue
        close = did_you_mean(skill_id, ids)
        hint = f"did you mean '{close}'?" if close else f"Anthropic's skills: {', '.join(ids)}"
        where = manifests.location(address, f"skills[{i}].skill_id")
        problems.append(
            f"{where}: {address}: Anthropic skill '{skill_id}' does not exist; {hint} "
            "(a skill you uploaded is {ref: NAME} or {type: custom, skill_id: skill_...})"
        )
    if len(problems) == 1:
        raise PlanError(problems[0])
    if problems:
        raise PlanError(f"{len(problems)} unknown Anthropic skills:\n  " + "\n  ".join(problems))
