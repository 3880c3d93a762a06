"""Adoption is an action of the plan: the executor runs ``Adopt``, the renderers show it, and
``reconciler import`` goes through that one write path (issue 13, item 2).

The executor tests run against the real local provider in-process; the import tests use the
application layer over the embedded provider of a project directory.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import DB, LOCKFILE, lockfile, make_workdir, ok, out_of_band, remote_id

from reconciler.app import adoptions as adoptions_module
from reconciler.app.adopt import import_resource
from reconciler.app.unmanaged import import_unmanaged
from reconciler.app.workspace import Settings
from reconciler.engine.executor import Outcome, apply_plan
from reconciler.engine.model import Adopt, Plan, Target
from reconciler.engine.record import record_outcome
from reconciler.kinds import ADDRESS_KEY, tags
from reconciler.provider import ProviderClient
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.render import render_plan
from reconciler.render.json_format import action_to_json, plan_to_json
from reconciler.state import Lockfile

DIGEST = "sha256:" + "cd" * 32
UNTAG = {"managed-by": None, "reconciler-project": None, "reconciler-address": None}


def no_secrets(address: str, path: str) -> str:
    raise AssertionError("an adoption reads no secret")


def adopt_action(remote_id: str, *, body: dict[str, Any], version: int | None = 1) -> Adopt:
    return Adopt(
        address="agent.coder",
        kind="agent",
        reason="import: an existing object, taken under management",
        remote_id=remote_id,
        body=body,
        target=Target(spec_digest=DIGEST, remote_name="coder"),
        version=version,
    )


# -- the executor --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_executor_tags_an_adopted_agent_and_reports_the_new_version(
    client: ProviderClient,
) -> None:
    provider = ClientBackedProvider(client)
    live = await provider.create("agent", {"name": "coder", "model": "claude-sonnet-4-6"})
    action = adopt_action(live["id"], body={"metadata": tags("default", "agent.coder")})
    seen: list[Outcome] = []

    report = await apply_plan(
        Plan(actions=(action,)), provider, resolve_secret=no_secrets, on_outcome=seen.append
    )

    assert report.ok, report.failures
    assert [o.address for o in seen] == ["agent.coder"]
    outcome = report.outcome("agent.coder")
    assert outcome is not None
    # tagging is a metadata update, and an agent update saves a new version
    assert (outcome.remote_id, outcome.version) == (live["id"], 2)
    after = await provider.retrieve("agent", live["id"])
    assert after["metadata"][ADDRESS_KEY] == "agent.coder"
    assert after["version"] == 2
    assert report.counts["updated"] == 1
    # the outcome folds into the lockfile like an update's: the target and the new version
    entry = record_outcome(Lockfile(), outcome, "2026-01-01T00:00:00Z").resources["agent.coder"]
    assert (entry.id, entry.version, entry.spec_digest) == (live["id"], 2, DIGEST)
    assert entry.remote_name == "coder"


@pytest.mark.anyio
async def test_an_adoption_of_an_object_already_tagged_sends_nothing(
    client: ProviderClient,
) -> None:
    provider = ClientBackedProvider(client)
    live = await provider.create(
        "agent",
        {"name": "coder", "model": "claude-sonnet-4-6", "metadata": tags("default", "agent.coder")},
    )
    report = await apply_plan(
        Plan(actions=(adopt_action(live["id"], body={}),)), provider, resolve_secret=no_secrets
    )
    outcome = report.outcome("agent.coder")
    assert outcome is not None and outcome.ok
    assert outcome.version == 1
    assert (await provider.retrieve("agent", live["id"]))["version"] == 1


@pytest.mark.anyio
async def test_an_agent_edited_since_import_read_it_is_not_overwritten(
    client: ProviderClient,
) -> None:
    """The adoption carries the version import saw as a precondition: a colleague's edit
    in between makes it fail (409) instead of tagging over the edit unseen."""
    provider = ClientBackedProvider(client)
    live = await provider.create("agent", {"name": "coder", "model": "claude-sonnet-4-6"})
    action = adopt_action(live["id"], body={"metadata": tags("default", "agent.coder")})
    await provider.update("agent", live["id"], {"version": 1, "system": "edited by hand"})

    report = await apply_plan(Plan(actions=(action,)), provider, resolve_secret=no_secrets)

    assert not report.ok and report.failures["agent.coder"].startswith("adopt failed: ")
    after = await provider.retrieve("agent", live["id"])
    assert (after["version"], after["system"]) == (2, "edited by hand")
    assert ADDRESS_KEY not in (after.get("metadata") or {})


@pytest.mark.anyio
async def test_a_failed_adoption_is_an_outcome_not_an_exception(client: ProviderClient) -> None:
    provider = ClientBackedProvider(client)
    action = adopt_action("agent_0000000000000000000000nope", body={"metadata": {"a": "b"}})
    report = await apply_plan(Plan(actions=(action,)), provider, resolve_secret=no_secrets)
    assert not report.ok
    assert report.failures["agent.coder"].startswith("adopt failed: ")


# -- the renderers --------------------------------------------------------------------------------


def test_an_adopt_action_in_json() -> None:
    action = adopt_action("agent_01abc", body={"metadata": tags("default", "agent.coder")})
    assert action_to_json(action) == {
        "type": "adopt",
        "address": "agent.coder",
        "kind": "agent",
        "reason": "import: an existing object, taken under management",
        "remote_id": "agent_01abc",
        "changes": [
            {
                "op": "add",
                "path": "metadata",
                "old": None,
                "new": tags("default", "agent.coder"),
                "sensitive": False,
            }
        ],
        "from_version": 1,
        "to_version": None,
        "labels": [],
        "moved_from": None,
    }
    doc = plan_to_json(Plan(actions=(action,)))
    # the summary keeps its documented keys; an adoption counts as a change
    assert set(doc["summary"]) == {"create", "update", "replace", "archive", "delete", "noop"}
    assert doc["has_changes"] is True
    assert json.loads(render_plan(Plan(actions=(action,)), "json"))["actions"][0]["type"] == "adopt"


def test_an_adopt_action_in_text_and_markdown() -> None:
    action = adopt_action("agent_01abc", body={"metadata": tags("default", "agent.coder")})
    text = render_plan(Plan(actions=(action,)), "text")
    assert "= agent.coder  adopt  agent_01abc  (tags it as ours)" in text
    assert "Plan: 0 to create, 0 to update, 0 to archive, 1 to adopt." in text
    markdown = render_plan(Plan(actions=(action,)), "markdown")
    assert "agent.coder" in markdown and "adopt" in markdown


# -- import goes through the executor ----------------------------------------------------------------


def test_import_runs_a_plan_of_adopt_actions_through_the_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")
    ok("state", "rm", "agent.coder")

    async def untag(c: ProviderClient) -> None:
        await c.agents.update(coder, {"metadata": UNTAG})

    out_of_band(untag)
    plans: list[Plan] = []
    real = adoptions_module.apply_plan

    async def watched(plan: Plan, *args: Any, **kw: Any) -> Any:
        plans.append(plan)
        return await real(plan, *args, **kw)

    monkeypatch.setattr(adoptions_module, "apply_plan", watched)
    settings = Settings(manifests=Path("manifests"), lockfile=Path(LOCKFILE), db_path=Path(DB))
    result = asyncio.run(import_resource(settings, "agent.coder", coder))

    assert [[a.type for a in p.actions] for p in plans] == [["adopt"]]
    assert result.report is not None and result.report.ok
    outcome = result.report.outcome("agent.coder")
    assert outcome is not None and isinstance(outcome.action, Adopt)
    assert outcome.action.body == {"metadata": tags("default", "agent.coder")}
    entry = lockfile()["resources"]["agent.coder"]
    assert (entry["id"], entry["version"]) == (coder, outcome.version)
    assert [(a.address, a.tagged) for a in result.adopted] == [("agent.coder", True)]


def test_import_all_unmanaged_adopts_through_the_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch, manifests=False)

    async def click_together(c: ProviderClient) -> None:
        await c.environments.create({"name": "py"})
        await c.agents.create({"name": "coder", "model": "claude-sonnet-4-6"})

    out_of_band(click_together)
    settings = Settings(manifests=Path("manifests"), lockfile=Path(LOCKFILE), db_path=Path(DB))
    result = asyncio.run(import_unmanaged(settings, Path("manifests/imported")))

    assert result.report is not None and result.report.ok, result.failures
    assert {(o.address, o.action.type) for o in result.report.outcomes} == {
        ("agent.coder", "adopt"),
        ("environment.py", "adopt"),
    }
    recorded = lockfile()["resources"]
    assert recorded["agent.coder"]["version"] == result.report.outcome("agent.coder").version == 2
    assert sorted(recorded) == ["agent.coder", "environment.py"]
