"""The CI pieces: the example workflow, the pre-commit hooks, the docs and GitHub annotations.

The workflow and the hooks are checked the way CI would run them: they parse as YAML, and
every `reconciler ...` command line in them parses with the real click command tree (so a
renamed command or flag breaks this test, not a user's pipeline).
"""

from __future__ import annotations

import re
import shlex
import tomllib
import warnings
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from support.gitops import REPO, cli, make_workdir

import reconciler
from reconciler.cli import main
from reconciler.cli.gitops import github_annotations
from reconciler.errors import ManifestError, ManifestIssue

WORKFLOW = REPO / "examples/github-actions/reconciler.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
SEPARATORS = {"|", "||", "&&", ";", "(", ")", "&"}
REDIRECTS = re.compile(r"^\d*(>|>>|<|>&)\d*$")


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script: words up to a separator, redirects dropped."""
    script = script.replace("\\\n", " ")
    commands: list[list[str]] = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        skip = False
        for token in lexer:
            if skip:
                skip = False
            elif token in SEPARATORS:
                if words:
                    commands.append(words)
                words = []
            elif REDIRECTS.match(token):
                skip = True
            else:
                words.append(token)
        if words:
            commands.append(words)
    return commands


def reconciler_calls(script: str) -> list[list[str]]:
    calls = []
    for words in simple_commands(script):
        # `cmd || code=$?` and `if reconciler ...; then` both start a simple command
        while words and words[0] in ("if", "then", "else", "!", "do", "while", "until"):
            words = words[1:]
        if words and words[0] == "reconciler":
            calls.append(words[1:])
    return calls


def parse_command_line(args: list[str]) -> list[str]:
    """Parse ``reconciler ARGS`` with the real command tree, invoking nothing.

    Returns the command path (``["state", "list"]``); raises click.UsageError on an unknown
    command, an unknown flag or a missing argument.
    """
    ctx = main.make_context("reconciler", list(args))
    group: click.Command = main
    path: list[str] = []
    rest = _unparsed(ctx)
    while isinstance(group, click.Group):
        if not rest:
            raise click.UsageError(f"no command after {' '.join(['reconciler', *path])}")
        name, command, rest = group.resolve_command(ctx, rest)
        assert command is not None and name is not None
        path.append(name)
        ctx = command.make_context(name, list(rest), parent=ctx)
        group = command
        rest = _unparsed(ctx) if isinstance(command, click.Group) else []
    return path


def _unparsed(ctx: click.Context) -> list[str]:
    """What a group left for its subcommand (click < 9 splits it over two attributes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        protected = list(getattr(ctx, "protected_args", []))
    return [*protected, *ctx.args]


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def test_parse_command_line_is_strict() -> None:
    assert parse_command_line(["plan", "--out", "p.json"]) == ["plan"]
    assert parse_command_line(["-f", "m", "state", "list"]) == ["state", "list"]
    for bad in (["plan", "--no-such-flag"], ["nonsense"], ["import", "--out"], ["state"]):
        with pytest.raises(click.UsageError):
            parse_command_line(bad)


def test_the_workflow_is_yaml_with_the_three_gitops_jobs() -> None:
    data = workflow()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"pull_request", "push", "schedule"} <= set(triggers)
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"][0]["cron"]
    assert {"plan", "apply", "drift"} <= set(data["jobs"])
    for job in data["jobs"].values():
        assert job["runs-on"] and job["steps"]


def test_every_reconciler_command_in_the_workflow_exists() -> None:
    calls = [
        call
        for job in workflow()["jobs"].values()
        for step in job["steps"]
        if "run" in step
        for call in reconciler_calls(step["run"])
    ]
    used = {tuple(parse_command_line(call)) for call in calls}
    assert used == {("validate",), ("fmt",), ("plan",), ("apply",), ("drift",)}


def test_the_workflow_does_what_the_issue_asks() -> None:
    jobs = workflow()["jobs"]
    scripts = {
        name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()
    }
    assert "reconciler plan --format markdown --out plan.json" in scripts["plan"]
    assert any(s.get("uses", "").startswith("actions/github-script") for s in jobs["plan"]["steps"])
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert "reconciler apply plan.json" in scripts["apply"]
    assert "git push" in scripts["apply"]
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False
    assert "reconciler drift" in scripts["drift"]
    assert 'exit "$code"' in scripts["drift"]  # exit 2 (drift) fails the job


