"""Manifest errors as the user sees them: one line per problem, at file:line:col, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest import load_manifests

AGENT_OK = """\
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project directory as the current directory, with an empty manifests/."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    return tmp_path


def write(project: Path, name: str, text: str | bytes) -> None:
    path = project / "manifests" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def errors(project: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifests("manifests")
    return [str(issue) for issue in info.value.issues]


# --------------------------------------------------------------------------- unknown / wrong / missing


def test_unknown_key_says_did_you_mean(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: claude-sonnet-4-6
          sytem: You are helpful.
        """,
    )
    assert errors(project) == [
        "manifests/a.yaml:5:3: spec.sytem: unknown field 'sytem'; did you mean 'system'?"
    ]


def test_unknown_key_deep_inside_a_union_member(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: claude-sonnet-4-6
          tools:
            - type: agent_toolset_20260401
              configs:
                - name: bash
                  permision_policy: {type: always_ask}
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:9:11: spec.tools[0].configs[0].permision_policy: unknown field "
            "'permision_policy'; did you mean 'permission_policy'?"
        )
    ]


def test_unknown_key_without_close_match_lists_the_allowed_ones(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec: {model: m}
        labels: {}
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:4:1: labels: unknown field 'labels' "
            "(allowed: kind, name, spec, protect, ignore_changes, moved_from)"
        )
    ]


def test_wrong_type_points_at_the_value(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: claude-sonnet-4-6
          tools: bash
          metadata:
            cost-center: 1234
        """,
    )
    assert errors(project) == [
        "manifests/a.yaml:5:10: spec.tools: expected a list, got a string",
        (
            "manifests/a.yaml:7:18: spec.metadata.cost-center: expected a string, got an integer; "
            "put it in quotes to make it a string"
        ),
    ]


def test_wrong_type_beside_a_key_named_like_its_union_tag_points_at_that_value(
    project: Path,
) -> None:
    """A skill given by name is the union member tagged ``ref``, and also has a ``ref`` key:
    an error in its ``version`` is at ``version``, not at the name beside it."""
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: reviewer
        spec:
          model: claude-sonnet-4-6
          skills:
            - {ref: review-checklist, version: 3}
        """,
    )
    assert errors(project) == [
        (  # no Skill manifest here: said beside the other error, not after it is fixed
            "manifests/a.yaml:6:13: spec.skills[0].ref: unknown skill 'review-checklist': no "
            "Skill manifest has this name; add a Skill manifest named review-checklist"
        ),
        (
            "manifests/a.yaml:6:40: spec.skills[0].version: expected a string, got an integer; "
            "put it in quotes to make it a string"
        ),
    ]


def test_missing_required_field_points_at_the_mapping(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          description: no model here
        """,
    )
    assert errors(project) == ["manifests/a.yaml:3:1: spec.model: missing required field 'model'"]


