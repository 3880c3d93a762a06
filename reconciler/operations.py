"""The library API behind the commands: plan, apply, and saved plans, end to end.

Each function does what one CLI command does, minus flags and rendering, so a program can
drive the reconciler without click: load the manifests, read the lockfile, refresh the live
state through the provider client, build the plan with the pure engine, execute it with the
apply lock held and the lockfile committed after every action. Nothing here prints.

    settings = Settings(manifests=Path("manifests"), lockfile=Path("state/reconciler.lock"))
    result = asyncio.run(make_plan(settings))
    print(result.plan.summary)
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.engine.desired import desired_resources
from reconciler.engine.executor import ApplyReport, Outcome, apply_plan
from reconciler.engine.intents import leftover_intents
from reconciler.engine.model import Action, Plan
from reconciler.engine.ownership import claimed_address, not_ours
from reconciler.engine.planner import PlanOptions, build_plan, targeted_addresses
from reconciler.engine.record import record_intent, record_intents, record_outcome
from reconciler.engine.refresh import Observed, refresh
from reconciler.errors import LockfileError, ManifestError, ManifestIssue, PlanError
from reconciler.kinds import DEFAULT_LOCKFILE, DEFAULT_MANIFESTS, DEFAULT_PROVIDER_DB, owned_address
from reconciler.manifest import ManifestSet, load_manifests, resolve_secret
from reconciler.manifest.files import MAX_PLAN_BYTES, FileRefused, read_limited
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.provider.origin import local_origin, url_origin
from reconciler.state import (
    ApplyLock,
    Lockfile,
    LockfileWriteError,
    StateStore,
    fingerprint_secret,
    json_digest,
    new_salt,
    read_project_lockfile,
)

if TYPE_CHECKING:  # the HTTP stack loads when a command connects (tests/test_startup.py)
    from reconciler.provider import ProviderClient, RequestStats

DEFAULT_DB = Path(DEFAULT_PROVIDER_DB)
PLAN_FILE_KIND = "reconciler-plan"


@dataclass(frozen=True)
class Settings:
    """Where things are; the global options of the CLI."""

    manifests: Path = Path(DEFAULT_MANIFESTS)
    lockfile: Path = Path(DEFAULT_LOCKFILE)
    project: str = "default"
    provider_url: str | None = None
    api_key: str | None = None
    db_path: Path = DEFAULT_DB
    client_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, repr=False)
class PlanResult:
    plan: Plan
    manifests: ManifestSet
    lockfile: Lockfile
    observed: Observed
    #: HTTP requests the refresh took (for benchmarks and --debug)
    requests: int = 0

    def __repr__(self) -> str:
        # Short on purpose: Python 3.11's asyncio.run formats its main task's result when it
        # restores the SIGINT handler (twice), and a full repr of a large plan takes seconds.
        return f"PlanResult({self.plan.summary!r}, requests={self.requests})"


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[ProviderClient]:
    """The provider client of ``settings``: HTTP when a URL is set, else the embedded one."""
    from reconciler.provider import open_client

    async with open_client(
        settings.provider_url,
        settings.api_key,
        db_path=settings.db_path,
        **settings.client_options,
    ) as client:
        yield client


def provider_origin(settings: Settings) -> str:
    """The origin this run talks to, as the lockfile records it: the normalised
    ``--provider-url``, or ``local:`` and the embedded provider's database relative to the
    lockfile's folder (the same in every checkout of a repository).

    Raises:
        ProviderURLError: ``--provider-url`` is not a usable base URL.
    """
    if settings.provider_url:
        return url_origin(settings.provider_url)
    return local_origin(settings.db_path, settings.lockfile.parent)


def check_origin(settings: Settings, lockfile: Lockfile, *, allow_change: bool = False) -> str:
    """Refuse to plan or apply with a lockfile that was applied to another provider.

    A lockfile that records no origin (written before origins were recorded, or never
    written) is accepted; the next apply records it.

    Returns:
        The origin of this run.

    Raises:
        PlanError: the lockfile records another origin and ``allow_change`` is False.
    """
    origin = provider_origin(settings)
    recorded = lockfile.origin
    if recorded is not None and recorded != origin and not allow_change:
        raise PlanError(
            f"{settings.lockfile} was applied to {recorded}, but this run talks to {origin}. "
            "Check --provider-url (and --provider-db, --lockfile); if the lockfile should now "
            "follow this provider, pass --allow-origin-change (apply then records the new "
            "origin)"
        )
    return origin


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SecretSource:
    """Reads secret values named by the manifests, at the moment they are needed."""

    def __init__(self, manifests: ManifestSet) -> None:
        self._refs = {
            (res.address, path): ref
            for res in desired_resources(manifests.documents)
            for path, ref in res.secrets
        }
        self._base = Path(getattr(manifests, "base_dir", None) or ".")
        self._cache: dict[tuple[str, str], str] = {}
        self._manifests = manifests

    def __call__(self, address: str, path: str) -> str:
        key = (address, path)
        if key not in self._cache:
            ref = self._refs.get(key)
            if ref is None:
                raise PlanError(
                    f"{address}: no secret reference at {path} in the manifests; "
                    "the saved plan and the manifests disagree, run `reconciler plan` again"
                )
            self._cache[key] = resolve_secret(
                _secret_ref(ref),
                self._base,
                location=self._location(address, path),
                field_path=path,
                root=getattr(self._manifests, "secret_root", None),
            )
        return self._cache[key]

    def _location(self, address: str, path: str) -> Any:
        """Where the reference is written, so a missing secret names ``file:line:col``."""
        try:
            return self._manifests.location(address, path)
        except (KeyError, AttributeError):
            return None

    @property
    def references(self) -> tuple[tuple[str, str], ...]:
        """``(address, field path)`` of every secret the manifests name."""
        return tuple(self._refs)

    def fingerprinter(self, salt: str) -> Callable[[str, str], str]:
        return lambda address, path: fingerprint_secret(salt, self(address, path))

    def check_all(self, targets: tuple[str, ...] = ()) -> None:
        """Resolve every secret now (with ``targets``: those of the targeted addresses), so
        a missing variable fails before any change."""
        issues: list[ManifestIssue] = []
        wanted = targeted_addresses(self._manifests.documents, targets) if targets else None
        for address, path in sorted(self._refs):
            if wanted is not None and address not in wanted:
                continue
            try:
                self(address, path)
            except ManifestError as err:
                issues.extend(err.issues)
        if issues:
            raise ManifestError(issues)


def _secret_ref(ref: dict[str, Any]) -> Any:
    from reconciler.manifest import SecretRef

    return SecretRef.model_validate({k: v for k, v in ref.items() if v is not None})


async def observe(client: ProviderClient, lockfile: Lockfile, project: str) -> Observed:
    """One paged list per kind (credentials: one per managed vault)."""
    vault_ids = [e.id for e in lockfile.resources.values() if e.kind == "vault"]
    return await refresh(ClientBackedProvider(client), project=project, known_vault_ids=vault_ids)


def _plan_lineage(settings: Settings, lockfile: Lockfile) -> Lockfile:
    # A lockfile not yet on disk has a throwaway lineage: a saved plan must not pin it.
    if not settings.lockfile.exists():
        return lockfile.model_copy(update={"lineage": ""})
    return lockfile


async def make_plan(
    settings: Settings,
    *,
    prune: bool = False,
    delete: bool = False,
    targets: tuple[str, ...] = (),
    client: ProviderClient | None = None,
    allow_empty: bool = False,
    allow_origin_change: bool = False,
) -> PlanResult:
    """Load, refresh and plan. Changes nothing anywhere.

    Args:
        allow_empty: allow ``prune`` when the manifests hold no document at all (which plans
            to archive everything the project owns); refused otherwise.
        allow_origin_change: plan although the lockfile was applied to another provider
            origin (``check_origin``). Not checked when ``client`` is given: the origin
            is then the caller's to check (``apply`` does).

    Raises:
        PlanError: ``prune`` over manifests with no document, without ``allow_empty``; or the
            lockfile was applied to another origin, without ``allow_origin_change``.
        ManifestError: the manifests are invalid or a secret cannot be read.
        LockfileError: the lockfile cannot be read.
        ProviderError: the provider failed.
    """
    with _gc_paused():
        if client is None and settings.provider_url is None:
            # The embedded provider answers at once, so there is no wait to hide; and bad
            # manifests must not even open its database.
            manifests = load_manifests(settings.manifests)
            lockfile = read_project_lockfile(settings.lockfile, settings.project)
            check_origin(settings, lockfile, allow_change=allow_origin_change)
            secrets = SecretSource(manifests)
            secrets.check_all(targets)
            async with connect(settings) as c:
                observed = await observe(c, lockfile, settings.project)
                requests = c.stats.requests
        else:
            try:
                lockfile = read_project_lockfile(settings.lockfile, settings.project)
            except LockfileError:
                load_manifests(settings.manifests)  # an error in the manifests comes first
                raise
            if client is None:  # a caller's own client is checked by the caller (apply)
                check_origin(settings, lockfile, allow_change=allow_origin_change)
            async with _connection(settings, client) as c:
                before = c.stats.requests
                manifests, secrets, observed = await _load_while_listing(
                    settings, c, lockfile, targets
                )
                requests = c.stats.requests - before
        if prune and not manifests.documents and not allow_empty:
            raise PlanError(
                f"refusing --prune: {settings.manifests} holds no manifest document, so the "
                f"plan would archive everything project {settings.project!r} owns. Check "
                "--manifests/-f; if archiving everything is intended, add --allow-empty"
            )
        plan = build_plan(
            manifests.documents,
            observed,
            _plan_lineage(settings, lockfile),
            PlanOptions(project=settings.project, prune=prune, delete=delete, targets=targets),
            fingerprint=secrets.fingerprinter(lockfile.salt),
        )
    if not plan.lineage:
        plan = plan.model_copy(update={"lineage": None})
    return PlanResult(plan, manifests, lockfile, observed, requests)


def _load_checked(
    settings: Settings, targets: tuple[str, ...] = ()
) -> tuple[ManifestSet, SecretSource]:
    manifests = load_manifests(settings.manifests)
    secrets = SecretSource(manifests)
    secrets.check_all(targets)
    return manifests, secrets


async def _load_while_listing(
    settings: Settings, client: ProviderClient, lockfile: Lockfile, targets: tuple[str, ...] = ()
) -> tuple[ManifestSet, SecretSource, Observed]:
    """Load the manifests (in a worker thread) while the provider is listed.

    The listing needs only the lockfile, and mostly waits on the network (a 10,000-agent
    project is 100 pages, one after the other); loading is CPU work. Done side by side a plan
    takes about the longer of the two rather than their sum. An error in the manifests
    wins over the listing's: the listing is cancelled and the manifest error raised.
    """
    listing = asyncio.ensure_future(observe(client, lockfile, settings.project))
    try:
        manifests, secrets = await asyncio.to_thread(_load_checked, settings, targets)
    except BaseException:
        listing.cancel()
        await asyncio.gather(listing, return_exceptions=True)
        raise
    return manifests, secrets, await listing


@asynccontextmanager
async def _connection(
    settings: Settings, client: ProviderClient | None
) -> AsyncIterator[ProviderClient]:
    if client is not None:
        yield client
    else:
        async with connect(settings) as c:
            yield c


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading, refreshing and planning.

    They create many objects that all stay alive, which the collector traverses again and
    again for nothing: at 10,000 resources that was a third of a plan. Garbage cycles made
    meanwhile are collected once it runs again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Keep the objects alive now (manifests, plan, live objects) out of cyclic GC passes.

    While an apply runs, every request makes short-lived garbage and the collector runs
    often; each pass used to walk the whole planning heap again. ``gc.freeze`` moves what
    exists now to a generation the collector skips, until ``gc.unfreeze`` at the end:
    ~5% of the CPU of an apply of 1,100 creates.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def manifests_digest(manifests: ManifestSet, secrets: SecretSource, salt: str) -> str:
    """Digest of what a plan was made from: every document, and every secret's fingerprint.

    Secrets enter as ``fingerprint_secret(salt, value)`` (salted scrypt), never as values, so
    the digest can sit in a plan file for anyone to read.

    Raises:
        ManifestError: a secret cannot be read.
    """
    documents = [
        {
            "address": doc.address,
            "kind": doc.kind,
            "name": doc.name,
            "protect": doc.protect,
            "ignore_changes": list(doc.ignore_changes),
            "spec": doc.spec.model_dump(mode="json"),
        }
        for doc in manifests.documents
    ]
    fingerprints = {
        f"{address} {path}": fingerprint_secret(salt, secrets(address, path))
        for address, path in sorted(secrets.references)
    }
    return json_digest({"documents": documents, "secrets": fingerprints})


def save_plan(
    plan: Plan,
    path: Path,
    *,
    manifests: ManifestSet | None = None,
) -> None:
    """Write a plan for a later ``apply PLANFILE`` (no secret values are in a plan).

    With ``manifests`` (the CLI always passes them) the file is bound to them: it records a
    digest of the plan itself and one of the manifests and their secrets' fingerprints
    (``manifests_digest``, under a fresh salt kept in the file), and ``apply`` refuses the
    file when either no longer matches (``check_plan_binding``).
    """
    import json

    data: dict[str, Any] = {"kind": PLAN_FILE_KIND, "plan": plan.model_dump(mode="json")}
    if manifests is not None:
        salt = new_salt()
        data["binding"] = {
            "salt": salt,
            "manifests": manifests_digest(manifests, SecretSource(manifests), salt),
            "plan": json_digest(data["plan"]),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load_plan(path: Path) -> Plan:
    """Read a saved plan.

    Raises:
        PlanError: the file is not a plan written by ``plan --out``.
    """
    return _read_plan_file(path)[0]


def _read_plan_file(path: Path) -> tuple[Plan, dict[str, Any]]:
    """The saved plan and its ``binding`` (``{}`` when the file has none)."""
    import json

    try:
        data = json.loads(read_limited(path, MAX_PLAN_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except FileRefused as err:
        raise PlanError(f"{path}: not a saved plan (it {err.reason})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PlanError(f"{path}: not a saved plan ({err})") from None
    except RecursionError:
        raise PlanError(f"{path}: not a saved plan (JSON nested too deeply)") from None
    if not isinstance(data, dict) or data.get("kind") != PLAN_FILE_KIND:
        raise PlanError(f"{path}: not a saved plan (write one with `reconciler plan --out`)")
    binding = data.get("binding")
    try:
        plan = Plan.model_validate(data["plan"])
        # the digest is of the plan as read, so any edit of its text shows
        plan_digest = json_digest(data["plan"])
    except Exception as err:  # noqa: BLE001 - any failure here means "not a plan we can read"
        raise PlanError(f"{path}: unreadable plan ({err.__class__.__name__}); plan again") from None
    if not isinstance(binding, dict):
        return plan, {}
    return plan, {**binding, "read_plan": plan_digest}


def check_plan_binding(
    path: Path, binding: Mapping[str, Any], manifests: ManifestSet, secrets: SecretSource
) -> None:
    """Refuse a saved plan edited since ``plan --out``, or made from other manifests.

    Raises:
        PlanError: the file records no binding, its plan digest does not match its plan, or
            the manifests (or a secret's value) differ from those the plan was made from.
        ManifestError: a secret the manifests name cannot be read.
    """
    again = f"run `reconciler plan --out {path}` again and review it"
    salt, recorded, plan_digest = (binding.get(k) for k in ("salt", "manifests", "plan"))
    if not (isinstance(salt, str) and isinstance(recorded, str) and isinstance(plan_digest, str)):
        raise PlanError(
            f"{path}: the plan file records no digest of the manifests it was made from "
            f"(written by an older reconciler, or edited), so it cannot be checked; {again}"
        )
    if binding.get("read_plan") != plan_digest:
        raise PlanError(
            f"{path}: the plan was edited after `reconciler plan --out` wrote it (its digest "
            f"does not match); refusing to apply what was not reviewed: {again}"
        )
    try:
        current = manifests_digest(manifests, secrets, salt)
    except ValueError:  # a salt that is not hex: edited
        current = ""
    if current != recorded:
        raise PlanError(
            f"{path}: the manifests (or a secret they name) changed since this plan was made, "
            f"so it no longer shows what they describe; {again}"
        )


def stale_actions(plan: Plan, observed: Observed) -> dict[str, str]:
    """Actions of a saved plan whose resource changed since the plan was made.

    Returns:
        address -> a sentence saying what changed.
    """
    stale: dict[str, str] = {}
    for a in plan.actions:
        if a.type == "create":
            for obj in observed.all(a.kind):
                if not obj.get("archived_at") and owned_address(obj, plan.project) == a.address:
                    stale[a.address] = f"{a.address} was created ({obj['id']}) since the plan"
                    break
            continue
        live = observed.index(a.kind).get(a.remote_id)
        if live is None:
            stale[a.address] = f"{a.address} ({a.remote_id}) no longer exists"
            continue
        marker: str | None
        if a.kind == "agent":
            marker, what = str(live.get("version")), "version"
        else:
            marker, what = live.get("updated_at"), "updated_at"
        if a.live_marker is not None and marker != a.live_marker:
            stale[a.address] = (
                f"{a.address} changed since the plan ({what} {a.live_marker} -> {marker})"
            )
        elif live.get("archived_at") and a.type != "noop":
            stale[a.address] = f"{a.address} was archived since the plan"
        elif a.type != "noop":
            # the plan may predate a change of hands (or a tool that checked no tags)
            owner = not_ours(a.kind, live, plan.project, claimed_address(a.address))
            if owner is not None:
                stale[a.address] = (
                    f"{a.address} ({a.remote_id}) belongs to {owner}; nothing changes or "
                    "archives it"
                )
    return stale


@dataclass(frozen=True, repr=False)
class ApplyResult:
    plan: Plan
    report: ApplyReport
    #: saved-plan actions refused because their resource changed since
    stale: dict[str, str]
    lockfile: Lockfile
    #: every HTTP attempt of the run (retries and 429s included); None when nothing was sent
    requests: RequestStats | None = None
    #: pending intents of addresses no manifest declares, dropped: address -> what became
    #: of its create (``engine.intents.leftover_intents``)
    forgotten_intents: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # short, as PlanResult's
        done = sum(1 for o in self.report.outcomes if o.ok)
        return (
            f"ApplyResult({self.plan.summary!r}, outcomes={len(self.report.outcomes)}, "
            f"ok={done}, stale={len(self.stale)})"
        )


async def apply(
    settings: Settings,
    *,
    plan_file: Path | None = None,
    prune: bool = False,
    delete: bool = False,
    targets: tuple[str, ...] = (),
    allow_empty: bool = False,
    allow_origin_change: bool = False,
    parallelism: int = 10,
    confirm: Callable[[Plan], bool] | None = None,
    on_start: Callable[[Action], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> ApplyResult | None:
    """Converge the provider to the manifests (or carry out a saved plan).

    Holds the apply lock for the whole run; a create is sent only once its pending intent is
    on disk, and every outcome is committed to the lockfile as it arrives, so a crash at any
    point loses nothing the next run cannot find again. Commits are grouped
    (``_GroupCommit``): the intents of every create whose parent is known are written in one
    go before the first request, and outcomes that arrive together share one atomic write.

    Args:
        confirm: called with the plan before anything changes; returning False aborts
            (the function then returns None).
        on_plan: called with the plan once it is known (for rendering).
        allow_origin_change: apply although the lockfile was applied to another provider
            origin; the lockfile then records this run's origin.

    The lockfile records this run's provider origin with its first write (``check_origin``).

    Raises:
        LockHeld: another apply holds the lock.
        LockLost: another apply took the lock over meanwhile (this one was paused past the
            lock's expiry, or it was unlocked by hand); nothing more was sent or recorded.
        PlanError: the saved plan belongs to another lockfile or project, or the lockfile
            was applied to another provider origin (without ``allow_origin_change``).
    """
    with ApplyLock(settings.lockfile) as lock:
        store = StateStore(settings.lockfile, project=settings.project)
        lockfile = store.load()
        origin = check_origin(settings, lockfile, allow_change=allow_origin_change)

        def set_origin(lf: Lockfile) -> Lockfile:
            return lf if lf.origin == origin else lf.model_copy(update={"origin": origin})

        async with connect(settings) as client:
            # every write to the provider first makes sure the lock is still ours
            client.write_guard = lock.ensure_held
            if plan_file is not None:
                plan, binding = _read_plan_file(plan_file)
                manifests = load_manifests(settings.manifests)
                secrets = SecretSource(manifests)
                _check_plan_origin(plan, settings, lockfile)
                check_plan_binding(plan_file, binding, manifests, secrets)
                observed = await observe(client, lockfile, settings.project)
                stale = stale_actions(plan, observed)
            else:
                result = await make_plan(
                    settings,
                    prune=prune,
                    delete=delete,
                    targets=targets,
                    client=client,
                    allow_empty=allow_empty,
                    allow_origin_change=allow_origin_change,
                )
                plan, secrets, stale = result.plan, SecretSource(result.manifests), {}
                manifests, observed = result.manifests, result.observed
            if on_plan is not None:
                on_plan(plan)
            declared = {r.address for r in desired_resources(manifests.documents)}
            leftover = leftover_intents(lockfile, declared, observed, settings.project)
            nothing_to_do = not plan.has_changes and not stale and not _needs_recording(plan)
            if nothing_to_do and not leftover:
                if lockfile.origin not in (None, origin):  # allowed: the lockfile follows
                    await asyncio.to_thread(_guarded, lock.ensure_held, store.commit, set_origin)
                return ApplyResult(plan, ApplyReport(outcomes=()), stale, store.lockfile)
            # twins and conflicts alone send nothing: nothing to confirm
            sends = bool(plan.changes) or any(m.old != m.new for m in plan.pin_moves)
            if confirm is not None and sends and not confirm(plan):
                return None
            salt = lockfile.salt
            # Every create whose parent is already known gets its intent now, in one write,
            # so creates need not wait for the disk one by one (see ``_early_intents``);
            # the same write forgets the intents no manifest claims any more.
            # The origin goes with the first write.
            early = _early_intents(plan, stale)
            if early or leftover:
                now = _now()

                def first_write(lf: Lockfile) -> Lockfile:
                    return record_intents(
                        set_origin(lf).without_pending(*leftover), early.values(), now
                    )

                try:
                    await asyncio.to_thread(_guarded, lock.ensure_held, store.commit, first_write)
                except LockfileWriteError as err:
                    nothing = "nothing was sent to the provider"
                    raise LockfileWriteError(err.path, err.cause, nothing) from err
            if nothing_to_do:  # only intents to forget: done
                return ApplyResult(
                    plan, ApplyReport(outcomes=()), stale, store.lockfile, None, leftover
                )
            journal = _GroupCommit(store, senders=parallelism, guard=lock.ensure_held)
            if store.lockfile.origin != origin:
                journal.stage(set_origin)
            announced: set[str] = set()
            finished: list[tuple[Outcome, str]] = []  # for the summary of a failed write

            def intent(action: Action) -> None:
                announced.add(action.address)
                if action.address in early:
                    return  # on disk already: nothing to wait for (the ticket stays 0)
                _CREATE_TICKET.set(journal.stage(_intent_edit(action, _now())))

            def outcome(o: Outcome) -> None:
                o, now = _refingerprint(o, secrets, salt), _now()
                finished.append((o, now))
                journal.stage(lambda lf: record_outcome(lf, o, now))
                if on_outcome is not None:
                    on_outcome(o)

            try:
                try:
                    with _gc_frozen():
                        report = await apply_plan(
                            plan,
                            _RecordsFirst(ClientBackedProvider(client), journal),
                            resolve_secret=secrets,
                            parallelism=parallelism,
                            on_intent=intent,
                            on_outcome=outcome,
                            on_start=on_start,
                            skip=stale,
                        )
                finally:
                    # creates never sent (a dependency failed, or the run was stopped) leave
                    # no intent behind
                    unsent = [a for a in early if a not in announced]
                    if unsent and journal.healthy:
                        journal.stage(lambda lf: lf.without_pending(*unsent))
                    await journal.close()
            except LockfileWriteError as err:
                summary = _unrecorded(store, finished)
                raise LockfileWriteError(err.path, err.cause, summary) from err
            requests = client.stats.snapshot()
        return ApplyResult(plan, report, stale, store.lockfile, requests, leftover)


def _guarded(
    guard: Callable[[], None],
    commit: Callable[[Callable[[Lockfile], Lockfile]], Lockfile],
    edit: Callable[[Lockfile], Lockfile],
) -> None:
    """``commit(edit)`` once ``guard()`` (the lock's ``ensure_held``) let it."""
    guard()
    commit(edit)


def _unrecorded(store: StateStore, finished: list[tuple[Outcome, str]]) -> str:
    """What an apply stopped by a failed lockfile write did, and what the lockfile holds."""
    done = [(o, now) for o, now in finished if o.ok and o.action.type != "noop"]
    if not done:
        return "nothing was changed at the provider"
    on_disk = store.lockfile
    recorded = sum(1 for o, now in done if record_outcome(on_disk, o, now) == on_disk)
    missing = len(done) - recorded
    summary = (
        f"the apply stopped after {len(done)} change{'s' if len(done) != 1 else ''} at the "
        f"provider, {recorded} of them recorded in the lockfile"
    )
    if missing:
        summary += (
            f"; the next apply finds the other {missing} again (creates by their ownership "
            "tags, updates by comparing with the live objects)"
        )
    return summary


#: the longest a finished action's outcome waits for company before it is written (seconds)
_MOST_PATIENT = 0.25


class _GroupCommit:
    """Lockfile edits of one apply, written in groups (group commit).

    A lockfile write is a whole-file atomic replace with two fsyncs: 5-20 ms, more for a large
    lockfile. One write per intent and per outcome, in the event loop, would serialise the
    whole apply behind the disk. Instead the callbacks stage their edit and return; a writer
    task applies every edit staged so far, in order, and writes the result once (in a worker
    thread, so requests keep flowing). ``stage`` returns a ticket and ``durable(ticket)``
    waits until that edit is on disk: ``_RecordsFirst`` calls it before a create, so the
    create's pending intent is on disk before the request is sent.
    A failed write is raised by the next ``stage`` or ``durable`` and by ``close``.

    Every write rewrites the whole file (5 MB at 10,000 entries), so fewer, larger groups
    matter: before a write the writer lingers (``_linger_for_more``) until ``senders``
    callers are waiting for it, or (once anyone waits) ``linger`` seconds have passed;
    with nobody waiting, about as long as the last write took.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        senders: int = 1,
        linger: float = 0.005,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._guard = guard  # called before every write (the apply lock's ensure_held)
        self._senders = max(1, senders)
        self._linger = linger
        self._all_waiting = asyncio.Event()
        self._staged: list[Callable[[Lockfile], Lockfile]] = []
        self._staged_count = 0
        self._written_count = 0
        self._writer: asyncio.Task[None] | None = None
        self._in_flight = threading.Event()  # set while no write is running in the thread
        self._in_flight.set()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._error: BaseException | None = None
        self._last_write = 0.0  # seconds the last write took
        self._closing = False

    @property
    def healthy(self) -> bool:
        """No write has failed."""
        return self._error is None

    def stage(self, edit: Callable[[Lockfile], Lockfile]) -> int:
        """Queue ``edit`` for the next write (raises the failure of an earlier write).

        Returns:
            Its ticket: ``durable(ticket)`` returns once this edit is on disk.
        """
        if self._error is not None:
            raise self._error
        self._staged.append(edit)
        self._staged_count += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_staged())
        return self._staged_count

    async def durable(self, ticket: int) -> None:
        """Wait until the edit of ``ticket`` (what ``stage`` returned; 0: none) is written."""
        if self._error is not None:
            raise self._error
        if self._written_count >= ticket:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ticket, done))
        self._all_waiting.set()  # the writer looks again: it lingers less once someone waits
        await done

    async def close(self) -> None:
        """Write everything staged, also when the apply is being cancelled; raise a failure."""
        self._closing = True
        self._all_waiting.set()  # no more company is coming: the writer stops lingering
        try:
            while self._writer is not None and not self._writer.done():
                await asyncio.shield(self._writer)
        except asyncio.CancelledError:
            self._writer.cancel()  # type: ignore[union-attr]
            self._in_flight.wait(30)  # the thread's write goes first: edits stay in order
            self._write_in_line()
            raise
        self._write_in_line()
        if self._error is not None:
            raise self._error

    def _write_in_line(self) -> None:
        if not self._staged or self._error is not None:
            return
        batch, upto = self._take()
        try:
            if self._guard is not None:
                self._guard()
            self._store.commit(_chain(batch))
        except Exception as err:  # noqa: BLE001 - kept, and raised by close() to abort
            self._error = err
        else:
            self._written_count = upto

    def _take(self) -> tuple[list[Callable[[Lockfile], Lockfile]], int]:
        batch, self._staged = self._staged, []
        return batch, self._staged_count

    def _commit_in_thread(self, edit: Callable[[Lockfile], Lockfile]) -> None:
        try:
            if self._guard is not None:
                self._guard()
            self._store.commit(edit)
        finally:
            self._in_flight.set()

    async def _write_staged(self) -> None:
        loop = asyncio.get_running_loop()
        while self._staged and self._error is None:
            await self._linger_for_more(loop)
            batch, upto = self._take()
            self._in_flight.clear()
            started = loop.time()
            try:
                await asyncio.to_thread(self._commit_in_thread, _chain(batch))
            except Exception as err:  # noqa: BLE001 - kept, and raised to abort the apply
                self._error = err
            else:
                self._written_count = upto
            self._last_write = loop.time() - started
            self._wake()

    async def _linger_for_more(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for more edits before a write, so that one write carries many.

        Someone waiting (a create's intent): at most ``linger``, less once ``senders`` wait.
        Only outcomes staged (nobody waits for them): as long as the last write took, at
        least ``4 * linger`` and at most ``_MOST_PATIENT``, so a large lockfile is rewritten
        at most about half of the time instead of back to back.
        """
        start = loop.time()
        patient = start + max(4 * self._linger, min(self._last_write, _MOST_PATIENT))
        while len(self._waiters) < self._senders and not self._closing:
            deadline = start + self._linger if self._waiters else patient
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._all_waiting.clear()
            try:
                await asyncio.wait_for(self._all_waiting.wait(), remaining)
            except TimeoutError:
                return

    def _wake(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for upto, done in self._waiters:
            if done.done():
                continue
            if self._error is not None:
                done.set_exception(self._error)
            elif upto <= self._written_count:
                done.set_result(None)
            else:
                still.append((upto, done))
        self._waiters = still


def _chain(edits: list[Callable[[Lockfile], Lockfile]]) -> Callable[[Lockfile], Lockfile]:
    def edit(lockfile: Lockfile) -> Lockfile:
        for one in edits:
            lockfile = one(lockfile)
        return lockfile

    return edit


def _intent_edit(action: Action, now: str) -> Callable[[Lockfile], Lockfile]:
    return lambda lf: record_intent(lf, action, now)


def _early_intents(plan: Plan, skip: Mapping[str, str]) -> dict[str, Action]:
    """The creates (and replaces) whose intent can be recorded before the apply starts.

    An intent says "this address may have been created; look for it by its ownership tags".
    Recording it early is as safe as recording it right before the request: the next run
    resolves it by the same listing, and finds nothing if the request was never sent. What it
    buys is one disk write for all of them, instead of one wait per create. A create whose
    parent (a credential's vault) is created in this same run gets its intent when it is sent,
    once the parent's id is known.
    """
    return {
        a.address: a
        for a in plan.actions
        if a.type in ("create", "replace")
        and a.address not in skip
        and (a.parent is None or a.parent_id is not None)
    }


#: The ticket of the lockfile edit that must be on disk before this action's next write
#: request: its pending intent. Set by the intent callback inside the action's own task.
_CREATE_TICKET: ContextVar[int] = ContextVar("reconciler_create_ticket", default=0)


class _RecordsFirst:
    """The provider writer: a create (or a replace's removal) waits until its intent is on disk.

    Other writes do not wait for the disk: an update, archive or delete whose outcome is lost
    in a crash is found again by the next run's refresh, which compares live objects by id.
    """

    def __init__(self, inner: ClientBackedProvider, journal: _GroupCommit) -> None:
        self._inner = inner
        self._journal = journal

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, kind: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        await self._journal.durable(_CREATE_TICKET.get())
        return await self._inner.create(kind, body, **kw)

    async def update(self, kind: str, remote_id: str, body: dict[str, Any], **kw: Any) -> Any:
        await self._journal.durable(_CREATE_TICKET.get())
        return await self._inner.update(kind, remote_id, body, **kw)

    async def archive(self, kind: str, remote_id: str, **kw: Any) -> Any:
        await self._journal.durable(_CREATE_TICKET.get())
        return await self._inner.archive(kind, remote_id, **kw)

    async def delete(self, kind: str, remote_id: str, **kw: Any) -> None:
        await self._journal.durable(_CREATE_TICKET.get())
        await self._inner.delete(kind, remote_id, **kw)


def _needs_recording(plan: Plan) -> bool:
    return any(a.type == "noop" and a.target is not None for a in plan.actions)


def _refingerprint(o: Outcome, secrets: SecretSource, salt: str) -> Outcome:
    """Fingerprints recorded with the lockfile's own salt (a saved plan may predate it)."""
    target = getattr(o.action, "target", None)
    if not o.ok or target is None or not target.secret_fingerprints:
        return o
    fps = {p: fingerprint_secret(salt, secrets(o.address, p)) for p in target.secret_fingerprints}
    if fps == target.secret_fingerprints:
        return o
    action = o.action.model_copy(
        update={"target": target.model_copy(update={"secret_fingerprints": fps})}
    )
    import dataclasses

    return dataclasses.replace(o, action=action)


def _check_plan_origin(plan: Plan, settings: Settings, lockfile: Lockfile) -> None:
    if plan.project != settings.project:
        raise PlanError(f"the saved plan is for project {plan.project!r}, not {settings.project!r}")
    if plan.lineage and settings.lockfile.exists() and plan.lineage != lockfile.lineage:
        raise PlanError(
            f"the saved plan was made from another lockfile (lineage {plan.lineage}, "
            f"{settings.lockfile} has {lockfile.lineage}); run `reconciler plan` again"
        )
