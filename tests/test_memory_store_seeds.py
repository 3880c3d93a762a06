"""When a plan writes a MemoryStore's seeds again (``engine/seeds.py``), and when it never does.

An interrupted create (its intent still pending, its store not the one the state records)
gets the seeds that are absent written; the real kills are in ``test_crash_matrix.py`` and
``test_crash_matrix_pg.py``. Here, through the CLI and the embedded provider, the cases where
seeds must stay as the agents left them: a store found again after a lost lockfile, and a
pending intent on the store the lockfile already records. And the plan's JSON names the
seeds an interrupted create left.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import DB, LOCKFILE, cli, lockfile, make_workdir, ok, out_of_band, remote_id

from reconciler.provider import ProviderClient

STORE = """\
kind: MemoryStore
name: notes
spec:
  description: Team conventions
  memories:
    - {path: /style.md, content: "Use black."}
    - {path: /review/checklist.md, content: "Tests first."}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch, manifests=False)
    (root / "manifests").mkdir()
    (root / "manifests/stores.yaml").write_text(STORE)
    return root


def memories(store_id: str) -> dict[str, str]:
    async def read(client: ProviderClient) -> dict[str, str]:
        return {
            m["path"]: m["content"]
            async for m in client.memory_stores.memories.list(store_id, view="full")
        }

    return out_of_band(read)


def agent_deletes(store_id: str, path: str) -> None:
    async def delete(client: ProviderClient) -> None:
        memory = await client.memory_stores.memories.find(store_id, path)
        assert memory is not None
        await client.memory_stores.memories.delete(store_id, memory["id"])

    out_of_band(delete)


def with_pending_intent(address: str) -> None:
    """The lockfile as a run that died after recording ``address``'s intent leaves it."""
    data = lockfile()
    data["pending"][address] = {
        "kind": "memory_store",
        "operation": "create",
        "started_at": "2026-12-06T02:00:00Z",
    }
    Path(LOCKFILE).write_text(json.dumps(data, indent=2))


def plan_json() -> dict[str, Any]:
    result = cli("plan", "--format", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def test_a_store_found_again_after_a_lost_lockfile_is_not_seeded_again(workdir: Path) -> None:
    """Nothing says its seeds are missing, and an agent deleted one on purpose."""
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")
    agent_deletes(store_id, "/style.md")
    Path(LOCKFILE).unlink()
    result = cli("plan")
    assert "No changes. The live system matches the manifests." in result.stdout, result.stdout
    assert "memories[" not in result.stdout
    ok("apply", "--auto-approve")
    assert remote_id("memory_store.notes") == store_id
    assert memories(store_id) == {"/review/checklist.md": "Tests first."}


def test_a_pending_intent_on_the_recorded_store_does_not_seed_it(workdir: Path) -> None:
    """The lockfile records this store: its create's outcome, written after its seeds, was
    recorded, whatever intent a later run left."""
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")
    agent_deletes(store_id, "/style.md")
    with_pending_intent("memory_store.notes")
    action = next(a for a in plan_json()["actions"] if a["address"] == "memory_store.notes")
    assert action["type"] == "noop", action
    ok("apply", "--auto-approve")
    assert "memory_store.notes" not in lockfile()["pending"]
    assert memories(store_id) == {"/review/checklist.md": "Tests first."}


def test_an_interrupted_create_is_an_update_that_writes_the_absent_seeds(workdir: Path) -> None:
    """The store made by a run that died before its seeds and before its outcome: found by
    its tags, its address still pending. The plan (JSON here) names the absent seed, the
    one apply writes, and not the one an agent wrote meanwhile, which apply keeps."""
    ok("apply", "--auto-approve")
    old_id = remote_id("memory_store.notes")

    async def interrupted_create(client: ProviderClient) -> str:
        made = await client.memory_stores.retrieve(old_id)
        await client.memory_stores.archive(old_id)  # a fresh store, as if never applied
        store = await client.memory_stores.create(
            {"name": made["name"], "description": made["description"],
             "metadata": made["metadata"]}
        )  # fmt: skip
        await client.memory_stores.memories.create(store["id"], "/style.md", "Use ruff.")
        return str(store["id"])

    store_id = out_of_band(interrupted_create)
    data = lockfile()
    del data["resources"]["memory_store.notes"]
    Path(LOCKFILE).write_text(json.dumps(data, indent=2))
    with_pending_intent("memory_store.notes")
    assert Path(DB).exists()
    action = next(a for a in plan_json()["actions"] if a["address"] == "memory_store.notes")
    assert action["type"] == "update" and action["remote_id"] == store_id, action
    assert "interrupted before its seed memories" in action["reason"]
    assert [(c["op"], c["path"]) for c in action["changes"]] == [
        ("add", "memories[/review/checklist.md]"),
    ]
    shown = cli("plan").stdout
    assert "~ memory_store.notes  update" in shown, shown
    assert "+ memories[/review/checklist.md]" in shown and "/style.md" not in shown, shown
    ok("apply", "--auto-approve")
    assert remote_id("memory_store.notes") == store_id
    assert memories(store_id) == {"/style.md": "Use ruff.", "/review/checklist.md": "Tests first."}
    assert not lockfile()["pending"]
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout


def test_a_seed_added_later_is_created_when_absent_and_no_other_is_touched(
    workdir: Path,
) -> None:
    """The contract: seeds are "created when absent and never changed afterwards". A seed
    added to the manifest of a live store is absent: apply writes it, and only it (not the
    seed an agent deleted, not the one an agent rewrote); then the plan is clean."""
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")
    agent_deletes(store_id, "/style.md")
    manifest = workdir / "manifests/stores.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "Tests first.", "Tests first, always."
        )  # an edited seed: never rewritten
        + '    - {path: /onboarding.md, content: "Read the README."}\n'
    )
    action = next(a for a in plan_json()["actions"] if a["address"] == "memory_store.notes")
    assert action["type"] == "update", action
    assert [(c["op"], c["path"]) for c in action["changes"]] == [
        ("add", "memories[/onboarding.md]")
    ]
    assert "new seed" in action["reason"], action["reason"]
    assert cli("plan", "--detailed-exitcode").exit_code == 2
    ok("apply", "--auto-approve")
    assert remote_id("memory_store.notes") == store_id
    assert memories(store_id) == {
        "/review/checklist.md": "Tests first.",
        "/onboarding.md": "Read the README.",
    }
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout
    agent_deletes(store_id, "/onboarding.md")  # written once: an agent may delete it for good
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout


