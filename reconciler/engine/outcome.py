"""What an apply did: one ``Outcome`` per action and the ``ApplyReport`` that holds them.

Plain frozen data produced by the executor, folded into the lockfile by ``record`` and shown
by the renderers. Nothing here does I/O, and nothing here ever holds a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.engine.gate import GateVerdict
from reconciler.engine.model import Action
from reconciler.errors import ApplyError
from reconciler.jsontypes import JSON

COUNT_KEYS: tuple[str, ...] = (
    "created",
    "updated",
    "replaced",
    "archived",
    "deleted",
    "unchanged",
    "failed",
)
_COUNT_OF_TYPE = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "archive": "archived",
    "delete": "deleted",
    "noop": "unchanged",
    # an adoption is a metadata update of a live object (only ``import`` plans have them)
    "adopt": "updated",
}


@dataclass(frozen=True)
class Outcome:
    """What happened to one action. Never holds a secret value.

    Attributes:
        action: the action of the plan.
        ok: the action succeeded (or had nothing to do).
        remote_id: the remote id (the new one for a create or replace).
        parent_id: a credential's vault id.
        version: agents: the version after the action.
        pins: deployments: agent address -> concrete version the deployment now uses.
        removed: archive/delete succeeded (or the object was already gone).
        adopted: an ambiguous create was found by its metadata and adopted.
        error: a sentence for the person reading the summary, when not ok.
        live: the object as the provider returned it.
        verdict: a gated pin move: its checks and whether they passed (``engine.gate``).
        skill_version: skills: the newest version after the action (the one it uploaded).
        skills: agents: skill address -> the version id the agent was sent.
    """

    action: Action
    ok: bool
    remote_id: str | None = None
    parent_id: str | None = None
    version: int | None = None
    pins: dict[str, int] = field(default_factory=dict)
    removed: bool = False
    adopted: bool = False
    error: str | None = None
    live: JSON | None = None
    verdict: GateVerdict | None = None
    skill_version: str | None = None
    skills: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.action.address

    @property
    def attempted(self) -> bool:
        """False for an action the executor never sent: its dependency failed, its
        dependencies form a cycle, or the apply stopped (the executor's errors for those
        begin "not attempted")."""
        return self.ok or not (self.error or "").startswith("not attempted")


@dataclass(frozen=True)
class ApplyReport:
    """Every outcome of one apply, sorted by address.

    Attributes:
        outcomes: one per action of the plan.
        stopped: why the apply stopped starting actions early (the provider is unreachable,
            or the caller's ``StopRequest``: a first Ctrl-C), or None when every action was started (or settled).
        not_sent: the actions never started because it stopped (failed "not attempted").
    """

    outcomes: tuple[Outcome, ...]
    stopped: str | None = None
    not_sent: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """``{"created": 3, "updated": 1, ..., "failed": 0}`` (all keys always present)."""
        counts = dict.fromkeys(COUNT_KEYS, 0)
        for o in self.outcomes:
            counts[_COUNT_OF_TYPE[o.action.type] if o.ok else "failed"] += 1
        return counts

    @property
    def failures(self) -> dict[str, str]:
        """Address -> why it failed (or why it was not attempted)."""
        return {o.address: o.error or "failed" for o in self.outcomes if not o.ok}

    @property
    def verdicts(self) -> tuple[GateVerdict, ...]:
        """The gated pin moves of this apply, by deployment address."""
        return tuple(o.verdict for o in self.outcomes if o.verdict is not None)

    @property
    def adopted(self) -> tuple[str, ...]:
        """Addresses whose ambiguous create was found on the provider and adopted."""
        return tuple(o.address for o in self.outcomes if o.adopted)

    @property
    def ok(self) -> bool:
        return self.stopped is None and all(o.ok for o in self.outcomes)

    @property
    def summary(self) -> str:
        """``Apply: 2 created, 1 updated, 0 archived, 1 failed.`` (zero rare kinds omitted)."""
        c = self.counts
        parts = [f"{c['created']} created", f"{c['updated']} updated"]
        if c["replaced"]:
            parts.append(f"{c['replaced']} replaced")
        parts.append(f"{c['archived']} archived")
        if c["deleted"]:
            parts.append(f"{c['deleted']} deleted")
        parts.append(f"{c['failed']} failed")
        return "Apply: " + ", ".join(parts) + "."

    def outcome(self, address: str) -> Outcome | None:
        for o in self.outcomes:
            if o.address == address:
                return o
        return None

    def raise_for_failures(self) -> None:
        """Raise ``ApplyError`` (with ``.failures``) when any action failed.

        The message is the summary, then one line per failed address::

            Apply: 1 created, 0 updated, 0 archived, 2 failed.
              agent.bad: create failed: ... (400 invalid_request_error, request req_01...)
              deployment.d: not attempted: depends on agent.bad, which failed
            What succeeded is recorded in the lockfile; run apply again to continue.
        """
        failures = self.failures
        if not failures:
            return
        lines = [self.summary, *(f"  {a}: {why}" for a, why in failures.items())]
        lines.append("What succeeded is recorded in the lockfile; run apply again to continue.")
        raise ApplyError("\n".join(lines), failures=failures)
