"""QA of what a user writing manifests meets before and during ``plan``: ``validate``,
``fmt``, ``schema``, error messages and saved plans (one test per defect found).

Every test drives the CLI in-process (click's runner) from a fresh copy of the example
manifests against the embedded local provider, as a user would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_fmt_takes_a_bom_before_a_first_line_comment(workdir: Path) -> None:
    """Every example manifest starts with a comment (the yaml-language-server line); saved
    by a Windows editor with a UTF-8 byte-order mark, `fmt --check` failed the CI job and
    `fmt` refused the file: "formatting would lose or move a comment", as the mark hid the
    comment of the first line from fmt's count of comments."""
    path = workdir / "manifests/skills.yaml"
    text = path.read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = cli("fmt", "--check")
    assert result.exit_code == 1 and "would reformat manifests/skills.yaml" in result.stdout
    assert "comment" not in result.stderr, result.stderr
    ok("fmt")
    assert path.read_text() == text  # the mark dropped, nothing else changed
    ok("fmt", "--check")


def test_a_mistyped_from_file_of_a_memory_seed_is_named(workdir: Path) -> None:
    """A seed `{path, from_flie: seeds/style.md}` was told "missing required field
    'content'" and "unknown field 'from_flie' (allowed: path, content)": the list left out
    from_file, which the README documents for seeds, and nothing suggested it."""
    (workdir / "manifests/seeds").mkdir()
    (workdir / "manifests/seeds/style.md").write_text("Short sentences.\n")
    path = workdir / "manifests/memory_stores.yaml"
    path.write_text(path.read_text() + "    - path: /style.md\n      from_flie: seeds/style.md\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/memory_stores.yaml:18:7: spec.memories[1].from_flie: unknown field "
        "'from_flie'; did you mean 'from_file'?"
    ) in result.stderr, result.stderr
    assert (
        "manifests/memory_stores.yaml:17:7: spec.memories[1].content: missing required field "
        "'content' (or from_file)"
    ) in result.stderr, result.stderr
    # a key close to neither lists every key a seed takes
    path.write_text(path.read_text().replace("from_flie", "source"))
    assert "unknown field 'source' (allowed: path, content, from_file)" in cli("validate").stderr


@pytest.mark.parametrize(
    ("out", "what"),
    [
        ("manifests/agents.yaml", "a manifest file"),
        ("manifests/plan.yaml", "a manifest file"),
        ("manifests/skills/review-checklist/plan.json", "a file of a skill's directory"),
    ],
)
def test_plan_out_never_writes_into_what_the_manifests_read(
    workdir: Path, out: str, what: str
) -> None:
    """`plan --out manifests/agents.yaml` (a completion slip) replaced the manifest by the
    plan, and `--out manifests/plan.yaml` made a file every later command read as a broken
    manifest, so `apply` of that very plan failed; in a skill's directory the plan became
    one of the skill's files, a new version to upload."""
    before = {p: p.read_bytes() for p in (workdir / "manifests").rglob("*") if p.is_file()}
    result = cli("plan", "--out", out)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert f"--out {out}: that is {what}" in result.stderr, result.stderr
    after = {p: p.read_bytes() for p in (workdir / "manifests").rglob("*") if p.is_file()}
    assert after == before
    # beside the manifests, and as a file the walk does not read, a plan is welcome
    ok("plan", "--out", "plan.yaml")
    ok("plan", "--out", "manifests/plan.json")
    ok("validate")


def test_the_json_schema_refuses_a_vault_listed_twice_as_validate_does(workdir: Path) -> None:
    """`vaults: [github, github]` is refused by validate ("listed twice"); an editor using
    `reconciler schema` showed no problem, though JSON Schema can say it (uniqueItems)."""
    import json

    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    path = workdir / "manifests/deployments.yaml"
    path.write_text(path.read_text().replace("vaults: [github]", "vaults: [github, github]"))
    assert "vault 'github' is listed twice" in cli("validate").stderr
    validator = jsonschema.Draft202012Validator(json.loads(ok("schema").stdout))
    [document] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert [e.message for e in validator.iter_errors(document)] != []


