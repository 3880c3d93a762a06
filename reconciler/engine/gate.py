"""Gated pin moves as plan data: the checks a candidate version must pass, and the verdict.

A ``Gate`` rides on the deployment ``Update`` that moves a pin: the checks to run against
the candidate, and the session they run in (the deployment's environment, vaults and
resources, with the placeholders the executor resolves). ``HeldCandidate`` is what a plan
says about a version the lockfile holds. ``CheckRunner`` is the executor's seam to whoever
runs a check (``reconciler.app.checks`` over the provider client); ``CheckResult`` and
``GateVerdict`` are what comes back. Pure data and one protocol: no I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import ConfigDict, Field

from reconciler.jsontypes import JSON
from reconciler.lean import LeanModel
from reconciler.manifest.rollout import DEFAULT_CHECK_TIMEOUT
from reconciler.state import HeldVersion, PinRecord

#: How a gated pin move is carried out: after its checks pass; without them
#: (``--skip-checks``); after the checks of a held candidate pass again (``--retry-held``);
#: or back to an earlier version (``reconciler rollback``, no checks).
GateMode = Literal["checks", "skip-checks", "retry-held", "rollback"]


class _Frozen(LeanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Check(_Frozen):
    """One check of a deployment's ``rollout.checks``."""

    message: str
    contains: tuple[str, ...] = ()
    rubric: str | None = None
    timeout: float = DEFAULT_CHECK_TIMEOUT

    @property
    def expected(self) -> str:
        """What the check wants, in words: ``contains "PR 42"; rubric satisfied: names ...``."""
        parts = [f"contains {', '.join(repr(c) for c in self.contains)}"] if self.contains else []
        if self.rubric is not None:
            parts.append(f"the grader satisfied by the rubric {self.rubric!r}")
        return "; ".join(parts) or "an answer without error"


class Gate(_Frozen):
    """What must happen before a deployment's pin moves from ``from_version`` to the
    candidate (``to_version``; None: the version this apply creates, known at apply)."""

    deployment: str
    agent: str
    from_version: int | None
    to_version: int | None
    mode: GateMode = "checks"
    checks: tuple[Check, ...] = ()
    #: the check sessions' create body without ``agent``: ``environment_id`` (``$ref``),
    #: ``vault_ids``, ``resources`` (secrets as ``$secret``), as the deployment has them
    session: JSON = Field(default_factory=dict)

    @property
    def sessions(self) -> int:
        """How many check sessions apply starts for this move."""
        return len(self.checks) if self.mode in ("checks", "retry-held") else 0


class HeldCandidate(_Frozen):
    """A version a deployment would move to but the lockfile holds (failed checks, or rolled
    back from): the plan leaves the pin where it is and says why."""

    deployment: str
    agent: str
    version: int
    reason: Literal["checks", "rollback"]
    #: when it was held (the lockfile's timestamp)
    held_at: str
    failed: int | None = None
    total: int | None = None
    #: the version the pin stays at
    stays_at: int | None = None
    #: a deployment archived behind git's back, not created again (``stays_at`` None): the
    #: agent object it was pinned to, archived since, whose versions no pin may name
    gone_agent_id: str | None = None
    #: the deployment's rollout checks now: 0 when it has none (``--retry-held`` only moves it)
    checks: int = 0
    #: a rollback's hold of the version it left for a newer one (``rollback --to`` forward)
    forward: bool = False

    @property
    def message(self) -> str:
        """``v2 held: 1 of 2 checks failed on 2026-12-05``."""
        day = self.held_at[:10]
        if self.reason == "rollback" and self.forward:
            return f"v{self.version} held: left by a rollback forward on {day}"
        if self.reason == "rollback":
            return f"v{self.version} held: rolled back on {day}"
        return f"v{self.version} held: {self.failed} of {self.total} checks failed on {day}"


@dataclass(frozen=True)
class CheckResult:
    """How one check went. ``answer`` is what the agent said to the check's message (the
    grader's verdict is ``verdict`` and ``explanation``, never part of it);
    ``error`` why it could not be judged (timed out, ``session.error``, a provider error)."""

    check: Check
    passed: bool
    session_id: str | None = None
    answer: str = ""
    error: str | None = None
    #: the outcome grader's last verdict (``satisfied``, ``needs_revision``...), with a rubric
    verdict: str | None = None
    #: the grader's explanation of ``verdict``
    explanation: str | None = None
    #: the ``contains`` strings the answer lacks
    missing: tuple[str, ...] = ()
    #: with a rubric, what the agent said while the grader worked, where it is not
    #: ``answer`` said again
    graded_answer: str | None = None
    #: no verdict because the provider failed (an error answer, a dropped connection): the
    #: check says nothing about the candidate
    inconclusive: bool = False

    @property
    def failures(self) -> str | None:
        """What failed, in words (``the answer lacks 'LGTM'``; ``the grader said
        needs_revision (...) for the rubric '...'``); None when that is not known."""
        parts = []
        if self.missing:
            parts.append(f"the answer lacks {', '.join(repr(m) for m in self.missing)}")
        if self.verdict not in (None, "satisfied"):
            why = f" ({self.explanation})" if self.explanation else ""
            parts.append(
                f"the grader said {self.verdict}{why} for the rubric {self.check.rubric!r}"
            )
        return "; ".join(parts) or None