def test_missing_discriminator(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: m
          tools:
            - mcp_server_name: github
        """,
    )
    assert errors(project) == [
        "manifests/a.yaml:6:7: spec.tools[0].type: missing required field 'type'"
    ]


def test_unknown_discriminator_value_says_did_you_mean(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: m
          tools:
            - type: mcp_tolset
              mcp_server_name: github
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:6:13: spec.tools[0].type: unknown type 'mcp_tolset'; expected one of "
            "'agent_toolset_20260401', 'mcp_toolset', 'custom' (did you mean 'mcp_toolset'?)"
        )
    ]


def test_model_neither_string_nor_mapping(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: [claude]
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:4:3: spec.model: expected a model id such as claude-sonnet-4-6, "
            "or a mapping {id, effort, inference_geo, speed}"
        )
    ]


# --------------------------------------------------------------------------- document envelope


def test_unknown_kind_says_did_you_mean(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: agnet
        name: coder
        spec: {model: m}
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:1:7: kind: must be one of 'Agent', 'Environment', 'Vault', "
            "'Deployment', 'MemoryStore', 'Skill' or 'Policy', not 'agnet' (did you mean 'Agent'?)"
        )
    ]


def test_a_misspelt_policy_kind_is_pointed_at_policy(project: Path) -> None:
    """``Policy`` is a kind of document too: it is listed, and a typo of it is hinted."""
    write(project, "p.yaml", "kind: Polcy\nname: guard\nspec: {rules: []}\n")
    assert errors(project) == [
        (
            "manifests/p.yaml:1:7: kind: must be one of 'Agent', 'Environment', 'Vault', "
            "'Deployment', 'MemoryStore', 'Skill' or 'Policy', not 'Polcy' "
            "(did you mean 'Policy'?)"
        )
    ]


def test_missing_kind_name_and_spec(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        protect: true
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:1:1: kind: missing required field 'kind': add kind: Agent, "
            "Environment, Vault, Deployment, MemoryStore, Skill or Policy (if this file is not "
            "a manifest, list it in .reconcilerignore)"
        ),
        "manifests/a.yaml:1:1: name: missing required field 'name'",
        "manifests/a.yaml:1:1: spec: missing required field 'spec'",
    ]


def test_invalid_document_name(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: Coder Bot
        spec: {model: m}
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:2:7: name: invalid name 'Coder Bot': use 1-64 lowercase letters, "
            "digits, '-' or '_', starting with a letter or digit"
        )
    ]


def test_non_mapping_documents(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        - kind: Agent
        ---
        just a string
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:1:1: a manifest document must be a mapping with kind, name and spec; "
            "got a list (if this file is not a manifest, list it in .reconcilerignore)"
        ),
        (
            "manifests/a.yaml:3:1: a manifest document must be a mapping with kind, name and spec; "
            "got a scalar value (if this file is not a manifest, list it in .reconcilerignore)"
        ),
    ]


def test_ignore_changes_must_name_a_spec_field(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec: {model: m}
        ignore_changes: [metdata.owner]
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:4:18: ignore_changes[0]: 'metdata' is not a field of the Agent spec; "
            "did you mean 'metadata'?"
        )
    ]


def test_duplicate_address_names_both_places(project: Path) -> None:
    write(project, "a.yaml", AGENT_OK)
    write(project, "b.yaml", "---\n" + AGENT_OK.replace("claude-sonnet-4-6", "other"))
    assert errors(project) == [
        (
            "manifests/b.yaml:3:1: name: duplicate address agent.coder: also defined at "
            "manifests/a.yaml:2:1; rename one of them"
        )
    ]


def test_duplicate_yaml_key_is_an_error(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: claude-sonnet-4-6
          model: claude-opus-4-6
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:5:3: spec.model: duplicate key 'model' in this mapping (first defined "
            "at line 4, column 3); keep only one"
        )
    ]


def test_environment_names_must_be_unique(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Environment
        name: one
        spec: {name: shared}
        ---
        kind: Environment
        name: two
        spec: {name: shared}
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:7:8: spec.name: environment name 'shared' is also used by "
            "environment.one (manifests/a.yaml:2:1); the provider requires unique environment names"
        )
    ]


# --------------------------------------------------------------------------- references


DEPLOYMENT = """\
kind: Deployment
name: nightly
spec:
  agent: {agent}
  environment: {environment}
  vaults: [{vaults}]
  initial_events:
    - type: user.message
      content: [{{type: text, text: go}}]
"""
TARGETS = """\
kind: Agent
name: reviewer
spec: {model: m}
---
kind: Environment
name: python-data
spec: {}
---
kind: Vault
name: github
spec: {}
"""


def test_unknown_references_say_did_you_mean(project: Path) -> None:
    write(project, "a.yaml", TARGETS)
    write(
        project,
        "d.yaml",
        DEPLOYMENT.format(agent="reviwer", environment="python", vaults="github, gitlab"),
    )
    assert errors(project) == [
        (
            "manifests/d.yaml:4:10: spec.agent: unknown agent 'reviwer': no Agent manifest has this "
            "name; did you mean 'reviewer'?"
        ),
        (
            "manifests/d.yaml:5:16: spec.environment: unknown environment 'python': no Environment "
            "manifest has this name; did you mean 'python-data'?"
        ),
        (
            "manifests/d.yaml:6:20: spec.vaults[1]: unknown vault 'gitlab': no Vault manifest has "
            "this name; did you mean 'github'?"
        ),
    ]


def test_reference_in_object_form_points_at_ref(project: Path) -> None:
    write(project, "a.yaml", TARGETS)
    write(
        project,
        "d.yaml",
        DEPLOYMENT.format(agent="{ref: coder, version: 3}", environment="python-data", vaults=""),
    )
    assert errors(project) == [
        (
            "manifests/d.yaml:4:16: spec.agent.ref: unknown agent 'coder': no Agent manifest has "
            "this name (declared: reviewer)"
        )
    ]


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        (
            "0",
            (
                "agent version pin must be >= 1 (got 0); versions start at 1, or use 'latest' "
                "to follow the newest"
            ),
        ),
        (
            "-2",
            (
                "agent version pin must be >= 1 (got -2); versions start at 1, or use 'latest' "
                "to follow the newest"
            ),
        ),
        ("newest", "version must be a positive integer or 'latest'"),
        ("true", "version must be a positive integer or 'latest'"),
    ],
)
def test_version_pin_must_be_positive(project: Path, pin: str, message: str) -> None:
    write(project, "a.yaml", TARGETS)
    write(
        project,
        "d.yaml",
        DEPLOYMENT.format(
            agent=f"{{ref: reviewer, version: {pin}}}", environment="python-data", vaults=""
        ),
    )
    assert errors(project) == [f"manifests/d.yaml:4:35: spec.agent.version: {message}"]


# --------------------------------------------------------------------------- secrets


SECRET_VALUE = "ghp_0123456789abcdefSECRET"


def test_inline_secret_is_an_error_that_never_echoes_the_value(project: Path) -> None:
    write(
        project,
        "v.yaml",
        f"""\
        kind: Vault
        name: github
        spec:
          credentials:
            - name: token
              auth:
                type: static_bearer
                mcp_server_url: https://mcp.example.com/mcp
                token: {SECRET_VALUE}
        """,
    )
    with pytest.raises(ManifestError) as info:
        load_manifests("manifests")
    assert [str(i) for i in info.value.issues] == [
        (
            "manifests/v.yaml:9:16: spec.credentials[0].auth.token: inline secret: use "
            "{from_env: VAR} or {from_file: PATH}"
        )
    ]
    assert SECRET_VALUE not in str(info.value)
    assert SECRET_VALUE not in repr(info.value.issues)


def test_nested_inline_secrets_are_all_reported(project: Path) -> None:
    write(
        project,
        "v.yaml",
        f"""\
        kind: Vault
        name: oauth
        spec:
          credentials:
            - name: linear
              auth:
                type: mcp_oauth
                mcp_server_url: https://mcp.linear.app/mcp
                access_token: {{from_env: LINEAR_TOKEN}}
                refresh:
                  client_id: abc
                  refresh_token: "{SECRET_VALUE}"
                  token_endpoint: https://linear.app/oauth/token
                  token_endpoint_auth:
                    type: client_secret_post
                    client_secret: {SECRET_VALUE}
        """,
    )
    with pytest.raises(ManifestError) as info:
        load_manifests("manifests")
    assert [str(i) for i in info.value.issues] == [
        (
            "manifests/v.yaml:12:26: spec.credentials[0].auth.refresh.refresh_token: inline secret: "
            "use {from_env: VAR} or {from_file: PATH}"
        ),
        (
            "manifests/v.yaml:16:28: spec.credentials[0].auth.refresh.token_endpoint_auth."
            "client_secret: inline secret: use {from_env: VAR} or {from_file: PATH}"
        ),
    ]
    assert SECRET_VALUE not in str(info.value)


def test_secret_written_as_a_flow_mapping_key_is_not_echoed(project: Path) -> None:
    write(
        project,
        "v.yaml",
        f"""\
        kind: Vault
        name: github
        spec:
          credentials:
            - name: token
              auth:
                type: static_bearer
                mcp_server_url: https://mcp.example.com/mcp
                token: {{{SECRET_VALUE}}}
            - name: typo
              auth:
                type: static_bearer
                mcp_server_url: https://other.example.com/mcp
                token: {{from_evn: GITHUB_TOKEN}}
        """,
    )
    with pytest.raises(ManifestError) as info:
        load_manifests("manifests")
    assert [str(i) for i in info.value.issues] == [
        (
            "manifests/v.yaml:9:9: spec.credentials[0].auth.token: a secret takes only from_env "
            "or from_file (other keys are not shown here, as they may hold the secret)"
        ),
        (
            "manifests/v.yaml:14:9: spec.credentials[1].auth.token: a secret takes only from_env "
            "or from_file (other keys are not shown here, as they may hold the secret); did you "
            "mean from_env?"
        ),
    ]
    assert SECRET_VALUE not in str(info.value)


def test_secret_ref_needs_exactly_one_source(project: Path) -> None:
    write(
        project,
        "v.yaml",
        """\
        kind: Vault
        name: env
        spec:
          credentials:
            - name: db
              auth:
                type: environment_variable
                secret_name: DATABASE_URL
                secret_value: {from_env: DB, from_file: db.txt}
                networking: {type: unrestricted}
        """,
    )
    assert errors(project) == [
        (
            "manifests/v.yaml:9:9: spec.credentials[0].auth.secret_value: give exactly one of "
            "from_env or from_file"
        )
    ]


@pytest.mark.parametrize(
    ("ref", "said"),
    [
        ("{from_env: }", "from_env is empty: give the name of the environment variable"),
        ("{from_file: ~}", "from_file is empty: give the path of the file"),
    ],
)
def test_a_secret_source_left_empty_says_which(project: Path, ref: str, said: str) -> None:
    """`token: {from_env: }` (the variable's name not filled in yet) said "give exactly
    one of from_env or from_file", though the user gave one."""
    write(
        project,
        "v.yaml",
        f"""\
        kind: Vault
        name: env
        spec:
          credentials:
            - name: gh
              auth: {{type: static_bearer, mcp_server_url: "https://a.example.com/mcp", token: {ref}}}
        """,
    )
    (error,) = errors(project)
    assert error.startswith("manifests/v.yaml:6:"), error
    assert f"spec.credentials[0].auth.token.{said.split()[0]}: {said}" in error, error


# --------------------------------------------------------------------------- interpolation


def test_interpolation_is_rejected_everywhere_in_spec(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: ${MODEL}
          system: "Use $${HOME} literally, but not ${HOME}"
          metadata:
            owner: ${USER}
        """,
    )
    message = (
        "${VAR} interpolation is not supported; use {from_env: VAR} for secrets "
        "(write $${ for a literal ${)"
    )
    assert errors(project) == [
        f"manifests/a.yaml:4:10: spec.model: {message}",
        f"manifests/a.yaml:5:11: spec.system: {message}",
        f"manifests/a.yaml:7:12: spec.metadata.owner: {message}",
    ]


# --------------------------------------------------------------------------- limits


def test_metadata_reserved_keys(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: m
          metadata:
            team: infra
            managed-by: me
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:7:5: spec.metadata.managed-by: metadata key 'managed-by' is reserved: "
            "the reconciler sets it to record ownership; remove it"
        )
    ]


def test_metadata_limits(project: Path) -> None:
    keys = "\n".join(f"    k{i}: v" for i in range(14))
    long_key = "k" * 65
    write(
        project,
        "a.yaml",
        f"""\
kind: Agent
name: too-many
spec:
  model: m
  metadata:
{keys}
---
kind: Agent
name: long-key
spec:
  model: m
  metadata:
    {long_key}: v
---
kind: Agent
name: long-value
spec:
  model: m
  metadata:
    k: {"v" * 513}
""",
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:5:3: spec.metadata: too many metadata keys: 14; manifests may set at "
            "most 13 (the provider allows 16 and the reconciler reserves managed-by, "
            "reconciler-project, reconciler-address)"
        ),
        (
            f"manifests/a.yaml:26:5: spec.metadata.{long_key}: metadata key is 65 characters long; "
            "the limit is 64"
        ),
        (
            "manifests/a.yaml:33:8: spec.metadata.k: metadata value is 513 characters long; "
            "the limit is 512"
        ),
    ]


def test_string_length_limits(project: Path) -> None:
    write(
        project,
        "a.yaml",
        f"""\
kind: Agent
name: coder
spec:
  name: {"n" * 257}
  model: m
  description: {"d" * 2049}
  system: {"s" * 100_001}
""",
    )
    assert errors(project) == [
        "manifests/a.yaml:4:9: spec.name: must be at most 256 characters (got 257)",
        "manifests/a.yaml:6:16: spec.description: must be at most 2048 characters (got 2049)",
        "manifests/a.yaml:7:11: spec.system: must be at most 100000 characters (got 100001)",
    ]


def test_list_limits(project: Path) -> None:
    servers = "".join(
        f"    - {{type: url, name: s{i}, url: https://s{i}.example.com}}\n" for i in range(21)
    )
    tools = "".join(f"    - {{type: mcp_toolset, mcp_server_name: s{i}}}\n" for i in range(21))
    customs = "".join(
        f"    - {{type: custom, name: t{i}, description: d, input_schema: {{type: object}}}}\n"
        for i in range(257)
    )
    creds = "".join(
        f"    - name: c{i}\n"
        f"      auth: {{type: environment_variable, secret_name: S{i}, "
        f"secret_value: {{from_env: S{i}}}, networking: {{type: unrestricted}}}}\n"
        for i in range(21)
    )
    write(
        project,
        "a.yaml",
        f"""\
kind: Agent
name: servers
spec:
  model: m
  tools:
{tools}  mcp_servers:
{servers}---
kind: Agent
name: tools
spec:
  model: m
  tools:
{customs}---
kind: Vault
name: many
spec:
  credentials:
{creds}""",
    )
    assert errors(project) == [
        "manifests/a.yaml:27:3: spec.mcp_servers: must have at most 20 items, got 21",
        "manifests/a.yaml:54:3: spec.tools: must have at most 256 items, got 257",
        "manifests/a.yaml:316:3: spec.credentials: must have at most 20 items, got 21",
    ]


def test_initial_events_bounds(project: Path) -> None:
    write(project, "a.yaml", TARGETS)
    events = "\n".join(
        "    - {type: user.message, content: [{type: text, text: hi}]}" for _ in range(51)
    )
    write(
        project,
        "d.yaml",
        f"""\
kind: Deployment
name: empty
spec:
  agent: reviewer
  environment: python-data
  initial_events: []
---
kind: Deployment
name: full
spec:
  agent: reviewer
  environment: python-data
  initial_events:
{events}
""",
    )
    assert errors(project) == [
        "manifests/d.yaml:6:3: spec.initial_events: must have at least 1 item(s), got 0",
        "manifests/d.yaml:13:3: spec.initial_events: must have at most 50 items, got 51",
    ]


def test_initial_event_type_must_be_known(project: Path) -> None:
    write(project, "a.yaml", TARGETS)
    write(
        project,
        "d.yaml",
        """\
        kind: Deployment
        name: d
        spec:
          agent: reviewer
          environment: python-data
          initial_events:
            - type: user.mesage
              content: [{type: text, text: hi}]
        """,
    )
    assert errors(project) == [
        (
            "manifests/d.yaml:7:13: spec.initial_events[0].type: unknown type 'user.mesage'; "
            "expected one of 'user.message', 'user.define_outcome', 'system.message' "
            "(did you mean 'user.message'?)"
        )
    ]


# --------------------------------------------------------------------------- rules across fields


def test_mcp_servers_and_toolsets_must_match(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: orphan
        spec:
          model: m
          mcp_servers:
            - {type: url, name: github, url: https://api.githubcopilot.com/mcp/}
        ---
        kind: Agent
        name: dangling
        spec:
          model: m
          tools:
            - {type: mcp_toolset, mcp_server_name: githb}
          mcp_servers:
            - {type: url, name: github, url: https://api.githubcopilot.com/mcp/}
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:6:7: spec.mcp_servers[0]: MCP server 'github' is not used by any "
            "tool; add {type: mcp_toolset, mcp_server_name: github} to tools or remove it"
        ),
        (
            "manifests/a.yaml:13:44: spec.tools[0].mcp_server_name: mcp_server_name 'githb' does "
            "not match any entry of mcp_servers; did you mean 'github'?"
        ),
    ]


def test_a_list_that_names_each_thing_once_points_at_the_second(project: Path) -> None:
    """Tool configs, MCP servers, custom tools, a deployment's vaults and a store's seeds."""
    write(project, "t.yaml", TARGETS)
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: configs
        spec:
          model: m
          tools:
            - type: agent_toolset_20260401
              configs: [{name: bash}, {name: read}, {name: bash}]
            - type: mcp_toolset
              mcp_server_name: gh
              configs: [{name: issues}, {name: issues}]
          mcp_servers:
            - {type: url, name: gh, url: https://api.githubcopilot.com/mcp/}
        ---
        kind: Agent
        name: servers
        spec:
          model: m
          tools:
            - {type: mcp_toolset, mcp_server_name: gh}
          mcp_servers:
            - {type: url, name: gh, url: https://api.githubcopilot.com/mcp/}
            - {type: url, name: gh, url: https://example.com/mcp/}
        ---
        kind: Agent
        name: custom
        spec:
          model: m
          tools:
            - {type: custom, name: t, description: d, input_schema: {type: object}}
            - {type: agent_toolset_20260401}
            - {type: custom, name: t, description: d, input_schema: {type: object}}
        ---
        kind: MemoryStore
        name: notes
        spec:
          name: notes
          memories:
            - {path: /a.md, content: a}
            - {path: /a.md, content: b}
        """,
    )
    write(
        project,
        "d.yaml",
        DEPLOYMENT.format(agent="reviewer", environment="python-data", vaults="github, github"),
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:7:52: spec.tools[0].configs[2].name: tool 'bash' is configured "
            "twice; merge the two entries"
        ),
        (
            "manifests/a.yaml:10:40: spec.tools[1].configs[1].name: MCP tool 'issues' is "
            "configured twice; merge the two entries"
        ),
        (
            "manifests/a.yaml:22:25: spec.mcp_servers[1].name: MCP server name 'gh' is declared "
            "twice; names must be unique"
        ),
        "manifests/a.yaml:31:28: spec.tools[2].name: custom tool 't' is declared twice",
        "manifests/a.yaml:39:14: spec.memories[1].path: memory path '/a.md' is seeded twice",
        "manifests/d.yaml:6:20: spec.vaults[1]: vault 'github' is listed twice",
    ]


def test_packages_under_limited_networking_need_package_managers(project: Path) -> None:
    write(
        project,
        "e.yaml",
        """\
        kind: Environment
        name: python-data
        spec:
          config:
            type: cloud
            networking:
              type: limited
              allowed_hosts: [api.example.com]
            packages:
              pip: [pandas]
        """,
    )
    assert errors(project) == [
        (
            "manifests/e.yaml:6:5: spec.config.networking.allow_package_managers: packages under "
            "limited networking require allow_package_managers: true; set it under networking or "
            "remove the packages"
        )
    ]


def test_credential_names_unique_per_vault(project: Path) -> None:
    write(
        project,
        "v.yaml",
        """\
        kind: Vault
        name: github
        spec:
          credentials:
            - name: token
              auth: {type: static_bearer, mcp_server_url: https://a.example.com, token: {from_env: A}}
            - name: token
              auth: {type: static_bearer, mcp_server_url: https://b.example.com, token: {from_env: B}}
        """,
    )
    assert errors(project) == [
        (
            "manifests/v.yaml:7:13: spec.credentials[1].name: credential name 'token' is used twice "
            "in this vault (also credentials[0]); names must be unique"
        )
    ]


def test_schedule_is_checked(project: Path) -> None:
    write(project, "a.yaml", TARGETS)
    write(
        project,
        "d.yaml",
        """\
        kind: Deployment
        name: d
        spec:
          agent: reviewer
          environment: python-data
          initial_events: [{type: user.message, content: [{type: text, text: hi}]}]
          schedule:
            type: cron
            expression: "0 25 * * *"
            timezone: America/New_Yrok
        """,
    )
    assert errors(project) == [
        "manifests/d.yaml:9:17: spec.schedule.expression: hour value 25 is out of range 0-23",
        (
            "manifests/d.yaml:10:15: spec.schedule.timezone: unknown time zone 'America/New_Yrok'; "
            "use an IANA name such as Europe/Berlin or UTC (did you mean 'America/New_York'?)"
        ),
    ]


# --------------------------------------------------------------------------- files and YAML


def test_yaml_syntax_error_has_the_mark(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: [claude
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:5:1: invalid YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence at line 4, column 10)"
        )
    ]