ENV_CREDENTIAL = """\
    - name: envvar
      auth:
        type: environment_variable
        secret_name: MY_TOKEN
        secret_value: {from_env: HOME}
        networking: {type: unrestricted}
"""
OAUTH_CREDENTIAL = """\
    - name: oauth
      auth:
        type: mcp_oauth
        mcp_server_url: https://mcp.example.com/
        access_token: {from_env: HOME}
        expires_at: "2026-06-01T00:00:00Z"
"""
CUSTOM_TOOL = """\
    - type: custom
      name: lookup
      description: Look things up
      input_schema: {type: object}
    - type: mcp_toolset
"""


@pytest.mark.parametrize(
    ("file", "old", "new", "refused"),
    [
        ("vaults.yaml", "secret_name: MY_TOKEN", "secret_name: 1BAD-NAME", "secret_name must"),
        ("vaults.yaml", "type: unrestricted}", "type: unrestricted}\n"
         "        injection_location: {body: false, header: false}", "at least one of body"),
        ("vaults.yaml", '00:00:00Z"', '00:00:00"', "needs a time zone"),
        ("vaults.yaml", "url: https://mcp.example.com/", 'url: "https://"', "absolute http(s)"),
        ("agents.yaml", "input_schema: {type: object}", "input_schema: {type: string}",
         "type: object"),
    ],
    ids=["secret-name", "injection-location", "expires-at-zone", "url-without-host",
         "input-schema-type"],
)  # fmt: skip
def test_the_json_schema_refuses_the_formats_validate_refuses(
    workdir: Path, file: str, old: str, new: str, refused: str
) -> None:
    """An editor using `reconciler schema` showed no problem in values validate refuses with
    a rule JSON Schema can state: an environment variable name, an injection location with
    both places off, an expires_at without its zone, a URL without a host, a custom tool's
    input_schema that is no object schema."""
    import json

    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    vaults = workdir / "manifests/vaults.yaml"
    vaults.write_text(vaults.read_text() + ENV_CREDENTIAL + OAUTH_CREDENTIAL)
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("    - type: mcp_toolset\n", CUSTOM_TOOL))
    validator = jsonschema.Draft202012Validator(json.loads(ok("schema").stdout))

    def schema_errors() -> list[str]:
        documents = [d for d in yaml.safe_load_all((workdir / "manifests" / file).read_text())]
        return [e.message for d in documents if d for e in validator.iter_errors(d)]

    ok("validate")
    assert schema_errors() == []
    path = workdir / "manifests" / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    result = cli("validate")
    assert result.exit_code == 1 and refused in result.stderr, result.stderr
    assert schema_errors() != []


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["fmt", "--check"]])
def test_an_empty_manifests_option_is_a_usage_error(workdir: Path, command: list[str]) -> None:
    """`reconciler -f "$DIR" plan` with DIR unset read the whole current folder as the
    manifests (click reads "" as "."): every YAML file of the repository, a CI workflow or
    a docker-compose.yml included, with secrets resolved against the wrong folder. An empty
    --lockfile is refused; so is an empty -f now (an empty RECONCILER_MANIFESTS is unset)."""
    (workdir / "docker-compose.yml").write_text("services: {web: {image: nginx}}\n")
    result = cli("-f", "", *command)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.endswith(
        "Error: Invalid value for '--manifests' / '-f': an empty path; give the manifests "
        "directory or file, e.g. manifests (also read from RECONCILER_MANIFESTS)\n"
    ), result.stderr


def test_a_reconcilerignore_saved_with_a_bom_ignores_its_first_pattern(workdir: Path) -> None:
    """A `.reconcilerignore` saved by a Windows editor with a UTF-8 byte-order mark left its
    first pattern unmatched (the mark became part of it), so the CI workflow it names was
    read as a broken manifest; git skips the mark of a .gitignore, as this file now does."""
    (workdir / "manifests/ci").mkdir()
    (workdir / "manifests/ci/workflow.yaml").write_text("on: push\njobs: {}\n")
    (workdir / "manifests/.reconcilerignore").write_bytes(b"\xef\xbb\xbfci/\r\n")
    result = ok("validate")
    assert "Left out by .reconcilerignore: manifests/ci/workflow.yaml" in result.stdout


