"""Traps a new user met around `run` and agent version pins, driven as the user did.

- a deployment pinned to an agent version that does not exist: a plan error naming the
  address, the version and the latest version (not a 404 about the deployment at apply);
- a 404 keeps the provider's words (the deployment exists; the agent version does not);
- ``run --session ID`` continues the session in its own environment, however many
  environments the manifests have;
- ``run --json | head -1`` ends quietly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.gitops import cli, edit, make_workdir, ok, out_of_band, remote_id
from support.reliability import clean_env

from reconciler.errors import NotFoundError
from reconciler.provider import ProviderClient

DEPLOYMENTS = "manifests/deployments.yaml"
ENVIRONMENTS = "manifests/environments.yaml"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _pin(version: str) -> None:
    edit(
        Path(DEPLOYMENTS), "agent: {ref: reviewer}", f"agent: {{ref: reviewer, version: {version}}}"
    )


# -- pins ---------------------------------------------------------------------------------


def test_a_pin_to_a_missing_agent_version_is_a_plan_error(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    _pin("7")

    for command in (("plan",), ("apply", "--auto-approve")):
        result = cli(*command)
        assert result.exit_code == 1, result.stdout
        assert result.stderr == (
            "Error: manifests/deployments.yaml:8:26: "
            "deployment.nightly-review pins agent.reviewer version 7, which does not "
            "exist: its latest version is 1. Pin an existing version, or follow the latest "
            "(agent: reviewer)\n"
        )
    assert "not found" not in result.stdout + result.stderr


def test_a_pin_to_the_version_this_apply_creates_is_fine(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agents = Path("manifests/agents.yaml")
    agents.write_text(agents.read_text().replace("Be specific and kind.", "Be brief."))
    _pin("3")
    result = cli("plan")
    assert result.exit_code == 1
    assert "version 3, which does not exist: its latest version is 1, 2 after this apply" in (
        result.stderr
    )

    deployments = Path(DEPLOYMENTS)
    deployments.write_text(deployments.read_text().replace("version: 3", "version: 2"))
    ok("apply", "--auto-approve")
    assert json.loads(Path("state/reconciler.lock").read_text())["resources"][
        "deployment.nightly-review"
    ]["pins"] == {"agent.reviewer": 2}


def test_a_404_keeps_the_providers_message(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    deployment_id = remote_id("deployment.nightly-review")
    reviewer = remote_id("agent.reviewer")

    async def pin_missing_version(client: ProviderClient) -> str:
        with pytest.raises(NotFoundError) as caught:
            await client.deployments.update(
                deployment_id, {"agent": {"type": "agent", "id": reviewer, "version": 7}}
            )
        return str(caught.value)

    message = out_of_band(pin_missing_version)
    assert message.startswith(
        f"deployment {deployment_id}: agent version {reviewer} v7 not found (404 "
    )

    async def retrieve_missing_version(client: ProviderClient) -> str:
        with pytest.raises(NotFoundError) as caught:
            await client.agents.retrieve(reviewer, version=9)
        return str(caught.value)

    assert f"{reviewer} v9 not found" in out_of_band(retrieve_missing_version)


# -- run ----------------------------------------------------------------------------------


def test_run_session_continues_in_its_own_environment_among_several(workdir: Path) -> None:
    Path(ENVIRONMENTS).write_text(
        Path(ENVIRONMENTS).read_text() + "\n---\nkind: Environment\nname: scratch\nspec: {}\n"
    )
    ok("apply", "--auto-approve")
    first = ok("run", "coder", "--environment", "scratch", "-m", "one")
    session = first.stderr.split("Session ", 1)[1].split()[0]

    second = ok("run", "coder", "--session", session, "-m", "two")  # no --environment

    assert second.stdout == "echo: two\n"
    assert (
        f"Continuing session {session} (agent.coder version 1 in environment.scratch)"
        in second.stderr
    )
    # a new session still needs the choice
    fresh = cli("run", "coder", "-m", "three")
    assert fresh.exit_code == 1 and "--environment NAME" in fresh.stderr
    # and an --environment that contradicts the session is refused
    wrong = cli("run", "coder", "--session", session, "--environment", "python-data", "-m", "x")
    assert wrong.exit_code == 1
    assert "runs in environment.scratch, not environment.python-data" in wrong.stderr


def test_run_json_piped_to_head_ends_quietly(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    # long enough that the run cannot write its events before the reader goes away
    text = "x" * 100_000
    with subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "run", "coder", "--json", "-m", text],
        cwd=workdir,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = json.loads(process.stdout.readline())
        process.stdout.close()  # what `| head -1` does after one line
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0, stderr
    assert first["type"] == "user.message"
    assert "Broken pipe" not in stderr and "Error" not in stderr and "Exception" not in stderr
    assert stderr.startswith("Session sesn_")


def test_run_with_an_empty_session_id_is_bad_input(workdir: Path) -> None:
    """`--session "$SESSION"` with the variable unset: a clear error before anything is sent,
    not an internal ValueError reported as a bug."""
    ok("apply", "--auto-approve")
    result = cli("run", "coder", "--session", "", "-m", "hi")
    assert result.exit_code == 1
    assert "--session" in result.stderr and "empty" in result.stderr, result.stderr
    assert "bug" not in result.stderr
    assert "Continuing session" not in result.stderr


def test_run_with_an_empty_message_is_bad_input(workdir: Path) -> None:
    """`-m "$PROMPT"` with the variable unset would start a session and a turn on nothing."""
    ok("apply", "--auto-approve")
    result = cli("run", "coder", "-m", "  ")
    assert result.exit_code == 1
    assert "-m" in result.stderr and "empty" in result.stderr, result.stderr
    assert "Session " not in result.stderr and result.stdout == ""


def test_run_says_when_the_manifest_is_not_what_was_applied(workdir: Path) -> None:
    """The system prompt edited and not applied yet: ``run coder`` answered as the applied
    version 1 without a word, so the user took the old answer for the new prompt's. Now it
    warns that agent.coder's manifest is not what the last apply recorded, and runs the
    applied version all the same (as the lockfile says)."""
    ok("apply", "--auto-approve")
    quiet = ok("run", "coder", "-m", "hi")
    assert "Warning" not in quiet.stderr, quiet.stderr
    edit(
        Path("manifests/agents.yaml"),
        "explain what you changed and why.",
        "explain what you changed.\n    local-reply: new {text}",
    )

    result = ok("run", "coder", "-m", "hi")
    assert result.stdout == "echo: hi\n"  # version 1, as applied
    assert "Warning: agent.coder's manifest is not what the last apply recorded" in result.stderr, (
        result.stderr
    )
    assert "runs agent.coder version 1 as applied" in result.stderr
    deployment = ok("run", "nightly-review", "-m", "hi")  # its agent unchanged: no warning
    assert "Warning" not in deployment.stderr, deployment.stderr


def test_run_warns_when_the_files_of_a_skill_its_agent_follows_changed(workdir: Path) -> None:
    """agent.reviewer follows skill.review-checklist's newest version: a checklist edited and
    not applied changes the skill's files, not the agent's manifest, so ``run reviewer`` and
    ``run nightly-review`` ran the applied skill version without a word while plan showed a
    new skill version and an update of the agent. Now they warn, naming the skill."""
    ok("apply", "--auto-approve")
    assert "Warning" not in ok("run", "reviewer", "-m", "hi").stderr
    checklist = Path("manifests/skills/review-checklist/checklist.md")
    checklist.write_text(checklist.read_text() + "\n- Look for secrets in the diff.\n")

    for name in ("reviewer", "nightly-review"):
        result = ok("run", name, "-m", "hi")
        assert (
            "Warning: skill.review-checklist's files are not what the last apply recorded"
            in result.stderr
        ), result.stderr
        assert "runs agent.reviewer version 1 as applied" in result.stderr
    assert "Warning" not in ok("run", "coder", "-m", "hi").stderr  # it follows no skill


def test_run_of_a_pinned_deployment_does_not_promise_apply_moves_it(workdir: Path) -> None:
    """deployment.nightly-review pins agent.reviewer version 1 and the agent's manifest was
    edited: ``run nightly-review`` warned that "`reconciler apply` makes it", but apply
    creates agent.reviewer version 2 and the deployment stays on version 1. The hint says so
    now; an agent that is followed (no pin) keeps the plain hint."""
    ok("apply", "--auto-approve")
    _pin("1")
    ok("apply", "--auto-approve")
    edit(Path("manifests/agents.yaml"), "Be specific and kind.", "Be specific, brief and kind.")

    result = ok("run", "nightly-review", "-m", "hi")
    assert "Warning: agent.reviewer's manifest is not what the last apply recorded" in (
        result.stderr
    ), result.stderr
    assert "`reconciler apply` makes it" not in result.stderr, result.stderr
    assert (
        "deployment.nightly-review stays pinned to agent.reviewer version 1: `reconciler "
        "apply` creates a new agent version, which the pin does not follow"
    ) in " ".join(result.stderr.split()), result.stderr
    agent = ok("run", "reviewer", "-m", "hi")  # the agent itself: apply makes it
    assert "`reconciler apply` makes it" in " ".join(agent.stderr.split()), agent.stderr
    ok("apply", "--auto-approve")
    assert "pinned" not in ok("run", "nightly-review", "-m", "hi").stderr


def test_run_of_a_deployment_warns_when_its_vaults_were_edited_and_not_applied(
    workdir: Path,
) -> None:
    """The deployment's session gets its vaults (vault.github), as applied: a credential
    edited in the manifests (its display name), or its token file rotated, and not applied,
    and ``run nightly-review`` said nothing, so the session used the old token without a
    word. Now it warns, naming the vault, never the secret nor its fingerprint; an agent's
    session has no vaults and is not warned."""
    ok("apply", "--auto-approve")
    assert "Warning" not in ok("run", "nightly-review", "-m", "hi").stderr
    vaults = Path("manifests/vaults.yaml")
    text = vaults.read_text()
    vaults.write_text(text.replace("GitHub MCP token", "GitHub MCP token (bot)"))
    result = ok("run", "nightly-review", "-m", "hi")
    assert "Warning: vault.github's credentials are not what the last apply recorded" in (
        result.stderr
    ), result.stderr
    assert "Warning" not in ok("run", "reviewer", "-m", "hi").stderr

    vaults.write_text(text)
    assert "Warning" not in ok("run", "nightly-review", "-m", "hi").stderr
    token = Path("manifests/secrets/github-token.txt")
    token.write_text("rotated-token-value\n")
    result = ok("run", "nightly-review", "-m", "hi")
    assert "Warning: vault.github's credentials are not what the last apply recorded" in (
        result.stderr
    ), result.stderr
    assert "runs agent.reviewer version 1 with vault.github as applied" in result.stderr
    assert "rotated-token-value" not in result.stdout + result.stderr
    assert "scrypt" not in result.stdout + result.stderr
    ok("apply", "--auto-approve")
    assert "Warning" not in ok("run", "nightly-review", "-m", "hi").stderr


def test_run_warns_when_the_environment_it_runs_in_was_edited_and_not_applied(
    workdir: Path,
) -> None:
    """A package added to environment.python-data and not applied: ``run coder`` started its
    session in the environment as applied, without the package, and said nothing, as it
    says of an edited agent. Now it warns, naming the environment; a continued session
    (``--session``) keeps the environment it has, and is not warned."""
    ok("apply", "--auto-approve")
    started = ok("run", "coder", "-m", "hi")
    assert "Warning" not in started.stderr
    session_id = started.stderr.split("Session ", 1)[1].split()[0]
    edit(Path(ENVIRONMENTS), "        - pyarrow\n", "        - pyarrow\n        - polars\n")

    for name in ("coder", "nightly-review"):
        result = ok("run", name, "-m", "hi")
        assert (
            "Warning: environment.python-data's manifest is not what the last apply recorded"
            in result.stderr
        ), result.stderr
    continued = ok("run", "coder", "--session", session_id, "-m", "again")
    assert "Warning" not in continued.stderr, continued.stderr


def test_run_never_passes_terminal_control_sequences_through(workdir: Path) -> None:
    """An agent's reply (what it read from a web page, say) holding an escape sequence went to
    the terminal as is: ``run`` let it set the window title, clear the screen or recolour
    what follows, which plan and drift never let a live value do. Control characters are
    written as escapes (``\\x1b``), in text mode; line breaks, tabs and any script or emoji
    stay as they are, and ``--json`` keeps the exact text (JSON escapes it)."""
    path = Path("manifests/agents.yaml")
    text = path.read_text()
    start = text.index("  system: |")
    end = text.index("  tools:", start)
    reply = '  system: "local-reply: \\e]0;owned\\a\\e[31m{text}\\tשלום 👨\\u200d👩\\u200d👧"\n'
    path.write_text(text[:start] + reply + text[end:])
    ok("apply", "--auto-approve")
    result = ok("run", "coder", "-m", "hi")
    assert "\x1b" not in result.stdout and "\a" not in result.stdout, repr(result.stdout)
    assert result.stdout == "\\x1b]0;owned\\x07\\x1b[31mhi\tשלום 👨\u200d👩\u200d👧\n"
    event = [
        json.loads(line) for line in ok("run", "coder", "--json", "-m", "hi").stdout.splitlines()
    ]
    [message] = [e for e in event if e["type"] == "agent.message"]
    assert message["content"][0]["text"].startswith("\x1b]0;owned\a")


def test_run_json_escapes_c1_controls_and_bidi_overrides(workdir: Path) -> None:
    """``run --json`` wrote the agent's reply with ``ensure_ascii=False``: JSON escapes C0
    controls but not DEL, the C1 controls (``\\x9b`` is CSI to a terminal that reads 8-bit
    controls) or a right-to-left override, so a terminal showing the JSON lines obeyed them.
    They are written as JSON's own ``\\uXXXX`` escapes: the line is still valid JSON and reads
    back the exact text; scripts and emoji stay as they are."""
    ok("apply", "--auto-approve")
    said = "hi\x9b2J\x1b[31m\x7f\u202egnp.exe\u2066 שלום 👨\u200d👩\u200d👧"
    result = ok("run", "coder", "--json", "-m", said)
    for raw in ("\x9b", "\x7f", "\x1b", "\u202e", "\u2066"):
        assert raw not in result.stdout, (raw, result.stdout)
    assert "\\u009b2J" in result.stdout and "\\u202egnp" in result.stdout
    assert "שלום 👨" in result.stdout
    events = [json.loads(line) for line in result.stdout.splitlines()]
    [reply] = [e for e in events if e["type"] == "agent.message"]
    assert reply["content"][0]["text"] == f"echo: {said}"


def test_run_of_a_deployment_whose_pin_was_moved_by_hand_warns_which_version_runs(
    workdir: Path,
) -> None:
    # someone moved the deployment to v2 in the console; `run nightly-review` started its
    # session on v1 (the lockfile's pin) without a word, while the deployment's scheduled
    # runs use v2: a user trying "what the nightly run does" tried another agent version
    ok("apply", "--auto-approve")
    edit(Path("manifests/agents.yaml"), "Be specific and kind.", "Be specific and brief.")
    _pin("1")
    ok("apply", "--auto-approve")  # agent.reviewer v2; the deployment stays pinned to v1
    deployment_id, agent_id = remote_id("deployment.nightly-review"), remote_id("agent.reviewer")
    out_of_band(
        lambda c: c.deployments.update(
            deployment_id, {"agent": {"type": "agent", "id": agent_id, "version": 2}}
        )
    )
    result = cli("run", "nightly-review", "-m", "hi")
    assert result.exit_code == 0, result.stderr
    assert "agent.reviewer version 1" in result.stderr
    assert (
        "Warning: deployment.nightly-review runs agent.reviewer@2 at the provider (moved "
        "behind git's back); this session runs @1, the version the lockfile pinned"
    ) in result.stderr, result.stderr
