"""What a policy author reads when a rule is wrong: plain sentences at the right place.

- A function the CEL library does not have (a typo, ``startswith`` for ``startsWith``, or a
  Kubernetes extension such as ``lowerAscii``) is an error of the policy at ``validate``,
  at the expression's ``file:line:col`` with a "did you mean", as an unknown variable is;
  it was found per resource, with kilobytes of the library's activation as the message and
  the advice to guard a field with has().
- A rule that fails on a resource says why in CEL's words, never the library's class reprs
  (``StringType('x') with type: '<class 'celpy.celtypes.StringType'>'``) or "return error
  for overflow" for a string that is no number.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir

from reconciler.cli import main

AGENT = """\
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  tools: [{type: agent_toolset_20260401}]
  metadata: {owner: platform}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = make_workdir(tmp_path, monkeypatch, manifests=False)
    (work / "manifests").mkdir()
    (work / "manifests/main.yaml").write_text(AGENT)
    return work


def validate(expression: str) -> Result:
    Path("manifests/policy.yaml").write_text(
        "kind: Policy\nname: guardrails\nspec:\n  rules:\n    - kinds: [Agent]\n"
        f"      expression: {json.dumps(expression)}\n      message: the rule is false\n"
    )
    return CliRunner().invoke(main, ["validate"], catch_exceptions=False)


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        (
            "spec.model.startswith('claude-')",
            "'startswith' is not a CEL function here; did you mean startsWith?",
        ),
        ("nope(spec.model)", "'nope' is not a CEL function here; the functions are: "),
        ("spec.model.lowerAscii() == 'x'", "'lowerAscii' is not a CEL function here"),
    ],
)
def test_an_unknown_function_fails_validate_at_the_expression(
    workdir: Path, expression: str, words: str
) -> None:
    result = validate(expression)
    assert result.exit_code == 1
    assert "manifests/policy.yaml:6:19: spec.rules[0].expression: " in result.stderr
    assert words in result.stderr
    assert "Activation" not in result.stderr
    assert "_in_" not in result.stderr  # an operator's internal name is no function
    assert "main.yaml" not in result.stderr  # an error of the policy, not of the resource


def test_the_functions_and_macros_cel_has_are_no_typos(workdir: Path) -> None:
    expression = (
        "size(spec.model) > 0 && spec.model.size() > 0 && spec.model.contains('claude') "
        "&& spec.model.startsWith('claude') && spec.model.endsWith('-6') "
        "&& spec.model.matches('^claude') && int('3') == 3 && uint(3) == 3u "
        "&& double(1) == 1.0 && string(1) == '1' && bool('true') && bytes('a') == b'a' "
        "&& type(spec.model) == string && has(spec.metadata.owner) "
        "&& spec.tools.all(t, has(t.type)) && spec.tools.exists(t, t.type != '') "
        "&& spec.tools.exists_one(t, true) && spec.tools.map(t, t.type).size() == 1 "
        "&& spec.tools.filter(t, true).size() == 1 "
        "&& timestamp('2026-01-01T00:00:00Z') < timestamp('2027-01-01T00:00:00Z') "
        "&& duration('1s') < duration('2s') "
        "&& timestamp('2026-01-01T00:00:00Z').getFullYear() == 2026"
    )
    result = validate(expression)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        (
            "spec.model.id == 'claude-opus-4-6'",
            "'claude-sonnet-4-6' (a string) has no fields to select; fix the expression",
        ),
        (
            # it said "no such overload" and nothing more
            "spec.metadata.matches('^p')",
            "matches() is called on a map with a string, but takes strings; fix the expression",
        ),
        (
            "spec.model.startsWith(1)",
            "startsWith() is called on a string with an integer, but takes strings",
        ),
        (
            "int(spec.model) > 1",
            "a conversion failed: invalid literal for int() with base 10: "
            "'claude-sonnet-4-6'; fix the expression",
        ),
    ],
)
def test_a_rule_that_fails_on_a_resource_says_why_without_library_words(
    workdir: Path, expression: str, words: str
) -> None:
    result = validate(expression)
    assert result.exit_code == 1
    assert (
        "manifests/main.yaml:1:1: agent.coder: the rule is false: the rule could not be "
        f"checked on this resource: {words}" in result.stderr
    )
    for internal in ("celpy", "celtypes", "StringType", "<class", "overflow", "has()"):
        assert internal not in result.stderr