@pytest.mark.parametrize(
    ("pattern", "said"),
    [("ci\\", "pattern 'ci\\' is not"), ("!", "'!'"), ("[z-a].yaml", "bad character range")],
)
def test_a_reconcilerignore_pattern_that_cannot_be_read_is_named_at_its_line(
    workdir: Path, pattern: str, said: str
) -> None:
    """A pattern gitignore syntax cannot read (a trailing backslash, a lone ``!``, a
    character range backwards) made every command say "unexpected GitIgnorePatternError
    ... This is a bug in reconciler"."""
    (workdir / "manifests/.reconcilerignore").write_text(f"# CI files\nci/\n{pattern}\n")
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1, (command, result.stdout)
        assert "manifests/.reconcilerignore:3:1: " in result.stderr, result.stderr
        assert said in result.stderr and "bug" not in result.stderr, result.stderr


def test_a_reconcilerignore_too_large_to_read_is_named(workdir: Path) -> None:
    (workdir / "manifests/.reconcilerignore").write_bytes(b"x" * (5 * 1024 * 1024))
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/.reconcilerignore:1:1: " in result.stderr, result.stderr
    assert "larger than 4.0 MiB" in result.stderr and "bug" not in result.stderr


def test_a_skills_gitignore_saved_with_a_bom_keeps_its_first_file_out(workdir: Path) -> None:
    """A skill directory's `.gitignore` saved with a UTF-8 byte-order mark: git left out
    the file its first line names (`secret.env`), but apply uploaded it with the skill, as
    the mark became part of the pattern."""
    skill = workdir / "manifests/skills/review-checklist"
    (skill / "secret.env").write_text("API_KEY=not-for-upload\n")
    (skill / ".gitignore").write_bytes(b"\xef\xbb\xbfsecret.env\n")
    plan = ok("plan").stdout
    assert "skill.review-checklist  create  (3 files)" in plan, plan
    assert "+ .gitignore" in plan and "secret.env" not in plan


def test_a_secret_file_saved_with_a_bom_is_the_same_secret(workdir: Path) -> None:
    """A token file re-saved by a Windows editor (PowerShell's `Set-Content -Encoding utf8`,
    Notepad) with a UTF-8 byte-order mark planned a credential update, and apply would have
    sent the mark as the token's first character: a credential that no longer works. The
    mark is no part of the text, as the trailing newline is none of the secret."""
    ok("apply", "--auto-approve")
    token = workdir / "manifests/secrets/github-token.txt"
    token.write_bytes(b"\xef\xbb\xbf" + token.read_bytes().replace(b"\n", b"\r\n"))
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout


def test_a_prompt_file_saved_with_a_bom_is_the_same_prompt(workdir: Path) -> None:
    """A `system: {from_file: ...}` prompt re-saved by an editor that writes a UTF-8
    byte-order mark planned a new agent version (`~ system: "Be nice.\\n" ->
    "\\ufeffBe nice.\\n"`) and a pin move of its deployment, for a mark nobody can see."""
    (workdir / "manifests/prompts").mkdir()
    prompt = workdir / "manifests/prompts/reviewer.md"
    prompt.write_text("Be nice.\n")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(
        agents.read_text().replace(
            "  system: You review code for correctness, security and clarity. Be specific and "
            "kind.",
            "  system: {from_file: prompts/reviewer.md}",
        )
    )
    ok("apply", "--auto-approve")
    prompt.write_bytes(b"\xef\xbb\xbfBe nice.\n")
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout


BROKEN_RULES = """\
kind: Policy
name: guard
spec:
  rules:
    - kinds: [Agent]
      expression: "1 + 1"
      message: must comply
    - kinds: [Agent]
      expression: "spec.model > 3"
      message: must comply
"""


