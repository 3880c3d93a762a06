"""Gated rollouts, driven through the CLI as a user would (embedded provider; TCP at the end).

The example deployment gets a ``rollout:`` block; the example agent is edited to make a new
version (the candidate). The local agent answers ``echo: <message>``, so a check whose
``contains`` names a word of its message passes and one that asks for ``LGTM`` fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.gitops import LOCKFILE, cli, edit, lockfile, make_workdir, ok, out_of_band

from reconciler.provider import ProviderClient

DEPLOYMENTS = Path("manifests/deployments.yaml")
AGENTS = Path("manifests/agents.yaml")
DEPLOYMENT = "deployment.nightly-review"
AGENT = "agent.reviewer"

PASSING = '      - message: Review PR 42\n        contains: ["PR 42"]\n'
FAILING = '      - message: Say hello\n        contains: ["LGTM"]\n'


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def gate(*checks: str) -> None:
    """Give the example deployment these rollout checks (replacing any)."""
    text = DEPLOYMENTS.read_text()
    text = text.split("  rollout:\n")[0]
    if not text.endswith("\n"):
        text += "\n"
    DEPLOYMENTS.write_text(text + "  rollout:\n    checks:\n" + "".join(checks))


def new_version(n: int) -> None:
    """Edit the reviewer agent so apply makes a new version of it."""
    text = AGENTS.read_text()
    marker = "Be specific and kind."
    if marker in text:
        text = text.replace(marker, f"Be specific and kind. Revision {n}.")
    else:
        text = text.replace(f"Revision {n - 1}.", f"Revision {n}.")
    AGENTS.write_text(text)


def candidate_held() -> None:
    """The example deployment gated by a failing check and applied; then the reviewer's v2,
    whose check fails: apply exits 1 and v2 is held (the pin stays at 1)."""
    gate(FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    assert cli("apply", "--auto-approve").exit_code == 1


def entry(address: str = DEPLOYMENT) -> dict[str, Any]:
    data: dict[str, Any] = lockfile()["resources"][address]
    return data


def live_pin() -> int:
    deployment_id = entry()["id"]

    async def read(client: ProviderClient) -> int:
        return int((await client.deployments.retrieve(deployment_id))["agent"]["version"])

    return out_of_band(read)


def all_sessions() -> list[dict[str, Any]]:
    async def read(client: ProviderClient) -> list[dict[str, Any]]:
        return await client.sessions.list(include_archived=True).to_list()

    return out_of_band(read)


def sessions() -> list[dict[str, Any]]:
    """The check sessions (not the rollout records, which never run)."""
    return [s for s in all_sessions() if "reconciler-check" in s["metadata"]]


def agent_created_again_with_its_candidate_held() -> str:
    """The reviewer agent archived in the console, created again by apply, and its v1 held
    (its checks failed): the deployment stays on the old agent. Returns the old agent's id."""
    gate(FAILING)
    ok("apply", "--auto-approve")
    old_agent = str(entry(AGENT)["id"])
    out_of_band(lambda c: c.agents.archive(old_agent))
    assert cli("apply", "--auto-approve").exit_code == 1  # the new agent's v1 is held
    assert entry(AGENT)["id"] != old_agent
    return old_agent


def history() -> list[tuple[int, str]]:
    return [(h["version"], h["by"]) for h in entry().get("pin_history", [])]


# -- checks pass: the pin moves -------------------------------------------------------------


