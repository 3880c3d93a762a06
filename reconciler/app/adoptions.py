"""Adopt actions and their run: how an existing object is taken under management.

The plan action that adopts a live object (``adoption``: its tagging update and what the
lockfile records), the apply lock an import holds (``import_lock``), the pending intents
recorded before any tag is sent (``adoption_intents``, ``intend_adoptions``), and the run
of a plan of ``Adopt`` actions through the engine's executor, the one path that writes to
the provider (``run_adoptions``), with what ``import`` reports of each (``Adopted``).
Shared by ``import ADDR ID`` (``adopt``), ``import --all-unmanaged`` (``unmanaged``) and the
import of skills (``skillimport``); it decides nothing about which object to adopt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.app.workspace import Settings, check_origin, locked_state, with_origin
from reconciler.engine.desired import DesiredResource, desired_digest
from reconciler.engine.executor import ApplyReport, Outcome, apply_plan
from reconciler.engine.model import Adopt, Plan, Target
from reconciler.engine.normalize import normalize
from reconciler.engine.record import record_outcome
from reconciler.errors import PlanError
from reconciler.jsontypes import JSON
from reconciler.kinds import Kind, owned_address, remote_name_of, tags
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    Journal,
    Lockfile,
    PendingIntent,
    StateBackend,
    StateLock,
    json_digest,
    utc_timestamp,
)

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient

__all__ = [
    "Adopted",
    "adopted_from",
    "adoption",
    "adoption_intents",
    "import_lock",
    "intend_adoptions",
    "live_digest",
    "run_adoptions",
]


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


def live_digest(kind: str, obj: JSON) -> str:
    """A spec digest of what is live (no manifest was applied to it)."""
    return json_digest(normalize(kind, obj))


def _tagging_body(
    obj: JSON, project: str, address: str, fill: Mapping[str, Any] | None = None
) -> JSON:
    """The update that adopts ``obj``: the ownership metadata (a patch; agents save a new
    version) unless it is tagged for ``address`` already, and the ``fill`` fields where the
    live object differs. Empty: nothing to send."""
    body: JSON = {k: v for k, v in (fill or {}).items() if obj.get(k) != v}
    if owned_address(obj, project) != address:
        body["metadata"] = tags(project, address)
    return body


def _after(obj: JSON, body: JSON) -> JSON:
    """``obj`` as the provider returns it once ``body`` is applied (metadata is a patch)."""
    out = {**obj, **{k: v for k, v in body.items() if k != "metadata"}}
    if "metadata" in body:
        merged = {**(obj.get("metadata") or {}), **body["metadata"]}
        out["metadata"] = {k: v for k, v in merged.items() if v not in ("", None)}
    return out


def adoption(
    kind: Kind,
    address: str,
    obj: JSON,
    project: str,
    *,
    res: DesiredResource | None,
    parent_id: str | None,
    pins: Mapping[str, int],
    fill: Mapping[str, Any] | None = None,
    previous_owner: str | None = None,
    depends_on: tuple[str, ...] = (),
    skills: Mapping[str, str] | None = None,
    seeds: tuple[str, ...] = (),
) -> Adopt:
    """The plan action that adopts the live ``obj`` as ``address``.

    Its target is what the lockfile records: the manifest's digest, protect and remote name
    when a document declares the address, else a digest of the live spec as it reads once
    tagged (the next plan records the manifest's digest once the document is written).
    An agent's ``skills`` (skill address -> the version it runs) are recorded as an apply
    records them; a memory store's ``seeds``: the manifest's seed paths that hold a memory
    already (never written by apply, whatever their content).
    """
    body = _tagging_body(obj, project, address, fill)
    target = Target(
        spec_digest=(
            desired_digest(res) if res is not None else live_digest(kind, _after(obj, body))
        ),
        protect=res.protect if res is not None else False,
        remote_name=res.remote_name if res is not None else remote_name_of(kind, obj),
        pins=dict(pins),
        skills=dict(skills or {}),
        # an imported store's memories are the agents' own: the manifest's seeds at a path
        # that holds one are never written (recorded as such); the others when absent
        seeds=tuple(sorted(seeds)) if kind == "memory_store" else None,
    )
    reason = "import: an existing object, taken under management"
    if previous_owner is not None:
        reason += f" (taken over from {previous_owner})"
    return Adopt(
        address=address,
        kind=kind,
        reason=reason,
        remote_id=obj["id"],
        parent_id=parent_id,
        depends_on=depends_on,
        body=body,
        target=target,
        version=int(obj["version"]) if kind == "agent" and obj.get("version") else None,
        previous_owner=previous_owner,
    )


def _no_secrets(address: str, path: str) -> str:
    raise PlanError(f"an adoption sends no secret ({address}: {path})")


@contextmanager
def import_lock(
    ws: Settings, *, allow_change: bool = False
) -> Iterator[tuple[StateLock, StateBackend, Lockfile, str]]:
    """The apply lock held as ``import``, the state store, its lockfile, and this run's
    provider origin (``check_origin``): never adopt into another provider's lockfile,
    unless ``allow_change``.

    Raises:
        LockHeld: an apply is running.
        PlanError: the lockfile was applied to another provider origin (without
            ``allow_change``).
    """
    with locked_state(ws, "import") as (lock, store):
        lockfile = store.load()
        yield lock, store, lockfile, check_origin(ws, lockfile, allow_change=allow_change)


async def run_adoptions(
    client: ProviderClient,
    store: StateBackend,
    lock: StateLock,
    actions: Sequence[Adopt],
    project: str,
    *,
    origin: str,
    parallelism: int = 8,
) -> ApplyReport:
    """Run a plan of ``Adopt`` actions through the executor, the one path that writes to
    the provider, committing each outcome to the lockfile through the journal as apply
    does, every write guarded by the apply lock. The write of an adoption that succeeded
    also records ``origin`` (``check_origin``'s answer), as an apply's first write does.
    """
    lockfile = store.lockfile
    plan = Plan(
        project=project, lineage=lockfile.lineage, serial=lockfile.serial, actions=tuple(actions)
    )
    journal = Journal(store, senders=parallelism, guard=lock.ensure_held)

    record_origin = with_origin(origin)

    def outcome(o: Outcome) -> None:
        now = utc_timestamp()
        journal.stage(lambda lf: record_outcome(lf, o, now))
        if o.ok:
            journal.stage(record_origin)

    # Each adoption's intent is on disk before its tags are sent: killed in between (the
    # manifests of ``import --all-unmanaged`` written already), the next plan refuses to
    # create a twin of the object it names instead of creating one.
    intents = adoption_intents(
        ((a.kind, a.address, a.remote_id, a.parent_id) for a in actions if a.body), lockfile
    )
    if intents:
        await journal.commit(lambda lf: lf.with_intents(intents))
    guard, client.write_guard = client.write_guard, lock.ensure_held
    try:
        return await apply_plan(
            plan,
            ClientBackedProvider(client),
            resolve_secret=_no_secrets,
            parallelism=parallelism,
            on_outcome=outcome,
        )
    finally:
        client.write_guard = guard
        await journal.close()


def adoption_intents(
    adopted: Iterable[tuple[str, str, str, str | None]], lockfile: Lockfile
) -> dict[str, PendingIntent]:
    """The pending intents of adoptions ``(kind, address, remote id, parent id)``, but those
    ``lockfile`` holds already (``import --all-unmanaged`` records them before it writes the
    manifests, ``run_adoptions`` before it tags)."""
    now = utc_timestamp()
    intents: dict[str, PendingIntent] = {}
    for kind, address, remote_id, parent_id in adopted:
        held = lockfile.pending.get(address)
        if held is not None and held.operation == "adopt" and held.remote_id == remote_id:
            continue
        intents[address] = PendingIntent(
            kind=kind, operation="adopt", started_at=now, parent_id=parent_id, remote_id=remote_id
        )
    return intents


def intend_adoptions(
    store: StateBackend, lock: StateLock, adopted: Iterable[tuple[str, str, str, str | None]]
) -> None:
    """Record ``adoption_intents`` durably now (the caller is about to write manifests that
    name these objects, before their tags are sent)."""
    intents = adoption_intents(adopted, store.lockfile)
    if intents:
        lock.ensure_held()
        store.commit(lambda lf: lf.with_intents(intents))


def adopted_from(o: Outcome) -> Adopted:
    """What ``import`` reports of one successful adoption."""
    action = o.action
    tagged = isinstance(action, Adopt) and bool(action.body)
    return Adopted(o.address, action.kind, o.remote_id or "", o.version, tagged)
