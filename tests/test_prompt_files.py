"""Prompts in their own files: ``system: {from_file: prompts/x.md}``, driven through the CLI.

The file is read relative to the manifest that names it, confined to the repository like a
``from_file`` secret, checked by ``validate``; the plan diffs it line by line like any
string; ``fmt`` keeps the reference; ``import --all-unmanaged`` writes long prompts to files
beside the manifests, and the plan after it is clean.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir, out_of_band

from reconciler.cli import main
from reconciler.provider import ProviderClient

PROMPT = "You review code.\nBe specific and kind.\nNever approve your own changes.\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test-token")
    work = make_workdir(tmp_path, monkeypatch)
    (work / ".git").mkdir()  # the repository the prompt files must stay in
    prompts = work / "manifests/team/prompts"
    prompts.mkdir(parents=True)
    (prompts / "reviewer.md").write_text(PROMPT)
    agents = work / "manifests/agents.yaml"
    text = agents.read_text()
    start = text.index("---\nkind: Agent\nname: reviewer")
    agents.write_text(text[:start])
    (work / "manifests/team/reviewer.yaml").write_text(
        "kind: Agent\nname: reviewer\nspec:\n  model: claude-opus-4-6\n"
        "  system: {from_file: prompts/reviewer.md}   # relative to this file\n"
        "  metadata: {owner: platform-team}\n"
    )
    return work


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def live_agent(name: str) -> dict[str, Any]:
    async def find(client: ProviderClient) -> dict[str, Any]:
        agents = await client.agents.list().to_list()
        [agent] = [a for a in agents if a["name"] == name]
        return agent

    return out_of_band(find)


def test_a_prompt_file_is_sent_as_the_system_prompt_and_diffs_line_by_line(workdir: Path) -> None:
    ok("validate")
    ok("apply", "--auto-approve")
    assert live_agent("reviewer")["system"] == PROMPT
    assert cli("plan", "--detailed-exitcode").exit_code == 0

    prompt = workdir / "manifests/team/prompts/reviewer.md"
    prompt.write_text(PROMPT.replace("specific and kind", "specific, brief and kind"))
    out = ok("plan").stdout
    assert "~ agent.reviewer  update  version 1 -> 2  [system prompt]" in out
    assert "          -Be specific and kind.\n          +Be specific, brief and kind.\n" in out
    assert "           Never approve your own changes.\n" in out  # context, unchanged
    data = json.loads(ok("plan", "--format", "json").stdout)
    [change] = [
        c for a in data["actions"] if a["address"] == "agent.reviewer" for c in a["changes"]
    ]
    assert change["path"] == "system" and change["new"].startswith("You review code.\n")
    ok("apply", "--auto-approve")
    assert "brief" in live_agent("reviewer")["system"]


def test_fmt_keeps_the_file_reference(workdir: Path) -> None:
    ok("fmt")
    assert (
        "system: {from_file: prompts/reviewer.md}"
        in (workdir / "manifests/team/reviewer.yaml").read_text()
    )
    ok("fmt", "--check")


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        ("prompts/missing.md", "text file prompts/missing.md (relative to "),
        ("../../../etc/hostname", "is outside the repository"),
        ("prompts", "is a directory"),
    ],
)
def test_a_bad_prompt_file_fails_validate_at_its_from_file(
    workdir: Path, reference: str, words: str
) -> None:
    manifest = workdir / "manifests/team/reviewer.yaml"
    manifest.write_text(manifest.read_text().replace("prompts/reviewer.md", reference))
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1
        assert "manifests/team/reviewer.yaml:5:" in result.stderr
        assert "spec.system.from_file" in result.stderr
        assert words in result.stderr
    assert not Path("state/reconciler.lock").exists()


def test_a_symlink_out_of_the_repository_is_refused(workdir: Path, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.md"
    outside.write_text("secret stuff\n")
    link = workdir / "manifests/team/prompts/reviewer.md"
    link.unlink()
    os.symlink(outside, link)
    result = cli("validate")
    assert result.exit_code == 1
    assert "is outside the repository" in result.stderr
    assert "secret stuff" not in result.stderr


def test_a_misspelt_file_form_gets_a_hint(workdir: Path) -> None:
    manifest = workdir / "manifests/team/reviewer.yaml"
    manifest.write_text(manifest.read_text().replace("from_file:", "from_fle:"))
    result = cli("validate")
    assert result.exit_code == 1
    assert "expected a text or {from_file: PATH}; did you mean from_file?" in result.stderr


def test_a_deployment_initial_message_may_come_from_a_file(workdir: Path) -> None:
    (workdir / "manifests/kickoff.md").write_text("Review the open pull requests.\nBe brief.\n")
    deployments = workdir / "manifests/deployments.yaml"
    text = deployments.read_text()
    old = "text: Review the pull requests opened or updated in the last 24 hours."
    assert old in text
    deployments.write_text(text.replace(old, "text: {from_file: kickoff.md}"))
    ok("apply", "--auto-approve")

    async def deployment(client: ProviderClient) -> dict[str, Any]:
        [d] = await client.deployments.list().to_list()
        return d

    [event] = out_of_band(deployment)["initial_events"]
    assert event["content"][0]["text"] == "Review the open pull requests.\nBe brief.\n"
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_import_writes_long_prompts_to_files_and_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_workdir(tmp_path, monkeypatch, manifests=False)
    long_prompt = "".join(f"Rule {i}: be careful.\n" for i in range(1, 9))

    async def click(client: ProviderClient) -> None:
        await client.agents.create(
            {"name": "long", "model": "claude-sonnet-4-6", "system": long_prompt}
        )
        await client.agents.create(
            {"name": "short", "model": "claude-sonnet-4-6", "system": "Be brief."}
        )

    out_of_band(click)
    result = ok("import", "--all-unmanaged", "--out", "manifests")
    assert "manifests/prompts/long.md" in result.stdout
    assert (work / "manifests/prompts/long.md").read_text() == long_prompt
    agents = (work / "manifests/agents.yaml").read_text()
    assert "system: {from_file: prompts/long.md}" in agents
    assert "system: Be brief." in agents  # a short prompt stays inline
    assert not (work / "manifests/prompts/short.md").exists()
    ok("validate")
    ok("fmt", "--check")
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_the_json_schema_takes_text_or_a_file(workdir: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(ok("schema").stdout))
    agent = {"kind": "Agent", "name": "a", "spec": {"model": "m", "system": "Be brief."}}
    assert list(validator.iter_errors(agent)) == []
    agent["spec"]["system"] = {"from_file": "prompts/a.md"}
    assert list(validator.iter_errors(agent)) == []
    agent["spec"]["system"] = {"from_fle": "prompts/a.md"}
    assert list(validator.iter_errors(agent))
    text = {"type": "text", "text": {"from_file": "kickoff.md"}}
    deployment = {
        "kind": "Deployment",
        "name": "d",
        "spec": {
            "agent": "a",
            "environment": "e",
            "initial_events": [{"type": "user.message", "content": [text]}],
        },
    }
    assert list(validator.iter_errors(deployment)) == []


def test_a_missing_prompt_file_does_not_hide_the_other_errors_of_its_document(
    workdir: Path,
) -> None:
    # validate reports every error at once: a typo beside a missing prompt file is reported
    # in the same run, not only after the file is fixed
    manifest = workdir / "manifests/team/reviewer.yaml"
    text = manifest.read_text().replace("prompts/reviewer.md", "prompts/missing.md")
    manifest.write_text(text.replace("  model:", "  modle:"))
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/team/reviewer.yaml:5:" in result.stderr
    assert "spec.system.from_file" in result.stderr
    assert "manifests/team/reviewer.yaml:4:3: spec.modle: unknown field 'modle'" in result.stderr
    assert result.stderr.count("spec.system") == 1  # no second error about the system prompt


def test_a_seed_with_both_forms_does_not_hide_the_other_seeds_errors(workdir: Path) -> None:
    stores = workdir / "manifests/memory_stores.yaml"
    stores.write_text(
        stores.read_text().replace(
            "  memories:\n",
            "  memories:\n"
            "    - {path: notes.md, content: relative}\n"
            "    - {path: /both.md, content: x, from_file: team/prompts/reviewer.md}\n",
        )
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "spec.memories[1].from_file: give content or from_file, not both" in result.stderr
    assert "spec.memories[0].path: memory path 'notes.md' must start with '/'" in result.stderr
    assert "Error: 2 errors in manifests" in result.stderr