def test_a_passing_candidate_moves_the_pin_after_its_checks(workdir: Path) -> None:
    gate(PASSING, '      - message: Review PR 7\n        contains: ["PR 7", "echo"]\n')
    ok("apply", "--auto-approve")
    assert history() == [(1, "apply")]  # a new deployment is not gated
    new_version(1)

    plan = ok("plan").stdout
    assert "pin agent.reviewer@1 -> @2 after 2 checks" in plan
    assert "Apply would start 2 check sessions" in plan
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert data["check_sessions"] == 2
    assert data["pin_moves"][0]["checks"] == 2 and data["pin_moves"][0]["gate"] == "checks"

    result = ok("apply", "--auto-approve")
    assert live_pin() == 2
    assert entry()["pins"] == {AGENT: 2}
    assert history() == [(1, "apply"), (2, "checks")]
    checked = sessions()
    assert len(checked) == 2
    assert all(s["archived_at"] for s in checked), "check sessions are archived"
    assert {s["agent"]["version"] for s in checked} == {2}
    for s in checked:
        assert s["id"] in result.stdout, "the check sessions' ids are reported"
        assert s["metadata"]["reconciler-check"] == DEPLOYMENT
    assert "2 of 2 checks passed" in result.stdout


def test_check_sessions_use_the_deployments_environment_vaults_and_resources(workdir: Path) -> None:
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    (checked,) = sessions()
    assert checked["environment_id"] == entry("environment.python-data")["id"]
    assert checked["vault_ids"] == [entry("vault.github")["id"]]
    (mounted,) = checked["resources"]  # the example deployment mounts its memory store
    assert mounted["type"] == "memory_store" and mounted["access"] == "read_only"
    assert mounted["memory_store_id"] == entry("memory_store.review-notes")["id"]


# -- checks fail: held, exit 1, pin unchanged -----------------------------------------------


