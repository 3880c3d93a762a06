"""Plan one skill: match its live skill, then upload (a create or a new version) or nothing.

A skill (provider-wire.md §15) carries no metadata, so it cannot be matched by ownership tags
as the other kinds are: the lockfile entry is its ownership (its id, and each version this
project uploaded with its digest and files). Without an entry, the skill is found again by
its slug only where the state was lost (``may_find_by_slug``: a state never written, or a
pending intent for the address, i.e. an upload whose lockfile write was lost): the live
skill, recorded by no other address, whose latest version's ``name`` is the slug of the
manifest's SKILL.md (``Observed.skill_versions``, filled by ``app.skills``). It is never
uploaded as a twin. The agents that use a skill carry tags, and they are the only evidence
of whose it is (``skill_users``): a skill another project's agents use is that project's,
never found by slug (this project's skill is created beside it, and the plan says why); one
this project's agents use is this project's. Where no agent tells, ``app.skills`` refuses a
plan that would upload a new version into the skill found by slug. Anywhere else a slug proves nothing (slugs are not unique, and a
hand-made skill or another project's may carry it): ``app.skills.check_skills`` refuses such
a plan before it is built, and says how to adopt the skill (``reconciler import``).

Whether to upload is decided by content (``manifest.skill.skill_step``): the live latest
version is one this project uploaded with the same digest (nothing), another digest (a new
version, the plan saying which files changed), or a version this project did not upload
(drift: a new version restores the manifest's files). A live latest holding exactly the
manifest's files, as downloaded, is recorded as is and nothing is uploaded. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from reconciler.engine.desired import DesiredResource, desired_digest
from reconciler.engine.inputs import PlanInputs
from reconciler.engine.model import (
    FOUND_BY_SLUG,
    Create,
    FieldChange,
    NoOp,
    SkillTarget,
    Target,
    Update,
)
from reconciler.engine.refresh import Observed
from reconciler.jsontypes import JSON
from reconciler.kinds import owner_of
from reconciler.manifest.skill import (
    SkillLock,
    SkillStep,
    UploadedVersion,
    files_named,
    skill_step,
)
from reconciler.manifest.skilldir import SkillSource
from reconciler.state import LockEntry, Lockfile

__all__ = [
    "FOUND_BY_SLUG",
    "SkillPlan",
    "may_find_by_slug",
    "plan_skill",
    "refused_by_slug",
    "skill_by_slug",
    "skill_users",
    "unrecorded_by_slug",
]


def may_find_by_slug(lockfile: Lockfile | None, address: str) -> bool:
    """Whether the skill of ``address`` may be found again by its slug: only when the state
    was lost (never written: a deleted lockfile, a fresh backend) or an upload of it was sent
    and not recorded (a pending intent). A skill has no tags, so anywhere else a live skill
    with the slug is someone else's until ``reconciler import`` adopts it."""
    return lockfile is None or not lockfile.written or address in lockfile.pending


def skill_users(agents: Iterable[JSON], project: str) -> tuple[set[str], dict[str, str]]:
    """Whose each used skill is, by the tags of the live agents that use it: the ids that
    agents of ``project`` use, and for those only other projects' agents use, one of them
    (``agent.helper of project "team-a"``)."""
    ours: set[str] = set()
    theirs: dict[str, str] = {}
    for agent in agents:
        owner = owner_of(agent)
        if agent.get("archived_at") or owner is None or owner.project is None:
            continue
        for skill in agent.get("skills") or ():
            if not isinstance(skill, dict) or skill.get("type") != "custom":
                continue
            skill_id = str(skill.get("skill_id"))
            if owner.project == project:
                ours.add(skill_id)
            else:
                who = owner.address or f"agent {agent.get('name') or agent['id']}"
                theirs.setdefault(skill_id, f'{who} of project "{owner.project}"')
    return ours, {k: v for k, v in theirs.items() if k not in ours}


