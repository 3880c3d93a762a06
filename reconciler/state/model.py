"""The lockfile as frozen data: what apply recorded per address, and nothing else.

This module only defines the shapes (``Lockfile``, ``LockEntry``, ``PendingIntent``) and pure
queries over them. It does no I/O: reading and writing live in ``reconciler.state.lockfile``.
Every "change" returns a new object; a ``Lockfile`` is never mutated in place, so a reader
holding one never sees a half-applied edit.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from reconciler.errors import LockfileError
from reconciler.kinds import Address
from reconciler.lean import LeanModel
from reconciler.state.digest import new_salt

#: The lockfile format this reconciler reads and writes. A file with a higher number was
#: written by a newer reconciler and is refused, never overwritten.
LOCKFILE_VERSION = 1

#: ``spec_digest`` values: see ``reconciler.engine.desired.desired_digest``.
SpecDigest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
#: Secret fingerprints: see ``reconciler.state.digest.fingerprint_secret``. The pattern makes
#: it impossible to record a secret value by mistake.
Fingerprint = Annotated[str, StringConstraints(pattern=r"^scrypt:[0-9a-f]{64}$")]
#: ISO 8601 times with a zone, as ``utc_timestamp`` writes them.
Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"),
]


def utc_timestamp() -> str:
    """Now, in UTC, as the lockfile writes times: ``2026-05-01T12:00:01Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_address(address: str) -> str:
    """Return ``address`` if it can be a lockfile key, else raise ValueError.

    Addresses are made by the manifest layer (``agent.coder``,
    ``vault.github.credential.token``); here we only refuse what would make the lockfile
    unreadable or ambiguous: empty keys and whitespace.
    """
    if not isinstance(address, str) or not address or any(c.isspace() for c in address):
        raise ValueError(f"invalid address {address!r}: expected e.g. 'agent.coder'")
    return address


