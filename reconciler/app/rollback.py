"""``rollback deployment.NAME [--to VERSION]``: move a pin back, as a plan run by the executor.

The version to go back to is the one the deployment ran before its last pin move (the
lockfile's ``pin_history``), or the one given. The plan is one deployment ``Update`` whose
``Gate`` says ``rollback``: it sends only the pin (never touching the agent), and recording
its outcome holds the version rolled back from, so no later apply promotes it again (only
``apply --retry-held`` does, after its checks). Nothing here prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.app.checks import ProviderCheckRunner
from reconciler.app.session import agent_archived
from reconciler.app.workspace import Settings, check_origin, connect, locked_state, with_origin
from reconciler.engine.executor import ApplyReport, Outcome, StopRequest, apply_plan
from reconciler.engine.gate import Gate
from reconciler.engine.model import FieldChange, PinMove, Plan, Target, Update
from reconciler.engine.pinlog import rollback_intent, settle_live_pin_moves
from reconciler.engine.record import record_outcome
from reconciler.engine.rollout import held_out_by, held_out_hint
from reconciler.errors import NotFoundError, PlanError
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import Journal, LockEntry, json_digest, utc_timestamp

if TYPE_CHECKING:  # the HTTP stack loads when a command connects (tests/test_startup.py)
    from reconciler.provider import ProviderClient


@dataclass(frozen=True, repr=False)
class RollbackResult:
    plan: Plan
    report: ApplyReport

    def __repr__(self) -> str:
        return f"RollbackResult({self.plan.pin_moves!r})"


def _no_secrets(address: str, path: str) -> str:
    raise PlanError(f"a rollback sends no secret ({address}: {path})")


def previous_version(entry: LockEntry, agent: str, current: int) -> int | None:
    """The version the deployment ran before it moved to ``current`` (its pin history).

    A ``healed`` record (a lost lockfile rebuilt) knows no version before it: the move to
    ``current`` the provider's records kept, just before it, does."""
    for record in reversed(entry.pin_history):
        if record.agent == agent and record.version == current:
            if record.by == "healed" and record.from_version is None:
                continue
            return record.from_version
    return None


def rollback_plan(address: str, entry: LockEntry, live: dict[str, object], to: int | None) -> Plan:
    """The plan of a rollback of ``address`` (its lockfile entry and live object).

    Raises:
        PlanError: not a deployment, no earlier version known (and no ``to``), its live pin
            is not the one the lockfile recorded (and no ``to``), or ``to`` is the version it
            runs already.
    """
    agent_pin = live.get("agent")
    if not isinstance(agent_pin, dict) or len(entry.pins) != 1:
        raise PlanError(f"{address} has no agent pin recorded in the lockfile to roll back")
    agent = next(iter(entry.pins))
    current = agent_pin.get("version")
    if not isinstance(current, int):
        raise PlanError(f"{address} runs no numbered version of {agent}; nothing to roll back")
    recorded = entry.pins.get(agent)
    if to is None and isinstance(recorded, int) and recorded != current:
        # the last move the history knows is not the one that put it where it runs
        raise PlanError(
            f"{address} runs {agent}@{current}, not @{recorded} as the lockfile pinned it: its "
            f"pin was moved behind git's back, so there is no last move to undo. "
            f"`reconciler apply` puts it back to @{recorded}; or say where it goes with "
            "--to VERSION"
        )
    target = to if to is not None else previous_version(entry, agent, current)
    if target is None:
        raise PlanError(
            f"the lockfile records no version {address} ran before {agent}@{current} (its pin "
            f"history is empty or starts there); say which with --to VERSION"
        )
    if target == current:
        raise PlanError(f"{address} runs {agent}@{current} already; nothing to roll back")
    # a rollback may go to a newer version (--to, or undoing a rollback): it says so
    if to is None and target < current:
        reason = f"rollback: back to {agent}@{target}, the version before @{current}"
    elif to is None:  # undoing a rollback
        reason = f"rollback: forward to {agent}@{target}, the version it ran before @{current}"
    elif target < current:
        reason = f"rollback: back to {agent}@{target} (--to)"
    else:
        reason = f"rollback: forward to {agent}@{target} (--to), newer than @{current}"
    agent_id = agent_pin.get("id")
    held = entry.held_version(agent, target, agent_id if isinstance(agent_id, str) else None)
    if held is not None:
        # a second rollback undoes the first: the reviewer must see it goes to a bad version
        why = (
            held.why
            if held.reason == "rollback"
            else f"{held.failed} of {held.total} checks failed"
        )
        reason += f"; v{target} was held ({why} on {held.at[:10]})"
    gate = Gate(
        deployment=address,
        agent=agent,
        from_version=current,
        to_version=target,
        mode="rollback",
        # where the rollback's record session is made (``CheckRunner.record``)
        session={"environment_id": live.get("environment_id")},
    )
    action = Update(
        address=address,
        kind="deployment",
        reason=reason,
        remote_id=entry.id,
        changes=(FieldChange(op="change", path="agent.version", old=current, new=target),),
        body={"agent": {"type": "agent", "id": agent_pin.get("id"), "version": target}},
        target=Target(
            spec_digest=entry.spec_digest,
            protect=entry.protect,
            remote_name=entry.remote_name,
            secret_fingerprints=dict(entry.secret_fingerprints),
            pins={agent: target},
        ),
        live_marker=str(live.get("updated_at")) if live.get("updated_at") else None,
        gate=gate,
    )
    move = PinMove(
        deployment=address,
        agent=agent,
        old=current,
        new=target,
        follows_latest=False,
        gate="rollback",
    )
    return Plan(actions=(action,), pin_moves=(move,))


