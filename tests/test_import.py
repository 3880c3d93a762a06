"""`reconciler import`: adopt live resources, so that afterwards plan is clean and apply a no-op.

``import ADDR ID`` adopts one object for a manifest address; ``import --all-unmanaged --out
DIR`` writes the manifests of everything nobody manages (the team that clicked its agents
together gets its repository in one command). Live objects are made by a second client.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
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
from support.reliability import provider

from reconciler.manifest import load_manifests
from reconciler.provider import ProviderClient

UNTAG = {"managed-by": None, "reconciler-project": None, "reconciler-address": None}


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workdir = make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return workdir


def forget(*addresses: str) -> dict[str, str]:
    """Lose track of resources: drop them from the lockfile and strip their tags."""
    entries = lockfile()["resources"]
    ids = {a: entries[a]["id"] for a in addresses}
    parents = {a: entries[a]["parent_id"] for a in addresses}
    for address in addresses:
        if address in lockfile()["resources"]:  # a vault's state rm takes its credentials
            ok("state", "rm", address)

    async def untag(c: ProviderClient) -> None:
        for address, rid in ids.items():
            if address.startswith("agent."):
                await c.agents.update(rid, {"metadata": UNTAG})
            elif address.startswith("environment."):
                await c.environments.update(rid, {"metadata": UNTAG})
            elif ".credential." in address:
                await c.credentials.update(parents[address], rid, {"metadata": UNTAG})
            elif address.startswith("vault."):
                await c.vaults.update(rid, {"metadata": UNTAG})

    out_of_band(untag)
    return ids


# --- import ADDR ID ---------------------------------------------------------------------------


def test_import_adopts_an_agent_then_plan_is_clean_and_apply_a_no_op(applied: Path) -> None:
    coder = forget("agent.coder")["agent.coder"]
    assert cli("plan", "--detailed-exitcode").exit_code == 2  # would create a twin
    [unmanaged] = items(drift_json(), "unmanaged")
    assert unmanaged["remote_id"] == coder

    result = ok("import", "agent.coder", coder)
    assert f"Imported agent.coder ({coder}): tagged with the ownership metadata, now version 3" in (
        result.stdout
    )
    entry = lockfile()["resources"]["agent.coder"]
    assert (entry["id"], entry["kind"], entry["version"]) == (coder, "agent", 3)
    assert result.stderr == ""  # in the manifests: no warning

    plan_is_clean()
    serial = lockfile()["serial"]
    assert "No changes." in ok("apply", "--auto-approve").stdout
    assert lockfile()["serial"] == serial  # apply had nothing to record
    assert ok("drift").stdout.startswith("No drift")


def test_import_of_an_object_that_differs_from_its_manifest(applied: Path) -> None:
    """The difference is a change for plan to show, not drift: git never applied it."""
    coder = forget("agent.coder")["agent.coder"]

    async def edit_prompt(c: ProviderClient) -> None:
        await c.agents.update(coder, {"system": "Made by hand."})

    out_of_band(edit_prompt)
    result = ok("import", "agent.coder", coder)
    assert "agent.coder differs from its manifest" in result.stderr
    assert ok("drift").stdout.startswith("No drift")
    data = json.loads(ok("plan", "--format", "json").stdout)
    [update] = [a for a in data["actions"] if a["type"] != "noop"]
    assert update["address"] == "agent.coder"
    assert [c["path"] for c in update["changes"]] == ["system"]
    ok("apply", "--auto-approve")
    plan_is_clean()
    assert ok("drift").stdout.startswith("No drift")


def test_import_of_a_vault_adopts_the_credentials_its_manifest_declares(applied: Path) -> None:
    ids = forget("vault.github", "vault.github.credential.github-mcp")
    result = ok("import", "vault.github", ids["vault.github"])
    assert "Imported vault.github" in result.stdout
    assert "Imported vault.github.credential.github-mcp" in result.stdout
    assert "secrets cannot be read back" in result.stderr
    entry = lockfile()["resources"]["vault.github.credential.github-mcp"]
    assert entry["id"] == ids["vault.github.credential.github-mcp"]
    assert entry["parent_id"] == ids["vault.github"]

    # The secret cannot be read back: the plan's only change is writing it once.
    data = json.loads(ok("plan", "--format", "json").stdout)
    changed = [a for a in data["actions"] if a["type"] != "noop"]
    assert [a["address"] for a in changed] == ["vault.github.credential.github-mcp"]
    assert [c["path"] for c in changed[0]["changes"]] == ["auth.token"]
    assert all(c["sensitive"] for c in changed[0]["changes"])
    ok("apply", "--auto-approve")
    plan_is_clean()
    assert ok("drift").stdout.startswith("No drift")


def test_import_of_a_credential_needs_its_vault_in_the_lockfile(applied: Path) -> None:
    ids = forget("vault.github", "vault.github.credential.github-mcp")
    result = cli(
        "import",
        "vault.github.credential.github-mcp",
        ids["vault.github.credential.github-mcp"],
    )
    assert result.exit_code == 1
    assert "import the vault first" in result.stderr


def test_import_of_a_credential_by_address(applied: Path) -> None:
    cred = forget("vault.github.credential.github-mcp")["vault.github.credential.github-mcp"]
    ok("import", "vault.github.credential.github-mcp", cred)
    assert lockfile()["resources"]["vault.github.credential.github-mcp"]["id"] == cred


def test_import_of_an_address_not_in_the_manifests_writes_its_document(applied: Path) -> None:
    """DESIGN: import adopts "and writes their manifests". Without a document the object
    would be left alone by every plan, and archived by the first ``plan --prune``."""
    prompt = "You help.\nBe brief.\nCite sources.\nCost: ${budget}"

    async def create(c: ProviderClient) -> str:
        body = {"name": "helper", "model": "claude-haiku-4-5", "system": prompt}
        return str((await c.agents.create(body))["id"])

    helper = out_of_band(create)
    result = ok("import", "agent.helper", helper)
    assert result.stdout.startswith(
        "Wrote manifests/agents/prompts/helper.md (its system prompt).\n"
        "Wrote manifests/agents/helper.yaml (the document of agent.helper).\n"
        f"Imported agent.helper ({helper}): tagged with the ownership metadata, now version 2.\n"
    ), result.stdout
    assert "not in the manifests" not in result.stderr
    assert Path("manifests/agents/prompts/helper.md").read_text() == prompt  # as live
    text = Path("manifests/agents/helper.yaml").read_text()
    assert text.startswith(f"# Imported by `reconciler import agent.helper {helper}`")
    assert "name: helper\n" in text and "system: {from_file: prompts/helper.md}" in text
    assert lockfile()["resources"]["agent.helper"]["id"] == helper
    plan_is_clean()
    pruned = ok("plan", "--prune", "--detailed-exitcode")  # declared now: nothing to archive
    assert "No changes." in pruned.stdout
    assert ok("drift").stdout.startswith("No drift")


def test_import_of_a_vault_not_in_the_manifests_writes_it_with_its_credentials(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def create(c: ProviderClient) -> tuple[str, str]:
        vault = await c.vaults.create({"display_name": "Search keys"})
        auth = {
            "type": "static_bearer",
            "token": "live-secret",
            "mcp_server_url": "https://mcp.search.example/sse",
        }
        cred = await c.credentials.create(vault["id"], {"auth": auth})
        return str(vault["id"]), str(cred["id"])

    vault, cred = out_of_band(create)
    result = ok("import", "vault.search", vault)
    assert "Wrote manifests/vaults/search.yaml (the document of vault.search)." in result.stdout
    address = "vault.search.credential.mcp-search-example"
    assert f"Imported {address} ({cred})" in result.stdout
    assert "SEARCH_MCP_SEARCH_EXAMPLE_TOKEN" in result.stdout  # the variable to set
    assert "live-secret" not in result.stdout + result.stderr
    text = Path("manifests/vaults/search.yaml").read_text()
    assert "token: {from_env: SEARCH_MCP_SEARCH_EXAMPLE_TOKEN}" in text
    assert lockfile()["resources"][address]["id"] == cred
    monkeypatch.setenv("SEARCH_MCP_SEARCH_EXAMPLE_TOKEN", "live-secret")
    plan = ok("plan", "--format", "json").stdout
    changes = {a["address"]: a["type"] for a in json.loads(plan)["actions"] if a["type"] != "noop"}
    # the credential is adopted, not created beside the live one: only its secret is sent
    assert changes == {address: "update"}, changes


def test_import_of_a_deployment_not_in_the_manifests_refers_to_managed_names(
    applied: Path,
) -> None:
    reviewer, env = remote_id("agent.reviewer"), remote_id("environment.python-data")

    async def create(c: ProviderClient) -> str:
        body = {
            "name": "adhoc",
            "agent": {"type": "agent", "id": reviewer, "version": 1},
            "environment_id": env,
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
            ],
        }
        return str((await c.deployments.create(body))["id"])

    deployment = out_of_band(create)
    ok("import", "deployment.adhoc", deployment)
    text = Path("manifests/deployments/adhoc.yaml").read_text()
    assert "agent: {ref: reviewer, version: 1}\n  environment: python-data\n" in text, text
    assert lockfile()["resources"]["deployment.adhoc"]["pins"] == {"agent.reviewer": 1}
    plan_is_clean()


def test_import_never_writes_over_a_file(applied: Path) -> None:
    async def create(c: ProviderClient) -> str:
        return str((await c.agents.create({"name": "helper", "model": "claude-haiku-4-5"}))["id"])

    helper = out_of_band(create)
    Path("manifests/agents").mkdir()
    Path("manifests/agents/helper.yaml").write_text("# mine\n")
    before = Path("state/reconciler.lock").read_text()
    result = cli("import", "agent.helper", helper)
    assert result.exit_code == 1
    assert (
        "manifests/agents/helper.yaml already exists but does not declare agent.helper; "
        "nothing was imported" in result.stderr
    )
    assert Path("manifests/agents/helper.yaml").read_text() == "# mine\n"
    assert Path("state/reconciler.lock").read_text() == before
    untagged = out_of_band(lambda c: c.agents.retrieve(helper))
    assert "reconciler-address" not in (untagged.get("metadata") or {})


async def _console_deployment(c: ProviderClient) -> tuple[str, str, str]:
    """An agent, an environment and a deployment of them made in the console: their ids."""
    agent = await c.agents.create({"name": "helper", "model": "claude-haiku-4-5"})
    env = await c.environments.create({"name": "sandbox", "config": {"type": "cloud"}})
    deployment = await c.deployments.create(
        {
            "name": "nightly",
            "agent": {"type": "agent", "id": agent["id"], "version": 1},
            "environment_id": env["id"],
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
            ],
        }
    )
    return str(agent["id"]), str(env["id"]), str(deployment["id"])


def test_import_without_a_document_to_write_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifests path that is one file has no place for another document; a deployment
    of an agent nobody manages has no name to refer to it by: imported, with a warning."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    Path("manifests.yaml").write_text("")

    helper, _, deployment = out_of_band(_console_deployment)
    result = ok("-f", "manifests.yaml", "import", "agent.helper", helper)
    assert (
        "Warning: agent.helper is not in the manifests and its document was not written "
        "(manifests.yaml is a file, not a directory a document can be added to)" in result.stderr
    )
    assert lockfile()["resources"]["agent.helper"]["id"] == helper
    Path("manifests").mkdir()
    result = ok("import", "deployment.nightly", deployment)
    assert "deployment.nightly is not in the manifests and its document was not written" in (
        result.stderr
    )
    assert not list(Path("manifests").iterdir())
    assert lockfile()["resources"]["deployment.nightly"]["id"] == deployment


def test_import_of_a_deployment_before_what_it_uses_says_so_and_writes_it_when_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user imports a console-made deployment first: its document cannot name an agent and
    an environment nobody manages yet. The warning says to import those first; once they
    are, the same import again writes the deployment's document (it used to say "already
    recorded; nothing to do" and leave the user to write it by hand)."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    Path("manifests").mkdir()


    agent, env, deployment = out_of_band(_console_deployment)
    result = ok("import", "deployment.nightly", deployment)
    warning = " ".join(result.stderr.split())
    assert f"it uses agent {agent}, environment {env}, which this project does not manage" in (
        warning
    )
    assert (
        f"import them first (`reconciler import agent.NAME {agent}`, `reconciler import "
        f"environment.NAME {env}`), then run this import again to write its document" in warning
    )
    assert not list(Path("manifests").iterdir())

    ok("import", "agent.helper", agent)
    # the hint names only what is still missing, with the command that imports it
    warning = " ".join(ok("import", "deployment.nightly", deployment).stderr.split())
    assert f"import them first (`reconciler import environment.NAME {env}`)" in warning, warning
    ok("import", "environment.sandbox", env)
    serial = lockfile()["serial"]
    result = ok("import", "deployment.nightly", deployment)
    assert "Wrote manifests/deployments/nightly.yaml (the document of deployment.nightly)." in (
        result.stdout
    )
    assert "nothing to do" not in result.stdout
    assert "not in the manifests" not in result.stderr
    assert lockfile()["resources"]["deployment.nightly"]["id"] == deployment
    assert lockfile()["serial"] >= serial
    plan_is_clean()
    # and now that it is declared, the same import again is the no-op it was
    assert "nothing to do" in ok("import", "deployment.nightly", deployment).stdout


def _credential_by_hand(vault: str) -> str:
    """A credential added in the console to the vault ``vault``: its id."""

    async def create(c: ProviderClient) -> str:
        auth = {"type": "static_bearer", "mcp_server_url": "https://x.example/mcp", "token": "t"}
        made = await c.credentials.create(vault, {"display_name": "by hand", "auth": auth})
        return str(made["id"])

    return str(out_of_band(create))


def test_import_of_an_undeclared_credential_says_what_to_add_to_its_vault(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credential lives inside its vault's document, which import does not rewrite: the
    warning gives the entry to add (secret as from_env) and the variable to set. It said
    "its document was not written: write it", as if a credential had a document."""
    vault = remote_id("vault.github")

    cred = _credential_by_hand(vault)
    result = ok("import", "vault.github.credential.extra", cred)
    entry = (
        '{"name": "extra", "display_name": "by hand", "auth": {"type": "static_bearer", '
        '"mcp_server_url": "https://x.example/mcp", "token": {"from_env": "GITHUB_EXTRA_TOKEN"}}}'
    )
    warning = " ".join(result.stderr.split())
    assert (
        "vault.github.credential.extra is not in the manifests: add it to the credentials of "
        f"vault.github in its manifest: {entry}; until then" in warning
    ), warning
    assert "document" not in warning
    assert "GITHUB_EXTRA_TOKEN  vault.github.credential.extra auth.token" in result.stdout

    # added as told, it is declared: the plan only writes its secret (never read back)
    edit(
        Path("manifests/vaults.yaml"),
        "        token: {from_file: secrets/github-token.txt}\n",
        f"        token: {{from_file: secrets/github-token.txt}}\n    - {entry}\n",
    )
    monkeypatch.setenv("GITHUB_EXTRA_TOKEN", "t")
    shown = ok("plan").stdout
    assert "~ vault.github.credential.extra  update" in shown, shown
    assert "Plan: 0 to create, 1 to update, 0 to archive." in shown


