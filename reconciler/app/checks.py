"""The checks of a gated rollout, run against the provider: the engine's ``CheckRunner``.

Each check is one new session pinned to the candidate version, in the deployment's
environment with its vaults and resources: the check's message is sent (one turn, read from
the event stream opened before sending); with a rubric, a ``user.define_outcome`` follows and
the provider's outcome grader gives the verdict (``span.outcome_evaluation_end``). A check
passes when the reply holds every ``contains`` string and the grader (if asked) said
``satisfied``; a ``session.error`` or the check's timeout fails it. A provider error fails it
too, but inconclusively: it says nothing of the candidate, which is not held for it. The
checks of one candidate run concurrently; every check session is archived afterwards. The
sessions carry the ownership tags and say which deployment and candidate they checked
(``reconciler-check``, ``reconciler-candidate``), so a person can find them, and the next
checks of the same candidate archive those a killed apply left behind. Prints nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.engine.gate import Check, CheckResult, Gate
from reconciler.errors import ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import (
    CANDIDATE_KEY,
    CHECK_KEY,
    OWNER_KEY,
    OWNER_VALUE,
    PROJECT_KEY,
    RECORD_KEY,
    ROLLOUT_KEY,
)

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient


class ProviderCheckRunner:
    """``CheckRunner`` over a provider client (the one apply holds)."""

    def __init__(self, client: ProviderClient, project: str) -> None:
        self._client = client
        self._project = project

    async def run_checks(
        self, gate: Gate, agent_id: str, version: int, session: JSON
    ) -> Sequence[CheckResult]:
        """Every check of ``gate`` at once, each in its own session; never raises for a
        failed check (cancellation, and the apply lock lost, still propagate)."""
        await self._archive_leftovers(gate, agent_id, version)
        runs = [
            self._run_one(gate, check, i, agent_id, version, session)
            for i, check in enumerate(gate.checks)
        ]
        return list(await asyncio.gather(*runs))

    async def _run_one(
        self, gate: Gate, check: Check, index: int, agent_id: str, version: int, session: JSON
    ) -> CheckResult:
        body = {
            **session,
            "agent": {"type": "agent", "id": agent_id, "version": version},
            "title": f"rollout check {index + 1} of {gate.deployment} on {gate.agent} v{version}",
            "metadata": {
                OWNER_KEY: OWNER_VALUE,
                PROJECT_KEY: self._project,
                CHECK_KEY: gate.deployment,
                CANDIDATE_KEY: f"{gate.agent}@{version}",
            },
        }
        session_id: str | None = None
        answer: list[str] = []
        try:
            created = await self._client.sessions.create(body)
            session_id = str(created["id"])
            async with asyncio.timeout(check.timeout):
                return await self._converse(check, session_id, answer)
        except TimeoutError:
            return self._failed(check, session_id, answer, f"timed out after {check.timeout:g} s")
        except ProviderError as e:
            # it says who failed; no verdict on the candidate
            return self._failed(check, session_id, answer, str(e), inconclusive=True)
        finally:
            if session_id is not None:
                await asyncio.shield(self._archive(session_id))

    async def _converse(self, check: Check, session_id: str, answer: list[str]) -> CheckResult:
        # the runtime (event streams) loads when a check runs, not with every apply
        from reconciler.runtime.streams import user_message

        error = await self._turn(session_id, [user_message(check.message)], answer)
        if error is not None:
            return self._failed(check, session_id, answer, error)
        reply = "\n".join(answer)
        missing = [c for c in check.contains if c not in reply]
        verdict = explanation = graded_answer = None
        if check.rubric is not None:
            outcome = {
                "type": "user.define_outcome",
                "description": check.message,
                "rubric": {"type": "text", "content": check.rubric},
                "max_iterations": 1,
            }
            verdicts: list[JSON] = []
            # what the agent says while the grader works is kept apart from its answer: the
            # report shows the answer once, and the grader's verdict in words of its own
            graded: list[str] = []
            error = await self._turn(session_id, [outcome], graded, verdicts)
            if error is not None:
                return self._failed(check, session_id, answer, error)
            if not verdicts:
                return self._failed(check, session_id, answer, "the grader gave no verdict")
            verdict = str(verdicts[-1].get("result"))
            explanation = str(verdicts[-1].get("explanation") or "") or None
            again = "\n".join(graded)
            if again.strip() and again != reply:
                graded_answer = again
        passed = not missing and verdict in (None, "satisfied")
        return CheckResult(
            check,
            passed,
            session_id,
            reply,
            verdict=verdict,
            explanation=explanation,
            missing=tuple(missing),
            graded_answer=graded_answer,
        )

    async def _turn(
        self,
        session_id: str,
        events: list[JSON],
        answer: list[str],
        verdicts: list[JSON] | None = None,
    ) -> str | None:
        """Send ``events`` and read the turn to its end; the agent's text goes to ``answer``
        and outcome verdicts to ``verdicts``. Returns why the turn failed, or None."""
        from reconciler.runtime.streams import SentLedger, SessionEventStream, ends_turn
        from reconciler.runtime.turns import Turn

        # the ledger tells the stream a turn is coming (it would end at once on an idle
        # session otherwise)
        ledger = SentLedger()
        stream = SessionEventStream(self._client, session_id, ledger=ledger, replay=False)

        async def send() -> list[JSON]:
            sent = await self._client.sessions.send_events(session_id, events)
            ledger.sent(session_id, sent)
            return sent

        async with Turn(stream, send) as turn:
            async for event in turn:
                kind = event.get("type")
                if kind == "agent.message":
                    answer.extend(
                        str(b.get("text", ""))
                        for b in event.get("content") or []
                        if isinstance(b, dict) and b.get("type") == "text"
                    )
                elif kind == "span.outcome_evaluation_end" and verdicts is not None:
                    # max_iterations is 1: the first verdict is the grade (a revision
                    # cycle or the closing acknowledgment would only cost model time)
                    verdicts.append(event)
                    break
                elif kind == "session.error":
                    error = event.get("error") or {}
                    what = error.get("message") or error.get("type") or "an error"
                    return f"the session failed (session.error: {what})"
                elif kind in ("session.status_terminated", "session.deleted"):
                    return f"the session ended ({kind})"
                if ends_turn(event):
                    break
        return None

    def _failed(
        self,
        check: Check,
        session_id: str | None,
        answer: list[str],
        error: str,
        *,
        inconclusive: bool = False,
    ) -> CheckResult:
        text = "\n".join(answer)
        return CheckResult(check, False, session_id, text, error=error, inconclusive=inconclusive)

    async def record(
        self, gate: Gate, agent_id: str, version: int, session: JSON, record: JSON
    ) -> None:
        """Leave ``record`` as an archived session pinned to ``version`` (nothing is sent to
        it, so no model runs): the provider keeps it when the lockfile is lost, and
        ``recover_rollouts`` reads it back."""
        body = {
            "agent": {"type": "agent", "id": agent_id, "version": version},
            "environment_id": session.get("environment_id"),
            "title": f"rollout record of {gate.deployment}: {_describe(record)}",
            "metadata": {
                OWNER_KEY: OWNER_VALUE,
                PROJECT_KEY: self._project,
                ROLLOUT_KEY: gate.deployment,
                RECORD_KEY: json.dumps(record, sort_keys=True, separators=(",", ":")),
            },
        }
        created = await self._client.sessions.create(body)
        await self._client.sessions.archive(str(created["id"]))

    async def _archive_leftovers(self, gate: Gate, agent_id: str, version: int) -> None:
        """Archive the check sessions of this deployment and candidate that an apply killed
        during its checks left behind (one list: the sessions of the candidate version)."""
        try:
            found = await self._client.sessions.list(
                agent_id=agent_id, agent_version=version
            ).to_list()
        except ProviderError:
            return  # only tidying: the checks themselves do not need it
        for s in found:
            metadata = s.get("metadata") or {}
            if (
                not s.get("archived_at")
                and metadata.get(CHECK_KEY) == gate.deployment
                and metadata.get(PROJECT_KEY) == self._project
            ):
                await self._archive(str(s["id"]))

    async def _archive(self, session_id: str) -> None:
        """Archive a check session (after an interrupt, should it still run); a failure
        here does not change the check's result."""
        with contextlib.suppress(ProviderError):
            try:
                await self._client.sessions.archive(session_id)
            except ProviderError:
                await self._client.sessions.send_events(session_id, [{"type": "user.interrupt"}])
                await self._client.sessions.archive(session_id)


def _describe(record: JSON) -> str:
    if "hold" in record:
        return f"{record.get('agent')} v{record.get('version')} held ({record.get('hold')})"
    return f"{record.get('agent')}@{record.get('from')} -> @{record.get('to')} ({record.get('by')})"
