"""``engine.derive`` as data: live objects -> manifest documents, names, canonical order."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.derive import derive_documents, env_var_name, slugify
from reconciler.engine.keyorder import canonical, key_order
from reconciler.engine.unmanaged import Unmanaged
from reconciler.manifest import Document


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Code Reviewer (v2)", "code-reviewer-v2"),
        ("  --Data__Science--  ", "data__science"),
        ("Ünïcode only", "unicode-only"),
        ("ünïcödé agent", "unicode-agent"),
        ("Straße Œuvre Søren", "strasse-oeuvre-soren"),
        ("代码审查", "agent"),
        ("!!!", "agent"),
        ("", "agent"),
        (None, "agent"),
        ("x" * 80, "x" * 64),
    ],
)
def test_slugify(text: str | None, slug: str) -> None:
    assert slugify(text, "agent") == slug


def test_env_var_names_are_upper_snake() -> None:
    assert env_var_name("github-tokens", "mcp.token", "token") == "GITHUB_TOKENS_MCP_TOKEN_TOKEN"


def test_key_order() -> None:
    assert key_order((), ["spec", "kind", "protect", "name"], "Agent") == [
        "kind",
        "name",
        "protect",
        "spec",
    ]
    assert key_order(("spec",), ["metadata", "system", "model", "extra"], "Agent") == [
        "model",
        "system",
        "metadata",
        "extra",
    ]
    assert key_order(("spec", "credentials", 0), ["auth", "name"], "Vault") == ["name", "auth"]
    assert key_order(("spec", "tools", 0), ["configs", "type"], "Agent") == ["type", "configs"]
    assert key_order(("spec", "metadata"), ["b", "a"], "Agent") == ["b", "a"]
    assert key_order((), ["b", "a"], None) == ["b", "a"]  # not a manifest


def test_canonical_orders_nested_data() -> None:
    doc = {
        "spec": {"system": "s", "model": {"effort": "high", "id": "m"}},
        "name": "a",
        "kind": "Agent",
    }
    assert canonical(doc) == {
        "kind": "Agent",
        "name": "a",
        "spec": {"model": {"id": "m", "effort": "high"}, "system": "s"},
    }
    assert list(canonical(doc)["spec"]["model"]) == ["id", "effort"]


def live_agent(agent_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "agent",
        "id": agent_id,
        "version": 1,
        "name": name,
        "description": None,
        "system": None,
        "model": {
            "id": "claude-haiku-4-5",
            "effort": {"type": "low"},
            "inference_geo": None,
            "speed": "standard",
        },
        "tools": [],
        "mcp_servers": [],
        "skills": [],
        "execution_identity": {"type": "service_account"},
        "multiagent": None,
        "metadata": {},
        **fields,
    }


def test_names_are_unique_per_kind_and_avoid_taken_ones() -> None:
    agents = [
        Unmanaged("agent", live_agent("agent_1", "Helper")),
        Unmanaged("agent", live_agent("agent_2", "helper")),
        Unmanaged("agent", live_agent("agent_3", "coder")),
        Unmanaged("agent", live_agent("agent_4", "tester")),
    ]
    derived = derive_documents(agents, {}, taken={"agent": {"coder"}})
    names = {d.resources[0].remote_id: d.name for d in derived.documents}
    assert names == {
        "agent_1": "helper",
        "agent_2": "helper-2",
        "agent_3": "coder-2",
        "agent_4": "tester",
    }
    by_name = {d.name: d.data for d in derived.documents}
    assert by_name["helper"]["spec"]["name"] == "Helper"  # the remote name is kept
    assert by_name["helper-2"]["spec"]["name"] == "helper"
    assert "name" not in by_name["tester"]["spec"]  # the document name is the remote name
    assert by_name["coder-2"]["spec"] == {
        "name": "coder",
        "model": {"id": "claude-haiku-4-5", "effort": "low"},
    }
    for doc in derived.documents:
        Document.model_validate(doc.data)


def test_an_object_tagged_by_this_project_keeps_its_address_name() -> None:
    tagged = Unmanaged("agent", live_agent("agent_1", "Whatever"), tagged="agent.reviewer")
    [doc] = derive_documents([tagged], {}).documents
    assert doc.address == "agent.reviewer"


def test_a_deployment_refers_by_name_and_pins_the_version_it_runs() -> None:
    deployment = {
        "type": "deployment",
        "id": "depl_1",
        "name": "nightly",
        "description": None,
        "agent": {"type": "agent", "id": "agent_1", "version": 4},
        "environment_id": "env_managed",
        "vault_ids": [],
        "initial_events": [{"type": "user.message", "content": [{"type": "text", "text": "go"}]}],
        "resources": [],
        "schedule": {
            "type": "cron",
            "expression": "0 2 * * *",
            "timezone": "UTC",
            "last_run_at": None,
            "upcoming_runs_at": [],
        },
        "budget": None,
        "metadata": {"owner": "me", "managed-by": "someone-else"},
        "status": "active",
    }
    derived = derive_documents(
        [Unmanaged("agent", live_agent("agent_1", "coder")), Unmanaged("deployment", deployment)],
        {},
        known={("environment", "env_managed"): "python-data"},
    )
    dep = next(d for d in derived.documents if d.kind == "Deployment")
    assert dep.data["spec"] == {
        "agent": {"ref": "coder", "version": 4},
        "environment": "python-data",
        "initial_events": deployment["initial_events"],
        "schedule": {"type": "cron", "expression": "0 2 * * *", "timezone": "UTC"},
        "metadata": {"owner": "me"},  # the reserved ownership keys are never written
    }
    assert dep.resources[0].pins == {"agent.coder": 4}
    assert dep.refs == ("agent.coder", "environment.python-data")

    orphan = derive_documents([Unmanaged("deployment", deployment)], {})
    assert orphan.documents == ()
    [skipped] = orphan.skipped
    assert "agent agent_1" in skipped.reason and "environment env_managed" in skipped.reason


def test_credentials_go_inside_their_vault_with_secret_placeholders() -> None:
    vault = {"type": "vault", "id": "vlt_1", "display_name": "GitHub", "metadata": {}}
    creds = [
        {
            "type": "vault_credential",
            "id": "vcrd_1",
            "vault_id": "vlt_1",
            "display_name": None,
            "metadata": {},
            "auth": {"type": "static_bearer", "mcp_server_url": "https://mcp.example.com/mcp"},
            "archived_at": None,
        },
        {
            "type": "vault_credential",
            "id": "vcrd_2",
            "vault_id": "vlt_1",
            "display_name": "old",
            "metadata": {},
            "auth": {"type": "static_bearer", "mcp_server_url": "https://old.example.com"},
            "archived_at": "2026-01-01T00:00:00Z",
        },
    ]
    derived = derive_documents([Unmanaged("vault", vault)], {"vlt_1": creds})
    [doc] = derived.documents
    assert doc.data["spec"] == {
        "display_name": "GitHub",
        "credentials": [
            {
                "name": "mcp-example-com",  # no display name: named after its server
                "auth": {
                    "type": "static_bearer",
                    "mcp_server_url": "https://mcp.example.com/mcp",
                    "token": {"from_env": "GITHUB_MCP_EXAMPLE_COM_TOKEN"},
                },
            }
        ],
    }
    [cred] = [r for r in doc.resources if r.kind == "credential"]
    assert (cred.address, cred.parent_id) == ("vault.github.credential.mcp-example-com", "vlt_1")
    assert cred.fill == {"display_name": "mcp-example-com"}  # so the live object matches
    [secret] = derived.secrets
    assert (secret.path, secret.variable) == ("auth.token", "GITHUB_MCP_EXAMPLE_COM_TOKEN")
    Document.model_validate(doc.data)


def test_credentials_of_managed_vaults_and_duplicates_are_skipped_with_a_reason() -> None:
    cred = {"type": "vault_credential", "id": "vcrd_9", "vault_id": "vlt_managed", "auth": {}}
    twin = live_agent("agent_2", "coder")
    derived = derive_documents(
        [Unmanaged("credential", cred), Unmanaged("agent", twin, "agent.coder", "agent_1")], {}
    )
    assert derived.documents == ()
    reasons = {s.remote_id: s.reason for s in derived.skipped}
    assert "managed vault vlt_managed" in reasons["vcrd_9"]
    assert "a duplicate of agent.coder (agent_1)" == reasons["agent_2"]