def test_import_of_a_store_with_memories_plans_only_the_seeds_apply_writes(
    workdir: Path,
) -> None:
    """A hand-made store already holds /style.md (other content: the agents' own) and
    /review/checklist.md (the seed's content); the manifest adds /onboarding.md. After
    ``import``, the plan shows the one write apply makes, and says nothing of the others;
    import says the differing seed is left as the agents wrote it."""
    manifest = workdir / "manifests/stores.yaml"
    manifest.write_text(STORE + '    - {path: /onboarding.md, content: "Read the README."}\n')

    async def hand_made(client: ProviderClient) -> str:
        made = await client.memory_stores.create(
            {"name": "notes", "description": "Team conventions"}
        )
        await client.memory_stores.memories.create(made["id"], "/style.md", "Use ruff.")
        await client.memory_stores.memories.create(
            made["id"], "/review/checklist.md", "Tests first."
        )
        return str(made["id"])

    store_id = out_of_band(hand_made)
    imported = ok("import", "memory_store.notes", store_id)
    said = imported.stdout + imported.stderr
    assert "/style.md" in said and "/review/checklist.md" not in said, said
    action = next(a for a in plan_json()["actions"] if a["address"] == "memory_store.notes")
    assert action["type"] == "update", action
    assert [(c["op"], c["path"]) for c in action["changes"]] == [
        ("add", "memories[/onboarding.md]"),
    ]
    assert "1 new seed" in action["reason"], action["reason"]
    shown = ok("plan").stdout
    assert "memories[/style.md]" not in shown and "memories[/review/checklist.md]" not in shown
    ok("apply", "--auto-approve")
    assert memories(store_id) == {
        "/style.md": "Use ruff.",
        "/review/checklist.md": "Tests first.",
        "/onboarding.md": "Read the README.",
    }
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout


def test_a_seed_added_later_at_a_path_an_agent_wrote_is_no_write(workdir: Path) -> None:
    """Seeds are written only where no memory is: a seed added to the manifest at a path an
    agent wrote already is no change in the plan (apply would not write it)."""
    ok("apply", "--auto-approve")
    store_id = remote_id("memory_store.notes")

    async def agent_writes(client: ProviderClient) -> None:
        await client.memory_stores.memories.create(store_id, "/onboarding.md", "Ask Ana.")

    out_of_band(agent_writes)
    manifest = workdir / "manifests/stores.yaml"
    manifest.write_text(STORE + '    - {path: /onboarding.md, content: "Read the README."}\n')
    action = next(a for a in plan_json()["actions"] if a["address"] == "memory_store.notes")
    assert action["type"] == "noop", action
    ok("apply", "--auto-approve")
    assert memories(store_id)["/onboarding.md"] == "Ask Ana."
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout
