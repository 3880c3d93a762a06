"""A skill's new version and what it reaches: the chain a plan shows in one place. Pure.

A skill is referenced by agents (``skills: [{ref: NAME}]``), and an agent that follows the
skill's newest version gets a new version of its own when the skill gets one; deployments
that follow such an agent move their pin. ``skill_chains`` collects, per skill upload of a
plan, the agents it updates and those pin moves; ``chain_radius`` is the blast radius of
the skill: every deployment it reaches through them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.engine.desired import DesiredResource
from reconciler.engine.model import (
    Action,
    BlastRadius,
    ChainAgent,
    Create,
    Impact,
    PinMove,
    SkillChain,
    Update,
    skill_version_words,
)

__all__ = ["chain_radius", "skill_chains"]


def skill_chains(
    desired: Mapping[str, DesiredResource],
    actions: Iterable[Action],
    pin_moves: Iterable[PinMove],
) -> tuple[SkillChain, ...]:
    """One chain per skill this plan uploads a new version of, sorted by skill."""
    acted = {a.address: a for a in actions}
    moves = tuple(pin_moves)
    chains: list[SkillChain] = []
    for address, action in sorted(acted.items()):
        if action.kind != "skill" or not isinstance(action, Update):
            continue
        agents = [
            _agent(acted[res.address])
            for res in desired.values()
            if res.kind == "agent"
            and res.skill_refs.get(address, "pinned") is None
            and isinstance(acted.get(res.address), Update | Create)
        ]
        followers = {a.agent for a in agents}
        chains.append(
            SkillChain(
                skill=address,
                summary=skill_version_words(action.changes),
                agents=tuple(sorted(agents, key=lambda a: a.agent)),
                pin_moves=tuple(m for m in moves if m.agent in followers),
            )
        )
    return tuple(chains)


def _agent(action: Action) -> ChainAgent:
    if isinstance(action, Update):
        return ChainAgent(
            agent=action.address, from_version=action.from_version, to_version=action.to_version
        )
    return ChainAgent(agent=action.address, to_version=1)


def chain_radius(
    desired: Mapping[str, DesiredResource], chains: Iterable[SkillChain]
) -> tuple[BlastRadius, ...]:
    """Each uploaded skill's blast radius: the deployments of the agents that follow it
    (following the agent's latest: affected by this apply; pinned: not yet)."""
    out: list[BlastRadius] = []
    for chain in chains:
        followers = {a.agent for a in chain.agents}
        impacts = []
        for res in desired.values():
            if res.kind != "deployment" or res.pin is None or res.pin[0] not in followers:
                continue
            pinned = res.pin[1]
            impacts.append(
                Impact(deployment=res.address, follows_latest=pinned is None, pinned_version=pinned)
            )
        if impacts:
            deployments = tuple(sorted(impacts, key=lambda i: i.deployment))
            out.append(BlastRadius(address=chain.skill, deployments=deployments))
    return tuple(out)
