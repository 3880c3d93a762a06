"""The README walked as written by a new user and a platform team, through the CLI (embedded
provider): each test is a case where the tool said something untrue or the README's example
did not run, and stays fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok, out_of_band

from reconciler.provider import ProviderClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch)
    (root / ".git").mkdir()
    return root


def test_a_skill_found_again_after_a_lost_lockfile_is_said_found_by_its_slug_not_its_tags(
    workdir: Path,
) -> None:
    # a skill carries no metadata: it is found again by its slug, never by ownership tags
    ok("apply", "--auto-approve")
    Path("state/reconciler.lock").unlink()
    only_skill = " ".join(ok("plan", "--target", "skill.review-checklist").stdout.split())
    assert "it records 1 resource (skill.review-checklist, found again by its slug)" in only_skill
    assert "ownership tags" not in only_skill, only_skill
    both = " ".join(ok("plan", "--target", "agent.reviewer").stdout.split())
    assert (
        "it records 2 resources (agent.reviewer and skill.review-checklist, found again by "
        "their ownership tags, skills by their slug)"
    ) in both, both
    only_agent = " ".join(ok("plan", "--target", "agent.coder").stdout.split())
    assert "(agent.coder, found again by its ownership tags)" in only_agent, only_agent
    drift = cli("drift", "--format", "json")
    (warning,) = json.loads(drift.stdout)["warnings"]
    assert (
        "the live objects that this project's ownership tags name, and the skills their slugs name;"
    ) in warning, warning


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(section: str, fence: str = "```yaml") -> str:
    """The first fenced block of ``fence`` under the README heading ``section``."""
    text = README.read_text().split(f"\n{section}\n", 1)[1]
    return text.split(f"{fence}\n", 1)[1].split("\n```", 1)[0]


def test_the_readmes_memory_store_example_seeds_from_a_file_and_applies(workdir: Path) -> None:
    # the README showed only {path, content} seeds; {path, from_file} is the other form
    store = readme_block("### Memory stores").split("\n---\n")[0]
    assert "from_file: seeds/style.md" in store, store
    (workdir / "manifests/seeds").mkdir()
    (workdir / "manifests/seeds/style.md").write_text("- Use ruff.\n")
    (workdir / "manifests/memory_stores.yaml").write_text(store + "\n")
    ok("validate")
    ok("apply", "--auto-approve")
    store_id = json.loads(ok("state", "show", "memory_store.review-notes").stdout)["id"]

    async def read(client: ProviderClient) -> dict[str, str]:
        listed = client.memory_stores.memories.list(store_id, view="full")
        return {m["path"]: m["content"] async for m in listed}

    assert out_of_band(read)["/style.md"] == "- Use ruff.\n"
    assert "No changes." in ok("plan").stdout


def test_the_readme_says_a_directory_holding_skill_md_is_no_manifests(workdir: Path) -> None:
    # manifest/files.py skips it; the Manifests section must say so, and it holds: YAML in
    # the example skill's directory is neither read as a manifest nor reformatted
    said = " ".join(README.read_text().split("\n## Manifests\n", 1)[1].split("```", 1)[0].split())
    assert "A directory below `manifests/` that holds a `SKILL.md` is a skill's files" in said
    data = workdir / "manifests/skills/review-checklist/data.yaml"
    data.write_text("bad: [1\n")
    ok("validate")
    assert "data.yaml" not in cli("fmt", "--check").stdout
    assert data.read_text() == "bad: [1\n"


def test_a_rollback_of_a_deployment_without_checks_never_speaks_of_its_checks(
    workdir: Path,
) -> None:
    # the example deployment has no rollout checks: after a rollback, the held version's
    # hint and --retry-held said "runs its checks again", "after 0 checks", "0 of 0 passed"
    ok("apply", "--auto-approve")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind", "Be kind"))
    ok("apply", "--auto-approve")
    ok("rollback", "deployment.nightly-review", "--auto-approve")
    held = " ".join(ok("plan").stdout.split())
    assert "(`reconciler apply --retry-held` moves the pin to it again)" in held, held
    retried = ok("plan", "--retry-held").stdout
    assert "pin agent.reviewer@1 -> @2 (retrying a held candidate)" in retried, retried
    done = ok("apply", "--auto-approve", "--retry-held").stdout
    assert "@1 -> @2 moved (a held candidate, retried; no checks to run)." in done, done
    for said in (held, retried, done):
        assert "0 check" not in said and "its checks" not in said, said


def test_import_all_unmanaged_of_one_resource_says_one_resource(workdir: Path) -> None:
    async def handmade(client: ProviderClient) -> None:
        await client.environments.create({"name": "handmade", "config": {"type": "cloud"}})

    ok("apply", "--auto-approve")
    out_of_band(handmade)
    said = ok("import", "--all-unmanaged", "--out", "imported").stdout
    assert "Recorded 1 resource in state/reconciler.lock." in said, said


def test_drift_after_state_rm_of_a_skill_does_not_call_its_agents_edited(workdir: Path) -> None:
    # `state rm skill.X` forgets the skill; nobody edited the agent that follows it, so
    # drift reports the skill (unmanaged), not the agent as changed out of band
    ok("apply", "--auto-approve")
    ok("state", "rm", "skill.review-checklist")
    report = json.loads(cli("drift", "--format", "json").stdout)
    assert [(i["type"], i["address"]) for i in report["items"] if i["type"] != "unmanaged"] == []
    assert [i["kind"] for i in report["items"]] == ["skill"], report["items"]


def test_the_readmes_gated_deployment_is_the_example_one_with_a_check_added(
    workdir: Path,
) -> None:
    # "The example deployment of manifests/ ... gated by one check, it reads:" the block left
    # out its description, memory store, schedule and metadata, so pasting it planned their
    # removal; adding checks must change nothing else
    ok("apply", "--auto-approve")
    gated = readme_block("## Safe rollouts")
    assert "rollout:" in gated
    (workdir / "manifests/deployments.yaml").write_text(gated + "\n")
    ok("validate")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    assert plan["summary"]["update"] == 0, plan["actions"]
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind", "Be kind"))
    said = ok("plan").stdout
    assert "pin agent.reviewer@1 -> @2 after 1 check  (follows latest)" in said, said
