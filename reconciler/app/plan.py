"""``plan``: load the manifests, refresh the live state, build the plan. Changes nothing.

settings = Settings(manifests=Path("manifests"), lockfile=Path("state/reconciler.lock"))
result = asyncio.run(make_plan(settings))
print(result.plan.summary)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.app.expiry import check_expiries
from reconciler.app.filerefs import (
    check_anthropic_skills,
    check_file_refs,
    check_listed_refs,
)
from reconciler.app.heal import recover_rollouts
from reconciler.app.memories import read_memory_histories, read_present_memories
from reconciler.app.policies import check_policies
from reconciler.app.secrets import SecretSource
from reconciler.app.skills import check_skills, describe_skills
from reconciler.app.workspace import (
    Settings,
    check_origin,
    connect,
    connection,
    observe,
    state_exists,
    state_location,
)
from reconciler.engine.gate import RecoveredRollout
from reconciler.engine.model import Plan, PolicyWarning
from reconciler.engine.planner import PlanOptions, build_plan
from reconciler.engine.refresh import Observed
from reconciler.errors import LockfileError, PlanError
from reconciler.manifest import ManifestSet, load_manifests
from reconciler.state import Lockfile, LockInfo, StateLocation

if TYPE_CHECKING:  # the HTTP stack loads when a command connects (tests/test_startup.py)
    from reconciler.provider import ProviderClient


@dataclass(frozen=True)
class PlanChoices:
    """What a plan is asked to do beyond the manifests: the choices ``plan`` and ``apply``
    share (``make_plan``, and ``apply`` without a saved plan), one flag each on the CLI."""

    #: archive owned resources whose documents were removed (``--prune``)
    prune: bool = False
    #: with prune: delete instead of archive where the provider can delete
    delete: bool = False
    #: plan only these addresses and what they depend on (``--target``)
    targets: tuple[str, ...] = ()
    #: allow ``prune`` when the manifests hold no document at all (which plans to archive
    #: everything the project owns); refused otherwise (``--allow-empty``)
    allow_empty: bool = False
    #: plan although the lockfile was applied to another provider origin (``check_origin``)
    allow_origin_change: bool = False
    #: gated pin moves move without their checks (``--skip-checks``)
    skip_checks: bool = False
    #: held candidates become candidates again, checks first (``--retry-held``)
    retry_held: bool = False

    def __post_init__(self) -> None:
        # a target given twice is planned and named once, in the order given
        object.__setattr__(self, "targets", tuple(dict.fromkeys(self.targets)))

    @property
    def decided_when_planning(self) -> bool:
        """Whether any choice but ``allow_origin_change`` is made: the others decide what the
        plan holds, so a saved plan has them already (the origin is checked again when the
        plan is applied)."""
        return any(
            getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "allow_origin_change"
        )

    @classmethod
    def of(cls, choices: PlanChoices | None, keywords: dict[str, Any]) -> PlanChoices:
        """``choices`` with ``keywords`` (field names) laid over it: ``make_plan`` and ``apply``
        also take the choices one keyword each, as before ``PlanChoices`` existed.

        Raises:
            TypeError: a keyword that is not a choice.
        """
        if "targets" in keywords:
            keywords = {**keywords, "targets": tuple(keywords["targets"])}
        return dataclasses.replace(choices or cls(), **keywords)

    def engine_options(self, project: str) -> PlanOptions:
        """The planner's options for ``project``: the choices it knows, by name."""
        known = {f.name for f in dataclasses.fields(PlanOptions)} - {"project"}
        known &= {f.name for f in dataclasses.fields(self)}  # the rest keep their defaults
        return PlanOptions(project=project, **{name: getattr(self, name) for name in known})


@dataclass(frozen=True, repr=False)
class PlanResult:
    plan: Plan
    manifests: ManifestSet
    lockfile: Lockfile
    observed: Observed
    #: HTTP requests the refresh took (for benchmarks and --debug)
    requests: int = 0
    #: who held the state's lock (or lease) alive when the plan was made: a run that may be
    #: changing some of what the plan shows right now (``plan`` warns); None when nobody
    running: LockInfo | None = None
    #: why the lock (or lease) could not be read after the plan was made (the database went
    #: away since it gave the state): the plan stands, and ``plan`` warns that a run may be
    #: racing it; None when it was read
    running_unknown: str | None = None
    #: who held the lock (or lease) when the plan read the state and let it go before the
    #: plan was made: a run that may have changed what the plan read (``plan`` warns); None
    #: when nobody did, or ``running`` says it still runs
    finished: LockInfo | None = None

    def __repr__(self) -> str:
        # Short on purpose: Python 3.11's asyncio.run formats its main task's result when it
        # restores the SIGINT handler (twice), and a full repr of a large plan takes seconds.
        return f"PlanResult({self.plan.summary!r}, requests={self.requests})"