def test_a_rule_that_cannot_be_evaluated_names_where_its_expression_is(workdir: Path) -> None:
    """A rule that gives no boolean, or fails on the values, was reported at the resource
    only (`manifests/agents.yaml:4:1: agent.coder: the rule's expression gave an integer
    (2), not true or false; fix the expression`): which expression, in which file, was left
    to find (a central policy of `validate --policies DIR` lives in another repository)."""
    (workdir / "central").mkdir()
    (workdir / "central/guard.yaml").write_text(BROKEN_RULES)
    result = cli("validate", "--policies", "central")
    assert result.exit_code == 1
    assert (
        "manifests/agents.yaml:4:1: agent.coder: the rule's expression gave an integer (2), not "
        "true or false; fix the expression at central/guard.yaml:6:19 (policy guard, rule 1, "
        "mandatory)"
    ) in result.stderr, result.stderr
    assert (
        "manifests/agents.yaml:4:1: agent.coder: must comply: the rule could not be checked on "
        "this resource: no operator or function takes a string and an integer here; fix the "
        "expression at central/guard.yaml:9:19 (policy guard, rule 2, mandatory)"
    ) in result.stderr, result.stderr


def test_a_kubernetes_style_document_is_told_where_name_and_metadata_go(workdir: Path) -> None:
    """Written as a Kubernetes object (`apiVersion:`, `metadata: {name: x}`), a document was
    told "unknown field 'metadata' (allowed: kind, name, spec, ...)": nothing said that the
    name is the top-level `name:` and metadata lives in `spec.metadata`."""
    (workdir / "manifests/k8s.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Agent\nmetadata:\n  name: helper\n"
        "  labels: {team: a}\nspec:\n  model: claude-sonnet-4-6\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/k8s.yaml:1:1: apiVersion: unknown field 'apiVersion': manifests have no "
        "apiVersion (kind says what a document is); remove it"
    ) in result.stderr, result.stderr
    assert (
        "manifests/k8s.yaml:3:1: metadata: unknown field 'metadata': a document's name is the "
        "top-level name: (name: helper), and its metadata goes in spec.metadata"
    ) in result.stderr, result.stderr


def test_two_rules_of_a_policy_cannot_share_a_name(workdir: Path) -> None:
    """Two rules named alike (a copied rule whose name was not changed) were both reported
    as `rule 'owner'`, in text and in the JSON `policy_warnings[].rule`: which of them a
    resource broke could not be told. Rule names are unique in a policy, as credential
    names are in a vault."""
    (workdir / "manifests/policy.yaml").write_text(
        "kind: Policy\nname: guard\nspec:\n  rules:\n"
        "    - {name: owner, kinds: [Agent], expression: 'true', message: a}\n"
        "    - {name: owner, kinds: [Environment], expression: 'false', message: b}\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/policy.yaml:6:14: spec.rules[1].name: rule name 'owner' is used twice in this "
        "policy (also rules[0]); names must be unique"
    ) in result.stderr, result.stderr


HEADED = """\
# Agents of team A: ask #team-a before changing them.

--- # the coder
kind: Agent
name: c1
spec:
  model: claude-sonnet-4-6
---
# the second
kind: Agent
name: c2
spec:
  model: claude-sonnet-4-6
"""


def test_fmt_keeps_a_header_comment_before_the_first_document_marker(workdir: Path) -> None:
    """A file that opens with a comment and then `---` (as many YAML files do) could not be
    formatted at all: `fmt` refused it ("would lose or move a comment"), and `fmt --check`
    failed the CI job and the pre-commit hook for good, even with the file in canonical
    form; keys out of order in it could not be put right either."""
    path = workdir / "manifests/headed.yaml"
    path.write_text(HEADED)
    result = cli("fmt", "--check", str(path))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    path.write_text(HEADED.replace("kind: Agent\nname: c1\n", "name: c1\nkind: Agent\n"))
    assert "would reformat" in cli("fmt", "--check", str(path)).stdout
    ok("fmt", str(path))
    assert path.read_text() == HEADED
    ok("validate")