def test_tab_indentation(project: Path) -> None:
    write(project, "a.yaml", "kind: Agent\nname: coder\nspec:\n\tmodel: m\n")
    assert errors(project) == [
        "manifests/a.yaml:4:1: tab character used for indentation; YAML indentation must use spaces"
    ]


def test_not_utf8_and_binary_files(project: Path) -> None:
    write(project, "latin1.yaml", "kind: Agent\nname: caf\xe9\n".encode("latin-1"))
    write(project, "binary.yml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert errors(project) == [
        (
            "manifests/binary.yml:1:1: this is not a UTF-8 text file (it contains NUL bytes: binary "
            "or UTF-16?); save manifests as UTF-8 YAML"
        ),
        (
            "manifests/latin1.yaml:2:10: invalid UTF-8 (byte 0xe9 at offset 21); save the file as "
            "UTF-8"
        ),
    ]


def test_alias_bomb_is_refused_quickly(project: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    write(project, "bomb.yaml", "\n".join(lines) + "\n")
    assert errors(project) == [
        (
            "manifests/bomb.yaml:2:8: YAML aliases are not supported (found *a); write the value "
            "out in full"
        )
    ]


def test_a_merge_key_is_named_as_unsupported(project: Path) -> None:
    # it was "unknown field '<<'" plus "missing required field 'model'" from the same key
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          <<: {model: claude-sonnet-4-6}
          description: x
        ---
        kind: Agent
        name: reviewer
        spec:
          model: claude-sonnet-4-6
          metadata:
            <<: [{team: a}]
        ---
        kind: Agent
        name: quoted
        spec:
          model: claude-sonnet-4-6
          metadata: {"<<": a}
        """,
    )
    message = (
        "YAML merge keys (<<) are not supported, nor the aliases (*name) they merge; "
        "write the keys out in full"
    )
    assert errors(project) == [
        f"manifests/a.yaml:4:3: spec: {message}",
        f"manifests/a.yaml:12:5: spec.metadata: {message}",
    ]


def test_deep_nesting_is_refused(project: Path) -> None:
    write(project, "deep.yaml", "[" * 10_000)
    assert errors(project) == [
        "manifests/deep.yaml:1:65: nested deeper than 64 levels; flatten this value"
    ]


def test_unsupported_tags(project: Path) -> None:
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: !!binary aGVsbG8=
        """,
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:4:10: spec.model: unsupported YAML tag tag:yaml.org,2002:binary; "
            "remove the tag"
        ),
    ]