def _plan_lineage(settings: Settings, lockfile: Lockfile) -> Lockfile:
    # A lockfile not yet on disk has a throwaway lineage: a saved plan must not pin it.
    if not state_exists(settings, lockfile):
        return lockfile.model_copy(update={"lineage": ""})
    return lockfile


async def make_plan(
    settings: Settings,
    choices: PlanChoices | None = None,
    *,
    client: ProviderClient | None = None,
    loaded: ManifestSet | None = None,
    **keywords: Any,
) -> PlanResult:
    """Load, refresh and plan. Changes nothing anywhere.

    Args:
        loaded: the manifests, when the caller has read them already (``apply`` where
            nothing was applied checks them before its lock): not read again.
        choices: what the plan is asked to do (``PlanChoices``); by default, everything
            the manifests declare and nothing more. With ``client`` the origin is not
            checked (``choices.allow_origin_change``): it is then the caller's to check
            (``apply`` does).
        keywords: the fields of ``PlanChoices`` one by one (``prune=True``), laid over
            ``choices``: the form this function took before ``PlanChoices``.

    Raises:
        PlanError: ``prune`` over manifests with no document, without ``allow_empty``; or the
            lockfile was applied to another origin, without ``allow_origin_change``.
        ManifestError: the manifests are invalid or a secret cannot be read.
        PolicyError: a mandatory policy rule fails on a resource (nothing was refreshed).
        LockfileError: the lockfile cannot be read.
        ProviderError: the provider failed.
    """
    choices = PlanChoices.of(choices, keywords)
    # One state location for the whole plan: under --backend it is one connection to the
    # database, which reads the state and then asks who holds the lease (a second connection
    # would cost a server slot, often scarce behind a pooler, and another authentication).
    with gc_paused(), ExitStack() as stack:
        if client is None and settings.provider_url is None:
            # The embedded provider answers at once, so there is no wait to hide; and bad
            # manifests must not even open its database.
            manifests = load_manifests(settings.manifests)
            warnings = check_policies(manifests)
            location = stack.enter_context(state_location(settings))
            lockfile = location.read()
            at_read = _holder(location)
            check_origin(settings, lockfile, allow_change=choices.allow_origin_change)
            secrets = SecretSource(manifests)
            secrets.check_all(choices.targets)
            async with connect(settings) as c:
                observed = await observe(c, lockfile, settings.project)
                observed, recovered = await _live_reads(c, settings, manifests, lockfile, observed)
                requests = c.stats.requests
        else:
            try:
                location = stack.enter_context(state_location(settings))
                lockfile = location.read()
                # apply (its own client) holds the lock itself: only a plan asks who else does
                at_read = _holder(location) if client is None else None
            except LockfileError:
                load_manifests(settings.manifests)  # an error in the manifests comes first
                raise
            if client is None:  # a caller's own client is checked by the caller (apply)
                check_origin(settings, lockfile, allow_change=choices.allow_origin_change)
            async with connection(settings, client) as c:
                before = c.stats.requests
                manifests, secrets, warnings, observed = await _load_while_listing(
                    settings, c, lockfile, choices.targets, loaded
                )
                observed, recovered = await _live_reads(c, settings, manifests, lockfile, observed)
                requests = c.stats.requests - before
        if choices.prune and not manifests.documents and not choices.allow_empty:
            raise PlanError(
                f"refusing --prune: {settings.manifests} holds no manifest document, so the "
                f"plan would archive everything project {settings.project!r} owns. Check "
                "--manifests/-f; if archiving everything is intended, add --allow-empty"
            )
        try:
            plan = build_plan(
                manifests.documents,
                observed,
                _plan_lineage(settings, lockfile),
                choices.engine_options(settings.project),
                fingerprint=secrets.fingerprinter(lockfile.salt),
                recovered=recovered,
                skills=manifests.skills,
            )
        except PlanError as err:
            raise placed(err, manifests) from None
        check_expiries(plan, manifests)
        running, running_unknown = None, None
        try:
            running = location.running_lock()
        except LockfileError as err:  # asked only to warn: the plan read the state already
            running_unknown = str(err)
        finished = at_read if running is None and running_unknown is None else None
    if not plan.lineage:
        plan = plan.model_copy(update={"lineage": None})
    if warnings:
        plan = plan.model_copy(update={"policy_warnings": warnings})
    return PlanResult(
        plan, manifests, lockfile, observed, requests, running, running_unknown, finished
    )


