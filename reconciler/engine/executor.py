"""Execute a ``Plan`` against a provider: order, concurrency, safe retries, one outcome each.

This module runs the actions a planner decided on; it never decides what should change and
never touches the filesystem. Its jobs:

- order: an action starts only once every address it depends on (``depends_on``, its parent
  vault, every ``$ref``/``$pin`` in its body) finished successfully; a failed dependency
  fails its dependents as "not attempted", independents carry on;
- concurrency: at most ``parallelism`` requests-making actions in flight, spawned as they
  become ready;
- placeholders (see ``model``) resolved right before sending, from this run's outcomes;
- creates that may or may not have happened (timeouts, dropped connections, 5xx) are looked
  up by their ownership metadata and adopted before any resend, so a create never makes a
  twin; agent updates carry the live version and a 409 never overwrites a concurrent edit
  (the requests themselves are sent by ``writes``);
- every outcome is reported through ``on_outcome`` at once (the caller commits the lockfile),
  every create is announced through ``on_intent`` and sent only once ``journal.intend``
  (awaited) says its intent is durable.

An exception raised by a callback aborts the apply (in-flight actions are cancelled, the
exception propagates): a lockfile that cannot be written must stop the work it records.
Cancellation (Ctrl-C, SIGTERM) and ``ApplyStopped`` (e.g. the apply lock was lost) propagate
the same way; an action that ends as it is cancelled with its write made (a gated pin moved,
its record still being left) is reported first, so the lockfile never misses that move.

Retries are the provider client's, never this module's: it neither sleeps nor sends a request
again on its own schedule. The client's one retry policy decides whether and when a failed
request is sent again (429s, 5xx, dropped connections); the executor only tells it how to
resolve a write whose answer was lost - a create by listing for its ownership tags, an agent
update by reading the live version - which the client calls before any resend (the
``resolve`` argument of ``ProviderWriter.create`` / ``update``). So the requests of one
action are bounded by the client's ``max_retries``, whatever fails. An action that ends with
``ProviderConnectionError`` failed, and ``threshold`` such actions in a row open the circuit
breaker (``breaker``): no new action starts, those in flight finish, the rest are reported as
not attempted and ``ApplyReport.stopped`` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from reconciler.engine.breaker import CircuitBreaker, StopRequest
from reconciler.engine.gate import CheckRunner, GateVerdict, hold_record, move_record
from reconciler.engine.interface import (
    FileResolver,
    IntentJournal,
    ProviderWriter,
    SecretResolver,
)
from reconciler.engine.masking import mask_json, mask_text
from reconciler.engine.model import (
    LITERAL,
    Action,
    Adopt,
    Archive,
    Create,
    Delete,
    NoOp,
    Plan,
    Replace,
    Update,
)
from reconciler.engine.outcome import ApplyReport, Outcome
from reconciler.engine.writes import ActionFailed, SafeWrites, describe_error
from reconciler.errors import ApplyStopped, PlanError, ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_INFO, kind_of, tags

__all__ = ["ApplyReport", "Outcome", "StopRequest", "apply_plan"]


async def apply_plan(
    plan: Plan,
    writer: ProviderWriter,
    *,
    resolve_secret: SecretResolver,
    parallelism: int = 10,
    on_intent: Callable[[Action], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_start: Callable[[Action], None] | None = None,
    skip: Mapping[str, str] | None = None,
    unreachable_after: int = 3,
    journal: IntentJournal | None = None,
    checks: CheckRunner | None = None,
    read_files: FileResolver | None = None,
    stop: StopRequest | None = None,
) -> ApplyReport:
    """Run every action of ``plan``, dependencies first, independents concurrently.

    Args:
        plan: the plan to execute (every address it references has an action).
        writer: the provider.
        resolve_secret: ``(address, path) -> value`` for ``{"$secret": path}`` placeholders.
        parallelism: most actions sending requests at once.
        on_intent: called before a create (or replace) is sent, with the action whose
            ``parent_id`` is resolved (synchronous: for callers that record it themselves).
        on_outcome: called once per action, as soon as it finished; commit the lockfile.
        on_start: called when an action starts sending (not for no-ops or skipped ones).
        skip: address -> reason: refuse these actions (a stale saved plan); they fail with
            that reason and their dependents are not attempted.
        unreachable_after: actions in a row that could not reach the provider after which
            no new action starts (the circuit breaker, see ``breaker``).
        journal: awaited before a create (or replace) is sent, with the same action as
            ``on_intent``; the request goes out once ``journal.intend`` returned (the intent
            is durable).
        checks: runs the checks of a gated pin move (an ``Update`` with a ``gate``) against
            the candidate version before the update is sent; the update is sent only when
            every check passes (``engine.gate``).
        read_files: the files of a skill upload (``{"$files": address}``), read when it is
            sent and checked against the plan's digest.
        stop: set by the caller to start no new action (e.g. on a first Ctrl-C): those in
            flight finish and are reported, the rest fail "not attempted".

    Returns:
        The report: one ``Outcome`` per action, sorted by address.

    Raises:
        PlanError: two actions share an address.
        ValueError: ``parallelism`` below 1.
    """
    if parallelism < 1:
        raise ValueError(f"parallelism must be at least 1, got {parallelism}")
    callbacks = (on_intent, on_outcome, on_start)
    run = _Run(plan, writer, resolve_secret, parallelism, *callbacks, dict(skip or {}))
    run.journal = journal
    run.checks = checks
    run.read_files = read_files
    run.breaker = CircuitBreaker(max(1, unreachable_after))
    if stop is not None:
        run.stop = stop
    return await run.execute()


class _CallbackFailed(Exception):
    """A caller's callback raised: abort the whole apply with the original exception."""