@pytest.mark.parametrize(
    "expression",
    [
        # inside all()/exists() a missing field met `&&`/`||` and said "no such overload
        # (<class 'celpy.evaluation.CELEvalError'> CELEvalError(*(...)) and ...)"
        "spec.tools.all(t, t.mcp_server_name != 'x')",
        "spec.tools.exists(t, t.mcp_server_name == 'x')",
    ],
)
def test_a_missing_field_read_inside_a_macro_says_which_in_cel_words(
    workdir: Path, expression: str
) -> None:
    # two tools, neither an MCP toolset: the error of each meets the other's in the macro's
    # `&&` / `||`
    (workdir / "manifests/main.yaml").write_text(
        AGENT.replace(
            "tools: [{type: agent_toolset_20260401}]",
            "tools:\n    - {type: agent_toolset_20260401}\n"
            "    - {type: custom, name: lookup, description: Looks up., "
            "input_schema: {type: object}}",
        )
    )
    result = validate(expression)
    assert result.exit_code == 1
    assert (
        "manifests/main.yaml:1:1: agent.coder: the rule is false: the rule could not be "
        "checked on this resource: no such member in mapping: 'mcp_server_name'. If the field "
        "is optional, "
        "guard it with has()" in result.stderr
    ), result.stderr
    for internal in ("celpy", "CELEvalError", "<class", "no such overload"):
        assert internal not in result.stderr


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("spec.tools.all(t, t.typ != 'x')", "spec.tools[].typ"),
        ("spec.tools.exists(t, t.configs.exists(c, c.nam == 'bash'))",
         "spec.tools[].configs[].nam"),
    ],
)  # fmt: skip
def test_a_field_read_through_a_macro_variable_is_checked_at_validate(
    workdir: Path, expression: str, shown: str
) -> None:
    """`spec.tools.all(t, t.typ != 'x')` passed validate (only `spec.` paths were checked)
    and failed on each resource at plan instead; a typo behind a macro's variable is now an
    error of the policy at validate, as one behind `spec.` is."""
    result = validate(expression)
    assert result.exit_code == 1
    assert (
        f"manifests/policy.yaml:6:19: spec.rules[0].expression: {shown} is not a field of the "
        "Agent spec" in result.stderr
    ), result.stderr
    assert "main.yaml" not in result.stderr


@pytest.mark.parametrize(
    "expression",
    [
        "spec.tools.all(t, t.type != 'x')",
        "spec.tools.all(t, !has(t.configs) || t.configs.all(c, c.name != 'x'))",
        # one name bound to two lists: neither is assumed
        "spec.tools.all(t, t.type != '') && spec.mcp_servers.all(t, t.url != '')",
        "spec.metadata.all(k, k != '')",
    ],
)
def test_a_macro_variable_reading_real_fields_passes_validate(
    workdir: Path, expression: str
) -> None:
    result = validate("!has(spec.mcp_servers) || " + expression)
    assert "is not a field" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("spec.tools.all(t, t.typ != 'x')", "spec.tools[].typ is not a field of the Agent spec "
         "(did you mean type?)"),
        ("spec.tools[0].configs[0].nme == 'bash'", "spec.tools[].configs[].nme is not a field "
         "of the Agent spec (did you mean name?)"),
    ],
)  # fmt: skip
def test_a_typo_below_the_top_is_hinted_at_its_own_segment(
    workdir: Path, expression: str, words: str
) -> None:
    """`spec.tools[].typ` was hinted "(did you mean spec.tools?)": the hint looked at the
    first segment only, which is right."""
    result = validate(expression)
    assert result.exit_code == 1
    assert words in result.stderr, result.stderr