def test_missing_path(project: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests("nope")
    assert [str(i) for i in info.value.issues] == [
        "nope:1:1: no such file or directory; pass the manifests directory with --manifests/-f"
    ]


def test_paths_outside_the_current_directory_are_shown_as_given(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "a.yaml").write_text("kind: Agnt\nname: a\nspec: {}\n")
    with pytest.raises(ManifestError) as info:
        load_manifests(elsewhere)
    assert info.value.issues[0].file == str(elsewhere / "a.yaml")


# --------------------------------------------------------------------------- all at once


def test_every_issue_of_every_file_is_reported_at_once_sorted(project: Path) -> None:
    write(
        project,
        "b.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          modle: m
        """,
    )
    write(
        project,
        "a.yaml",
        """\
        kind: Vault
        name: v
        spec:
          display_name: ""
        ---
        kind: Enviroment
        name: e
        spec: {}
        """,
    )
    write(project, "sub/c.yml", "kind: [\n")
    with pytest.raises(ManifestError) as info:
        load_manifests("manifests")
    error = info.value
    assert [str(i) for i in error.issues] == [
        "manifests/a.yaml:4:17: spec.display_name: must not be empty",
        (
            "manifests/a.yaml:6:7: kind: must be one of 'Agent', 'Environment', 'Vault', "
            "'Deployment', 'MemoryStore', 'Skill' or 'Policy', not 'Enviroment' "
            "(did you mean 'Environment'?)"
        ),
        "manifests/b.yaml:3:1: spec.model: missing required field 'model'",
        "manifests/b.yaml:4:3: spec.modle: unknown field 'modle'; did you mean 'model'?",
        (
            "manifests/sub/c.yml:2:1: invalid YAML: expected the node content, but found "
            "'<stream end>' (while parsing a flow node at line 2, column 1)"
        ),
    ]
    assert str(error).startswith("5 errors in manifests:\n  manifests/a.yaml:4:17:")
    # structured data, not only text
    assert (error.issues[2].line, error.issues[2].col, error.issues[2].path) == (3, 1, "spec.model")


# --------------------------------------------------------------------------- hosts and domains


def test_hosts_and_domains_the_provider_would_refuse_are_errors_at_their_place(
    project: Path,
) -> None:
    """A URL where a bare host belongs passed validate and plan, and apply met the provider's
    400 after the resources before it were changed."""
    write(
        project,
        "a.yaml",
        """\
        kind: Agent
        name: coder
        spec:
          model: claude-sonnet-4-6
          tools:
            - type: agent_toolset_20260401
              configs:
                - name: web_fetch
                  allowed_domains: [docs.python.org, "https://example.com", docs.rs/crates]
                - name: web_search
                  blocked_domains: [example.com/private, "example.com:8443"]
        """,
    )
    write(
        project,
        "v.yaml",
        """\
        kind: Vault
        name: gh
        spec:
          display_name: GitHub
          credentials:
            - name: api
              auth:
                type: environment_variable
                secret_name: GH_TOKEN
                secret_value: {from_env: GH_TOKEN}
                networking:
                  type: limited
                  allowed_hosts:
                    - api.github.com
                    - "*.githubusercontent.com"
                    - https://github.com
                    - "::1"
                    - 10.0.0.1
        """,
    )
    host = (
        "is not a bare hostname, an IPv4 address or a *. wildcard: write api.example.com, "
        "192.0.2.1 or *.example.com (no URL, port, path or IPv6 address)"
    )
    fetch = "is not a plain hostname: write docs.example.com (no scheme, port or path)"
    search = (
        "is not a plain hostname: write docs.example.com or docs.example.com/api (no scheme, port)"
    )
    a = "manifests/a.yaml"
    configs = "spec.tools[0].configs"
    hosts = "manifests/v.yaml:{}:15: spec.credentials[0].auth.networking.allowed_hosts[{}]"
    assert errors(project) == [
        f"{a}:9:46: {configs}[0].allowed_domains[1]: 'https://example.com' {fetch}",
        f"{a}:9:69: {configs}[0].allowed_domains[2]: 'docs.rs/crates' {fetch}",
        f"{a}:11:50: {configs}[1].blocked_domains[1]: 'example.com:8443' {search}",
        f"{hosts.format(16, 2)}: 'https://github.com' {host}",
        f"{hosts.format(17, 3)}: '::1' {host}",
    ]


def test_one_mcp_server_in_two_cases_is_one_credential_key(project: Path) -> None:
    """The provider allows one credential per MCP server in a vault, comparing the URL's scheme
    and host case-insensitively; two credentials whose URLs differed only there passed
    ``validate`` and ``plan``, and ``apply`` stopped half-way on the provider's 409."""
    write(
        project,
        "v.yaml",
        """\
        kind: Vault
        name: github
        spec:
          credentials:
            - name: a
              auth: {type: static_bearer, mcp_server_url: https://mcp.example.com/mcp, token: {from_env: T}}
            - name: b
              auth: {type: static_bearer, mcp_server_url: https://MCP.Example.com/mcp, token: {from_env: T}}
        """,
    )
    assert errors(project) == [
        (
            "manifests/v.yaml:8:51: spec.credentials[1].auth.mcp_server_url: mcp_server_url "
            "https://MCP.Example.com/mcp is already used by credentials[0]; the provider allows "
            "one active credential per key in a vault"
        )
    ]


def test_tools_count_the_built_in_toolsets_tools_and_it_appears_once(project: Path) -> None:
    """The provider caps an agent at 256 tools across all toolsets (the built-in toolset
    brings 8) and takes one built-in toolset; both passed ``validate`` and ``plan`` and
    failed at ``apply``."""
    customs = "".join(
        f"    - {{type: custom, name: t{i}, description: d, input_schema: {{type: object}}}}\n"
        for i in range(249)
    )
    write(
        project,
        "a.yaml",
        f"""\
kind: Agent
name: many
spec:
  model: m
  tools:
    - {{type: agent_toolset_20260401}}
{customs}---
kind: Agent
name: twice
spec:
  model: m
  tools:
    - {{type: agent_toolset_20260401}}
    - {{type: agent_toolset_20260401}}
""",
    )
    assert errors(project) == [
        (
            "manifests/a.yaml:5:3: spec.tools: an agent has at most 256 tools across all"
            " toolsets; these declare 257 (the built-in toolset counts its 8 tools)"
        ),
        (
            "manifests/a.yaml:263:14: spec.tools[1].type: agent_toolset_20260401 is declared"
            " twice; configure every built-in tool in one entry"
        ),
    ]


def test_an_upper_case_url_scheme_is_a_url() -> None:
    """RFC 3986 schemes are case-insensitive, and the provider takes ``HTTPS://``: validate
    refused it as "expected an absolute http(s) URL" (and so did the JSON schema)."""
    import re

    from pydantic import TypeAdapter

    from reconciler.manifest.fields import HttpUrl

    adapter = TypeAdapter(HttpUrl)
    pattern = adapter.json_schema()["pattern"]
    for url in ("HTTPS://MCP.Example.com/mcp", "Http://a.example"):
        assert adapter.validate_python(url) == url and re.match(pattern, url)
    for url in ("ftp://a.example", "https://", "HTTPS:// a.example"):
        assert not re.match(pattern, url)


def test_an_environment_host_given_as_a_url_is_refused_at_validate(project: Path) -> None:
    """An Environment's limited ``allowed_hosts`` lists the domains the container may reach
    (provider-wire.md §5.4: ``["api.example.com"]``); a URL, a path or a port passed
    ``validate`` and ``plan``, and the provider refused it at apply, after what came before
    it was changed."""
    from support.gitops import cli

    write(
        project,
        "e.yaml",
        """\
        kind: Environment
        name: web
        spec:
          config:
            type: cloud
            networking:
              type: limited
              allowed_hosts:
                - api.example.com
                - "*.example.org"
                - 192.0.2.1
                - https://x.com/
                - example.net/api
                - example.net:8443
                - user@example.net
        """,
    )
    result = cli("validate")
    assert result.exit_code == 1, result.stdout
    at = "manifests/e.yaml:{}:11: spec.config.networking.allowed_hosts[{}]"
    said = "give the hostname alone, as allowed_hosts lists the domains the container may reach"
    assert result.stderr.splitlines()[1:] == [
        f"  {at.format(12, 3)}: 'https://x.com/' is a URL, not a hostname: write x.com ({said})",
        f"  {at.format(13, 4)}: 'example.net/api' is not a hostname: write example.net ({said})",
        f"  {at.format(14, 5)}: 'example.net:8443' is not a hostname: write example.net ({said})",
        f"  {at.format(15, 6)}: 'user@example.net' is not a hostname: write example.net ({said})",
    ], result.stderr


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            (
                "kind: Deployment\nname: d\nspec:\n  agent: a\n  environment: e\n"
                "  vaults: [v, v]\n  initial_events: []\n"
            ),
            "manifests/x.yaml:6:15: spec.vaults[1]: vault 'v' is listed twice",
        ),
        (
            (
                "kind: Deployment\nname: d\nspec:\n  agent: a\n  environment: e\n"
                "  initial_events: []\n  resources: [{memory_store: m}, {memory_store: m}]\n"
            ),
            "manifests/x.yaml:7:49: spec.resources[1].memory_store: memory store 'm' is mounted",
        ),
        (
            (
                "kind: Agent\nname: a\nspec:\n  model: m\n  sytem: hi\n"
                "  skills: [{skill_id: s, type: anthropic}, {skill_id: s, type: anthropic}]\n"
            ),
            "manifests/x.yaml:6:55: spec.skills[1].skill_id: skill s is listed twice; keep one",
        ),
        (
            (
                "kind: Vault\nname: v\nspec:\n  descrption: x\n  credentials:\n"
                "    - {name: c, auth: {type: static_bearer, token: {from_env: X}, "
                "mcp_server_url: 'https://a.example/mcp'}}\n"
                "    - {name: c, auth: {type: static_bearer, token: {from_env: Y}, "
                "mcp_server_url: 'https://b.example/mcp'}}\n"
            ),
            "manifests/x.yaml:7:14: spec.credentials[1].name: credential name 'c' is used twice",
        ),
        (
            (
                "kind: MemoryStore\nname: ms\nspec:\n  nme: x\n  memories:\n"
                "    - {path: /a, content: x}\n    - {path: /a, content: y}\n"
            ),
            "manifests/x.yaml:7:14: spec.memories[1].path: memory path '/a' is seeded twice",
        ),
        (
            (
                "kind: Agent\nname: a\nspec:\n  model: m\n  sytem: hi\n  tools:\n"
                "    - {type: custom, name: t, description: d, input_schema: {type: object}}\n"
                "    - {type: custom, name: t, description: d, input_schema: {type: object}}\n"
            ),
            "manifests/x.yaml:8:28: spec.tools[1].name: custom tool 't' is declared twice",
        ),
    ],
    ids=["vaults", "mounts", "skills", "credentials", "memories", "custom-tools"],
)
def test_a_name_written_twice_is_said_beside_the_documents_other_errors(
    project: Path, text: str, said: str
) -> None:
    """A list that must name each thing once was checked only once the whole document
    validated: a typo elsewhere hid the repeat until it was fixed."""
    write(project, "x.yaml", text)
    found = errors(project)
    assert any(line.startswith(said) for line in found), found
    assert len(found) >= 2, found


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            (
                "kind: Agent\nname: a\nspec:\n  model: m\n  sytem: hi\n"
                "  mcp_servers: [{type: url, name: a, url: 'https://a.example/mcp'}]\n"
            ),
            "manifests/x.yaml:6:17: spec.mcp_servers[0]: MCP server 'a' is not used by any tool",
        ),
        (
            (
                "kind: Agent\nname: a\nspec:\n  model: m\n  sytem: hi\n"
                "  tools: [{type: mcp_toolset, mcp_server_name: a}]\n"
                "  mcp_servers:\n"
                "    - {type: url, name: a, url: 'https://a.example/mcp'}\n"
                "    - {type: url, name: a, url: 'https://b.example/mcp'}\n"
            ),
            (
                "manifests/x.yaml:9:25: spec.mcp_servers[1].name: MCP server name 'a' is "
                "declared twice"
            ),
        ),
        (
            (
                "kind: Agent\nname: a\nspec:\n  model: m\n  sytem: hi\n"
                "  tools: [{type: mcp_toolset, mcp_server_name: b}]\n"
            ),
            (
                "manifests/x.yaml:6:48: spec.tools[0].mcp_server_name: mcp_server_name 'b' does "
                "not match any entry of mcp_servers"
            ),
        ),
        (
            (
                "kind: Environment\nname: e\nspec:\n  config:\n    type: cloud\n"
                "    networking: {type: limited}\n    packages: {pip: [pandas]}\n"
                "    typo: 1\n"
            ),
            (
                "manifests/x.yaml:6:5: spec.config.networking.allow_package_managers: packages "
                "under limited networking require allow_package_managers: true"
            ),
        ),
        (
            "kind: Agent\nname: a\nmoved_from: a\nspec:\n  model: m\n  sytem: hi\n",
            "manifests/x.yaml:3:13: moved_from: moved_from names this document's own name 'a'",
        ),
    ],
    ids=["mcp-unused", "mcp-twice", "mcp-undeclared", "packages", "moved-from-itself"],
)
def test_a_check_across_two_fields_is_said_beside_the_documents_other_errors(
    project: Path, text: str, said: str
) -> None:
    """A check that reads two fields of a document ran only once the whole document
    validated: a typo elsewhere hid it until it was fixed."""
    write(project, "x.yaml", text)
    found = errors(project)
    assert any(line.startswith(said) for line in found), found
    assert len(found) == 2, found


