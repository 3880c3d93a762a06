"""`reconciler fmt [--check] [PATHS]`: canonical manifests, comments kept, meaning unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import REPO, cli, make_workdir, ok

from reconciler.app import format_text
from reconciler.errors import ManifestError
from reconciler.manifest import load_manifests

MESSY = """\
# Our agents. Keep this comment.
spec:
  system: Be brief.   # trailing comment kept
  model: claude-sonnet-4-6
  metadata: {zeta: z, alpha: a}
  tools:
  - configs:
    - permission_policy: {type: always_ask}
      name: bash
    type: agent_toolset_20260401
name: coder
kind: Agent
---
kind: Environment
name: data
spec:
  config:
    packages: {pip: [pandas]}
    type: cloud
"""

CANONICAL = """\
# Our agents. Keep this comment.
kind: Agent
name: coder
spec:
  model: claude-sonnet-4-6
  system: Be brief.   # trailing comment kept
  tools:
    - type: agent_toolset_20260401
      configs:
        - name: bash
          permission_policy: {type: always_ask}
  metadata: {zeta: z, alpha: a}
---
kind: Environment
name: data
spec:
  config:
    type: cloud
    packages: {pip: [pandas]}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_the_example_manifests_are_canonical(workdir: Path) -> None:
    result = ok("fmt", "--check")
    assert result.stdout == ""
    for path in (REPO / "manifests").glob("*.yaml"):
        assert format_text(path.read_text()) == path.read_text()


def test_a_memory_seed_keeps_its_path_first_as_the_readme_writes_it() -> None:
    # README, "Memory stores": `{path: /style.md, from_file: seeds/style.md}`; fmt put
    # from_file (a ranked key) before path (an unranked one)
    seeds = (
        "kind: MemoryStore\nname: notes\nspec:\n  memories:\n"
        "    - {path: /conventions.md, content: x}\n"
        "    - {path: /style.md, from_file: seeds/style.md}\n"
    )
    assert format_text(seeds) == seeds
    written = seeds.replace(
        "{path: /conventions.md, content: x}", "{content: x, path: /conventions.md}"
    )
    assert format_text(written) == seeds


def test_fmt_orders_keys_and_indents_keeping_comments_and_metadata_order() -> None:
    assert format_text(MESSY) == CANONICAL
    assert format_text(CANONICAL) == CANONICAL  # idempotent


def test_fmt_check_lists_files_and_exits_1_without_changing_them(workdir: Path) -> None:
    messy = workdir / "manifests/messy.yaml"
    messy.write_text(MESSY)
    result = cli("fmt", "--check")
    assert result.exit_code == 1
    assert result.stdout == "would reformat manifests/messy.yaml\n"
    assert messy.read_text() == MESSY


def test_fmt_rewrites_files_and_keeps_their_meaning(workdir: Path) -> None:
    messy = workdir / "manifests/messy.yaml"
    messy.write_text(MESSY.replace("name: coder", "name: helper"))
    before = {d.address: d for d in load_manifests("manifests").documents}
    result = ok("fmt")
    assert result.stdout == "reformatted manifests/messy.yaml\n"
    assert messy.read_text() == CANONICAL.replace("name: coder", "name: helper")
    assert {d.address: d for d in load_manifests("manifests").documents} == before
    assert ok("fmt", "--check").stdout == ""


def test_fmt_takes_files_and_directories(workdir: Path) -> None:
    one = workdir / "one.yml"
    one.write_text(MESSY)
    other = workdir / "other/two.yaml"
    other.parent.mkdir()
    other.write_text(MESSY)
    result = cli("fmt", "--check", "one.yml", "other")
    assert result.exit_code == 1
    assert result.stdout == "would reformat one.yml\nwould reformat other/two.yaml\n"