def test_import_the_same_again_does_nothing(applied: Path) -> None:
    coder = remote_id("agent.coder")
    serial = lockfile()["serial"]
    result = ok("import", "agent.coder", coder)
    assert result.stdout == f"agent.coder is already recorded as {coder}; nothing to do.\n"
    assert lockfile()["serial"] == serial


def test_import_of_an_object_that_still_carries_its_tags_writes_no_new_version(
    applied: Path,
) -> None:
    """Only the lockfile entry was lost: the object's tags already name this project and
    address, so import records it without an update (an agent update would save a version)."""
    coder = remote_id("agent.coder")
    ok("state", "rm", "agent.coder")
    result = ok("import", "agent.coder", coder)
    assert f"Imported agent.coder ({coder}): already tagged." in result.stdout
    assert lockfile()["resources"]["agent.coder"]["version"] == 1


def test_import_refuses_a_recorded_address_unless_forced(applied: Path) -> None:
    async def create(c: ProviderClient) -> str:
        return str((await c.agents.create({"name": "other", "model": "claude-haiku-4-5"}))["id"])

    other = out_of_band(create)
    refused = cli("import", "agent.coder", other)
    assert refused.exit_code == 1
    assert "agent.coder is already in the lockfile" in refused.stderr
    assert "--force" in refused.stderr
    ok("import", "--force", "agent.coder", other)
    assert remote_id("agent.coder") == other


