"""Generated bad manifests through the CLI: ``validate`` and ``plan`` refuse each one the way
the contract says (exit 1, ``Error: ...`` naming ``file:line:col`` of the bad value, no
traceback, no "bug", nothing written), whatever kind, field or YAML oddity is involved.

A valid project holding every kind (Agent, Environment, Vault, Deployment with a rollout,
Skill, MemoryStore, Policy) is spoilt in one place per example: a scalar field becomes a list
or a mapping (never valid for any scalar field), or a raw YAML oddity (a binary tag, a lone
surrogate escape, an alias, a merge key, a Python tag, a huge number in a typed field...) is
written where a scalar was. The examples are few (the default suite runs them in seconds); the
loader's own fuzzing without the CLI is ``test_manifest_fuzz.py``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.reliability import RECONCILER_VARS, provider_snapshot

from reconciler.cli import main

DOCUMENTS: list[dict[str, Any]] = list(
    yaml.safe_load_all(
        """\
kind: Agent
name: coder
spec:
  model: {id: claude-opus-4-6, effort: high}
  description: Writes code.
  system: {from_file: prompt.md}
  tools:
    - type: agent_toolset_20260401
      default_config: {enabled: true, permission_policy: {type: always_allow}}
    - type: mcp_toolset
      mcp_server_name: github
  mcp_servers: [{type: url, name: github, url: "https://mcp.example.com/mcp"}]
  skills: [{ref: checklist}]
  metadata: {owner: platform}
ignore_changes: [metadata.owner]
---
kind: Environment
name: sandbox
spec:
  description: Python.
  config:
    type: cloud
    networking:
      type: limited
      allowed_hosts: [api.github.com]
      allow_package_managers: true
    packages: {pip: [pandas]}
protect: true
---
kind: Vault
name: keys
spec:
  display_name: Keys
  credentials:
    - name: gh
      auth:
        type: static_bearer
        mcp_server_url: "https://mcp.example.com/mcp"
        token: {from_env: FUZZ_TOKEN}
---
kind: MemoryStore
name: notes
spec:
  description: Notes.
  memories:
    - {path: /a.md, content: hello}
---
kind: Skill
name: checklist
spec: {source: skill}
---
kind: Deployment
name: nightly
spec:
  agent: {ref: coder, version: latest}
  environment: sandbox
  vaults: [keys]
  resources: [{memory_store: notes, access: read_only}]
  initial_events: [{type: user.message, content: [{type: text, text: Go.}]}]
  schedule: {type: cron, expression: "0 2 * * 1-5", timezone: Europe/Berlin}
  rollout:
    checks: [{message: Review PR 42, contains: [PR 42]}]
---
kind: Policy
name: guardrails
spec:
  rules:
    - name: owner
      kinds: [Agent]
      expression: has(metadata.owner)
      message: agents name their owner
      level: advisory
"""
    )
)
SENTINEL = "FUZZ-SENTINEL-VALUE"
#: raw YAML written in place of a scalar: each is an error wherever it stands
ODDITIES = [
    "!!binary aGVsbG8=",
    '"\\ud800"',
    "*nowhere",
    "!!python/object/apply:os.system [echo]",
    "!!set {a}",
    "!!timestamp 2001-12-14",
    "{<<: {a: b}}",
    "[1, [2, {3: [4]}]]",
    "{zz-unknown: 1}",
    "[" * 200 + "]" * 200,
]


def _scalar_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _scalar_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _scalar_paths(value, (*path, index))
    else:
        yield path


SCALARS = [(index, path) for index, doc in enumerate(DOCUMENTS) for path in _scalar_paths(doc)]


def _with(index: int, path: tuple[Any, ...], value: Any) -> str:
    import copy

    docs = copy.deepcopy(DOCUMENTS)
    node: Any = docs[index]
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return yaml.safe_dump_all(docs, sort_keys=False, width=1000, default_flow_style=None)


def _line_of(text: str, index: int, path: tuple[Any, ...]) -> int:
    """The line (1-based) where the value at ``path`` of document ``index`` starts."""
    node = list(yaml.compose_all(text))[index]
    for step in path:
        if isinstance(step, int):
            node = node.value[step]
        else:
            node = next(v for k, v in node.value if k.value == step)
    return int(node.start_mark.line) + 1


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()  # the repository a skill's files must stay in
        (root / "manifests/skill").mkdir(parents=True)
        (root / "manifests/skill/SKILL.md").write_text(
            "---\nname: checklist\ndescription: A checklist.\n---\nCheck.\n"
        )
        (root / "manifests/prompt.md").write_text("You write code.\n")
        (root / "manifests/all.yaml").write_text(yaml.safe_dump_all(DOCUMENTS, sort_keys=False))
        os.chdir(root)
        for var in RECONCILER_VARS:
            os.environ.pop(var, None)
        os.environ["FUZZ_TOKEN"] = "fuzz-token-value-3c1a"
        try:
            for command in ("validate", "plan"):
                result = _run(command)
                assert result.exit_code == 0, (command, result.stdout, result.stderr)
            yield root
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def _refused(text: str, line: int, what: str) -> None:
    Path("manifests/all.yaml").write_text(text, encoding="utf-8")
    for command in ("validate", "plan"):
        result = _run(command)
        err = result.stderr
        context = (what, command, err or result.stdout)
        assert result.exit_code == 1, context
        assert isinstance(result.exception, SystemExit), (*context, repr(result.exception))
        assert err.startswith("Error: "), context
        assert "Traceback" not in err + result.stdout, context
        assert "bug" not in err.lower(), context
        assert "fuzz-token-value" not in err + result.stdout, context
        places = [int(n) for n in re.findall(r"manifests/all\.yaml:(\d+):\d+: ", err)]
        assert line in places, (*context, f"expected line {line}")
    assert not Path("state").exists(), "a refused command wrote the lockfile"
    assert provider_snapshot(Path(".reconciler/provider.db")) == [], "the provider changed"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    where=st.sampled_from(SCALARS),
    value=st.one_of(
        st.lists(st.integers() | st.text(max_size=5), min_size=1, max_size=3),
        st.dictionaries(st.sampled_from(["a", "zz", "1"]), st.integers(), min_size=1),
    ),
)
def test_a_list_or_mapping_where_a_scalar_goes_is_refused_at_its_line(
    project: Path, where: tuple[int, tuple[Any, ...]], value: Any
) -> None:
    index, path = where
    text = _with(index, path, value)
    _refused(text, _line_of(text, index, path), f"{DOCUMENTS[index]['kind']} {path} = {value!r}")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(where=st.sampled_from(SCALARS), oddity=st.sampled_from(ODDITIES))
def test_a_yaml_oddity_where_a_scalar_goes_is_refused_at_its_line(
    project: Path, where: tuple[int, tuple[Any, ...]], oddity: str
) -> None:
    index, path = where
    text = _with(index, path, SENTINEL)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if SENTINEL in row)
    _refused(text.replace(SENTINEL, oddity), line, f"{DOCUMENTS[index]['kind']} {path} = {oddity}")
