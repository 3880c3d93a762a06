"""``apply``: converge the provider to the manifests (or carry out a saved plan).

Holds the apply lock, executes the plan with the engine's executor, and commits every intent
and outcome to the lockfile through the journal (``state.Journal``). Nothing here prints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.app.checks import ProviderCheckRunner
from reconciler.app.expiry import check_expiries
from reconciler.app.plan import PlanChoices, gc_paused, make_plan
from reconciler.app.planfile import (
    check_plan_binding,
    check_plan_origin,
    check_plan_provider,
    read_plan_file,
)
from reconciler.app.policies import check_policies
from reconciler.app.secrets import SecretSource
from reconciler.app.skills import skill_files
from reconciler.app.workspace import (
    Settings,
    check_origin,
    connect,
    locked_state,
    observe,
    with_origin,
)
from reconciler.engine.desired import desired_resources
from reconciler.engine.executor import ApplyReport, Outcome, StopRequest, apply_plan
from reconciler.engine.intents import leftover_intents
from reconciler.engine.model import Action, Plan, Update
from reconciler.engine.record import record_intent, record_intents, record_outcome
from reconciler.engine.staleness import stale_actions
from reconciler.manifest import ManifestSet, load_manifests
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    ClosableBackend,
    Journal,
    Lockfile,
    LockfileWriteError,
    StateBackend,
    StateLock,
    fingerprint_secret,
    json_digest,
)

if TYPE_CHECKING:
    from reconciler.provider import RequestStats


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Keep the objects alive now (manifests, plan, live objects) out of cyclic GC passes.

    From the plan on, every request makes short-lived garbage and the collector runs often;
    each pass used to walk the whole planning heap again (a full pass while the plan of 1,100
    creates printed: ~30 ms). ``gc.freeze`` moves what exists now to a generation the
    collector skips, until ``gc.unfreeze`` at the end: ~5% of the CPU of an apply of 1,100
    creates.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
    choices: PlanChoices | None = None,
    *,
    plan_file: Path | None = None,
    parallelism: int = 10,
    confirm: Callable[[Plan], bool] | None = None,
    on_start: Callable[[Action], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    stop: StopRequest | None = None,
    **keywords: Any,
) -> ApplyResult | None:
    """Converge the provider to the manifests (or carry out a saved plan).

    Holds the apply lock for the whole run; a create is sent only once its pending intent is
    on disk, and every outcome is committed to the lockfile as it arrives, so a crash at any
    point loses nothing the next run cannot find again. Commits are grouped
    (``state.Journal``): the intents of every create whose parent is known are written in one
    go before the first request, and outcomes that arrive together share one atomic write.

    Args:
        choices: what the plan is asked to do (``PlanChoices``); with ``plan_file`` only
            ``allow_origin_change`` counts (the saved plan was made with the others). With
            ``allow_origin_change`` the lockfile then records this run's origin.
        keywords: the fields of ``PlanChoices`` one by one (``prune=True``), laid over
            ``choices``: the form this function took before ``PlanChoices``.
        confirm: called with the plan before anything changes; returning False aborts
            (the function then returns None).
        on_plan: called with the plan once it is known (for rendering).
        stop: requested (a first Ctrl-C) while the actions run: no new action starts, those
            in flight finish and are recorded, the report's ``stopped`` says why.

    The lockfile records this run's provider origin with its first write (``check_origin``).

    Raises:
        LockHeld: another apply holds the lock.
        LockLost: another apply took the lock over meanwhile (this one was paused past the
            lock's expiry, or it was unlocked by hand); nothing more was sent or recorded.
        PlanError: the saved plan belongs to another lockfile or project, or the lockfile
            was applied to another provider origin (without ``allow_origin_change``).
        PolicyError: a mandatory policy rule fails, also one added since a saved plan.
    """
    choices = PlanChoices.of(choices, keywords)
    loaded: ManifestSet | None = None
    if settings.backend is None and not settings.lockfile.exists():
        # never applied here: bad input is said before the lock makes the state's folder
        # (the manifests, read once, are the ones planned; the plan file is read again)
        if plan_file is not None:
            read_plan_file(plan_file)
        with gc_paused():  # as make_plan does: what it reads stays alive
            loaded = load_manifests(settings.manifests)
        check_policies(loaded)
    with locked_state(settings, "apply") as (lock, store), ExitStack() as frozen:
        lockfile = store.load()
        origin = check_origin(settings, lockfile, allow_change=choices.allow_origin_change)
        set_origin = with_origin(origin)

        async with connect(settings) as client:
            # every write to the provider first makes sure the lock is still ours
            client.write_guard = lock.ensure_held
            if plan_file is not None:
                plan, binding = read_plan_file(plan_file)
                manifests = loaded if loaded is not None else load_manifests(settings.manifests)
                check_policies(manifests)  # a mandatory rule added since the plan still stops it
                secrets = SecretSource(manifests)
                check_plan_origin(plan, settings, lockfile)
                check_plan_provider(
                    plan_file,
                    binding,
                    origin,
                    allow_change=choices.allow_origin_change,
                    lockfile_dir=Path(settings.lockfile).parent,
                )
                check_plan_binding(plan_file, binding, manifests, secrets, plan.targets)
                check_expiries(plan, manifests)  # an expiry may have passed since the plan
                digest: str | None = str(binding["plan"]) if binding.get("plan") else None
                observed = await observe(client, lockfile, settings.project)
                stale = stale_actions(plan, observed, lockfile)
            else:
                result = await make_plan(settings, choices, client=client, loaded=loaded)
                plan, secrets, stale = result.plan, SecretSource(result.manifests), {}
                manifests, observed = result.manifests, result.observed
                digest = None
            frozen.enter_context(_gc_frozen())
            declared = {r.address for r in desired_resources(manifests.documents)}
            leftover = leftover_intents(lockfile, declared, observed, settings.project)
            nothing_to_do = not plan.has_changes and not stale and not _needs_recording(plan)
            goes_on = not nothing_to_do or bool(leftover)
            # twins and conflicts alone send nothing: nothing to confirm
            sends = bool(plan.changes) or any(m.old != m.new for m in plan.pin_moves)
            first = _FirstWrite(store, lock, plan, stale, leftover, set_origin, digest)
            if goes_on and (confirm is None or not sends):
                # Nobody is asked: the first write's fsyncs (~10 ms at 1,000 intents) pass
                # while the plan is shown. Nothing is sent before both are done.
                first.start()
            try:
                if on_plan is not None:
                    with gc_paused():  # the plan's text lives until it is shown whole
                        on_plan(plan)
            except BaseException:
                await first.take_back()  # the plan could not be shown: nothing is sent
                raise
            if not goes_on:
                if lockfile.origin not in (None, origin):  # allowed: the lockfile follows
                    await asyncio.to_thread(_guarded, lock.ensure_held, store.commit, set_origin)
                return ApplyResult(plan, ApplyReport(outcomes=()), stale, store.lockfile)
            if confirm is not None and sends and not confirm(plan):
                return None
            early = await first.done()  # (started now when a question was asked)
            salt = lockfile.salt
            if nothing_to_do:  # only intents to forget: done
                return ApplyResult(
                    plan, ApplyReport(outcomes=()), stale, store.lockfile, None, leftover
                )
            journal = Journal(store, senders=parallelism, guard=lock.ensure_held)
            if store.lockfile.origin != origin:
                journal.stage(set_origin)
            intents = _Intents(journal, early)
            finished: list[tuple[Outcome, str]] = []  # for the summary of a failed write
            started: set[str] = set()

            def starting(action: Action) -> None:
                started.add(action.address)
                if on_start is not None:
                    on_start(action)

            def outcome(o: Outcome) -> None:
                o, now = _refingerprint(o, secrets, salt, lockfile), _now()
                finished.append((o, now))
                journal.stage(lambda lf: record_outcome(lf, o, now))
                if on_outcome is not None:
                    on_outcome(o)

            try:
                try:
                    report = await apply_plan(
                        plan,
                        ClientBackedProvider(client),
                        resolve_secret=secrets,
                        parallelism=parallelism,
                        journal=intents,
                        on_outcome=outcome,
                        on_start=starting,
                        skip=stale,
                        checks=ProviderCheckRunner(client, settings.project),
                        read_files=skill_files(manifests),
                        stop=stop,
                    )
                finally:
                    # creates never sent (a dependency failed, or the run was stopped) leave
                    # no intent behind; a gated pin move stopped on its way keeps its own:
                    # its update may have been sent, and the intent is what says the checks
                    # moved the pin (one that ended has its outcome recorded instead)
                    in_flight = started.difference(o.address for o, _ in finished)
                    sent = intents.announced | in_flight  # once, not once per early intent
                    unsent = [a for a in early if a not in sent]
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


def _unrecorded(store: StateBackend, finished: list[tuple[Outcome, str]]) -> str:
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


def _intent_edit(action: Action, now: str) -> Callable[[Lockfile], Lockfile]:
    return lambda lf: record_intent(lf, action, now)


@dataclass
class _FirstWrite:
    """An apply's first state write, before anything is sent: which plan the run carries
    out (for the history), the intents of every create whose parent is known
    (``_early_intents``), the leftover intents forgotten and the run's origin recorded.

    ``start`` hands the write to a worker thread at once, so that the caller can go on
    (showing the plan) while it is written; ``done`` waits for it.
    """

    store: ClosableBackend
    lock: StateLock
    plan: Plan
    stale: Mapping[str, str]
    leftover: Mapping[str, str]
    set_origin: Callable[[Lockfile], Lockfile]
    digest: str | None
    early: dict[str, Action] = field(default_factory=dict, init=False)
    _writing: asyncio.Future[None] | None = field(default=None, init=False)
    _started: bool = field(default=False, init=False)

    def start(self) -> None:
        self._started = True
        plan, store = self.plan, self.store
        # the history records which plan made each change
        store.run = dataclasses.replace(
            store.run,
            plan_digest=self.digest or json_digest(plan.model_dump(mode="json")),
            operation=_operation(plan),
        )
        # Every create whose parent is already known gets its intent now, in one write, so
        # creates need not wait for the disk one by one (see ``early_intents``); the same
        # write forgets the intents no manifest claims any more. The origin goes with it.
        early = self.early = _early_intents(plan, self.stale)
        if not early and not self.leftover:
            return
        now, set_origin, leftover = _now(), self.set_origin, self.leftover

        def first_write(lf: Lockfile) -> Lockfile:
            return record_intents(set_origin(lf).without_pending(*leftover), early.values(), now)

        # run_in_executor, not to_thread: the write is in the thread's hands before this
        # returns, not once the event loop next runs
        self._writing = asyncio.get_running_loop().run_in_executor(
            None, _guarded, self.lock.ensure_held, store.commit, first_write
        )

    async def done(self) -> dict[str, Action]:
        """The early intents, once written.

        Raises:
            LockfileWriteError: the write failed (nothing was sent to the provider).
        """
        if not self._started:
            self.start()
        if self._writing is not None:
            try:
                await asyncio.shield(self._writing)
            except asyncio.CancelledError:  # Ctrl-C before anything was sent
                await self.take_back()  # the thread's write ends before the lock is let go
                raise
            except LockfileWriteError as err:
                nothing = "nothing was sent to the provider"
                raise LockfileWriteError(err.path, err.cause, nothing) from err
        return self.early

    async def take_back(self) -> None:
        """Forget the early intents again (the apply stops before sending anything), once
        the write is over; best effort, as a crash would leave them: the next run looks for
        each by its ownership tags and finds nothing."""
        if self._writing is None:
            return
        try:
            await asyncio.shield(self._writing)
        except Exception:  # noqa: BLE001 - written or not, the apply stops for its own reason
            return
        if self.early:
            unsent = tuple(self.early)
            try:
                await asyncio.to_thread(
                    _guarded,
                    self.lock.ensure_held,
                    self.store.commit,
                    lambda lf: lf.without_pending(*unsent),
                )
            except Exception:  # noqa: BLE001, S110 - as above
                pass


def _early_intents(plan: Plan, skip: Mapping[str, str]) -> dict[str, Action]:
    """The creates (and replaces) whose intent can be recorded before the apply starts, and
    the gated pin moves (their intent keeps what moved the pin, should the run be killed
    once it moved: ``engine.pinlog.pin_intent``).

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
        if (
            (a.type in ("create", "replace") and (a.parent is None or a.parent_id is not None))
            # a gated pin move: what moves it survives a kill (``engine.pinlog.pin_intent``)
            or (isinstance(a, Update) and a.gate is not None)
        )
        and a.address not in skip
    }