@dataclass
class _Resolved:
    """What resolving one action's placeholders produced, besides the body."""

    secrets: list[str] = field(default_factory=list)
    #: agent address -> version sent in a ``$pin`` (None: latest at send time)
    pins: dict[str, int | None] = field(default_factory=dict)
    #: skill address -> version id sent in a ``$skill``
    skills: dict[str, str] = field(default_factory=dict)

    def scrub(self, text: str) -> str:
        return mask_text(text, self.secrets)

    def scrub_json(self, obj: Any) -> Any:
        if not any(self.secrets):
            return obj  # nothing to hide: the usual case, and a walk of every field per action
        return mask_json(obj, self.secrets)


@dataclass
class _Run:
    """One apply: the schedule and the per-action handlers."""

    plan: Plan
    writer: ProviderWriter
    resolve_secret: SecretResolver
    parallelism: int
    on_intent: Callable[[Action], None] | None
    on_outcome: Callable[[Outcome], None] | None
    on_start: Callable[[Action], None] | None
    skip: Mapping[str, str] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    #: address -> the address whose failure kept it from running (itself if it ran)
    root_failure: dict[str, str] = field(default_factory=dict)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    journal: IntentJournal | None = None
    checks: CheckRunner | None = None
    read_files: FileResolver | None = None
    stop: StopRequest = field(default_factory=StopRequest)
    writes: SafeWrites = field(init=False)

    def __post_init__(self) -> None:
        self.writes = SafeWrites(self.writer, self.plan.project)

    # -- schedule --------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """No new action starts: the provider is down, or the caller asked."""
        return self.breaker.open or self.stop.reason is not None

    async def execute(self) -> ApplyReport:
        self.stop.dispatching = True
        try:
            return await self._execute()
        finally:
            self.stop.dispatching = False

    async def _execute(self) -> ApplyReport:
        actions: dict[str, Action] = {}
        for a in self.plan.actions:
            if a.address in actions:
                raise PlanError(f"the plan has two actions for {a.address}; make a new plan")
            actions[a.address] = a
        deps = {addr: _dependencies(a, actions) for addr, a in actions.items()}
        waiting = {addr: set(d) for addr, d in deps.items()}
        dependents: dict[str, list[str]] = {addr: [] for addr in actions}
        for addr, ds in deps.items():
            for d in ds:
                dependents[d].append(addr)
        ready = deque(addr for addr in actions if not waiting[addr])
        running: dict[asyncio.Task[Outcome], str] = {}
        # Each task reports its own end here: waiting on this queue costs the same whatever
        # the parallelism, where ``asyncio.wait`` on every running task added and removed a
        # callback per task at every completion.
        ended: asyncio.Queue[asyncio.Task[Outcome]] = asyncio.Queue()

        def finish(outcome: Outcome) -> None:
            self.outcomes[outcome.address] = outcome
            self._notify(self.on_outcome, outcome)
            for d in dependents[outcome.address]:
                waiting[d].discard(outcome.address)
                if not waiting[d]:
                    ready.append(d)

        try:
            while running or (ready and not self.stopping):
                while ready and len(running) < self.parallelism and not self.stopping:
                    action = actions[ready.popleft()]
                    immediate = self._settle_without_sending(action, deps[action.address])
                    if immediate is not None:
                        finish(immediate)
                    else:
                        task = asyncio.create_task(self._run_one(action), name=action.address)
                        task.add_done_callback(ended.put_nowait)
                        running[task] = action.address
                if not running:
                    continue
                while await ended.get() not in running:
                    pass  # a task already finished with an earlier one
                # every task done by now, as ``asyncio.wait`` would have answered
                done = [task for task in running if task.done()]
                for task in sorted(done, key=lambda t: running[t]):
                    del running[task]
                    finish(task.result())
        except BaseException as exc:
            for task in running:
                task.cancel()
            results = await asyncio.gather(*running, return_exceptions=True)
            if not isinstance(exc, _CallbackFailed):
                # an action that ended although stopped (its write was made) is recorded
                # before the stop goes on: the lockfile must not miss a move the provider has
                for result in results:
                    if isinstance(result, Outcome):
                        with contextlib.suppress(_CallbackFailed):
                            finish(result)
            if isinstance(exc, _CallbackFailed) and exc.__cause__ is not None:
                raise exc.__cause__ from None
            raise

        not_sent: list[str] = []
        stopped = self.breaker.reason() if self.breaker.open else self.stop.reason
        if stopped is not None:
            why = "the provider is unreachable" if self.breaker.open else stopped
            # stopped: what never started is not attempted (a record-only no-op sends nothing)
            for addr in sorted(set(actions) - set(self.outcomes)):
                action = actions[addr]
                if isinstance(action, NoOp):
                    finish(self._noop(action))
                    continue
                not_sent.append(addr)
                finish(_failed(action, f"not attempted: apply stopped, {why}"))
        stuck = sorted(set(actions) - set(self.outcomes))
        for addr in stuck:
            cycle = ", ".join(sorted(d for d in deps[addr] if d in stuck))
            finish(
                _failed(actions[addr], f"not attempted: its dependencies form a cycle ({cycle})")
            )
        return ApplyReport(
            tuple(sorted(self.outcomes.values(), key=lambda o: o.address)),
            stopped=stopped,
            not_sent=tuple(not_sent),
        )

    def _settle_without_sending(self, action: Action, deps: set[str]) -> Outcome | None:
        """The outcome of an action that needs no request (skipped, blocked, no-op), or None."""
        if action.address in self.skip:
            self.root_failure[action.address] = action.address
            return _failed(action, self.skip[action.address])
        if isinstance(action, NoOp):
            # nothing is sent, so a failed dependency cannot make the live object wrong
            return self._noop(action)
        for dep in sorted(deps):
            if not self.outcomes[dep].ok:
                root = self.root_failure.get(dep, dep)
                self.root_failure[action.address] = root
                why = "which failed" if root == dep else f"which was not attempted ({root} failed)"
                return _failed(action, f"not attempted: depends on {dep}, {why}")
        return None

    async def _intend(self, action: Action) -> None:
        """Announce a create and wait until its intent is durable (``IntentJournal``)."""
        self._notify(self.on_intent, action)
        if self.journal is None:
            return
        try:
            await self.journal.intend(action)
        except ApplyStopped:
            raise
        except Exception as e:  # the intent is not on disk: nothing may be sent
            raise _CallbackFailed() from e

    def _notify(self, callback: Callable[[Any], None] | None, arg: Any) -> None:
        if callback is None:
            return
        try:
            callback(arg)
        except Exception as e:
            raise _CallbackFailed() from e

    # -- one action ------------------------------------------------------------------------

    async def _run_one(self, action: Action) -> Outcome:
        self._notify(self.on_start, action)
        ctx = _Resolved()
        try:
            outcome = await self._send(action, ctx)
        except (_CallbackFailed, ApplyStopped):
            raise
        except ActionFailed as e:
            self.breaker.failed(e.__cause__)
            return _failed(action, ctx.scrub(str(e)))
        except ProviderError as e:
            self.breaker.failed(e)
            return _failed(action, ctx.scrub(f"{_verb(action)} failed: {describe_error(e)}"))
        except Exception as e:  # noqa: BLE001 - one action's bug must not sink the others
            message = f"{_verb(action)} failed unexpectedly: {type(e).__name__}: {e}"
            return _failed(action, ctx.scrub(message))
        self.breaker.answered()
        return outcome

    async def _send(self, action: Action, ctx: _Resolved) -> Outcome:
        match action:
            case Create():
                return await self._create(action, ctx)
            case Update():
                return await self._update(action, ctx)
            case Replace():
                return await self._replace(action, ctx)
            case Archive():
                return await self._remove(action, delete=False)
            case Delete():
                return await self._remove(action, delete=True)
            case NoOp():
                return self._noop(action)
            case Adopt():
                return await self._adopt(action)
            case _:
                assert_never(action)

    async def _create(self, action: Create, ctx: _Resolved) -> Outcome:
        parent_id = self._parent_id(action)
        body = self._with_ownership(self._resolve(action.body, action, ctx), action.address)
        await self._intend(action.model_copy(update={"parent_id": parent_id}))
        live, adopted = await self.writes.send_create(action, body, parent_id, exclude_id=None)
        return self._written(action, live, parent_id, ctx, adopted=adopted)

    async def _replace(self, action: Replace, ctx: _Resolved) -> Outcome:
        parent_id = self._parent_id(action)
        # resolve first: a missing secret must not leave the old object archived
        body = self._with_ownership(self._resolve(action.body, action, ctx), action.address)
        await self._intend(action.model_copy(update={"parent_id": parent_id}))
        # the model's contract: a replaced credential is deleted (its secret purged), the
        # other kinds are archived (agents and deployments cannot be deleted)
        await self.writes.archive_or_delete(
            action, action.remote_id, parent_id, delete=action.kind == "credential"
        )
        try:
            live, adopted = await self.writes.send_create(
                action, body, parent_id, exclude_id=action.remote_id
            )
        except (ActionFailed, ProviderError) as e:
            why = str(e) if isinstance(e, ActionFailed) else describe_error(e)
            raise ActionFailed(
                f"replace failed: the old {action.kind} {action.remote_id} was removed but the "
                f"new one could not be created: {why}; the next apply creates it"
            ) from e
        return self._written(action, live, parent_id, ctx, adopted=adopted)

    async def _update(self, action: Update, ctx: _Resolved) -> Outcome:
        parent_id = self._parent_id(action)
        body = self._resolve(action.body, action, ctx)
        if action.kind == "agent" and action.from_version is not None:
            body.setdefault("version", action.from_version)
        verdict = None
        if action.gate is not None:
            verdict = await self._run_gate(action, body, ctx)
            if not verdict.passed:
                # the pin stays: nothing of this update is sent (the next plan sends the
                # deployment's other changes, the held candidate left out); a candidate the
                # provider failed to check is not held, and leaves no record of a hold
                if not verdict.inconclusive:
                    await self._leave_record(action, body, ctx, hold_record(verdict))
                return dataclasses.replace(
                    _failed(action, ctx.scrub(verdict.describe_failures())), verdict=verdict
                )
        live = await self.writes.send_update(action, body, parent_id)
        outcome = dataclasses.replace(
            self._written(action, live, parent_id, ctx, adopted=False), verdict=verdict
        )
        if action.gate is not None and verdict is not None and verdict.candidate is not None:
            record = move_record(action.gate, verdict.candidate)
            try:
                await self._leave_record(action, body, ctx, record)
            except asyncio.CancelledError:
                # Ctrl-C while the record is left: the pin has moved, and the lockfile must
                # say so (a rollback it missed, the next apply would undo); execute stops
                return outcome
        return outcome

    async def _leave_record(self, action: Update, body: JSON, ctx: _Resolved, record: JSON) -> None:
        """Leave a gated move's record at the provider (read back after a lost lockfile).
        Best effort: the move (or hold) stands whether or not its record could be left."""
        pin = body.get("agent")
        if self.checks is None or action.gate is None or not isinstance(pin, dict):
            return
        version = record.get("to", record.get("version"))
        if not isinstance(version, int):
            return
        try:
            session = self._resolve(action.gate.session, action, ctx)
            await self.checks.record(action.gate, str(pin.get("id")), version, session, record)
        except (ApplyStopped, _CallbackFailed):
            raise
        except Exception:  # noqa: BLE001, S110 - a lost record only costs the history after a lost lockfile
            pass

    async def _run_gate(self, action: Update, body: JSON, ctx: _Resolved) -> GateVerdict:
        """Run the checks of a gated pin move on its candidate (the version ``body`` pins)."""
        gate = action.gate
        assert gate is not None
        pin = body.get("agent")
        agent_id = pin.get("id") if isinstance(pin, dict) else None
        candidate = pin.get("version") if isinstance(pin, dict) else None
        if gate.sessions == 0:
            known = agent_id if isinstance(agent_id, str) else None
            return GateVerdict(gate, candidate if isinstance(candidate, int) else None, (), known)
        if not isinstance(agent_id, str) or not isinstance(candidate, int):
            raise ActionFailed(
                f"not attempted: the candidate version of {gate.agent} is not known, so its "
                "checks cannot run; run apply again"
            )
        if self.checks is None:
            raise ActionFailed(
                f"not attempted: {action.address} is gated by {len(gate.checks)} checks and "
                "this apply has no way to run them"
            )
        session = self._resolve(gate.session, action, ctx)
        results = await self.checks.run_checks(gate, agent_id, candidate, session)
        return GateVerdict(gate, candidate, tuple(results), agent_id)

    async def _remove(self, action: Archive | Delete, *, delete: bool) -> Outcome:
        parent_id = self._parent_id(action)
        live = await self.writes.archive_or_delete(
            action, action.remote_id, parent_id, delete=delete
        )
        return Outcome(
            action,
            ok=True,
            remote_id=action.remote_id,
            parent_id=parent_id,
            removed=True,
            live=live,
        )

    async def _adopt(self, action: Adopt) -> Outcome:
        """Tag a live object as ours (one update), then record it like an update's outcome.

        No intent is recorded: the object exists already and is found by its id, so an
        adoption whose outcome is lost in a crash is simply run again by the next import.
        """
        parent_id = self._parent_id(action)
        live: JSON | None = None
        version = action.version
        if action.body:
            body = dict(action.body)
            if action.kind == "agent" and action.version is not None:
                # the version import read: an edit since then is a 409, never overwritten
                body["version"] = action.version
            live = await self.writer.update(
                action.kind, action.remote_id, body, parent_id=parent_id
            )
            if action.kind == "agent" and isinstance(live.get("version"), int):
                version = int(live["version"])
        pins = {a: v for a, v in action.target.pins.items() if v is not None}
        return Outcome(
            action,
            ok=True,
            remote_id=action.remote_id,
            parent_id=parent_id,
            version=version,
            pins=pins,
            live=live,
        )

    def _noop(self, action: NoOp) -> Outcome:
        pins: dict[str, int] = {}
        for agent, version in (action.target.pins if action.target else {}).items():
            if version is None:
                dep = self.outcomes.get(agent)
                version = dep.version if dep is not None and dep.ok else None
            if version is not None:
                pins[agent] = version
        try:
            parent_id = self._parent_id(action)
        except ActionFailed:
            parent_id = None
        skills = self._followed_skills(action, {})
        return Outcome(
            action,
            ok=True,
            remote_id=action.remote_id,
            parent_id=parent_id,
            version=action.version,
            pins=pins,
            skill_version=action.live_marker if action.kind == "skill" else None,
            skills=skills,
        )

    def _written(
        self,
        action: Create | Update | Replace,
        live: JSON,
        parent_id: str | None,
        ctx: _Resolved,
        *,
        adopted: bool,
    ) -> Outcome:
        remote_id = live.get("id") or getattr(action, "remote_id", None)
        version = live.get("version") if action.kind == "agent" else None
        latest = live.get("latest_version_id") if action.kind == "skill" else None
        return Outcome(
            action,
            ok=True,
            remote_id=remote_id,
            parent_id=parent_id,
            version=version if isinstance(version, int) else None,
            pins=self._pins(action, live, ctx),
            adopted=adopted,
            live=ctx.scrub_json(live),
            skill_version=latest if isinstance(latest, str) else None,
            skills=self._followed_skills(action, ctx.skills),
        )

    def _followed_skills(self, action: Action, sent: Mapping[str, str]) -> dict[str, str]:
        """An agent's skill versions after this action: those its body sent (``sent``),
        and for the skills it did not send (an update of other fields, a no-op) its pin,
        else the skill's newest version after this apply (its own outcome's)."""
        skills = dict(sent)
        target = getattr(action, "target", None)
        for skill, pinned in (target.skills if target is not None else {}).items():
            if skill in skills:
                continue
            dep = self.outcomes.get(skill)
            newest = dep.skill_version if dep is not None and dep.ok else None
            if pinned or newest:
                skills[skill] = pinned or newest or ""
        return skills

    def _pins(
        self, action: Create | Update | Replace, live: JSON, ctx: _Resolved
    ) -> dict[str, int]:
        """The concrete agent versions a deployment uses after this write."""
        if action.kind != "deployment":
            return {}
        agents = list(dict.fromkeys([*ctx.pins, *action.target.pins]))
        live_agent = live.get("agent")
        live_version = live_agent.get("version") if isinstance(live_agent, dict) else None
        if len(agents) == 1 and isinstance(live_version, int):
            return {agents[0]: live_version}
        return {a: v for a, v in ctx.pins.items() if v is not None}

    # -- placeholders ----------------------------------------------------------------------

    def _resolve(self, value: Any, action: Action, ctx: _Resolved) -> Any:
        if isinstance(value, dict):
            keys = set(value)
            if keys == {LITERAL}:  # the manifest's own value, sent as written
                return value[LITERAL]
            if keys == {"$ref"}:
                return self._id_of(value["$ref"], action)
            if "$pin" in keys and keys <= {"$pin", "version"}:
                return self._pin(value["$pin"], value.get("version"), action, ctx)
            if keys == {"$secret"}:
                return self._secret(value["$secret"], action, ctx)
            if "$skill" in keys and keys <= {"$skill", "version"}:
                return self._skill(value["$skill"], value.get("version"), action, ctx)
            if keys == {"$files"}:
                return self._files(value["$files"], action)
            return {k: self._resolve(v, action, ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, action, ctx) for v in value]
        return value

    def _id_of(self, address: str, action: Action) -> str:
        dep = self.outcomes.get(address)
        if dep is None or not dep.ok or not dep.remote_id:
            raise ActionFailed(
                f"not attempted: {action.address} refers to {address}, which has no "
                "successful action in this apply"
            )
        return dep.remote_id

    def _pin(self, agent: str, version: Any, action: Action, ctx: _Resolved) -> JSON:
        agent_id = self._id_of(agent, action)
        if version is None:
            version = self.outcomes[agent].version
        ctx.pins[agent] = version
        pin: JSON = {"type": "agent", "id": agent_id}
        if version is not None:
            pin["version"] = version
        return pin

    def _skill(self, skill: str, version: Any, action: Action, ctx: _Resolved) -> JSON:
        """``{type: custom, skill_id, version}``: the pinned version, else the newest one
        after this apply (an upload of this apply included)."""
        skill_id = self._id_of(skill, action)
        version = version or self.outcomes[skill].skill_version
        out: JSON = {"type": "custom", "skill_id": skill_id}
        if version:
            out["version"] = version
            ctx.skills[skill] = str(version)
        return out

    def _files(self, skill: str, action: Action) -> Any:
        """The files of a skill upload, read now and checked against the plan's digest."""
        target = getattr(action, "target", None)
        digest = target.skill.digest if target is not None and target.skill else None
        if self.read_files is None:
            raise ActionFailed(f"not attempted: this apply cannot read the files of {skill}")
        try:
            return self.read_files(skill, digest)
        except Exception as e:
            raise ActionFailed(f"not attempted: {e}") from e

    def _secret(self, path: str, action: Action, ctx: _Resolved) -> str:
        try:
            value = self.resolve_secret(action.address, path)
        except Exception as e:
            raise ActionFailed(
                f"not attempted: could not read the secret {path} of {action.address}: "
                f"{type(e).__name__}: {e}"
            ) from e
        ctx.secrets.append(value)
        return value

    def _parent_id(self, action: Action) -> str | None:
        if action.parent_id is not None or action.parent is None:
            return action.parent_id
        return self._id_of(action.parent, action)

    def _with_ownership(self, body: JSON, address: str) -> JSON:
        """Every create carries the metadata that lets a lost create be found again (a kind
        without metadata, a skill, is found by its content instead)."""
        if not KIND_INFO[kind_of(address)].has_metadata:
            return body
        metadata = dict(body.get("metadata") or {})
        metadata.update(tags(self.plan.project, address))
        return {**body, "metadata": metadata}


def _dependencies(action: Action, actions: Mapping[str, Action]) -> set[str]:
    """Addresses (with an action in this plan) that must finish before ``action`` runs."""
    deps = set(action.depends_on)
    if action.parent is not None:
        deps.add(action.parent)
    body = getattr(action, "body", None)
    if body is not None:
        deps.update(_placeholder_addresses(body))
    deps.discard(action.address)
    return {d for d in deps if d in actions}


def _placeholder_addresses(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {LITERAL}:
            return  # the manifest's own value: it refers to no address
        for key in ("$ref", "$pin", "$skill"):
            if isinstance(value.get(key), str):
                yield value[key]
        for v in value.values():
            yield from _placeholder_addresses(v)
    elif isinstance(value, list):
        for v in value:
            yield from _placeholder_addresses(v)


def _failed(action: Action, error: str) -> Outcome:
    return Outcome(
        action,
        ok=False,
        remote_id=getattr(action, "remote_id", None),
        parent_id=action.parent_id,
        error=error,
    )


def _verb(action: Action) -> str:
    return "record" if action.type == "noop" else action.type