@dataclass(frozen=True)
class GateVerdict:
    """The checks of one candidate, and whether the pin moved."""

    gate: Gate
    candidate: int | None
    results: tuple[CheckResult, ...] = ()
    #: the agent object the candidate is a version of
    agent_id: str | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def inconclusive(self) -> bool:
        """The pin stays, but only because the provider failed to run checks (no check
        failed on the candidate's answer): the candidate is not held, and the next apply
        runs its checks again."""
        return not self.passed and all(r.inconclusive for r in self.failed)

    @property
    def session_ids(self) -> tuple[str, ...]:
        return tuple(r.session_id for r in self.results if r.session_id)

    def describe_failures(self) -> str:
        """One finished paragraph per failed check (message, expected, answer, session)."""
        n, total = len(self.failed), len(self.results)
        head = (
            f"the pin stays at {self.gate.agent}@{self.gate.from_version}: {n} of {total} "
            f"checks failed on v{self.candidate}, which is now held"
        )
        if self.inconclusive:
            head = (
                f"the pin stays at {self.gate.agent}@{self.gate.from_version}: {n} of {total} "
                f"checks could not run on v{self.candidate} (the provider failed); it is not "
                "held, and the next apply runs its checks again"
            )
        lines = [head]
        for r in self.failed:
            if r.error is not None:  # no verdict: why, then what it would have needed
                said = f"{r.error} (expected {r.check.expected})"
            elif r.failures is not None:
                said = f"{r.failures}; got {_short(r.answer)!r}"
                if r.graded_answer is not None:
                    said += f", then for the grader {_short(r.graded_answer)!r}"
            else:
                said = f"expected {r.check.expected}; got {_short(r.answer)!r}"
            lines.append(
                f"    check {r.check.message!r}: {said} (session {r.session_id or 'none'})"
            )
        return "\n".join(lines)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RecoveredRollout(_Frozen):
    """A deployment's rollout record read back from the provider after a lost lockfile
    (``CheckRunner.record`` left it there); its lockfile entry starts from it."""

    held: tuple[HeldVersion, ...] = ()
    pin_history: tuple[PinRecord, ...] = ()
    #: no live deployment has its tags, an archived one does (archived behind git's back
    #: before the lockfile was lost): the agent object and version that one pinned, where
    #: the lockfile had pinned it, so that it is created again there while its candidate
    #: is held
    archived_pin: int | None = Field(default=None, exclude_if=lambda v: v is None)
    archived_agent_id: str | None = Field(default=None, exclude_if=lambda v: v is None)


class CheckRunner(Protocol):
    """Runs the checks of a gate against a candidate version (concurrently), archives their
    sessions, and returns one result per check (a check never raises: it fails)."""

    async def run_checks(
        self, gate: Gate, agent_id: str, version: int, session: JSON
    ) -> Sequence[CheckResult]:
        """Args: the gate; the candidate (agent id, version); the session body resolved
        (``environment_id``, ``vault_ids``, ``resources`` with secret values)."""
        ...

    async def record(
        self, gate: Gate, agent_id: str, version: int, session: JSON, record: JSON
    ) -> None:
        """Leave ``record`` (``move_record`` / ``hold_record``) at the provider, where a
        lost lockfile's rollout state is read back from (``RecoveredRollout``)."""
        ...


def move_record(gate: Gate, to_version: int) -> JSON:
    """What a gated pin move leaves at the provider: ``{"by", "agent", "from", "to"}``."""
    by = "checks" if gate.mode == "checks" and gate.checks else gate.mode
    return {"by": by, "agent": gate.agent, "from": gate.from_version, "to": to_version}


def hold_record(verdict: GateVerdict) -> JSON:
    """What a held candidate leaves at the provider."""
    return {
        "hold": "checks",
        "agent": verdict.gate.agent,
        "version": verdict.candidate,
        "failed": len(verdict.failed),
        "total": len(verdict.results),
    }