def test_applies_queue_behind_each_other_and_none_is_cancelled() -> None:
    """GitHub keeps one pending run per concurrency group and cancels it when another is
    queued (unless ``queue: max``): a merge's apply waiting behind a running apply was
    cancelled by the next merge or by a reviewed prune-apply (whose approval was then lost),
    and a merged change could go unapplied."""
    jobs = workflow()["jobs"]
    groups = [jobs[name]["concurrency"] for name in ("apply", "prune-apply")]
    assert groups[0]["group"] == groups[1]["group"]
    for group in groups:
        assert group["cancel-in-progress"] is False
        assert group["queue"] == "max", group
    doc = (REPO / "docs/ci.md").read_text()
    assert "queue: max" in doc


# --- what the workflow installs, and who gets the API key -------------------------------------

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: The only form the example may install: this project, from a release tag of its repository.
PINNED = re.compile(
    r"^managed-agents-reconciler @ git\+https://github\.com/OWNER/REPO@v(?P<version>[0-9.]+)$"
)
#: Commands that talk to the provider, and so need the API key (and the manifests' secrets).
NEEDS_KEY = {("plan",), ("apply",), ("drift",)}


def _steps() -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in workflow()["jobs"].items() for step in job["steps"]]


def _expand(word: str, env: dict[str, str]) -> str:
    return re.sub(
        r"\$\{\{\s*env\.(\w+)\s*\}\}|\$\{(\w+)\}|\$(\w+)",
        lambda m: env[next(g for g in m.groups() if g)],
        word,
    )


def pip_requirements() -> list[str]:
    """Every requirement a ``pip install`` of the workflow installs, variables expanded."""
    env = {k: str(v) for k, v in workflow().get("env", {}).items()}
    found = []
    for _, step in _steps():
        for words in simple_commands(step.get("run", "")):
            if words[:2] == ["pip", "install"] or words[:4] == ["python", "-m", "pip", "install"]:
                start = words.index("install") + 1
                found += [_expand(w, env) for w in words[start:] if not w.startswith("-")]
    return found


def test_the_distribution_has_a_name_of_its_own() -> None:
    # `reconciler` on the package index is an unrelated project (versions 0.1.0-0.2.2)
    assert PYPROJECT["name"] == "managed-agents-reconciler"
    assert PYPROJECT["scripts"] == {"reconciler": "reconciler.launch:run"}
    assert PYPROJECT["version"] == reconciler.__version__
    assert cli("--version").stdout.strip().endswith(reconciler.__version__)


def test_the_workflow_installs_this_project_pinned_and_nothing_by_bare_name() -> None:
    requirements = pip_requirements()
    assert len(requirements) == len([s for _, s in _steps() if "Install" in s.get("name", "")])
    assert requirements
    for requirement in requirements:
        match = PINNED.match(requirement)
        assert match, f"the example installs {requirement!r}, not this project pinned to a tag"
        assert match["version"] == PYPROJECT["version"]
    text = WORKFLOW.read_text()
    assert not re.search(r"pip install[^\n]*(?<![-\w])reconciler(?![-\w])", text)


def test_the_release_tag_is_the_same_everywhere() -> None:
    tag = "v" + PYPROJECT["version"]
    assert f"rev: {tag}" in (REPO / "docs/ci.md").read_text()
    assert f"rev: {tag}" in HOOKS.read_text()
    assert f"@{tag}" in (REPO / "docs/ci.md").read_text()
    assert f"@{tag}" in (REPO / "README.md").read_text()


def test_the_api_key_goes_only_to_the_steps_that_talk_to_the_provider() -> None:
    data = workflow()
    assert "secrets." not in yaml.safe_dump(data.get("env", {}))
    for job in data["jobs"].values():
        assert "secrets." not in yaml.safe_dump(job.get("env", {}))
    given = 0
    for job, step in _steps():
        commands = {tuple(parse_command_line(c)) for c in reconciler_calls(step.get("run", ""))}
        has_key = "ANTHROPIC_API_KEY" in step.get("env", {})
        assert has_key == bool(commands & NEEDS_KEY), (job, step.get("name"))
        if has_key:
            given += 1
            assert step["env"]["ANTHROPIC_API_KEY"] == "${{ secrets.ANTHROPIC_API_KEY }}"
        else:
            assert "secrets." not in yaml.safe_dump(step), (job, step.get("name"))
    assert given >= 5


