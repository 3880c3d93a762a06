"""``kind: MemoryStore`` driven through the CLI against the embedded provider: the store and
its seed memories are created once, the agents own the content afterwards, a deployment
mounts a store by name, and update, drift, prune, protect and import work as for the other
kinds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import (
    cli,
    drift_json,
    edit,
    items,
    lockfile,
    make_workdir,
    ok,
    out_of_band,
    plan_is_clean,
    remote_id,
)

from reconciler.provider import ProviderClient

STORES = """\
kind: MemoryStore
name: notes
spec:
  description: Team conventions
  metadata: {team: infra}
  memories:
    - {path: /style.md, content: "Use black."}
    - {path: /review/checklist.md, content: "Tests first."}
"""

DEPLOYMENT = """\
kind: Environment
name: dev
spec: {config: {type: cloud}}
---
kind: Agent
name: coder
spec: {model: claude-sonnet-4-6}
---
kind: Deployment
name: nightly
spec:
  agent: coder
  environment: dev
  initial_events: [{type: user.message, content: [{type: text, text: hi}]}]
  resources:
    - {memory_store: notes, access: read_only, instructions: Read the style guide first}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch, manifests=False)
    (root / "manifests").mkdir()
    (root / "manifests/stores.yaml").write_text(STORES)
    (root / "manifests/app.yaml").write_text(DEPLOYMENT)
    return root


def memories(store: str) -> dict[str, str]:
    async def read(client: ProviderClient) -> dict[str, str]:
        found = {}
        async for item in client.memory_stores.memories.list(store, view="full"):
            found[item["path"]] = item["content"]
        return found

    return out_of_band(read)


def store(store_id: str) -> dict[str, Any]:
    async def read(client: ProviderClient) -> dict[str, Any]:
        return await client.memory_stores.retrieve(store_id)

    return out_of_band(read)


def test_a_store_is_created_with_its_seeds_and_mounted_by_name(workdir: Path) -> None:
    result = ok("apply", "--auto-approve")
    assert "memory_store.notes" in result.stdout
    store_id = remote_id("memory_store.notes")
    assert store_id.startswith("memstore_")
    assert memories(store_id) == {"/style.md": "Use black.", "/review/checklist.md": "Tests first."}
    live = store(store_id)
    assert live["description"] == "Team conventions"
    assert live["metadata"]["reconciler-address"] == "memory_store.notes"

    async def deployment(client: ProviderClient) -> dict[str, Any]:
        return await client.deployments.retrieve(remote_id("deployment.nightly"))

    (mount,) = out_of_band(deployment)["resources"]
    assert mount["memory_store_id"] == store_id
    assert (mount["access"], mount["instructions"]) == ("read_only", "Read the style guide first")
    plan_is_clean()


