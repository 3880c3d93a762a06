"""QA of what users and CI read and feed back: saved plans, JSON/Markdown/text output,
``--detailed-exitcode``, ``validate``, ``fmt`` and ``schema`` (one test per defect found).

Every test drives the CLI in-process (click's runner) from a fresh copy of the example
manifests against the embedded local provider, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import LOCKFILE, cli, edit, make_workdir, ok

from reconciler.provider import ProviderClient

REVIEWER = "Be specific and kind."


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_a_saved_plan_is_refused_when_the_lockfile_it_was_made_from_is_missing(
    workdir: Path,
) -> None:
    """A plan made from a lockfile, applied where that lockfile is not (a wrong --lockfile, a
    checkout without it), was carried out and wrote a new lockfile of another lineage holding
    only what it changed: the state the plan was reviewed against was never consulted."""
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")
    ok("plan", "--out", "plan.json")
    lineage = json.loads((workdir / LOCKFILE).read_text())["lineage"]
    result = cli("--lockfile", "elsewhere/reconciler.lock", "apply", "plan.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "the saved plan was made from the lockfile of lineage" in result.stderr
    assert lineage in result.stderr and "elsewhere/reconciler.lock" in result.stderr
    assert not (workdir / "elsewhere/reconciler.lock").exists()  # no new state begun
    # with the lockfile it was made from, the same plan applies
    assert "Apply complete: 0 created, 2 updated" in ok("apply", "plan.json").stdout


AGENT_WITH_WIRE_SKILL = """\
kind: Agent
name: helper
spec:
  model: claude-sonnet-4-6
  skills:
    - {type: custom, skill_id: skill_01abc, version: 3}
"""
DEPLOYMENT_WITH_BUDGET = """\
kind: Deployment
name: budgeted
spec:
  agent: {ref: reviewer}
  environment: python-data
  initial_events:
    - type: user.message
      content: [{type: text, text: hi}]
  budget: {type: limit, max_list_cost: {amount: 2500, currency: USD}}
"""
AGENT_MOVED_FROM_NULL = """\
kind: Agent
name: helper
moved_from:
spec:
  model: claude-sonnet-4-6
