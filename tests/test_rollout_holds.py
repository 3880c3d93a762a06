"""Held candidates through what a platform team's week does to them: a lockfile lost while a
deployment was archived behind git's back, a runner whose clock is off, rollbacks forward,
and the history that says what happened (embedded provider, driven through the CLI)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import pytest
from support.gitops import DB, LOCKFILE, cli, make_workdir, ok, out_of_band
from support.reliability import provider
from test_rollout import (
    AGENT,
    DEPLOYMENT,
    PASSING,
    agent_created_again_with_its_candidate_held,
    all_sessions,
    candidate_held,
    entry,
    gate,
    live_pin,
    new_version,
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _lose_the_lockfile() -> None:
    Path(LOCKFILE).unlink()
    Path(LOCKFILE + ".backup").unlink(missing_ok=True)


def test_a_lost_lockfile_keeps_the_hold_of_a_deployment_archived_behind_our_back(
    workdir: Path,
) -> None:
    # v2 failed its checks and is held, the pin stays at @1; the deployment is archived in
    # the console and the lockfile is lost. The healing plan read the rollout records of live
    # deployments only: it created the deployment again at @latest, the failed candidate
    candidate_held()  # v2 held
    archived = entry()["id"]
    out_of_band(lambda c: c.deployments.archive(archived))
    _lose_the_lockfile()

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert "+ agent: agent.reviewer@1\n" in plan.stdout
    assert "agent.reviewer v2 held: 1 of 1 checks failed on " in plan.stdout
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert [(h["version"], h["stays_at"]) for h in data["held"]] == [(2, 1)]
    # it was in the manifests all along: the plan says what became of it instead
    assert "is new in the manifests" not in plan.stdout
    assert (
        f"reason: the lockfile has no entry, and the deployment tagged for it ({archived}) is "
        "archived" in plan.stdout
    )

    ok("apply", "--auto-approve")
    assert entry()["id"] != archived
    assert live_pin() == 1 and entry()["pins"] == {AGENT: 1}
    assert [(h["version"], h["reason"]) for h in entry()["held"]] == [(2, "checks")]
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")


class _SlowClock(datetime):
    """The runner's clock, an hour behind the provider's."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _SlowClock:  # type: ignore[override]
        real = datetime.now(tz)
        slow = real - timedelta(hours=1)
        return cls.fromtimestamp(slow.timestamp(), tz)


