"""Loading manifests: the example manifests, the ManifestSet API, the models and the schema."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from reconciler.errors import ManifestError
from reconciler.manifest import (
    AgentPin,
    AgentSpec,
    DeploymentSpec,
    Document,
    EnvironmentSpec,
    ManifestSet,
    SourceLocation,
    VaultSpec,
    load_manifests,
    manifest_json_schema,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "manifests"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the examples


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> ManifestSet:
    monkeypatch.chdir(REPO)
    return load_manifests("manifests")


def test_example_manifests_load(examples: ManifestSet) -> None:
    assert [d.address for d in examples.documents] == [
        "agent.coder",
        "agent.reviewer",
        "deployment.nightly-review",
        "environment.python-data",
        "memory_store.review-notes",
        "skill.review-checklist",
        "vault.github",
    ]
    assert examples.base_dir == Path("manifests")


def test_example_deployment_references_resolve(examples: ManifestSet) -> None:
    deployment = examples.get("deployment.nightly-review")
    assert deployment is not None and isinstance(deployment.spec, DeploymentSpec)
    spec = deployment.spec
    assert spec.agent == AgentPin(ref="reviewer", version=None)
    assert spec.agent.follows_latest
    assert examples.get(f"agent.{spec.agent.ref}") is not None
    assert examples.get(f"environment.{spec.environment}") is not None
    assert [examples.get(f"vault.{v}") is not None for v in spec.vaults] == [True]
    assert spec.schedule is not None and spec.schedule.timezone == "Europe/Berlin"


def test_example_secret_is_a_file_beside_the_manifests(examples: ManifestSet) -> None:
    ((address, vault, credential),) = examples.credentials()
    assert address == "vault.github.credential.github-mcp"
    assert vault.address == "vault.github"
    assert credential.remote_name == "GitHub MCP token"
    assert examples.secret_refs(address) == {"auth.token": credential.auth.token}  # type: ignore[union-attr]
    assert examples.resolve_secret(address, "auth.token") == "example-token-not-a-real-secret"


def test_example_locations(examples: ManifestSet) -> None:
    assert examples.location("agent.coder") == SourceLocation("manifests/agents.yaml", 4, 1)
    assert examples.location("agent.reviewer") == SourceLocation("manifests/agents.yaml", 34, 1)
    assert str(examples.location("agent.reviewer", "model")) == "manifests/agents.yaml:37:3"
    assert str(examples.location("agent.reviewer", "spec.model.effort")) == (
        "manifests/agents.yaml:39:5"
    )
    assert examples.location("vault.github.credential.github-mcp", "auth.token") == (
        SourceLocation("manifests/vaults.yaml", 18, 9)
    )
    # not written: the nearest written ancestor (here `spec:`)
    assert str(examples.location("agent.reviewer", "tools[3].name")) == (
        "manifests/agents.yaml:36:1"
    )
    with pytest.raises(KeyError):
        examples.location("agent.nope")
    with pytest.raises(KeyError):
        examples.location("vault.github.credential.nope")


def test_example_remote_names_default_to_document_names(examples: ManifestSet) -> None:
    assert {d.address: d.remote_name for d in examples} == {
        "agent.coder": "coder",
        "agent.reviewer": "reviewer",
        "deployment.nightly-review": "nightly-review",
        "environment.python-data": "python-data",
        "memory_store.review-notes": "review-notes",
        "skill.review-checklist": "review-checklist",
        "vault.github": "GitHub",
    }


def test_locations_are_beside_the_spec_not_inside(examples: ManifestSet) -> None:
    dumped = json.dumps([d.model_dump(mode="json") for d in examples])
    assert "agents.yaml" not in dumped and "line" not in dumped


# --------------------------------------------------------------------------- the set


def test_directory_is_read_recursively_in_sorted_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "m/z.yaml", "kind: Agent\nname: zed\nspec: {model: m}\n")
    write(tmp_path, "m/a/b.yml", "kind: Agent\nname: bee\nspec: {model: m}\n")
    write(tmp_path, "m/secrets/token.txt", "not yaml: [")
    write(tmp_path, "m/.hidden/x.yaml", "not yaml: [")
    write(tmp_path, "m/README.md", "# not yaml: [")
    manifests = load_manifests("m")
    assert [d.address for d in manifests] == ["agent.bee", "agent.zed"]
    assert manifests.location("agent.bee").file == "m/a/b.yml"
    assert len(manifests) == 2 and "agent.zed" in manifests
    assert manifests.by_kind("agent") == manifests.by_kind("Agent")
    assert manifests.by_kind("Vault") == ()


def test_single_file_and_multi_document_and_empty_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        "all.yaml",
        """\
        # comments only before the first document
        ---
        ---
        kind: Environment
        name: base
        spec: {}
        ---
        null
        ---
        kind: Vault
        name: empty
        spec: {}
        ...
        """,
    )
    manifests = load_manifests(tmp_path / "all.yaml")
    assert [d.address for d in manifests] == ["environment.base", "vault.empty"]
    assert manifests.base_dir == tmp_path


def test_empty_spec_is_a_missing_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "v.yaml", "kind: Vault\nname: empty\nspec:\n")
    with pytest.raises(ManifestError) as info:
        load_manifests("v.yaml")
    assert [str(i) for i in info.value.issues] == [
        "v.yaml:3:6: spec: expected a mapping, got null (an empty value)"
    ]


def test_empty_directory_is_an_empty_set(tmp_path: Path) -> None:
    assert load_manifests(tmp_path).documents == ()


def test_manifest_set_from_documents_for_library_users() -> None:
    docs = [
        Document(kind="Vault", name="v", spec=VaultSpec()),
        Document(kind="Agent", name="a", spec=AgentSpec(model="m")),
    ]
    manifests = ManifestSet(docs)
    assert [d.address for d in manifests] == ["agent.a", "vault.v"]
    assert manifests.location("agent.a") == SourceLocation("<memory>", 0, 0)
    with pytest.raises(ValueError, match="duplicate"):
        ManifestSet(docs + docs)


# --------------------------------------------------------------------------- models


def test_document_from_python_uses_the_spec_model_of_its_kind() -> None:
    doc = Document.model_validate({"kind": "Environment", "name": "e", "spec": {}})
    assert isinstance(doc.spec, EnvironmentSpec)
    doc = Document.model_validate({"kind": "Vault", "name": "v", "spec": {"display_name": "V"}})
    assert isinstance(doc.spec, VaultSpec) and doc.remote_name == "V"
    with pytest.raises(ValueError):
        Document(kind="Agent", name="a", spec=VaultSpec())  # type: ignore[arg-type]


def test_documents_are_frozen() -> None:
    doc = Document(kind="Agent", name="a", spec=AgentSpec(model="m"))
    with pytest.raises(ValueError):
        doc.name = "b"  # type: ignore[misc]
    with pytest.raises(ValueError):
        doc.spec.model = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("written", "pin"),
    [
        ("coder", AgentPin(ref="coder", version=None)),
        ("{ref: coder}", AgentPin(ref="coder", version=None)),
        ("{ref: coder, version: latest}", AgentPin(ref="coder", version=None)),
        ("{ref: coder, version: 5}", AgentPin(ref="coder", version=5)),
    ],
)
def test_agent_pin_forms(written: str, pin: AgentPin) -> None:
    spec = DeploymentSpec.model_validate(
        {
            "agent": yaml.safe_load(written),
            "environment": "e",
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "x"}]}
            ],
        }
    )
    assert spec.agent == pin


def test_scalars_follow_yaml_1_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`NO` is Norway, dates stay strings, numbers the wire wants as strings are accepted."""
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        "m.yaml",
        """\
        kind: Agent
        name: a
        spec:
          model: m
          tools:
            - type: agent_toolset_20260401
              configs:
                - name: web_search
                  user_location: {type: approximate, country: NO, region: on, city: yes}
          skills:
            - {type: custom, skill_id: skill_01, version: 2}
          metadata: {since: 2026-05-01, enabled: "true"}
        ---
        kind: Vault
        name: v
        spec:
          credentials:
            - name: c
              auth:
                type: mcp_oauth
                mcp_server_url: https://mcp.example.com
                access_token: {from_env: TOKEN}
                expires_at: 2026-06-01T00:00:00Z
        """,
    )
    manifests = load_manifests("m.yaml")
    agent = manifests.get("agent.a")
    assert agent is not None and isinstance(agent.spec, AgentSpec)
    dumped = agent.spec.model_dump(exclude_none=True)
    location = dumped["tools"][0]["configs"][0]["user_location"]
    assert location == {"type": "approximate", "country": "NO", "region": "on", "city": "yes"}
    assert dumped["skills"][0]["version"] == "2"
    assert dumped["metadata"] == {"since": "2026-05-01", "enabled": "true"}
    ((_, _, credential),) = manifests.credentials()
    assert credential.auth.expires_at == "2026-06-01T00:00:00Z"  # type: ignore[union-attr]