def _holder(location: StateLocation) -> LockInfo | None:
    """Who holds the state's lock (or lease) alive now; None also when that cannot be read
    (only a warning hangs on it, and the check after the plan says so)."""
    try:
        return location.running_lock()
    except LockfileError:
        return None


def placed(err: PlanError, manifests: ManifestSet) -> PlanError:
    """``err`` with the ``file:line:col`` of the manifest value it names in front, as every
    error about a manifest says where to look; ``err`` itself when it names none."""
    if err.address is None:
        return err
    try:
        where = manifests.location(err.address, err.field)
    except KeyError:
        return err
    return PlanError(f"{where}: {err}", stale=err.stale)


async def _skills(
    client: ProviderClient,
    manifests: ManifestSet,
    lockfile: Lockfile,
    observed: Observed,
    project: str,
) -> Observed:
    """What the plan must know of the live skills beyond their list (``app.skills``)."""
    if not manifests.skills and not any(e.kind == "skill" for e in lockfile.resources.values()):
        return observed
    observed = await describe_skills(client, manifests, lockfile, observed)
    await check_skills(client, manifests, lockfile, observed, project)
    return observed


async def _live_reads(
    client: ProviderClient,
    settings: Settings,
    manifests: ManifestSet,
    lockfile: Lockfile,
    observed: Observed,
) -> tuple[Observed, dict[str, RecoveredRollout]]:
    """What the plan reads beyond the lists: the skills' reads and checks (``_skills``), the
    files manifests name by id, and the memory history of stores and the rollout records of
    deployments found by their tags alone (``app/memories.py``, ``app/heal.py``)."""
    project = settings.project
    observed = await _skills(client, manifests, lockfile, observed, project)
    await check_file_refs(client, manifests)
    await check_anthropic_skills(client, manifests)
    check_listed_refs(manifests, observed)
    observed = await read_memory_histories(client, manifests, lockfile, observed, project)
    observed = await read_present_memories(client, manifests, lockfile, observed, project)
    recovered = await recover_rollouts(client, manifests.documents, lockfile, observed, project)
    return observed, recovered


def _load_checked(
    settings: Settings, targets: tuple[str, ...] = (), loaded: ManifestSet | None = None
) -> tuple[ManifestSet, SecretSource, tuple[PolicyWarning, ...]]:
    manifests = loaded if loaded is not None else load_manifests(settings.manifests)
    warnings = check_policies(manifests)
    secrets = SecretSource(manifests)
    secrets.check_all(targets)
    return manifests, secrets, warnings


async def _load_while_listing(
    settings: Settings,
    client: ProviderClient,
    lockfile: Lockfile,
    targets: tuple[str, ...] = (),
    loaded: ManifestSet | None = None,
) -> tuple[ManifestSet, SecretSource, tuple[PolicyWarning, ...], Observed]:
    """Load the manifests (in a worker thread) while the provider is listed.

    The listing needs only the lockfile, and mostly waits on the network (a 10,000-agent
    project is 100 pages, one after the other); loading is CPU work. Done side by side a plan
    takes about the longer of the two rather than their sum. An error in the manifests
    wins over the listing's: the listing is cancelled and the manifest error raised.
    """
    listing = asyncio.ensure_future(observe(client, lockfile, settings.project))
    try:
        manifests, secrets, warnings = await asyncio.to_thread(
            _load_checked, settings, targets, loaded
        )
    except BaseException:
        listing.cancel()
        await asyncio.gather(listing, return_exceptions=True)
        raise
    return manifests, secrets, warnings, await listing


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading, refreshing and planning.

    They create many objects that all stay alive, which the collector traverses again and
    again for nothing: at 10,000 resources that was a third of a plan. Garbage cycles made
    meanwhile are collected once it runs again. ``apply`` pauses it likewise around the
    manifests it reads before its lock and while the plan is shown (~140 and ~70 passes
    that freed nothing at 1,100 resources).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
