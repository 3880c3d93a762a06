"""The executor sends a create only once ``IntentJournal.intend`` returned (the intent is durable).

Durability is an awaited call on an interface, not a side channel: these tests hold the
journal's answer back and look at the local provider meanwhile.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.executor import apply_plan
from reconciler.engine.model import Action, Create, Plan, Target
from reconciler.errors import LockfileError
from reconciler.provider import embedded_client
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import Journal, StateStore, read_lockfile

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "ab" * 32


def _plan() -> Plan:
    create = Create(
        address="environment.e",
        kind="environment",
        reason="new",
        body={"name": "e"},
        target=Target(spec_digest=DIGEST),
    )
    return Plan(project="p", actions=(create,))


class Logged(ClientBackedProvider):
    """The local provider, noting each create in a log shared with the journal."""

    def __init__(self, client: Any, log: list[str]) -> None:
        super().__init__(client)
        self.log = log

    async def create(self, kind: Any, body: dict[str, Any], **kw: Any) -> Any:
        self.log.append(f"create {body['name']}")
        return await super().create(kind, body, **kw)


class SlowJournal:
    """Takes a few turns of the event loop to make an intent durable, as a disk write does."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def intend(self, action: Action) -> None:
        self.log.append(f"intend {action.address}")
        for _ in range(5):
            await asyncio.sleep(0)
        self.log.append(f"durable {action.address}")


class FailingJournal:
    async def intend(self, action: Action) -> None:
        raise LockfileError("disk full")


async def test_create_waits_for_the_intent(tmp_path: Path) -> None:
    log: list[str] = []
    async with embedded_client(tmp_path / "p.db") as client:
        provider = Logged(client, log)
        report = await apply_plan(
            _plan(), provider, resolve_secret=lambda a, p: "", journal=SlowJournal(log)
        )
    assert report.ok, report.failures
    assert log == ["intend environment.e", "durable environment.e", "create e"]


async def test_an_intent_that_cannot_be_recorded_sends_nothing(tmp_path: Path) -> None:
    async with embedded_client(tmp_path / "p.db") as client:
        provider = ClientBackedProvider(client)
        with pytest.raises(LockfileError, match="disk full"):
            await apply_plan(
                _plan(), provider, resolve_secret=lambda a, p: "", journal=FailingJournal()
            )
        assert await provider.list_all("environment") == []


async def test_journal_commit_returns_once_the_edit_is_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.lock"
    store = StateStore(path, project="p")
    store.load()
    journal = Journal(store, senders=4)
    journal.stage(lambda lf: lf.model_copy(update={"origin": "local:a"}))  # an outcome, say
    await journal.commit(lambda lf: lf.model_copy(update={"origin": "local:b"}))
    # both edits, in order, are in the file before anything else runs
    assert read_lockfile(path, project="p").origin == "local:b"
    await journal.close()
