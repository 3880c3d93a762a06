"""Policies as a gate: ``kind: Policy`` rules (CEL) checked by validate, plan and apply.

Each test writes manifests and a policy, runs the command a user runs, and reads what they
see: a mandatory rule stops the command (exit 1, ``file:line`` of the resource, the rule's
message and policy, nothing changed); an advisory rule is a warning in every plan format;
a bad rule fails at validate at the policy's line; the shipped examples in
``examples/policies/`` do what their names say.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir
from support.reliability import provider_snapshot

from reconciler.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "policies"

MANIFESTS = """\
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  metadata: {owner: platform}
---
kind: Environment
name: sandbox
spec:
  config:
    type: cloud
    networking: {type: unrestricted}
  metadata: {owner: platform}
---
kind: Vault
name: keys
spec:
  metadata: {owner: platform}
---
kind: Deployment
name: nightly
spec:
  agent: coder
  environment: sandbox
  vaults: [keys]
  initial_events: [{type: user.message, content: [{type: text, text: Go.}]}]
  metadata: {owner: platform}
"""

#: a rule per kind that the manifests above break, and where each breaking document starts
BROKEN = {
    "Agent": ("spec.model == 'claude-opus-4-6'", "manifests/main.yaml:1:1", "agent.coder"),
    "Environment": (
        "spec.config.networking.type == 'limited'",
        "manifests/main.yaml:7:1",
        "environment.sandbox",
    ),
    "Vault": ("has(spec.display_name)", "manifests/main.yaml:15:1", "vault.keys"),
    "Deployment": ("has(spec.description)", "manifests/main.yaml:20:1", "deployment.nightly"),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = make_workdir(tmp_path, monkeypatch, manifests=False)
    (work / "manifests").mkdir()
    (work / "manifests/main.yaml").write_text(MANIFESTS)
    return work


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def policy(kind: str, expression: str, level: str, message: str = "must comply") -> str:
    return (
        "kind: Policy\nname: guardrails\nspec:\n  rules:\n"
        f"    - name: the-rule\n      kinds: [{kind}]\n"
        f"      expression: {json.dumps(expression)}\n"
        f"      message: {message}\n      level: {level}\n"
    )


def nothing_changed(workdir: Path) -> None:
    assert not (workdir / "state/reconciler.lock").exists()
    assert provider_snapshot(workdir / ".reconciler/provider.db") == []  # nothing created


# --- mandatory: a gate ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_mandatory_rule_stops_validate_plan_and_apply(workdir: Path, kind: str) -> None:
    expression, where, address = BROKEN[kind]
    (workdir / "manifests/policy.yaml").write_text(
        policy(kind, expression, "mandatory", "resources must comply")
    )
    for args in (("validate",), ("plan",), ("apply", "--auto-approve")):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.stdout)
        assert "1 mandatory policy rule fails (nothing was changed)" in result.stderr
        assert (
            f"{where}: {address}: resources must comply (policy guardrails, rule 'the-rule', "
            "mandatory)" in result.stderr
        )
    nothing_changed(workdir)


def test_a_saved_plan_is_not_applied_past_a_mandatory_rule_added_since(workdir: Path) -> None:
    ok("plan", "--out", "plan.json")
    expression, where, address = BROKEN["Agent"]
    (workdir / "manifests/policy.yaml").write_text(policy("Agent", expression, "mandatory"))
    result = cli("apply", "plan.json")
    assert result.exit_code == 1, result.stdout
    assert f"{where}: {address}: must comply (policy guardrails" in result.stderr
    nothing_changed(workdir)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_an_advisory_rule_warns_in_every_plan_format_and_does_not_block(
    workdir: Path, kind: str
) -> None:
    expression, where, address = BROKEN[kind]
    (workdir / "manifests/policy.yaml").write_text(
        policy(kind, expression, "advisory", "please comply")
    )
    validate = ok("validate")
    assert f"Warning: {where}: {address}: please comply" in validate.stderr
    text = ok("plan").stdout
    assert "Policy warnings (advisory rules; apply is not blocked):" in text
    assert f"  {address} ({where}): please comply (policy guardrails, rule 'the-rule')" in text
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert data["policy_warnings"] == [
        {
            "address": address,
            "location": where,
            "policy": "guardrails",
            "rule": "rule 'the-rule'",
            "message": "please comply",
        }
    ]
    markdown = ok("plan", "--format", "markdown").stdout
    assert "#### Policy warnings" in markdown and f"`{address}`" in markdown
    ok("apply", "--auto-approve")
    # applied, and still a warning (no blocking) on the next, empty plan
    again = ok("plan").stdout
    assert again.startswith("No changes.") and "please comply" in again


def test_a_policy_is_never_a_remote_resource(workdir: Path) -> None:
    (workdir / "manifests/policy.yaml").write_text(policy("Agent", "has(spec.model)", "mandatory"))
    out = ok("validate").stdout
    assert "checked against 1 policy (1 rule)" in out
    assert "policy.guardrails" in out
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert not [a for a in data["actions"] if "policy" in a["address"]]
    ok("apply", "--auto-approve")
    lock = json.loads((workdir / "state/reconciler.lock").read_text())
    assert not [a for a in lock["resources"] if a.startswith("policy")]


# --- bad rules fail at validate, at the policy's line -----------------------------------------


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("spec.model == ", "does not compile as CEL"),
        (
            "spec.modle == 'x'",
            "spec.modle is not a field of the Agent spec (did you mean spec.model?)",
        ),
        ("spec.tools[0].nme == 'x'", "spec.tools[].nme is not a field of the Agent spec"),
        # a typo in a variable was only found per resource, with the CEL library's whole
        # activation (kilobytes of its internals) as the message, at the resource's line
        (
            "specs.model == 'x'",
            (
                "'specs' is not a variable (the variables are spec, name, kind and metadata); "
                "did you mean spec?"
            ),
        ),
        ("has(metdata.owner)", "'metdata' is not a variable"),
    ],
)
def test_a_bad_expression_fails_validate_naming_the_policy_file_and_line(
    workdir: Path, expression: str, words: str
) -> None:
    (workdir / "manifests/policy.yaml").write_text(policy("Agent", expression, "mandatory"))
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/policy.yaml:7:19: spec.rules[0].expression: " in result.stderr
    assert words in result.stderr


def test_a_bad_expression_is_said_beside_the_policys_other_errors(workdir: Path) -> None:
    """A typo elsewhere in the policy (a second rule's level, the description's key) hid a
    rule's expression that does not compile until it was fixed."""
    text = policy("Agent", "spec.modle == 'x'", "mandatory")
    text = text.replace("spec:\n", "spec:\n  descripton: typo\n")
    text += "    - {name: other, kinds: [Agent], expression: 'true', message: m, level: hard}\n"
    (workdir / "manifests/policy.yaml").write_text(text)
    result = cli("validate")
    assert result.exit_code == 1
    assert "spec.descripton: unknown field" in result.stderr, result.stderr
    assert "spec.rules[1].level" in result.stderr, result.stderr
    assert (
        "manifests/policy.yaml:8:19: spec.rules[0].expression: spec.modle is not a field of the "
        "Agent spec (did you mean spec.model?)"
    ) in result.stderr, result.stderr