def test_import_force_over_a_recorded_entry_says_the_old_object_is_now_a_twin(
    applied: Path,
) -> None:
    """``import --force agent.coder NEW`` replaced the entry without a word about the object
    it recorded before: that one keeps this project's tags for agent.coder, so the next plan
    called it a twin ("two applies that did not share a lockfile") and ``apply --prune``
    archives it. The import now says so, naming it."""
    old = remote_id("agent.coder")

    async def create(c: ProviderClient) -> str:
        return str((await c.agents.create({"name": "other", "model": "claude-haiku-4-5"}))["id"])

    other = out_of_band(create)
    result = ok("import", "--force", "agent.coder", other)
    assert (
        f"agent.coder recorded {old} before, which still carries this project's tags for "
        "agent.coder: plans now list it as a twin, and `reconciler apply --prune` archives it"
    ) in " ".join(result.stderr.split()), result.stderr


def test_import_refuses_an_id_recorded_under_another_address(applied: Path) -> None:
    result = cli("import", "agent.other", remote_id("agent.coder"))
    assert result.exit_code == 1
    assert "already in the lockfile as agent.coder" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("agent.coder", "env_01abc"), "is the id of an environment"),
        (("coder", "agent_01abc"), "is not an address"),
        (("agent.Coder!", "agent_01abc"), "is not an address"),
        (("agent.coder", "agent_01doesnotexist"), "no agent agent_01doesnotexist"),
        # a byte of another encoding (was "unexpected UnicodeEncodeError ... a bug"), a space
        (("agent.coder", "agent_01\udcff"), "'agent_01\\udcff' is not a remote id"),
        (("agent.coder", "agent_01 abc"), "'agent_01 abc' is not a remote id"),
        (("agent.coder",), "give an address and a remote id"),
        (("--out", "x", "agent.coder", "agent_1"), "--out goes with --all-unmanaged"),
        (("--all-unmanaged",), "--all-unmanaged needs --out DIR"),
    ],
)
def test_import_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    make_workdir(tmp_path, monkeypatch)
    result = cli("import", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert not Path("state/reconciler.lock").exists()


def test_import_refuses_archived_and_foreign_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch)

    async def create(c: ProviderClient) -> tuple[str, str]:
        archived = await c.agents.create({"name": "coder", "model": "claude-haiku-4-5"})
        await c.agents.archive(archived["id"])
        theirs = await c.agents.create(
            {
                "name": "coder",
                "model": "claude-haiku-4-5",
                "metadata": {
                    "managed-by": "reconciler",
                    "reconciler-project": "payments",
                    "reconciler-address": "agent.coder",
                },
            }
        )
        return archived["id"], theirs["id"]

    archived, theirs = out_of_band(create)
    result = cli("import", "agent.coder", archived)
    assert result.exit_code == 1 and "cannot be adopted" in result.stderr
    result = cli("import", "agent.coder", theirs)
    assert result.exit_code == 1
    assert "belongs to project 'payments'" in result.stderr
    assert ok("--project", "payments", "import", "agent.coder", theirs)