@pytest.mark.parametrize("where", ["manifests", "manifests/agents.yaml"])
def test_manifests_given_as_an_argument_are_pointed_to_f(workdir: Path, where: str) -> None:
    """`reconciler validate ./manifests` (as `kubectl apply -f`, `terraform validate DIR`
    habits go) said only "Got unexpected extra argument (manifests)"."""
    result = cli("validate", where)
    assert result.exit_code == 1
    assert (
        f"Error: Got unexpected extra argument ({where}); manifests are read from "
        f"--manifests/-f: reconciler -f {where} validate"
    ) in result.stderr, result.stderr
    # an argument that names no manifests is told no more than before
    assert cli("plan", "bogus").stderr.endswith("Got unexpected extra argument (bogus)\n")


def test_a_tab_after_a_colon_is_not_called_indentation(workdir: Path) -> None:
    """`description:<TAB>x` (a tab typed to align values) was reported as "tab character
    used for indentation", which sends the reader to the start of the line."""
    (workdir / "manifests/tab.yaml").write_text(
        "kind: Agent\nname: t1\nspec:\n  model: claude-sonnet-4-6\n  description:\tx\n"
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/tab.yaml:5:15: tab character after 'description:'; YAML separates a key "
        "from its value with spaces: replace the tab by a space"
    ) in result.stderr, result.stderr
    # at the start of a line it is indentation, as before
    (workdir / "manifests/tab.yaml").write_text("kind: Agent\nname: t1\nspec:\n\tmodel: m\n")
    assert "tab.yaml:4:1: tab character used for indentation" in cli("validate").stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("kind: Agent\nname: t1\t# aligned comment\nspec: {model: m}\n", "2:9"),
        ("kind: Agent\nname: t1\nspec:\n  model: claude-sonnet-4-6\t\n", "4:27"),
        ("kind: Agent\nname: t1\nspec:\n  tools:\n    -\t{type: agent_toolset_20260401}\n", "5:6"),
    ],
    ids=["before-a-comment", "at-the-end", "after-a-dash"],
)
def test_a_tab_after_a_value_is_not_called_indentation(
    workdir: Path, text: str, where: str
) -> None:
    """`name: t1<TAB># comment` (a tab typed to align comments) was reported as "tab
    character used for indentation" in the middle of a line that has none."""
    (workdir / "manifests/tab.yaml").write_text(text)
    for command in ("validate", "fmt"):
        result = cli(command)
        assert result.exit_code == 1
        assert (
            f"manifests/tab.yaml:{where}: tab character after a value or a '-' on this line; "
            "YAML separates them and a comment with spaces: replace the tab by a space"
        ) in result.stderr, result.stderr
        assert "indentation" not in result.stderr


def test_a_target_naming_a_policy_says_policies_are_not_planned(workdir: Path) -> None:
    """`plan --target policy.guard` (a user wanting to check one policy) was told "no such
    address in the manifests or lockfile", though the policy is in the manifests."""
    (workdir / "manifests/policy.yaml").write_text(
        "kind: Policy\nname: guard\nspec:\n  rules:\n"
        "    - {kinds: [Agent], expression: 'true', message: m}\n"
    )
    result = cli("plan", "--target", "policy.guard")
    assert result.exit_code == 1
    assert (
        "--target policy.guard: a Policy is no remote resource, so it is not planned: its rules "
        "are checked at every validate, plan and apply; target the resources it checks"
    ) in result.stderr, result.stderr