def test_a_rule_name_used_twice_is_said_beside_the_policys_other_errors(workdir: Path) -> None:
    text = policy("Agent", "has(spec.model)", "mandatory").replace("spec:\n", "spec:\n  x: 1\n")
    text += "    - {name: the-rule, kinds: [Agent], expression: 'true', message: m}\n"
    (workdir / "manifests/policy.yaml").write_text(text)
    result = cli("validate")
    assert result.exit_code == 1
    assert "spec.x: unknown field" in result.stderr, result.stderr
    assert "spec.rules[1].name: rule name 'the-rule' is used twice" in result.stderr, result.stderr


def test_the_variables_of_macros_and_cel_type_names_are_no_typos(workdir: Path) -> None:
    (workdir / "manifests/policy.yaml").write_text(
        policy(
            "Agent",
            "!has(spec.tools) || spec.tools.all(t, t.type != '' && type(t.type) == string)"
            " && [1, 2].exists(n, n > 1) && {'a': 1}.map(k, k).size() == 1",
            "mandatory",
        )
    )
    ok("validate")


def test_a_field_read_with_brackets_is_checked_as_the_field_it_names(workdir: Path) -> None:
    # spec['model'] is CEL for spec.model: validate refused it as "spec.[] is not a field"
    (workdir / "manifests/policy.yaml").write_text(
        policy("Agent", "spec['model'] != '' && spec.metadata['owner'] != ''", "mandatory")
    )
    ok("validate")
    (workdir / "manifests/policy.yaml").write_text(
        policy("Agent", "spec['modle'] != ''", "mandatory")
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "spec.modle is not a field of the Agent spec (did you mean spec.model?)" in (
        result.stderr
    )


def test_a_field_read_under_has_may_be_one_a_newer_schema_adds(workdir: Path) -> None:
    (workdir / "manifests/policy.yaml").write_text(
        policy("Deployment", "has(spec.rollout) && size(spec.rollout.checks) > 0", "advisory")
    )
    ok("validate")


def test_a_rule_that_raises_on_one_resource_names_it(workdir: Path) -> None:
    # description is optional: the agent has none, so reading it raises on that resource
    (workdir / "manifests/policy.yaml").write_text(
        policy("Agent", "size(spec.description) > 0", "mandatory")
    )
    result = cli("plan")
    assert result.exit_code == 1
    assert "manifests/main.yaml:1:1: agent.coder: " in result.stderr
    assert ": the rule could not be checked on this resource" in result.stderr
    assert "guard it with has()" in result.stderr
    nothing_changed(workdir)


def test_a_number_beyond_cel_int_is_read_as_a_double_not_a_crash(workdir: Path) -> None:
    """A custom tool's input_schema may bound a number beyond 64 bits (JSON Schema allows
    any); with any policy in the manifests, validate said "unexpected ValueError: overflow
    ... This is a bug", even for a rule over another kind. CEL's int is 64-bit: such a
    number is read as a double, as a JSON number it is."""
    (workdir / "manifests/tool.yaml").write_text(
        "kind: Agent\nname: tooled\nspec:\n  model: claude-sonnet-4-6\n"
        "  metadata: {owner: platform}\n"
        "  tools:\n    - type: custom\n      name: count\n      description: Counts.\n"
        "      input_schema:\n        type: object\n"
        "        properties: {n: {type: integer, maximum: 100000000000000000000}}\n"
    )
    (workdir / "manifests/policy.yaml").write_text(
        policy("Vault", "has(spec.metadata)", "mandatory")
    )
    ok("validate")
    (workdir / "manifests/policy.yaml").write_text(
        policy(
            "Agent",
            "!has(spec.tools) || spec.tools.all(t, !has(t.input_schema)"
            " || !has(t.input_schema.properties.n) || t.input_schema.properties.n.maximum < 1000)",
            "mandatory",
        )
    )
    result = cli("validate")
    assert result.exit_code == 1, result.stdout
    assert "manifests/tool.yaml:1:1: agent.tooled: must comply" in result.stderr, result.stderr
    assert "bug" not in result.stderr
    nothing_changed(workdir)


def test_a_missing_field_read_through_an_index_says_so(workdir: Path) -> None:
    (workdir / "manifests/policy.yaml").write_text(
        policy("Agent", "spec.tools[0].type == 'x'", "mandatory")
    )
    result = cli("plan")
    assert result.exit_code == 1
    assert (
        "agent.coder: must comply: the rule could not be checked on this resource: a field it "
        "reads is not set. If the field is optional, guard it with has()" in result.stderr
    )
    assert "CELEvalError" not in result.stderr


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        # each said it with the CEL library's reprs (Token('RULE', 'relation_gt'), <class
        # 'celpy.celtypes.StringType'>) and, whatever the error, told to guard a field with has()
        (
            "spec.model > 3",
            (
                "must comply: the rule could not be checked on this resource: no operator or "
                "function takes a string and an integer here; fix the expression"
            ),
        ),
        (
            "spec.model",
            (
                "the rule's expression gave a string ('claude-sonnet-4-6'), not true or false; "
                "fix the expression"
            ),
        ),
        ("size(spec.model)", "the rule's expression gave an integer (17), not true or false"),
    ],
)
def test_a_rule_that_is_wrong_for_the_values_says_so_in_cel_words(
    workdir: Path, expression: str, words: str
) -> None:
    (workdir / "manifests/policy.yaml").write_text(policy("Agent", expression, "mandatory"))
    result = cli("plan")
    assert result.exit_code == 1
    assert f"manifests/main.yaml:1:1: agent.coder: {words}" in result.stderr
    for internal in ("Token(", "celpy", "celtypes", "StringType", "guard it with has()"):
        assert internal not in result.stderr
    nothing_changed(workdir)