def test_a_recorded_object_that_lost_its_tags_is_not_ours_until_imported(applied: Path) -> None:
    """Issue 11.2: the lockfile alone never proves ownership. Tags stripped by hand leave an
    entry that plan refuses to act on; importing the recorded id tags it again."""
    coder = remote_id("agent.coder")

    async def untag(c: ProviderClient) -> None:
        await c.agents.update(coder, {"metadata": UNTAG, "system": "edited by hand"})

    out_of_band(untag)
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert "Not ours" in result.stdout and "nobody (no reconciler ownership tags)" in result.stdout
    assert "update" not in result.stdout.split("Not ours")[0]
    assert cli("apply", "--auto-approve").exit_code == 1
    ok("import", "agent.coder", coder)
    ok("apply", "--auto-approve")  # now ours again: the hand edit is reverted
    plan_is_clean()


def test_import_force_takes_over_a_recorded_object_of_another_project(applied: Path) -> None:
    coder = remote_id("agent.coder")

    async def retag(c: ProviderClient) -> None:
        await c.agents.update(coder, {"metadata": {"reconciler-project": "payments"}})

    out_of_band(retag)
    result = cli("plan")
    assert 'belongs to project "payments" (as agent.coder)' in result.stdout
    result = cli("import", "agent.coder", coder)
    assert result.exit_code == 1 and "--force to take it over" in result.stderr
    result = ok("import", "--force", "agent.coder", coder)
    assert "belonged to project 'payments'" in result.stderr
    plan_is_clean()


# --- import --all-unmanaged -------------------------------------------------------------------

SECRETS = {
    "TOOLS_GITHUB_MCP_TOKEN": "t1",
    "TOOLS_NPM_TOKEN_SECRET_VALUE": "t2",
    "TOOLS_LINEAR_ACCESS_TOKEN": "t3",
    "TOOLS_LINEAR_REFRESH_TOKEN": "t4",
    "TOOLS_LINEAR_CLIENT_SECRET": "t5",
}