class _Intents:
    """The executor's ``IntentJournal`` for one apply: a create's pending intent is durable
    before ``intend`` returns, so before the create is sent.

    Creates whose intent went into the first write (``_early_intents``) wait for nothing;
    the others (a credential of a vault made in this run) commit theirs through the journal,
    grouped with whatever else is staged. Updates, archives and deletes record no intent: one
    whose outcome is lost in a crash is found again by the next run's refresh, by id.
    """

    def __init__(self, journal: Journal, early: Mapping[str, Action]) -> None:
        self._journal = journal
        self._early = early
        #: every create the executor announced (the early ones never announced were not sent)
        self.announced: set[str] = set()

    async def intend(self, action: Action) -> None:
        self.announced.add(action.address)
        if action.address in self._early:
            return  # on disk since the first write
        await self._journal.commit(_intent_edit(action, _now()))


def _operation(plan: Plan) -> str:
    """The history's word for this apply: an emergency that moved pins past their checks
    (``--skip-checks``) says so there too, not only in each deployment's pin history."""
    skipped = any(
        isinstance(a, Update) and a.gate is not None and a.gate.mode == "skip-checks"
        for a in plan.actions
    )
    return "apply --skip-checks" if skipped else "apply"


def _needs_recording(plan: Plan) -> bool:
    return any(a.type == "noop" and a.target is not None for a in plan.actions)


def _refingerprint(o: Outcome, secrets: SecretSource, salt: str, lockfile: Lockfile) -> Outcome:
    """Fingerprints recorded with the lockfile's own salt (a saved plan may predate it).
    One the lockfile records already for the object is kept: the plan keeps it for a secret
    ``ignore_changes`` leaves alone, which the manifest's value never replaced."""
    target = getattr(o.action, "target", None)
    if not o.ok or target is None or not target.secret_fingerprints:
        return o
    entry = lockfile.resources.get(o.address)
    recorded = entry.secret_fingerprints if entry is not None else {}
    fps = {
        p: fp if recorded.get(p) == fp else fingerprint_secret(salt, secrets(o.address, p))
        for p, fp in target.secret_fingerprints.items()
    }
    if fps == target.secret_fingerprints:
        return o
    action = o.action.model_copy(
        update={"target": target.model_copy(update={"secret_fingerprints": fps})}
    )
    return dataclasses.replace(o, action=action)