def test_an_unknown_kind_in_a_rule_is_an_error_with_a_hint(workdir: Path) -> None:
    (workdir / "manifests/policy.yaml").write_text(policy("Agnt", "true", "mandatory"))
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/policy.yaml:6:15: spec.rules[0].kinds[0]: unknown kind 'Agnt'" in result.stderr
    )
    assert "did you mean Agent?" in result.stderr


# --- central policies -----------------------------------------------------------------------


def test_validate_checks_central_policies_kept_outside_the_manifests(
    workdir: Path, tmp_path: Path
) -> None:
    central = tmp_path / "platform-policies"
    central.mkdir()
    (central / "env.yaml").write_text(
        policy("Environment", BROKEN["Environment"][0], "mandatory", "limited networking only")
    )
    ok("validate")  # the manifests alone pass
    result = cli("validate", "--policies", str(central))
    assert result.exit_code == 1
    assert "manifests/main.yaml:7:1: environment.sandbox: limited networking only" in result.stderr
    (central / "stray.yaml").write_text("kind: Agent\nname: x\nspec: {model: m}\n")
    result = cli("validate", "--policies", str(central))
    assert result.exit_code == 1
    assert "agent.x is not a policy" in result.stderr


def test_a_central_policy_named_as_one_of_the_manifests_is_a_duplicate(
    workdir: Path, tmp_path: Path
) -> None:
    """A platform team's `guardrails` and the repository's own `guardrails` were both run,
    each finding said "(policy guardrails, rule 'the-rule', ...)": which file to fix?"""
    (workdir / "manifests/policy.yaml").write_text(policy("Agent", "true", "advisory"))
    central = tmp_path / "platform-policies"
    central.mkdir()
    (central / "env.yaml").write_text(policy("Environment", "false", "mandatory"))
    result = cli("validate", "--policies", str(central))
    assert result.exit_code == 1
    assert (
        "platform-policies/env.yaml:1:1: name: duplicate policy guardrails: also defined at "
        "manifests/policy.yaml:1:1; rename one of them"
    ) in result.stderr, result.stderr
    assert "must comply" not in result.stderr