def test_fmt_keeps_a_comment_on_a_document_marker_a_comment(workdir: Path) -> None:
    """`--- # the reviewer` between two documents (as Helm and many YAML files write them)
    came out of fmt as `---` and a comment indented by four spaces on the next line."""
    path = workdir / "manifests/marked.yaml"
    path.write_text(
        "kind: Agent\nname: c1\nspec:\n  model: claude-sonnet-4-6\n--- # the reviewer\n"
        "kind: Agent\nname: c2\nspec:\n  model: claude-sonnet-4-6\n"
    )
    ok("fmt", str(path))
    assert path.read_text() == (
        "kind: Agent\nname: c1\nspec:\n  model: claude-sonnet-4-6\n---\n# the reviewer\n"
        "kind: Agent\nname: c2\nspec:\n  model: claude-sonnet-4-6\n"
    )
    ok("fmt", "--check", str(path))


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["apply", "--auto-approve"], "spec.modle: unknown field 'modle'"),
        (["apply", "nothere.json"], "nothere.json: no such plan file"),
    ],
)
def test_apply_of_bad_input_where_nothing_was_applied_makes_no_state_folder(
    workdir: Path, args: list[str], said: str
) -> None:
    """Bad input changes no state: yet `apply` in a directory never applied made `state/`
    and its lock guard before it found a typo in the manifests (or no plan file), as
    unlock and rollback did before them (tests/test_cli_qa.py)."""
    agents = workdir / "manifests/agents.yaml"
    if "--auto-approve" in args:
        agents.write_text(agents.read_text().replace("  model: claude-sonnet-4-6", "  modle: m"))
    result = cli(*args)
    assert result.exit_code == 1 and said in result.stderr, result.stderr
    assert not (workdir / "state").exists()


def test_an_index_path_in_a_flow_list_is_told_to_be_quoted(workdir: Path) -> None:
    """`ignore_changes: [tools[0].configs]` (the README writes `[metadata.owner]`, the
    schema takes index paths) was "invalid YAML: expected ',' or ']', but got '['", with
    nothing saying that the item only needs quotes."""
    agents = workdir / "manifests/agents.yaml"
    flow = "name: coder\nignore_changes: [tools[0].configs]\n"
    agents.write_text(agents.read_text().replace("name: coder\n", flow, 1))
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        "manifests/agents.yaml:6:23: invalid YAML: expected ',' or ']', but got '[' (while "
        "parsing a flow sequence at line 6, column 17); an item of a [...] list that holds "
        "[ or ] must be quoted, e.g. ['see [docs]']"
    ) in result.stderr, result.stderr
    agents.write_text(agents.read_text().replace("[tools[0].configs]", "['tools[0].configs']"))
    # quoted, it is read (and refused as a list item, see below)
    assert "invalid YAML" not in cli("validate").stderr


@pytest.mark.parametrize("path", ["tools[0].configs", "tools[0]", "tools.0.configs"])
def test_ignore_changes_refuses_a_list_item_it_would_not_leave_alone(
    workdir: Path, path: str
) -> None:
    """`ignore_changes: ['tools[0].configs']` passed validate (and the JSON Schema), but plan
    diffed the tool configs all the same and apply would have overwritten them: only
    mapping keys are left alone (`tools`, `metadata.owner`). Such a path is now an error
    saying so, instead of a protection that silently does nothing."""
    import json

    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(
        agents.read_text().replace("name: coder\n", f"name: coder\nignore_changes: ['{path}']\n", 1)
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        f"manifests/agents.yaml:6:18: ignore_changes[0]: '{path}' names an item of a list; "
        "ignore_changes leaves alone a field (tools) or a key of a mapping (metadata.owner), "
        "not one list item"
    ) in result.stderr, result.stderr
    validator = jsonschema.Draft202012Validator(json.loads(ok("schema").stdout))
    document = next(d for d in yaml.safe_load_all(agents.read_text()) if d["name"] == "coder")
    assert list(validator.iter_errors(document)) != []


