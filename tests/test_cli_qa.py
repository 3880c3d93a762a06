"""The command line audited against DESIGN.md as a new user runs it (session 9): each test is
a case where a command said something untrue, misleading or unhelpful, or broke a file, and
stays fixed. Every test runs the CLI in a fresh directory against the embedded provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import cli, make_workdir, ok


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


# -- rollback: what is wrong with the request is said before "no one to ask" -----------------


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("deployment.nope", "deployment.nope is not in state/reconciler.lock"),
        ("agent.coder", "rollback takes a deployment address"),
    ],
)
def test_rollback_in_ci_names_a_wrong_address_before_asking_for_auto_approve(
    workdir: Path, address: str, said: str
) -> None:
    # it refused "Pass --auto-approve" first; with it, the next run said the address was wrong
    ok("apply", "--auto-approve")
    result = cli("rollback", address)
    assert result.exit_code == 1
    assert said in result.stderr, result.stderr
    assert "--auto-approve" not in result.stderr, result.stderr


def test_rollback_in_ci_shows_the_plan_then_refuses_without_auto_approve(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind", "Be kind"))
    ok("apply", "--auto-approve")
    before = Path("state/reconciler.lock").read_bytes()
    result = cli("rollback", "deployment.nightly-review")
    assert result.exit_code == 1
    assert "pin agent.reviewer@2 -> @1  (rollback)" in result.stdout, result.stdout
    assert "Pass --auto-approve" in result.stderr, result.stderr
    assert result.stderr.endswith(".\n"), "a finished sentence, " + result.stderr
    assert Path("state/reconciler.lock").read_bytes() == before, "nothing was changed"


# -- state migrate: the advice fits the target --------------------------------------------


def test_state_migrate_to_a_lockfile_says_to_use_that_lockfile_not_a_backend(
    workdir: Path,
) -> None:
    # it told every migration "set or unset --backend / RECONCILER_BACKEND" and, from a
    # lockfile, "once every runner sets RECONCILER_BACKEND, remove the lockfile from git"
    ok("apply", "--auto-approve")
    said = " ".join(ok("state", "migrate", "--to", "ops/state.lock").stdout.split())
    assert "from state/reconciler.lock to ops/state.lock" in said, said
    assert "pass --lockfile ops/state.lock (or set RECONCILER_LOCKFILE to it)" in said, said
    assert "RECONCILER_BACKEND" not in said, said
    assert "No changes." in ok("--lockfile", "ops/state.lock", "plan").stdout


# -- global options after the command --------------------------------------------------------


@pytest.mark.parametrize("option", ["--project", "-f", "--lockfile", "--provider-url"])
def test_a_global_option_last_without_its_value_is_said_to_need_one(
    workdir: Path, option: str
) -> None:
    # moved in front of the command it took the command's name as its value: `reconciler
    # plan --project` planned nothing and said "Missing command."
    result = cli("plan", option)
    assert result.exit_code == 1
    assert f"Option '{option}' requires an argument." in result.stderr, result.stderr
    assert not Path("state").exists()


@pytest.mark.parametrize("args", [["plan", "--version"], ["state", "list", "-V"]])
def test_version_is_a_global_option_after_the_command_too(workdir: Path, args: list[str]) -> None:
    # DESIGN.md: global options are accepted before or after the command; --version was not
    import reconciler

    result = ok(*args)
    assert result.stdout == f"reconciler, version {reconciler.__version__}\n"


# -- fmt rewrites a file the way an editor saving it would -----------------------------------

UNFORMATTED = "name: a\nkind: Agent\nspec: {model: claude-sonnet-4-6}\n"
FORMATTED = "kind: Agent\nname: a\nspec: {model: claude-sonnet-4-6}\n"


def test_fmt_rewrites_the_file_a_symlink_names_and_keeps_the_link(workdir: Path) -> None:
    # it replaced the link by a formatted copy: the shared file stayed unformatted and the
    # manifest no longer followed it
    shared = workdir / "shared/agent.yaml"
    shared.parent.mkdir()
    shared.write_text(UNFORMATTED)
    link = workdir / "manifests/linked.yaml"
    link.symlink_to("../shared/agent.yaml")
    assert "reformatted manifests/linked.yaml" in ok("fmt").stdout
    assert link.is_symlink()
    assert shared.read_text() == FORMATTED


def test_fmt_keeps_the_permissions_of_the_file(workdir: Path) -> None:
    # the rewritten file got the umask's mode: a 0600 manifest became readable by everyone
    private = workdir / "manifests/private.yaml"
    private.write_text(UNFORMATTED)
    private.chmod(0o600)
    ok("fmt")
    assert private.read_text() == FORMATTED
    assert private.stat().st_mode & 0o777 == 0o600


def test_fmt_of_a_file_that_is_not_utf8_names_its_place_instead_of_a_bug(workdir: Path) -> None:
    # "unexpected UnicodeDecodeError ... This is a bug in reconciler"
    latin1 = workdir / "manifests/latin1.yaml"
    latin1.write_bytes(b'kind: Agent\nname: a\nspec: {model: m, description: "caf\xe9"}\n')
    result = cli("fmt")
    assert result.exit_code == 1
    assert "manifests/latin1.yaml:3:" in result.stderr and "invalid UTF-8" in result.stderr
    assert "bug" not in result.stderr, result.stderr
    assert latin1.read_bytes().endswith(b'"caf\xe9"}\n'), "left as it was"


def test_fmt_that_cannot_write_a_file_says_which_and_formats_the_others(workdir: Path) -> None:
    # it stopped at the first write error, naming its temp file (manifests/.a.yaml.tmp)
    (workdir / "manifests/a.yaml").write_text(UNFORMATTED)
    (workdir / "manifests/.a.yaml.tmp").mkdir()  # where the new text would be written
    (workdir / "manifests/b.yaml").write_text(UNFORMATTED.replace("a", "b", 1))
    result = cli("fmt")
    assert result.exit_code == 1
    assert "manifests/a.yaml: cannot rewrite it (" in result.stderr, result.stderr
    assert ".tmp" not in result.stderr, result.stderr
    assert (workdir / "manifests/a.yaml").read_text() == UNFORMATTED
    assert "reformatted manifests/b.yaml" in result.stdout


def test_plan_out_that_cannot_be_written_names_the_plan_file(workdir: Path) -> None:
    # "Error: .p.json.tmp: Is a directory": the temp file, not the file asked for
    Path(".p.json.tmp").mkdir()
    result = cli("plan", "--out", "p.json")
    assert result.exit_code == 1
    assert "Error: cannot write the plan to p.json: Is a directory" in result.stderr
    assert not Path("p.json").exists()


def test_no_help_shows_restructuredtext_markup() -> None:
    # `validate --help` printed ``OK: N resources in M files`` with the docstring's quotes
    import click

    from reconciler.cli import main

    def commands(command: click.Command, path: list[str]) -> list[list[str]]:
        found = [path]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += commands(sub, [*path, name])
        return found

    for path in commands(main, []):
        shown = cli(*path, "--help").stdout
        assert "``" not in shown, (path, shown)


# -- provider serve serves the embedded provider's database ----------------------------------


@pytest.mark.parametrize("how", ["env", "option"])
def test_provider_serve_serves_the_database_of_provider_db(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # with RECONCILER_PROVIDER_DB set for the project, `provider serve` served
    # .reconciler/provider.db: --provider-url then pointed at another, empty provider
    from reconciler.cli import provider
    from reconciler.provider import local

    served: list[Any] = []
    monkeypatch.setattr(local, "serve", lambda **kw: served.append(kw["db_path"]))
    monkeypatch.setattr(provider, "_free_port", lambda host, port: port)
    if how == "env":
        monkeypatch.setenv("RECONCILER_PROVIDER_DB", "ops/provider.db")
        ok("provider", "serve")
    else:
        ok("--provider-db", "ops/provider.db", "provider", "serve")
    ok("provider", "serve", "--db", "mine.db", "--provider-db", "ops/provider.db")
    assert served == [Path("ops/provider.db"), Path("mine.db")]


# -- a saved plan of another format ----------------------------------------------------------


def test_a_saved_plan_of_a_newer_format_is_refused_not_applied(workdir: Path) -> None:
    # a plan whose format_version said 2 was applied as if it were of format 1
    import json

    from reconciler.state import json_digest

    ok("plan", "--out", "plan.json")
    data = json.loads(Path("plan.json").read_text())
    data["plan"]["format_version"] = 2
    data["binding"]["plan"] = json_digest(data["plan"])  # as the newer reconciler wrote it
    Path("plan.json").write_text(json.dumps(data))
    result = cli("apply", "plan.json")
    assert result.exit_code == 1
    assert "plan.json: a plan of format 2, written by a newer reconciler" in result.stderr
    assert not Path("state/reconciler.lock").exists(), "nothing was applied"


def test_import_help_and_ci_doc_name_every_file_all_unmanaged_writes() -> None:
    # they named four files; memory stores and skills are written too
    from reconciler.kinds import KIND_INFO

    shown = " ".join(cli("import", "--help").stdout.split())
    doc = " ".join((Path(__file__).parents[1] / "docs/ci.md").read_text().split())
    files = [info.manifest_file for info in KIND_INFO.values() if info.manifest_file]
    assert len(files) == 6
    for file in files:
        assert file in shown, (file, shown)
        assert f"`{file}`" in doc, file


# -- import --all-unmanaged writes manifests that read back as the live objects --------------


def test_import_all_unmanaged_writes_a_literal_dollar_brace_so_it_reads_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a live "${" was written as is: validate refused the manifests import wrote ("${VAR}
    # interpolation is not supported"), and a live "$${" read back as "${" (a change)
    from support.gitops import out_of_band

    from reconciler.provider import ProviderClient

    make_workdir(tmp_path, monkeypatch, manifests=False)

    async def click_together(client: ProviderClient) -> None:
        await client.agents.create(
            {
                "name": "hand",
                "model": "claude-sonnet-4-6",
                "system": "Work in ${REPO}",
                "description": "costs $${X}",
                "metadata": {"env": "${STAGE}"},
            }
        )
        await client.environments.create({"name": "env ${A}", "config": {"type": "cloud"}})

    out_of_band(click_together)
    ok("import", "--all-unmanaged", "--out", "manifests")
    written = Path("manifests/agents.yaml").read_text()
    assert "system: Work in $${REPO}" in written and "costs $$${X}" in written, written
    ok("validate")
    assert "No changes. The live system matches the manifests." in ok("plan").stdout


# -- a name written as an address ------------------------------------------------------------


def test_a_reference_written_as_an_address_says_to_write_the_name(workdir: Path) -> None:
    # "invalid name 'agent.coder': use 1-64 lowercase letters, digits, '-' or '_'": true, but
    # the dot was the whole problem (moved_from, ref, environment and vaults take names)
    deployments = workdir / "manifests/deployments.yaml"
    deployments.write_text(
        deployments.read_text().replace(
            "environment: python-data", "environment: environment.python-data"
        )
    )
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(
        agents.read_text().replace("name: coder\n", "name: coder\nmoved_from: agent.cod\n", 1)
    )
    result = cli("validate")
    assert result.exit_code == 1
    said = result.stderr
    assert (
        "spec.environment: invalid name 'environment.python-data': write the name alone ('python-data'), not an address"
        in said
    ), said
    assert (
        "moved_from: invalid name 'agent.cod': write the name alone ('cod'), not an address" in said
    ), said


@pytest.mark.parametrize(
    "out",
    ["state/reconciler.lock", "state/reconciler.lock.backup", ".reconciler/provider.db"],
)
def test_plan_out_never_writes_over_the_state_or_the_provider(workdir: Path, out: str) -> None:
    # `plan --out state/reconciler.lock` replaced the lockfile by a plan: every later
    # command refused it ("not a lockfile") and the record of what was applied was gone
    ok("apply", "--auto-approve")
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind", "Be kind"))
    before = Path(out).read_bytes()
    result = cli("plan", "--out", out)
    assert result.exit_code == 1
    assert f"--out {out}: that is the " in result.stderr and "would destroy it" in result.stderr
    assert Path(out).read_bytes() == before
    assert "Plan: 0 to create, 2 to update" in ok("plan").stdout


def test_fmt_writes_lf_without_a_bom_as_its_help_says(workdir: Path) -> None:
    crlf = workdir / "manifests/windows.yaml"
    crlf.write_bytes(b"\xef\xbb\xbf" + FORMATTED.replace("\n", "\r\n").encode())
    assert "LF line endings and no byte-order mark" in " ".join(cli("fmt", "--help").stdout.split())
    assert "would reformat manifests/windows.yaml" in cli("fmt", "--check").stdout
    ok("fmt")
    assert crlf.read_bytes() == FORMATTED.encode()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["unlock", "3f2a9c1e"], "state/reconciler.lock does not exist, so it holds no lock"),
        (
            ["rollback", "deployment.nightly-review", "--auto-approve"],
            "state/reconciler.lock does not exist",
        ),
        (["state", "rm", "agent.coder"], "does not exist; there is nothing to remove"),
    ],
)
def test_a_refusal_in_a_directory_never_applied_leaves_no_state_folder_behind(
    workdir: Path, args: list[str], said: str
) -> None:
    # `unlock` and `rollback` run where nothing was applied (a wrong directory or
    # --lockfile) refused, but made state/ and its lock guard file there first
    result = cli(*args)
    assert result.exit_code == 1 and said in result.stderr, result.stderr
    assert not Path("state").exists()


@pytest.mark.parametrize(
    ("typo", "suggested"),
    [("--bogus", None), ("--policies", None), ("--taget", "--target"), ("--prunee", "--prune")],
)
def test_a_mistyped_option_is_suggested_only_what_it_resembles(
    workdir: Path, typo: str, suggested: str | None
) -> None:
    # every option shares its "--": `plan --bogus` was asked "Did you mean '--out'?" and
    # `plan --policies` (a validate option) "Did you mean '--lockfile'?"
    result = cli("plan", typo)
    assert result.exit_code == 1
    if suggested is None:
        assert "Did you mean" not in result.stderr, result.stderr
    else:
        assert f"Did you mean '{suggested}'?" in result.stderr, result.stderr


@pytest.mark.parametrize("command", [["drift"], ["apply", "--auto-approve"]])
@pytest.mark.parametrize("where", ["manifests", "manifests/empty.yaml"])
def test_manifests_with_only_comments_are_warned_about_by_drift_and_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], where: str
) -> None:
    # README: manifests with no document at all are warned about by every command; drift
    # and apply looked only for YAML files, so an empty file (or a comment) passed for one
    make_workdir(tmp_path, monkeypatch, manifests=False)
    Path("manifests").mkdir()
    Path("manifests/empty.yaml").write_text("# yaml-language-server: $schema=x.json\n---\n")
    result = cli("-f", where, *command)
    assert result.exit_code == 0, result.stderr
    assert f"Warning: no manifest documents in {where}; is --manifests/-f right?" in result.stderr


def test_may_hold_documents_reads_past_comments_and_markers_only(tmp_path: Path) -> None:
    from reconciler.manifest.files import may_hold_documents

    def holds(text: str) -> bool:
        (tmp_path / "a.yaml").write_text(text)
        return may_hold_documents([tmp_path / "a.yaml"])

    assert not holds("")
    assert not holds("\ufeff# only a comment\n\n--- # next\n...\n%YAML 1.2\n")
    assert holds("--- {kind: Agent}\n")
    assert holds("# c\nkind: Agent\n")


def test_state_show_of_a_lockfile_that_does_not_exist_says_so(workdir: Path) -> None:
    # "no entry for agent.coder in the lockfile; the lockfile has no entries": state list
    # says the file does not exist (a wrong --lockfile); state show now says it too
    result = cli("state", "show", "agent.coder", "--lockfile", "typo.lock")
    assert result.exit_code == 1
    assert (
        "typo.lock does not exist: no entries (nothing was applied with it yet; check --lockfile)"
        in (result.stderr)
    )


@pytest.mark.tcp
def test_an_api_key_no_header_can_carry_is_refused_at_once_without_showing_it(
    workdir: Path, tcp_provider: str
) -> None:
    """A key pasted with its line break (``--api-key "$(cat key.txt)"`` keeps none, a CRLF
    file or a quoted secret does) failed after four retries as "no response from the
    provider"; the client now refuses it before anything is sent, for every command."""
    key = "sk-ant-secret-value\r\n"
    result = cli("--provider-url", tcp_provider, "--api-key", key, "plan")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "Error: the API key has a carriage return at character 20 of 21; an API key is "
        "printable ASCII with no spaces"
    ), result.stderr
    assert "sk-ant-secret-value" not in result.output + result.stderr
    assert "retries" not in result.stderr