def test_a_key_fmt_moves_takes_the_comments_after_it_along() -> None:
    text = "kind: Agent\nname: a\nspec:\n  system: s  # about system\n  model: m\n"
    assert format_text(text) == (
        "kind: Agent\nname: a\nspec:\n  model: m\n  system: s  # about system\n"
    )


def test_quotes_block_scalars_and_flow_style_stay_as_written() -> None:
    text = (
        "kind: Deployment\n"
        "name: d\n"
        "spec:\n"
        "  agent: {ref: coder, version: 3}\n"
        "  environment: 'python'\n"
        "  schedule:\n"
        "    type: cron\n"
        '    expression: "0 2 * * 1-5"\n'
        "    timezone: UTC\n"
        "  initial_events:\n"
        "    - type: user.message\n"
        "      content:\n"
        "        - type: text\n"
        "          text: |\n"
        "            Line one.\n"
        "            Line two.\n"
    )
    formatted = format_text(text)
    assert "agent: {ref: coder, version: 3}" in formatted
    assert "environment: 'python'" in formatted
    assert 'expression: "0 2 * * 1-5"' in formatted
    assert "text: |\n            Line one.\n" in formatted


def test_non_manifest_yaml_keeps_its_key_order() -> None:
    text = "zeta: 1\nalpha:\n- b\n- a\n"
    assert format_text(text) == "zeta: 1\nalpha:\n  - b\n  - a\n"


def test_free_form_maps_keep_their_order() -> None:
    text = (
        "kind: Agent\nname: a\nspec:\n  model: m\n  tools:\n    - type: custom\n"
        "      name: t\n      description: d\n      input_schema:\n        type: object\n"
        "        required: [x]\n        properties: {x: {type: string}}\n"
        "  metadata:\n    zeta: z\n    alpha: a\n"
    )
    assert format_text(text) == text


def test_a_comment_alone_between_two_markers_stays_there(workdir: Path) -> None:
    # a document commented out between two markers was refused ("formatting would lose or
    # move a comment"): fmt --check failed the CI job on a file nobody could format
    text = (
        "kind: Agent\nname: a\nspec: {model: m}\n---\n# kind: Agent\n# name: old\n---\n"
        "name: b\nkind: Agent\nspec: {model: m}\n"
    )
    path = workdir / "manifests/odd.yaml"
    path.write_text(text)
    assert cli("fmt").stdout == "reformatted manifests/odd.yaml\n"
    assert path.read_text() == (
        "kind: Agent\nname: a\nspec: {model: m}\n---\n# kind: Agent\n# name: old\n---\n"
        "kind: Agent\nname: b\nspec: {model: m}\n"
    )
    ok("fmt", "--check")


COMMENTED = """\
# The helper agent: owned by the platform team.
spec:
  # Keep the prompt short.
  system: Be brief.   # on its line
  tools:
    # the toolset first
    - type: agent_toolset_20260401
    # more tools once reviewed
  # the model is pinned by the platform team
  model: claude-sonnet-4-6
# the name is the address: agent.helper
name: helper   # never rename
# and the kind
kind: Agent
"""


def test_comment_lines_go_with_the_key_below_them(workdir: Path) -> None:
    # a comment line above a key stayed with the value above it when fmt moved the key:
    # "# the name ..." ended up under the tools, "# and the kind" under name
    path = workdir / "manifests/helper.yaml"
    path.write_text(COMMENTED)
    ok("fmt")
    assert path.read_text() == (
        "# The helper agent: owned by the platform team.\n"
        "# and the kind\n"
        "kind: Agent\n"
        "# the name is the address: agent.helper\n"
        "name: helper   # never rename\n"
        "spec:\n"
        "  # the model is pinned by the platform team\n"
        "  model: claude-sonnet-4-6\n"
        "  # Keep the prompt short.\n"
        "  system: Be brief.   # on its line\n"
        "  tools:\n"
        "    # the toolset first\n"
        "    - type: agent_toolset_20260401\n"
        "    # more tools once reviewed\n"
    )
    ok("fmt", "--check")
    ok("validate")