def test_a_check_across_two_fields_is_not_said_when_one_of_them_is_wrong(project: Path) -> None:
    """No follow-on noise: a server whose toolset is itself wrong is not 'unused'."""
    write(
        project,
        "x.yaml",
        "kind: Agent\nname: a\nspec:\n  model: m\n"
        "  tools: [{type: mcp_toolset, mcp_server_name: a, bogus: 1}]\n"
        "  mcp_servers: [{type: url, name: a, url: 'https://a.example/mcp'}]\n",
    )
    found = errors(project)
    assert len(found) == 1 and "bogus" in found[0], found


def test_an_mcp_server_name_declared_twice_is_said_once(project: Path) -> None:
    """Beside a typo, a server name written twice is one mistake: not also 'unused' at
    the repeat, nor listed twice in the names a toolset could mean."""
    write(
        project,
        "x.yaml",
        "kind: Agent\nname: a\nspec:\n  model: m\n  sytem: hi\n"
        "  tools: [{type: mcp_toolset, mcp_server_name: b}]\n"
        "  mcp_servers:\n"
        "    - {type: url, name: a, url: 'https://a.example/mcp'}\n"
        "    - {type: url, name: a, url: 'https://b.example/mcp'}\n",
    )
    found = errors(project)
    assert len(found) == 4, found
    assert any("'b' does not match any entry of mcp_servers (declared: a)" in f for f in found)
    assert not any(f.startswith("manifests/x.yaml:9:7:") for f in found), found


