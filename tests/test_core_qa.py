"""Agents, environments, vaults and deployments as a demanding new user drives them through
the CLI (embedded provider): each test is a case that was wrong once (found by the core QA
pass of session 8) and stays fixed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support.gitops import DB, cli, make_workdir, ok, plan_is_clean, remote_id

from reconciler.provider import embedded_client


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = make_workdir(tmp_path, monkeypatch, manifests=False)
    (work / "manifests").mkdir()
    return work


def write(text: str) -> None:
    Path("manifests/all.yaml").write_text(text)


def live(address: str) -> dict[str, Any]:
    """The live object of ``address`` as the provider serves it."""
    kind, _, _ = address.partition(".")
    rid = remote_id(address)

    async def get() -> dict[str, Any]:
        async with embedded_client(DB) as client:
            resources = {"agent": client.agents, "environment": client.environments}
            obj: dict[str, Any] = await resources[kind].retrieve(rid)
            return obj

    return asyncio.run(get())


# --- ignore_changes: an update of another path never writes the ignored one ---------------------


def test_an_update_keeps_the_live_value_of_an_ignored_metadata_key(workdir: Path) -> None:
    # the plan said 'metadata.owner ... ignore_changes leaves as is' and showed only the
    # team change, but the metadata patch sent the manifest's owner too
    agent = "kind: Agent\nname: coder\nignore_changes: [metadata.owner]\nspec:\n"
    write(agent + "  model: claude-sonnet-4-6\n  metadata: {owner: me, team: a}\n")
    ok("apply", "--auto-approve")
    write(agent + "  model: claude-sonnet-4-6\n  metadata: {owner: you, team: b}\n")
    shown = ok("plan").stdout
    assert '~ metadata.team: "a" -> "b"' in shown, shown
    assert "metadata.owner" not in shown.split("Left alone:")[0], shown
    ok("apply", "--auto-approve")
    assert live("agent.coder")["metadata"]["owner"] == "me"
    assert live("agent.coder")["metadata"]["team"] == "b"
    plan_is_clean()


def test_an_ignored_metadata_key_removed_from_the_manifest_is_not_deleted(workdir: Path) -> None:
    agent = "kind: Agent\nname: coder\nignore_changes: [metadata.owner]\nspec:\n"
    write(agent + "  model: claude-sonnet-4-6\n  metadata: {owner: me, team: a}\n")
    ok("apply", "--auto-approve")
    write(agent + "  model: claude-sonnet-4-6\n  metadata: {team: b}\n")
    ok("apply", "--auto-approve")
    assert live("agent.coder")["metadata"]["owner"] == "me"
    plan_is_clean()


def test_an_update_of_the_networking_keeps_ignored_packages(workdir: Path) -> None:
    # ignore_changes: [config.packages]; a networking change sent the whole config, so the
    # manifest's packages replaced the live ones the plan said it left alone
    env = "kind: Environment\nname: py\nignore_changes: [config.packages]\nspec:\n  config:\n"
    write(env + "    type: cloud\n    packages: {pip: [numpy]}\n")
    ok("apply", "--auto-approve")
    write(
        env + "    type: cloud\n    packages: {pip: [pandas]}\n"
        "    networking: {type: limited, allow_package_managers: true}\n"
    )
    shown = ok("plan").stdout
    assert "config.networking.type" in shown, shown
    ok("apply", "--auto-approve")
    config = live("environment.py")["config"]
    assert config["packages"]["pip"] == ["numpy"], config
    assert config["networking"]["type"] == "limited", config
    plan_is_clean()


# --- replaces say what apply does -----------------------------------------------------------------


def test_a_credential_replace_says_the_old_one_is_deleted_as_apply_does(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the headline said '(delete, then create)' and the reason 'the old one is archived'
    monkeypatch.setenv("QA_TOKEN", "t-1")
    vault = (
        "kind: Vault\nname: gh\nspec:\n  credentials:\n    - name: c\n      auth: "
        "{{type: static_bearer, mcp_server_url: '{url}', token: {{from_env: QA_TOKEN}}}}\n"
    )
    write(vault.format(url="https://a.example.com/mcp"))
    ok("apply", "--auto-approve")
    write(vault.format(url="https://b.example.com/mcp"))
    shown = ok("plan").stdout
    assert "vault.gh.credential.c  replace  (delete, then create)" in shown, shown
    assert "the old one is deleted, then a new one is created" in shown, shown
    assert "archived" not in shown, shown


# --- a vault renamed with moved_from takes its undeclared credentials along -----------------------

VAULT = """\
kind: Vault
name: {name}
{moved}spec:
  credentials:
{credentials}"""
CREDENTIAL = (
    "    - {{name: {name}, auth: {{type: static_bearer, "
    "mcp_server_url: 'https://{name}.example.com/mcp', token: {{from_env: QA_TOKEN}}}}}}\n"
)


def test_a_moved_vault_takes_a_credential_the_manifests_left_alone(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the left-alone credential's entry stayed at vault.gh.credential.c2 while its vault was
    # tagged vault.github: every later plan called it 'not ours' and every apply exited 1
    monkeypatch.setenv("QA_TOKEN", "t-1")
    both = CREDENTIAL.format(name="c1") + CREDENTIAL.format(name="c2")
    write(VAULT.format(name="gh", moved="", credentials=both))
    ok("apply", "--auto-approve")
    write(VAULT.format(name="gh", moved="", credentials=CREDENTIAL.format(name="c1")))
    ok("apply", "--auto-approve")  # c2 is left alone (no --prune)
    c2 = remote_id("vault.gh.credential.c2")
    moved = VAULT.format(
        name="github", moved="moved_from: gh\n", credentials=CREDENTIAL.format(name="c1")
    )
    write(moved)
    ok("apply", "--auto-approve")
    assert remote_id("vault.github.credential.c2") == c2
    shown = ok("plan", "--detailed-exitcode").stdout
    assert "Not ours" not in shown, shown
    assert shown.count(c2) == 1, shown  # one orphan, under the vault's new address
    assert "vault.github.credential.c2 (" in shown, shown
    ok("apply", "--auto-approve")
    pruned = ok("apply", "--prune", "--auto-approve").stdout
    assert "Apply complete: 0 created, 0 updated, 1 archived." in pruned, pruned
    plan_is_clean()


def test_a_vault_moved_by_state_mv_lists_its_left_alone_credential_once(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its entry (new address) and its tags (old address) made two 'Left alone' lines and
    # two archives of one credential with --prune
    monkeypatch.setenv("QA_TOKEN", "t-1")
    both = CREDENTIAL.format(name="c1") + CREDENTIAL.format(name="c2")
    write(VAULT.format(name="gh", moved="", credentials=both))
    ok("apply", "--auto-approve")
    ok("state", "mv", "vault.gh", "vault.github")
    write(VAULT.format(name="github", moved="", credentials=CREDENTIAL.format(name="c1")))
    ok("apply", "--auto-approve")
    c2 = remote_id("vault.github.credential.c2")
    shown = ok("plan").stdout
    assert "1 resource is left alone" in shown, shown
    assert shown.count(c2) == 1, shown
    pruned = ok("plan", "--prune").stdout
    assert "Plan: 0 to create, 0 to update, 1 to archive." in pruned, pruned


# --- ignore_changes on a deployment's references ---------------------------------------------------

DEPLOYMENT = """\
kind: Agent
name: coder
spec: {{model: claude-sonnet-4-6}}
---
kind: Environment
name: e1
spec: {{}}
---
kind: Environment
name: e2
spec: {{}}
---
kind: Vault
name: v1
spec: {{}}
---
kind: Vault
name: v2
spec: {{}}
---
kind: Deployment
name: nightly
ignore_changes: [environment, vaults]
spec:
  agent: {{ref: coder}}
  environment: {env}
  vaults: [{vault}]
  description: {description}
  initial_events: [{{type: user.message, content: [{{type: text, text: hi}}]}}]
