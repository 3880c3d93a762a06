"""`reconciler run` where a new user's first tries go wrong, each driven as they did.

Run from another directory than the project's; a session that was deleted or archived, or
that runs another agent; an environment archived behind the lockfile's back. Each says what
is wrong in the user's words (addresses, the option to use), not only the provider's ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok, out_of_band, remote_id

from reconciler.provider import ProviderClient


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return tmp_path


def _session_of(result_stderr: str) -> str:
    return result_stderr.split("Session ", 1)[1].split()[0]


def test_run_from_another_directory_says_there_is_no_state_there(
    applied: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reconciler -f project/manifests run coder` from the parent directory said "agent.coder
    is not applied yet; run `reconciler apply` first" - of an agent that was applied."""
    monkeypatch.chdir(applied.parent)
    result = cli("-f", str(applied / "manifests"), "run", "coder", "-m", "hi")
    assert result.exit_code == 1
    assert "not applied yet" not in result.stderr
    assert (
        f"there is no state at state/reconciler.lock (looked for in {applied.parent})"
        in result.stderr
    )
    assert "--lockfile" in result.stderr
    assert not (applied.parent / ".reconciler").exists()  # and nothing was started there


def test_a_session_that_is_gone_says_to_leave_out_session(applied: Path) -> None:
    deleted = _session_of(ok("run", "coder", "-m", "one").stderr)
    archived = _session_of(ok("run", "coder", "-m", "two").stderr)

    async def clean_up(client: ProviderClient) -> None:
        await client.sessions.delete(deleted)
        await client.sessions.archive(archived)

    out_of_band(clean_up)

    gone = cli("run", "coder", "--session", deleted, "-m", "again")
    assert gone.exit_code == 1
    assert f"there is no session {deleted}" in gone.stderr
    assert "leave out --session to start a new one" in gone.stderr
    old = cli("run", "coder", "--session", archived, "-m", "again")
    assert old.exit_code == 1
    assert f"session {archived} is archived and takes no more messages" in old.stderr
    assert "leave out --session" in old.stderr
    assert "Continuing session" not in old.stderr  # refused before anything was sent


def test_a_session_id_pasted_with_spaces_around_it_continues_that_session(applied: Path) -> None:
    """`--session "sesn_01... "` (copied with the space after it) said "there is no session
    sesn_01..." of a session that exists, the space being invisible in the message."""
    session = _session_of(ok("run", "coder", "-m", "one").stderr)

    again = cli("run", "coder", "--session", f" {session} ", "-m", "two")

    assert again.exit_code == 0, again.stderr
    assert f"Continuing session {session} (" in again.stderr
    assert again.stdout == "echo: two\n"


def test_a_session_of_another_agent_names_that_agent_and_how_to_continue_it(
    applied: Path,
) -> None:
    session = _session_of(ok("run", "coder", "-m", "one").stderr)
    result = cli("run", "reviewer", "--session", session, "-m", "two")
    assert result.exit_code == 1
    coder = remote_id("agent.coder")
    assert f"session {session} runs agent.coder ({coder}), not agent.reviewer" in result.stderr
    assert f"reconciler run agent.coder --session {session} -m TEXT" in result.stderr


def test_a_session_of_the_agent_is_not_continued_as_the_deployments(applied: Path) -> None:
    """`run nightly-review --session S` with S started by `run reviewer`: the same agent, but
    not the deployment's session (its environment, vaults and resources are the run's): it was
    continued and labelled as the deployment's. It is refused, naming what it belongs to."""
    session = _session_of(ok("run", "reviewer", "-m", "one").stderr)
    result = cli("run", "nightly-review", "--session", session, "-m", "two")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Continuing session" not in result.stderr and result.stdout == ""
    assert f"session {session} is not a session of deployment.nightly-review" in result.stderr
    assert "reconciler run agent.reviewer" in result.stderr
    assert f"reconciler run agent.reviewer --session {session} -m TEXT" in result.stderr

    async def said(client: ProviderClient) -> list[str]:
        events = await client.sessions.list_events(session).to_list()
        return [e["type"] for e in events if e["type"] == "user.message"]

    assert out_of_band(said) == ["user.message"]  # nothing was sent to it
    # the deployment's own sessions continue as before: one `run nightly-review` started,
    # and one the provider started from the deployment
    own = _session_of(ok("run", "nightly-review", "-m", "one").stderr)
    again = ok("run", "nightly-review", "--session", own, "-m", "two")
    assert f"Continuing session {own} (deployment.nightly-review: " in again.stderr

    async def run_now(client: ProviderClient) -> str:
        run = await client.deployments.run(remote_id("deployment.nightly-review"))
        return str(run["session_id"])

    fired = out_of_band(run_now)
    ok("run", "nightly-review", "--session", fired, "-m", "three")


def test_an_environment_archived_behind_the_lockfiles_back_is_named_by_address(
    applied: Path,
) -> None:
    env_id = remote_id("environment.python-data")
    out_of_band(lambda client: client.environments.archive(env_id))
    result = cli("run", "coder", "-m", "hi")
    assert result.exit_code == 1
    assert (
        "could not start a session of agent.coder version 1 in environment.python-data"
        in result.stderr
    )
    assert f"environment {env_id} is archived" in result.stderr  # the provider's words
    assert "reconciler drift" in result.stderr


def test_a_deployment_archived_behind_the_lockfiles_back_runs_no_session(applied: Path) -> None:
    """`run nightly-review` after the deployment was archived in the console started a
    session from its recorded agent, environment and vaults and labelled it the deployment's,
    exit 0, as if nothing had happened: it is refused, naming the archive and the remedies."""
    deployment_id = remote_id("deployment.nightly-review")
    out_of_band(lambda client: client.deployments.archive(deployment_id))

    async def sessions(client: ProviderClient) -> int:
        return len([s async for s in client.sessions.list()])

    before = out_of_band(sessions)
    result = cli("run", "nightly-review", "-m", "hi")
    assert result.exit_code == 1, result.stderr
    assert (
        f"deployment.nightly-review ({deployment_id}) was archived outside reconciler"
        in result.stderr
    )
    assert "reconciler drift" in result.stderr and "reconciler apply" in result.stderr
    assert "reconciler run agent.reviewer" in result.stderr
    assert out_of_band(sessions) == before  # no session was started
    ok("run", "reviewer", "-m", "hi")  # the agent itself runs, on purpose


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("-m", "caf\udce9 au lait"), "'-m'"),  # `-m "$(cat note-latin1.txt)"`
        (("-m", "hi", "--session", "sesn_\udcff"), "'--session'"),
    ],
)
def test_a_message_or_session_that_is_not_utf8_is_a_usage_error(
    applied: Path, args: tuple[str, ...], option: str
) -> None:
    """A message read from a Latin-1 file (the shell hands its bytes over as they are) made
    run say "unexpected UnicodeEncodeError ... This is a bug in reconciler"; a session id
    so garbled too."""
    result = cli("run", "coder", *args)
    assert result.exit_code == 1, result.stdout
    assert f"Invalid value for {option}: is not UTF-8 text (byte 0x" in result.stderr, (
        result.stderr
    )
    assert "bug" not in result.stderr and "Session " not in result.stderr