def test_a_hold_written_by_a_runner_whose_clock_is_slow_still_holds(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the hold named a version number and the runner's time; the plan took it for a hold of
    # the agent object before (held before the new object was created, by the provider's
    # clock), so every apply ran the failed candidate's checks again and exited 1
    with monkeypatch.context() as m:
        m.setattr("reconciler.state.model.datetime", _SlowClock)
        old_agent = agent_created_again_with_its_candidate_held()
    new_agent = entry(AGENT)["id"]
    assert [(h["version"], h["agent_id"]) for h in entry()["held"]] == [(1, new_agent)]

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v1 held: 1 of 1 checks failed on " in plan.stdout
    assert "Apply would start" not in plan.stdout
    assert ok("apply", "--auto-approve").stdout.startswith("No changes.")
    live = out_of_band(lambda c: c.deployments.retrieve(entry()["id"]))
    assert live["agent"]["id"] == old_agent


def test_a_hold_in_a_lockfile_older_than_its_agent_id_still_holds(workdir: Path) -> None:
    # lockfiles written before holds named the agent object are matched by time as before
    agent_created_again_with_its_candidate_held()
    data = json.loads(Path(LOCKFILE).read_text())
    for hold in data["resources"]["deployment.nightly-review"]["held"]:
        hold.pop("agent_id")
    Path(LOCKFILE).write_text(json.dumps(data))

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v1 held: 1 of 1 checks failed on " in plan.stdout


def test_a_lost_lockfile_heals_its_holds_with_the_agent_they_are_of(workdir: Path) -> None:
    agent_created_again_with_its_candidate_held()
    new_agent = entry(AGENT)["id"]
    _lose_the_lockfile()
    ok("apply", "--auto-approve")
    assert [(h["version"], h["agent_id"]) for h in entry()["held"]] == [(1, new_agent)]
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")


def test_rollback_to_a_newer_version_says_forward_not_back(workdir: Path) -> None:
    # v1 -> v2 -> v3, rolled back to v1; `rollback --to 3` said "rollback: back to
    # agent.reviewer@3" and "agent.reviewer@1 -> @3 rolled back", of a move forward
    ok("apply", "--auto-approve")
    for n in (1, 2):
        new_version(n)
        ok("apply", "--auto-approve")
    ok("rollback", DEPLOYMENT, "--to", "1", "--auto-approve")

    result = ok("rollback", DEPLOYMENT, "--to", "3", "--auto-approve")
    assert "back to" not in result.stdout and "rolled back;" not in result.stdout
    assert "pin agent.reviewer@1 -> @3  (rollback, forward)" in result.stdout
    assert (
        "reason: rollback: forward to agent.reviewer@3 (--to), newer than @1; v3 was held "
        "(rolled back from on " in result.stdout
    )
    report = "deployment.nightly-review: agent.reviewer@1 -> @3 moved forward; v1 is now held."
    assert report in result.stdout
    assert live_pin() == 3

    # a move to an older version still reads as a rollback
    result = ok("rollback", DEPLOYMENT, "--to", "2", "--auto-approve")
    assert "pin agent.reviewer@3 -> @2  (rollback)" in result.stdout
    assert "reason: rollback: back to agent.reviewer@2 (--to)" in result.stdout
    assert "agent.reviewer@3 -> @2 rolled back; v3 is now held." in result.stdout


def test_a_deployment_pruned_and_declared_again_starts_as_a_new_one(workdir: Path) -> None:
    # the records of a deployment archived by our own --prune are no lost lockfile's: the
    # one declared again later is a new deployment, at the version its manifest asks for
    candidate_held()  # v2 held
    deployments = Path("manifests/deployments.yaml")
    text = deployments.read_text()
    deployments.unlink()
    ok("apply", "--prune", "--auto-approve")
    deployments.write_text(text)

    plan = ok("plan").stdout
    assert "+ agent: agent.reviewer@latest" in plan and "held" not in plan
    ok("apply", "--auto-approve")
    assert live_pin() == 2 and "held" not in entry()


def test_run_and_rollback_ignore_the_hold_of_an_agent_object_archived_since(
    workdir: Path,
) -> None:
    # v2 is rolled back from (held); the agent is archived in the console and created again,
    # and the deployment follows the new object to its v2. That hold is of the old object:
    # run refused the deployment ("agent.reviewer v2 is held"), and a rollback to the new
    # object's v2 said "v2 was held"
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    ok("rollback", DEPLOYMENT, "--auto-approve")  # back to v1, v2 held
    old_agent = entry(AGENT)["id"]
    out_of_band(lambda c: c.agents.archive(old_agent))
    ok("apply", "--auto-approve")  # the agent created again, the deployment on its v1
    new_version(2)
    ok("apply", "--auto-approve")  # the new object's v2
    new_agent = entry(AGENT)["id"]
    assert new_agent != old_agent and live_pin() == 2
    assert [(h["version"], h["agent_id"]) for h in entry()["held"]] == [(2, old_agent)]

    result = cli("run", "nightly-review", "-m", "hello")
    assert result.exit_code == 0, result.stderr
    assert "is held" not in result.stderr

    ok("rollback", DEPLOYMENT, "--to", "1", "--auto-approve")
    assert [(h["version"], h["agent_id"]) for h in entry()["held"]] == [
        (2, old_agent),
        (2, new_agent),
    ]
    plan = cli("plan", "--detailed-exitcode")  # the new object's v2 is held now
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v2 held: rolled back on " in plan.stdout
    again = ok("rollback", DEPLOYMENT, "--to", "2", "--auto-approve").stdout
    assert "v2 was held (rolled back from on " in again  # the new object's, held just now
    assert [(h["version"], h["agent_id"]) for h in entry()["held"]] == [
        (2, old_agent),
        (1, new_agent),
    ]


EVENTS_PATH = re.compile(r"^/v1/sessions/[^/]+/events$")


def test_checks_the_provider_failed_to_run_leave_the_candidate_unheld(workdir: Path) -> None:
    # the provider answered 503 to the check's message: the check "failed", the candidate
    # was held as if it had failed its checks, and no later apply tried it again (only
    # --retry-held): a provider outage branded a good version bad
    gate(PASSING)
    with provider(Path(DB)) as (url, tap):
        ok("--provider-url", url, "apply", "--auto-approve")
        new_version(1)
        tap.before = lambda method, path: method == "POST" and bool(EVENTS_PATH.match(path))
        result = cli("--provider-url", url, "apply", "--auto-approve")
        assert result.exit_code == 1, result.stdout
        out = result.stdout + result.stderr
        assert "which is now held" not in out and "checks failed" not in out
        assert (
            "deployment.nightly-review: agent.reviewer@1 -> @2 not checked: 1 of 1 checks "
            "could not run (the provider failed); the pin stays at @1 and v2 is not held: the "
            "next apply runs its checks again" in out
        )
        assert "503" in out  # what the provider said, per check
        assert live_pin() == 1 and "held" not in entry()
        assert not [s for s in all_sessions() if "reconciler-rollout" in s["metadata"]]
        plan = ok("--provider-url", url, "plan").stdout
        assert "pin agent.reviewer@1 -> @2 after 1 check" in plan and "held" not in plan

        tap.before = None  # the provider is back
        applied = ok("--provider-url", url, "apply", "--auto-approve").stdout
        assert "1 of 1 checks passed" in applied
        assert live_pin() == 2


def test_rollback_without_a_lockfile_says_it_is_missing_and_how_to_rebuild_it(
    workdir: Path,
) -> None:
    # a lost lockfile at 2 a.m.: rollback said "deployment.nightly-review is not in
    # state/reconciler.lock", of a file that does not exist, and nothing of what to do
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    deployment_id = entry()["id"]
    _lose_the_lockfile()

    result = cli("rollback", DEPLOYMENT, "--auto-approve")
    assert result.exit_code == 1 and result.stdout == ""
    assert "is not in state/reconciler.lock" not in result.stderr
    assert (
        "Error: state/reconciler.lock does not exist, and rollback goes by the pin history "
        "it keeps. If it was lost, `reconciler apply` rebuilds it from the ownership tags "
        "(and the rollout records the provider keeps; `reconciler plan` first shows what else "
        f"it would change); then `reconciler rollback {DEPLOYMENT} --to VERSION`. Otherwise "
        "check --lockfile" in result.stderr
    )
    assert not Path(LOCKFILE).exists()
    live = out_of_band(lambda c: c.deployments.retrieve(deployment_id))
    assert live["agent"]["version"] == 2


def test_rollback_of_a_deployment_on_an_archived_agent_is_refused_before_its_plan(
    workdir: Path,
) -> None:
    # the agent was archived in the console and created again, and its first version failed
    # its checks: the deployment stays on the archived object. rollback showed a plan that
    # the provider then refused ("agent ... is archived", 400), as a failed apply
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")  # v2
    old_agent = agent_created_again_with_its_candidate_held()
    before = Path(LOCKFILE).read_bytes()

    result = cli("rollback", DEPLOYMENT, "--auto-approve")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        f"Error: {DEPLOYMENT} runs agent {old_agent}, the agent.reviewer object archived "
        "behind git's back, and the provider moves no pin to a version of an archived agent"
        in result.stderr
    )
    assert "`reconciler apply` moves it to agent.reviewer" in result.stderr
    assert Path(LOCKFILE).read_bytes() == before


