"""Apply against a provider that fails 30% of requests: no twins, no gaps, every id recorded.

The local provider injects random 5xx and timeouts, some of them *after* the write happened;
the client asks the executor to look up a create whose answer was lost, which must find and
adopt what was created instead of creating it again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.executor import apply_plan
from reconciler.engine.model import Action, Create, Plan, Target
from reconciler.engine.record import record_intent, record_outcome
from reconciler.kinds import ADDRESS_KEY, PROJECT_KEY
from reconciler.provider import embedded_client
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import Lockfile

# marked here (not only by conftest) so parametrized coroutine tests collect correctly
pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "ab" * 32
NOW = "2026-05-01T12:00:00Z"
MESSAGE = [{"type": "user.message", "content": [{"type": "text", "text": "go"}]}]


def build_plan(project: str) -> Plan:
    actions: list[Action] = []
    for i in range(50):
        actions.append(
            Create(
                address=f"agent.a{i:02}",
                kind="agent",
                reason="new",
                body={"name": f"a{i:02}", "model": "claude-sonnet-4-6"},
                target=Target(spec_digest=DIGEST),
            )
        )
    for i in range(10):
        actions.append(
            Create(
                address=f"environment.e{i}",
                kind="environment",
                reason="new",
                body={"name": f"e{i}"},
                target=Target(spec_digest=DIGEST),
            )
        )
        actions.append(
            Create(
                address=f"deployment.d{i}",
                kind="deployment",
                reason="new",
                body={
                    "name": f"d{i}",
                    "agent": {"$pin": f"agent.a{i:02}", "version": None},
                    "environment_id": {"$ref": f"environment.e{i}"},
                    "initial_events": MESSAGE,
                },
                depends_on=(f"agent.a{i:02}", f"environment.e{i}"),
                target=Target(spec_digest=DIGEST, pins={f"agent.a{i:02}": None}),
            )
        )
    return Plan(project=project, actions=tuple(actions))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_address_exists_exactly_once_despite_faults(
    provider_db: Path, seed: int
) -> None:
    from reconciler.provider.local import FaultConfig

    plan = build_plan("faulty")
    lockfile = Lockfile(project="faulty")

    def intent(action: Action) -> None:
        nonlocal lockfile
        lockfile = record_intent(lockfile, action, NOW)

    def commit(outcome: Any) -> None:
        nonlocal lockfile
        lockfile = record_outcome(lockfile, outcome, NOW)

    faults = FaultConfig(fault_rate=0.3, seed=seed)
    # The client owns every retry, and one budget covers a create's sends and the lookups
    # that resolve its lost answers: at a 30% fault rate a budget of 9 ran out now and then
    # across 30 actions. What is under test is "no twin", not how often a request is retried.
    async with embedded_client(
        provider_db, faults=faults, backoff_base=0.001, backoff_max=0.01, max_retries=20
    ) as faulty:
        report = await apply_plan(
            plan,
            ClientBackedProvider(faulty),
            resolve_secret=lambda a, p: "",
            parallelism=10,
            on_intent=intent,
            on_outcome=commit,
        )
        retries = faulty.stats.retries

    assert report.ok, report.failures
    async with embedded_client(provider_db) as clean:
        provider = ClientBackedProvider(clean)
        live: dict[str, list[dict[str, Any]]] = {}
        for kind in ("agent", "environment", "deployment"):
            for obj in await provider.list_all(kind):
                md = obj.get("metadata") or {}
                assert md.get(PROJECT_KEY) == "faulty"
                live.setdefault(md[ADDRESS_KEY], []).append(obj)

    counts = Counter({address: len(objs) for address, objs in live.items()})
    assert counts == Counter({a.address: 1 for a in plan.actions})
    assert lockfile.pending == {}
    assert {a: e.id for a, e in lockfile.resources.items()} == {
        a: objs[0]["id"] for a, objs in live.items()
    }
    for i in range(10):
        deployment = live[f"deployment.d{i}"][0]
        assert deployment["agent"]["id"] == live[f"agent.a{i:02}"][0]["id"]
        assert deployment["environment_id"] == live[f"environment.e{i}"][0]["id"]
        assert lockfile.resources[f"deployment.d{i}"].pins == {f"agent.a{i:02}": 1}
    # the faults really happened: requests were sent again, and some creates whose answer
    # was lost were found by their tags and adopted
    assert retries > 0
    assert report.adopted
