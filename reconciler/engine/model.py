"""The plan as plain, frozen data: actions, field changes, pin moves, blast radius.

Building, rendering and executing a plan all speak this vocabulary; nothing here does I/O
or decides what should change (that is ``planner``). Every model is a frozen pydantic model
with ``extra="forbid"`` so a saved plan (``plan --out``) round-trips exactly through JSON.

References inside action bodies are placeholders resolved at apply time, because an id or
an agent version may only exist once an earlier action of the same apply has run:

    {"$ref": "environment.python-data"}                 -> the remote id
    {"$pin": "agent.reviewer", "version": 5}            -> {"type": "agent", "id": ..., "version": 5}
    {"$pin": "agent.reviewer", "version": None}         -> ... "version": <latest after apply>
    {"$secret": "auth.token"}                           -> the secret value, read at apply time
    {"$skill": "skill.pdf-tools", "version": None}      -> {"type": "custom", "skill_id": ...,
                                                            "version": <newest after apply>}
    {"$files": "skill.pdf-tools"}                       -> the skill's files, read at apply time
    {"$literal": {"$ref": "#/$defs/q"}}                 -> {"$ref": "#/$defs/q"}, as written

A mapping of the manifest that carries one of these keys (a JSON Schema ``$ref`` in a custom
tool's ``input_schema``) is wrapped in ``$literal``, so it is never taken for a placeholder.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from reconciler.engine.gate import Gate, GateMode, HeldCandidate, RecoveredRollout
from reconciler.kinds import KIND_INFO, Kind, noun
from reconciler.lean import LeanModel
from reconciler.manifest.skill import new_version_words

#: the key of a manifest value that looks like a placeholder, kept as written (see above)
LITERAL = "$literal"
#: keys that make a mapping of an action body a placeholder (or, in the manifest, a literal)
PLACEHOLDER_KEYS = frozenset({"$ref", "$pin", "$secret", "$skill", "$files", LITERAL})


class Frozen(LeanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldChange(Frozen):
    """One difference at one path. ``path`` is dotted with ``[i]``/``[key]`` for items.

    Example: ``FieldChange(op="change", path="model.id", old="claude-sonnet-4-5",
    new="claude-sonnet-4-6")``. ``sensitive`` values are never stored: old/new are None.
    """

    op: Literal["add", "remove", "change"]
    path: str
    old: Any = None
    new: Any = None
    sensitive: bool = False


#: how the reason of a skill found again without a lockfile entry starts (renderers say it)
FOUND_BY_SLUG = "found by its slug"
#: the start of the note of a ``moved_from`` with nothing left to move (a move done already)
NOTHING_TO_MOVE = "moved_from names "


def found_by(kinds: Iterable[str]) -> str:
    """How live objects of ``kinds`` are found without the state, for messages: ``their
    ownership tags``; ``their slug`` for kinds that carry no metadata (skills); both when
    ``kinds`` mixes them."""
    infos = [KIND_INFO[k] for k in kinds if k in KIND_INFO]
    untagged = sorted({noun(i.kind) for i in infos if not i.has_metadata})
    if not untagged:
        return "their ownership tags"
    if all(not i.has_metadata for i in infos):
        return "their slug"
    return f"their ownership tags, {' and '.join(untagged)}s by their slug"


class SkillTarget(Frozen):
    """What the lockfile records for a skill once its action succeeds: its slug, and the
    version holding the manifest's files with their digest and each file's sha256."""

    slug: str
    digest: str
    files: dict[str, str] = Field(default_factory=dict)
    #: the live version that holds these files already (recorded without an upload); None
    #: when the version is the one this action uploads
    version_id: str | None = None


class Target(Frozen):
    """What the lockfile records for an address once its action succeeds."""

    spec_digest: str
    protect: bool = False
    remote_name: str | None = None
    secret_fingerprints: dict[str, str] = Field(default_factory=dict)
    #: agent address -> pinned version, or None to follow latest (resolved at apply)
    pins: dict[str, int | None] = Field(default_factory=dict)
    #: deployments found again after a lost lockfile: the rollout record the provider kept
    recovered: RecoveredRollout | None = Field(default=None, exclude_if=lambda v: v is None)
    #: skills: the slug and the version of the manifest's files
    skill: SkillTarget | None = Field(default=None, exclude_if=lambda v: v is None)
    #: agents: skill address -> pinned version id, or None to follow the newest (resolved
    #: at apply, and recorded)
    skills: dict[str, str | None] = Field(default_factory=dict, exclude_if=lambda v: not v)
    #: memory stores: the paths of the manifest's seeds, written once apply succeeds
    seeds: tuple[str, ...] | None = Field(default=None, exclude_if=lambda v: v is None)


class _Action(Frozen):
    address: str
    kind: Kind
    reason: str
    #: addresses whose actions must finish first (references, parent vault)
    depends_on: tuple[str, ...] = ()
    #: address of the parent (a credential's vault), resolved to ``parent_id`` at apply
    parent: str | None = None
    parent_id: str | None = None


class Create(_Action):
    type: Literal["create"] = "create"
    body: dict[str, Any]
    target: Target


class _Changed(_Action):
    """A live object that differs from its manifest, brought to ``target``: the fields both
    actions made from one comparison (``engine.resource``) carry, an update or a replace."""

    remote_id: str
    changes: tuple[FieldChange, ...]
    #: the request: an update's changed top-level fields (metadata as a patch), or a
    #: replace's create body
    body: dict[str, Any]
    target: Target
    #: live agent version or updated_at the plan was made from (saved-plan staleness check)
    live_marker: str | None = None
    #: a move (``moved_from``): the address whose object this is; its lockfile entry moves
    #: here (an update retags and renames the object in place; a replace forgets the old
    #: address's entry)
    moved_from: str | None = None


class Update(_Changed):
    type: Literal["update"] = "update"
    #: agents: live version (sent as the precondition) and the version it will become
    from_version: int | None = None
    to_version: int | None = None
    #: what kind of change, for reviewers: "model", "system", "tools", "metadata", ...
    labels: tuple[str, ...] = ()
    #: deployments: the pin moves only once this gate's checks pass (``engine.gate``)
    gate: Gate | None = None


class Replace(_Changed):
    """Immutable field changed: archive (credentials: delete) the old one, then create."""

    type: Literal["replace"] = "replace"


class _Removal(_Action):
    remote_id: str
    live_marker: str | None = None
    #: the object is archived or gone already (``engine.prune``): apply only forgets its
    #: lockfile entry (the request, if sent, changes nothing). Left out of a dump when
    #: false, so a plan file without one reads as it did before the field existed
    forgets: bool = Field(default=False, exclude_if=lambda v: not v)


class Archive(_Removal):
    type: Literal["archive"] = "archive"


class Delete(_Removal):
    type: Literal["delete"] = "delete"


#: how the reason of an archive or delete of an object archived or gone already begins
#: (``engine.prune``); plan files written before ``forgets`` existed are read by it
#: (``app.planfile``)
ALREADY_REMOVED = "removed from the manifests and already "


def forgets_only(action: _Action) -> bool:
    """Whether ``action`` archives or deletes an object archived or gone already: it only
    forgets the lockfile entry, and the summaries say so instead of "archived"."""
    return isinstance(action, Archive | Delete) and action.forgets


class NoOp(_Action):
    """Nothing to send; apply still records ``target`` (e.g. adopted after a lost lockfile)."""

    type: Literal["noop"] = "noop"
    remote_id: str
    target: Target | None = None
    version: int | None = None
    live_marker: str | None = None
    #: a move whose remote half is done (the object already carries the new address's tag,
    #: e.g. an apply killed before its lockfile write): apply moves the lockfile entry only
    moved_from: str | None = None


class Adopt(_Action):
    """Take an existing live object under management (``reconciler import``): write this
    project's ownership tags (and, from ``import --all-unmanaged``, the fields its derived
    manifest sets) with one update, then record ``target`` for the address.

    ``body`` is the update request (``metadata`` as a patch); empty when the object already
    carries the tags, and then nothing is sent. Tagging an agent saves a new version: the
    lockfile records the version the update returned (``version`` when nothing is sent).
    """

    type: Literal["adopt"] = "adopt"
    remote_id: str
    body: dict[str, Any] = Field(default_factory=dict)
    target: Target
    #: agents: the live version the adoption was planned from
    version: int | None = None
    #: with ``--force``: whose the object was (``project 'other' (agent.x)``), else None
    previous_owner: str | None = None
    live_marker: str | None = None


Action = Annotated[
    Create | Update | Replace | Archive | Delete | NoOp | Adopt, Field(discriminator="type")
]
CHANGE_TYPES: frozenset[str] = frozenset(
    {"create", "update", "replace", "archive", "delete", "adopt"}
)


class PinMove(Frozen):
    """A deployment's agent version changes: ``reviewer@4 -> reviewer@5``."""

    deployment: str
    agent: str
    old: int | None
    new: int | None  # None: follows latest, concrete number known only at apply
    follows_latest: bool
    #: check sessions apply runs on the candidate before it moves the pin (``rollout``)
    checks: int = 0
    #: how a gated move is carried out (``engine.gate.GateMode``); None: not gated
    gate: GateMode | None = None