@pytest.mark.parametrize(
    ("path", "through"), [("tools.configs", "tools"), ("mcp_servers.url", "mcp_servers")]
)
def test_ignore_changes_refuses_a_path_into_a_list(workdir: Path, path: str, through: str) -> None:
    """`ignore_changes: [tools.configs]` or `[mcp_servers.url]` passed validate, but a path
    that goes into a list matched nothing: plan diffed those fields all the same."""
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(
        agents.read_text().replace("name: coder\n", f"name: coder\nignore_changes: [{path}]\n", 1)
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert (
        f"manifests/agents.yaml:6:18: ignore_changes[0]: '{path}' goes into the list {through}; "
        f"ignore_changes leaves alone a field ({through}) or a key of a mapping "
        "(metadata.owner), not what is inside a list"
    ) in result.stderr, result.stderr


@pytest.mark.parametrize("command", [("plan",), ("schema",)])
def test_out_dash_is_not_taken_for_a_file_named_dash(
    workdir: Path, command: tuple[str, ...]
) -> None:
    """`plan --out -` (stdout, as many tools read it) wrote a file named `-` in the current
    directory, and `schema --out -` too; `-` is refused, saying where the output goes."""
    result = cli(*command, "--out", "-")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "'-' is not a file" in result.stderr and "stdout" in result.stderr, result.stderr
    assert not (workdir / "-").exists()


def test_a_missing_secret_file_is_reported_beside_the_other_errors_of_its_vault(
    workdir: Path,
) -> None:
    """A vault with a typo and a secret file that does not exist was told the typo only:
    the secret file was checked on documents that validated, so the missing file came up
    in a second run, after the typo was fixed. validate reports every error at once."""
    vaults = workdir / "manifests/vaults.yaml"
    text = vaults.read_text().replace("secrets/github-token.txt", "secrets/missing.txt")
    vaults.write_text(text.replace("  display_name: GitHub\n", "  display_nam: GitHub\n"))
    result = cli("validate")
    assert result.exit_code == 1
    assert "spec.display_nam: unknown field 'display_nam'" in result.stderr, result.stderr
    assert (
        "spec.credentials[0].auth.token: secret file secrets/missing.txt does not exist"
    ) in result.stderr, result.stderr


def test_control_characters_of_a_manifest_reach_no_terminal_through_an_error(
    workdir: Path,
) -> None:
    """A manifest from a pull request whose kind was ``"Ag\\e]0;pwned\\aent"`` (YAML's
    ``\\e`` is ESC) put the raw escape sequence into ``Error: ...``: on a terminal it set
    the window title (OSC 52 would write the clipboard, ``\\e[2J`` clears the screen).
    Control characters in messages are shown escaped, as the plan shows values."""
    (workdir / "manifests/evil.yaml").write_text(
        'kind: "Ag\\e]0;pwned\\aent"\nname: "a\\e[2J"\nspec: {model: m}\n'
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr, repr(result.stderr)
    assert "not 'Ag\\x1b]0;pwned\\x07ent'" in result.stderr, result.stderr
    assert "invalid name 'a\\x1b[2J'" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 3  # the line breaks between issues are kept


@pytest.mark.parametrize("command", [("plan",), ("schema",)])
@pytest.mark.parametrize("link", [False, True])
def test_out_naming_no_regular_file_is_refused_and_left_alone(
    workdir: Path, command: tuple[str, ...], link: bool
) -> None:
    """`plan --out /dev/stdout` (or /dev/full, a FIFO) was written as a temporary file
    renamed over that path: the device node (or the /dev/stdout link) was replaced by a
    regular file holding the plan, and the command said "Saved the plan to /dev/full"
    (as root, for every later user of /dev/full). Such a path is refused, untouched."""
    import os
    import stat

    fifo = workdir / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if link:  # as /dev/stdout -> /proc/self/fd/1
        target = workdir / "out-link"
        target.symlink_to(fifo)
    result = cli(*command, "--out", str(target))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "is a FIFO, not a regular file" in result.stderr, result.stderr
    assert "leave --out out" in result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert target.is_symlink() == link


def test_plan_names_a_secret_files_field_by_its_full_path_as_validate_does(
    workdir: Path,
) -> None:
    """plan said ``auth.token: secret file ... is empty`` while validate names the same
    field ``spec.credentials[0].auth.token``: the short path does not say which credential
    of the vault it is. plan names the full path too, at the same file:line:col."""
    (workdir / "manifests/secrets/github-token.txt").write_text("")
    result = cli("plan")
    assert result.exit_code == 1
    assert (
        "manifests/vaults.yaml:18:9: spec.credentials[0].auth.token: secret file "
    ) in result.stderr, result.stderr
    (workdir / "manifests/secrets/github-token.txt").unlink()
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1
        assert "manifests/vaults.yaml:18:9: spec.credentials[0].auth.token: " in result.stderr