def test_a_failing_candidate_is_held_and_the_pin_stays(workdir: Path) -> None:
    gate(PASSING, FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    # another change in the same apply is not blocked by the held candidate
    edit(
        Path("manifests/environments.yaml"),
        "description: Python 3 with the data stack; network limited to GitHub and package "
        "registries.",
        "description: Held or not.",
    )

    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1, result.stdout
    assert live_pin() == 1
    assert entry()["pins"] == {AGENT: 1}
    (held,) = entry()["held"]
    assert held | {"at": "-"} == {
        "agent": AGENT,
        "version": 2,
        "reason": "checks",
        "failed": 1,
        "total": 2,
        "at": "-",
        "agent_id": entry(AGENT)["id"],
    }
    assert entry(AGENT)["version"] == 2, "the agent version was made"
    out = result.stdout + result.stderr
    assert "1 of 2 checks failed on v2" in out
    assert "check 'Say hello': the answer lacks 'LGTM'; got 'echo: Say hello'" in out
    assert all(s["id"] in out for s in sessions())
    assert all(s["archived_at"] for s in sessions())
    live_env = out_of_band(
        lambda c: c.environments.retrieve(entry("environment.python-data")["id"])
    )
    assert live_env["description"] == "Held or not."

    # the next plan says so, and moves nothing
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v2 held: 1 of 2 checks failed on " in plan.stdout
    assert "the pin stays at @1" in plan.stdout
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert data["pin_moves"] == []
    assert [(h["deployment"], h["version"], h["failed"], h["total"]) for h in data["held"]] == [
        (DEPLOYMENT, 2, 1, 2)
    ]
    assert "held: 1 of 2 checks failed" in ok("plan", "--format", "markdown").stdout
    assert ok("apply", "--auto-approve").stdout.startswith("No changes.")
    assert live_pin() == 1


def test_a_held_pin_the_manifest_moved_leaves_nothing_for_the_next_plan(workdir: Path) -> None:
    # the manifest pins the candidate by number; its checks fail. The failed apply left the
    # lockfile entry out of date, so the next plan (a CI job's --detailed-exitcode) said
    # "changes" (exit 2) for a lockfile write, and only a second apply quietened it
    gate(FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    edit(DEPLOYMENTS, "agent: {ref: reviewer}", "agent: {ref: reviewer, version: 2}")
    assert cli("apply", "--auto-approve").exit_code == 1
    assert live_pin() == 1 and [h["version"] for h in entry()["held"]] == [2]

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v2 held: 1 of 1 checks failed on " in plan.stdout
    assert "only update the lockfile" not in plan.stdout
    assert json.loads(ok("plan", "--format", "json").stdout)["has_lockfile_changes"] is False
    assert cli("drift").exit_code == 0


def test_the_blast_radius_says_which_deployments_this_apply_moves(workdir: Path) -> None:
    # it said "pinned to version 2: not affected yet" above the line moving that very pin to
    # v2, and "follows latest: affected by this apply" of a deployment --target left out
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    targeted = ok("plan", "--target", AGENT).stdout
    assert f"    {DEPLOYMENT}  follows latest: not moved by this apply (--target)\n" in targeted
    assert "affected by this apply" not in targeted
    assert f"    {DEPLOYMENT}  follows latest: affected by this apply\n" in ok("plan").stdout
    edit(DEPLOYMENTS, "agent: {ref: reviewer}", "agent: {ref: reviewer, version: 2}")
    plan = ok("plan").stdout
    assert "pin agent.reviewer@1 -> @2 after 1 check  (pinned)" in plan
    assert f"    {DEPLOYMENT}  pinned to version 2: moved to it by this apply\n" in plan
    assert "**pinned to version 2: moved to it by this apply**" in (
        ok("plan", "--format", "markdown").stdout
    )


def test_a_pin_move_to_a_version_that_exists_says_it_is_that_version(workdir: Path) -> None:
    # after `apply --target agent.reviewer` (or a Ctrl-C during the checks) v2 exists and
    # only the pin moves; the reason said "which will be version 2", as if apply made it
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    assert "which will be version 2" in ok("plan").stdout  # made by this apply
    ok("apply", "--auto-approve", "--target", AGENT)
    plan = ok("plan").stdout
    assert "reason: it follows the latest version of agent.reviewer, which is version 2\n" in plan
    assert "will be" not in plan


def test_a_pin_drifted_behind_our_back_is_restored_without_checks(workdir: Path) -> None:
    # the recorded pin was approved already: putting it back is a repair, not a rollout. It
    # was gated: its checks could fail, hold the very version the lockfile pins, and leave the
    # deployment on the version someone moved it to, with drift telling to apply forever
    gate(FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve", "--skip-checks")
    assert live_pin() == 2 and entry()["pins"] == {AGENT: 2}
    deployment_id, agent_id = entry()["id"], entry(AGENT)["id"]
    out_of_band(
        lambda c: c.deployments.update(
            deployment_id, {"agent": {"type": "agent", "id": agent_id, "version": 1}}
        )
    )
    assert cli("drift").exit_code == 2

    data = json.loads(ok("plan", "--format", "json").stdout)
    (move,) = data["pin_moves"]
    assert (move["old"], move["new"], move["checks"], move["gate"]) == (1, 2, 0, None)
    assert data["check_sessions"] == 0
    ok("apply", "--auto-approve")
    assert live_pin() == 2
    assert "held" not in entry()
    assert cli("drift").exit_code == 0


def test_a_pin_moved_behind_our_back_to_a_held_version_is_put_back(workdir: Path) -> None:
    # someone moves the deployment to the latest version in the console: the one whose checks
    # failed. drift said apply would fix it; plan said "No changes" and apply recorded the
    # held version as the deployment's pin and forgot the hold, the gate bypassed
    candidate_held()
    deployment_id, agent_id = entry()["id"], entry(AGENT)["id"]
    out_of_band(
        lambda c: c.deployments.update(
            deployment_id, {"agent": {"type": "agent", "id": agent_id, "version": 2}}
        )
    )
    assert cli("drift").exit_code == 2

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert "pin agent.reviewer@2 -> @1  (follows latest)" in plan.stdout
    assert (
        "reason: agent.reviewer v2 is held (1 of 1 checks failed); back to @1, the version the "
        "lockfile pinned (the pin was moved behind git's back)" in plan.stdout
    )
    assert "agent.reviewer v2 held: 1 of 1 checks failed on " in plan.stdout
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert [(m["old"], m["new"], m["checks"], m["gate"]) for m in data["pin_moves"]] == [
        (2, 1, 0, None)
    ]
    ok("apply", "--auto-approve")
    assert live_pin() == 1 and entry()["pins"] == {AGENT: 1}
    assert [h["version"] for h in entry()["held"]] == [2], "still held"
    assert cli("drift").exit_code == 0
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")


def test_a_later_version_is_the_next_candidate_and_is_promoted(workdir: Path) -> None:
    candidate_held()
    gate(PASSING)  # the team fixes the check (or the agent); v3 comes next
    new_version(2)
    plan = ok("plan").stdout
    assert "pin agent.reviewer@1 -> @3 after 1 check" in plan
    ok("apply", "--auto-approve")
    assert live_pin() == 3
    assert history() == [(1, "apply"), (3, "checks")]
    assert [h["version"] for h in entry()["held"]] == [2], "v2 stays held"


def test_retry_held_reruns_the_checks_of_a_held_candidate(workdir: Path) -> None:
    candidate_held()
    assert cli("apply", "--auto-approve", "--retry-held").exit_code == 1, "still failing"
    assert len(sessions()) == 2
    gate(PASSING)
    assert "No changes." in ok("apply", "--auto-approve").stdout, "held: never promoted"
    assert "after 1 check (retrying a held candidate)" in ok("plan", "--retry-held").stdout
    ok("apply", "--auto-approve", "--retry-held")
    assert live_pin() == 2
    assert history()[-1] == (2, "retry-held")
    assert entry().get("held", []) == []


def test_skip_checks_moves_the_pin_loudly_and_the_history_says_so(workdir: Path) -> None:
    gate(FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    assert "WITHOUT its checks (--skip-checks)" in ok("plan", "--skip-checks").stdout
    result = ok("apply", "--auto-approve", "--skip-checks")
    assert "WARNING" in result.stderr and "WITHOUT its 1 rollout checks" in result.stderr
    assert live_pin() == 2
    assert sessions() == []
    assert history() == [(1, "apply"), (2, "skip-checks")]


def test_skip_checks_with_retry_held_promotes_a_held_candidate_without_its_checks(
    workdir: Path,
) -> None:
    # the emergency a held candidate makes: its check is what is broken. --skip-checks was
    # ignored beside --retry-held: the checks ran again, failed again, and apply exited 1
    candidate_held()
    plan = ok("plan", "--skip-checks", "--retry-held").stdout
    assert "pin agent.reviewer@1 -> @2 WITHOUT its checks (--skip-checks)" in plan
    assert "check session" not in plan
    result = ok("apply", "--auto-approve", "--skip-checks", "--retry-held")
    assert "WARNING" in result.stderr and "WITHOUT its 1 rollout checks" in result.stderr
    assert live_pin() == 2
    assert len(sessions()) == 1, "only the first apply's check ran"
    assert history() == [(1, "apply"), (2, "skip-checks")]
    assert entry().get("held", []) == []


def test_skip_checks_is_recorded_in_the_state_history_too(workdir: Path) -> None:
    def operations() -> list[str]:
        lines = ok("state", "history", "--json").stdout.splitlines()
        return [json.loads(line)["operation"] for line in lines]

    gate(FAILING)
    ok("apply", "--auto-approve")
    before = operations()
    assert set(before) == {"apply"}
    new_version(1)
    ok("apply", "--auto-approve", "--skip-checks")
    assert set(operations()[len(before) :]) == {"apply --skip-checks"}
    assert "apply --skip-checks" in ok("state", "history", DEPLOYMENT).stdout
    new_version(2)
    before = operations()
    ok("apply", "--auto-approve", "--skip-checks", "--target", AGENT)  # no pin moves
    assert set(operations()[len(before) :]) == {"apply"}


# -- rollback -------------------------------------------------------------------------------


def test_rollback_moves_the_pin_back_and_holds_the_version_left(workdir: Path) -> None:
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    new_version(2)
    ok("apply", "--auto-approve")
    assert live_pin() == 3

    refused = cli("rollback", DEPLOYMENT)  # not a terminal: no one to ask
    assert refused.exit_code == 1 and "--auto-approve" in refused.stderr
    assert live_pin() == 3

    result = ok("rollback", DEPLOYMENT, "--auto-approve")
    assert "pin agent.reviewer@3 -> @2  (rollback)" in result.stdout
    assert live_pin() == 2
    assert entry(AGENT)["version"] == 3, "the agent is not touched"
    assert history()[-1] == (2, "rollback")
    assert [(h["version"], h["reason"]) for h in entry()["held"]] == [(3, "rollback")]
    # a later apply does not promote the version rolled back from
    plan = ok("plan", "--detailed-exitcode").stdout
    assert "agent.reviewer v3 held: rolled back on" in plan

    ok("rollback", DEPLOYMENT, "--to", "1", "--auto-approve")
    assert live_pin() == 1
    assert sorted(h["version"] for h in entry()["held"]) == [2, 3]
    shown = json.loads(ok("state", "show", DEPLOYMENT).stdout)
    assert [(h["version"], h["by"]) for h in shown["pin_history"]] == [
        (1, "apply"),
        (2, "checks"),
        (3, "checks"),
        (2, "rollback"),
        (1, "rollback"),
    ]


def test_a_rollback_to_a_held_version_says_it_is_held(workdir: Path) -> None:
    # a second `rollback` undoes the first (the version before the last move is the one
    # rolled back from): the plan said only "the version before @2", not that v3 is held
    # as rolled back from, nor (--to) that a version failed its checks
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    new_version(2)
    ok("apply", "--auto-approve")
    ok("rollback", DEPLOYMENT, "--auto-approve")  # 3 -> 2, v3 held
    again = ok("rollback", DEPLOYMENT, "--auto-approve").stdout
    assert "pin agent.reviewer@2 -> @3  (rollback, forward)" in again
    assert (
        "reason: rollback: forward to agent.reviewer@3, the version it ran before @2; v3 was "
        "held (rolled back from on " in again
    )
    gate(FAILING)
    new_version(3)
    assert cli("apply", "--auto-approve").exit_code == 1  # v4 held: its check failed
    to = ok("rollback", DEPLOYMENT, "--to", "4", "--auto-approve").stdout
    assert "forward to agent.reviewer@4 (--to), newer than @3; v4 was held (1 of 1 checks " \
        "failed on " in to
    assert live_pin() == 4


def test_rollback_refuses_what_it_cannot_do(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    for args, words in [
        (("agent.reviewer",), "rollback takes a deployment address"),
        ((DEPLOYMENT,), "records no version"),
        ((DEPLOYMENT, "--to", "1"), "runs agent.reviewer@1 already"),
        ((DEPLOYMENT, "--to", "9"), "has no version 9"),
        # beyond what the wire takes: was the provider's 400 "Input should be less than..."
        ((DEPLOYMENT, "--to", "99999999999999999999"), "has no version 99999999999999999999"),
        (("deployment.nope",), "is not in"),
    ]:
        result = cli("rollback", *args, "--auto-approve")
        assert result.exit_code == 1, result.stdout
        assert words in result.stderr
    assert live_pin() == 1


# -- the lockfile ---------------------------------------------------------------------------


def test_an_old_lockfile_without_rollout_fields_still_loads(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    data = lockfile()
    data["resources"][DEPLOYMENT].pop("pin_history", None)
    Path(LOCKFILE).write_text(json.dumps(data))
    ok("plan")
    gate(PASSING)
    new_version(1)
    ok("apply", "--auto-approve")
    assert history() == [(2, "checks")]


def test_a_lost_lockfile_heals_with_its_held_versions_and_pin_history(workdir: Path) -> None:
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")  # v2 after its checks
    gate(FAILING)
    new_version(2)
    assert cli("apply", "--auto-approve").exit_code == 1  # v3 held
    ok("rollback", DEPLOYMENT, "--auto-approve")  # back to v1, v2 held
    before = entry()

    Path(LOCKFILE).unlink()
    Path(LOCKFILE + ".backup").unlink()
    plan = ok("plan").stdout
    assert "agent.reviewer v3 held: 1 of 1 checks failed on" in plan  # the candidate
    ok("apply", "--auto-approve")
    assert live_pin() == 1, "nothing held is promoted by the healing apply"
    healed = entry()
    assert [(h["version"], h["reason"]) for h in healed["held"]] == [
        (v, r) for v, r in ((h["version"], h["reason"]) for h in before["held"])
    ]
    # what is lost: the deployment's first pin (no gate made it, so no record was left);
    # the healing apply says where the lockfile was rebuilt
    assert [(h["version"], h["by"]) for h in before["pin_history"]] == [
        (1, "apply"),
        (2, "checks"),
        (1, "rollback"),
    ]
    assert [(h["version"], h["by"]) for h in healed["pin_history"]] == [
        (2, "checks"),
        (1, "rollback"),
        (1, "healed"),
    ]
    assert "No changes." in ok("plan").stdout
    ok("rollback", DEPLOYMENT, "--to", "2", "--auto-approve")  # v2 on purpose: held no more
    assert [h["version"] for h in entry()["held"]] == [3, 1]


def test_rollback_after_a_healed_lockfile_goes_back_as_the_history_says(workdir: Path) -> None:
    # the healing apply appends its own record (from: unknown) at the version running; a
    # plain rollback read only that one and said "the lockfile records no version ... ran
    # before", though the healed history shows the move from v1 right above it
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")  # v2 after its checks
    Path(LOCKFILE).unlink()
    Path(LOCKFILE + ".backup").unlink()
    ok("apply", "--auto-approve")
    assert history() == [(2, "checks"), (2, "healed")]

    result = ok("rollback", DEPLOYMENT, "--auto-approve")
    assert "pin agent.reviewer@2 -> @1  (rollback)" in result.stdout
    assert live_pin() == 1
    assert [(h["version"], h["reason"]) for h in entry()["held"]] == [(2, "rollback")]


def test_the_readme_example_deployment_is_gated_by_its_check(workdir: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Safe rollouts\n", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    DEPLOYMENTS.write_text(example)
    ok("apply", "--auto-approve")
    new_version(1)
    assert "pin agent.reviewer@1 -> @2 after 1 check" in ok("plan").stdout
    assert "1 of 1 checks passed" in ok("apply", "--auto-approve").stdout
    assert live_pin() == 2


# -- the local provider's deterministic agent (DESIGN.md "The local provider's agent") -------


def _has_local_reply() -> bool:
    """Whether the local agent answers from a ``local-reply:`` line (asked, not assumed)."""
    import asyncio
    import tempfile

    from reconciler.provider import embedded_client

    async def probe(db: Path) -> bool:
        async with embedded_client(db) as client:
            agent = await client.agents.create(
                {"name": "probe", "model": "claude-sonnet-4-6", "system": "local-reply: pong"}
            )
            env = await client.environments.create({"name": "probe"})
            session = await client.sessions.create(
                {"agent": agent["id"], "environment_id": env["id"]}
            )
            await client.sessions.send_events(
                session["id"],
                [{"type": "user.message", "content": [{"type": "text", "text": "ping"}]}],
            )
            events = await client.sessions.list_events(session["id"]).to_list()
        texts = [
            b.get("text") for e in events if e["type"] == "agent.message" for b in e["content"]
        ]
        return texts == ["pong"]

    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(probe(Path(tmp) / "probe.db"))


needs_local_reply = pytest.mark.skipif(
    not _has_local_reply(),
    reason="needs the local provider's `local-reply:` agent and outcome grader (DESIGN.md, "
    '"The local provider\'s agent"), built on the `wire` branch and not merged yet',
)
REVIEWER_SYSTEM = (
    "  system: You review code for correctness, security and clarity. Be specific and kind.\n"
)


def reply(line: str) -> None:
    """Make the reviewer's next version answer ``line`` (``{text}``: the user's text)."""
    text = AGENTS.read_text()
    # the reviewer's system prompt (another agent of the file may come first)
    start = text.index("  system:", text.index("\nname: reviewer\n"))
    end = text.index("\n", start) + 1
    while text[end:].startswith("    "):  # the block scalar's lines
        end = text.index("\n", end) + 1
    block = f"  system: |\n    You review code.\n    local-reply: {line}\n"
    AGENTS.write_text(text[:start] + block + text[end:])


@needs_local_reply
def test_local_reply_a_version_that_fails_a_check_and_one_that_passes(workdir: Path) -> None:
    gate('      - message: Review PR 42\n        contains: ["LGTM"]\n')
    reply("LGTM for {text}")
    ok("apply", "--auto-approve")
    reply("Needs work on {text}")  # v2 fails
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1
    assert "got 'Needs work on Review PR 42'" in result.stdout + result.stderr
    assert live_pin() == 1
    reply("LGTM, {text} is fine")  # v3 passes
    ok("apply", "--auto-approve")
    assert live_pin() == 3
    assert history() == [(1, "apply"), (3, "checks")]


@needs_local_reply
def test_local_reply_a_rubric_graded_both_ways(workdir: Path) -> None:
    gate('      - message: Review PR 42\n        rubric: \'says "LGTM" and names "PR 42"\'\n')
    reply("LGTM: {text}")
    ok("apply", "--auto-approve")
    reply("Not yet: {text}")  # needs_revision: "LGTM" is missing
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1
    assert "needs_revision" in result.stdout + result.stderr
    assert live_pin() == 1
    reply("LGTM, {text}")  # satisfied
    ok("apply", "--auto-approve")
    assert live_pin() == 3


@needs_local_reply
def test_a_failed_check_says_which_expectation_failed(workdir: Path) -> None:
    """A check with both ``contains`` and a rubric: the report names what failed (the
    grader's verdict and why, or the strings the answer lacks), not every expectation. It
    used to read "expected contains 'PR 42'; ..." for an answer that contains "PR 42", and
    its "got" was the whole transcript (the answer twice, then a "[grader: ...]" line)."""
    gate(
        "      - message: Review PR 42\n"
        '        contains: ["PR 42"]\n'
        "        rubric: 'says \"LGTM\" about \"PR 42\"'\n"
    )
    reply("LGTM: {text}")
    ok("apply", "--auto-approve")
    reply("Not yet: {text}")
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1
    out = result.stdout + result.stderr
    assert (
        "check 'Review PR 42': the grader said needs_revision (the answer lacks \"LGTM\") for "
        "the rubric 'says \"LGTM\" about \"PR 42\"'; got 'Not yet: Review PR 42' (session " in out
    )
    assert "expected contains" not in out
    # the answer once, and the grader's verdict in its own words, not a transcript that
    # repeated the answer and closed on a "[grader: ...]" line
    assert out.count("Not yet: Review PR 42") == 1 and "[grader" not in out

    reply("LGTM: {text} looks fine")  # satisfies the grader, lacks the contains string
    gate(
        "      - message: Review PR 42\n"
        '        contains: ["PR 42", "approved"]\n'
        "        rubric: 'says \"LGTM\"'\n"
    )
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1
    out = result.stdout + result.stderr
    assert "check 'Review PR 42': the answer lacks 'approved'; got 'LGTM: Review PR 42" in out
    assert "grader said" not in out


def test_a_renamed_deployment_keeps_its_held_versions_and_history(workdir: Path) -> None:
    candidate_held()
    edit(DEPLOYMENTS, "name: nightly-review\n", "name: nightly\nmoved_from: nightly-review\n")
    plan = ok("plan").stdout
    assert "deployment.nightly-review -> deployment.nightly" in plan
    assert "agent.reviewer v2 held: 1 of 1 checks failed on" in plan
    ok("apply", "--auto-approve")
    moved = lockfile()["resources"]["deployment.nightly"]
    assert [h["version"] for h in moved["held"]] == [2]
    assert [(h["version"], h["by"]) for h in moved["pin_history"]] == [(1, "apply")]
