"""The read-only inputs of one plan, indexed once: desired resources, lockfile, live objects.

``PlanInputs`` is what every step of planning reads (``planner`` per desired resource,
``prune`` per orphan, ``targets`` for ``--target``) and none of them writes: a frozen value
built from the manifests' documents, the observed live state and the lockfile. It answers
the questions those steps share: the lockfile entry of an address, the live object it
records, and whether that object is this project's (a ``Conflict`` when not). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from reconciler.engine.desired import DesiredResource, desired_resources
from reconciler.engine.gate import RecoveredRollout
from reconciler.engine.model import Conflict
from reconciler.engine.ownership import conflict, owner_problem
from reconciler.engine.refresh import Observed
from reconciler.engine.targets import closure
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_ORDER, Kind, kind_of, owned_address
from reconciler.manifest import Document
from reconciler.manifest.skilldir import SkillSource
from reconciler.state import LockEntry, Lockfile

#: ``fingerprint(address, secret_path)`` -> salted fingerprint of the current secret value
Fingerprinter = Callable[[str, str], str]


@dataclass(frozen=True)
class PlanOptions:
    project: str = "default"
    prune: bool = False
    #: with prune: delete instead of archive where the provider can delete
    delete: bool = False
    targets: tuple[str, ...] = ()
    #: move gated pins without running their checks (``apply --skip-checks``)
    skip_checks: bool = False
    #: move to held candidates again, after their checks pass (``apply --retry-held``)
    retry_held: bool = False
    #: refuse a deployment pinning a version that the agent the lockfile records, gone
    #: (archived or deleted behind our back) and created again by this plan, would not have
    #: (plan, apply); drift reports the agent gone instead. A pin beyond a live agent's
    #: versions is refused always (a mistake in the manifests)
    check_gone_pins: bool = True


@dataclass(frozen=True)
class PlanInputs:
    """Desired, recorded and live state of one plan, indexed for lookups."""

    options: PlanOptions
    desired: Mapping[str, DesiredResource]
    lockfile: Lockfile | None
    #: kind -> remote id -> live object (archived ones included)
    live: Mapping[str, Mapping[str, JSON]]
    #: (kind, address) -> live objects this project's tags claim for the address
    owned: Mapping[tuple[str, str], list[JSON]]
    fingerprint: Fingerprinter | None = None
    #: with ``--target``: the desired addresses planned for real (the rest is dropped later)
    wanted: frozenset[str] | None = None
    #: deployments without a lockfile entry: their rollout record read back from the
    #: provider (``app.heal``), which their new entry starts from
    recovered: Mapping[str, RecoveredRollout] = field(default_factory=dict)
    #: skill address -> its source directory as read at load (``ManifestSet.skills``)
    skills: Mapping[str, SkillSource] = field(default_factory=dict)
    #: skill id -> its latest version as far as refresh read it (``Observed.skill_versions``)
    skill_versions: Mapping[str, JSON] = field(default_factory=dict)
    #: memory store id -> the paths its history names (``Observed.memory_paths``)
    memory_paths: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    #: memory store id -> the paths holding a memory now (``Observed.memories_present``)
    memories_present: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        documents: Iterable[Document],
        observed: Observed,
        lockfile: Lockfile | None,
        options: PlanOptions,
        fingerprint: Fingerprinter | None = None,
        recovered: Mapping[str, RecoveredRollout] | None = None,
        skills: Mapping[str, SkillSource] | None = None,
    ) -> PlanInputs:
        owned: dict[tuple[str, str], list[JSON]] = {}
        for kind in KIND_ORDER:
            for o in observed.all(kind):
                addr = owned_address(o, options.project)
                # a tag edited by hand into no address of its kind names nothing: the object
                # is left alone, as an untagged one is (drift reports it unmanaged)
                if addr and _kind_or_none(addr) == kind:
                    owned.setdefault((kind, addr), []).append(o)
        desired = {r.address: r for r in desired_resources(documents)}
        return cls(
            options=options,
            desired=desired,
            lockfile=lockfile,
            live={k: observed.index(k) for k in KIND_ORDER},
            owned=owned,
            fingerprint=fingerprint,
            wanted=frozenset(closure(options.targets, desired)) if options.targets else None,
            recovered=dict(recovered or {}),
            skills=dict(skills or {}),
            skill_versions=observed.skill_versions,
            memory_paths=observed.memory_paths,
            memories_present=observed.memories_present,
        )

    @property
    def entries(self) -> Mapping[str, LockEntry]:
        return self.lockfile.resources if self.lockfile is not None else {}

    def entry(self, address: str) -> LockEntry | None:
        return self.entries.get(address)

    def pending(self, address: str) -> bool:
        """A create of ``address`` was sent and not recorded (a crashed apply)."""
        return self.lockfile is not None and address in self.lockfile.pending

    def recorded_object(self, address: str, kind: str) -> JSON | None:
        """The live, non-archived object the lockfile records for ``address``, if any."""
        entry = self.entry(address)
        if entry is None or entry.kind != kind:
            return None
        obj = self.live.get(kind, {}).get(entry.id)
        return obj if obj is not None and not obj.get("archived_at") else None

    def conflict(self, address: str, kind: Kind) -> Conflict | None:
        """A ``Conflict`` when the lockfile's object for ``address`` is not this project's:
        nothing may change or archive that object."""
        obj = self.recorded_object(address, kind)
        if obj is None:
            return None
        owner = owner_problem(kind, obj, self.options.project, address, self.live["vault"])
        if owner is None:
            return None
        tagged = owned_address(obj, self.options.project)
        if tagged is not None and self.unclaimed(tagged) and _kind_or_none(tagged) == kind:
            # ours, tagged for an address nothing claims any more: the entry was moved by
            # hand (``state mv``); the plan retags it (a move), it is no conflict
            return None
        return conflict(kind, address, obj, owner)

    def unclaimed(self, address: str) -> bool:
        """No document and no lockfile entry claims ``address`` (a tag naming it is stale)."""
        return address not in self.desired and address not in self.entries


def _kind_or_none(address: str) -> str | None:
    try:
        return kind_of(address)
    except ValueError:  # a tag edited by hand into no address at all
        return None


def live_marker(kind: str, obj: JSON) -> str | None:
    """What a saved plan checks before it applies: an agent's version, else ``updated_at``."""
    if kind == "agent":
        return str(obj.get("version"))
    if kind == "skill":
        return obj.get("latest_version_id")
    return obj.get("updated_at")


def rewritten_outside(entry: LockEntry | None, obj: JSON) -> str | None:
    """When a credential was written since the last apply recorded it (its ``updated_at``
    moved), that time; else None. A secret is never read back, so this is the only sign of
    one rotated behind git's back. Entries from before the stamp was kept say nothing, nor
    does an OAuth credential with ``refresh``: the provider writes its fresh tokens itself."""
    if entry is None or entry.kind != "credential" or entry.id != obj.get("id"):
        return None
    if (obj.get("auth") or {}).get("refresh"):
        return None
    stamp, live = entry.live_updated_at, obj.get("updated_at")
    return live if stamp is not None and isinstance(live, str) and live != stamp else None
