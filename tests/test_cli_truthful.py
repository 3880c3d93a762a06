"""A CI job is never told "all clear" when the tool could not see, and the command line has
no traps: each test drives the CLI as a user would (``CliRunner`` in a fresh project).

- missing paths are errors for every command; a missing lockfile heals for ``drift`` as for
  ``plan``, and says what it cannot see;
- "No changes" says exactly what is true (left alone, ``ignore_changes``, ``--target``,
  lockfile-only), and ``--detailed-exitcode`` counts a lockfile-only change as 2;
- an empty manifests directory is warned about, and ``--prune`` over it refused;
- the lockfile records its provider origin, and another origin is refused;
- global options after the command; ``--provider-url`` without a scheme.

The terminal side (Ctrl-C at the question, ``apply | tee``) is in ``test_cli_terminal.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from support.gitops import LOCKFILE, cli, lockfile, make_workdir, ok, out_of_band, remote_id

from reconciler.provider import ProviderClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _fails(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Error: " in result.stderr, result.stderr
    return result


def _edit_coder(**fields: Any) -> None:
    """Edit agent.coder as a colleague in the console would (a new version)."""
    coder = remote_id("agent.coder")

    async def edit(client: ProviderClient) -> None:
        agent = await client.agents.retrieve(coder)
        await client.agents.update(coder, {"version": agent["version"], **fields})

    out_of_band(edit)


# --- missing paths and a missing lockfile -------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("validate",),
        ("plan",),
        ("apply", "--auto-approve"),
        ("drift",),
        ("drift", "--format", "json"),
        ("import", "agent.coder", "agent_01x"),
    ],
)
def test_a_manifests_path_that_does_not_exist_is_an_error(
    workdir: Path, args: tuple[str, ...]
) -> None:
    ok("apply", "--auto-approve")
    result = _fails("-f", "no-such-dir", *args)
    assert "no-such-dir" in result.stderr and "no such file or directory" in result.stderr
    assert "No drift" not in result.stdout


def test_drift_without_a_lockfile_still_sees_an_out_of_band_change(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")
    _edit_coder(system="edited in the console")
    (workdir / "state/reconciler.lock").unlink()

    result = cli("drift", "--format", "json")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    changed = [i for i in report["items"] if i["type"] == "changed"]
    assert [(i["address"], i["remote_id"]) for i in changed] == [("agent.coder", coder)]
    assert changed[0]["changes"][0]["path"] == "system"
    assert "lockfile has no entry" in changed[0]["message"]
    assert report["warnings"] and "no lockfile at state/reconciler.lock" in report["warnings"][0]
    assert "Warning: no lockfile at state/reconciler.lock" in result.stderr
    assert not (workdir / "state/reconciler.lock").exists(), "drift changes nothing"


def test_drift_without_a_lockfile_says_what_it_cannot_see(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    env_id = remote_id("environment.python-data")
    (workdir / "state/reconciler.lock").unlink()
    out_of_band(lambda c: c.environments.delete(env_id))

    result = cli("drift")
    # nothing left to list says the environment was ever there: say so instead of "all clear"
    assert result.exit_code == 0, result.stderr
    assert "matches the lockfile" not in result.stdout
    assert result.stdout.startswith("No drift. Nothing differs in what could be compared; ")
    assert "environment.python-data" in result.stderr
    assert "never applied, or deleted behind git's back" in result.stderr
    assert "cannot tell" in result.stderr


def test_state_list_says_when_the_lockfile_does_not_exist(workdir: Path) -> None:
    listed = ok("state", "list", "--lockfile", "typo.lock")
    assert listed.stdout == ""
    assert "typo.lock does not exist" in listed.stderr and "check --lockfile" in listed.stderr


def test_drift_with_a_complete_lockfile_has_no_warning(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    result = cli("drift", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == []
    assert "Warning" not in result.stderr


# --- "No changes" says exactly what is true ---------------------------------------------------

ALL_CLEAR = "The live system matches the manifests."


def test_no_changes_with_resources_left_alone_says_so(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/deployments.yaml").unlink()
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0
    assert ALL_CLEAR not in result.stdout
    assert result.stdout.startswith(
        "No changes. Apply would change nothing, but 1 resource is left alone, as shown below."
    )
    assert "deployment.nightly-review" in result.stdout


def test_no_changes_with_a_difference_ignore_changes_hides_says_so(workdir: Path) -> None:
    environments = workdir / "manifests/environments.yaml"
    environments.write_text(
        environments.read_text().replace(
            "name: python-data\n", "name: python-data\nignore_changes: [description]\n"
        )
    )
    ok("apply", "--auto-approve")
    env_id = remote_id("environment.python-data")
    out_of_band(lambda c: c.environments.update(env_id, {"description": "edited by hand"}))

    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout  # nothing to apply: the difference is ignored
    assert ALL_CLEAR not in result.stdout
    assert result.stdout.startswith("No changes. Apply would change nothing, but 1 resource")
    assert (
        f"environment.python-data ({env_id}): differs from the manifest in description, "
        "which ignore_changes leaves as is" in result.stdout
    )
    notes = json.loads(ok("plan", "--format", "json").stdout)["notes"]
    assert [n["address"] for n in notes] == ["environment.python-data"]


def test_an_agent_edit_ignore_changes_hides_is_recorded_once(workdir: Path) -> None:
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(
        agents.read_text().replace("name: coder\n", "name: coder\nignore_changes: [description]\n")
    )
    ok("apply", "--auto-approve")
    _edit_coder(description="edited in the console")

    # the live agent has a new version the lockfile must note, and nothing else to do
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.stdout
    assert "differs from the manifest in description, which ignore_changes" in result.stdout
    assert "Apply would only update the lockfile: it records 1 resource" in result.stdout.replace(
        "\n", " "
    )
    ok("apply", "--auto-approve")
    assert lockfile()["resources"]["agent.coder"]["version"] == 2
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_no_changes_under_target_says_others_differ(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    _edit_coder(system="edited in the console")

    result = cli("plan", "--target", "agent.reviewer", "--detailed-exitcode")
    assert result.exit_code == 0
    assert ALL_CLEAR not in result.stdout
    assert "No changes. The targeted resources match the manifests." in result.stdout
    assert "1 other resource has changes outside --target" in result.stdout
    doc = json.loads(ok("plan", "--target", "agent.reviewer", "--format", "json").stdout)
    assert doc["untargeted"] == ["agent.coder"]
    markdown = ok("plan", "--target", "agent.reviewer", "--format", "markdown").stdout
    assert "1 other resource has changes outside --target" in markdown


def test_a_lockfile_only_change_is_said_and_exits_2(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    ok("state", "rm", "agent.coder")

    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.stdout
    assert ALL_CLEAR in result.stdout  # true: the live system does match
    assert "Apply would only update the lockfile: it records 1 resource" in result.stdout.replace(
        "\n", " "
    )
    doc = json.loads(ok("plan", "--format", "json").stdout)
    assert (doc["has_changes"], doc["has_lockfile_changes"]) == (False, True)

    ok("apply", "--auto-approve")
    assert cli("plan", "--detailed-exitcode").exit_code == 0
    assert json.loads(ok("plan", "--format", "json").stdout)["has_lockfile_changes"] is False


def test_a_lockfile_only_change_names_what_it_records_and_why(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    ok("state", "rm", "agent.coder")
    environments = workdir / "manifests/environments.yaml"
    environments.write_text(
        environments.read_text().replace(
            "name: python-data\n", "name: python-data\nprotect: true\n"
        )
    )
    text = ok("plan").stdout.replace("\n", " ")
    assert (
        "it records 2 resources (agent.coder, found again by its ownership tags; "
        "environment.python-data, whose lockfile entry is out of date)." in text
    ), text


def test_everything_in_order_still_says_all_clear(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0
    assert result.stdout == f"No changes. {ALL_CLEAR}\n"


# --- empty manifests ---------------------------------------------------------------------------


def test_an_empty_manifests_directory_is_warned_about(workdir: Path) -> None:
    (workdir / "empty").mkdir()
    result = cli("-f", "empty", "validate")
    assert result.exit_code == 0
    assert result.stdout == "OK: 0 resources in 0 files\n"
    assert "Warning: no manifest documents in empty" in result.stderr
    assert "Warning: no manifest documents in empty" in cli("-f", "empty", "plan").stderr


def test_a_directory_whose_only_yaml_is_ignored_is_warned_about_by_drift(workdir: Path) -> None:
    """drift looks before it loads: the files it counts are those load_manifests reads, so
    YAML that .reconcilerignore leaves out is no manifest."""
    (workdir / "other/ci").mkdir(parents=True)
    (workdir / "other/ci/workflow.yaml").write_text("on: push\n")
    (workdir / "other/.reconcilerignore").write_text("ci/\n")
    result = cli("-f", "other", "drift")
    assert "Warning: no manifest documents in other" in result.stderr, result.stderr


def test_prune_over_an_empty_directory_is_refused_unless_allowed(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "empty").mkdir()
    refused = _fails("-f", "empty", "plan", "--prune")
    assert "refusing --prune" in refused.stderr and "--allow-empty" in refused.stderr
    applied = _fails("-f", "empty", "apply", "--prune", "--auto-approve")
    assert "refusing --prune" in applied.stderr
    assert len(lockfile()["resources"]) == 8, "nothing was archived"

    allowed = ok("-f", "empty", "plan", "--prune", "--allow-empty")
    assert "Plan: 0 to create, 0 to update, 6 to archive, 1 to delete." in allowed.stdout


# --- the provider origin ------------------------------------------------------------------------

LOCAL = "local:../.reconciler/provider.db"
#: how messages name it: a path from the project directory
LOCAL_SAID = "the embedded provider at .reconciler/provider.db"


def test_the_lockfile_records_the_origin_and_refuses_another(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    assert lockfile()["origin"] == LOCAL

    # port 9 (discard) is closed: a refusal that named a connection error would mean a request
    refused = _fails("--provider-url", "http://127.0.0.1:9", "plan")
    assert f"state/reconciler.lock was applied to {LOCAL_SAID}" in refused.stderr
    assert "this run talks to http://127.0.0.1:9" in refused.stderr
    assert "--allow-origin-change" in refused.stderr
    other_db = _fails("apply", "--provider-db", "staging.db", "--auto-approve")
    assert "this run talks to the embedded provider at staging.db" in other_db.stderr
    assert not (workdir / "staging.db").exists(), "refused before opening anything"


def test_drift_against_another_origin_is_refused_not_reported_deleted(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    refused = _fails("drift", "--provider-db", "staging.db")
    assert f"state/reconciler.lock was applied to {LOCAL_SAID}" in refused.stderr
    assert "this run talks to the embedded provider at staging.db" in refused.stderr
    assert "deleted" not in refused.stdout
    assert not (workdir / "staging.db").exists(), "refused before opening anything"
    # the same objects served another way (here: a copy of the database) may be compared
    shutil.copy(workdir / ".reconciler/provider.db", workdir / "staging.db")
    assert cli("drift", "--provider-db", "staging.db", "--allow-origin-change").exit_code == 0
    assert lockfile()["origin"] == LOCAL, "drift writes nothing"


def test_an_embedded_provider_whose_database_is_gone_is_refused_as_a_new_provider(
    workdir: Path,
) -> None:
    # a clone without .reconciler/ (or a run from another folder): it opened an empty
    # database there and planned to create everything the state records again
    ok("apply", "--auto-approve")
    shutil.rmtree(workdir / ".reconciler")
    for command in (("plan",), ("drift",), ("apply", "--auto-approve")):
        refused = _fails(*command)
        said = " ".join(refused.stderr.split())
        assert "state/reconciler.lock records 8 resources, but the embedded provider at " in said
        assert ".reconciler/provider.db does not exist: a new, empty provider" in said
        assert "--allow-origin-change" in said
        assert not (workdir / ".reconciler").exists(), "refused before opening anything"
    # told so, it is a new provider like any other
    assert "8 to create" in ok("plan", "--allow-origin-change").stdout


def test_allow_origin_change_lets_the_lockfile_follow(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    ok("plan", "--provider-db", "other.db", "--allow-origin-change")
    assert lockfile()["origin"] == LOCAL, "plan writes nothing"
    ok("apply", "--provider-db", "other.db", "--allow-origin-change", "--auto-approve")
    assert lockfile()["origin"] == "local:../other.db"
    ok("plan", "--provider-db", "other.db")
    _fails("plan")


def test_the_url_origin_is_normalised(workdir: Path, tcp_provider: str) -> None:
    ok("--provider-url", tcp_provider, "apply", "--auto-approve")
    assert lockfile()["origin"] == tcp_provider.rstrip("/")
    # the same provider, written another way: a trailing /v1, a slash, an upper-case host
    same = tcp_provider.replace("127.0.0.1", "127.0.0.1").rstrip("/") + "/v1/"
    result = ok("--provider-url", same.replace("http://", "HTTP://"), "plan", "--detailed-exitcode")
    assert result.stdout == f"No changes. {ALL_CLEAR}\n"


def test_an_old_lockfile_without_an_origin_works_and_gets_one(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    path = workdir / "state/reconciler.lock"
    data = json.loads(path.read_text())
    del data["origin"]
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    ok("plan", "--provider-db", "elsewhere.db")  # no origin recorded: nothing to compare
    _edit_coder(description="edited in the console")
    ok("apply", "--auto-approve")
    assert lockfile()["origin"] == LOCAL


def test_the_local_origin_is_the_same_from_another_folder(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    (workdir / "sub").mkdir()
    os.chdir(workdir / "sub")
    result = ok(
        "-f", "../manifests",
        "--lockfile", "../state/reconciler.lock",
        "--provider-db", "../.reconciler/provider.db",
        "plan", "--detailed-exitcode",
    )  # fmt: skip
    assert result.stdout == f"No changes. {ALL_CLEAR}\n"


# --- the command line ----------------------------------------------------------------------------


def test_global_options_work_after_the_command(workdir: Path) -> None:
    (workdir / "manifests").rename(workdir / "desired")
    result = ok("plan", "--project", "team-a", "-f", "desired")
    assert result.stdout.startswith('Plan for project "team-a"')
    ok("validate", "--manifests=desired")
    ok("apply", "--auto-approve", "-fdesired", "--lockfile", "other.lock")
    assert (workdir / "other.lock").exists() and not (workdir / "state").exists()
    listed = ok("state", "list", "--lockfile", "other.lock").stdout
    assert "agent.coder" in listed
    assert ok("drift", "-f", "desired", "--lockfile", "other.lock").exit_code == 0
    # the command's own options and help are still its own
    assert "Show what apply would do" in ok("plan", "--help").stdout


def test_a_typo_of_a_global_option_after_the_command_suggests_it(workdir: Path) -> None:
    result = _fails("plan", "--projct", "x")
    assert "Did you mean '--project'?" in result.stderr
    assert "--prune" not in result.stderr


def test_global_options_after_the_command_lose_to_nothing_before_it(workdir: Path) -> None:
    # later wins, as when an option is repeated in place
    result = ok("--project", "one", "plan", "--project", "two")
    assert result.stdout.startswith('Plan for project "two"')


def test_a_provider_url_without_a_scheme_fails_at_once_with_a_hint(workdir: Path) -> None:
    result = _fails("--provider-url", "127.0.0.1:8787", "plan")
    assert "did you mean http://127.0.0.1:8787?" in result.stderr
    assert "retries" not in result.stderr
    result = _fails("plan", "--provider-url", "localhost:8787")
    assert "did you mean http://localhost:8787?" in result.stderr


def test_a_remote_provider_url_without_a_scheme_is_hinted_https(workdir: Path) -> None:
    # the API key must not be suggested onto plain HTTP across the internet
    result = _fails("plan", "--provider-url", "api.anthropic.com")
    assert "did you mean https://api.anthropic.com?" in result.stderr
    assert "http://api" not in result.stderr
    assert (
        "did you mean http://[::1]:8787?" in _fails("plan", "--provider-url", "[::1]:8787").stderr
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://300.1.1.1:8787", "Invalid IPv4 address"),
        ("http://xn--.example.com", "Malformed A-label"),
        ("https://api.anthropic .com", "a space"),
        ("http://user:s3cret-pw@[::1", "Invalid IPv6 URL"),
    ],
)
def test_a_provider_url_whose_host_cannot_be_parsed_is_refused_at_once(
    workdir: Path, url: str, why: str
) -> None:
    """``--provider-url http://[::1`` (a missing bracket), an IPv4 address out of range or
    a malformed punycode label ended in "unexpected ValueError ... This is a bug"; a host
    with a space was retried four times as a name that does not resolve."""
    result = _fails("plan", "--provider-url", url)
    assert "is not a URL the client can use" in result.stderr, result.stderr
    assert why in result.stderr, result.stderr
    assert "bug" not in result.stderr and "retries" not in result.stderr, result.stderr
    assert "s3cret-pw" not in result.stderr


@pytest.mark.parametrize("option", ["--provider-url", "--backend", "--provider-db"])
def test_an_empty_provider_url_or_backend_on_the_command_line_is_a_usage_error(
    workdir: Path, option: str
) -> None:
    """``reconciler --provider-url "$URL" apply`` with URL unset in the CI job planned and
    applied against the embedded local provider, exit 0 (``--backend ""`` kept the state
    in the lockfile; ``--provider-db ""`` said "the local provider database . is a folder"):
    the empty value was taken for "not given", where ``--project ""``, ``--lockfile ""`` and
    ``-f ""`` are usage errors."""
    for args in ((option, "", "plan"), ("apply", "--auto-approve", option, "")):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.stdout)
        assert f"Invalid value for '{option}'" in result.stderr, result.stderr
        assert "empty" in result.stderr
    assert not Path(".reconciler").exists() and not Path(LOCKFILE).exists()


def test_an_empty_provider_url_variable_is_said_to_mean_the_embedded_provider(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RECONCILER_PROVIDER_URL: ${{ secrets.URL }}`` with the secret missing: empty means
    unset (as for every variable, and as RECONCILER_BACKEND says), but silently so the job
    talked to an embedded provider it never meant."""
    monkeypatch.setenv("RECONCILER_PROVIDER_URL", "")
    result = ok("plan")
    assert "Warning: RECONCILER_PROVIDER_URL is set but empty" in result.stderr, result.stderr
    assert ".reconciler/provider.db" in result.stderr
    monkeypatch.delenv("RECONCILER_PROVIDER_URL")
    assert "RECONCILER_PROVIDER_URL" not in ok("plan").stderr


