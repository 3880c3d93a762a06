"""`reconciler drift` through the command line: someone changes the live system behind git's
back with a second client, and drift tells, with exit code 2.

Each test applies the example manifests, makes one kind of change out of band, and reads the
report as JSON (data) and as text or Markdown (what a person or a PR comment sees).
"""

from __future__ import annotations

import json
import shutil
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
    remote_id,
)

from reconciler.provider import ProviderClient


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example manifests, applied: the live system matches git."""
    workdir = make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return workdir


def test_no_drift_right_after_apply_exits_0(applied: Path) -> None:
    result = ok("drift")
    assert "No drift." in result.stdout
    assert json.loads(ok("drift", "--format", "json").stdout)["has_drift"] is False
    assert "No drift" in ok("drift", "--format", "markdown").stdout


def test_an_agent_edited_out_of_band_is_changed_with_the_version_that_did_it(
    applied: Path,
) -> None:
    coder = remote_id("agent.coder")

    async def edit_prompt(c: ProviderClient) -> dict[str, Any]:
        return await c.agents.update(coder, {"system": "Ship it without tests."})

    edited = out_of_band(edit_prompt)
    assert edited["version"] == 2

    report = drift_json()
    [item] = items(report)
    assert item["type"] == "changed" and item["address"] == "agent.coder"
    assert item["version"] == 2  # the version that introduced the change
    assert item["changed_at"] == edited["updated_at"]
    [change] = item["changes"]
    assert change["path"] == "system"
    assert change["old"].startswith("You are a careful software engineer")  # the manifest
    assert change["new"] == "Ship it without tests."  # live
    assert "reconciler apply" in item["message"]

    text = cli("drift")
    assert text.exit_code == 2
    assert "~ agent.coder  changed out of band  (version 2, " in text.stdout
    assert "Drift: 1 changed, 0 archived, 0 deleted, 0 pin, 0 unmanaged." in text.stdout


def test_several_out_of_band_versions_name_the_first_and_the_span(applied: Path) -> None:
    reviewer = remote_id("agent.reviewer")

    async def two_edits(c: ProviderClient) -> list[dict[str, Any]]:
        first = await c.agents.update(reviewer, {"description": "first edit"})
        second = await c.agents.update(reviewer, {"model": "claude-haiku-4-5"})
        return [first, second]

    first, _ = out_of_band(two_edits)
    [item] = items(drift_json(), "changed")
    assert item["version"] == 2 and item["changed_at"] == first["updated_at"]
    assert "versions 2-3" in item["message"]
    assert {c["path"] for c in item["changes"]} == {"description", "model.id"}


def test_apply_restores_the_manifest_and_drift_is_clean_again(applied: Path) -> None:
    coder = remote_id("agent.coder")

    async def edit_prompt(c: ProviderClient) -> None:
        await c.agents.update(coder, {"system": "changed"})

    out_of_band(edit_prompt)
    assert cli("drift").exit_code == 2
    ok("apply", "--auto-approve")
    assert ok("drift").stdout.startswith("No drift")


def test_an_environment_edited_out_of_band(applied: Path) -> None:
    env = remote_id("environment.python-data")

    async def widen(c: ProviderClient) -> None:
        await c.environments.update(env, {"description": "anything goes"})

    out_of_band(widen)
    [item] = items(drift_json())
    assert (item["type"], item["address"], item["version"]) == (
        "changed",
        "environment.python-data",
        None,
    )
    assert [c["path"] for c in item["changes"]] == ["description"]
    assert item["changed_at"]  # when the environment was last updated


def test_a_manifest_edit_not_yet_applied_is_not_drift(applied: Path) -> None:
    edit(Path("manifests/environments.yaml"), "data-team", "analytics")
    said = ok("drift").stdout
    assert said.startswith("No drift")
    # the all-clear claims only what drift compared: not that the manifests match
    assert "the manifests" not in said and "nothing was changed outside git" in said, said
    assert cli("plan", "--detailed-exitcode").exit_code == 2  # it is a pending change


def test_an_agent_edited_out_of_band_while_its_manifest_changed_too(applied: Path) -> None:
    edit(Path("manifests/agents.yaml"), "Be specific and kind.", "Be specific.")
    reviewer = remote_id("agent.reviewer")

    async def edit_description(c: ProviderClient) -> None:
        await c.agents.update(reviewer, {"description": "by hand"})

    out_of_band(edit_description)
    [item] = items(drift_json())
    assert item["address"] == "agent.reviewer" and item["version"] == 2
    # compared with what the last apply left (version 1), not with the edited manifest
    assert [(c["path"], c["new"]) for c in item["changes"]] == [("description", "by hand")]
    assert "the manifest changed too" in item["message"]


def test_archived_behind_our_back(applied: Path) -> None:
    env = remote_id("environment.python-data")

    async def archive(c: ProviderClient) -> None:
        await c.environments.archive(env)

    out_of_band(archive)
    [item] = items(drift_json())
    assert (item["type"], item["address"], item["remote_id"]) == (
        "archived",
        "environment.python-data",
        env,
    )
    assert "creates it again" in item["message"]
    text = cli("drift").stdout
    assert "! environment.python-data  archived behind our back" in text


def test_deleted_behind_our_back_and_its_credentials_are_not_reported_twice(
    applied: Path,
) -> None:
    vault = remote_id("vault.github")

    async def delete(c: ProviderClient) -> None:
        await c.vaults.delete(vault)

    out_of_band(delete)
    report = drift_json()
    assert [(i["type"], i["address"]) for i in items(report)] == [("deleted", "vault.github")]


def test_a_credential_archived_in_a_managed_vault(applied: Path) -> None:
    vault = remote_id("vault.github")
    cred = remote_id("vault.github.credential.github-mcp")

    async def archive(c: ProviderClient) -> None:
        await c.credentials.archive(vault, cred)

    out_of_band(archive)
    [item] = items(drift_json())
    assert (item["type"], item["address"]) == ("archived", "vault.github.credential.github-mcp")


def test_pin_moved_out_of_band(applied: Path) -> None:
    deployment = remote_id("deployment.nightly-review")
    reviewer = remote_id("agent.reviewer")

    async def repin(c: ProviderClient) -> None:
        await c.agents.update(reviewer, {"description": "v2 by hand"})
        await c.deployments.update(
            deployment, {"agent": {"type": "agent", "id": reviewer, "version": 2}}
        )

    out_of_band(repin)
    report = drift_json()
    [pin] = items(report, "pin")
    assert pin["address"] == "deployment.nightly-review"
    assert pin["message"].startswith("runs agent.reviewer@2, the lockfile pinned @1")
    assert [i["address"] for i in items(report, "changed")] == ["agent.reviewer"]
    assert "~ deployment.nightly-review  pin drifted" in cli("drift").stdout


def test_pin_moved_to_another_agent(applied: Path) -> None:
    deployment = remote_id("deployment.nightly-review")
    coder = remote_id("agent.coder")

    async def repoint(c: ProviderClient) -> None:
        await c.deployments.update(
            deployment, {"agent": {"type": "agent", "id": coder, "version": 1}}
        )

    out_of_band(repoint)
    [pin] = items(drift_json(), "pin")
    assert pin["message"].startswith(f"runs agent {coder}@1, not agent.reviewer")


def test_a_deployment_paused_by_hand_is_drift_until_unpaused(applied: Path) -> None:
    """No manifest field says a deployment runs, but a pause in the Console stops its
    schedule: drift says so (exit 2) and how to resume; plan notes it and changes nothing
    (apply never unpauses: an operator's pause may be what stopped an incident)."""
    deployment = remote_id("deployment.nightly-review")
    out_of_band(lambda c: c.deployments.pause(deployment))

    report = drift_json()
    [paused] = items(report)
    assert (paused["type"], paused["address"]) == ("paused", "deployment.nightly-review")
    assert paused["message"].startswith("paused by hand (the Console or the API)")
    assert f"/v1/deployments/{deployment}/unpause" in paused["message"]
    assert paused["changes"] == [
        {"op": "change", "path": "status", "old": "active", "new": "paused", "sensitive": False}
    ]
    assert report["summary"]["paused"] == 1
    text = cli("drift")
    assert text.exit_code == 2
    assert "~ deployment.nightly-review  paused" in text.stdout
    assert "Drift: 0 changed, 0 archived, 0 deleted, 0 pin, 1 paused, 0 unmanaged." in text.stdout
    assert "paused by hand" in cli("drift", "--format", "markdown").stdout

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout  # nothing for apply to do
    assert "Left alone:" in plan.stdout and "paused by hand" in plan.stdout
    assert "leaves it paused" in plan.stdout

    out_of_band(lambda c: c.deployments.unpause(deployment))
    assert ok("drift").stdout.count("No drift.") == 1


def test_unmanaged_resources_of_every_kind(applied: Path) -> None:
    vault = remote_id("vault.github")

    async def click_together(c: ProviderClient) -> dict[str, str]:
        agent = await c.agents.create({"name": "Clicked Agent", "model": "claude-haiku-4-5"})
        env = await c.environments.create({"name": "scratch"})
        cred = await c.credentials.create(
            vault,
            {
                "display_name": "by hand",
                "auth": {
                    "type": "static_bearer",
                    "mcp_server_url": "https://mcp.example.com/mcp",
                    "token": "t",
                },
            },
        )
        archived = await c.agents.create({"name": "old", "model": "claude-haiku-4-5"})
        await c.agents.archive(archived["id"])
        theirs = await c.agents.create(
            {
                "name": "theirs",
                "model": "claude-haiku-4-5",
                "metadata": {
                    "managed-by": "reconciler",
                    "reconciler-project": "another-repo",
                    "reconciler-address": "agent.theirs",
                },
            }
        )
        return {"agent": agent["id"], "env": env["id"], "cred": cred["id"], "theirs": theirs["id"]}

    made = out_of_band(click_together)
    report = drift_json()
    unmanaged = {i["remote_id"]: i for i in items(report, "unmanaged")}
    assert set(unmanaged) == {made["agent"], made["env"], made["cred"]}  # not archived, not theirs
    assert all(i["address"] is None for i in unmanaged.values())
    assert unmanaged[made["agent"]]["remote_name"] == "Clicked Agent"
    assert unmanaged[made["cred"]]["kind"] == "credential"
    assert unmanaged[made["cred"]]["message"].startswith("in vault.github:")
    # the command to adopt it names the managed vault (it said vault.VAULT.credential.NAME)
    assert (
        f"`reconciler import vault.github.credential.NAME {made['cred']}` adopts it"
        in unmanaged[made["cred"]]["message"]
    )
    assert len(items(report)) == 3

    text = cli("drift").stdout
    assert f'? agent "Clicked Agent" ({made["agent"]})  unmanaged' in text

    assert ok("drift", "--ignore-unmanaged").stdout.startswith("No drift")


def test_resources_tagged_by_this_project_for_unknown_addresses_are_unmanaged(
    applied: Path,
) -> None:
    async def leftover(c: ProviderClient) -> str:
        tags = {
            "managed-by": "reconciler",
            "reconciler-project": "default",
            "reconciler-address": "agent.removed-long-ago",
        }
        agent = await c.agents.create(
            {"name": "removed", "model": "claude-haiku-4-5", "metadata": tags}
        )
        return str(agent["id"])

    agent_id = out_of_band(leftover)
    [item] = items(drift_json(), "unmanaged")
    assert item["remote_id"] == agent_id
    assert "tagged agent.removed-long-ago by this project" in item["message"]


@pytest.mark.parametrize("tag", ["not an address!!", "environment.python-data"])
def test_an_address_tag_edited_into_no_address_of_its_kind_never_crashes_a_plan(
    applied: Path, tag: str
) -> None:
    """An agent tagged by this project whose ``reconciler-address`` was edited by hand into
    no address (or an environment's): plan and ``plan --prune`` said "unexpected ValueError:
    not an address ... This is a bug". They leave it alone, as an object no address of
    this project names; drift reports it unmanaged."""

    async def edited(c: ProviderClient) -> str:
        tags = {"managed-by": "reconciler", "reconciler-project": "default"}
        body = {"name": "odd", "model": "claude-haiku-4-5", "metadata": tags}
        agent = await c.agents.create({**body, "metadata": {**tags, "reconciler-address": tag}})
        return str(agent["id"])

    odd = out_of_band(edited)
    for args in (("plan",), ("plan", "--prune")):
        result = cli(*args, "--format", "json")
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        plan = json.loads(result.stdout)
        assert odd not in json.dumps(plan["actions"]), plan["actions"]
    [item] = items(drift_json(), "unmanaged")
    assert item["remote_id"] == odd
    ok("import", "agent.odd", odd)  # the command drift names adopts it
    assert remote_id("agent.odd") == odd


def test_a_twin_tagged_with_a_recorded_address_is_a_twin(applied: Path) -> None:
    async def twin(c: ProviderClient) -> str:
        tags = {
            "managed-by": "reconciler",
            "reconciler-project": "default",
            "reconciler-address": "agent.coder",
        }
        agent = await c.agents.create(
            {"name": "coder", "model": "claude-haiku-4-5", "metadata": tags}
        )
        return str(agent["id"])

    twin_id = out_of_band(twin)
    [item] = items(drift_json())
    assert item["type"] == "twin" and item["remote_id"] == twin_id
    assert item["address"] == "agent.coder"
    assert "a twin" in item["message"] and remote_id("agent.coder") in item["message"]
    assert "apply --prune" in item["message"]


def test_markdown_report_for_an_issue_or_a_pr(applied: Path) -> None:
    env = remote_id("environment.python-data")

    async def archive(c: ProviderClient) -> None:
        await c.environments.archive(env)

    out_of_band(archive)
    result = cli("drift", "--format", "markdown")
    assert result.exit_code == 2
    assert result.stdout.startswith("### Reconciler drift for project `default`")
    assert "`environment.python-data`" in result.stdout
    assert "\x1b[" not in result.stdout


def test_drift_refreshes_like_plan_and_fetches_versions_only_of_changed_agents(
    applied: Path,
) -> None:
    """Fast: the plan's one list per kind, plus one version history per changed agent."""
    import asyncio

    from reconciler import app as gitops
    from reconciler.app import Settings, make_plan
    from reconciler.provider import embedded_client

    async def requests() -> tuple[int, int]:
        async with embedded_client(".reconciler/provider.db") as client:
            planned = (await make_plan(Settings(), client=client)).requests
            before = client.stats.requests
            await gitops.drift(Settings(), client=client)
            return planned, client.stats.requests - before

    planned, drifted = asyncio.run(requests())
    assert drifted == planned == 7  # 6 kinds + the credentials of the one managed vault

    coder = remote_id("agent.coder")

    async def edit_prompt(c: ProviderClient) -> None:
        await c.agents.update(coder, {"system": "changed"})

    out_of_band(edit_prompt)
    planned, drifted = asyncio.run(requests())
    assert drifted == planned + 1


def test_drift_without_a_lockfile_sees_everything_as_unmanaged_or_adoptable(
    applied: Path,
) -> None:
    """A lost lockfile: resources tagged for addresses in the manifests are adoptable by the
    next plan (not drift); nothing is reported twice."""
    Path("state/reconciler.lock").unlink()
    assert ok("drift").stdout.startswith("No drift")


def test_drift_errors_exit_1(applied: Path) -> None:
    Path("state/reconciler.lock").write_text("{not json")
    result = cli("drift")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")


def drift_sees_an_out_of_band_edit() -> None:
    """Edit the environment's description behind git's back: drift reports just that."""
    env = remote_id("environment.python-data")

    async def widen(c: ProviderClient) -> None:
        await c.environments.update(env, {"description": "anything goes"})

    out_of_band(widen)
    [item] = items(drift_json())
    assert (item["type"], item["address"]) == ("changed", "environment.python-data")
    assert [c["path"] for c in item["changes"]] == ["description"]


def test_a_reordered_manifest_list_is_no_change_and_hides_no_drift(applied: Path) -> None:
    # the order of packages, allowed hosts and vaults means nothing to the provider: plan
    # says "No changes" and --detailed-exitcode agrees, so CI never applies it; drift
    # must then still see an edit made behind git's back
    edit(
        Path("manifests/environments.yaml"),
        "        - pandas==2.2.3\n        - numpy\n",
        "        - numpy\n        - pandas==2.2.3\n",
    )
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert plan.stdout.startswith("No changes"), plan.stdout
    drift_sees_an_out_of_band_edit()


def test_an_edit_of_an_ignored_field_is_no_change_and_hides_no_drift(applied: Path) -> None:
    envs = Path("manifests/environments.yaml")
    edit(envs, "name: python-data\n", "name: python-data\nignore_changes: [metadata.owner]\n")
    ok("apply", "--auto-approve")
    edit(envs, "owner: data-team", "owner: analytics")  # ignore_changes: not diffed
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    drift_sees_an_out_of_band_edit()


def test_an_agent_repinned_to_a_skill_version_uploaded_out_of_band_is_not_said_to_match(
    applied: Path, tmp_path: Path
) -> None:
    # someone uploads a new version of the skill by hand and points the agent at it: the
    # agent now runs files that are not the manifest's; drift must name the agent's pin move
    # (not "saved outside git but matches the manifest"), and apply restores both
    skill, reviewer = remote_id("skill.review-checklist"), remote_id("agent.reviewer")
    recorded = lockfile()["resources"]["agent.reviewer"]["skills"]["skill.review-checklist"]
    source = tmp_path / "upload" / "review-checklist"
    shutil.copytree(Path("manifests/skills/review-checklist"), source)
    with (source / "SKILL.md").open("a") as f:
        f.write("\nSkip the tests.\n")

    async def upload_and_pin(c: ProviderClient) -> str:
        version = await c.skills.versions.create(skill, source)
        agent = await c.agents.retrieve(reviewer)
        pin = {"type": "custom", "skill_id": skill, "version": version["id"]}
        await c.agents.update(reviewer, {"skills": [pin], "version": agent["version"]})
        return str(version["id"])

    uploaded = out_of_band(upload_and_pin)
    report = drift_json()
    by_address = {i["address"]: i for i in items(report)}
    agent = by_address["agent.reviewer"]
    assert agent["type"] == "changed" and "matches the manifest" not in agent["message"]
    assert [(c["path"], c["old"], c["new"]) for c in agent["changes"]] == [
        (f"skills[{skill}].version", recorded, uploaded)
    ]
    assert by_address["skill.review-checklist"]["type"] == "changed"
    ok("apply", "--auto-approve")
    assert ok("drift").stdout.startswith("No drift")


CODER_TOOLS = (
    "    - type: agent_toolset_20260401\n"
    "      default_config:\n"
    "        enabled: true\n"
    "        permission_policy: {type: always_allow}\n"
    "      configs:\n"
    "        - name: bash\n"
    "          permission_policy: {type: always_ask}\n"
    "        - name: web_search\n"
    "          enabled: false\n"
)
CODER_MCP_TOOL = (
    "    - type: mcp_toolset\n"
    "      mcp_server_name: github\n"
    "      default_config:\n"
    "        permission_policy: {type: always_ask}\n"
)


def _swap_coder_tools() -> None:
    edit(Path("manifests/agents.yaml"), CODER_TOOLS + CODER_MCP_TOOL, CODER_MCP_TOOL + CODER_TOOLS)


def test_reordered_agent_tools_are_no_change_and_hide_no_drift(applied: Path) -> None:
    """The coder's two tools swapped in the manifest: plan showed ten per-index changes,
    among them ``~ tools[0].default_config.permission_policy.type: "always_allow" ->
    "always_ask"``, as if a policy had loosened or tightened. The provider's tools are the
    toolsets an agent has, told apart by type and server (or name): their order means
    nothing. No change, and drift keeps seeing edits made behind git's back."""
    _swap_coder_tools()
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert plan.stdout.startswith("No changes"), plan.stdout
    drift_sees_an_out_of_band_edit()


def test_a_change_of_a_reordered_tool_is_shown_at_the_manifests_index(applied: Path) -> None:
    _swap_coder_tools()
    edit(
        Path("manifests/agents.yaml"),
        "{type: always_ask}\n    - type: agent",
        "{type: auto}\n    - type: agent",
    )
    [action] = [
        a
        for a in json.loads(ok("plan", "--format", "json").stdout)["actions"]
        if a["type"] != "noop"
    ]
    assert [(c["path"], c["old"], c["new"]) for c in action["changes"]] == [
        ("tools[0].default_config.permission_policy.type", "always_ask", "auto")
    ]
    ok("apply", "--auto-approve")
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_tools_reordered_on_the_provider_are_a_version_that_matches_the_manifest(
    applied: Path,
) -> None:
    coder = remote_id("agent.coder")

    async def swap(c: ProviderClient) -> None:
        agent = await c.agents.retrieve(coder)
        tools = list(reversed(agent["tools"]))
        await c.agents.update(coder, {"tools": tools, "version": agent["version"]})

    out_of_band(swap)
    [item] = items(drift_json())
    assert item["changes"] == [] and "matches the manifest" in item["message"], item


def test_reordered_deployment_resources_are_no_change(applied: Path) -> None:
    """Two memory stores mounted by the deployment, swapped in the manifest: plan showed
    both mounts changed at their index. A deployment's resources are mounts, told apart by
    what they mount: their order means nothing."""
    stores = Path("manifests/memory_stores.yaml")
    stores.write_text(
        stores.read_text() + "---\nkind: MemoryStore\nname: style\nspec:\n  description: Style.\n"
    )
    first = "    - memory_store: review-notes  # a MemoryStore manifest, mounted under /mnt/memory/\n      access: read_only\n"
    second = "    - memory_store: style\n      access: read_write\n"
    deployments = Path("manifests/deployments.yaml")
    edit(deployments, first, first + second)
    ok("apply", "--auto-approve")
    edit(deployments, first + second, second + first)
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert plan.stdout.startswith("No changes"), plan.stdout


def test_a_digest_recorded_before_tools_were_sorted_still_matches(applied: Path) -> None:
    """The lockfile's digest of the coder with its tools swapped, as reconcilers before
    this one recorded it: still the manifest's, so an upgrade plans no lockfile write and
    drift keeps comparing."""
    from reconciler.engine.desired import desired_resources, digest_matches
    from reconciler.manifest import load_manifests

    _swap_coder_tools()
    recorded = "sha256:3ee8d7e190fc658afce085155f81813c715b8906768e6d505f0f97aac735af69"
    documents = load_manifests(Path("manifests")).documents
    [coder] = [r for r in desired_resources(documents) if r.address == "agent.coder"]
    assert digest_matches(coder, recorded)


def test_per_tool_configs_reordered_on_the_provider_say_what_changed_and_what_apply_does(
    applied: Path,
) -> None:
    """Someone reorders the coder's per-tool configs in the console; the provider saves
    version 2. Drift said "version 2 was saved outside git but matches the manifest",
    with no change listed and no word of what differs, and plan called the agent "up to
    date" while it wanted to write the lockfile. The version is still reported (the lockfile
    records the version sessions and deployments run, and someone did save one), but both
    say what it is: only a reorder that means nothing, which apply records, sending nothing."""
    coder = remote_id("agent.coder")

    async def reorder(c: ProviderClient) -> None:
        agent = await c.agents.retrieve(coder)
        tools = agent["tools"]
        tools[0]["configs"] = list(reversed(tools[0]["configs"]))
        await c.agents.update(coder, {"tools": tools, "version": agent["version"]})

    out_of_band(reorder)
    [item] = items(drift_json())
    assert item["changes"] == [] and item["version"] == 2, item
    message = item["message"]
    assert "differs from version 1 (the last apply's) only in the order of tools" in message
    assert "sends nothing" in message, message
    plan = json.loads(cli("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "agent.coder"]
    assert action["type"] == "noop" and plan["has_lockfile_changes"], action
    assert action["reason"].startswith("version 2 was saved outside the reconciler"), action
    ok("apply", "--auto-approve")
    assert ok("drift").stdout.startswith("No drift")


def _edit_and_revert_the_reviewer_by_hand() -> None:
    """Version 2 of agent.reviewer changes its prompt, version 3 puts it back."""
    reviewer = remote_id("agent.reviewer")

    async def edit_and_revert(c: ProviderClient) -> None:
        agent = await c.agents.retrieve(reviewer)
        await c.agents.update(reviewer, {"system": "Ship it."})
        await c.agents.update(reviewer, {"system": agent["system"]})

    out_of_band(edit_and_revert)


def test_an_agent_edited_and_reverted_by_hand_is_not_said_saved_unchanged(applied: Path) -> None:
    """Version 2 changed the prompt, version 3 put it back: the latest matches version 1,
    but the versions were not "saved unchanged"."""
    _edit_and_revert_the_reviewer_by_hand()
    [item] = items(drift_json())
    assert "versions 2-3" in item["message"], item
    assert "differs from version 1 (the last apply's) in nothing" in item["message"], item
    assert "saved unchanged" not in item["message"], item


def test_a_reordered_resource_with_a_secret_is_no_change(applied: Path) -> None:
    """A deployment's repository mount with its token and its memory store, swapped: plan
    said "the manifest's secrets resources[1].authorization_token, resources[0]
    .authorization_token changed since the last apply", though no secret changed: the
    lockfile recorded the token at the index the mount had then. It is no change."""
    deployments = Path("manifests/deployments.yaml")
    store = (
        "    - memory_store: review-notes  # a MemoryStore manifest, mounted under /mnt/memory/\n"
        "      access: read_only\n"
    )
    repo = (
        "    - type: github_repository\n"
        "      url: https://github.com/example/repo\n"
        "      authorization_token: {from_file: secrets/github-token.txt}\n"
    )
    edit(deployments, store, repo + store)
    ok("apply", "--auto-approve")
    edit(deployments, repo + store, store + repo)
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    # a mount added first moves the token's item to index 2: still no secret change
    stores = Path("manifests/memory_stores.yaml")
    stores.write_text(stores.read_text() + "---\nkind: MemoryStore\nname: style\nspec: {}\n")
    edit(deployments, store + repo, "    - memory_store: style\n" + store + repo)
    actions = json.loads(ok("plan", "--format", "json").stdout)["actions"]
    [deployment] = [a for a in actions if a["address"] == "deployment.nightly-review"]
    assert [(c["op"], c["path"]) for c in deployment["changes"]] == [("add", "resources[0]")]
    ok("apply", "--auto-approve")
    (Path("manifests/secrets/github-token.txt")).write_text("rotated\n")
    changed = ok("plan").stdout
    assert "the manifest's secret resources[2].authorization_token changed" in changed, changed


def test_a_matching_version_saved_by_hand_names_the_deployments_apply_moves_to_it(
    applied: Path,
) -> None:
    """The reviewer edited and changed back by hand: the matching version 3 is the latest,
    and the deployment that follows the latest moves to it at the next apply. Drift said
    apply "sends nothing" (the pin move is sent); it names the deployment apply moves."""
    _edit_and_revert_the_reviewer_by_hand()
    [item] = items(drift_json())
    message = item["message"]
    assert "sends nothing" not in message, message
    assert "moves deployment.nightly-review (which follows the latest) to it" in message, message
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "agent.reviewer"]
    assert "sending nothing" not in action["reason"], action


def test_a_mount_added_before_another_is_one_addition(applied: Path) -> None:
    """A new memory store mounted first, before the review notes: plan read
    ``~ resources[0].access: "read_only" -> "read_write"`` and ``~ resources[0]
    .memory_store_id``, as if the review notes' mount turned read-write, then ``+
    resources[1]``: the review notes again. It is one mount added at the manifest's index."""
    stores = Path("manifests/memory_stores.yaml")
    stores.write_text(
        stores.read_text() + "---\nkind: MemoryStore\nname: style\nspec:\n  description: Style.\n"
    )
    edit(
        Path("manifests/deployments.yaml"),
        "  resources:\n",
        "  resources:\n    - memory_store: style\n      access: read_write\n",
    )
    actions = json.loads(ok("plan", "--format", "json").stdout)["actions"]
    [deployment] = [a for a in actions if a["address"] == "deployment.nightly-review"]
    assert [(c["op"], c["path"]) for c in deployment["changes"]] == [("add", "resources[0]")]
    ok("apply", "--auto-approve")
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_bad_merge_entry_does_not_make_the_rightful_object_a_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lockfile merged by hand records agent.reviewer with agent.coder's id. Drift said
    the real agent.reviewer (tagged for it) was a twin of the recorded one and that
    `reconciler apply --prune` archives it: the object to keep. It is no twin: drift
    reports the wrong entry (not ours, `state rm` mends it), and plan agrees."""
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    reviewer = remote_id("agent.reviewer")
    data = lockfile()
    data["resources"]["agent.reviewer"] = dict(data["resources"]["agent.coder"])
    Path("state/reconciler.lock").write_text(json.dumps(data, indent=2, sort_keys=True))
    report = drift_json()
    assert not items(report, "twin"), items(report, "twin")
    assert not [i for i in items(report) if i.get("remote_id") == reviewer]
    [wrong] = items(report, "changed")
    assert wrong["address"] == "agent.reviewer" and "state rm agent.reviewer" in wrong["message"]
    plan = json.loads(ok("plan", "--prune", "--format", "json").stdout)
    assert not plan["twins"] and not [a for a in plan["actions"] if a["type"] == "archive"]
    ok("state", "rm", "agent.reviewer")
    ok("apply", "--auto-approve")
    assert remote_id("agent.reviewer") == reviewer
    assert drift_json(code=0)["items"] == []