async def rollback(
    settings: Settings,
    address: str,
    *,
    to: int | None = None,
    allow_origin_change: bool = False,
    confirm: Callable[[Plan], bool] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    stop: StopRequest | None = None,
) -> RollbackResult | None:
    """Move ``address``'s pin back (to ``to``, else to the version before its last move).

    Holds the apply lock; the plan is shown (``on_plan``), confirmed (``confirm``; False
    returns None and changes nothing) and run by the executor, its outcome recorded in the
    lockfile (the pin history gains a ``rollback`` move, the version left is held).
    ``stop`` (a first Ctrl-C or SIGTERM) lets the pin move in flight finish and be recorded.

    Raises:
        PlanError: not a deployment address, not in the lockfile, archived or deleted at the
            provider, nothing to roll back to, the version does not exist, or the lockfile was
            applied to another provider (unless ``allow_origin_change``: the lockfile then
            records this one, as after an apply).
        LockHeld: an apply holds the lock.
    """
    if not address.startswith("deployment.") or address.count(".") != 1:
        # `run` takes a bare name: the same habit here gets the address to type
        hint = f"; did you mean deployment.{address}?" if address and "." not in address else ""
        raise PlanError(
            f"rollback takes a deployment address (deployment.NAME), not {address!r}{hint}"
        )
    if to is not None and to < 1:
        raise PlanError(f"--to must be a version number >= 1, not {to}")
    if settings.lockfile_missing:
        raise PlanError(
            f"{settings.lockfile} does not exist, and rollback goes by the pin history it "
            "keeps. If it was lost, `reconciler apply` rebuilds it from the ownership tags (and "
            "the rollout records the provider keeps; `reconciler plan` first shows what else it "
            f"would change); then `reconciler rollback {address} --to VERSION`. Otherwise check "
            "--lockfile"
        )
    with locked_state(settings, "rollback") as (lock, store):
        lockfile = store.load()
        record_origin = with_origin(
            check_origin(settings, lockfile, allow_change=allow_origin_change)
        )
        entry = lockfile.resources.get(address)
        if entry is None or entry.kind != "deployment":
            raise PlanError(
                f"{address} is not in {settings.state_name}; only an applied deployment can be "
                "rolled back"
            )
        async with connect(settings) as client:
            client.write_guard = lock.ensure_held
            try:
                live = await client.deployments.retrieve(entry.id)
            except NotFoundError as e:
                raise PlanError(f"{address} ({entry.id}) no longer exists at the provider") from e
            if live.get("archived_at"):
                # the provider refuses any change to it: nothing to move, and its pin is
                # the one `apply` creates it again with
                again = "`reconciler apply` creates it again"
                held_by = held_out_by(entry.held, live, await agent_archived(client, live))
                if held_by is not None:
                    again = held_out_hint(held_by)
                raise PlanError(
                    f"{address} ({entry.id}) was archived behind git's back, and the provider "
                    f"changes no archived deployment; {again}"
                )
            await _check_agent(client, address, entry, live, lockfile.resources)
            if settle_live_pin_moves(lockfile, [live]) != lockfile:
                # an earlier rollback killed once its pin had moved: recorded first, so that
                # this one starts from the history as it happened
                lock.ensure_held()
                lockfile = store.commit(lambda lf: settle_live_pin_moves(lf, [live]))
                entry = lockfile.resources[address]
            plan = rollback_plan(address, entry, live, to)
            plan = plan.model_copy(
                update={
                    "project": settings.project,
                    "lineage": lockfile.lineage,
                    "serial": lockfile.serial,
                }
            )
            await _check_version(client, plan)
            if on_plan is not None:
                on_plan(plan)
            if confirm is not None and not confirm(plan):
                return None
            # the history records which plan made the change
            store.run = dataclasses.replace(
                store.run, plan_digest=json_digest(plan.model_dump(mode="json"))
            )
            journal = Journal(store, senders=1, guard=lock.ensure_held)
            gate = plan.actions[0].gate  # type: ignore[union-attr]
            assert gate is not None
            # The move's intent is on disk before the move is sent: a run killed once the
            # provider moved the pin is recorded as this rollback by the next plan, instead
            # of the pin being moved forward again to the version rolled back from.
            pending = rollback_intent(address, gate, utc_timestamp())
            await journal.commit(lambda lf: record_origin(lf).with_pending(*pending))

            def outcome(o: Outcome) -> None:
                now = utc_timestamp()
                journal.stage(lambda lf: record_outcome(lf, o, now))
                if not o.ok:  # refused: the pin did not move
                    journal.stage(lambda lf: lf.without_pending(address))

            try:
                report = await apply_plan(
                    plan,
                    ClientBackedProvider(client),
                    resolve_secret=_no_secrets,
                    parallelism=1,
                    on_outcome=outcome,
                    checks=ProviderCheckRunner(client, settings.project),
                    stop=stop,
                )
            finally:
                await journal.close()
    return RollbackResult(plan, report)