def test_a_header_before_a_first_key_that_moves_stays_at_the_top(workdir: Path) -> None:
    path = workdir / "manifests/two.yaml"
    path.write_text(
        "kind: Agent\nname: one\nspec: {model: m}\n---\n# the second agent\nname: two\n"
        "kind: Agent\nspec:\n  model: m\n"
    )
    ok("fmt")
    assert path.read_text().endswith(
        "---\n# the second agent\nkind: Agent\nname: two\nspec:\n  model: m\n"
    )


def test_trailing_document_markers_are_dropped() -> None:
    assert format_text("kind: Agent\nname: a\n---\n") == "kind: Agent\nname: a\n"


def test_invalid_yaml_is_an_error_with_its_place(workdir: Path) -> None:
    with pytest.raises(ManifestError) as err:
        format_text("kind: Agent\nname: [a\n", name="bad.yaml")
    assert err.value.issues[0].file == "bad.yaml"
    (workdir / "manifests/bad.yaml").write_text("kind: Agent\n  name: a\n")
    result = cli("fmt")
    assert result.exit_code == 1
    assert "manifests/bad.yaml:2:" in result.stderr


def test_a_duplicate_key_is_said_as_validate_says_it_never_with_its_values(
    workdir: Path,
) -> None:
    """fmt (the pre-commit hook) said `found duplicate key "token" with value "ghp_new..."
    (original value: "ghp_old...")`: a token pasted twice while rotating it went to the
    terminal or CI log, where validate never repeats an inline secret."""
    (workdir / "manifests/vault.yaml").write_text(
        "kind: Vault\nname: v\nspec:\n  credentials:\n    - name: c\n      auth:\n"
        "        type: static_bearer\n        mcp_server_url: https://a.example.com/mcp\n"
        "        token: ghp_OLD_PASTED_TOKEN\n        token: ghp_NEW_PASTED_TOKEN\n"
    )
    for command in (["fmt"], ["fmt", "--check"]):
        result = cli(*command)
        assert result.exit_code == 1
        assert (
            "manifests/vault.yaml:10:9: duplicate key 'token' in this mapping (first defined at "
            "line 9, column 9); keep only one" in result.stderr
        ), result.stderr
        assert "PASTED" not in result.output


@pytest.mark.parametrize("quote", ["", '"', "'"])
def test_a_long_line_is_never_folded(quote: str) -> None:
    """A one-line description or prompt past 4,096 characters came back split in two at
    column 4,095, mid-sentence (the same data, but a diff of a line nobody edited)."""
    long = " ".join(["word"] * 1500)
    text = f"kind: Agent\nname: a\nspec:\n  description: {quote}{long}{quote}\n"
    assert format_text(text) == text


def test_a_control_character_is_an_error_at_its_place_as_validate_says(workdir: Path) -> None:
    """fmt said `1:1: not valid YAML: unacceptable character #x0007: special characters are
    not allowed\n  in "<unicode string>", position 70` of a bell on line 5."""
    (workdir / "manifests/bell.yaml").write_text(
        'kind: Agent\nname: a\nspec:\n  model: claude-sonnet-4-6\n  description: "a\x07b"\n'
    )
    validate = cli("validate")
    said = "manifests/bell.yaml:5:18: invalid character #x0007: control characters are not allowed"
    assert said in validate.stderr, validate.stderr
    for command in (["fmt"], ["fmt", "--check"]):
        result = cli(*command)
        assert result.exit_code == 1
        assert said in result.stderr, result.stderr
        assert "<unicode string>" not in result.stderr


def test_missing_path_is_an_error(workdir: Path) -> None:
    result = cli("fmt", "nowhere")
    assert result.exit_code == 1
    assert "nowhere" in result.stderr


def test_help_says_comments_are_kept() -> None:
    assert "Comments are kept" in ok("fmt", "--help").stdout


