"""Traps a new user meets in plan, validate and friends, each driven through the CLI.

A pin move read as two changes, one typo reported three times, long values cut off with no
way to read them, a host list diffed by index, a manifests directory that may hold no other
YAML, and the small words of the help texts. Every test works in a copy of the example
manifests with the embedded local provider, as the README's quick start does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir, out_of_band, remote_id

from reconciler.cli import main
from reconciler.provider import ProviderClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def headlines(text: str, address: str) -> list[str]:
    return [
        line for line in text.splitlines() if re.match(rf"^ *[-~+/]+ {re.escape(address)}  ", line)
    ]


# --- a pin move is one change --------------------------------------------------------------


def test_a_deployment_whose_pin_follows_a_new_agent_version_is_shown_once(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be specific, brief and kind.")
    out = ok("plan").stdout
    [line] = headlines(out, "deployment.nightly-review")
    assert line == (
        "  ~ deployment.nightly-review  update  pin agent.reviewer@1 -> @2  (follows latest)"
    )
    assert "which will be version 2" in out
    assert "agent.version" not in out
    assert out.rstrip().endswith("Plan: 0 to create, 2 to update, 0 to archive.")
    markdown = ok("plan", "--format", "markdown").stdout
    assert markdown.count("| `deployment.nightly-review` |") == 1


def test_a_changed_pin_alone_is_one_update(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be kind.")
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/deployments.yaml", "{ref: reviewer}", "{ref: reviewer, version: 1}")
    out = ok("plan").stdout
    [line] = headlines(out, "deployment.nightly-review")
    assert "update  pin agent.reviewer@2 -> @1  (pinned)" in line
    assert "reason: the manifest pins agent.reviewer@1" in out
    assert out.rstrip().endswith("Plan: 0 to create, 1 to update, 0 to archive.")
    plan = json.loads(ok("plan", "--format", "json").stdout)
    assert plan["summary"]["update"] == 1
    assert [m["deployment"] for m in plan["pin_moves"]] == ["deployment.nightly-review"]


# --- long values in full, unordered lists by value ------------------------------------------

LONG = "Reviews pull requests " + "and leaves actionable comments " * 12 + "at the very end."


def test_plan_full_shows_long_values_whole(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(
        workdir / "manifests/agents.yaml",
        "description: Reviews pull requests and leaves actionable comments.",
        f"description: {LONG}",
    )
    short = ok("plan").stdout
    assert "at the very end." not in short
    assert "…" in short
    assert "--full shows them whole" in short
    full = ok("plan", "--full").stdout
    assert f'+ "{LONG}"' in full
    assert "--full shows them whole" not in full
    markdown = ok("plan", "--format", "markdown", "--full").stdout
    assert LONG in markdown
    assert f'+ "{LONG}"' in ok("apply", "--auto-approve", "--full").stdout


def test_drift_full_shows_long_values_whole(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")

    async def edit_description(c: ProviderClient) -> object:
        return await c.agents.update(coder, {"description": LONG})

    out_of_band(edit_description)
    short = cli("drift")
    assert short.exit_code == 2
    assert "at the very end." not in short.stdout and "--full" in short.stdout
    full = cli("drift", "--full")
    assert full.exit_code == 2
    assert f'"{LONG}"' in full.stdout


def test_allowed_hosts_diff_by_value_not_by_index(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(
        workdir / "manifests/environments.yaml",
        "        - api.github.com\n",
        "        - aaa.example.com\n        - pypi.org\n",
    )
    out = ok("plan").stdout
    assert '+ config.networking.allowed_hosts: "aaa.example.com"\n' in out
    assert '+ config.networking.allowed_hosts: "pypi.org"\n' in out
    assert '- config.networking.allowed_hosts: "api.github.com"\n' in out
    assert "allowed_hosts[" not in out
    ok("apply", "--auto-approve")
    # reordering the list is no change to the live system (the lockfile records the
    # manifest's new digest: a lockfile-only change, which --detailed-exitcode counts as 2)
    edit(
        workdir / "manifests/environments.yaml",
        "        - aaa.example.com\n        - pypi.org\n",
        "        - pypi.org\n        - aaa.example.com\n",
    )
    replan = cli("plan", "--detailed-exitcode")
    assert replan.stdout.startswith("No changes. The live system matches the manifests.")
    assert "allowed_hosts" not in replan.stdout
    assert json.loads(ok("plan", "--format", "json").stdout)["has_changes"] is False


def test_an_emptied_description_shows_as_the_empty_string_it_sends(workdir: Path) -> None:
    # plan said `description: "Writes..." -> null` for `description: ""`: the manifest, the
    # request and (for an environment) the live object say "", never null
    ok("apply", "--auto-approve")
    files = ("agents", "environments", "deployments", "memory_stores")
    for name in files:
        path = workdir / f"manifests/{name}.yaml"
        path.write_text(re.sub(r"(?m)^  description: .*$", '  description: ""', path.read_text()))
    out = ok("plan").stdout
    assert "-> null" not in out and "+ null" not in out, out
    assert '~ description: "Writes and fixes code in the team\'s repositories." -> ""' in out
    changes = [
        c
        for a in json.loads(ok("plan", "--format", "json").stdout)["actions"]
        for c in a["changes"]
        if c["path"] == "description"
    ]
    assert len(changes) == 5, changes  # two agents, an environment, a deployment, a store
    assert all(c["new"] == "" for c in changes), changes
    ok("apply", "--auto-approve")
    assert cli("plan", "--detailed-exitcode").exit_code == 0
    # the environment stores "" (the agents store null): its next change starts from ""
    edit(workdir / "manifests/environments.yaml", 'description: ""', "description: Data.")
    out = ok("plan").stdout
    assert '~ description: "" -> "Data."' in out, out


def test_a_tool_config_set_back_to_the_default_shows_as_its_field_changing(
    workdir: Path,
) -> None:
    # `enabled: false` -> `true` on web_search showed as the whole config removed:
    # `- tools[0].configs[web_search]: {"name": "web_search", "enabled": false, ...}`
    ok("apply", "--auto-approve")
    agents = workdir / "manifests/agents.yaml"
    edit(agents, "          enabled: false\n", "          enabled: true\n")
    edit(
        agents,
        "        - name: bash\n",
        "        - name: read\n          enabled: false\n        - name: bash\n",
    )
    out = ok("plan").stdout
    assert "~ tools[0].configs[web_search].enabled: false -> true\n" in out, out
    assert "~ tools[0].configs[read].enabled: true -> false\n" in out, out
    assert "configs[web_search]: {" not in out and "configs[read]: {" not in out
    ok("apply", "--auto-approve")
    assert cli("plan", "--detailed-exitcode").exit_code == 0


# --- one error per mistake -------------------------------------------------------------------


def test_a_typo_in_an_agent_is_not_reported_again_by_its_deployment(workdir: Path) -> None:
    edit(workdir / "manifests/agents.yaml", "    effort: high", "    effort: hihg")
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 1 error in manifests:\n")
    assert re.search(r"manifests/agents\.yaml:\d+:\d+: .*effort", result.stderr)
    assert "unknown agent" not in result.stderr
    # a reference to an agent that does not exist at all is still an error
    edit(workdir / "manifests/deployments.yaml", "{ref: reviewer}", "{ref: nobody}")
    assert "unknown agent 'nobody'" in cli("validate").stderr


@pytest.mark.parametrize(
    "typo", ["name: revi ewer", "nme: reviewer", "name: [reviewer]"], ids=["bad", "key", "list"]
)
def test_a_typo_in_an_agents_name_is_not_followed_by_unknown_agent(
    workdir: Path, typo: str
) -> None:
    """A name that did not validate could be any name: references to an agent are not
    reported unknown while an agent document's name is wrong."""
    edit(workdir / "manifests/agents.yaml", "name: reviewer", typo)
    result = cli("validate")
    assert result.exit_code == 1
    assert "unknown agent" not in result.stderr, result.stderr
    assert re.search(r"manifests/agents\.yaml:\d+:\d+: (name|nme)", result.stderr)
    # another kind's references are still checked
    edit(workdir / "manifests/deployments.yaml", "environment: python-data", "environment: nope")
    assert "unknown environment 'nope'" in cli("validate").stderr