async def _check_agent(
    client: ProviderClient,
    address: str,
    entry: LockEntry,
    live: dict[str, object],
    entries: Mapping[str, LockEntry],
) -> None:
    """Refuse a rollback of a deployment set to another (live) agent behind git's back: the
    move would pin that agent's versions, recorded as the lockfile's agent. (The agent
    archived behind git's back and created again is refused by ``_check_version``.)"""
    agent = next(iter(entry.pins), None)
    recorded = entries.get(agent) if agent is not None else None
    pin = live.get("agent")
    ran = pin.get("id") if isinstance(pin, dict) else None
    if agent is None or recorded is None or not isinstance(ran, str) or ran == recorded.id:
        return
    if await agent_archived(client, live):
        return
    raise PlanError(
        f"{address} runs agent {ran}, not {agent} ({recorded.id}) as the lockfile records: "
        f"it was set behind git's back, so no version of {agent} is there to roll back from. "
        f"`reconciler apply` puts it back on {agent}@{entry.pins[agent]} (`reconciler drift` "
        "shows it)"
    )


async def _check_version(client: ProviderClient, plan: Plan) -> None:
    """The version to go back to must exist (an archived agent's versions still do)."""
    action = plan.actions[0]
    assert isinstance(action, Update) and action.gate is not None
    agent_id = action.body["agent"]["id"]
    version = action.gate.to_version
    missing = f"{action.gate.agent} has no version {version} ({agent_id}); pick one that exists"
    latest = await client.agents.retrieve(agent_id)
    if isinstance(latest.get("version"), int) and version > latest["version"]:
        # asked before the version itself: a number past what the wire takes (2**31) is
        # the provider's 400 "version: Input should be less than...", not a missing version
        raise PlanError(f"{missing} (its latest is {latest['version']})")
    try:
        found = await client.agents.retrieve(agent_id, version=version)
    except NotFoundError as e:
        raise PlanError(missing) from e
    if found.get("archived_at"):
        # the deployment stays on it while the candidate of the agent created again is held
        agent = action.gate.agent
        raise PlanError(
            f"{action.address} runs agent {agent_id}, the {agent} object archived behind "
            "git's back, and the provider moves no pin to a version of an archived agent. "
            f"`reconciler apply` moves it to {agent} as it is now once a version passes the "
            "deployment's checks (or with --retry-held)"
        )