def refused_by_slug(
    observed: Observed, lockfile: Lockfile, slug: str, digest: str, address: str, project: str
) -> tuple[JSON, bool] | None:
    """The live skill with a declared skill's ``slug`` that plan refuses to take for
    ``address`` (which has no live recorded skill), and whether the state was lost; None
    when there is none. ``app.skills`` refuses the plan naming it, ``app.drift`` reports it
    unmanaged with the same ``reconciler import``: neither takes it as this project's.

    Where the state was lost (``may_find_by_slug``), the skill found by the slug is
    refused unless an agent of this project uses it or its latest version holds exactly
    the manifest's files (``digest``) or the files the pending intent of ``address`` says a
    killed apply uploaded (its create's ``digest``); anywhere else any unrecorded skill with the slug is
    refused. A skill another project's agents use is theirs, never refused nor taken."""
    ours, theirs = skill_users(observed.all("agent"), project)
    skills, versions = observed.all("skill"), observed.skill_versions
    if may_find_by_slug(lockfile, address):
        found = unrecorded_by_slug(skills, lockfile, versions, slug, set(theirs), digest)
        if found is None or found["id"] in ours:
            return None
        seen = versions.get(found["id"]) or {}
        latest = seen.get("id") == found.get("latest_version_id")
        if latest and seen.get("digest") == digest:
            return None  # it holds exactly the manifest's files: recorded, nothing written to it
        intent = lockfile.pending.get(address)
        uploaded = intent.digest if intent is not None else None
        if latest and uploaded is not None and seen.get("digest") == uploaded:
            # the files an apply that died before recording its create uploaded: its skill
            return None
        return found, True
    other = unrecorded_by_slug(skills, lockfile, versions, slug, set(theirs))
    return (other, False) if other is not None else None


class SkillPlan:
    """What planning one skill gives the planner: its action, the live skill, the remote id,
    the newest version after apply (None while only apply can know it), and the old address
    of a skill the plan moves."""

    __slots__ = ("action", "live", "moved_from", "remote_id", "version")

    def __init__(
        self,
        action: Create | Update | NoOp,
        live: JSON | None,
        remote_id: str | None,
        version: str | None,
        moved_from: str | None = None,
    ) -> None:
        self.action = action
        self.live = live
        self.remote_id = remote_id
        self.version = version
        #: the old address whose skill this is (``moved_from``), when the plan moves it
        self.moved_from = moved_from


def plan_skill(
    inputs: PlanInputs, res: DesiredResource, claimed: Collection[str] = ()
) -> SkillPlan:
    """Match, compare and decide one skill (see the module docstring); ``claimed``: the
    remote ids other addresses of this plan took already (never found again by slug)."""
    source = inputs.skills.get(res.address)
    if source is None:
        return _unread(inputs, res)
    files = {f.path: f.sha256 for f in source.files}
    entry = inputs.entry(res.address)
    moved_from = None
    if (entry is None or entry.kind != "skill") and res.moved_from is not None:
        old = inputs.entry(res.moved_from)
        if old is not None and old.kind == "skill" and old.id in inputs.live.get("skill", {}):
            entry, moved_from = old, res.moved_from  # a rename: the same skill, no twin
    obj: JSON | None = None
    why = f"{res.address} is new in the manifests"
    if entry is not None and entry.kind == "skill":
        obj = inputs.live.get("skill", {}).get(entry.id)
        if obj is None:
            why = f"the recorded skill {entry.id} no longer exists"
    found = False
    if obj is None and may_find_by_slug(inputs.lockfile, res.address):
        _, theirs = skill_users(inputs.live.get("agent", {}).values(), inputs.options.project)
        obj = skill_by_slug(inputs, source.slug, {*claimed, *theirs}, source.digest)
        found = obj is not None
        other = None if found else skill_by_slug(inputs, source.slug, claimed, source.digest)
        if other is not None:
            why += (
                f"; a live skill with the slug {source.slug} ({other['id']}) is another "
                f"project's ({theirs[other['id']]} uses it): left alone"
            )
    target = Target(
        spec_digest=desired_digest(res),
        protect=res.protect,
        remote_name=res.remote_name,
        skill=SkillTarget(slug=source.slug, digest=source.digest, files=files),
    )
    if obj is None:
        body: JSON = {"files": {"$files": res.address}}
        if res.spec.get("display_name"):
            body["display_name"] = res.spec["display_name"]
        if entry is None:
            why += _rename_hint(inputs, source.slug)
        create = Create(address=res.address, kind="skill", reason=why, body=body, target=target)
        return SkillPlan(create, None, None, None)
    return _decide(inputs, res, source, obj, target, found, entry, moved_from)