async def click_together(c: ProviderClient) -> dict[str, Any]:
    """What a team builds in the console: every kind, in shapes the server fills in."""
    env = await c.environments.create(
        {
            "name": "Data Science",
            "config": {
                "type": "cloud",
                "networking": {
                    "type": "limited",
                    "allowed_hosts": ["api.github.com"],
                    "allow_package_managers": True,
                },
                "packages": {"pip": ["pandas==2.2.3"]},
            },
            "metadata": {"team": "ds"},
        }
    )
    bare_env = await c.environments.create({"name": "bare"})
    agent = await c.agents.create(
        {
            "name": "Code Reviewer",
            "model": {"id": "claude-opus-4-6", "effort": "medium"},
            "description": "Reviews pull requests.",
            "system": "Review the diff.\nBe kind.\n",
            "tools": [
                {
                    "type": "agent_toolset_20260401",
                    "configs": [
                        {"name": "bash", "permission_policy": {"type": "always_ask"}},
                        {"name": "web_fetch", "enabled": False},
                    ],
                },
                {"type": "mcp_toolset", "mcp_server_name": "github"},
                {
                    "type": "custom",
                    "name": "lookup",
                    "description": "Look a ticket up.",
                    "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}},
                },
            ],
            "mcp_servers": [
                {"type": "url", "name": "github", "url": "https://api.githubcopilot.com/mcp/"}
            ],
            "skills": [{"type": "anthropic", "skill_id": "xlsx"}],
            "metadata": {"owner": "platform"},
        }
    )
    agent = await c.agents.update(agent["id"], {"system": "Review the diff.\nBe very kind.\n"})
    helper = await c.agents.create({"name": "helper", "model": "claude-haiku-4-5"})
    vault = await c.vaults.create({"display_name": "Tools"})
    await c.credentials.create(
        vault["id"],
        {
            "display_name": "GitHub MCP",
            "auth": {
                "type": "static_bearer",
                "mcp_server_url": "https://api.githubcopilot.com/mcp/",
                "token": "secret-1",
            },
        },
    )
    await c.credentials.create(
        vault["id"],
        {
            "auth": {
                "type": "environment_variable",
                "secret_name": "NPM_TOKEN",
                "secret_value": "secret-2",
                "networking": {"type": "limited", "allowed_hosts": ["registry.npmjs.org"]},
            }
        },
    )
    await c.credentials.create(
        vault["id"],
        {
            "display_name": "Linear",
            "auth": {
                "type": "mcp_oauth",
                "mcp_server_url": "https://mcp.linear.app/mcp",
                "access_token": "secret-3",
                "refresh": {
                    "client_id": "client",
                    "refresh_token": "secret-4",
                    "token_endpoint": "https://linear.app/oauth/token",
                    "token_endpoint_auth": {
                        "type": "client_secret_post",
                        "client_secret": "secret-5",
                    },
                },
            },
        },
    )
    deployment = await c.deployments.create(
        {
            "name": "Nightly review",
            "agent": {"type": "agent", "id": agent["id"], "version": 1},
            "environment_id": env["id"],
            "vault_ids": [vault["id"]],
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "Review today."}]}
            ],
            "schedule": {"type": "cron", "expression": "0 2 * * 1-5", "timezone": "UTC"},
        }
    )
    archived = await c.agents.create({"name": "old", "model": "claude-haiku-4-5"})
    await c.agents.archive(archived["id"])
    foreign_tags = {
        "managed-by": "reconciler",
        "reconciler-project": "payments",
        "reconciler-address": "agent.biller",
    }
    theirs = await c.agents.create(
        {"name": "biller", "model": "claude-haiku-4-5", "metadata": foreign_tags}
    )
    return {
        "env": env["id"],
        "bare_env": bare_env["id"],
        "agent": agent["id"],
        "helper": helper["id"],
        "vault": vault["id"],
        "deployment": deployment["id"],
        "archived": archived["id"],
        "theirs": theirs["id"],
    }


@pytest.fixture
def clicked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A provider full of hand-made resources and a repository with no manifests yet."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    return out_of_band(click_together)


def test_import_all_unmanaged_round_trip(
    clicked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = ok("import", "--all-unmanaged", "--out", "manifests")
    for name in ("agents", "environments", "vaults", "deployments"):
        assert f"Wrote manifests/{name}.yaml" in result.stdout
    assert "Recorded 9 resources in state/reconciler.lock." in result.stdout
    for variable in SECRETS:
        assert variable in result.stdout

    manifests = load_manifests("manifests")
    assert [d.address for d in manifests.documents] == [
        "agent.code-reviewer",
        "agent.helper",
        "deployment.nightly-review",
        "environment.bare",
        "environment.data-science",
        "vault.tools",
    ]
    entries = lockfile()["resources"]
    assert entries["agent.code-reviewer"]["id"] == clicked["agent"]
    assert entries["agent.code-reviewer"]["version"] == 3  # 2 live + 1 for the tags
    assert entries["deployment.nightly-review"]["pins"] == {"agent.code-reviewer": 1}
    assert {a for a in entries if ".credential." in a} == {
        "vault.tools.credential.github-mcp",
        "vault.tools.credential.linear",
        "vault.tools.credential.npm_token",
    }
    assert clicked["theirs"] not in json.dumps(entries)  # another project's agent: theirs
    assert clicked["archived"] not in json.dumps(entries)

    ok("validate")
    ok("fmt", "--check")  # written in canonical form
    assert ok("drift").stdout.startswith("No drift")

    # Secrets cannot be read back: the first apply writes them, and says so.
    for variable, value in SECRETS.items():
        monkeypatch.setenv(variable, value)
    data = json.loads(ok("plan", "--format", "json").stdout)
    changes = [
        (a["address"], c["path"], c["sensitive"])
        for a in data["actions"]
        for c in a.get("changes", [])
    ]
    assert sorted(changes) == [
        ("vault.tools.credential.github-mcp", "auth.token", True),
        ("vault.tools.credential.linear", "auth.access_token", True),
        ("vault.tools.credential.linear", "auth.refresh.refresh_token", True),
        ("vault.tools.credential.linear", "auth.refresh.token_endpoint_auth.client_secret", True),
        ("vault.tools.credential.npm_token", "auth.secret_value", True),
    ]
    ok("apply", "--auto-approve")
    plan_is_clean()
    serial = lockfile()["serial"]
    assert "No changes." in ok("apply", "--auto-approve").stdout
    assert lockfile()["serial"] == serial
    assert ok("drift").stdout.startswith("No drift")

    again = ok("import", "--all-unmanaged", "--out", "more")
    assert again.stdout.startswith("Nothing to import")
    assert not Path("more").exists()


def test_imported_manifests_read_like_hand_written_ones(clicked: dict[str, Any]) -> None:
    ok("import", "--all-unmanaged", "--out", "manifests")
    agents = Path("manifests/agents.yaml").read_text()
    assert "name: code-reviewer\nspec:\n  name: Code Reviewer\n" in agents
    assert "  model: {id: claude-opus-4-6, effort: medium}\n" in agents
    assert "  system: |\n    Review the diff.\n    Be very kind.\n" in agents
    assert "permission_policy: {type: always_ask}" in agents
    assert "default_config" not in agents  # the server's defaults are left out
    assert "execution_identity" not in agents and "managed-by" not in agents
    deployments = Path("manifests/deployments.yaml").read_text()
    assert "  agent: {ref: code-reviewer, version: 1}\n" in deployments
    assert "  environment: data-science\n" in deployments
    assert "last_run_at" not in deployments and "status" not in deployments
    vaults = Path("manifests/vaults.yaml").read_text()
    assert "token: {from_env: TOOLS_GITHUB_MCP_TOKEN}" in vaults
    assert "secret-" not in vaults  # no secret could be read, none was written
    assert "set these environment variables" in vaults
    environments = Path("manifests/environments.yaml").read_text()
    assert "kind: Environment\nname: bare\nspec: {}\n" in environments


def test_import_all_unmanaged_says_what_each_written_file_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a long system prompt goes to prompts/NAME.md; the line for that file said "()"
    make_workdir(tmp_path, monkeypatch, manifests=False)

    async def long_prompt(c: ProviderClient) -> None:
        await c.agents.create(
            {"name": "poet", "model": "claude-haiku-4-5", "system": "a\nb\nc\nd\n"}
        )

    out_of_band(long_prompt)
    result = ok("import", "--all-unmanaged", "--out", "manifests")
    assert "Wrote manifests/prompts/poet.md (the system prompt of agent.poet)." in result.stdout
    assert "()" not in result.stdout


def test_import_all_unmanaged_never_overwrites_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch)  # manifests/agents.yaml exists

    async def create(c: ProviderClient) -> None:
        await c.agents.create({"name": "clicked", "model": "claude-haiku-4-5"})

    out_of_band(create)
    before = Path("manifests/agents.yaml").read_text()
    result = cli("import", "--all-unmanaged", "--out", "manifests")
    assert result.exit_code == 1
    assert "manifests/agents.yaml already exists; nothing was imported" in result.stderr
    assert Path("manifests/agents.yaml").read_text() == before
    assert not Path("state/reconciler.lock").exists()
    assert len(items(drift_json(), "unmanaged")) == 1  # still untagged


