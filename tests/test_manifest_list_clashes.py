"""Every clash in one list is said in one run: two pairs of credentials sharing a key, two
repeated names, two repeated seeds... each at its own file:line:col (STYLE.md habit 4)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main


def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    result = CliRunner().invoke(main, ["-f", "m.yaml", "validate"], env={"T": "x"})
    return result.exit_code, result.output


def test_every_credential_clash_of_a_vault_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vault where c/d share secret_name X, b/e share an MCP URL and two are named e said
    only the first clash; fixing it and running again showed the next, one per run."""
    code, out = validate(
        tmp_path,
        monkeypatch,
        """\
        kind: Vault
        name: v
        spec:
          credentials:
            - name: b
              auth: {type: static_bearer, token: {from_env: T}, mcp_server_url: "https://a.example.com/mcp"}
            - name: c
              auth: {type: environment_variable, secret_name: X, secret_value: {from_env: T}, networking: {type: unrestricted}}
            - name: d
              auth: {type: environment_variable, secret_name: X, secret_value: {from_env: T}, networking: {type: unrestricted}}
            - name: e
              auth: {type: static_bearer, token: {from_env: T}, mcp_server_url: "https://A.example.com/mcp"}
            - name: e
              auth: {type: static_bearer, token: {from_env: T}, mcp_server_url: "https://b.example.com/mcp"}
        """,
    )
    assert code == 1, out
    assert "3 errors" in out
    assert (
        "m.yaml:10:55: spec.credentials[2].auth.secret_name: secret_name X is already used by "
        "credentials[1]"
    ) in out
    assert (
        "m.yaml:12:73: spec.credentials[3].auth.mcp_server_url: mcp_server_url "
        "https://A.example.com/mcp is already used by credentials[0]"
    ) in out
    assert "m.yaml:13:13: spec.credentials[4].name: credential name 'e' is used twice" in out


def test_every_repeat_in_an_agents_lists_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two custom tools declared twice, two MCP servers declared twice, two skills listed
    twice: each list said only its first repeat."""
    code, out = validate(
        tmp_path,
        monkeypatch,
        """\
        kind: Agent
        name: a
        spec:
          model: claude-sonnet-4-6
          skills:
            - {type: anthropic, skill_id: xlsx}
            - {type: anthropic, skill_id: pdf}
            - {type: anthropic, skill_id: xlsx}
            - {type: anthropic, skill_id: pdf}
          mcp_servers:
            - {type: url, name: s, url: "https://s.example.com/mcp"}
            - {type: url, name: t, url: "https://t.example.com/mcp"}
            - {type: url, name: s, url: "https://s2.example.com/mcp"}
            - {type: url, name: t, url: "https://t2.example.com/mcp"}
          tools:
            - {type: mcp_toolset, mcp_server_name: s}
            - {type: mcp_toolset, mcp_server_name: t}
            - {type: custom, name: f, description: d, input_schema: {type: object}}
            - {type: custom, name: g, description: d, input_schema: {type: object}}
            - {type: custom, name: f, description: d, input_schema: {type: object}}
            - {type: custom, name: g, description: d, input_schema: {type: object}}
        """,
    )
    assert code == 1, out
    assert "m.yaml:8:35: spec.skills[2].skill_id: skill xlsx is listed twice" in out
    assert "m.yaml:9:35: spec.skills[3].skill_id: skill pdf is listed twice" in out
    assert "m.yaml:20:28: spec.tools[4].name: custom tool 'f' is declared twice" in out
    assert "m.yaml:21:28: spec.tools[5].name: custom tool 'g' is declared twice" in out


def test_every_repeated_mcp_server_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = validate(
        tmp_path,
        monkeypatch,
        """\
        kind: Agent
        name: a
        spec:
          model: claude-sonnet-4-6
          mcp_servers:
            - {type: url, name: s, url: "https://s.example.com/mcp"}
            - {type: url, name: t, url: "https://t.example.com/mcp"}
            - {type: url, name: s, url: "https://s2.example.com/mcp"}
            - {type: url, name: t, url: "https://t2.example.com/mcp"}
          tools:
            - {type: mcp_toolset, mcp_server_name: s}
            - {type: mcp_toolset, mcp_server_name: t}
        """,
    )
    assert code == 1, out
    assert "m.yaml:8:25: spec.mcp_servers[2].name: MCP server name 's' is declared twice" in out
    assert "m.yaml:9:25: spec.mcp_servers[3].name: MCP server name 't' is declared twice" in out


def test_every_repeated_seed_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = validate(
        tmp_path,
        monkeypatch,
        """\
        kind: MemoryStore
        name: m
        spec:
          memories:
            - {path: /a.md, content: x}
            - {path: /b.md, content: x}
            - {path: /a.md, content: y}
            - {path: /b.md, content: y}
        """,
    )
    assert code == 1, out
    assert "m.yaml:7:14: spec.memories[2].path: memory path '/a.md' is seeded twice" in out
    assert "m.yaml:8:14: spec.memories[3].path: memory path '/b.md' is seeded twice" in out


def test_a_credential_clash_is_said_beside_another_credentials_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clash check ran only once every credential validated: a vault with a bad URL in
    one credential and a secret_name shared by two others said the URL, then the clash on
    the next run."""
    code, out = validate(
        tmp_path,
        monkeypatch,
        """\
        kind: Vault
        name: v
        spec:
          credentials:
            - name: c
              auth: {type: environment_variable, secret_name: X, secret_value: {from_env: T}, networking: {type: unrestricted}}
            - name: d
              auth: {type: environment_variable, secret_name: X, secret_value: {from_env: T}, networking: {type: unrestricted}}
            - name: c
              auth: {type: static_bearer, token: {from_env: T}, mcp_server_url: "not a url"}
        """,
    )
    assert code == 1, out
    assert "3 errors" in out, out
    assert "m.yaml:8:55: spec.credentials[1].auth.secret_name: secret_name X is already" in out
    assert "m.yaml:9:13: spec.credentials[2].name: credential name 'c' is used twice" in out
    assert "m.yaml:10:73: spec.credentials[2].auth.mcp_server_url: expected an absolute" in out


def test_a_repeated_custom_tool_is_said_beside_another_tools_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Custom tool 'f' declared twice was said only once every tool validated: a bad
    input_schema in a third tool hid it until the next run."""
    code, out = validate(
        tmp_path,
        monkeypatch,
        """\
        kind: Agent
        name: a
        spec:
          model: claude-sonnet-4-6
          tools:
            - {type: agent_toolset_20260401}
            - {type: custom, name: f, description: d, input_schema: {type: object}}
            - {type: custom, name: f, description: d, input_schema: {type: object}}
            - {type: custom, name: g, description: d, input_schema: {type: array}}
            - {type: agent_toolset_20260401}
        """,
    )
    assert code == 1, out
    assert "3 errors" in out, out
    assert "m.yaml:8:28: spec.tools[2].name: custom tool 'f' is declared twice" in out
    assert "m.yaml:9:68: spec.tools[3].input_schema.type: input_schema must be" in out
    assert "m.yaml:10:14: spec.tools[4].type: agent_toolset_20260401 is declared twice" in out