class _Frozen(LeanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: What moved a deployment's pin (``LockEntry.pin_history``): a plain apply, an apply whose
#: checks passed, an apply with ``--skip-checks``, ``--retry-held`` whose checks passed, a
#: rollback, or the first record of a deployment found again after a lost lockfile.
PinCause = Literal["apply", "checks", "skip-checks", "retry-held", "rollback", "healed"]


class PinRecord(_Frozen):
    """One move of a deployment's pin: to ``version`` of ``agent`` at ``at``, by ``by``."""

    agent: str = Field(min_length=1)
    version: int = Field(ge=1)
    at: Timestamp
    by: PinCause
    from_version: int | None = None


class HeldVersion(_Frozen):
    """An agent version a deployment must not be moved to again by a later apply.

    ``reason`` is ``checks`` (``failed`` of ``total`` checks failed on it) or ``rollback`` (the
    deployment was rolled back from it, or left it for a newer one: ``forward``). Only
    ``apply --retry-held`` tries it again.

    ``agent_id`` is the agent object the held version is of: an agent archived behind git's
    back and created again numbers its versions from 1 again, and only the hold of the object
    a plan uses holds. Lockfiles written before it have none; their holds are matched by
    ``at`` against the object's ``created_at`` instead (``engine.rollout``).
    """

    agent: str = Field(min_length=1)
    version: int = Field(ge=1)
    reason: Literal["checks", "rollback"]
    at: Timestamp
    failed: int | None = Field(default=None, ge=0)
    total: int | None = Field(default=None, ge=0)
    # left out of the file while unknown, so older lockfiles read and write as they were
    agent_id: str | None = Field(default=None, min_length=1, exclude_if=lambda v: v is None)
    #: a rollback's hold of the version it left for a newer one (``rollback --to`` forward,
    #: or undoing a rollback): no rollback from it. Left out of the file when false.
    forward: bool = Field(default=False, exclude_if=lambda v: not v)

    @property
    def why(self) -> str:
        """``its checks failed``, ``rolled back from``, ``left by a rollback forward``."""
        if self.reason == "checks":
            return "its checks failed"
        return "left by a rollback forward" if self.forward else "rolled back from"

    def holds(self, agent: str, version: int | None, agent_id: str | None = None) -> bool:
        """Whether this is the hold of ``version`` of ``agent`` (of the object ``agent_id``,
        where both it and this hold name one)."""
        if self.agent != agent or self.version != version:
            return False
        return self.agent_id is None or agent_id is None or self.agent_id == agent_id


class UploadedSkillVersion(_Frozen):
    """A skill version this project uploaded: the digest of its files (paths and bytes,
    ``manifest.skilldir``) and each file's sha256 (path -> hex), for the plan's change
    summary of the next upload. Never a file's content."""

    digest: SpecDigest
    files: dict[str, str] = Field(default_factory=dict)


#: The most pin moves a deployment's entry keeps (the oldest go first).
MAX_PIN_HISTORY = 50


class LockEntry(_Frozen):
    """What apply last did to one address.

    Attributes:
        kind: ``agent``, ``environment``, ``vault``, ``credential`` or ``deployment``.
        id: the remote id.
        parent_id: a credential's vault id.
        version: an agent's version after the last apply.
        pins: agent address -> the version a deployment was resolved to (``latest`` included).
        spec_digest: ``sha256:`` digest of the normalised spec that was applied.
        protect: the manifest's ``protect`` flag when applied.
        secret_fingerprints: secret field path -> salted scrypt fingerprint (never the value).
        remote_name: the remote ``name`` / ``display_name`` when it differs from the address.
        created_at: when apply created (or adopted) the resource.
        updated_at: when apply last changed it.
        held: deployments: agent versions never promoted again (failed checks, rolled back).
        pin_history: deployments: each pin move, oldest first (at most ``MAX_PIN_HISTORY``).
        slug: skills: the slug (SKILL.md's ``name``) the first upload fixed.
        uploaded: skills: every version this project uploaded (version id -> its digest and
            files). A skill carries no metadata: this entry is its ownership.
        latest: skills: the version the last apply left as the skill's latest, so a latest
            deleted behind git's back (the live latest then an older upload) is drift.
            None in entries older than this field (recorded at the skill's next upload).
        skills: agents: skill address -> the version id the agent was resolved to (a
            ``{ref: NAME}`` following the newest included), so a plan is reproducible.
        live_updated_at: credentials: the provider's ``updated_at`` after the last apply. A
            secret is never read back, so a later one is the only sign of a secret rotated
            outside the reconciler (drift, and plan writes the manifest's secret again).
        seeds: memory stores: the paths of the manifest's seed memories once written (or
            left as an agent had them), so a seed added later is written once too; None in
            entries older than this field, whose seeds all count as written.
        moved_from: the address ``state mv`` moved the entry from (its object's tag still
            names it until the next apply retags it), so plan shows that retag as a move;
            a tag naming another address is a change made outside the reconciler.
    """

    kind: str = Field(min_length=1)
    id: str = Field(min_length=1)
    parent_id: str | None = None
    version: int | None = Field(default=None, ge=0)
    pins: dict[str, int] = Field(default_factory=dict)
    spec_digest: SpecDigest
    protect: bool = False
    secret_fingerprints: dict[str, Fingerprint] = Field(default_factory=dict)
    remote_name: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    # rollout state: left out of the file while empty, so older lockfiles read and write as
    # they were
    held: tuple[HeldVersion, ...] = Field(default=(), exclude_if=lambda v: not v)
    pin_history: tuple[PinRecord, ...] = Field(default=(), exclude_if=lambda v: not v)
    # skills and the agents that use them: left out while empty, as above
    slug: str | None = Field(default=None, exclude_if=lambda v: v is None)
    uploaded: dict[str, UploadedSkillVersion] = Field(
        default_factory=dict, exclude_if=lambda v: not v
    )
    latest: str | None = Field(default=None, exclude_if=lambda v: v is None)
    skills: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)
    live_updated_at: str | None = Field(default=None, exclude_if=lambda v: v is None)
    seeds: tuple[str, ...] | None = Field(default=None, exclude_if=lambda v: v is None)
    moved_from: str | None = Field(default=None, exclude_if=lambda v: v is None)

    def held_version(
        self, agent: str, version: int | None, agent_id: str | None = None
    ) -> HeldVersion | None:
        """The hold on ``version`` of ``agent`` (of the object ``agent_id``, when given), if
        this deployment holds it."""
        return next((h for h in self.held if h.holds(agent, version, agent_id)), None)

    def renamed(self, old: str, new: str) -> LockEntry:
        """This entry with every reference to the address ``old`` naming ``new`` (a move):
        the agent of a deployment's pins, holds and pin history, the skills of an agent.
        Itself when it names ``old`` nowhere."""

        def renamed_keys(names: dict[str, Any]) -> dict[str, Any]:
            return {(new if a == old else a): v for a, v in names.items()}

        update: dict[str, Any] = {}
        if old in self.pins:
            update["pins"] = renamed_keys(self.pins)
        if old in self.skills:
            update["skills"] = renamed_keys(self.skills)
        if any(h.agent == old for h in self.held):
            update["held"] = tuple(
                h.model_copy(update={"agent": new}) if h.agent == old else h for h in self.held
            )
        if any(r.agent == old for r in self.pin_history):
            update["pin_history"] = tuple(
                r.model_copy(update={"agent": new}) if r.agent == old else r
                for r in self.pin_history
            )
        return self.model_copy(update=update) if update else self