def _rename_hint(inputs: PlanInputs, slug: str) -> str:
    """For a skill new in the manifests: the recorded skill of the same slug that no document
    declares or moves from any more (live still), which a rename without ``moved_from``
    leaves behind; a create would make a second skill of that slug beside it."""
    entries = inputs.lockfile.resources if inputs.lockfile is not None else {}
    taken = {r.moved_from for r in inputs.desired.values()}
    for address, entry in sorted(entries.items()):
        if (
            entry.kind == "skill"
            and entry.slug == slug
            and address not in inputs.desired
            and address not in taken
            and entry.id in inputs.live.get("skill", {})
        ):
            name = address.split(".", 1)[1]
            return (
                f"; {address}, no longer in the manifests, is a skill of the same slug {slug}: "
                f"if this is a rename, `moved_from: {name}` keeps that skill (else apply "
                "creates a second one beside it)"
            )
    return ""


def _unread(inputs: PlanInputs, res: DesiredResource) -> SkillPlan:
    """A skill whose directory the caller did not read (documents without their
    ``ManifestSet.skills``): its content cannot be judged, so its recorded skill is kept as
    it is, and a missing one is a create whose files apply reads."""
    entry = inputs.entry(res.address)
    obj = inputs.live.get("skill", {}).get(entry.id) if entry is not None else None
    target = Target(spec_digest=desired_digest(res), protect=res.protect)
    if obj is None:
        why = f"{res.address} has no live skill (its files were not read by this plan)"
        body: JSON = {"files": {"$files": res.address}}
        create = Create(address=res.address, kind="skill", reason=why, body=body, target=target)
        return SkillPlan(create, None, None, None)
    latest = obj.get("latest_version_id")
    noop = NoOp(
        address=res.address,
        kind="skill",
        remote_id=obj["id"],
        reason="its files were not read by this plan: left as it is",
        live_marker=latest,
    )
    return SkillPlan(noop, obj, obj["id"], latest)


def skill_by_slug(
    inputs: PlanInputs, slug: str, claimed: Collection[str] = (), digest: str | None = None
) -> JSON | None:
    """``unrecorded_by_slug`` over the plan's inputs."""
    return unrecorded_by_slug(
        inputs.live.get("skill", {}).values(),
        inputs.lockfile,
        inputs.skill_versions,
        slug,
        claimed,
        digest,
    )


def unrecorded_by_slug(
    skills: Iterable[JSON],
    lockfile: Lockfile | None,
    versions: Mapping[str, JSON],
    slug: str,
    claimed: Collection[str] = (),
    digest: str | None = None,
) -> JSON | None:
    """The live skill whose latest version is named ``slug``, that no lockfile entry records
    and no other address took (``claimed``): one whose latest holds ``digest`` (the
    manifest's files) first, else the newest. Two documents may share a slug (two hand-made
    skills imported): each finds its own skill, not both the newest. ``versions``
    (``Observed.skill_versions``) says the names (and digests) refresh could read."""
    entries = lockfile.resources.values() if lockfile is not None else ()
    recorded = {e.id for e in entries if e.kind == "skill"} | set(claimed)
    named = [
        skill
        for skill in skills
        if skill["id"] not in recorded and (versions.get(skill["id"]) or {}).get("name") == slug
    ]

    def rank(skill: JSON) -> tuple[bool, str, str]:
        seen = versions.get(skill["id"]) or {}
        holds = digest is not None and seen.get("digest") == digest
        return holds, str(skill.get("created_at")), skill["id"]

    return max(named, key=rank) if named else None