@pytest.mark.parametrize(
    ("stray", "what"),
    [
        ("kind: Agent\n", "this document"),  # no name, no spec
        ("kind: Agent\nname: x\nspec:\n  model: m\n  skills: [{ref: nowhere}]\n", "agent.x"),
        ("kind: Agnet\nname: x\n", "this document"),
    ],
)
def test_a_document_that_is_no_policy_in_central_policies_is_said_so(
    workdir: Path, tmp_path: Path, stray: str, what: str
) -> None:
    # `--policies DIR` with an Agent document (or the manifests' agents.yaml) said "missing
    # required field 'name'" or "unknown skill 'nowhere'": errors of a document that has no
    # business there, not that it is no policy
    central = tmp_path / "platform-policies"
    central.mkdir()
    (central / "env.yaml").write_text(policy("Environment", "true", "mandatory"))
    (central / "stray.yaml").write_text(stray)
    result = cli("validate", "--policies", str(central))
    assert result.exit_code == 1
    assert (
        f"platform-policies/stray.yaml:1:1: {what} is not a policy: a --policies directory holds "
        "only kind: Policy documents"
    ) in result.stderr, result.stderr
    assert "missing required field" not in result.stderr
    assert "unknown" not in result.stderr


# --- the shipped examples -------------------------------------------------------------------

GOOD_AGENT = """\
kind: Agent
name: safe
spec:
  model: {id: claude-opus-4-6, effort: high}
  tools:
    - type: agent_toolset_20260401
      default_config: {permission_policy: {type: always_ask}}
      configs:
        - {name: read, permission_policy: {type: always_allow}}
        - {name: write, enabled: false}
  metadata: {owner: platform}
"""