def test_import_all_unmanaged_beside_managed_resources(applied: Path) -> None:
    """A deployment clicked together on a managed agent refers to it by its manifest name."""
    reviewer = remote_id("agent.reviewer")
    env = remote_id("environment.python-data")

    async def create(c: ProviderClient) -> None:
        await c.agents.create({"name": "coder", "model": "claude-haiku-4-5"})  # name taken
        await c.deployments.create(
            {
                "name": "adhoc",
                "agent": {"type": "agent", "id": reviewer, "version": 1},
                "environment_id": env,
                "initial_events": [
                    {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
                ],
            }
        )

    out_of_band(create)
    ok("import", "--all-unmanaged", "--out", "manifests/imported")
    text = Path("manifests/imported/deployments.yaml").read_text()
    assert "agent: {ref: reviewer, version: 1}" in text
    assert "environment: python-data" in text
    assert (
        "name: coder-2\nspec:\n  name: coder\n"
        in Path("manifests/imported/agents.yaml").read_text()
    )
    plan_is_clean()
    assert ok("drift").stdout.startswith("No drift")


def test_import_all_unmanaged_names_the_managed_vault_of_a_credential_it_skips(
    applied: Path,
) -> None:
    """A credential added by hand to a managed vault is left for the user to declare: the
    message names that vault's address and the whole import command (it named the vault by
    its id and said `reconciler import vault.VAULT.credential.NAME ...`)."""
    vault = remote_id("vault.github")

    cred = _credential_by_hand(vault)
    result = cli("import", "--all-unmanaged", "--out", "manifests/imported")
    assert result.exit_code == 1, result.stdout  # left behind: not everything was imported
    assert (
        f"Skipped credential {cred}: it lives in the managed vault vault.github ({vault}): add "
        "it to that vault's credentials in its manifest, then `reconciler import "
        f"vault.github.credential.NAME {cred}`." in result.stderr
    ), result.stderr


def test_import_all_unmanaged_skips_a_deployment_it_cannot_refer_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch, manifests=False)

    async def create(c: ProviderClient) -> str:
        tags = {
            "managed-by": "reconciler",
            "reconciler-project": "payments",
            "reconciler-address": "agent.biller",
        }
        agent = await c.agents.create(
            {"name": "biller", "model": "claude-haiku-4-5", "metadata": tags}
        )
        env = await c.environments.create({"name": "shared"})
        dep = await c.deployments.create(
            {
                "name": "bills",
                "agent": agent["id"],
                "environment_id": env["id"],
                "initial_events": [
                    {"type": "user.message", "content": [{"type": "text", "text": "bill"}]}
                ],
            }
        )
        return str(dep["id"])

    deployment = out_of_band(create)
    result = cli("import", "--all-unmanaged", "--out", "manifests")
    assert result.exit_code == 1, result.stdout  # left behind: not everything was imported
    assert f"Skipped deployment {deployment}: it uses agent" in result.stderr
    assert "owned by another project" in result.stderr
    assert not Path("manifests/deployments.yaml").exists()
    assert set(lockfile()["resources"]) == {"environment.shared"}


@pytest.mark.parametrize("agents", [1, 6])
def test_import_all_unmanaged_reads_by_listing_not_per_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agents: int
) -> None:
    """The adopt step uses the objects the run already listed: the number of GETs does not
    grow with the number of hand-made objects (one list per kind, not one GET each)."""
    import asyncio

    from reconciler.app import Settings, import_unmanaged
    from reconciler.provider import embedded_client

    make_workdir(tmp_path, monkeypatch, manifests=False)
    (tmp_path / "manifests").mkdir()

    async def make(c: ProviderClient) -> None:
        for i in range(agents):
            await c.agents.create({"name": f"hand-{i}", "model": "claude-sonnet-4-6"})

    out_of_band(make)

    async def run() -> dict[str, int]:
        settings = Settings(manifests=Path("manifests"), lockfile=Path("state/reconciler.lock"))
        async with embedded_client(Path(".reconciler/provider.db")) as client:
            result = await import_unmanaged(settings, Path("manifests"), client=client)
            assert len(result.report.outcomes) == agents
            return dict(client.stats.by_method)

    by_method = asyncio.run(run())
    assert by_method.get("GET", 0) <= 6, by_method  # one list per kind, no GET per agent
    assert by_method.get("POST", 0) == agents  # one tag update each