LONG_KEY = "k" * 1100


@pytest.mark.parametrize(
    ("text", "at"),
    [
        (f"kind: Agent\nname: a\nspec:\n  model: m\n  metadata:\n    {LONG_KEY}: v\n", "6:5"),
        (f"kind: Agent\nname: a\nspec:\n  model: m\n  metadata: {{{LONG_KEY}: v}}\n", "5:14"),
        (
            f"kind: Agent\nname: a\nspec:\n  model: m\n  metadata: {{a: b, '{LONG_KEY}': v}}\n",
            "5:20",
        ),
        (f"kind: Agent\nname: a\nspec:\n  model: m\n  {LONG_KEY}: v\n", "5:3"),
        (f'kind: Agent\nname: a\n"{LONG_KEY}": v\n', "3:1"),
    ],
    ids=["block", "flow", "flow-quoted", "block-required", "block-quoted"],
)
def test_a_mapping_key_over_1024_characters_is_named_at_the_key(
    project: Path, text: str, at: str
) -> None:
    """A key longer than YAML's 1024-character limit on a `key: value` key was PyYAML's
    "expected ',' or '}', but got ':'" or "mapping values are not allowed here", at the
    colon 1,100 columns along, which says nothing of what is wrong."""
    write(project, "x.yaml", text)
    found = errors(project)
    assert len(found) == 1, found
    assert found[0].startswith(f"manifests/x.yaml:{at}: "), found
    assert "longer than 1024 characters" in found[0], found
    assert "not allowed here" not in found[0] and "expected" not in found[0], found