def _unset(value: object) -> bool:
    return value is None


class PendingIntent(_Frozen):
    """A create (or the create half of a replace), or a rollback's pin move, that was sent
    but not yet recorded.

    The executor records the intent before sending the request and removes it when the
    result is committed. An intent found at the start of a run means the previous run died
    in between: the engine resolves a create's by listing the provider for the resource's
    ownership metadata (``reconciler-address``), adopting what it finds instead of creating a
    twin; a rollback's or a gated pin move's by the deployment's live pin
    (``engine.pinlog.settle_pin_moves``): at ``to_version``, the move happened and is
    recorded as it was (a rollback holds ``from_version``; a gated move keeps ``by``);
    anywhere else, it never reached the provider and is forgotten. An adoption's
    (``import``: its manifest may be written, its tags not yet) keeps the next plan from
    creating a twin of ``remote_id`` while that object carries no tags of this project.
    """

    kind: str = Field(min_length=1)
    operation: Literal["create", "replace", "rollback", "adopt", "pin"]
    started_at: Timestamp
    parent_id: str | None = None
    remote_name: str | None = None
    # The fields below are written only when set, so that a create's intent reads as it
    # always did (a lockfile left by a crash stays readable by an earlier reconciler).
    #: an adoption (``import``): the live object it tags
    remote_id: str | None = Field(default=None, exclude_if=_unset)
    #: a rollback or a gated pin move (``pin``): the agent address whose pin moves, from
    #: which version to which, and (``pin``) what moves it (checks, skip-checks, retry-held)
    agent: str | None = Field(default=None, exclude_if=_unset)
    from_version: int | None = Field(default=None, ge=1, exclude_if=_unset)
    to_version: int | None = Field(default=None, ge=1, exclude_if=_unset)
    by: PinCause | None = Field(default=None, exclude_if=_unset)
    #: a skill's create: the digest of the files it uploads, so that the skill it made is
    #: known again by them once the manifest's files changed (a skill carries no tags)
    digest: str | None = Field(default=None, exclude_if=_unset)


class MigratedTo(_Frozen):
    """Where ``state migrate`` moved a state: a lockfile's into a database, a database's
    into a lockfile. The state left behind says so, and every command refuses it
    (``lockfile.check_project``, ``postgres.store``)."""

    #: the database as messages name it (never its password), or the lockfile's path
    backend: str = Field(min_length=1)
    at: Timestamp
    #: the serial of the state moved
    serial: int = Field(ge=0)


def check_moved_back(name: str, held_lineage: str, moved: MigratedTo, lineage: str) -> None:
    """A state ``state migrate`` moved away (``moved``) is replaced without ``--force`` only
    by its own lineage coming back: its marker keeps the runners still pointed at ``name``
    from planning against another repository's state.

    Raises:
        LockfileError: ``lineage`` is not ``held_lineage``.
    """
    if lineage != held_lineage:
        raise LockfileError(
            f"{name} holds the state of another lineage ({held_lineage}), moved to "
            f"{moved.backend} by `reconciler state migrate` on {moved.at}: runners still "
            f"pointed at {name} are told so; the state copied (lineage {lineage}) would take "
            "its place, and they would plan against it. Pass --force to replace it"
        )