def test_fmt_given_a_skills_file_or_an_ignored_file_leaves_it_alone_as_the_hook_passes_them(
    workdir: Path,
) -> None:
    # the pre-commit hook passes every changed manifests/*.yaml to `reconciler fmt FILE...`:
    # a skill's own YAML is its data (rewriting it uploads a new version) and a file
    # .reconcilerignore leaves out is no manifest; neither may be rewritten
    unformatted = "b:   1\na:    [1,2]\n"
    skill_data = workdir / "manifests/skills/review-checklist/data.yaml"
    skill_data.write_text(unformatted)
    (workdir / "manifests/ci").mkdir()
    workflow = workdir / "manifests/ci/workflow.yml"
    workflow.write_text(unformatted)
    (workdir / "manifests/.reconcilerignore").write_text("ci/\n")
    messy = workdir / "manifests/messy.yaml"
    messy.write_text(MESSY)
    args = [str(p.relative_to(workdir)) for p in (skill_data, workflow, messy)]
    check = cli("fmt", "--check", *args)
    assert check.exit_code == 1
    assert check.stdout == "would reformat manifests/messy.yaml\n"
    result = ok("fmt", *args)
    assert result.stdout == "reformatted manifests/messy.yaml\n"
    assert skill_data.read_text() == unformatted
    assert workflow.read_text() == unformatted
    assert messy.read_text() == CANONICAL
    assert "manifests/skills/review-checklist/data.yaml: a skill's file" in result.stderr
    assert "manifests/ci/workflow.yml: .reconcilerignore leaves it out" in result.stderr
    # the skill's directory named as a path: the same
    ok("fmt", "manifests/skills/review-checklist")
    assert skill_data.read_text() == unformatted


def test_fmt_names_why_it_leaves_a_file_that_is_no_yaml_alone(workdir: Path) -> None:
    # a hook for another directory set up with `files: ^infra/agents/` names every changed
    # file below it, the secret and the prompts too: fmt leaves them alone, saying why; a
    # text file is not "hidden"
    (workdir / "manifests/.hidden").mkdir()
    hidden = workdir / "manifests/.hidden/x.yaml"
    hidden.write_text("b:   1\n")
    result = ok("fmt", "manifests/secrets/github-token.txt", "manifests/.hidden/x.yaml")
    assert result.stdout == ""
    assert (
        "Skipped manifests/secrets/github-token.txt: not a YAML file (*.yaml, *.yml); "
        "not a manifest." in result.stderr
    ), result.stderr
    assert "Skipped manifests/.hidden/x.yaml: hidden; not a manifest." in result.stderr
    assert hidden.read_text() == "b:   1\n"


def test_a_file_fmt_cannot_format_is_an_error_as_its_exit_code_says(workdir: Path) -> None:
    # exit 1 with a line that said "Warning:": README, "Every error is one `Error: ...`"
    bad = workdir / "manifests/broken.yaml"
    bad.write_text("kind: Agent\nname: [unclosed\n")
    for args in (("fmt",), ("fmt", "--check"), ("fmt", "manifests/broken.yaml")):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.stdout)
        assert "Error: manifests/broken.yaml:" in result.stderr, result.stderr
        assert "Warning: manifests/broken.yaml" not in result.stderr


def test_a_file_of_comments_only_is_formatted_as_it_is(workdir: Path) -> None:
    # a manifests file that holds only comments (a placeholder, a note, a document commented
    # out) has no data to reorder: fmt keeps it, --check passes it, and the hook's exit is 0
    text = "# reviewers go here once the team agrees on them\n# kind: Agent\n"
    assert format_text(text) == text
    assert format_text("# note") == "# note\n"
    assert format_text("---\n# all commented out\n") == "---\n# all commented out\n"
    path = workdir / "manifests/notes.yaml"
    path.write_text(text)
    assert cli("fmt", "--check").exit_code == 0
    result = cli("fmt")
    assert result.exit_code == 0, result.stderr
    assert path.read_text() == text
