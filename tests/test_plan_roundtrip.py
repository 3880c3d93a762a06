"""Normalisation round trips: apply, then plan is clean, for every kind and optional field.

Each case is a set of manifests applied to the local provider in-process; the next plan must
show no changes. Editing a field (set, changed, removed) must plan exactly one update, and
applying it must again leave a clean plan.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reconciler.app import PlanChoices, Settings, apply, make_plan
from reconciler.engine.model import Plan
from reconciler.provider.local import create_app

BASE = """
kind: Environment
name: env
spec: {}
---
kind: Agent
name: bot
spec:
  model: claude-haiku-4-5
"""

AGENT_FULL = """
kind: Agent
name: full
spec:
  name: Full Agent
  model: {id: claude-sonnet-4-6, effort: low, speed: standard}
  description: does everything
  system: |
    line one
    line two
  tools:
    - type: agent_toolset_20260401
      default_config: {enabled: true, permission_policy: {type: always_ask}}
      configs:
        - name: bash
          enabled: false
        - name: web_fetch
          allowed_domains: [example.com]
    - type: mcp_toolset
      mcp_server_name: docs
      configs:
        - name: search
          permission_policy: {type: always_allow}
    - type: custom
      name: lookup
      description: Look a thing up
      input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
  mcp_servers:
    - {type: url, name: docs, url: "https://docs.example.com/mcp"}
  skills:
    - {type: anthropic, skill_id: xlsx}
    - {type: custom, skill_id: SKILL_ID, version: SKILL_VERSION}
  execution_identity: {type: aws_role, role_arn: "arn:aws:iam::123456789012:role/agent"}
  metadata: {team: infra, tier: "1"}
"""

ENV_FULL = """
kind: Environment
name: data
spec:
  description: data stack
  scope: organization
  metadata: {team: data}
  config:
    type: cloud
    networking:
      type: limited
      allowed_hosts: [b.example.com, a.example.com]
      allow_package_managers: true
    packages:
      pip: [pandas, numpy]
      apt: [curl]
"""

ENV_SELF_HOSTED = """
kind: Environment
name: onprem
spec:
  config: {type: self_hosted}
"""

VAULT_FULL = """
kind: Vault
name: keys
spec:
  display_name: Team keys
  metadata: {team: sec}
  credentials:
    - name: bearer
      display_name: Bearer token
      auth:
        type: static_bearer
        mcp_server_url: https://mcp.example.com/mcp
        token: {from_env: RT_TOKEN}
    - name: envvar
      auth:
        type: environment_variable
        secret_name: API_KEY
        secret_value: {from_env: RT_API_KEY}
        networking: {type: limited, allowed_hosts: [api.example.com]}
    - name: oauth
      auth:
        type: mcp_oauth
        mcp_server_url: https://oauth.example.com/mcp
        access_token: {from_env: RT_ACCESS}
        refresh:
          client_id: client-1
          refresh_token: {from_env: RT_REFRESH}
          token_endpoint: https://oauth.example.com/token
          token_endpoint_auth: {type: client_secret_post, client_secret: {from_env: RT_SECRET}}
          scope: read
"""

DEPLOYMENT_FULL = """
kind: Deployment
name: nightly
spec:
  name: Nightly run
  description: runs at night
  agent: {ref: bot, version: 1}
  environment: env
  vaults: [keys]
  initial_events:
    - type: user.message
      content: [{type: text, text: go}]
  schedule: {type: cron, expression: "0 3 * * *", timezone: UTC}
  budget: {type: limit, max_list_cost: {amount: "2500", currency: USD}}
  metadata: {team: ops}
"""

DEPLOYMENT_MIN = """
kind: Deployment
name: adhoc
spec:
  agent: bot
  environment: env
  initial_events:
    - type: user.message
      content: [{type: text, text: hi}]
"""

SECRETS = {
    "RT_TOKEN": "tok-1",
    "RT_API_KEY": "key-1",
    "RT_ACCESS": "acc-1",
    "RT_REFRESH": "ref-1",
    "RT_SECRET": "sec-1",
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "manifests").mkdir()
    _upload_skill(tmp_path)
    return tmp_path


def _upload_skill(workdir: Path) -> None:
    """A custom skill in the provider: agents' custom skill references must exist."""
    app = create_app(settings(workdir).db_path)
    with TestClient(app, headers={"x-api-key": "test", "anthropic-version": "2026-10-21"}) as http:
        md = b"---\nname: roundtrip\ndescription: d\n---\n"
        skill = http.post("/v1/skills", files=[("files[]", ("roundtrip/SKILL.md", md))]).json()
    (workdir / "skill.txt").write_text(f"{skill['id']} {skill['latest_version_id']}")
    app.state.provider.store.close()


