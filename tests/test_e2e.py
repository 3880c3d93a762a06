"""End to end through the command line: the example manifests, planned and applied.

Each test works in a temporary directory holding a copy of the repository's ``manifests/``;
the embedded local provider stores its data in ``.reconciler/provider.db`` there, exactly as
for a user who runs the README's quick start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir

from reconciler.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ADDRESSES = (
    "agent.coder",
    "agent.reviewer",
    "deployment.nightly-review",
    "environment.python-data",
    "memory_store.review-notes",
    "skill.review-checklist",
    "vault.github",
    "vault.github.credential.github-mcp",
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def cli(*args: str, input: str | None = None) -> Result:
    """Run ``reconciler ARGS`` in-process; unexpected exceptions propagate."""
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def lockfile(workdir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((workdir / "state/reconciler.lock").read_text())
    return data


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- plan and apply --------------------------------------------------------------------------


def test_plan_of_the_examples_shows_creates_and_the_summary(workdir: Path) -> None:
    result = ok("plan")
    for address in EXAMPLE_ADDRESSES:
        assert f"+ {address}  create" in result.stdout
    assert result.stdout.rstrip().endswith("Plan: 8 to create, 0 to update, 0 to archive.")
    # a followed skill reads as such, never as the apply-time placeholder
    assert "+ skills: [skill.review-checklist@latest]" in result.stdout
    assert "$skill" not in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when piped
    assert result.stderr == ""  # no spinner when piped
    assert not (workdir / "state/reconciler.lock").exists()  # plan changes nothing


def test_detailed_exitcode_then_apply_then_clean(workdir: Path) -> None:
    assert cli("plan", "--detailed-exitcode").exit_code == 2

    applied = ok("apply", "--auto-approve")
    assert "Plan: 8 to create" in applied.stdout
    assert "Apply complete: 8 created, 0 updated, 0 archived." in applied.stdout
    assert set(lockfile(workdir)["resources"]) == set(EXAMPLE_ADDRESSES)

    again = cli("plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.stdout
    assert "No changes." in again.stdout
    assert ok("plan").stdout == again.stdout


def test_apply_with_nothing_to_do_says_no_changes(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    serial = lockfile(workdir)["serial"]
    result = ok("apply", "--auto-approve")
    assert "No changes." in result.stdout
    assert "Apply complete" not in result.stdout
    assert lockfile(workdir)["serial"] == serial


def test_json_format_is_parseable_and_versioned(workdir: Path) -> None:
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert data["format_version"] == 1
    assert json.dumps(data)  # plain JSON values only
    assert "agent.coder" in json.dumps(data)


def test_markdown_format_is_a_pr_comment(workdir: Path) -> None:
    text = ok("plan", "--format", "markdown").stdout
    assert "agent.coder" in text
    assert "8 to create" in text
    assert "\x1b[" not in text


def test_an_update_shows_the_new_agent_version(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "what you changed and why.", "what you changed.")
    result = cli("plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert "~ agent.coder  update" in result.stdout
    assert "1 -> 2" in result.stdout
    assert "Plan: 0 to create, 1 to update, 0 to archive." in result.stdout
    assert (
        "Apply complete: 0 created, 1 updated, 0 archived." in ok("apply", "--auto-approve").stdout
    )
    assert lockfile(workdir)["resources"]["agent.coder"]["version"] == 2


def test_apply_refuses_without_a_terminal_and_without_auto_approve(workdir: Path) -> None:
    result = cli("apply")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "--auto-approve" in result.stderr
    assert "plan --out" in result.stderr
    assert not (workdir / "state/reconciler.lock").exists()


def test_apply_asks_on_a_terminal_and_only_yes_approves(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.cli import terminal

    monkeypatch.setattr(terminal, "is_interactive", lambda: True)
    declined = cli("apply", input="y\n")
    assert declined.exit_code == 1
    # the question goes to stderr (the terminal), so `apply | tee log` keeps it out of the log
    assert "Only 'yes' will be accepted" in declined.stderr
    assert "Apply cancelled; nothing was changed." in declined.stdout
    assert not (workdir / "state/reconciler.lock").exists()

    approved = cli("apply", input="yes\n")
    assert approved.exit_code == 0, approved.stdout
    assert "Apply complete: 8 created" in approved.stdout


def test_saved_plan_is_applied_without_asking(workdir: Path) -> None:
    saved = ok("plan", "--out", "plan.json")
    assert "Saved the plan to plan.json; apply it with `reconciler apply plan.json`" in saved.stderr
    assert (workdir / "plan.json").exists()
    result = ok("apply", "plan.json")  # no terminal, no --auto-approve: the plan was reviewed
    assert "Apply complete: 8 created, 0 updated, 0 archived." in result.stdout
    assert set(lockfile(workdir)["resources"]) == set(EXAMPLE_ADDRESSES)


def test_saved_plan_refuses_exactly_the_action_changed_since(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "what you changed and why.", "what you changed.")
    edit(workdir / "manifests/environments.yaml", "Python 3 with", "Python 3.12 with")
    ok("plan", "--out", "plan.json")
    before = lockfile(workdir)["resources"]
    coder = before["agent.coder"]["id"]
    _change_agent_out_of_band(workdir / ".reconciler/provider.db", coder)

    result = cli("apply", "plan.json")
    assert result.exit_code == 1
    assert "refused: agent.coder changed since the plan (version 1 -> 2)" in result.stdout
    failed = result.stdout.split("failed:", 1)[1].split("Done")[0]
    assert "agent.coder" in failed
    assert "environment.python-data" not in failed  # the environment went through
    assert "reconciler plan" in result.stdout
    after = lockfile(workdir)["resources"]
    env = "environment.python-data"
    assert after[env]["spec_digest"] != before[env]["spec_digest"]
    assert after["agent.coder"] == before["agent.coder"]  # nothing recorded for the refusal


def _change_agent_out_of_band(db: Path, agent_id: str) -> None:
    from reconciler.provider import embedded_client

    async def change() -> None:
        async with embedded_client(db) as client:
            live = await client.agents.retrieve(agent_id)
            await client.agents.update(
                agent_id, {"version": live["version"], "description": "edited in the console"}
            )

    asyncio.run(change())


@pytest.mark.parametrize(
    "flag",
    [
        ("--target", "agent.coder"),
        ("--prune",),
        ("--allow-empty",),
        ("--skip-checks",),
        ("--retry-held",),
    ],
)
def test_a_saved_plan_needs_no_prune_or_target(workdir: Path, flag: tuple[str, ...]) -> None:
    ok("plan", "--out", "plan.json")
    result = cli("apply", "plan.json", *flag)
    assert result.exit_code == 1
    assert "decided when planning" in result.stderr
    assert not (workdir / "state" / "reconciler.lock").exists()


def test_a_saved_plan_applies_with_allow_origin_change(workdir: Path) -> None:
    """The origin is checked again when a saved plan is applied, so the flag still counts."""
    ok("plan", "--out", "plan.json")
    ok("apply", "plan.json", "--allow-origin-change")
    assert lockfile(workdir)["resources"]


def test_target_plans_and_applies_only_that_address(workdir: Path) -> None:
    result = ok("plan", "--target", "agent.coder")
    assert "agent.coder" in result.stdout
    assert "agent.reviewer" not in result.stdout
    assert "Plan: 1 to create" in result.stdout
    ok("apply", "--auto-approve", "--target", "agent.coder")
    assert set(lockfile(workdir)["resources"]) == {"agent.coder"}


def test_prune_archives_a_removed_document_and_plan_says_what_it_left_alone(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    (workdir / "manifests/deployments.yaml").unlink()

    left = cli("plan", "--detailed-exitcode")
    assert left.exit_code == 0
    assert "No changes." in left.stdout
    assert "Left alone:" in left.stdout
    assert "deployment.nightly-review" in left.stdout
    assert "--prune" in left.stdout

    pruned = cli("plan", "--prune", "--detailed-exitcode")
    assert pruned.exit_code == 2
    assert "Plan: 0 to create, 0 to update, 1 to archive." in pruned.stdout
    result = ok("apply", "--auto-approve", "--prune")
    assert "Apply complete: 0 created, 0 updated, 1 archived." in result.stdout
    assert "deployment.nightly-review" not in lockfile(workdir)["resources"]


def test_state_commands_after_apply(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    lines = ok("state", "list").stdout.splitlines()
    assert [line.split()[0] for line in lines] == sorted(EXAMPLE_ADDRESSES)
    coder = next(line.split() for line in lines if line.startswith("agent.coder "))
    assert coder[1] == "agent" and coder[2].startswith("agent_") and coder[3] == "v1"

    shown = json.loads(ok("state", "show", "agent.coder").stdout)
    assert shown["address"] == "agent.coder"
    assert shown["id"] == coder[2]
    assert shown["version"] == 1

    missing = cli("state", "show", "agent.codr")
    assert missing.exit_code == 1
    assert "did you mean agent.coder" in missing.stderr

    removed = ok("state", "rm", "agent.coder")
    assert "NOT touched" in removed.stdout
    assert "agent.coder" not in lockfile(workdir)["resources"]
    # the object is still live: the next plan finds it by its ownership metadata, so
    # nothing is created twice, and the next apply records it again: a change to the
    # lockfile only, which --detailed-exitcode counts as something for apply to do (2)
    replan = cli("plan", "--detailed-exitcode")
    assert replan.exit_code == 2
    assert (
        "No changes. The live system matches the manifests. Apply would only update the "
        "lockfile: it records 1 resource" in replan.stdout.replace("\n", " ")
    )
    readopted = ok("apply", "--auto-approve")
    assert "Recorded 1 unchanged resource in the lockfile" in readopted.stdout
    assert lockfile(workdir)["resources"]["agent.coder"]["id"] == coder[2]


def test_run_an_agent_after_apply_prints_the_echo(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    result = ok("run", "coder", "-m", "hello there")
    assert result.stdout == "echo: hello there\n"
    assert "Session sesn_" in result.stderr
    assert "agent.coder version 1 in environment.python-data" in result.stderr


def test_run_json_prints_one_event_per_line_and_continues_a_session(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    first = ok("run", "agent.coder", "-m", "one", "--json")
    events = [json.loads(line) for line in first.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert "agent.message" in types
    assert types[-1] == "session.status_idle"
    assert events[-1]["stop_reason"]["type"] == "end_turn"

    session = first.stderr.split("Session ", 1)[1].split()[0]
    second = ok("run", "coder", "--session", session, "-m", "two")
    assert second.stdout == "echo: two\n"
    assert f"Continuing session {session}" in second.stderr


def test_run_a_deployment_uses_its_pin_environment_and_vaults(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    result = ok("run", "nightly-review", "-m", "only #42")
    assert result.stdout == "echo: only #42\n"
    assert "deployment.nightly-review: agent.reviewer version 1" in result.stderr
    session_id = result.stderr.split("Session ", 1)[1].split()[0]
    session = _retrieve_session(workdir / ".reconciler/provider.db", session_id)
    resources = lockfile(workdir)["resources"]
    assert session["agent"]["id"] == resources["agent.reviewer"]["id"]
    assert session["agent"]["version"] == 1
    assert session["environment_id"] == resources["environment.python-data"]["id"]
    assert session["vault_ids"] == [resources["vault.github"]["id"]]


def _retrieve_session(db: Path, session_id: str) -> dict[str, Any]:
    from reconciler.provider import embedded_client

    async def get() -> dict[str, Any]:
        async with embedded_client(db) as client:
            session: dict[str, Any] = await client.sessions.retrieve(session_id)
            return session

    return asyncio.run(get())


def test_run_before_apply_says_to_apply_first(workdir: Path) -> None:
    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: there is no state at state/reconciler.lock (looked for in {workdir}): "
        "apply the manifests first (`reconciler apply`)"
    )


def test_run_an_unknown_name_suggests_close_ones(workdir: Path) -> None:
    result = cli("run", "codr", "-m", "hi")
    assert result.exit_code == 1
    assert "did you mean" in result.stderr and "coder" in result.stderr


# --- over loopback TCP ------------------------------------------------------------------------


@pytest.fixture
def tcp_url(workdir: Path) -> Iterator[str]:
    from reconciler.provider.local import BackgroundServer, create_app

    with BackgroundServer(create_app(workdir / "tcp-provider.db")) as server:
        yield server.url


@pytest.mark.tcp
def test_plan_apply_run_over_tcp(workdir: Path, tcp_url: str) -> None:
    url = ("--provider-url", tcp_url)
    assert cli(*url, "plan", "--detailed-exitcode").exit_code == 2
    assert "Apply complete: 8 created" in ok(*url, "apply", "--auto-approve").stdout
    assert cli(*url, "plan", "--detailed-exitcode").exit_code == 0
    assert ok(*url, "run", "coder", "-m", "over tcp").stdout == "echo: over tcp\n"
    # nothing went to the embedded provider
    assert not (workdir / ".reconciler/provider.db").exists()