def test_a_documents_unknown_references_are_reported_beside_its_other_errors(
    workdir: Path,
) -> None:
    """A deployment with an invalid field and references to nothing: all said in one run,
    each at its place (they were said only once the other error was fixed)."""
    deployments = workdir / "manifests/deployments.yaml"
    edit(deployments, "{ref: reviewer}", "{ref: nobody}")
    edit(deployments, "environment: python-data", "environment: nope")
    edit(deployments, "vaults: [github]", "vaults: [github, v]")
    edit(deployments, "  initial_events:\n", "  initial_events: []\n  old_events:\n")
    result = cli("validate")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: 5 errors in manifests:", result.stderr
    assert re.search(r"deployments\.yaml:8:16: spec\.agent\.ref: unknown agent 'nobody'", lines[1])
    assert re.search(
        r"deployments\.yaml:9:16: spec\.environment: unknown environment 'nope'", lines[2]
    )
    assert re.search(r"deployments\.yaml:10:20: spec\.vaults\[1\]: unknown vault 'v'", lines[3])
    assert re.search(r"deployments\.yaml:11:\d+: spec\.initial_events", lines[4])
    assert re.search(r"deployments\.yaml:12:\d+: spec\.old_events", lines[5])
    # the string form of the agent pin, and an agent's skills, are read as well
    edit(deployments, "{ref: nobody}", "nobody")
    agents = workdir / "manifests/agents.yaml"
    edit(agents, "    effort: high", "    effort: hihg")
    stderr = cli("validate").stderr
    assert re.search(r"deployments\.yaml:8:10: spec\.agent: unknown agent 'nobody'", stderr)
    assert "effort" in stderr