def test_a_provider_url_with_v1_is_tolerated(workdir: Path, tcp_provider: str) -> None:
    result = ok("plan", "--provider-url", tcp_provider.rstrip("/") + "/v1")
    assert "Plan: 8 to create" in result.stdout


def test_hoisting_moves_each_global_option_with_its_value_and_nothing_else() -> None:
    import click

    from reconciler.cli import main
    from reconciler.cli.hoisting import hoist_global_options

    def hoist(*args: str) -> list[str]:
        return hoist_global_options(main, click.Context(main), list(args))

    assert hoist("plan", "-f", "d", "--out", "p.json", "-fd2", "--project=x", "--debug") == [
        "-f", "d", "-fd2", "--project=x", "--debug", "plan", "--out", "p.json",
    ]  # fmt: skip
    # before the command: kept as written, the value of -f is not taken for the command
    assert hoist("-f", "plan", "apply", "--project", "x") == [
        "-f", "plan", "--project", "x", "apply",
    ]  # fmt: skip
    # the command's own option wins; nothing after -- moves
    assert hoist("apply", "--parallelism", "3", "--", "--project", "x") == [
        "apply", "--parallelism", "3", "--", "--project", "x",
    ]  # fmt: skip
    # a value missing at the end is a usage error: moved, it would take `plan` as its value
    with pytest.raises(click.BadOptionUsage, match="'--project' requires an argument"):
        hoist("plan", "--project")