EXAMPLE_CASES: dict[str, tuple[str, str, str]] = {
    # example file -> (a manifest it accepts, one it refuses, the address refused)
    "allowed-models.yaml": (
        GOOD_AGENT,
        "kind: Agent\nname: rogue\nspec: {model: claude-3-opus, metadata: {owner: x}}\n",
        "agent.rogue",
    ),
    "limited-networking.yaml": (
        (
            "kind: Environment\nname: tight\nspec:\n  config:\n    type: cloud\n"
            "    networking: {type: limited, allowed_hosts: [api.github.com]}\n"
        ),
        "kind: Environment\nname: open\nspec: {config: {type: cloud}}\n",
        "environment.open",
    ),
    "no-always-allow-dangerous-tools.yaml": (
        GOOD_AGENT,
        (
            "kind: Agent\nname: yolo\nspec:\n  model: claude-sonnet-4-6\n  tools:\n"
            "    - type: agent_toolset_20260401\n"
            "      configs: [{name: bash, permission_policy: {type: always_ask}}]\n"
        ),
        "agent.yolo",  # edit and write fall back to the toolset's default, always_allow
    ),
    "rollout-gate.yaml": (
        (
            "kind: Agent\nname: a\nspec: {model: m}\n---\nkind: Environment\nname: e\nspec: {}\n"
            "---\nkind: Deployment\nname: gated\nspec: {agent: a, environment: e, "
            "initial_events: [{type: user.message, content: [{type: text, text: Go.}]}], "
            "rollout: {checks: [{message: Review PR 42, contains: [PR 42]}]}}\n"
        ),
        (
            "kind: Agent\nname: a\nspec: {model: m}\n---\nkind: Environment\nname: e\nspec: {}\n"
            "---\nkind: Deployment\nname: ungated\nspec: {agent: a, environment: e, "
            "initial_events: [{type: user.message, content: [{type: text, text: Go.}]}]}\n"
        ),
        "deployment.ungated",
    ),
    "owner-required.yaml": (
        GOOD_AGENT,
        "kind: Vault\nname: nobody\nspec: {metadata: {team: x}}\n",
        "vault.nobody",
    ),
}


def test_every_example_policy_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_CASES)


@pytest.mark.parametrize("name", sorted(EXAMPLE_CASES))
def test_each_example_policy_accepts_and_refuses_what_it_says(workdir: Path, name: str) -> None:
    good, bad, address = EXAMPLE_CASES[name]
    rule: dict[str, Any] = {}
    (workdir / "manifests/main.yaml").unlink()
    if good:
        (workdir / "manifests/main.yaml").write_text(good)
        assert (
            "checked against 1 policy" in ok("validate", "--policies", str(EXAMPLES / name)).stdout
        )
    (workdir / "manifests/main.yaml").write_text(bad)
    result = cli("validate", "--policies", str(EXAMPLES / name))
    advisory = "level: advisory" in (EXAMPLES / name).read_text()
    assert result.exit_code == (0 if advisory else 1), (result.stdout, result.stderr, rule)
    assert f"{address}: " in result.stderr
    assert f"(policy {name.removesuffix('.yaml')}, " in result.stderr


def test_the_examples_run_together_against_the_quick_start_manifests(workdir: Path) -> None:
    shutil.rmtree(workdir / "manifests")
    shutil.copytree(REPO / "manifests", workdir / "manifests")
    result = cli("validate", "--policies", str(EXAMPLES))
    # the quick start's coder agent leaves edit and write to the toolset's always_allow
    assert result.exit_code == 1
    assert "agent.coder: bash, edit and write must not run under always_allow" in result.stderr


def test_the_json_schema_knows_policies(workdir: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = json.loads(ok("schema").stdout)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert list(validator.iter_errors(doc)) == [], path
    bad = yaml.safe_load(policy("Agnt", "true", "sometimes"))
    assert len(list(validator.iter_errors(bad))) >= 2  # the kind and the level
    assert list(
        validator.iter_errors(
            {**yaml.safe_load(policy("Agent", "true", "advisory")), "protect": True}
        )
    )