def test_an_invalid_agents_unknown_skill_is_reported_with_its_typo(workdir: Path) -> None:
    agents = workdir / "manifests/agents.yaml"
    edit(agents, "{ref: review-checklist}", "{ref: no-such-skill}")
    edit(agents, "    effort: high", "    effort: hihg")
    result = cli("validate")
    assert result.exit_code == 1
    assert "unknown skill 'no-such-skill'" in result.stderr, result.stderr
    assert "effort" in result.stderr
    # the deployments of the invalid agent do not say "unknown agent"
    assert "unknown agent" not in result.stderr


def test_every_bad_ignore_changes_entry_is_reported_at_once(workdir: Path) -> None:
    agents = workdir / "manifests/agents.yaml"  # agent.reviewer is its last document
    agents.write_text(
        agents.read_text()
        + "ignore_changes:\n  - metdata.owner\n  - system\n  - descripton\n  - spec.model\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 3 errors in manifests:\n")
    lines = result.stderr.splitlines()[1:]
    assert re.match(r"  manifests/agents\.yaml:\d+:5: ignore_changes\[0\]: 'metdata'", lines[0])
    assert re.match(r"  manifests/agents\.yaml:\d+:5: ignore_changes\[2\]: 'descripton'", lines[1])
    assert re.match(r"  manifests/agents\.yaml:\d+:5: ignore_changes\[3\]: .*'model'", lines[2])


def test_a_yaml_error_in_a_file_is_not_followed_by_unknown_references(workdir: Path) -> None:
    edit(workdir / "manifests/agents.yaml", "  system: |", "  system: |\n bad: [")
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 1 error in manifests:\n")
    assert "unknown agent" not in result.stderr


# --- small words --------------------------------------------------------------------------------


def test_messages_say_an_environment_and_an_agent(workdir: Path) -> None:
    (workdir / "manifests/environments.yaml").unlink()
    edit(workdir / "manifests/deployments.yaml", "vaults: [github]", "vaults: []")
    result = cli("validate")
    assert result.exit_code == 1
    assert "add an Environment manifest named python-data" in result.stderr
    assert " a Environment" not in result.stderr


# --- other YAML beside the manifests ------------------------------------------------------------


def test_validate_names_the_files_it_read(workdir: Path) -> None:
    out = ok("validate").stdout
    assert out.splitlines() == [
        "OK: 8 resources in 6 files",
        "  manifests/agents.yaml         agent.coder, agent.reviewer",
        "  manifests/deployments.yaml    deployment.nightly-review",
        "  manifests/environments.yaml   environment.python-data",
        "  manifests/memory_stores.yaml  memory_store.review-notes",
        "  manifests/skills.yaml         skill.review-checklist",
        "  manifests/vaults.yaml         vault.github (1 credential)",
    ]


