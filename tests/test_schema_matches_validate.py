"""The JSON Schema (`reconciler schema`) refuses what `validate` refuses, where JSON Schema
can say it, and never refuses what `validate` accepts: an editor user relies on it.

Each case is one document added to a project that also declares an Agent `helper`; it is
run through `reconciler validate` and checked against `reconciler schema`'s output, both as
a user (or their editor) would.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.gitops import cli, make_workdir, ok

jsonschema = pytest.importorskip("jsonschema")

HELPER = "kind: Agent\nname: helper\nspec: {model: claude-sonnet-4-6}\n"

AGENT = "kind: Agent\nname: a\n{extra}spec:\n  model: claude-sonnet-4-6\n{spec}"


def agent(spec: str = "", extra: str = "") -> str:
    return AGENT.format(spec=textwrap.indent(textwrap.dedent(spec), "  "), extra=extra)


def ignoring(kind: str, path: str) -> str:
    specs = {
        "Agent": "spec: {model: claude-sonnet-4-6}",
        "Environment": "spec: {config: {type: cloud}}",
        "Deployment": "spec:\n  agent: helper\n  environment: e\n  initial_events: "
        "[{type: user.message, content: [{type: text, text: go}]}]",
        "Vault": "spec: {}",
        "MemoryStore": "spec: {}",
    }
    env = "kind: Environment\nname: e\nspec: {config: {type: cloud}}\n---\n"
    head = env if kind == "Deployment" else ""
    return f"{head}kind: {kind}\nname: x\nignore_changes: [{json.dumps(path)}]\n{specs[kind]}\n"


def credential(hosts: str) -> str:
    return textwrap.dedent(
        f"""\
        kind: Vault
        name: v
        spec:
          credentials:
            - name: c
              auth:
                type: environment_variable
                secret_name: TOKEN
                secret_value: {{from_env: TOKEN}}
                networking: {{type: limited, allowed_hosts: {hosts}}}
        """
    )


def environment(hosts: str) -> str:
    return (
        "kind: Environment\nname: e\nspec:\n  config:\n    type: cloud\n"
        f"    networking: {{type: limited, allowed_hosts: {hosts}}}\n"
    )


def web(tool: str, domains: str) -> str:
    return agent(
        f"""\
        tools:
          - type: agent_toolset_20260401
            configs:
              - {{name: {tool}, allowed_domains: {domains}}}
        """
    )


def skill(display_name: str) -> str:
    return f"kind: Skill\nname: s\nspec: {{source: s, display_name: {display_name}}}\n"


def seed(path: str) -> str:
    return f"kind: MemoryStore\nname: m\nspec: {{memories: [{{path: {path}, content: x}}]}}\n"


REFUSED = {
    "ignore-into-tools": ignoring("Agent", "tools.configs"),
    "ignore-into-mcp-servers": ignoring("Agent", "mcp_servers.url"),
    "ignore-into-skills": ignoring("Agent", "skills.version"),
    "ignore-into-roster": ignoring("Agent", "multiagent.agents.id"),
    "ignore-into-subagents": ignoring("Agent", "multiagent.subagents.predefined_agents.id"),
    "ignore-into-initial-events": ignoring("Deployment", "initial_events.content"),
    "ignore-into-vaults": ignoring("Deployment", "vaults.x"),
    "ignore-into-hosts": ignoring("Environment", "config.networking.allowed_hosts.x"),
    "ignore-into-pip": ignoring("Environment", "config.packages.pip.x"),
    "ignore-into-credentials": ignoring("Vault", "credentials.name"),
    "ignore-into-memories": ignoring("MemoryStore", "memories.path"),
    "interpolation-system": agent("system: 'Use ${REPO}'\n"),
    "interpolation-nested": agent("metadata: {team: '${TEAM}'}\n"),
    "interpolation-list": agent(
        "tools: [{type: custom, name: t, description: 'For ${X}', input_schema: {type: object}}]\n"
    ),
    "interpolation-after-text": agent("description: 'a$b ${X}'\n"),
    "interpolation-policy": "kind: Policy\nname: p\nspec:\n  rules:\n    - kinds: [Agent]\n"
    "      expression: 'true'\n      message: 'fix ${X}'\n",
    "roster-manifest-name": agent("multiagent: {type: coordinator, agents: [helper]}\n"),
    "roster-not-an-id": agent("multiagent: {type: coordinator, agents: [coder-bot]}\n"),
    "subagent-manifest-name": agent(
        "multiagent:\n  type: multiagent_20261001\n"
        "  subagents: {type: enabled, predefined_agents: [helper]}\n"
    ),
    "credential-host-url": credential("['https://api.example.com/']"),
    "credential-host-port": credential("['api.example.com:443']"),
    "credential-host-ipv6": credential("['::1']"),
    "credential-host-bad-ipv4": credential("['300.1.1.1']"),
    "credential-host-leading-zero": credential("['192.0.2.01']"),
    "credential-host-dash": credential("['-x.example.com']"),
    "credential-host-underscore": credential("['a_b.example.com']"),
    "credential-host-empty-label": credential("['a..example.com']"),
    "credential-host-long-label": credential(f"['{'a' * 64}.com']"),
    "environment-host-url": environment("['https://x.com/']"),
    "environment-host-path": environment("[x.com/api]"),
    "fetch-domain-path": web("web_fetch", "[docs.example.com/api]"),
    "fetch-domain-scheme": web("web_fetch", "['https://docs.example.com']"),
    "search-domain-port": web("web_search", "['docs.example.com:8080/api']"),
    "skill-display-name-blank": skill("' '"),
    "skill-display-name-two-lines": skill('"a\\nb"'),
    "skill-display-name-trailing-newline": skill('"a\\n"'),
    "skill-display-name-carriage-return": skill('"a\\rb"'),
    "seed-path-empty-segment": seed("//x"),
    "seed-path-trailing-slash": seed("/x/"),
    "seed-path-root": seed("/"),
    "seed-path-dot": seed("/a/./b"),
    "seed-path-dotdot": seed("/a/.."),
    "seed-path-control": seed('"/a\\tb"'),
    "seed-path-trailing-newline": seed('"/a\\n"'),
    "seed-path-21-segments": seed("/a" * 21),
    "memory-store-name-control": "kind: MemoryStore\nname: m\nspec: {name: \"a\\tb\"}\n",
}

ACCEPTED = {
    "ignore-a-list": ignoring("Agent", "tools"),
    "ignore-model-key": ignoring("Agent", "model.effort"),
    "ignore-a-metadata-key": ignoring("Agent", "metadata.owner"),
    "ignore-a-numbered-metadata-key": ignoring("Agent", "metadata.2026"),
    "ignore-roster": ignoring("Agent", "multiagent.agents"),
    "ignore-advisor-model": ignoring("Agent", "multiagent.advisor.model"),
    "ignore-predefined": ignoring("Agent", "multiagent.subagents.predefined_agents"),
    "ignore-networking": ignoring("Environment", "config.networking"),
    "ignore-hosts": ignoring("Environment", "config.networking.allowed_hosts"),
    "ignore-pip": ignoring("Environment", "config.packages.pip"),
    "ignore-agent-pin": ignoring("Deployment", "agent.version"),
    "ignore-schedule": ignoring("Deployment", "schedule.timezone"),
    "ignore-credentials": ignoring("Vault", "credentials"),
    "ignore-display-name": ignoring("Vault", "display_name"),
    "escaped-interpolation": agent("system: 'Use $${REPO} and $$${X}, costs $5 {x} $ {y}'\n"),
    "dollar-brace-apart": agent("description: '$ {x} ${ }'\n".replace("${ }", "$ { }")),
    "roster-id": agent("multiagent: {type: coordinator, agents: [agent_01Ab, {type: self}]}\n"),
    "subagent-id": agent(
        "multiagent:\n  type: multiagent_20261001\n"
        "  subagents: {type: enabled, predefined_agents: [agent_01Ab]}\n"
    ),
    "credential-hosts": credential(
        "[api.example.com, '*.example.com', 192.0.2.1, localhost, 0.0.0.0, 1a.2.3.4, "
        f"'{'a' * 63}.com', 255.255.255.255]"
    ),
    "environment-hosts": environment("[api.example.com, '*.example.org', 192.0.2.1, '::1']"),
    "fetch-domain": web("web_fetch", "[docs.example.com, 10.0.0.1]"),
    "search-domain-path": web("web_search", "[docs.example.com/api, 'example.com/a?b=c']"),
    "skill-display-name": skill("' Review checklist '"),
    "seed-paths": "kind: MemoryStore\nname: m\nspec:\n  memories:\n"
    + "".join(f"    - {{path: {p}, content: x}}\n" for p in ("/a", "/a/..b/.c.md", "/a" * 20)),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = make_workdir(tmp_path, monkeypatch, manifests=False)
    (work / "manifests/s").mkdir(parents=True)  # the directory of the Skill cases
    (work / "manifests/s/SKILL.md").write_text("---\nname: s\ndescription: d\n---\n")
    return work


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    schema = json.loads(ok("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(validator: Any, text: str) -> list[str]:
    return [e.message for d in yaml.safe_load_all(text) if d for e in validator.iter_errors(d)]


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_the_schema_refuses_what_validate_refuses(workdir: Path, validator: Any, text: str) -> None:
    (workdir / "manifests/a.yaml").write_text(HELPER + "---\n" + text)
    result = cli("validate")
    assert result.exit_code == 1, result.stdout
    assert schema_errors(validator, text) != [], result.stderr


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_schema_accepts_what_validate_accepts(workdir: Path, validator: Any, text: str) -> None:
    (workdir / "manifests/a.yaml").write_text(HELPER + "---\n" + text)
    result = cli("validate")
    assert result.exit_code == 0, result.stderr
    assert schema_errors(validator, text) == []