def test_pruning_is_a_separate_reviewed_path() -> None:
    jobs = workflow()["jobs"]
    runs = {
        name: [c for s in job["steps"] for c in reconciler_calls(s.get("run", ""))]
        for name, job in jobs.items()
    }
    pruning = {name for name, calls in runs.items() if "--prune" in str(calls)}
    assert pruning == {"prune-plan"}  # never the automatic apply on main
    assert ["plan", "--prune", "--format", "markdown", "--out", "plan.json"] in runs["prune-plan"]
    assert "inputs.prune" in jobs["prune-plan"]["if"]
    apply = jobs["prune-apply"]
    assert apply["needs"] == "prune-plan"
    assert apply["environment"] == "reconciler-prune"  # required reviewers approve first
    assert ["apply", "plan.json"] in runs["prune-apply"]
    assert apply["concurrency"]["group"] == jobs["apply"]["concurrency"]["group"]
    assert "!inputs.prune" in jobs["drift"]["if"]


def test_the_pre_commit_hooks_run_commands_that_exist() -> None:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert {h["id"] for h in hooks} == {"reconciler-validate", "reconciler-fmt"}
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook)
        words = shlex.split(hook["entry"]) + list(hook.get("args", []))
        assert words[0] == "reconciler"
        files = ["manifests/agents.yaml"] if hook.get("pass_filenames", True) else []
        assert parse_command_line(words[1:] + files)[0] in ("validate", "fmt")
        re.compile(hook["files"])


def test_the_commands_in_the_docs_exist() -> None:
    readme = (REPO / "README.md").read_text()
    docs = (REPO / "docs/ci.md").read_text() + readme.split("\n## Use in CI\n", 1)[-1]
    lines = re.findall(r"^reconciler [^\n`|]*", docs, flags=re.MULTILINE)
    inline = re.findall(r"`(reconciler [^`]*)`", docs)
    checked = 0
    for line in lines + inline:
        if re.search(r"[A-Z]{2,}|\.\.\.|\[|<", line.split("#")[0]):
            continue  # a usage pattern (ADDR, [--format ...]), not a command line
        for call in reconciler_calls(line):
            parse_command_line(call)
            checked += 1
    assert checked >= 10


def test_the_readme_has_a_use_in_ci_section() -> None:
    readme = (REPO / "README.md").read_text()
    assert "\n## Use in CI\n" in readme
    section = readme.split("\n## Use in CI\n", 1)[1]
    assert "examples/github-actions/reconciler.yml" in section
    assert "docs/ci.md" in section


# --- GitHub Actions annotations -------------------------------------------------------------


def test_annotations_escape_what_the_runner_would_misread() -> None:
    error = ManifestError(
        [
            ManifestIssue("manifests/a,b.yaml", 3, 5, "bad: 100%\nvalue", "spec.model"),
            ManifestIssue("<secret>", 0, 0, "environment variable X is not set"),
        ]
    )
    assert github_annotations(error) == [
        "::error file=manifests/a%2Cb.yaml,line=3,col=5,title=spec.model::bad: 100%25%0Avalue",
        "::error::environment variable X is not set",
    ]
    assert github_annotations(ValueError("no place")) == []


def test_validation_errors_are_annotated_in_github_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workdir(tmp_path, monkeypatch)
    agents = Path("manifests/agents.yaml")
    agents.write_text(agents.read_text().replace("effort: high", "efort: high"))

    local = cli("validate")
    assert local.exit_code == 1 and "::error" not in local.stdout

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = cli("validate")
    assert result.exit_code == 1
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::error ")]
    assert any(
        re.fullmatch(
            r"::error file=manifests/agents\.yaml,line=\d+,col=\d+,title=spec\.model\.efort::"
            r"unknown field 'efort'; did you mean 'effort'\?",
            line,
        )
        for line in annotations
    ), annotations
    assert "Error: " in result.stderr  # the usual message as well

    plan = cli("plan")  # every command that reads the manifests annotates
    assert plan.exit_code == 1 and "::error file=manifests/agents.yaml" in plan.stderr


ADVISORY_POLICY = """\
kind: Policy
name: guardrails
spec:
  rules:
    - name: owner
      kinds: [Agent]
      expression: "has(metadata.team)"
      message: "agents should name their team, e.g. metadata: {team: x}"
      level: advisory
"""