def test_reconcilerignore_leaves_other_yaml_out(workdir: Path) -> None:
    manifests = workdir / "manifests"
    (manifests / "ci").mkdir()
    workflow = "on:   push\njobs:\n    test: {runs-on: ubuntu-latest}\n"
    (manifests / "ci/workflow.yaml").write_text(workflow)
    (manifests / "values.tmpl.yaml").write_text("- a\n- b\n")
    (manifests / "keep.tmpl.yaml").write_text("kind: Agent\nname: extra\nspec: {model: m}\n")
    failed = cli("validate")
    assert failed.exit_code == 1
    assert "list it in .reconcilerignore" in failed.stderr

    (manifests / ".reconcilerignore").write_text(
        "# not manifests\nci/\n*.tmpl.yaml\n!keep.tmpl.yaml\n"
    )
    out = ok("validate").stdout
    assert out.startswith("OK: 9 resources in 7 files\n")
    assert "  manifests/keep.tmpl.yaml " in out
    assert out.rstrip().endswith(
        "Left out by .reconcilerignore: manifests/ci/workflow.yaml, manifests/values.tmpl.yaml"
    )
    assert "+ agent.extra  create" in ok("plan").stdout
    ok("fmt")
    assert (manifests / "ci/workflow.yaml").read_text() == workflow  # untouched
    ok("fmt", "--check")


# --- protect ------------------------------------------------------------------------------------


def _vault_without_credentials(workdir: Path) -> None:
    vaults = workdir / "manifests/vaults.yaml"
    text = vaults.read_text()
    vaults.write_text(text[: text.index("  credentials:")] + "  credentials: []\nprotect: true\n")


def test_a_protected_vault_covers_its_credentials(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    _vault_without_credentials(workdir)  # protect set in the same change that drops it
    for args in (["plan", "--prune"], ["apply", "--prune", "--auto-approve"]):
        out = ok(*args).stdout
        assert "vault.github.credential.github-mcp  archive" not in out
        assert "vault.github.credential.github-mcp  delete" not in out
        assert (
            "vault.github.credential.github-mcp (vcrd_" in out
            and "but vault.github is protected (protect: true), which covers its credentials; "
            "left alone. To remove it, set protect: false on vault.github, apply, then run "
            "with --prune"
            in out
        )
    assert (
        "vault.github.credential.github-mcp"
        in json.loads((workdir / "state/reconciler.lock").read_text())["resources"]
    )


def test_a_protected_credential_is_not_replaced(workdir: Path) -> None:
    vaults = workdir / "manifests/vaults.yaml"
    vaults.write_text(vaults.read_text() + "protect: true\n")
    ok("apply", "--auto-approve")
    edit(vaults, "url: https://api.githubcopilot.com/mcp/", "url: https://other.example/mcp/")
    out = ok("plan").stdout
    assert "replace" not in out.split("Left alone:")[0]
    assert (
        "needs a replace (auth.mcp_server_url cannot change in place, so the old one would be "
        "deleted), but vault.github is protected" in out
    )
    assert "set protect: false on vault.github, apply, then set it back" in out


def test_a_protected_resource_left_alone_says_how_to_release_it(workdir: Path) -> None:
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text() + "protect: true\n")  # agent.reviewer
    ok("apply", "--auto-approve")
    agents.write_text(agents.read_text().split("\n---\n")[0] + "\n")
    edit(workdir / "manifests/deployments.yaml", "{ref: reviewer}", "{ref: coder}")
    out = ok("plan", "--prune").stdout
    assert (
        "agent.reviewer (agent_" in out
        and "not in the manifests but protected (protect: true when last applied); left alone. "
        "To archive it, put its document back with protect: false, apply, then remove the "
        "document and run with --prune"
        in out
    )