def write(workdir: Path, *docs: str) -> None:
    text = "\n---\n".join(textwrap.dedent(d).strip() for d in docs) + "\n"
    skill_id, version = (workdir / "skill.txt").read_text().split()
    text = text.replace("SKILL_ID", skill_id).replace("SKILL_VERSION", version)
    (workdir / "manifests" / "all.yaml").write_text(text, encoding="utf-8")


def settings(workdir: Path) -> Settings:
    return Settings(
        manifests=workdir / "manifests",
        lockfile=workdir / "state" / "reconciler.lock",
        db_path=workdir / ".reconciler" / "provider.db",
    )


async def plan_of(workdir: Path, **kw: object) -> Plan:
    return (await make_plan(settings(workdir), PlanChoices(**kw))).plan  # type: ignore[arg-type]


async def converge(workdir: Path) -> None:
    result = await apply(settings(workdir))
    assert result is not None
    assert result.report.ok, result.report.failures
    plan = await plan_of(workdir)
    assert not plan.has_changes, [(a.address, a.type, a.changes) for a in plan.changes]


CASES = {
    "minimal": (BASE,),
    "agent-full": (BASE, AGENT_FULL),
    "env-full": (BASE, ENV_FULL),
    "env-self-hosted": (BASE, ENV_SELF_HOSTED),
    "vault-full": (BASE, VAULT_FULL),
    "deployment-full": (BASE, VAULT_FULL, DEPLOYMENT_FULL),
    "deployment-min": (BASE, DEPLOYMENT_MIN),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_apply_then_plan_is_clean(workdir: Path, case: str) -> None:
    write(workdir, *CASES[case])
    first = await plan_of(workdir)
    assert first.summary.create == len(first.actions)
    await converge(workdir)


async def test_agent_update_says_version_and_labels(workdir: Path) -> None:
    write(workdir, BASE, AGENT_FULL)
    await converge(workdir)
    write(
        workdir,
        BASE,
        AGENT_FULL.replace("line two", "line 2").replace("effort: low", "effort: high"),
    )
    plan = await plan_of(workdir)
    (update,) = plan.changes
    assert update.type == "update" and update.address == "agent.full"
    assert (update.from_version, update.to_version) == (1, 2)
    assert "model" in update.labels and "system prompt" in update.labels
    assert {c.path for c in update.changes} == {"model.effort.type", "system"}
    await converge(workdir)


@pytest.mark.parametrize(
    ("old", "new", "label"),
    [
        (
            'url: "https://docs.example.com/mcp"',
            'url: "https://docs2.example.com/mcp"',
            "MCP servers",
        ),
        ("          enabled: false\n", "          enabled: true\n", "tools"),
        ("skill_id: xlsx", "skill_id: pdf", "skills"),
    ],
)
async def test_tools_mcp_and_skills_updates_are_labelled_risky(
    workdir: Path, old: str, new: str, label: str
) -> None:
    write(workdir, BASE, AGENT_FULL)
    await converge(workdir)
    assert old in AGENT_FULL
    write(workdir, BASE, AGENT_FULL.replace(old, new, 1))
    plan = await plan_of(workdir)
    (update,) = plan.changes
    assert (update.from_version, update.to_version) == (1, 2)
    assert update.labels == (label, "risky")
    await converge(workdir)


async def test_metadata_only_label_and_removed_key_is_patched_away(workdir: Path) -> None:
    write(workdir, BASE, AGENT_FULL)
    await converge(workdir)
    write(
        workdir,
        BASE,
        AGENT_FULL.replace('metadata: {team: infra, tier: "1"}', "metadata: {team: infra}"),
    )
    plan = await plan_of(workdir)
    (update,) = plan.changes
    assert update.labels == ("metadata only",)
    assert update.body["metadata"] == {"tier": None}
    await converge(workdir)


@pytest.mark.parametrize(
    "field",
    ["description", "system", "tools", "mcp_servers", "skills", "execution_identity", "metadata"],
)
async def test_removing_an_optional_agent_field_clears_it(workdir: Path, field: str) -> None:
    write(workdir, BASE, AGENT_FULL)
    await converge(workdir)
    lines = textwrap.dedent(AGENT_FULL).strip().splitlines()
    drop = {field, "mcp_servers"} if field == "tools" else {field}
    kept: list[str] = []
    skipping = False
    for line in lines:
        if any(line.startswith(f"  {f}:") for f in drop):
            skipping = True
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        kept.append(line)
    text = "\n".join(kept)
    if field == "mcp_servers":  # the mcp_toolset must go with its server
        text = text.replace(
            "    - type: mcp_toolset\n      mcp_server_name: docs\n      configs:\n"
            "        - name: search\n          permission_policy: {type: always_allow}\n",
            "",
        )
    write(workdir, BASE, text)
    plan = await plan_of(workdir)
    assert [a.address for a in plan.changes] == ["agent.full"]
    await converge(workdir)


async def test_environment_config_change_updates_and_type_change_replaces(workdir: Path) -> None:
    write(workdir, BASE, ENV_FULL)
    await converge(workdir)
    write(workdir, BASE, ENV_FULL.replace("pip: [pandas, numpy]", "pip: [pandas]"))
    plan = await plan_of(workdir)
    (update,) = plan.changes
    assert update.type == "update"
    await converge(workdir)
    write(workdir, BASE, ENV_SELF_HOSTED.replace("name: onprem", "name: data"))
    plan = await plan_of(workdir)
    (replace,) = plan.changes
    assert replace.type == "replace" and "config.type" in replace.reason
    await converge(workdir)


async def test_rotated_secret_plans_a_sensitive_update(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(workdir, BASE, VAULT_FULL)
    await converge(workdir)
    monkeypatch.setenv("RT_TOKEN", "tok-2")
    plan = await plan_of(workdir)
    (update,) = plan.changes
    assert update.address == "vault.keys.credential.bearer"
    assert [(c.path, c.sensitive, c.old, c.new) for c in update.changes] == [
        ("auth.token", True, None, None)
    ]
    # the live object did not change: the manifest's secret did (never its value shown)
    assert update.reason == (
        "the manifest's secret auth.token changed since the last apply (its fingerprint "
        "differs from the one the lockfile recorded)"
    )
    await converge(workdir)


async def test_credential_key_change_replaces(workdir: Path) -> None:
    write(workdir, BASE, VAULT_FULL)
    await converge(workdir)
    write(
        workdir,
        BASE,
        VAULT_FULL.replace("https://mcp.example.com/mcp", "https://mcp2.example.com/mcp"),
    )
    plan = await plan_of(workdir)
    (replace,) = plan.changes
    assert replace.type == "replace" and replace.address == "vault.keys.credential.bearer"
    await converge(workdir)


async def test_pinned_deployment_keeps_its_version_and_latest_follows(workdir: Path) -> None:
    write(workdir, BASE, VAULT_FULL, DEPLOYMENT_FULL, DEPLOYMENT_MIN)
    await converge(workdir)
    write(
        workdir,
        BASE.replace("claude-haiku-4-5", "claude-sonnet-4-6"),
        VAULT_FULL,
        DEPLOYMENT_FULL,
        DEPLOYMENT_MIN,
    )
    plan = await plan_of(workdir)
    types = {a.address: a.type for a in plan.changes}
    assert types == {"agent.bot": "update", "deployment.adhoc": "update"}
    (move,) = plan.pin_moves
    assert (move.deployment, move.old, move.new, move.follows_latest) == (
        "deployment.adhoc",
        1,
        2,
        True,
    )
    (radius,) = plan.blast_radius
    impacts = {i.deployment: i.follows_latest for i in radius.deployments}
    assert impacts == {"deployment.adhoc": True, "deployment.nightly": False}
    await converge(workdir)
    from reconciler.state import read_lockfile

    lock = read_lockfile(workdir / "state" / "reconciler.lock")
    assert lock.resources["deployment.adhoc"].pins == {"agent.bot": 2}
    assert lock.resources["deployment.nightly"].pins == {"agent.bot": 1}


async def test_lost_lockfile_adopts_instead_of_twins(workdir: Path) -> None:
    write(workdir, BASE, VAULT_FULL, DEPLOYMENT_MIN)
    await converge(workdir)
    (workdir / "state" / "reconciler.lock").unlink()
    plan = await plan_of(workdir)
    assert plan.summary.create == 0
    # secrets cannot be read back: the credentials are re-sent once, everything else adopted
    assert {a.address for a in plan.changes} <= {
        "vault.keys.credential.bearer",
        "vault.keys.credential.envvar",
        "vault.keys.credential.oauth",
    }
    await converge(workdir)


async def test_removed_document_is_left_alone_without_prune(workdir: Path) -> None:
    write(workdir, BASE, ENV_FULL)
    await converge(workdir)
    write(workdir, BASE)
    plan = await plan_of(workdir)
    assert not plan.has_changes
    (note,) = plan.notes
    assert note.address == "environment.data" and "--prune" in note.message
    pruned = await plan_of(workdir, prune=True)
    (archive,) = pruned.changes
    assert archive.type == "archive" and archive.address == "environment.data"
    result = await apply(settings(workdir), PlanChoices(prune=True))
    assert result is not None and result.report.ok
    plan = await plan_of(workdir, prune=True)
    assert not plan.has_changes and not plan.notes


async def test_the_choices_are_also_taken_one_keyword_each(workdir: Path) -> None:
    """The library API before ``PlanChoices``: ``make_plan(settings, prune=True)`` and
    ``apply(settings, targets=[...])`` keep working; a keyword that is no choice is refused."""
    write(workdir, BASE, ENV_FULL)
    await converge(workdir)
    write(workdir, BASE)
    (archive,) = (await make_plan(settings(workdir), prune=True)).plan.changes
    assert archive.address == "environment.data"
    targeted = await make_plan(settings(workdir), prune=True, targets=["agent.bot"])
    assert not targeted.plan.changes
    with pytest.raises(TypeError):
        await make_plan(settings(workdir), prnue=True)
    result = await apply(settings(workdir), PlanChoices(), prune=True)
    assert result is not None and result.report.ok
    assert [(a.address, a.type) for a in result.plan.changes] == [("environment.data", "archive")]


async def test_protected_resource_is_never_archived(workdir: Path) -> None:
    write(workdir, BASE, ENV_FULL.replace("name: data", "name: data\nprotect: true"))
    await converge(workdir)
    write(workdir, BASE)
    plan = await plan_of(workdir, prune=True)
    assert not plan.changes
    assert "protected" in plan.notes[0].message


async def test_ignore_changes_hides_out_of_band_metadata(workdir: Path) -> None:
    write(
        workdir,
        BASE,
        ENV_FULL.replace("name: data", "name: data\nignore_changes: [metadata.owner, description]"),
    )
    await converge(workdir)
    from reconciler.provider import embedded_client
    from reconciler.state import read_lockfile

    env_id = read_lockfile(workdir / "state" / "reconciler.lock").resources["environment.data"].id
    async with embedded_client(workdir / ".reconciler" / "provider.db") as c:
        await c.environments.update(env_id, {"metadata": {"owner": "bob"}, "description": "x"})
    plan = await plan_of(workdir)
    assert not plan.has_changes


async def test_target_limits_plan_to_address_and_dependencies(workdir: Path) -> None:
    write(workdir, BASE, VAULT_FULL, DEPLOYMENT_MIN, ENV_FULL)
    plan = await plan_of(workdir, targets=("deployment.adhoc",))
    assert sorted(a.address for a in plan.actions) == [
        "agent.bot",
        "deployment.adhoc",
        "environment.env",
    ]


async def test_removing_environment_packages_and_networking_resets_them(workdir: Path) -> None:
    write(workdir, BASE, ENV_FULL)
    await converge(workdir)
    write(
        workdir,
        BASE,
        "kind: Environment\nname: data\nspec:\n  description: data stack\n  scope: organization\n  metadata: {team: data}\n",
    )
    plan = await plan_of(workdir)
    (update,) = plan.changes
    assert update.body["config"]["packages"]["pip"] == []
    assert update.body["config"]["networking"] == {"type": "unrestricted"}
    await converge(workdir)


async def test_deployment_repository_token_is_a_secret(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_repo = DEPLOYMENT_MIN.replace(
        "  initial_events:",
        "  resources:\n    - type: github_repository\n      url: https://github.com/example/repo\n"
        "      authorization_token: {from_env: RT_REPO}\n  initial_events:",
    )
    monkeypatch.setenv("RT_REPO", "repo-token-1")
    write(workdir, BASE, with_repo)
    plan = await plan_of(workdir)
    create = plan.action("deployment.adhoc")
    assert create is not None and create.type == "create"
    assert create.body["resources"][0]["authorization_token"] == {
        "$secret": "resources[0].authorization_token"
    }
    await converge(workdir)
    monkeypatch.setenv("RT_REPO", "repo-token-2")
    (update,) = (await plan_of(workdir)).changes
    assert [c.path for c in update.changes] == ["resources[0].authorization_token"]
    await converge(workdir)