class Impact(Frozen):
    """A deployment that uses a changed or archived resource."""

    deployment: str
    #: True: follows ``latest`` (affected by this apply); False: pinned, not affected yet
    follows_latest: bool
    pinned_version: int | None = None


class BlastRadius(Frozen):
    address: str
    deployments: tuple[Impact, ...]


class Note(Frozen):
    """Something the plan left alone on purpose, and how to act on it."""

    address: str
    kind: Kind
    remote_id: str | None = None
    message: str


class Twin(Frozen):
    """A second live object claiming an address this project manages (two applies that did
    not share a lockfile each created one). ``kept_id`` is the object the plan manages (the
    one the lockfile holds, else the newest); ``remote_id`` is the twin, which
    ``apply --prune`` archives."""

    address: str
    kind: Kind
    remote_id: str
    kept_id: str
    message: str


class Conflict(Frozen):
    """A lockfile entry whose live object this project does not own: never changed or
    archived. ``owner`` says whose it is (``project "other" as agent.x``, ``nobody``)."""

    address: str
    kind: Kind
    remote_id: str
    owner: str
    message: str


class PolicyWarning(Frozen):
    """An ``advisory`` policy rule a resource breaks: shown in the plan, never blocking."""

    address: str
    #: where the resource's document is written, ``file:line:col``
    location: str
    policy: str
    #: ``rule 'name'`` or ``rule 2``
    rule: str
    message: str