# -- a saved plan written again: the file stays what it was ----------------------------------


def test_plan_out_over_a_private_plan_keeps_it_private_and_a_link_a_link(workdir: Path) -> None:
    # `plan --out` replaced an existing plan file by a new one with the umask's mode (a plan
    # kept 0600 became world-readable) and a symlinked plan path by a plain file; fmt already
    # rewrote files as an editor saves them, the one atomic writer does it for every file now
    import os
    import stat

    Path("plans").mkdir()
    ok("plan", "--out", "plans/plan.json")
    os.chmod("plans/plan.json", 0o600)
    Path("plan.json").symlink_to("plans/plan.json")
    ok("plan", "--out", "plan.json")
    assert Path("plan.json").is_symlink(), "the link stays a link"
    assert stat.S_IMODE(os.stat("plans/plan.json").st_mode) == 0o600
    assert '"plan"' in Path("plans/plan.json").read_text()
    assert sorted(p.name for p in Path("plans").iterdir()) == ["plan.json"], "no temp file left"


@pytest.mark.parametrize("command", [("schema",), ("plan",)], ids=lambda c: c[0])
def test_out_into_a_missing_folder_is_refused_naming_it(
    workdir: Path, command: tuple[str, ...]
) -> None:
    # `schema --out a/b/c.json` made a/ and a/b/ silently (and so did `plan --out`): a typo
    # in the folder left a file where nobody looks, as Terraform's `plan -out` never does
    result = cli(*command, "--out", "a/b/c.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    said = " ".join(result.stderr.split())
    assert "the folder a/b does not exist" in said, said
    assert "mkdir -p a/b" in said, said
    assert not Path("a").exists()
    Path("a").write_text("a file")
    result = cli(*command, "--out", "a/c.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "a is not a folder" in " ".join(result.stderr.split()), result.stderr
    Path("a").unlink()
    Path("a/b").mkdir(parents=True)
    ok(*command, "--out", "a/b/c.json")
    assert json.loads(Path("a/b/c.json").read_text())