def test_run_of_a_deployment_left_on_its_archived_agent_names_it_and_what_to_do(
    workdir: Path,
) -> None:
    # the deployment runs v2 of the agent archived in the console; the agent created again
    # has only its v1, held. run started a session of the new object's v2: the provider's
    # "agent version ... v2 not found" (404), with nothing of the archived agent
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")  # v2
    old_agent = agent_created_again_with_its_candidate_held()
    new_agent = entry(AGENT)["id"]
    before = len(all_sessions())

    result = cli("run", "nightly-review", "-m", "hello")
    assert result.exit_code == 1, result.stderr
    assert "not found" not in result.stderr and "404" not in result.stderr
    assert (
        f"Error: {DEPLOYMENT} runs agent {old_agent} (v2), the {AGENT} object archived behind "
        f"git's back; {AGENT} was created again ({new_agent}), and the deployment stays on the "
        "archived one until a version of the new one passes its checks (v1 is held: its checks "
        "failed on " in result.stderr
    )
    assert "`reconciler run reviewer` runs the agent on purpose" in result.stderr
    assert "`reconciler apply --retry-held` runs the held version's checks again" in (result.stderr)
    assert len(all_sessions()) == before  # nothing was started


@pytest.mark.parametrize("lockfile_lost", [False, True], ids=["lockfile", "lockfile-lost"])
def test_a_deployment_archived_on_its_archived_agent_is_not_created_at_the_held_candidate(
    workdir: Path, lockfile_lost: bool
) -> None:
    # the agent was archived in the console and created again, its v1 failed its checks: the
    # deployment stayed on the archived object's v1. Then the deployment was archived too.
    # The plan created it again at agent.reviewer@latest, the held v1, and said nothing of
    # the hold (with the lockfile, its held v1 passed for the pin @1 it recorded, of the
    # archived object; without, the archived object was not the agent's, so no hold counted)
    old_agent = agent_created_again_with_its_candidate_held()
    archived = entry()["id"]
    out_of_band(lambda c: c.deployments.archive(archived))
    if lockfile_lost:
        _lose_the_lockfile()

    plan = cli("plan", "--detailed-exitcode")
    # without a lockfile the credential's secret is sent again (it has no fingerprint)
    assert plan.exit_code == (2 if lockfile_lost else 0), plan.stdout
    assert "+ deployment.nightly-review" not in plan.stdout
    assert (
        "deployment.nightly-review: agent.reviewer v1 held: 1 of 1 checks failed on " in plan.stdout
    )
    assert (
        f"the deployment is not created again: the agent it ran ({old_agent}) was archived "
        "behind git's back, and a create runs no checks (`reconciler apply --retry-held` "
        "creates it at v1 all the same; once agent.reviewer has a new version, apply creates it there)"
    ) in " ".join(plan.stdout.split())
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert [(h["version"], h["stays_at"]) for h in data["held"]] == [(1, None)]

    ok("apply", "--auto-approve")
    assert not [
        d
        for d in out_of_band(lambda c: c.deployments.list(include_archived=True).to_list())
        if not d["archived_at"]
    ]
    # and the next plan still leaves it out (without the lockfile it forgot the hold: the
    # apply above recorded the agent created again, which read as "the deployment was
    # archived on purpose", and the plan after it created the deployment at the held v1)
    again = ok("plan")
    assert "+ deployment.nightly-review" not in again.stdout, again.stdout
    assert "agent.reviewer v1 held: 1 of 1 checks failed on " in again.stdout
    retried = ok("apply", "--retry-held", "--auto-approve")
    assert "+ deployment.nightly-review" in retried.stdout
    assert entry()["id"] != archived and live_pin() == 1
    # created at the held v1 on purpose: no longer held, and the pin history says what put
    # it there (the hold stayed, and the next plan still called v1 held where it ran)
    assert entry().get("held", []) == [], entry()
    moves = [(h["version"], h["by"]) for h in entry()["pin_history"]]
    assert moves[-1] == (1, "retry-held"), moves
    again = ok("plan", "--detailed-exitcode")
    assert again.stdout.startswith("No changes."), again.stdout
    assert "held" not in again.stdout, again.stdout