class Lockfile(_Frozen):
    """The whole lockfile: identity, per-address entries and pending intents.

    ``lineage`` names one lockfile's history (a fresh one gets a new lineage); ``serial``
    grows by one at every write, so a saved plan or a concurrent writer can tell that the
    file moved on. ``salt`` salts every secret fingerprint of this lineage. ``origin`` names
    the provider it was applied to, so a run against another one can be refused.

    The helpers return new objects and never touch ``self``::

        lf = new_lockfile("default").with_entry("agent.coder", entry)
    """

    lockfile_version: int = Field(default=LOCKFILE_VERSION, ge=1)
    lineage: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[0-9a-f]{32}$")
    serial: int = Field(default=0, ge=0)
    salt: str = Field(default_factory=new_salt, pattern=r"^[0-9a-f]{32,128}$")
    project: str = Field(default="default", min_length=1)
    #: the provider the lockfile was applied to: its normalised base URL, or ``local:PATH``
    #: for the embedded provider (``reconciler.provider.origin``); None in a lockfile written
    #: before origins were recorded (the next apply records it)
    origin: str | None = Field(default=None, min_length=1)
    resources: dict[str, LockEntry] = Field(default_factory=dict)
    pending: dict[str, PendingIntent] = Field(default_factory=dict)
    #: the state was moved to another backend: this one is only a marker of where it went
    migrated_to: MigratedTo | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("resources", "pending")
    @classmethod
    def _addresses(cls, value: dict[str, object]) -> dict[str, object]:
        for address in value:
            check_address(address)
        return value

    @property
    def written(self) -> bool:
        """Whether this state was ever written: every write raises ``serial``, so a lockfile
        not on disk, or a backend no run has written to, has serial 0. False is how a lost
        state shows, on both backends (``engine.skills.may_find_by_slug``)."""
        return self.serial > 0

    def with_entry(self, address: str, entry: LockEntry) -> Lockfile:
        """Return a copy where ``address`` maps to ``entry`` (added or replaced).

        Pending intents are left alone: a create that succeeded usually also calls
        ``without_pending(address)``.
        """
        check_address(address)
        if not isinstance(entry, LockEntry):
            raise TypeError(f"expected a LockEntry, got {type(entry).__name__}")
        return self.model_copy(update={"resources": {**self.resources, address: entry}})

    def without(self, address: str) -> Lockfile:
        """Return a copy without the entry for ``address`` (and without its pending intent).

        Raises:
            LockfileError: there is no entry and no intent for ``address``.
        """
        if address not in self.resources and address not in self.pending:
            show_entry(self, address)  # raises with a did-you-mean
        resources, pending = dict(self.resources), dict(self.pending)  # copies in C
        resources.pop(address, None)
        pending.pop(address, None)
        return self.model_copy(update={"resources": resources, "pending": pending})

    def without_tree(self, address: str) -> Lockfile:
        """``without``, and for a vault without its credentials' entries and intents too
        (``state rm vault.X``, as ``state mv`` takes them along)."""
        lockfile = self.without(address)
        inside = credentials_of(self, address)
        return lockfile.without_pending(*inside).model_copy(
            update={"resources": {a: e for a, e in lockfile.resources.items() if a not in inside}}
        )

    def with_pending(self, address: str, intent: PendingIntent) -> Lockfile:
        """Return a copy that records ``intent`` for ``address`` (replacing an older one)."""
        return self.with_intents({address: intent})

    def with_intents(self, intents: Mapping[str, PendingIntent]) -> Lockfile:
        """Return a copy that records every ``{address: intent}`` (replacing older ones): one
        copy of the lockfile for many intents (an apply's first write, an import's)."""
        if not intents:
            return self
        for address, intent in intents.items():
            check_address(address)
            if not isinstance(intent, PendingIntent):
                raise TypeError(f"expected a PendingIntent, got {type(intent).__name__}")
        return self.model_copy(update={"pending": {**self.pending, **intents}})

    def without_pending(self, *addresses: str) -> Lockfile:
        """Return a copy without the pending intents of ``addresses`` (those it has)."""
        pending = dict(self.pending)  # a copy in C: a comprehension is O(n) in Python
        for address in addresses:
            pending.pop(address, None)
        return self.model_copy(update={"pending": pending})


def new_lockfile(project: str = "default") -> Lockfile:
    """A new, empty lockfile with a fresh lineage and salt (serial 0, never written)."""
    return Lockfile(project=project)


def list_entries(lockfile: Lockfile) -> list[tuple[str, LockEntry]]:
    """Every ``(address, entry)`` of the lockfile, sorted by address (``state list``)."""
    return sorted(lockfile.resources.items())