def test_dollar_dollar_brace_is_a_literal(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "kind: Agent\nname: a\nspec: {model: m, system: 'echo $${HOME}'}\n")
    agent = load_manifests(tmp_path).get("agent.a")
    assert agent is not None and isinstance(agent.spec, AgentSpec)
    assert agent.spec.system == "echo ${HOME}"


def test_budget_amount_may_be_written_as_a_number() -> None:
    spec = DeploymentSpec.model_validate(
        {
            "agent": "a",
            "environment": "e",
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "x"}]}
            ],
            "budget": {"type": "limit", "max_list_cost": {"amount": 2500, "currency": "USD"}},
        }
    )
    assert spec.budget is not None and spec.budget.max_list_cost.amount == "2500"


def test_ignore_changes_paths_are_relative_to_spec() -> None:
    doc = Document(
        kind="Agent",
        name="a",
        spec=AgentSpec(model="m"),
        ignore_changes=("metadata.owner", "system", "tools"),
    )
    assert doc.ignore_changes == ("metadata.owner", "system", "tools")
    with pytest.raises(ValueError, match="relative to spec: 'system'"):
        Document(kind="Agent", name="a", spec=AgentSpec(model="m"), ignore_changes=("spec.system",))


def test_rich_agent_spec_validates() -> None:
    spec = AgentSpec.model_validate(
        {
            "model": {"id": "claude-opus-4-6", "effort": {"type": "max"}, "speed": "fast"},
            "tools": [
                {
                    "type": "agent_toolset_20260401",
                    "default_config": {"enabled": False},
                    "configs": [
                        {"name": "read", "type": "read", "enabled": True},
                        {
                            "name": "web_fetch",
                            "allowed_domains": ["docs.python.org"],
                            "max_content_tokens": 5000,
                            "url_sources": {
                                "user_input": "all",
                                "client_tool_results": {
                                    "type": "only",
                                    "tools": [{"type": "tool_reference", "name": "lookup"}],
                                },
                                "server_tool_results": "none",
                            },
                        },
                    ],
                },
                {
                    "type": "custom",
                    "name": "lookup",
                    "description": "Look a thing up.",
                    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            ],
            "skills": [{"type": "anthropic", "skill_id": "xlsx"}],
            "execution_identity": {"type": "aws_role", "role_arn": "arn:aws:iam::1:role/x"},
            "multiagent": {
                "type": "multiagent_20261001",
                "advisor": {"type": "enabled", "model": "claude-opus-4-6"},
                "subagents": {
                    "type": "enabled",
                    "predefined_agents": ["agent_01", {"type": "self"}],
                },
            },
        }
    )
    assert spec.tools is not None and len(spec.tools) == 2


# --------------------------------------------------------------------------- JSON Schema


def test_schema_is_valid_json_schema_and_accepts_the_examples() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = manifest_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    count = 0
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert list(validator.iter_errors(doc)) == [], path
            count += 1
    assert count == 7


def test_schema_rejects_what_the_loader_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(manifest_json_schema())
    bad = [
        {"kind": "Agent", "name": "a", "spec": {"modle": "m"}},
        {"kind": "Agnet", "name": "a", "spec": {}},
        {"kind": "Agent", "name": "A B", "spec": {"model": "m"}},
        {
            "kind": "Vault",
            "name": "v",
            "spec": {
                "credentials": [
                    {
                        "name": "c",
                        "auth": {
                            "type": "static_bearer",
                            "token": "inline",
                            "mcp_server_url": "https://x.example.com",
                        },
                    }
                ]
            },
        },
        {
            "kind": "Deployment",
            "name": "d",
            "spec": {
                "agent": {"ref": "a", "version": 0},
                "environment": "e",
                "initial_events": [
                    {"type": "user.message", "content": [{"type": "text", "text": "x"}]}
                ],
            },
        },
        {"kind": "Agent", "name": "a", "spec": {"model": "m", "metadata": {"managed-by": "x"}}},
    ]
    for doc in bad:
        assert list(validator.iter_errors(doc)), doc


def test_schema_describes_fields_and_selects_spec_by_kind() -> None:
    schema = manifest_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["kind"]["enum"] == [
        "Agent",
        "Environment",
        "Vault",
        "Deployment",
        "MemoryStore",
        "Skill",
        "Policy",
    ]
    targets = {
        b["if"]["properties"]["kind"]["const"]: b["then"]["properties"]["spec"]["$ref"]
        for b in schema["allOf"]
    }
    assert targets == {
        "Agent": "#/$defs/AgentSpec",
        "Environment": "#/$defs/EnvironmentSpec",
        "Vault": "#/$defs/VaultSpec",
        "Deployment": "#/$defs/DeploymentSpec",
        "Policy": "#/$defs/PolicySpec",
        "MemoryStore": "#/$defs/MemoryStoreSpec",
        "Skill": "#/$defs/SkillSpec",
    }
    agent = schema["$defs"]["AgentSpec"]
    assert agent["required"] == ["model"]
    assert "description" in agent and "description" in agent["properties"]["system"]
    json.dumps(schema)  # serialisable as is
