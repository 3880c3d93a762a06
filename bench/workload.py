"""The benchmark's workload: N agents and N/10 environments, as manifests and as SDK calls.

One description of every resource feeds both sides of a comparison: ``write_manifests`` turns
it into the YAML the reconciler reads, ``sdk_bodies`` into the keyword arguments of the
official SDK's ``create`` calls - the same fields and the same metadata (ownership tags
included) that the reconciler's own creates carry, so both sides send equal requests.

Nothing here measures or talks to a provider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.kinds import TOP_LEVEL_KINDS

PROJECT = "bench"
MODEL = "claude-sonnet-4-6"
#: Kinds the reconciler's refresh lists besides agents and environments (one page each, even
#: when empty): every top-level kind of the vocabulary, so a new kind is counted here too.
OTHER_LISTED_KINDS = len(set(TOP_LEVEL_KINDS) - {"agent", "environment"})


@dataclass(frozen=True)
class Workload:
    """``agents`` agents and ``environments`` environments."""

    agents: int
    environments: int

    @classmethod
    def of_size(cls, agents: int) -> Workload:
        """``agents`` agents plus one environment for every ten agents (issue #4's mix)."""
        return cls(agents, max(1, agents // 10))

    @property
    def resources(self) -> int:
        return self.agents + self.environments

    @property
    def ideal_list_requests(self) -> int:
        """ceil(N/100) per listed kind; the two empty kinds cost one request each."""
        return (
            math.ceil(self.agents / 100) + math.ceil(self.environments / 100) + OTHER_LISTED_KINDS
        )

    def label(self) -> str:
        return f"{self.agents:,} ag + {self.environments:,} env"


def _agent_spec(i: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "description": f"Benchmark agent {i}",
        "system": f"You are benchmark agent number {i}. Answer briefly.",
        "metadata": {"team": "bench", "tier": str(i % 3)},
    }


def _environment_spec(i: int) -> dict[str, Any]:
    return {
        "description": f"Benchmark environment {i}",
        "config": {"type": "cloud", "networking": {"type": "unrestricted"}},
        "metadata": {"team": "bench"},
    }


def agent_name(i: int) -> str:
    return f"agent-{i:05d}"


def environment_name(i: int) -> str:
    return f"env-{i:05d}"


def _yaml_document(kind: str, name: str, spec: dict[str, Any]) -> str:
    lines = [f"kind: {kind}", f"name: {name}", "spec:"]
    for key, value in spec.items():
        if key == "metadata":
            lines.append("  metadata:")
            lines.extend(f"    {k}: {_quote(v)}" for k, v in value.items())
        elif key == "config":
            lines.append("  config:")
            lines.append(f"    type: {value['type']}")
            lines.append(f"    networking: {{type: {value['networking']['type']}}}")
        else:
            lines.append(f"  {key}: {_quote(value)}")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return f'"{value}"' if value.isdigit() else value


def write_manifests(workload: Workload, folder: Path) -> Path:
    """Write the workload as two multi-document files under ``folder``; return ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    agents = (
        _yaml_document("Agent", agent_name(i), _agent_spec(i)) for i in range(workload.agents)
    )
    (folder / "agents.yaml").write_text("---\n".join(agents), encoding="utf-8")
    environments = (
        _yaml_document("Environment", environment_name(i), _environment_spec(i))
        for i in range(workload.environments)
    )
    (folder / "environments.yaml").write_text("---\n".join(environments), encoding="utf-8")
    return folder


def _ownership(address: str) -> dict[str, str]:
    return {
        "managed-by": "reconciler",
        "reconciler-project": PROJECT,
        "reconciler-address": address,
    }


def sdk_bodies(workload: Workload, *, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(kind, create kwargs)`` for the SDK loop: the reconciler's own create bodies.

    Environment names get an ``sdk-`` prefix: names are unique among live environments and
    the reconciler's run has created the plain ones on the same provider already.

    Args:
        limit: at most this many calls, agents and environments in the workload's ratio
            (a sample for an extrapolated timing).
    """
    agents, environments = workload.agents, workload.environments
    if limit is not None and limit < workload.resources:
        environments = max(1, round(limit * workload.environments / workload.resources))
        agents = max(0, limit - environments)
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(agents):
        spec = _agent_spec(i)
        spec["metadata"] = {**spec["metadata"], **_ownership(f"agent.{agent_name(i)}")}
        calls.append(("agent", {"name": agent_name(i), **spec}))
    for i in range(environments):
        spec = _environment_spec(i)
        spec["metadata"] = {**spec["metadata"], **_ownership(f"environment.{environment_name(i)}")}
        calls.append(("environment", {"name": "sdk-" + environment_name(i), **spec}))
    return calls