def test_the_origin_shown_and_recorded_never_carries_user_info() -> None:
    """The "Refreshing from ..." line and the lockfile's origin come from one function, which
    drops a user:password written into --provider-url."""
    from reconciler.app import Settings, provider_origin

    settings = Settings(provider_url="http://ci:s3cret@127.0.0.1:8787/v1/")
    assert provider_origin(settings) == "http://127.0.0.1:8787"


def test_drift_names_the_provider_it_refreshes_from_as_plan_does(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spinner of drift (a daily job's, run by hand against the wrong provider) says
    which provider it reads, in plan's words (it said only: Refreshing...)."""
    from contextlib import contextmanager

    from reconciler.cli import terminal

    shown: list[str] = []

    @contextmanager
    def status(message: str) -> Any:
        shown.append(message)
        yield

    monkeypatch.setattr(terminal, "status", status)
    ok("apply", "--auto-approve")
    cli("drift")
    assert shown and shown[-1].startswith("Refreshing from the embedded local provider ("), shown


# --- apply with no one to ask -----------------------------------------------------------------


def test_apply_with_no_one_to_ask_refuses_only_what_it_would_change(workdir: Path) -> None:
    """``reconciler apply`` in a job without --auto-approve (stdin not a terminal): with
    nothing to change it ends as Terraform's does, "No changes", exit 0; with changes it
    shows the plan, refuses and changes nothing."""
    refused = _fails("apply")
    assert "refusing to apply without confirmation" in refused.stderr
    assert "--auto-approve" in refused.stderr
    # a finished sentence: it ended "... run `reconciler apply FILE`" with no full stop
    assert refused.stderr.endswith("and run `reconciler apply FILE`.\n"), refused.stderr
    assert "agent.coder" in refused.stdout  # the plan it would have applied, shown first
    assert not (workdir / "state/reconciler.lock").exists()  # nothing was changed
    ok("apply", "--auto-approve")
    again = ok("apply")
    assert "No changes" in again.stdout
    assert "refusing" not in again.stderr


@pytest.mark.parametrize("path", ["fifo", "/dev/null"])
def test_a_provider_db_that_is_no_regular_file_is_said_to_be_one(workdir: Path, path: str) -> None:
    """``mkfifo p; reconciler --provider-db p plan`` said "cannot write the local provider
    database p (disk I/O error); make its folder writable": the folder was writable, the
    path was a FIFO. It is refused as not a regular file (as ``plan --out`` refuses one),
    the FIFO (or device) left as it was."""
    if path == "fifo":
        os.mkfifo(path)
    result = _fails("--provider-db", path, "plan")
    assert "not a regular file" in result.stderr, result.stderr
    assert "disk I/O" not in result.stderr and "writable" not in result.stderr, result.stderr
    assert "--provider-db" in result.stderr
    if path == "fifo":
        assert Path(path).is_fifo()
    assert not Path(LOCKFILE).exists()
