"""Which remote ids a session for an Agent or Deployment of the manifests runs with.

The session uses what apply recorded: the agent id and version from the lockfile (for a
deployment, the version its lockfile entry pinned), the environment, vault ids and
resources of the deployment (a memory store by the id apply recorded; a repository's token
read from its from_env/from_file), for an agent the only Environment of the manifests or an
explicit one. Lookups over a ``ManifestSet`` and a ``Lockfile``; no I/O but a secret's read.

Also the checks a session's start or continuation needs at the provider (one read each):
``check_deployment_live`` (a new session of a deployment archived, or left on an archived
agent, behind git's back), ``check_continued_session`` (``run --session``: the session is the
target's), and ``find_started_session`` (a session whose create was interrupted, by the token
``run`` put in its metadata). ``start_session`` creates a ``run``'s session and settles a
create whose answer was lost by that token. Prints nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.app.workspace import Settings, embedded_database_gone
from reconciler.engine.pinlog import settle_live_pin_moves
from reconciler.engine.rollout import held_out_by, held_out_hint
from reconciler.errors import (
    AmbiguousWriteError,
    NotFoundError,
    PlanError,
    ProviderError,
    RunError,
    a_or_an,
)
from reconciler.kinds import PROJECT_KEY
from reconciler.manifest import DeploymentSpec, ManifestSet
from reconciler.manifest.deployment import MemoryStoreMount
from reconciler.provider.origin import describe_origin, local_origin, same_origin
from reconciler.state import HeldVersion, Lockfile

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient
    from reconciler.runtime import ManagedRuntime


#: The session metadata key naming the address a ``run`` started the session for.
RUN_KEY = "reconciler-run"
#: The title ``run`` gives its sessions, before the address.
RUN_TITLE = "reconciler run "
#: The session metadata key holding a token of the one ``run`` that started the session:
#: how a session whose create was interrupted is found again.
RUN_ID_KEY = "reconciler-run-id"
#: How long an interrupted create's session is looked for before the run gives up.
FIND_TIMEOUT_S = 10.0


class HeldPin(RunError):
    """A deployment's pin is a version held for it (of the agent object created again since
    it was pinned): no session of it is started. ``target`` is what it would have run, for
    ``check_deployment_exists`` (an archived deployment is the better thing to say)."""

    def __init__(self, message: str, target: SessionTarget) -> None:
        super().__init__(message)
        self.target = target


class NotYetApplied(RunError):
    """A resource the session needs is not in the lockfile (``run`` says why, when it can)."""


@dataclass(frozen=True)
class SessionTarget:
    """What a new session runs, all as remote ids, resolved from manifests and lockfile."""

    address: str
    agent_address: str
    agent_id: str
    agent_version: int | None
    #: None when an existing session is continued: it runs in its own environment
    environment_address: str | None
    environment_id: str | None
    vault_ids: tuple[str, ...] = ()
    #: a deployment's ``resources`` (memory stores by id, files, repositories), as its
    #: sessions get them
    resources: tuple[dict[str, Any], ...] = ()
    #: the deployment's remote id, when a deployment's session is started
    deployment_id: str | None = None
    #: the deployment's holds of versions of the agent object the lockfile records (what
    #: keeps it on an agent archived behind git's back)
    holds: tuple[HeldVersion, ...] = ()
    #: the version the live deployment runs when it is not ``agent_version`` (its pin moved
    #: behind git's back): set by ``check_deployment_live``, for ``run`` to warn of
    live_version: int | None = None

    def describe(self) -> str:
        version = f" version {self.agent_version}" if self.agent_version is not None else ""
        via = "" if self.address == self.agent_address else f"{self.address}: "
        where = self.environment_address or "its session's environment"
        return f"{via}{self.agent_address}{version} in {where}"


def _pick_address(manifests: ManifestSet, name: str) -> str:
    if "." in name:
        kind = name.split(".", 1)[0]
        if kind not in ("agent", "deployment"):
            raise RunError(f"{name} is {a_or_an(kind)}; run takes an agent or a deployment")
        if name not in manifests:
            raise RunError(f"no {name} in the manifests{_hint(manifests, name)}")
        return name
    found = [a for a in (f"deployment.{name}", f"agent.{name}") if a in manifests]
    if len(found) > 1:
        raise RunError(f"{name} is both {found[0]} and {found[1]}; say which (e.g. {found[1]})")
    if not found:
        raise RunError(
            f"no Agent or Deployment named {name} in the manifests{_hint(manifests, name)}"
        )
    return found[0]


def _hint(manifests: ManifestSet, name: str) -> str:
    runnable = [d.address for d in manifests.documents if d.kind in ("Agent", "Deployment")]
    short = [a.split(".", 1)[1] for a in runnable]
    close = difflib.get_close_matches(name, runnable + short, n=3)
    if close:
        return f"; did you mean {' or '.join(close)}?"
    if runnable:
        return f"; runnable: {', '.join(runnable)}"
    return ""


def resolve_session_target(
    manifests: ManifestSet,
    lockfile: Lockfile,
    name: str,
    environment: str | None = None,
    *,
    existing_session: bool = False,
) -> SessionTarget:
    """The ids a session for ``name`` uses (see the module doc).

    Args:
        existing_session: an existing session is continued; for an agent, no environment
            is chosen (the session has its own), so several environments are no obstacle.

    Raises:
        RunError: unknown name, or a resource it needs is not in the lockfile yet.
    """
    address = _pick_address(manifests, name)

    def applied(addr: str) -> Any:
        entry = lockfile.resources.get(addr)
        if entry is None:
            raise NotYetApplied(f"{addr} is not applied yet; run `reconciler apply` first")
        return entry

    doc = manifests.get(address)
    assert doc is not None
    if address.startswith("deployment."):
        spec = doc.spec
        assert isinstance(spec, DeploymentSpec)
        deployment = applied(address)
        agent_address = f"agent.{spec.agent.ref}"
        agent = applied(agent_address)
        version = deployment.pins.get(agent_address, spec.agent.version or agent.version)
        held = deployment.held_version(agent_address, version, agent.id)
        holds = tuple(
            h for h in deployment.held if h.agent == agent_address and h.agent_id == agent.id
        )
        if held is not None:
            # a pin is never moved to a held version: this one is of the agent object created
            # since (archived behind git's back), and the deployment runs the one before it
            raise HeldPin(
                f"{agent_address} v{version} is held for {address} ({held.why} on "
                f"{held.at[:10]}): the deployment still runs the agent it ran before "
                f"{agent_address} was created again, and a session here would run the held "
                f"candidate. `reconciler run {spec.agent.ref}` runs the agent on purpose; "
                "`reconciler apply` moves the deployment once a version passes its checks",
                SessionTarget(
                    address,
                    agent_address,
                    agent.id,
                    version,
                    None,
                    None,
                    deployment_id=deployment.id,
                    holds=holds,
                ),
            )
        env_address = f"environment.{spec.environment}"
        if environment is not None and environment not in (spec.environment, env_address):
            raise RunError(f"{address} runs in {env_address}; --environment is only for agents")
        env = applied(env_address)
        vaults = tuple(applied(f"vault.{v}").id for v in spec.vaults)
        resources = tuple(
            _session_resource(manifests, address, index, item, applied)
            for index, item in enumerate(spec.resources or ())
        )
        return SessionTarget(
            address,
            agent_address,
            agent.id,
            version,
            env_address,
            env.id,
            vaults,
            resources,
            deployment_id=deployment.id,
            holds=holds,
        )
    agent = applied(address)
    if existing_session and environment is None:
        return SessionTarget(address, address, agent.id, agent.version, None, None)
    env_address = _environment_for_agent(manifests, address, environment)
    env = applied(env_address)
    return SessionTarget(address, address, agent.id, agent.version, env_address, env.id)


async def check_deployment_live(
    client: ProviderClient, target: SessionTarget, lockfile: Lockfile | None = None
) -> SessionTarget:
    """Refuse a new session of a deployment archived (or deleted) behind git's back, or
    left on an agent object archived behind git's back (``check_deployment_exists``, then
    the agent it runs). One GET (two when the deployment runs another agent object than
    the lockfile's); an agent's session needs none.

    Returns ``target``, at the version a pin move of ``lockfile``'s pending intents (a
    rollback or a gated apply killed once the provider moved the pin) left live: the
    version plan, drift and rollback say the deployment runs, not the one the move left;
    with ``live_version`` when the deployment runs another (its pin moved by hand).

    Raises:
        RunError: the deployment is archived or gone, or runs another agent object.
    """
    live = await check_deployment_exists(client, target)
    if live is None:
        return target
    await _check_deployment_agent(client, target, live)
    if lockfile is not None and lockfile.pending:
        entry = settle_live_pin_moves(lockfile, [live]).resources.get(target.address)
        version = entry.pins.get(target.agent_address) if entry is not None else None
        if isinstance(version, int) and version != target.agent_version:
            target = dataclasses.replace(target, agent_version=version)
    runs = (live.get("agent") or {}).get("version")
    if isinstance(runs, int) and runs != target.agent_version:
        return dataclasses.replace(target, live_version=runs)
    return target


async def check_deployment_exists(
    client: ProviderClient, target: SessionTarget
) -> dict[str, Any] | None:
    """Refuse a new session of a deployment archived (or deleted) behind git's back: it
    would be started from what the lockfile recorded and labelled as a deployment that no
    longer runs anything. Returns the live deployment (None for an agent's session).

    Raises:
        RunError: the deployment is archived or gone.
    """
    if target.deployment_id is None:
        return None
    try:
        live = await client.deployments.retrieve(target.deployment_id)
    except NotFoundError:
        live = None
    if live is not None and not live.get("archived_at"):
        return live
    what = "deleted" if live is None else "archived"
    again = "`reconciler apply` creates it again"
    if live is not None and target.holds:
        held_by = held_out_by(target.holds, live, await agent_archived(client, live))
        if held_by is not None:  # the plan leaves it out (``engine.rollout``)
            again = held_out_hint(held_by)
    raise RunError(
        f"{target.address} ({target.deployment_id}) was {what} outside reconciler, so it runs "
        f"no sessions: `reconciler drift` shows it, {again}, and "
        f"`reconciler run {target.agent_address}` runs its agent on purpose"
    )


async def agent_archived(client: ProviderClient, deployment: Mapping[str, Any]) -> bool:
    """Whether the agent object ``deployment`` (a live deployment) runs is archived, or gone.
    One GET."""
    pin = deployment.get("agent")
    agent_id = pin.get("id") if isinstance(pin, dict) else None
    if not isinstance(agent_id, str):
        return False
    try:
        agent = await client.agents.retrieve(agent_id)
    except NotFoundError:
        return True
    return bool(agent.get("archived_at"))


async def _check_deployment_agent(
    client: ProviderClient, target: SessionTarget, live: dict[str, Any]
) -> None:
    """Refuse a new session of a deployment that runs another agent object than the one the
    lockfile records: the one archived behind git's back, which it stays on while the new
    object's candidate is held (a session of the new object at the old one's version would
    be a 404 "version not found"), or an agent set in the console.

    Raises:
        RunError: the deployment runs another agent object.
    """
    pin = live.get("agent")
    runs = pin.get("id") if isinstance(pin, dict) else None
    if not isinstance(runs, str) or runs == target.agent_id:
        return
    version = pin.get("version") if isinstance(pin, dict) else None
    at = f" (v{version})" if version is not None else ""
    ref = target.agent_address.split(".", 1)[1]
    try:
        agent = await client.agents.retrieve(runs)
    except NotFoundError:
        agent = None
    if agent is None or not agent.get("archived_at"):
        raise RunError(
            f"{target.address} runs agent {runs}{at}, not {target.agent_address} "
            f"({target.agent_id}) as the lockfile records: it was changed outside "
            "reconciler. `reconciler drift` shows it and `reconciler apply` restores it; "
            f"`reconciler run {ref}` runs the agent on purpose"
        )
    held = ", ".join(f"v{h.version} is held: " + h.why + f" on {h.at[:10]}" for h in target.holds)
    raise RunError(
        f"{target.address} runs agent {runs}{at}, the {target.agent_address} object archived "
        f"behind git's back; {target.agent_address} was created again ({target.agent_id}), "
        "and the deployment stays on the archived one until a version of the new one passes "
        f"its checks{f' ({held})' if held else ''}. The provider starts no session of an "
        f"archived agent: `reconciler run {ref}` runs the agent on purpose; `reconciler "
        "apply` moves the deployment once a version passes, and `reconciler apply "
        "--retry-held` runs the held version's checks again"
    )


def _session_resource(
    manifests: ManifestSet, address: str, index: int, item: Any, applied: Any
) -> dict[str, Any]:
    """One ``resources`` item of a deployment as a session takes it: a memory store mounted
    by name gets the applied store's id, a secret (a repository's token) its value."""
    if isinstance(item, MemoryStoreMount):
        mount = {
            "type": "memory_store",
            "memory_store_id": applied(f"memory_store.{item.memory_store}").id,
        }
        return mount | item.model_dump(mode="json", exclude_none=True, exclude={"memory_store"})
    wire: dict[str, Any] = item.model_dump(mode="json", exclude_none=True)
    path = f"resources[{index}].authorization_token"
    if "authorization_token" in wire:
        wire["authorization_token"] = manifests.resolve_secret(address, path)
    return wire


def origin_warning(
    lockfile: Lockfile, origin: str, lockfile_dir: str | os.PathLike[str] = "."
) -> str | None:
    """What to say when the lockfile was applied to another provider than the one a session
    will be started on (``origin``, see ``provider_origin``): its ids are most likely unknown
    there. None when they agree or the lockfile records no origin. An embedded provider is
    named by its path from here (its origin is relative to ``lockfile_dir``)."""
    if lockfile.origin is None or same_origin(lockfile.origin, origin, lockfile_dir):
        return None
    recorded = describe_origin(lockfile.origin, lockfile_dir)
    return (
        f"the lockfile was applied to {recorded}, but this run talks to "
        f"{describe_origin(origin, lockfile_dir)}; "
        "its ids are probably not that provider's. Check --provider-url (and --provider-db, "
        "--lockfile)"
    )


def check_embedded_provider(settings: Settings, lockfile: Lockfile) -> None:
    """Refuse to start a session on an embedded provider whose database does not exist while
    the state records resources (``workspace.embedded_database_gone``): ``run`` warns of
    another origin rather than refusing it, so this is said on its own.

    Raises:
        RunError: the database does not exist and the state records resources.
    """
    if not embedded_database_gone(settings, lockfile):
        return
    lockfile_dir = Path(settings.lockfile).parent
    here = describe_origin(local_origin(settings.db_path, lockfile_dir), lockfile_dir)
    applied = (
        f" (it was applied to {describe_origin(lockfile.origin, lockfile_dir)})"
        if lockfile.origin is not None
        else ""
    )
    raise RunError(
        f"{here} does not exist, so it holds none of the ids {settings.state_name} records"
        f"{applied}: run from the project directory, or pass --provider-db (or --provider-url)"
    )


def address_of_id(lockfile: Lockfile, remote_id: str) -> str | None:
    """The address the lockfile records for ``remote_id``, if any."""
    for address, entry in lockfile.resources.items():
        if entry.id == remote_id:
            return address
    return None


def _environment_for_agent(manifests: ManifestSet, address: str, name: str | None) -> str:
    envs = [d.address for d in manifests.by_kind("Environment")]
    if name is not None:
        env_address = name if name.startswith("environment.") else f"environment.{name}"
        if env_address not in manifests:
            hint = f"; the manifests have {', '.join(envs)}" if envs else ""
            raise RunError(f"no {env_address} in the manifests{hint}")
        return env_address
    if len(envs) == 1:
        return envs[0]
    if not envs:
        raise RunError(
            f"{address} needs an environment to run in and the manifests have none; add an "
            "Environment document and apply it"
        )
    raise RunError(
        f"the manifests have {len(envs)} environments ({', '.join(envs)}); choose one with "
        "--environment NAME"
    )


async def check_continued_session(
    rt: ManagedRuntime, session_id: str, target: SessionTarget, lockfile: Lockfile | None
) -> SessionTarget:
    """The target as the continued session ``session_id`` really runs (``run --session``):
    its agent must be the target's (a deployment's: a session it started, see
    ``check_deployment_session``); its environment is its own (an explicit environment must
    agree).

    Args:
        rt: an open ``ManagedRuntime``.

    Raises:
        RunError: no such session, an archived one, or not a session of the deployment.
        PlanError: the session runs another agent or another environment.
    """
    try:
        session = await rt.retrieve_session(session_id)
    except NotFoundError as error:
        raise RunError(
            f"there is no session {session_id} ({error}); leave out --session to start a new one"
        ) from error
    if session.get("archived_at"):
        raise RunError(
            f"session {session_id} is archived and takes no more messages; leave out "
            "--session to start a new one"
        )
    agent = session.get("agent") or {}
    if agent.get("id") != target.agent_id:
        runs = str(agent.get("id"))
        known = address_of_id(lockfile, runs) if lockfile is not None else None
        raise PlanError(
            f"session {session_id} runs {f'{known} ({runs})' if known else f'agent {runs}'}, "
            f"not {target.agent_address} ({target.agent_id}); start a new session without "
            "--session"
            + (
                f", or continue it with: reconciler run {known} --session {session_id} -m TEXT"
                if known
                else ""
            )
        )
    if target.address != target.agent_address:
        check_deployment_session(session, session_id, target, lockfile)
    env_id = str(session.get("environment_id") or "")
    known = address_of_id(lockfile, env_id) if lockfile is not None and env_id else None
    env_address = known or (f"environment {env_id}" if env_id else None)
    if target.address == target.agent_address and target.environment_id not in (None, env_id):
        raise PlanError(
            f"session {session_id} runs in {env_address}, not {target.environment_address}; "
            "a session keeps its environment: drop --environment to continue it"
        )
    version = agent.get("version")
    return dataclasses.replace(
        target,
        agent_version=int(version) if version is not None else target.agent_version,
        environment_address=env_address,
        environment_id=env_id or None,
    )


async def find_started_session(
    rt: ManagedRuntime, agent_id: str, token: str, since: str
) -> str | None:
    """The session of ``agent_id`` an interrupted create made, found by the ``token`` its
    metadata holds (``RUN_ID_KEY``) among those created since ``since`` (``created_at[gte]``);
    None when it cannot be found now (not made yet, or not at all; the provider unreachable;
    a second Ctrl-C). Never raises.

    Args:
        rt: an open ``ManagedRuntime``.
    """
    found = await started_sessions(rt, agent_id, token, since)
    return found[0] if found else None


async def started_sessions(
    rt: ManagedRuntime, agent_id: str, token: str, since: str
) -> list[str] | None:
    """Every session of ``agent_id`` whose metadata holds ``token`` (``RUN_ID_KEY``), as
    ``find_started_session`` looks: an empty list when the provider answered and none
    does, None when the lookup itself failed (unreachable, a timeout, a Ctrl-C). Never
    raises."""
    try:
        async with asyncio.timeout(FIND_TIMEOUT_S):
            sessions = await rt.list_sessions(agent_id=agent_id, created_at_gte=since)
    except (Exception, asyncio.CancelledError):
        return None
    return [
        str(session["id"])
        for session in sessions
        if (session.get("metadata") or {}).get(RUN_ID_KEY) == token
    ]


async def start_session(
    rt: ManagedRuntime,
    target: SessionTarget,
    project: str,
    token: str,
    since: str,
    *,
    on_resend: Callable[[AmbiguousWriteError], None],
) -> str | None:
    """Create the session of ``target`` a ``run`` starts, its metadata holding ``token``
    (``RUN_ID_KEY``), and settle a create whose answer was lost (``AmbiguousWriteError``):
    the session is looked up by the token (``started_sessions``, created since ``since``),
    and the turn goes on in the one found; when the lookup shows none, the create is sent
    once more with the same token (``on_resend`` is told why first). At most two creates,
    and one session: one the first create made late is deleted.

    Args:
        rt: an open ``ManagedRuntime``.
        project: the project named in the session's metadata (``PROJECT_KEY``).

    Returns:
        The session's id; None when the create was interrupted (Ctrl-C, SIGTERM) after it
        was sent: the provider may have made it (``find_started_session`` looks for it).

    Raises:
        AmbiguousWriteError: the answer was lost and the lookup failed, or both creates'
            answers were lost and no session carries the token.
        ProviderError: the provider refused the create.
    """
    for attempt in (1, 2):  # a second create only when the first is known not made
        try:
            session_id = await rt.create_session(
                target.agent_id,
                target.environment_id,
                version=target.agent_version,
                vault_ids=list(target.vault_ids),
                resources=list(target.resources) or None,
                title=f"{RUN_TITLE}{target.address}",
                metadata={RUN_KEY: target.address, PROJECT_KEY: project, RUN_ID_KEY: token},
            )
        except asyncio.CancelledError:  # Ctrl-C (or SIGTERM) while the create was sent
            return None
        except AmbiguousWriteError as error:  # the answer was lost: made or not?
            made = await started_sessions(rt, target.agent_id, token, since)
            if made:
                return made[0]
            if made is None or attempt == 2:  # the lookup failed, or twice not made
                raise
            on_resend(error)
            continue
        if attempt == 2:  # the first create landed late after all: keep one session
            await _drop_twins(rt, target.agent_id, token, since, session_id)
        return session_id
    raise AssertionError("the second create returns or raises")


async def _drop_twins(rt: ManagedRuntime, agent_id: str, token: str, since: str, keep: str) -> None:
    """After a create sent again: a session the first create made late (it carries the same
    token, and nothing was sent to it) is deleted, so the run leaves one session."""
    for twin in await started_sessions(rt, agent_id, token, since) or []:
        if twin != keep:
            with contextlib.suppress(ProviderError):
                await rt.delete_session(twin)


def started_for(session: Mapping[str, Any]) -> str | None:
    """The address a ``run`` started ``session`` for: its metadata says, or (a session of
    an older run) its title."""
    metadata = session.get("metadata") or {}
    if isinstance(metadata, Mapping) and isinstance(metadata.get(RUN_KEY), str):
        return str(metadata[RUN_KEY])
    title = session.get("title")
    if isinstance(title, str) and title.startswith(RUN_TITLE):
        return title[len(RUN_TITLE) :]
    return None


def check_deployment_session(
    session: Mapping[str, Any], session_id: str, target: SessionTarget, lockfile: Lockfile | None
) -> None:
    """A deployment continues only its own sessions: one the provider started from it
    (``deployment_id``) or one ``run DEPLOYMENT`` started. Another session of the same agent
    runs with what its starter gave it (environment, vaults, resources), not the
    deployment's: continuing it under the deployment's name would be a lie.

    Raises:
        RunError: ``session`` is not one of the deployment's (the message says whose it is).
    """
    entry = lockfile.resources.get(target.address) if lockfile is not None else None
    deployment_id = session.get("deployment_id")
    if (entry is not None and deployment_id == entry.id) or started_for(session) == (
        target.address
    ):
        return
    started = started_for(session)
    runnable = ("agent.", "deployment.")
    if deployment_id:
        known = address_of_id(lockfile, str(deployment_id)) if lockfile is not None else None
        what = f"it was started by {known or f'deployment {deployment_id}'}"
        as_what = known
    elif started is not None and started.startswith(runnable):
        what = f"it was started by `reconciler run {started}`"
        as_what = started
    else:
        title = session.get("title")
        what = f"it is a session of {target.agent_address}" + (
            f" titled {title!r}" if title else ""
        )
        as_what = target.agent_address
    again = (
        f"continue it as what it is: reconciler run {as_what} --session {session_id} -m TEXT, or "
        if as_what
        else ""
    )
    raise RunError(
        f"session {session_id} is not a session of {target.address}: {what}, with its own "
        f"environment, vaults and resources; {again}leave out --session to start a session of "
        f"{target.address}"
    )