"""


def test_ignore_changes_on_a_deployments_environment_and_vaults_is_honoured(
    workdir: Path,
) -> None:
    # validate accepted 'ignore_changes: [environment, vaults]' and the plan still
    # re-pointed the deployment: the diff compares environment_id and vault_ids
    write(DEPLOYMENT.format(env="e1", vault="v1", description="one"))
    ok("apply", "--auto-approve")
    env, vault = remote_id("environment.e1"), remote_id("vault.v1")
    write(DEPLOYMENT.format(env="e2", vault="v2", description="two"))
    shown = ok("plan").stdout
    assert '~ description: "one" -> "two"' in shown, shown
    assert "environment_id:" not in shown.split("Left alone:")[0], shown
    assert "vault_ids" not in shown.split("Left alone:")[0], shown
    ok("apply", "--auto-approve")
    deployment = live_deployment()
    assert deployment["environment_id"] == env, deployment
    assert deployment["vault_ids"] == [vault], deployment
    shown = plan_is_clean().stdout
    # the vault list compared as the diff compares it (a set), not item by item
    assert "differs from the manifest in environment, vaults, which ignore_changes" in shown, shown


def live_deployment() -> dict[str, Any]:
    rid = remote_id("deployment.nightly")

    async def get() -> dict[str, Any]:
        async with embedded_client(DB) as client:
            obj: dict[str, Any] = await client.deployments.retrieve(rid)
            return obj

    return asyncio.run(get())


def test_a_move_retags_an_agent_whose_manifest_ignores_its_metadata(workdir: Path) -> None:
    # 'ignore_changes: [metadata]' hid the ownership tag too: the move renamed the agent but
    # left it tagged agent.coder, and every plan after said the tag differed and was left
    agent = "kind: Agent\nname: {name}\n{moved}ignore_changes: [metadata]\nspec:\n"
    spec = "  model: claude-sonnet-4-6\n  metadata: {owner: me}\n"
    write(agent.format(name="coder", moved="") + spec)
    ok("apply", "--auto-approve")
    write(
        agent.format(name="engineer", moved="moved_from: coder\n")
        + spec.replace("owner: me", "owner: you")
    )
    shown = ok("plan").stdout
    assert '~ metadata.reconciler-address: "agent.coder" -> "agent.engineer"' in shown, shown
    assert "metadata.owner" not in shown.split("Left alone:")[0], shown
    ok("apply", "--auto-approve")
    metadata = live("agent.engineer")["metadata"]
    assert metadata["reconciler-address"] == "agent.engineer", metadata
    assert metadata["owner"] == "me", metadata
    shown = plan_is_clean().stdout
    assert "reconciler-address" not in shown, shown


def test_the_blast_radius_of_an_environment_does_not_say_follows_latest(workdir: Path) -> None:
    # 'deployment.nightly  follows latest: affected by this apply' under an environment or
    # a vault, which have no versions to follow
    write(DEPLOYMENT.format(env="e1", vault="v1", description="one"))
    ok("apply", "--auto-approve")
    text = Path("manifests/all.yaml").read_text()
    write(text.replace("name: e1\nspec: {}", "name: e1\nspec: {description: d}"))
    shown = ok("plan").stdout
    assert (
        "Blast radius:\n"
        "  environment.e1 (update) is used by 1 deployment:\n"
        "    deployment.nightly  uses it: affected by this apply\n"
    ) in shown, shown
    markdown = ok("plan", "--format", "markdown").stdout
    assert "`deployment.nightly`: **uses it: affected by this apply**" in markdown, markdown


def test_an_id_known_only_after_apply_is_not_shown_as_a_string(workdir: Path) -> None:
    # '~ environment_id: "env_01..." -> "(known after apply)"' read as if the deployment
    # would be given that literal string
    write(DEPLOYMENT.format(env="e1", vault="v1", description="one"))
    ok("apply", "--auto-approve")
    text = (
        Path("manifests/all.yaml")
        .read_text()
        .replace("ignore_changes: [environment, vaults]\n", "")
    )
    write(text.replace("name: e1\nspec: {}", "name: e1\nspec: {config: {type: self_hosted}}"))
    shown = ok("plan").stdout
    env = remote_id("environment.e1")
    assert f'~ environment_id: "{env}" -> (known after apply)\n' in shown, shown


def test_a_finished_rename_is_not_counted_as_a_resource_left_alone(workdir: Path) -> None:
    # after every rename the next plan said 'No changes. Apply would change nothing, but 1
    # resource is left alone', though the object is exactly where the manifest puts it
    write("kind: Agent\nname: coder\nspec: {model: claude-sonnet-4-6}\n")
    ok("apply", "--auto-approve")
    write("kind: Agent\nname: engineer\nmoved_from: coder\nspec: {model: claude-sonnet-4-6}\n")
    ok("apply", "--auto-approve")
    shown = plan_is_clean().stdout
    assert shown.startswith("No changes. The live system matches the manifests.\n"), shown
    assert "moved_from names agent.coder, which is not in the state" in shown, shown


def test_two_notes_on_one_resource_count_it_once(workdir: Path) -> None:
    agent = "kind: Agent\nname: {name}\n{moved}ignore_changes: [description]\nspec:\n"
    spec = "  model: claude-sonnet-4-6\n  description: {description}\n"
    write(agent.format(name="coder", moved="") + spec.format(description="one"))
    ok("apply", "--auto-approve")
    write(
        agent.format(name="engineer", moved="moved_from: coder\n") + spec.format(description="one")
    )
    ok("apply", "--auto-approve")
    write(
        agent.format(name="engineer", moved="moved_from: coder\n") + spec.format(description="two")
    )
    shown = plan_is_clean().stdout
    assert "but 1 resource is left alone, as shown below" in shown, shown


def test_the_left_alone_count_and_the_list_below_it_agree(workdir: Path) -> None:
    # "1 resource is left alone, as shown below" stood over two entries: the orphan and the
    # note of a rename done already (which the count rightly leaves out: nothing is left
    # alone there, only the moved_from line can go)
    agent = "kind: Agent\nname: {name}\n{moved}spec: {{model: claude-sonnet-4-6}}\n"
    write(agent.format(name="coder", moved="") + "---\n" + agent.format(name="old", moved=""))
    ok("apply", "--auto-approve")
    write(agent.format(name="engineer", moved="moved_from: coder\n"))
    ok("apply", "--auto-approve")  # the rename; agent.old is left alone (no --prune)
    shown = plan_is_clean().stdout
    assert "but 1 resource is left alone, as shown below" in shown, shown
    alone = shown.split("Left alone:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split(":")[0].split()[0] for line in alone] == ["agent.old"], shown
    notes = shown.split("Notes:\n", 1)[1].splitlines()
    assert notes[0].startswith("  agent.engineer: moved_from names agent.coder"), shown
    markdown = ok("plan", "--format", "markdown").stdout
    left = markdown.split("#### Left alone", 1)[1].split("####", 1)[0]
    assert "agent.old" in left and "agent.engineer" not in left, markdown
    assert "moved_from names agent.coder" in markdown.split("#### Notes", 1)[1], markdown


def test_an_agent_manifest_named_in_a_multiagent_roster_is_an_error_at_validate(
    workdir: Path,
) -> None:
    # validate and plan accepted 'agents: [worker]'; apply sent 'worker' as an agent id and
    # failed with the provider's 404 after creating the other agents
    write(
        "kind: Agent\nname: worker\nspec: {model: claude-haiku-4-5}\n---\n"
        "kind: Agent\nname: boss\nspec:\n  model: claude-opus-4-6\n"
        "  multiagent: {type: coordinator, agents: [worker, {type: self}]}\n"
    )
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert (
            "manifests/all.yaml:9:44: spec.multiagent.agents[0]: 'worker' names an Agent "
            "manifest, but multiagent entries are provider agent ids (agent_...)"
        ) in result.stderr, result.stderr


# --- multiagent: the second plan after an apply is "No changes" -----------------------------------

WORKER = "kind: Agent\nname: worker\nspec: {model: claude-haiku-4-5}\n"
BOSS = "---\nkind: Agent\nname: boss\nspec:\n  model: claude-opus-4-6\n  multiagent: {multiagent}\n"


def test_a_coordinator_roster_given_by_agent_id_plans_no_change_after_apply(
    workdir: Path,
) -> None:
    # the provider answers an id string as {type: agent, id, version}: every plan after the
    # apply showed '~ multiagent.agents[0]' and a new version
    write(WORKER)
    ok("apply", "--auto-approve")
    worker = remote_id("agent.worker")
    write(
        WORKER
        + BOSS.format(multiagent=f"{{type: coordinator, agents: [{worker}, {{type: self}}]}}")
    )
    ok("apply", "--auto-approve")
    plan_is_clean()


def test_a_partial_multiagent_config_plans_no_change_after_apply_and_reverts_when_removed(
    workdir: Path,
) -> None:
    # the members the manifest left out came back with the provider's defaults and showed
    # as removals on every plan; and a member removed from the manifest kept its live value
    # (the update merges), so the plan to revert it never converged
    write(WORKER)
    ok("apply", "--auto-approve")
    worker = remote_id("agent.worker")
    subagents = f"subagents: {{type: enabled, predefined_agents: [{worker}]}}"
    write(WORKER + BOSS.format(multiagent=f"{{type: multiagent_20261001, {subagents}}}"))
    ok("apply", "--auto-approve")
    plan_is_clean()
    disabled = f"{{type: multiagent_20261001, {subagents}, workflows: {{type: disabled}}}}"
    write(WORKER + BOSS.format(multiagent=disabled))
    ok("apply", "--auto-approve")
    plan_is_clean()
    write(WORKER + BOSS.format(multiagent=f"{{type: multiagent_20261001, {subagents}}}"))
    shown = ok("plan").stdout
    assert '~ multiagent.workflows.type: "disabled" -> "enabled"' in shown, shown
    ok("apply", "--auto-approve")
    assert live("agent.boss")["multiagent"]["workflows"]["type"] == "enabled"
    plan_is_clean()