@pytest.mark.parametrize(
    ("address", "bad_id", "said"),
    [
        ("agent.x", "agent_BAD", "Error: no agent agent_BAD on the provider"),
        ("skill.x", "skill_BAD", "skill_BAD"),
        ("vault.github.credential.x", "vcrd_BAD", "vault.github"),
    ],
    ids=["agent", "skill", "credential"],
)
def test_a_failed_import_in_a_never_applied_directory_leaves_no_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str, bad_id: str, said: str
) -> None:
    # `import agent.x BADID` before any apply said "no agent agent_BAD on the provider" and
    # left state/reconciler.lock.guard (and state/) behind: the apply lock was taken first
    make_workdir(tmp_path, monkeypatch)
    result = cli("import", address, bad_id)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert said in result.stderr
    assert not Path("state").exists(), sorted(p.name for p in Path("state").iterdir())


URL_HOSTS = ["https://x.com", "api.example.com", "https://pypi.org/simple"]


def _environment_with_url_hosts() -> str:
    """An environment clicked together with URLs in its allowed_hosts (the API takes them:
    its docs say only "domains the container can reach")."""

    async def make(c: ProviderClient) -> str:
        networking = {"type": "limited", "allowed_hosts": URL_HOSTS}
        config = {"type": "cloud", "networking": networking}
        return str((await c.environments.create({"name": "urly", "config": config}))["id"])

    return out_of_band(make)


@pytest.mark.parametrize("how", ["address", "all-unmanaged"])
def test_import_of_an_environment_whose_allowed_hosts_are_urls(applied: Path, how: str) -> None:
    """validate refuses a URL in an Environment's allowed_hosts, so import wrote no document
    for such an environment (a warning, then "left alone" at every plan). Now it writes the
    hostnames (a manifest validate takes), says which entries it rewrote, and plan shows
    the update that would send them; nothing live changes until that apply."""
    env = _environment_with_url_hosts()
    if how == "address":
        result = ok("import", "environment.urly", env)
        written = Path("manifests/environments/urly.yaml")
    else:
        result = ok("import", "--all-unmanaged", "--out", "manifests/imported")
        written = Path("manifests/imported/environments.yaml")
    assert written.exists(), (result.stdout, result.stderr)
    text = written.read_text()
    [doc] = [d for d in yaml.safe_load_all(text) if d["name"] == "urly"]
    hosts = doc["spec"]["config"]["networking"]["allowed_hosts"]
    assert hosts == ["x.com", "api.example.com", "pypi.org"], text
    said = result.stdout + result.stderr
    assert "'https://x.com' -> x.com" in said, said
    assert "'https://pypi.org/simple' -> pypi.org" in said, said
    assert "'https://x.com' -> x.com" in text, text  # the file says so too
    assert "it should show no change" not in said, said
    ok("validate")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [action] = [a for a in plan["actions"] if a["address"] == "environment.urly"]
    assert action["type"] == "update", action

    async def live_hosts(c: ProviderClient) -> list[str]:
        return list((await c.environments.retrieve(env))["config"]["networking"]["allowed_hosts"])

    assert out_of_band(live_hosts) == URL_HOSTS  # import changed nothing live but the tags


