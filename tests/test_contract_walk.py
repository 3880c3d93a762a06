"""DESIGN.md's statements tried one by one from the command line, as a user reads them.

Each test drives the CLI (``CliRunner``, or a real process where a pipe matters) in a fresh
project holding the example manifests and the embedded local provider, and checks what the
user sees:

- "Unknown keys are errors with a "did you mean" hint": a misspelt ``type:`` of a tool, an
  environment's config or networking, a credential's auth or an initial event is named as
  the unknown key it is, with the hint, not only as "missing required field 'type'"; a
  misspelt ``ref`` of an agent's skill, or ``memory_store`` of a deployment's resource, is
  named so too, not answered with the wire form's fields;
- "`environment: python-data` and `vaults: [github]` are references by name": written as
  the agent's ``{ref: NAME}``, they are answered with the form they take;
- README: "A reader that stops early ends the command quietly with exit 141 ... so a script
  with pipefail never mistakes a cut-short plan": also a plan bigger than a pipe holds,
  written in one piece, whose first write the kernel cut short when the reader left.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.gitops import cli, edit, make_workdir
from support.reliability import clean_env


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


# --- Unknown keys: a misspelt type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "old", "new", "where"),
    [
        (
            "agents.yaml",
            "- type: mcp_toolset",
            "- typ: mcp_toolset",
            "agents.yaml:22:7: spec.tools[1].typ",
        ),
        (
            "environments.yaml",
            "type: cloud",
            "tpye: cloud",
            "environments.yaml:9:5: spec.config.tpye",
        ),
        (
            "environments.yaml",
            "type: limited",
            "Type: limited",
            "environments.yaml:11:7: spec.config.networking.Type",
        ),
        (
            "vaults.yaml",
            "type: static_bearer",
            "tpye: static_bearer",
            "vaults.yaml:16:9: spec.credentials[0].auth.tpye",
        ),
        (
            "deployments.yaml",
            "- type: user.message",
            "- tpye: user.message",
            "deployments.yaml:12:7: spec.initial_events[0].tpye",
        ),
    ],
    ids=["tool", "environment-config", "networking", "credential-auth", "initial-event"],
)
def test_a_misspelt_type_key_is_an_unknown_key_with_a_hint(
    workdir: Path, file: str, old: str, new: str, where: str
) -> None:
    edit(workdir / "manifests" / file, old, new)
    result = cli("validate")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    typo = where.rsplit(".", 1)[1]
    assert f"manifests/{where}: unknown field '{typo}'; did you mean 'type'?" in result.stderr
    # one problem, said once: the missing type is what the misspelt key was meant to be
    assert "missing required field 'type'" not in result.stderr, result.stderr


def test_a_misspelt_ref_of_an_agents_skill_says_ref(workdir: Path) -> None:
    # DESIGN: "An Agent's `skills:` item `{ref: pdf-tools}` follows the newest version"
    edit(workdir / "manifests/agents.yaml", "{ref: review-checklist}", "{rf: review-checklist}")
    result = cli("validate")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert (
        "manifests/agents.yaml:43:8: spec.skills[0].rf: unknown field 'rf'; did you mean 'ref'?"
    ) in result.stderr, result.stderr
    # not the wire form's fields, as if {ref: ...} were no way to name a skill
    assert "skill_id" not in result.stderr, result.stderr


def test_a_misspelt_memory_store_of_a_deployments_resource_says_memory_store(
    workdir: Path,
) -> None:
    # DESIGN: "A Deployment's `resources:` item `{memory_store: NAME, access, ...}` mounts it"
    edit(workdir / "manifests/deployments.yaml", "- memory_store: ", "- memory_stor: ")
    result = cli("validate")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert (
        "manifests/deployments.yaml:17:7: spec.resources[0].memory_stor: unknown field "
        "'memory_stor'; did you mean 'memory_store'?"
    ) in result.stderr, result.stderr


# --- References: environment and vaults by name, agent as {ref, version} -------------------------


@pytest.mark.parametrize(
    ("old", "new", "where", "hint"),
    [
        (
            "environment: python-data",
            "environment: {ref: python-data}",
            "manifests/deployments.yaml:9:3: spec.environment",
            "environment: python-data",
        ),
        (
            "vaults: [github]",
            "vaults: [{ref: github}]",
            "manifests/deployments.yaml:10:12: spec.vaults[0]",
            "vaults: [github]",
        ),
    ],
    ids=["environment", "vault"],
)
def test_a_reference_written_like_the_agents_ref_says_to_write_the_name(
    workdir: Path, old: str, new: str, where: str, hint: str
) -> None:
    # DESIGN: "`agent: {ref: coder, version: 5}` pins ... `environment: python-data` and
    # `vaults: [github]` are references by name": the form the agent takes, written here,
    # is answered with the form this field takes, not only "expected a string"
    edit(workdir / "manifests/deployments.yaml", old, new)
    result = cli("validate")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert f"{where}: " in result.stderr, result.stderr
    assert hint in result.stderr, result.stderr


# --- A reader that stops early: exit 141, also for one big write ---------------------------------


def test_a_big_plan_cut_short_by_its_reader_exits_141(tmp_path: Path) -> None:
    agents = "".join(
        f"---\nkind: Agent\nname: a{i}\nspec: {{model: claude-sonnet-4-6, system: agent {i}}}\n"
        for i in range(300)
    )
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/agents.yaml").write_text(agents)
    with subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "plan", "--format", "json"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as plan:
        assert plan.stdout is not None and plan.stderr is not None
        assert plan.stdout.read(100)  # ~300 KB of JSON: far more than a pipe holds
        plan.stdout.close()  # `| head -c 100`: the reader leaves
        stderr = plan.stderr.read().decode()
        status = plan.wait(timeout=120)
    assert status == 141, stderr  # not 0: the plan was cut short
    assert stderr == "", stderr  # quietly: no "Broken pipe", no "Exception ignored"