@pytest.mark.parametrize(
    ("key", "shown", "code"),
    [("\u200bmodel", "\\u200bmodel", "U+200B"), ("model\ufeff", "model\\ufeff", "U+FEFF")],
)
def test_an_invisible_character_in_a_key_is_shown_and_named(
    tmp_path: Path, key: str, shown: str, code: str
) -> None:
    """A zero-width space or a byte-order mark pasted into a key read `unknown field
    'model'; did you mean 'model'?` (the character invisible in both)."""
    (tmp_path / "a.yaml").write_text(
        f"kind: Agent\nname: a\nspec:\n  {key}: claude-sonnet-4-6\n", encoding="utf-8"
    )
    with pytest.raises(ManifestError) as err:
        load_manifests(tmp_path)
    (issue,) = [i for i in err.value.issues if "unknown field" in i.message]
    assert issue.message == (
        f"unknown field '{shown}' (it holds an invisible character, {code}: delete it); "
        "did you mean 'model'?"
    )
    assert (issue.line, issue.col) == (4, 3)


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
def test_a_token_pasted_as_a_key_of_a_credentials_auth_is_never_shown(
    project: Path, flow: bool
) -> None:
    """A token pasted where a field name goes (``auth: {..., ghp_...}``, or a line without
    ``token:``) is a key to YAML: the error places it and lists the fields, but never repeats
    it; a field name mistyped there is still named, with its correction."""
    secret = "ghp_R8x2Kq9ZpLm4Tn7VwY3sJb6Hc1Fd5Ga0QeUi"
    auth = (
        f"auth: {{type: static_bearer, mcp_server_url: 'https://mcp.example.com/mcp', {secret}}}"
        if flow
        else "auth:" + "".join(
            f"\n{' ' * 16}{line}"
            for line in ("type: static_bearer", "mcp_server_url: https://x.example.com/a", secret + ":")
        )
    )
    write(
        project,
        "v.yaml",
        f"""\
        kind: Vault
        name: gh
        spec:
          display_name: GitHub
          credentials:
            - name: mcp
              {auth}
            - name: typo
              auth: {{type: static_bearer, mcp_server_url: 'https://x.example.com/mcp', tokn: {{from_env: T}}}}
        """,
    )
    found = errors(project)
    assert not any(secret in line for line in found), found
    assert any(
        "spec.credentials[0].auth" in line and "unknown field" in line and "not shown" in line
        for line in found
    ), found
    assert any("unknown field 'tokn'; did you mean 'token'?" in line for line in found), found