def test_what_the_agents_write_is_theirs_seeds_are_never_rewritten(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")

    async def agent_writes(client: ProviderClient) -> None:
        memory = await client.memory_stores.memories.find(store_id, "/style.md")
        assert memory is not None
        await client.memory_stores.memories.update(store_id, memory["id"], content="Use ruff.")
        await client.memory_stores.memories.create(store_id, "/learned.md", "PRs need tests")

    out_of_band(agent_writes)
    plan_is_clean()
    drift_json(code=0)
    # a seed edited in the manifest changes nothing remote either: seeds are written once
    edit(workdir / "manifests/stores.yaml", '"Use black."', '"Use black, always."')
    ok("apply", "--auto-approve")
    assert memories(store_id)["/style.md"] == "Use ruff."


def test_an_edit_in_git_updates_the_store_in_place(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")
    edit(workdir / "manifests/stores.yaml", "Team conventions", "Team conventions, 2027")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    (action,) = [a for a in plan["actions"] if a["type"] != "noop"]
    assert (action["address"], action["type"]) == ("memory_store.notes", "update")
    ok("apply", "--auto-approve")
    assert store(store_id)["description"] == "Team conventions, 2027"
    assert remote_id("memory_store.notes") == store_id
    plan_is_clean()


def test_an_edit_behind_gits_back_is_drift_and_plan_puts_it_back(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")

    async def console_edit(client: ProviderClient) -> None:
        await client.memory_stores.update(store_id, {"description": "edited by hand"})

    out_of_band(console_edit)
    report = drift_json()
    assert [i["address"] for i in items(report)] == ["memory_store.notes"]
    ok("apply", "--auto-approve")
    assert store(store_id)["description"] == "Team conventions"


def test_a_store_archived_behind_our_back_is_drift(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")

    async def archive(client: ProviderClient) -> None:
        await client.memory_stores.archive(store_id)

    out_of_band(archive)
    report = drift_json()
    assert any(i["address"] == "memory_store.notes" for i in items(report))


def test_a_mount_of_a_store_archived_by_hand_is_not_drift_of_the_deployment(
    workdir: Path,
) -> None:
    """The deployment was not edited: its mount names the store that was archived, which is
    that store's drift (reported at it), as for an archived environment."""
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")

    async def archive(client: ProviderClient) -> None:
        await client.memory_stores.archive(store_id)

    out_of_band(archive)
    report = drift_json()
    assert [(i["address"], i["type"]) for i in items(report)] == [
        ("memory_store.notes", "archived")
    ]
    text = cli("drift")
    assert text.exit_code == 2
    assert "deployment.nightly" not in text.stdout
    ok("apply", "--auto-approve")
    drift_json(code=0)


def test_prune_archives_a_removed_store_unless_protected(workdir: Path) -> None:
    (workdir / "manifests/app.yaml").write_text(DEPLOYMENT.split("---\nkind: Deployment")[0])
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")
    stores = workdir / "manifests/stores.yaml"
    stores.write_text(STORES.replace("name: notes\n", "name: notes\nprotect: true\n"))
    ok("apply", "--auto-approve")
    stores.unlink()
    result = ok("apply", "--auto-approve", "--prune")
    assert store(store_id)["archived_at"] is None
    assert "protect" in result.stdout + result.stderr
    stores.write_text(STORES)
    ok("apply", "--auto-approve")
    stores.unlink()
    ok("apply", "--auto-approve", "--prune")
    assert store(store_id)["archived_at"] is not None
    assert "memory_store.notes" not in lockfile()["resources"]


def test_a_mount_of_an_unknown_store_is_refused_at_its_line(workdir: Path) -> None:
    edit(workdir / "manifests/app.yaml", "{memory_store: notes", "{memory_store: nots")
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/app.yaml:16:22:" in result.stderr
    assert (
        "unknown memory store 'nots'" in result.stderr and "did you mean 'notes'" in result.stderr
    )


def test_a_bad_seed_path_is_refused_at_its_line(workdir: Path) -> None:
    edit(workdir / "manifests/stores.yaml", "{path: /style.md", "{path: style.md")
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/stores.yaml:7:" in result.stderr
    assert "must start with '/'" in result.stderr


async def hand_made(client: ProviderClient) -> str:
    """A store made by hand (outside git) with one memory an agent wrote: its id."""
    made = await client.memory_stores.create({"name": "scratch", "description": "by hand"})
    await client.memory_stores.memories.create(made["id"], "/a.md", "agent content")
    return str(made["id"])


def test_import_adopts_a_hand_made_store_without_its_memories(
    workdir: Path, tmp_path: Path
) -> None:
    ok("apply", "--auto-approve")
    store_id = out_of_band(hand_made)
    result = ok("import", "--all-unmanaged", "--out", "manifests")
    written = (workdir / "manifests/memory_stores.yaml").read_text()
    assert "kind: MemoryStore" in written and "name: scratch" in written
    assert "by hand" in written and "agent content" not in written
    assert "1 memory store" in result.stdout and "without their memories" in result.stdout
    assert lockfile()["resources"]["memory_store.scratch"]["id"] == store_id
    plan_is_clean()


def test_importing_one_hand_made_store_says_its_memories_stay_out(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    store_id = out_of_band(hand_made)
    result = ok("import", "memory_store.scratch", store_id)
    assert f"Imported memory_store.scratch ({store_id})" in result.stdout
    assert "without its memories" in result.stdout
    assert "agent content" not in result.stdout + result.stderr


def test_ignore_changes_leaves_an_edited_description_alone(workdir: Path) -> None:
    stores = workdir / "manifests/stores.yaml"
    stores.write_text(
        STORES.replace("name: notes\n", "name: notes\nignore_changes: [description]\n")
    )
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")

    async def console_edit(client: ProviderClient) -> None:
        await client.memory_stores.update(store_id, {"description": "edited by hand"})

    out_of_band(console_edit)
    edit(stores, "Team conventions", "Team conventions, 2027")
    assert "ignore_changes leaves as is" in ok("plan").stdout
    ok("apply", "--auto-approve")
    assert store(store_id)["description"] == "edited by hand"
    drift_json(code=0)
    edit(stores, "{team: infra}", "{team: platform}")  # what is not ignored still applies
    ok("apply", "--auto-approve")
    assert store(store_id)["metadata"]["team"] == "platform"
    assert store(store_id)["description"] == "edited by hand"


def test_the_remote_name_is_the_documents_unless_spec_name_says_otherwise(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    assert store(remote_id("memory_store.notes"))["name"] == "notes"
    stores = workdir / "manifests/stores.yaml"
    stores.write_text(
        stores.read_text() + "---\nkind: MemoryStore\nname: wiki\nspec:\n  name: Team Wiki\n"
    )
    ok("apply", "--auto-approve")
    assert store(remote_id("memory_store.wiki"))["name"] == "Team Wiki"
    plan_is_clean()


def test_a_wire_mount_of_a_store_that_is_gone_or_archived_fails_the_plan_at_its_line(
    workdir: Path,
) -> None:
    """A store named by id (``memory_store_id``) that does not exist, or is archived, is
    refused by the provider when the deployment is written: the plan says so at its line
    instead of an apply failing halfway (after creating what the deployment needs)."""
    mount = "{memory_store: notes, access: read_only, instructions: Read the style guide first}"
    app = workdir / "manifests/app.yaml"
    app.write_text(DEPLOYMENT.replace(mount, "{type: memory_store, memory_store_id: memstore_0x}"))
    result = cli("plan")
    assert result.exit_code == 1, result.stdout
    assert (
        "manifests/app.yaml:16:28: deployment.nightly: memory store memstore_0x does not exist"
    ) in result.stderr, result.stderr
    assert not Path("state/reconciler.lock").exists()

    async def hand_made(client: ProviderClient) -> str:
        made = await client.memory_stores.create({"name": "old-notes"})
        await client.memory_stores.archive(made["id"])
        return str(made["id"])

    archived = out_of_band(hand_made)
    wire = f"{{type: memory_store, memory_store_id: {archived}}}"
    app.write_text(DEPLOYMENT.replace(mount, wire))
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1, result.stdout
    assert f"deployment.nightly: memory store {archived} is archived" in result.stderr
    assert not Path("state/reconciler.lock").exists()