def test_drift_names_the_whole_import_command(workdir: Path) -> None:
    ok("apply", "--auto-approve")

    async def click_one(c: ProviderClient) -> dict[str, object]:
        return await c.agents.create({"name": "clicked", "model": "claude-sonnet-4-6"})

    agent_id = str(out_of_band(click_one)["id"])
    result = cli("drift")
    assert result.exit_code == 2
    assert f"`reconciler import agent.NAME {agent_id}` adopts it" in result.stdout
    assert ok("import", "agent.clicked", agent_id).exit_code == 0


def test_help_texts_say_what_they_mean() -> None:
    serve = " ".join(ok("provider", "serve", "--help").stdout.split())
    assert "(repeatable)" not in serve
    assert "--seed N Seed the random fault injection: the same sequence of requests meets" in serve
    run = ok("run", "--help").stdout
    assert "AGENT|DEPLOYMENT is the name of an Agent or Deployment manifest" in run
    assert "NAME is" not in run
    schema = ok("schema", "--help").stdout
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = (Path(__file__).resolve().parent.parent / "manifests/agents.yaml").read_text()
    assert "reconciler schema --out .reconciler/manifest.schema.json" in schema
    assert "reconciler schema --out .reconciler/manifest.schema.json" in readme
    first_line = example.splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../.reconciler/manifest.schema.json"
    assert first_line in schema


def test_architecture_doc_points_only_inside_the_repository() -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs/architecture.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text) + re.findall(r"`(\.\./[^`]*)`", text)
    assert links
    for link in links:
        target = (root / "docs" / link).resolve()
        assert target.is_relative_to(root) and target.exists(), link


def test_architecture_doc_names_only_modules_and_functions_that_exist() -> None:
    """`engine/match.py`, `app/adopt.run_adoptions`, `engine.desired.desired_digest`: each
    code reference of docs/architecture.md names a module of the package, and what follows
    the module is an attribute of it (a refactor that moves a function updates the doc)."""
    import importlib

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs/architecture.md").read_text()
    layers = "app|engine|state|manifest|provider|render|runtime|cli|kinds"
    refs = set(re.findall(rf"`((?:{layers})[./][a-z_./]*[A-Za-z_])`", text))
    assert len(refs) > 20
    missing = []
    for ref in sorted(refs):
        parts = ["reconciler", *ref.removesuffix(".py").replace("/", ".").split(".")]
        for i in range(len(parts), 0, -1):
            try:
                found: object = importlib.import_module(".".join(parts[:i]))
                break
            except ModuleNotFoundError:
                continue
        for name in parts[i:]:
            if not hasattr(found, name):
                missing.append(ref)
                break
            found = getattr(found, name)
    assert not missing, missing


def test_mcp_servers_and_tool_configs_diff_by_name(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agents = workdir / "manifests/agents.yaml"
    edit(
        agents,
        "  mcp_servers:\n",
        "  mcp_servers:\n    - type: url\n      name: atlassian\n"
        "      url: https://mcp.atlassian.com/v1/sse\n",
    )
    edit(
        agents, "url: https://api.githubcopilot.com/mcp/", "url: https://api.githubcopilot.com/v2/"
    )
    edit(agents, "        - name: web_search\n", "        - name: read\n          enabled: false\n"
         "        - name: web_search\n")  # fmt: skip
    edit(agents, "      mcp_server_name: github\n", "      mcp_server_name: github\n"
         "    - type: mcp_toolset\n      mcp_server_name: atlassian\n")  # fmt: skip
    out = ok("plan").stdout
    assert '+ mcp_servers[atlassian]: {"type": "url", "name": "atlassian"' in out
    assert "~ mcp_servers[github].url:" in out or "~ mcp_servers[github].url: " in out
    # a config for a tool at the default so far: its field changes from the default
    assert "~ tools[0].configs[read].enabled: true -> false" in out
    assert "mcp_servers[0]" not in out and "mcp_servers[1]" not in out
    assert "configs[0]" not in out and "configs[1]" not in out


def test_a_misspelt_kind_is_not_followed_by_unknown_references(workdir: Path) -> None:
    edit(
        workdir / "manifests/agents.yaml",
        "kind: Agent\nname: reviewer",
        "kind: Agnet\nname: reviewer",
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 1 error in manifests:\n"), result.stderr
    assert "Agnet" in result.stderr and "unknown agent" not in result.stderr