@pytest.mark.parametrize("declared", [False, True])
def test_import_of_an_object_with_no_room_for_the_ownership_tags_is_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, declared: bool
) -> None:
    """An agent with 15 metadata keys has no room for the 3 ownership tags (the provider
    keeps 16): the tagging update was sent, refused with a 400, and the import said
    "nothing was recorded" while it left a pending adopt intent, so every plan refused to
    create the document's agent and named this same import, which failed again. Now it is
    refused before anything is written or sent, saying how many keys to remove."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    Path("manifests").mkdir()
    if declared:
        Path("manifests/full.yaml").write_text(
            "kind: Agent\nname: full\nspec:\n  model: claude-haiku-4-5\n"
        )

    async def create(c: ProviderClient) -> str:
        metadata = {f"k{i}": "v" for i in range(15)}
        agent = await c.agents.create(
            {"name": "full", "model": "claude-haiku-4-5", "metadata": metadata}
        )
        return str(agent["id"])

    agent = out_of_band(create)
    result = cli("import", "agent.full", agent)
    assert result.exit_code == 1, result.stdout
    assert (
        f"{agent} has 15 metadata keys: the ownership tags need 3 of the provider's 16, so "
        "it may keep at most 13; remove 2 of them on the provider, then run this import again"
    ) in result.stderr, result.stderr
    assert not Path("state/reconciler.lock").exists()
    assert not Path("manifests/agents").exists()
    if declared:  # drift's unmanaged line said the import "adopts it"
        [unmanaged] = items(drift_json(), "unmanaged")
        assert (
            "its 15 metadata keys leave no room for the 3 ownership tags: remove 2 of them on "
            f"the provider, then `reconciler import agent.NAME {agent}` adopts it"
        ) in unmanaged["message"], unmanaged["message"]


def test_import_never_writes_a_document_the_manifests_leave_out(applied: Path) -> None:
    """With ``agents/`` in ``manifests/.reconcilerignore``, ``import agent.X ID`` wrote
    ``manifests/agents/X.yaml`` and tagged the agent: the next plan did not read that file,
    listed the agent as "not in the manifests", and ``plan --prune`` would have archived what
    was just adopted. The import is refused, naming the file and the ignore file, before
    anything is written or sent; ``--all-unmanaged --out`` into an ignored folder too."""
    Path("manifests/.reconcilerignore").write_text("agents/\nimported/\n")

    async def create(c: ProviderClient) -> str:
        return str((await c.agents.create({"name": "clicked", "model": "claude-haiku-4-5"}))["id"])

    clicked = out_of_band(create)
    before = Path("state/reconciler.lock").read_text()
    result = cli("import", "agent.clicked", clicked)
    assert result.exit_code == 1, result.stdout
    assert (
        "manifests/agents/clicked.yaml would be left out by manifests/.reconcilerignore (the "
        "next plan would not read it); nothing was imported"
    ) in result.stderr, result.stderr
    assert not Path("manifests/agents").exists()
    result = cli("import", "--all-unmanaged", "--out", "manifests/imported")
    assert result.exit_code == 1, result.stdout
    assert (
        "manifests/imported/agents.yaml would be left out by manifests/.reconcilerignore"
    ) in result.stderr, result.stderr
    assert not Path("manifests/imported").exists()
    assert Path("state/reconciler.lock").read_text() == before
    assert len(items(drift_json(), "unmanaged")) == 1  # still untagged


def test_import_never_takes_an_object_another_tool_manages_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent whose ``managed-by`` metadata names another tool (``terraform``) was taken
    by ``import --all-unmanaged`` ("everything live that nothing owns") and by ``import
    ADDR ID`` without a word, its ``managed-by`` overwritten: the other tool then fights
    over it. Both leave it alone now, naming the tool; ``--force`` takes it over."""
    make_workdir(tmp_path, monkeypatch, manifests=False)

    async def create(c: ProviderClient) -> tuple[str, str]:
        theirs = await c.agents.create(
            {"name": "tf", "model": "claude-haiku-4-5", "metadata": {"managed-by": "terraform"}}
        )
        mine = await c.agents.create({"name": "clicked", "model": "claude-haiku-4-5"})
        return str(theirs["id"]), str(mine["id"])

    theirs, mine = out_of_band(create)
    result = ok("import", "--all-unmanaged", "--out", "manifests")
    assert (
        f"Skipped agent {theirs}: its managed-by metadata says terraform manages it, not the "
        f"reconciler; `reconciler import agent.NAME {theirs} --force` takes it over."
    ) in " ".join(result.stderr.split()), result.stderr
    assert set(lockfile()["resources"]) == {"agent.clicked"}
    assert lockfile()["resources"]["agent.clicked"]["id"] == mine
    [unmanaged] = items(drift_json(), "unmanaged")  # drift names the flag import needs
    assert f"`reconciler import agent.NAME {theirs} --force` takes it over" in unmanaged["message"]
    refused = cli("import", "agent.tf", theirs)
    assert refused.exit_code == 1, refused.stdout
    assert (
        f"{theirs} is managed by terraform (its managed-by metadata), not by the reconciler"
    ) in refused.stderr, refused.stderr
    assert not Path("manifests/agents").exists()
    forced = ok("import", "--force", "agent.tf", theirs)
    assert "terraform" in forced.stderr, forced.stderr
    assert lockfile()["resources"]["agent.tf"]["id"] == theirs


def test_a_name_held_by_another_tools_environment_names_the_forced_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment named as a manifest's, whose managed-by names terraform: plan said it
    "belongs to nobody" and that `reconciler import` manages it, an import refused without
    --force; it now names terraform and the --force import."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    Path("manifests").mkdir()
    Path("manifests/env.yaml").write_text("kind: Environment\nname: tf-env\nspec: {}\n")

    async def create(c: ProviderClient) -> str:
        body = {"name": "tf-env", "metadata": {"managed-by": "terraform"}}
        env = await c.environments.create(body)
        return str(env["id"])

    env = out_of_band(create)
    said = " ".join(ok("plan").stdout.split())
    assert "belongs to terraform (its managed-by metadata)" in said, said
    remedy = f"`reconciler import --force environment.tf-env {env}` would take it from terraform"
    assert remedy in said, said


class _RefuseTagging:
    """Middleware: every update of an agent is refused with the wire's 409 (a concurrent
    edit of it), before the provider sees it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and scope["method"] == "POST" and path.count("/") == 3:
            if path.startswith("/v1/agents/"):
                body = json.dumps(
                    {"type": "error", "error": {"type": "conflict_error", "message": "edited"}}
                ).encode()
                headers = [(b"content-type", b"application/json"), (b"x-should-retry", b"false")]
                await send({"type": "http.response.start", "status": 409, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def test_a_failed_import_says_its_adoption_stays_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tagging update refused (a 409): import said "nothing was recorded", while the
    state held its pending adopt (state list shows it, and plan refuses to create the
    address beside the object). It now says so, and how to finish or drop it."""
    make_workdir(tmp_path, monkeypatch)
    with provider(tmp_path / "served.db", wrap=_RefuseTagging) as (url, _):

        async def create() -> str:
            async with ProviderClient(url, api_key="local-provider") as c:
                body = {"name": "x", "model": "claude-haiku-4-5"}
                return str((await c.agents.create(body))["id"])

        agent = asyncio.run(create())
        result = cli("--provider-url", url, "import", "agent.coder", agent)
        assert result.exit_code == 1, result.stdout
        said = " ".join(result.stderr.split())
        assert "nothing was recorded" not in said, said
        assert (
            f"its adoption stays pending in state/reconciler.lock: `reconciler import agent.coder "
            f"{agent}` finishes it, `reconciler state rm agent.coder` drops it"
        ) in said, said
        listed = ok("--provider-url", url, "state", "list").stdout
        assert "(pending adopt since" in listed, listed