def test_a_lost_lockfile_keeps_the_holds_of_a_deployment_renamed_with_moved_from(
    workdir: Path,
) -> None:
    # v2 held, then the deployment renamed (moved_from) and the lockfile lost: its records
    # are tagged with the old address, and healing read only the new one's: the plan moved
    # the pin to the failed candidate
    candidate_held()  # v2 held
    deployments = Path("manifests/deployments.yaml")
    deployments.write_text(
        deployments.read_text().replace(
            "name: nightly-review\n", "name: nightly\nmoved_from: nightly-review\n", 1
        )
    )
    ok("apply", "--auto-approve")
    _lose_the_lockfile()

    plan = cli("plan")
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v2 held: 1 of 1 checks failed on " in plan.stdout
    assert "pin agent.reviewer@1 -> @2" not in plan.stdout
    ok("apply", "--auto-approve")
    moved = json.loads(Path(LOCKFILE).read_text())["resources"]["deployment.nightly"]
    assert [(h["version"], h["reason"]) for h in moved["held"]] == [(2, "checks")]
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")


def test_a_version_left_by_a_forward_rollback_is_not_called_rolled_back_later(
    workdir: Path,
) -> None:
    # v1 -> v2 -> v3, back to v1, then forward to v3: v1 is held, as the version the forward
    # move left. The next rollback to it said "v1 was held (rolled back from on ...)", the
    # lockfile's hold read as a rollback from v1, and so did a lost lockfile healed
    ok("apply", "--auto-approve")
    for n in (1, 2):
        new_version(n)
        ok("apply", "--auto-approve")
    ok("rollback", DEPLOYMENT, "--to", "1", "--auto-approve")
    ok("rollback", DEPLOYMENT, "--to", "3", "--auto-approve")
    [hold] = entry()["held"]
    assert (hold["version"], hold["reason"], hold.get("forward")) == (1, "rollback", True)

    state = ok("state", "show", DEPLOYMENT).stdout
    assert '"forward": true' in state

    result = ok("rollback", DEPLOYMENT, "--to", "1", "--auto-approve")
    assert "rolled back from" not in result.stdout
    assert "v1 was held (left by a rollback forward on " in result.stdout
    [hold] = entry()["held"]  # v3, rolled back from now; v1 released
    assert (hold["version"], hold["reason"], hold.get("forward")) == (3, "rollback", None)