class ChainAgent(Frozen):
    """An agent in a skill's chain: it follows the skill's newest version, so it gets a new
    version of its own (``version 3 -> 4``)."""

    agent: str
    from_version: int | None = None
    to_version: int | None = None


class SkillChain(Frozen):
    """One skill's new version and what it reaches, read in one place: the agents that
    follow the skill's newest version (each updated), then the pin moves of the deployments
    that follow those agents."""

    skill: str
    #: ``new version (2 files changed: fill.py, forms/w9.json)``
    summary: str
    agents: tuple[ChainAgent, ...] = ()
    pin_moves: tuple[PinMove, ...] = ()


def skill_version_words(changes: tuple[FieldChange, ...]) -> str:
    """``new version (2 files changed: fill.py, forms/w9.json)``: a skill upload in a few
    words, from its file changes (none known: the live latest was uploaded out of band)."""
    paths = [c.path for c in changes]
    if not paths:
        return "new version (the live latest version was not uploaded by this project)"
    return new_version_words(paths)


class PlanSummary(Frozen):
    create: int = 0
    update: int = 0
    replace: int = 0
    archive: int = 0
    delete: int = 0
    noop: int = 0
    #: only ``import`` plans adopt; left out of dumps so the JSON summary keeps its six keys
    adopt: int = Field(default=0, exclude=True)
    #: of the above, how many move an address (``moved_from``); said only when some do
    moved: int = Field(default=0, exclude=True)
    #: the type (``archive``, ``delete``) of each of the above that only forgets the entry of
    #: an object archived or gone already (``forgets_only``): said as "N to forget"
    forgets: tuple[str, ...] = Field(default=(), exclude=True)

    def __str__(self) -> str:
        parts = [f"{self.create} to create", f"{self.update} to update"]
        if self.replace:
            parts.append(f"{self.replace} to replace")
        parts.append(f"{self.archive - self.forgets.count('archive')} to archive")
        delete = self.delete - self.forgets.count("delete")
        if delete:
            parts.append(f"{delete} to delete")
        if self.forgets:
            parts.append(f"{len(self.forgets)} to forget")
        if self.adopt:
            parts.append(f"{self.adopt} to adopt")
        if self.moved:
            parts.append(f"{self.moved} moved")
        return "Plan: " + ", ".join(parts) + "."