def show_entry(lockfile: Lockfile, address: str) -> LockEntry:
    """The entry of ``address`` (``state show ADDR``).

    Raises:
        LockfileError: no such address; the message suggests close matches.
    """
    entry = lockfile.resources.get(address)
    if entry is not None:
        return entry
    if address in lockfile.pending:
        raise LockfileError(
            f"{address} has only a pending {lockfile.pending[address].operation} intent "
            "(the next apply resolves it); it has no entry yet"
        )
    known = sorted(lockfile.resources)
    close = difflib.get_close_matches(address, known, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    if not known:
        hint = "; the lockfile has no entries"
    raise LockfileError(f"no entry for {address} in the lockfile{hint}")


def _moved(entry: LockEntry, address: str, renames: Mapping[str, str]) -> LockEntry:
    """``entry`` of ``address`` as ``move_entry`` leaves it: one it moves remembers the
    address its object is tagged for (the first, across moves) until apply retags it."""
    new = renames.get(address)
    if new is None:
        return entry
    tagged = entry.moved_from or address
    return entry.model_copy(update={"moved_from": None if tagged == new else tagged})


def credentials_of(lockfile: Lockfile, address: str) -> list[str]:
    """The credential addresses (entries or intents) inside vault ``address``, sorted."""
    if not address.startswith("vault.") or address.count(".") != 1:
        return []
    prefix = address + ".credential."
    return sorted(a for a in {*lockfile.resources, *lockfile.pending} if a.startswith(prefix))


def move_entry(lockfile: Lockfile, old: str, new: str) -> Lockfile:
    """Move the entry of ``old`` to ``new`` (``state mv``): a vault takes its credentials
    along, and deployment pins naming an agent ``old`` name ``new``. The remote object is
    not touched; its ownership tag still names ``old`` until the next apply retags it.

    Raises:
        LockfileError: ``old`` has no entry (with a did-you-mean), ``new`` is not an
            address of the same kind (a credential: of the same vault), ``new`` has an
            entry already, or what would move has a pending intent.
    """
    entry = show_entry(lockfile, old)
    try:
        parsed = Address.parse(new)
    except ValueError:
        raise LockfileError(
            f"{new!r} is not an address; write it as KIND.NAME, e.g. agent.engineer"
        ) from None
    if parsed.kind != entry.kind:
        raise LockfileError(
            f"{old} is {'an' if entry.kind[0] in 'aeiou' else 'a'} {entry.kind} and {new} "
            f"{'an' if parsed.kind[0] in 'aeiou' else 'a'} {parsed.kind}: a move keeps the kind"
        )
    if new == old:
        raise LockfileError(f"{old} and {new} are the same address: nothing to move")
    vault = Address.parse(old).vault
    if parsed.vault != vault:
        # the provider keeps a credential inside its vault: another vault's address would be
        # an entry no vault holds (plan: not ours, and a second credential created)
        raise LockfileError(
            f"a credential stays in its vault: {old} can move to another name in vault.{vault} "
            f"(vault.{vault}.credential.{parsed.name}), not to {new}; to move the whole vault, "
            f"`reconciler state mv vault.{vault} vault.{parsed.vault}`"
        )
    if new in lockfile.resources:
        raise LockfileError(
            f"{new} has an entry already ({lockfile.resources[new].id}); `reconciler state rm "
            f"{new}` first if that entry is wrong"
        )
    renames = {old: new}
    if entry.kind == "vault":
        prefix = old + ".credential."
        renames.update({a: new + a[len(old) :] for a in lockfile.resources if a.startswith(prefix)})
        taken = sorted(b for a, b in renames.items() if a != old and b in lockfile.resources)
        if taken:  # a credential left by `state rm` of that vault: never overwritten
            raise LockfileError(
                f"{taken[0]} has an entry already ({lockfile.resources[taken[0]].id}), where "
                f"{old}'s credential would move; `reconciler state rm {taken[0]}` first if "
                "that entry is wrong"
            )
    resources = {
        renames.get(address, address): _moved(item.renamed(old, new), address, renames)
        for address, item in lockfile.resources.items()
    }
    # an intent names the address its run acted for: moved, it would be resolved for the
    # wrong one; dropped, the next apply could not settle what that run did
    stuck = sorted(a for a in renames if a in lockfile.pending)
    if stuck:
        raise LockfileError(
            f"{stuck[0]} has a pending {lockfile.pending[stuck[0]].operation} (a run stopped "
            "before recording its outcome); run `reconciler apply` first, which resolves it, "
            "then move the entry"
        )
    return lockfile.model_copy(update={"resources": resources})