def test_advisory_policy_findings_are_warning_annotations_in_github_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # validate printed the warning on stderr only: no ::warning on the pull request's line
    make_workdir(tmp_path, monkeypatch)
    Path("manifests/policy.yaml").write_text(ADVISORY_POLICY)

    local = cli("validate")
    assert local.exit_code == 0 and "Warning: manifests/agents.yaml:" in local.stderr
    assert "::warning" not in local.stderr + local.stdout

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = cli("validate")
    assert result.exit_code == 0, result.stderr
    assert "::warning" not in result.stdout
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::")]
    assert annotations == [
        (
            "::warning file=manifests/agents.yaml,line=4,col=1::agent.coder: agents should "
            "name their team, e.g. metadata: {team: x} (policy guardrails, rule 'owner', advisory)"
        ),
        (
            "::warning file=manifests/agents.yaml,line=34,col=1::agent.reviewer: agents should "
            "name their team, e.g. metadata: {team: x} (policy guardrails, rule 'owner', advisory)"
        ),
    ]
    assert "Warning: manifests/agents.yaml:4:1: agent.coder:" in result.stderr  # as before

    # a mandatory finding is an ::error the same way
    Path("manifests/policy.yaml").write_text(ADVISORY_POLICY.replace("advisory", "mandatory"))
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "::error file=manifests/agents.yaml,line=4,col=1::agent.coder: agents should name "
        "their team, e.g. metadata: {team: x} (policy guardrails, rule 'owner', mandatory)"
    ) in result.stderr.splitlines()


def test_advisory_findings_are_still_annotated_when_a_mandatory_rule_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pull request that breaks a mandatory rule and an advisory one got the ::error only:
    # the ::warning showed up on the next push, after the error was fixed
    make_workdir(tmp_path, monkeypatch)
    mandatory = ADVISORY_POLICY.replace("name: guardrails", "name: models").replace(
        "advisory", "mandatory"
    )
    mandatory = mandatory.replace('"has(metadata.team)"', "\"name != 'coder'\"")
    Path("manifests/policy.yaml").write_text(ADVISORY_POLICY + "---\n" + mandatory)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = cli("validate")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("::error file=manifests/agents.yaml,line=4,") for line in lines)
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert len(warnings) == 2, result.stderr  # coder and reviewer lack metadata.team
    assert "Warning: manifests/agents.yaml:34:1: agent.reviewer: agents should" in result.stderr
    assert "1 mandatory policy rule fails" in result.stderr


def test_import_force_takes_over_another_projects_object_as_docs_ci_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/ci.md said "Resources tagged by another project are never taken", while the
    # README, `import --help` and the command itself take one over with --force
    from support.gitops import out_of_band

    make_workdir(tmp_path, monkeypatch)
    tags = {"managed-by": "reconciler", "reconciler-project": "web"}
    body = {"name": "webbot", "model": "claude-sonnet-4-6", "metadata": tags}
    agent = out_of_band(lambda client: client.agents.create(body))
    refused = cli("import", "agent.webbot", agent["id"])
    assert refused.exit_code == 1 and "--force to take it over" in refused.stderr
    taken = cli("import", "--force", "agent.webbot", agent["id"])
    assert taken.exit_code == 0, taken.stderr
    docs = (REPO / "docs/ci.md").read_text()
    section = docs.split("## Adopting what exists: import", 1)[1].split("\n## ", 1)[0]
    assert "never taken" not in section
    assert "takes over an object another project's tags claim" in " ".join(section.split())


def test_every_step_that_reads_the_manifests_secrets_says_where_to_map_them() -> None:
    # plan and apply (a saved plan's apply too: it reads the manifests and their secrets
    # again) need each {from_env: VAR}; the docs must send users to those steps' env:, not to
    # the workflow's top-level env:, which would hand the secrets to every step
    reads_secrets = [
        (job, step.get("name"))
        for job, step in _steps()
        if {tuple(parse_command_line(c)) for c in reconciler_calls(step.get("run", ""))}
        & {("plan",), ("apply",)}
    ]
    text = WORKFLOW.read_text()
    blocks = {
        re.search(r"name: (.*)", block).group(1): block  # type: ignore[union-attr]
        for block in re.split(r"\n(?=      - )", text)
        if re.match(r"\s*- (name|uses|id):", block) and "name: " in block
    }
    for job, name in reads_secrets:
        assert "# Secrets the manifests read" in blocks[name], (job, name)
    setup = (REPO / "docs/ci.md").read_text()
    assert "top-level `env:`" not in setup
