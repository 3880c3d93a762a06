"""Policy rules compare values as Kubernetes CEL does: ``==`` and ``!=`` across types.

CEL's runtime equality is heterogeneous (cel-spec, "Equality"; Kubernetes CEL follows it):
values of distinct types are not equal, so ``==`` gives false and ``!=`` true, never an
error; ``int``, ``uint`` and ``double`` compare as numbers; lists and maps compare element by
element with the same rule, and ``in`` over a list finds an element by it. Ordering (``<``,
``>``...) compares numbers of distinct types too (cel-spec allows it at run time, as
Kubernetes does); across other types it stays an error. The typical case is a deployment's agent pin, a
version number or the word ``latest``: ``spec.agent.version != 'latest'`` must be true for
``version: 3``, not "no operator takes an integer and a string".

Each test writes manifests and a policy and runs ``validate`` as a user does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir

from reconciler.cli import main

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
---
kind: Deployment
name: nightly
spec:
  agent: {ref: coder, version: PIN}
  environment: sandbox
  initial_events: [{type: user.message, content: [{type: text, text: Go.}]}]
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = make_workdir(tmp_path, monkeypatch, manifests=False)
    (work / "manifests").mkdir()
    return work


def validate(workdir: Path, kind: str, expression: str, pin: str = "3") -> Result:
    (workdir / "manifests/main.yaml").write_text(MANIFESTS.replace("PIN", pin))
    (workdir / "manifests/policy.yaml").write_text(
        "kind: Policy\nname: guardrails\nspec:\n  rules:\n"
        f"    - kinds: [{kind}]\n      expression: {json.dumps(expression)}\n"
        "      message: the rule is false\n"
    )
    return CliRunner().invoke(main, ["validate"], catch_exceptions=False)


def test_a_numeric_pin_is_not_latest(workdir: Path) -> None:
    # it said "no operator or function takes an integer and a string here"
    result = validate(workdir, "Deployment", "spec.agent.version != 'latest'", pin="3")
    assert result.exit_code == 0, result.stderr
    result = validate(workdir, "Deployment", "spec.agent.version == 'latest'", pin="3")
    assert result.exit_code == 1
    assert (
        "manifests/main.yaml:14:1: deployment.nightly: the rule is false (policy guardrails, "
        "rule 1, mandatory)" in result.stderr
    )
    assert validate(workdir, "Deployment", "spec.agent.version == 3", pin="3").exit_code == 0


def test_a_pin_written_latest_reads_latest(workdir: Path) -> None:
    # the document as written: `version: latest` read as null let a pin policy pass it
    rule = "spec.agent.version != 'latest'"
    result = validate(workdir, "Deployment", rule, pin="latest")
    assert result.exit_code == 1
    assert "deployment.nightly: the rule is false (policy guardrails" in result.stderr
    assert "could not be checked" not in result.stderr
    guarded = "has(spec.agent.version) && spec.agent.version != 'latest'"
    assert validate(workdir, "Deployment", guarded, pin="latest").exit_code == 1
    assert validate(workdir, "Deployment", guarded, pin="2").exit_code == 0
    assert validate(workdir, "Deployment", "spec.agent.version == 'latest'", pin="latest").exit_code == 0


@pytest.mark.parametrize(
    ("expression", "holds"),
    [
        # int and string
        ("spec.metadata.owner != 1", True),
        ("spec.metadata.owner == 1", False),
        ("1 == 'platform'", False),
        # null and a value, both ways round
        ("spec.model != null", True),
        ("null != spec.model", True),
        ("null == 1", False),
        ("1 != null", True),
        ("null == null", True),
        # numbers of different CEL types compare as numbers
        ("1 == 1.0", True),
        ("1u == 1", True),
        ("2 != 1.5", True),
        # a boolean is not a number
        ("true == 1", False),
        ("false != 0", True),
        # lists and maps, element by element
        ("[1, 'a'] == ['a', 1]", False),
        ("[1, 'a'] == [1, 'a']", True),
        ("[1] != ['1']", True),
        ("{'a': 1} == {'a': 'x'}", False),
        ("{'a': 1} == {'a': 1.0}", True),
        ("spec.metadata != 'platform'", True),
        ("[] == {}", False),
        # membership uses the same equality
        ("'platform' in [1, 'platform']", True),
        ("'x' in [1, 2]", False),
    ],
)
def test_equality_across_types_is_true_or_false(
    workdir: Path, expression: str, holds: bool
) -> None:
    result = validate(workdir, "Agent", expression)
    assert result.exit_code == (0 if holds else 1), (expression, result.stderr)
    assert "could not be checked" not in result.stderr
    if not holds:
        assert "agent.coder: the rule is false (policy guardrails" in result.stderr


@pytest.mark.parametrize(
    ("expression", "holds"),
    [
        ("1 < 1.5", True),
        ("1.5 >= 1", True),
        ("1 <= 1.0", True),
        ("2 > 1u", True),
        ("-1 < 1u", True),
        ("1u < 2", True),
        ("1u > 2.5", False),
        ("2.5 < 2", False),
        # exact, not through a double: 2^53 + 1 is more than 2^53
        ("9007199254740993 > 9007199254740992.0", True),
        # NaN is ordered against nothing
        ("double('NaN') < 1", False),
        ("double('NaN') >= 1", False),
    ],
)
def test_ordering_across_numeric_types_compares_numbers(
    workdir: Path, expression: str, holds: bool
) -> None:
    # `1 < 1.5` said "no operator or function takes an integer and a number here"
    result = validate(workdir, "Agent", expression)
    assert result.exit_code == (0 if holds else 1), (expression, result.stderr)
    assert "could not be checked" not in result.stderr


def test_a_numeric_pin_orders_against_a_double(workdir: Path) -> None:
    rule = "spec.agent.version >= 2.5"
    assert validate(workdir, "Deployment", rule, pin="3").exit_code == 0
    result = validate(workdir, "Deployment", rule, pin="2")
    assert result.exit_code == 1
    assert "deployment.nightly: the rule is false (policy guardrails" in result.stderr
    assert "could not be checked" not in result.stderr


@pytest.mark.parametrize(
    "expression",
    ["spec.model > 3", "1 < 'a'", "null < 1", "[1] < [2]", "{} > 1", "true < 1", "1 > false"],
)
def test_ordering_across_other_types_stays_an_error(workdir: Path, expression: str) -> None:
    result = validate(workdir, "Agent", expression)
    assert result.exit_code == 1
    assert "agent.coder: the rule is false: the rule could not be checked" in result.stderr