def _decide(
    inputs: PlanInputs,
    res: DesiredResource,
    source: SkillSource,
    obj: JSON,
    target: Target,
    found: bool,
    entry: LockEntry | None,
    moved_from: str | None,
) -> SkillPlan:
    latest = obj.get("latest_version_id")
    ours = entry is not None and entry.id == obj["id"]
    uploaded = entry.uploaded if entry is not None and ours else {}
    versions = {v: UploadedVersion(u.digest, dict(u.files)) for v, u in uploaded.items()}
    seen = inputs.skill_versions.get(obj["id"]) or {}
    intent = inputs.lockfile.pending.get(res.address) if inputs.lockfile is not None else None
    if (
        found
        and intent is not None
        and intent.digest is not None
        and seen.get("id") == latest
        and seen.get("digest") == intent.digest
        and isinstance(seen.get("files"), Mapping)
    ):
        # the upload of an apply that died before recording it: this project's version
        files = {str(k): str(v) for k, v in dict(seen["files"]).items()}
        versions[str(latest)] = UploadedVersion(intent.digest, files)
    lock = SkillLock(obj["id"], versions)
    holds_ours = seen.get("id") == latest and seen.get("digest") == source.digest
    step = skill_step(lock, source, latest)
    if step.action != "none" and holds_ours:
        step = SkillStep("none")  # the live latest holds exactly these files: record it
    elif step.foreign_latest and isinstance(seen.get("files"), Mapping) and seen["id"] == latest:
        added, changed, removed = source.changed_files(dict(seen["files"]))
        step = SkillStep("new_version", tuple(sorted({*added, *changed, *removed})), True)
    common = {
        "address": res.address,
        "kind": "skill",
        "remote_id": obj["id"],
        "moved_from": moved_from,
    }
    tail = f"; found by its slug {source.slug} (the lockfile had no entry)" if found else ""
    if moved_from is not None:
        tail = f"; moved from {moved_from}: the same skill (nothing deleted or created)"
    elif (
        ours
        and entry is not None
        and entry.latest not in (None, latest)
        and (latest in uploaded or seen.get("deleted") == entry.latest)
    ):
        # over an older upload of ours, or over one made by hand (the reason names that one)
        tail = f"; its latest version {entry.latest} was deleted behind git's back"
    if step.action == "none":
        recorded = latest in uploaded and not found
        needs_record = (
            not recorded
            or entry is None
            or moved_from is not None
            or entry.spec_digest != target.spec_digest
            or entry.protect != res.protect
            or entry.slug != source.slug
            or entry.latest not in (None, latest)  # older entries: recorded at the next upload
            or inputs.pending(res.address)
        )
        reason = "up to date" if recorded else _recorded_reason(latest, found, source.slug)
        if moved_from is not None:
            reason = f"moved from {moved_from}: the same skill, its files unchanged (nothing "
            reason += "deleted, created or uploaded); apply moves the lockfile entry"
        skill = target.skill.model_copy(update={"version_id": latest}) if target.skill else None
        noop = NoOp(
            reason=reason,
            target=target.model_copy(update={"skill": skill}) if needs_record else None,
            live_marker=latest,
            **common,
        )
        return SkillPlan(noop, obj, obj["id"], latest, moved_from)
    update = Update(
        reason=_version_reason(step, latest) + tail,
        changes=_file_changes(source, lock, seen, latest),
        body={"files": {"$files": res.address}, "after_version": latest},
        target=target,
        live_marker=latest,
        labels=("files",),
        **common,
    )
    return SkillPlan(update, obj, obj["id"], None, moved_from)


def _recorded_reason(latest: str | None, found: bool, slug: str) -> str:
    if found:
        return (
            f"{FOUND_BY_SLUG} {slug} (the lockfile had no entry); its latest version "
            f"{latest} holds the manifest's files: recorded, nothing uploaded"
        )
    return (
        f"its latest version {latest} holds the manifest's files but is not recorded (an "
        "upload whose lockfile write was lost): recorded, nothing uploaded"
    )


def _version_reason(step: SkillStep, latest: str | None) -> str:
    if not step.foreign_latest:
        return step.summary()
    n = len(step.changed)
    differ = "file differs" if n == 1 else "files differ"
    files = f"; {n} {differ}: {files_named(step.changed)}" if n else ""
    return f"new version (the live latest version {latest} was not uploaded by this project{files})"


def _file_changes(
    source: SkillSource, lock: SkillLock, seen: Mapping[str, object], latest: str | None
) -> tuple[FieldChange, ...]:
    """One change per file added, changed or removed since the live latest version (its
    path, and the sha256 before and after: never the content)."""
    ours = lock.versions.get(latest) if latest is not None else None
    before = ours.files if ours is not None else None
    if before is None and seen.get("id") == latest and isinstance(seen.get("files"), Mapping):
        before = {str(k): str(v) for k, v in dict(seen["files"]).items()}  # type: ignore[call-overload]
    if before is None:
        return ()
    now = {f.path: f.sha256 for f in source.files}
    added, changed, removed = source.changed_files(before)
    out = [FieldChange(op="add", path=p, new=f"sha256:{now[p]}") for p in added]
    out += [
        FieldChange(op="change", path=p, old=f"sha256:{before[p]}", new=f"sha256:{now[p]}")
        for p in changed
    ]
    out += [FieldChange(op="remove", path=p, old=f"sha256:{before[p]}") for p in removed]
    return tuple(sorted(out, key=lambda c: c.path))