"""


@pytest.mark.parametrize(
    "document",
    [AGENT_WITH_WIRE_SKILL, DEPLOYMENT_WITH_BUDGET, AGENT_MOVED_FROM_NULL],
    ids=["skill-version-int", "budget-amount-int", "moved-from-empty"],
)
def test_the_json_schema_accepts_what_validate_accepts(workdir: Path, document: str) -> None:
    """Editors and CI linters using `reconciler schema` flagged documents validate accepts:
    an integer skill version or budget amount (the loader reads them as the wire's strings)
    and an empty `moved_from:`."""
    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    (workdir / "manifests/extra.yaml").write_text(document)
    ok("validate")
    validator = jsonschema.Draft202012Validator(json.loads(ok("schema").stdout))
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(document))]
    assert errors == []


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        (
            "skills.yaml",
            "name: review-checklist\n",
            "name: review-checklist\nignore_changes: [display_name]\n",
        ),
        ("memory_stores.yaml", "path: /conventions.md", "path: conventions.md"),
        ("deployments.yaml", '"0 2 * * 1-5"', "'@daily'"),
        ("deployments.yaml", '"0 2 * * 1-5"', "'0 2 * *'"),
        ("environments.yaml", "allow_package_managers: true", "allow_package_managers: false"),
        ("agents.yaml", "name: coder\n", "name: coder\nignore_changes: [metdata.owner]\n"),
        ("agents.yaml", "name: coder\n", "name: coder\nignore_changes: [spec.system]\n"),
        ("agents.yaml", "name: coder\n", "name: coder\nignore_changes: [metadata..owner]\n"),
    ],
    ids=[
        "skill-ignore-changes",
        "memory-path-without-slash",
        "cron-macro",
        "cron-4-fields",
        "packages-without-package-managers",
        "ignore-changes-typo",
        "ignore-changes-spec-prefix",
        "ignore-changes-empty-segment",
    ],
)
def test_the_json_schema_rejects_what_validate_rejects(
    workdir: Path, file: str, old: str, new: str
) -> None:
    """An editor using `reconciler schema` showed no problem in documents validate refuses,
    though the schema can say it: ignore_changes on a Skill, a memory path not under /."""
    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    path = workdir / "manifests" / file
    edit(path, old, new)
    assert cli("validate").exit_code == 1
    validator = jsonschema.Draft202012Validator(json.loads(ok("schema").stdout))
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert [e for d in documents for e in validator.iter_errors(d)]


def test_fmt_rewrites_a_crlf_file_with_lf_everywhere_also_after_comments(workdir: Path) -> None:
    """A file checked out with CRLF line endings (git on Windows) came out of fmt with LF
    lines except after each comment, which kept its CR: mixed line endings, not the LF its
    help promises, and CRs that the next editor shows as ^M."""
    path = workdir / "manifests/crlf.yaml"
    path.write_bytes(b"name: a\r\nkind: Agent\r\nspec:  # the spec\r\n  model: m  # the model\r\n")
    ok("fmt", str(path))
    assert (
        path.read_bytes() == b"kind: Agent\nname: a\nspec:  # the spec\n  model: m  # the model\n"
    )
    assert cli("fmt", "--check", str(path)).exit_code == 0


def test_every_workflow_job_that_commits_the_lockfile_starts_from_the_newest_one() -> None:
    """The prune-apply job applied the reviewed plan to the lockfile of the commit the run
    started from: an apply on main while the reviewer took their time made that lockfile
    old, and committing the new one back (`git pull --rebase`) then conflicted, so what the
    prune did was never recorded on main."""
    import yaml
    from support.gitops import REPO

    jobs = yaml.safe_load((REPO / "examples/github-actions/reconciler.yml").read_text())["jobs"]
    committing = {
        name: job
        for name, job in jobs.items()
        if any("git add state/reconciler.lock" in s.get("run", "") for s in job["steps"])
    }
    assert set(committing) == {"apply", "prune-apply"}
    for name, job in committing.items():
        runs = [s.get("run", "") for s in job["steps"]]
        fresh = [
            i
            for i, r in enumerate(runs)
            if "git checkout origin/main -- state/reconciler.lock" in r
        ]
        applies = [i for i, r in enumerate(runs) if "reconciler apply" in r]
        assert fresh and applies and fresh[0] < applies[0], name


def test_blast_radius_of_an_environment_says_affected_for_a_pinned_deployment_as_documented(
    workdir: Path,
) -> None:
    """docs/json-format.md said `follows_latest: true` means the deployment follows latest,
    but for a changed environment (vault, memory store) it is true for every deployment
    that uses it, one that pins its agent's version included: the doc now says so."""
    ok("apply", "--auto-approve")
    edit(
        workdir / "manifests/deployments.yaml",
        "agent: {ref: reviewer}",
        "agent: {ref: reviewer, version: 1}",
    )
    edit(workdir / "manifests/environments.yaml", "Python 3 with", "Python 3.12 with")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [radius] = [r for r in plan["blast_radius"] if r["address"] == "environment.python-data"]
    assert radius["deployments"] == [
        {"deployment": "deployment.nightly-review", "follows_latest": True, "pinned_version": None}
    ]
    from support.gitops import REPO

    doc = (REPO / "docs/json-format.md").read_text()
    row = next(
        line for line in doc.splitlines() if line.startswith("| `deployments[].follows_latest`")
    )
    assert "environment, vault or memory store (always `true`" in row


def test_fmt_output_is_formatted_when_a_comment_precedes_a_key_fmt_moves_first(
    workdir: Path,
) -> None:
    """A comment line above `name:` in a credential, after a flow mapping such as
    `token: {from_env: T}`: fmt wrote the comment after a bare `-`, and the next fmt (or the
    pre-commit hook's fmt --check) changed the file again."""
    path = workdir / "manifests/vaults.yaml"
    edit(
        path,
        "    - name: github-mcp      # address: vault.github.credential.github-mcp\n"
        "      display_name: GitHub MCP token\n",
        "    - display_name: GitHub MCP token\n",
    )
    path.write_text(
        path.read_text()
        + "      # the address is vault.github.credential.github-mcp\n      name: github-mcp\n"
    )
    ok("validate")
    ok("fmt")
    assert cli("fmt", "--check").exit_code == 0, path.read_text()
    assert "- name: github-mcp" in path.read_text()
    ok("validate")


def test_drift_ignore_unmanaged_never_says_nothing_was_changed_outside_git(
    workdir: Path,
) -> None:
    """With --ignore-unmanaged, an agent clicked together in the console was left out, and
    the all-clear still said "nothing was changed outside git". It now says what it left
    out (the exit code and the JSON stay those of no drift, as asked)."""
    from support.gitops import out_of_band

    ok("apply", "--auto-approve")
    out_of_band(lambda c: c.agents.create({"name": "clicked", "model": "claude-sonnet-4-6"}))
    said = ok("drift", "--ignore-unmanaged").stdout
    assert "nothing was changed outside git" not in said, said
    assert "1 unmanaged resource left out (--ignore-unmanaged)" in said
    markdown = ok("drift", "--ignore-unmanaged", "--format", "markdown").stdout
    assert "1 unmanaged resource left out (--ignore-unmanaged)" in markdown
    assert (
        json.loads(ok("drift", "--ignore-unmanaged", "--format", "json").stdout)["has_drift"]
        is False
    )


def test_a_targeted_plan_of_a_removed_document_does_not_say_it_matches_the_manifests(
    workdir: Path,
) -> None:
    """`plan --target` of a resource whose document was removed said "The targeted
    resources match the manifests." above the note that it is left alone."""
    (workdir / "manifests/scratch.yaml").write_text(
        "kind: Environment\nname: scratch\nspec:\n  config: {type: cloud}\n"
    )
    ok("apply", "--auto-approve")
    (workdir / "manifests/scratch.yaml").unlink()
    result = cli("plan", "--target", "environment.scratch", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout
    assert "match the manifests" not in result.stdout, result.stdout
    assert "1 resource is left alone" in result.stdout
    assert "environment.scratch (env_" in result.stdout  # listed under Left alone:


def test_github_annotations_never_land_in_a_redirected_plan(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In GitHub Actions, `plan --format markdown --out plan.json > plan.md` (docs/ci.md) put
    the manifest errors' workflow commands into plan.md, where the runner never reads them:
    no annotation on the pull request. The runner reads workflow commands on stderr too."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    edit(workdir / "manifests/agents.yaml", "effort: high", "efort: high")
    for args in (("validate",), ("plan", "--format", "markdown"), ("plan", "--format", "json")):
        result = cli(*args)
        assert result.exit_code == 1
        assert "::error" not in result.stdout, (args, result.stdout)
        assert "::error file=manifests/agents.yaml," in result.stderr, args


TOOL_WITH_JSON_SCHEMA_REF = """\
kind: Agent
name: tooly
spec:
  model: claude-sonnet-4-6
  tools:
    - type: custom
      name: lookup
      description: Look a thing up
      input_schema:
        type: object
        properties:
          q: {$ref: "#/$defs/query"}
          opts: {$ref: "#/$defs/opts", description: optional}
        $defs:
          query: {type: string}
          opts: {type: object}
"""


def test_a_custom_tool_schema_using_json_schema_ref_applies_and_converges(
    workdir: Path,
) -> None:
    """A custom tool's input_schema with a JSON Schema `$ref` (pydantic writes them for any
    nested model) was taken for the plan's own `{"$ref": ADDRESS}` placeholder: the plan
    showed `(ref #/$defs/query)`, apply failed ("refers to #/$defs/query, which has no
    successful action") and the plan never became clean."""
    from support.gitops import out_of_band, remote_id

    (workdir / "manifests/tooly.yaml").write_text(TOOL_WITH_JSON_SCHEMA_REF)
    text = ok("plan").stdout
    assert "(ref #/$defs/query)" not in text
    assert '{"$ref": "#/$defs/query"}' in text
    plan = json.loads(ok("plan", "--format", "json").stdout)
    [tooly] = [a for a in plan["actions"] if a["address"] == "agent.tooly"]
    [tools] = [c["new"] for c in tooly["changes"] if c["path"] == "tools"]
    properties = tools[0]["input_schema"]["properties"]
    assert properties["q"] == {"$literal": {"$ref": "#/$defs/query"}}  # docs/json-format.md
    ok("apply", "--auto-approve")
    live = out_of_band(lambda c: c.agents.retrieve(remote_id("agent.tooly")))
    schema = live["tools"][0]["input_schema"]
    assert schema["properties"] == {
        "q": {"$ref": "#/$defs/query"},
        "opts": {"$ref": "#/$defs/opts", "description": "optional"},
    }
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_json_schema_ref_added_to_a_live_tool_reads_as_written_in_plan_and_drift(
    workdir: Path,
) -> None:
    """Field changes hold live and manifest values, never placeholders; a `$ref` object
    among them (a property added to a tool's input_schema) read `(ref #/$defs/zed)`, as if
    it named a resource of the plan."""
    from support.gitops import out_of_band, remote_id

    (workdir / "manifests/tooly.yaml").write_text(TOOL_WITH_JSON_SCHEMA_REF)
    ok("apply", "--auto-approve")
    edit(
        workdir / "manifests/tooly.yaml",
        '          q: {$ref: "#/$defs/query"}\n',
        '          q: {$ref: "#/$defs/query"}\n          z: {$ref: "#/$defs/zed"}\n',
    )
    for fmt in ("text", "markdown"):
        said = ok("plan", "--format", fmt).stdout
        assert "(ref #/$defs/zed)" not in said, said
        assert 'tools[0].input_schema.properties.z: {"$ref": "#/$defs/zed"}' in said
    ok("apply", "--auto-approve")
    agent = remote_id("agent.tooly")

    async def widen(c: ProviderClient) -> dict[str, Any]:
        live = await c.agents.retrieve(agent)
        tools = live["tools"]
        tools[0]["input_schema"]["properties"]["w"] = {"$ref": "#/$defs/zed"}
        return await c.agents.update(agent, {"version": live["version"], "tools": tools})

    out_of_band(widen)
    drift = cli("drift").stdout
    assert "(ref #/$defs/zed)" not in drift, drift
    assert 'tools[0].input_schema.properties.w: {"$ref": "#/$defs/zed"}' in drift, drift


def test_a_target_given_twice_is_planned_and_named_once(workdir: Path) -> None:
    """`--target agent.coder --target agent.coder` (a script that adds a target per changed
    file) named the address twice in the plan's heading and in the JSON `targets`."""
    twice = ("--target", "agent.coder", "--target", "agent.coder")
    plan = json.loads(ok("plan", "--format", "json", *twice).stdout)
    assert plan["targets"] == ["agent.coder"]
    assert "(targeted: agent.coder)" in ok("plan", *twice).stdout


def test_fmt_formats_every_file_it_can_and_names_the_ones_it_cannot(workdir: Path) -> None:
    """One file that is not YAML stopped fmt in the middle: the files before it were
    rewritten without a word ("reformatted ..." never printed), those after it were left
    unformatted, and fmt --check listed none of them."""
    manifests = workdir / "manifests"
    (manifests / "a.yaml").write_text("name: a\nkind: Agent\nspec: {model: m}\n")
    (manifests / "b.yaml").write_text("kind: Agent\nname: b\nspec: {model: m\n")
    (manifests / "c.yaml").write_text("name: c\nkind: Agent\nspec: {model: m}\n")
    check = cli("fmt", "--check")
    assert check.exit_code == 1
    assert "would reformat manifests/a.yaml" in check.stdout
    assert "would reformat manifests/c.yaml" in check.stdout
    assert "manifests/b.yaml:4:1: invalid YAML" in check.stderr
    result = cli("fmt")
    assert result.exit_code == 1
    assert "reformatted manifests/a.yaml" in result.stdout
    assert "reformatted manifests/c.yaml" in result.stdout
    assert "manifests/b.yaml:4:1: invalid YAML" in result.stderr
    assert (manifests / "c.yaml").read_text().startswith("kind: Agent\nname: c\n")
    assert (manifests / "b.yaml").read_text() == "kind: Agent\nname: b\nspec: {model: m\n"


def test_fmt_names_a_custom_yaml_tag_at_its_place_instead_of_crashing(workdir: Path) -> None:
    """`spec: !custom {...}` made fmt end with "unexpected ConstructorError ... This is a bug
    in reconciler"; validate says the tag is unsupported at its line, and fmt now does too."""
    (workdir / "manifests/tagged.yaml").write_text(
        "kind: Agent\nname: a\nspec: !custom {model: m}\n"
    )
    result = cli("fmt")
    assert result.exit_code == 1
    assert "bug in reconciler" not in result.output + result.stderr
    assert "manifests/tagged.yaml:3:7:" in result.stderr


def test_fmt_names_a_value_nested_too_deeply_instead_of_crashing(workdir: Path) -> None:
    """A value nested a few hundred levels deep ended fmt with "unexpected RecursionError
    ... This is a bug in reconciler"; validate names the place, and fmt now does too."""
    deep = "[" * 300 + "]" * 300
    (workdir / "manifests/deep.yaml").write_text(
        f"kind: Agent\nname: a\nspec:\n  model: m\n  metadata: {deep}\n"
    )
    for args in (("fmt",), ("fmt", "--check")):
        result = cli(*args)
        assert result.exit_code == 1
        assert "bug in reconciler" not in result.output + result.stderr
        assert "manifests/deep.yaml:5:" in result.stderr and "nested deeper than" in result.stderr


def test_a_saved_plan_of_another_project_says_which_option_applies_it(workdir: Path) -> None:
    """`reconciler --project web plan --out p.json` then `reconciler apply p.json` (as
    plan's hint says) was refused with only "the saved plan is for project 'web', not
    'default'"; it now names the option that applies it."""
    ok("--project", "web", "plan", "--out", "p.json")
    result = cli("apply", "p.json")
    assert result.exit_code == 1
    assert "pass --project web" in result.stderr, result.stderr


def test_fmt_leaves_a_skills_file_alone_also_outside_the_manifests_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/ci.md configured the fmt hook for another manifests directory with `files:`
    only; fmt then took `--manifests` as `manifests/` and rewrote a skill's YAML file named
    by the hook, which uploads a new skill version at the next apply."""
    make_workdir(tmp_path, monkeypatch, manifests=False)
    skill = tmp_path / "infra/agents/skills/x"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: x\ndescription: X.\n---\nhi\n")
    data = skill / "data.yaml"
    data.write_text("name: z\nkind: Agent\n")
    result = ok("fmt", "infra/agents/skills/x/data.yaml")
    assert data.read_text() == "name: z\nkind: Agent\n"
    assert "a skill's file" in result.stderr


def test_a_saved_plan_says_a_resource_archived_since_was_archived(workdir: Path) -> None:
    """An environment archived between `plan --out` and `apply FILE` was refused as
    "changed since the plan (updated_at A -> B)": archiving moves updated_at, which was
    checked first. The refusal now says what happened."""
    from support.gitops import out_of_band, remote_id

    ok("apply", "--auto-approve")
    edit(workdir / "manifests/environments.yaml", "Python 3 with", "Python 3.13 with")
    ok("plan", "--out", "plan.json")
    env = remote_id("environment.python-data")
    out_of_band(lambda c: c.environments.archive(env))
    result = cli("apply", "plan.json")
    assert result.exit_code == 1
    assert "refused: environment.python-data was archived since the plan" in result.stdout


def test_help_says_twins_make_plan_exit_2_and_drift_report_them() -> None:
    """A plan with twins (or lockfile entries not ours) exits 2 with --detailed-exitcode and
    drift reports twins (README), but `plan --help` and `drift --help` did not say so."""
    plan_help = " ".join(ok("plan", "--help").stdout.split())
    assert "twins or lockfile entries not ours need a person" in plan_help
    assert "Twins and lockfile entries not ours exit 2 too" in plan_help
    assert "twins (a second live object" in " ".join(ok("drift", "--help").stdout.split())


def test_a_plan_with_changes_also_says_what_apply_records_in_the_lockfile(workdir: Path) -> None:
    """After a lost lockfile, a plan with one change listed the resources found again by
    their tags as "5 unchanged resources are not shown": only a plan with nothing else to
    do said that apply records them in the lockfile (as apply then does)."""
    ok("apply", "--auto-approve")
    (workdir / LOCKFILE).unlink()
    edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")
    for fmt in ("text", "markdown"):
        said = " ".join(ok("plan", "--format", fmt).stdout.split())
        assert "Apply also updates the lockfile: it records 5 resources (" in said, said
        assert "found again by their ownership tags" in said


def test_a_metadata_key_that_looks_like_a_placeholder_applies_and_converges(
    workdir: Path,
) -> None:
    """Metadata keys are free text (validate accepts `$ref`); the plan read a metadata map
    holding `$ref` as a reference it could not predict, and never converged."""
    from support.gitops import out_of_band, remote_id

    (workdir / "manifests/odd.yaml").write_text(
        'kind: Agent\nname: odd\nspec:\n  model: claude-sonnet-4-6\n  metadata: {"$ref": x}\n'
    )
    ok("apply", "--auto-approve")
    live = out_of_band(lambda c: c.agents.retrieve(remote_id("agent.odd")))
    assert live["metadata"]["$ref"] == "x" and "$literal" not in live["metadata"]
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_blast_radius_has_no_entry_for_a_change_no_deployment_uses_as_documented(
    workdir: Path,
) -> None:
    """docs/json-format.md said `blast_radius` holds every changed or archived resource, with
    `deployments` that "may be empty"; a changed agent that no deployment uses has no entry
    at all (the text plan shows no "Blast radius" for it either): the doc now says so."""
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "model: claude-sonnet-4-6", "model: claude-opus-4-6")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    assert [a["address"] for a in plan["actions"] if a["type"] == "update"] == ["agent.coder"]
    assert plan["blast_radius"] == []
    from support.gitops import REPO

    doc = (REPO / "docs/json-format.md").read_text()
    rows = [
        line
        for line in doc.splitlines()
        if line.startswith(("| `blast_radius`", "| `deployments` |"))
    ]
    assert len(rows) == 2 and "may be empty" not in rows[1], rows
    assert "no deployment uses has no entry" in rows[0], rows