class Plan(Frozen):
    """What apply would do, and why. Pure data: render it or execute it."""

    format_version: int = 1
    project: str = "default"
    #: lockfile the plan was made from (saved plans refuse to apply to another lineage)
    lineage: str | None = None
    serial: int = 0
    prune: bool = False
    targets: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    pin_moves: tuple[PinMove, ...] = ()
    blast_radius: tuple[BlastRadius, ...] = ()
    notes: tuple[Note, ...] = ()
    #: live objects that claim an address another live object holds (see ``Twin``)
    twins: tuple[Twin, ...] = ()
    #: lockfile entries pointing at objects this project does not own (see ``Conflict``)
    conflicts: tuple[Conflict, ...] = ()
    #: with ``targets``: addresses left out of the plan that have changes of their own
    untargeted: tuple[str, ...] = ()
    #: advisory policy rules that resources break (mandatory ones stop the plan instead)
    policy_warnings: tuple[PolicyWarning, ...] = ()
    #: candidates the lockfile holds: their deployments' pins stay (``engine.gate``)
    held: tuple[HeldCandidate, ...] = ()
    #: each skill's new version, the agents that follow it and their deployments' pin moves
    skill_chains: tuple[SkillChain, ...] = Field(default=(), exclude_if=lambda v: not v)

    @property
    def check_sessions(self) -> int:
        """How many check sessions apply would start (each costs model time)."""
        return sum(a.gate.sessions for a in self.actions if isinstance(a, Update) and a.gate)

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.type in CHANGE_TYPES)

    @property
    def has_changes(self) -> bool:
        """Apply would change something, or twins or conflicts need a person's attention
        (so ``plan --detailed-exitcode`` never exits 0 while they exist)."""
        return (
            bool(self.changes)
            or any(m.old != m.new for m in self.pin_moves)
            or bool(self.twins)
            or bool(self.conflicts)
        )

    @property
    def records(self) -> tuple[Action, ...]:
        """No-ops that apply records in the lockfile (found again by ownership tags or a
        skill's slug, or the lockfile's entry is out of date) without changing the live
        system."""
        return tuple(a for a in self.actions if a.type == "noop" and a.target is not None)

    @property
    def moves(self) -> tuple[Update | Replace | NoOp, ...]:
        """Actions that move an address (``moved_from``), in address order."""
        return tuple(
            a
            for a in self.actions
            if isinstance(a, Update | Replace | NoOp) and a.moved_from is not None
        )

    @property
    def has_lockfile_changes(self) -> bool:
        """Apply would write the lockfile (``records``), whatever it does to the live system."""
        return bool(self.records)

    @property
    def summary(self) -> PlanSummary:
        counts: dict[str, int] = {}
        for a in self.actions:
            counts[a.type] = counts.get(a.type, 0) + 1
        counts["moved"] = len(self.moves)
        forgets = tuple(a.type for a in self.actions if forgets_only(a))
        return PlanSummary(**counts, forgets=forgets)

    def action(self, address: str) -> Action | None:
        for a in self.actions:
            if a.address == address:
                return a
        return None


DriftType = Literal["changed", "archived", "deleted", "pin", "paused", "unmanaged", "twin"]


class DriftItem(Frozen):
    """One way the live system differs from what git and the lockfile say.

    - ``changed``: edited out of band (``changes`` lists fields; for agents ``version`` is the
      live version that introduced it and ``changed_at`` when);
    - ``archived`` / ``deleted``: archived or gone behind our back;
    - ``pin``: a deployment no longer runs the agent version the lockfile pinned;
    - ``paused``: a deployment paused by hand or by the provider (a scheduled run failed);
    - ``unmanaged``: live, not archived, and owned by no manifest of this project;
    - ``twin``: live, tagged by this project for an address another live object holds.
    """

    type: DriftType
    address: str | None
    kind: Kind
    remote_id: str | None = None
    remote_name: str | None = None
    message: str
    changes: tuple[FieldChange, ...] = ()
    version: int | None = None
    changed_at: str | None = None
    #: ``changed`` because the manifest asks for a replace ``protect`` refuses, not because
    #: anyone changed the live object: for the words of the text, not in the JSON report
    refused_replace: bool = False


class DriftReport(Frozen):
    format_version: int = 1
    project: str = "default"
    items: tuple[DriftItem, ...] = ()
    #: what this report could not see, in sentences (e.g. no lockfile: deletions unknown)
    warnings: tuple[str, ...] = ()
    #: the state the live system was compared with, as the all-clear names it ("the
    #: lockfile", or the state in a database); for messages only, not in the JSON report
    compared_with: str = "the lockfile"
    #: unmanaged objects ``--ignore-unmanaged`` left out: the all-clear says so; not in JSON
    ignored_unmanaged: int = 0

    @property
    def has_drift(self) -> bool:
        return bool(self.items)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.items:
            out[i.type] = out.get(i.type, 0) + 1
        return out
