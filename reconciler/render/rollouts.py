"""How pin moves, held candidates and skill chains read: the rollout parts of a plan.

A deployment's pin move (``agent.reviewer@3 -> @4 after 2 checks``), the candidates the
lockfile holds, what the rollout checks cost, and each skill's new version with the agents
that follow it and the pins they move, as ``blocks`` shapes for ``outline`` to place. No
styling, no I/O, and nothing decided that the engine decided.
"""

from __future__ import annotations

from typing import assert_never

from reconciler.engine.model import PinMove, Plan, SkillChain
from reconciler.render.blocks import Block, Chain, LeftAlone
from reconciler.render.values import printable

SKILL_CHAINS_HEADING = (
    "Skill rollouts (a skill's new version, the agents that follow it, their deployments):"
)


def chain_view(chain: SkillChain) -> Chain:
    """``Chain`` lines of one ``SkillChain``."""
    agents = []
    for a in chain.agents:
        if a.from_version is None:
            line = f"{a.agent}  version {a.to_version or 1}  [skills]"
        else:
            to = "next" if a.to_version is None else str(a.to_version)
            line = f"{a.agent}  version {a.from_version} -> {to}  [skills]"
        pins = tuple(
            f"{m.deployment}  pin {' '.join(pin_facts(m))}"
            for m in chain.pin_moves
            if m.agent == a.agent
        )
        agents.append((line, pins))
    return Chain(chain.skill, printable(chain.summary), tuple(agents))


def pin_facts(move: PinMove) -> tuple[str, str]:
    """``("agent.reviewer@3 -> @4", "(follows latest)")``: what a pin move says; a gated
    move says how (``agent.reviewer@3 -> @4 after 2 checks``)."""
    old = "none" if move.old is None else str(move.old)
    new = "latest" if move.new is None else str(move.new)
    if move.gate == "rollback":
        forward = move.old is not None and move.new is not None and move.new > move.old
        how = "(rollback, forward)" if forward else "(rollback)"
    elif move.follows_latest and move.new is None:
        how = "(follows latest; the number is resolved at apply)"
    else:
        how = "(follows latest)" if move.follows_latest else "(pinned)"
    return f"{move.agent}@{old} -> @{new}{gate_words(move)}", how


def gate_words(move: PinMove) -> str:
    """`` after 2 checks``, `` WITHOUT its checks (--skip-checks)``... or ``""``."""
    n = f"{move.checks} check{'s' if move.checks != 1 else ''}"
    match move.gate:
        case None:
            return ""
        case "checks":
            return f" after {n}"
        case "retry-held":
            after = f" after {n}" if move.checks else ""
            return f"{after} (retrying a held candidate)"
        case "skip-checks":
            return " WITHOUT its checks (--skip-checks)"
        case "rollback":
            return ""  # said by pin_facts' second fact
        case _:
            assert_never(move.gate)


def held_items(plan: Plan) -> tuple[LeftAlone, ...]:
    """``deployment.nightly: agent.reviewer v2 held: ...; the pin stays at @1 ...``."""
    out = []
    for h in sorted(plan.held, key=lambda h: (h.deployment, h.agent, h.version)):
        stays = f"; the pin stays at @{h.stays_at}" if h.stays_at is not None else ""
        # a deployment without checks (rolled back from a version) has no checks to run
        retry = "runs its checks again" if h.checks else "moves the pin to it again"
        message = f"{h.agent} {h.message}{stays} (`reconciler apply --retry-held` {retry})"
        if h.stays_at is None and h.gone_agent_id is not None:
            message = (
                f"{h.agent} {h.message}; the deployment is not created again: the agent it "
                f"ran ({h.gone_agent_id}) was archived behind git's back, and a create runs "
                f"no checks (`reconciler apply --retry-held` creates it at v{h.version} all "
                f"the same; once {h.agent} has a new version, apply creates it there)"
            )
        out.append(LeftAlone(h.deployment, None, printable(message)))
    return tuple(out)


HELD_HEADING = "Held candidates (their deployments' pins stay):"


def check_sessions_message(plan: Plan) -> str | None:
    """``Apply would start 2 check sessions (rollout checks; each uses model time).``"""
    n = plan.check_sessions
    if not n:
        return None
    return (
        f"Apply would start {n} check session{'s' if n != 1 else ''} (rollout checks; on a "
        "real provider each uses model time)."
    )


def pin_block(move: PinMove) -> Block:
    """``~ deployment.nightly  pin  agent.reviewer@3 -> @4  (follows latest)``.

    Only for a pin move whose deployment has no changing action of its own; otherwise the
    move is a fact of that action's block (``with_pin``), so the deployment reads once.
    """
    facts = pin_facts(move)
    return Block("~", "update", move.deployment, "deployment", verb="pin", facts=facts)