def test_a_lost_lockfile_heals_a_forward_rollbacks_hold_as_one(workdir: Path) -> None:
    gate(PASSING)  # gated moves leave the records a lost lockfile heals from
    ok("apply", "--auto-approve")
    for n in (1, 2):
        new_version(n)
        ok("apply", "--auto-approve")
    ok("rollback", DEPLOYMENT, "--to", "1", "--auto-approve")
    ok("rollback", DEPLOYMENT, "--to", "3", "--auto-approve")
    _lose_the_lockfile()
    ok("apply", "--auto-approve")
    [hold] = entry()["held"]
    assert (hold["version"], hold["reason"], hold.get("forward")) == (1, "rollback", True)


def test_drift_run_and_rollback_agree_that_apply_leaves_it_out_while_its_candidate_is_held(
    workdir: Path,
) -> None:
    # the deployment was archived while it stayed on its archived agent (the new object's v1
    # held): apply leaves it out. drift and rollback said "`reconciler apply` creates it
    # again", and run that "the deployment still runs the agent it ran before"
    agent_created_again_with_its_candidate_held()
    archived = entry()["id"]
    out_of_band(lambda c: c.deployments.archive(archived))

    report = cli("drift")
    assert report.exit_code == 2
    said = " ".join(report.stdout.split())
    assert "`reconciler apply` creates it again" not in said, said
    assert (
        "apply creates it again only once a version of agent.reviewer passes its checks: "
        "`reconciler plan` shows the held candidate" in said
    ), said

    run = cli("run", "nightly-review", "-m", "hello")
    assert run.exit_code == 1
    assert "still runs" not in run.stderr
    assert f"{DEPLOYMENT} ({archived}) was archived outside reconciler" in run.stderr

    rolled = cli("rollback", DEPLOYMENT, "--auto-approve")
    assert rolled.exit_code == 1
    said = " ".join(rolled.stderr.split())
    assert "`reconciler apply` creates it again" not in said, said
    assert "`reconciler plan` shows the held candidate" in said, said
