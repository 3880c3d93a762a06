"""Rollouts as a platform team lives with them over days: holds, rollbacks and the live
system changed behind git's back in between (embedded provider, driven through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, drift_json, edit, lockfile, make_workdir, ok, out_of_band
from test_rollout import (
    AGENT,
    DEPLOYMENT,
    DEPLOYMENTS,
    FAILING,
    PASSING,
    agent_created_again_with_its_candidate_held,
    candidate_held,
    entry,
    gate,
    live_pin,
    new_version,
)

from reconciler.provider import ProviderClient


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_a_deployment_archived_behind_our_back_comes_back_without_its_held_candidate(
    workdir: Path,
) -> None:
    # v2 failed its checks and is held; someone archives the deployment in the console. The
    # apply that creates it again pinned it to the latest version, v2 (the plan said
    # agent.reviewer@latest), and the lockfile forgot the hold: the failed candidate ran
    candidate_held()  # v2 held
    out_of_band(lambda c: c.deployments.archive(entry()["id"]))

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert "+ agent: agent.reviewer@1\n" in plan.stdout
    assert "agent.reviewer v2 held: 1 of 1 checks failed on " in plan.stdout
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert [(h["version"], h["stays_at"]) for h in data["held"]] == [(2, 1)]

    ok("apply", "--auto-approve")
    assert live_pin() == 1 and entry()["pins"] == {AGENT: 1}
    assert [h["version"] for h in entry()["held"]] == [2], "still held"
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")
    assert cli("drift").exit_code == 0


def test_rollback_of_a_deployment_archived_behind_our_back_is_refused_before_its_plan(
    workdir: Path,
) -> None:
    # rollback showed its plan and sent the move, which the provider refused with a 400
    # ("is archived and cannot be changed"), reported as a failed apply
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    out_of_band(lambda c: c.deployments.archive(entry()["id"]))
    before = lockfile()

    result = cli("rollback", DEPLOYMENT, "--auto-approve")
    assert result.exit_code == 1, result.stdout
    assert result.stdout == ""
    assert f"{DEPLOYMENT} ({entry()['id']}) was archived behind git's back" in result.stderr
    assert "`reconciler apply` creates it again" in result.stderr
    assert lockfile() == before
    assert live_pin() == 2


def test_rollback_of_a_pin_moved_behind_our_back_says_so_instead_of_guessing(
    workdir: Path,
) -> None:
    # v1 -> v2 -> v3 by apply; someone moves the deployment back to v2 in the console. The
    # rollback took the live v2 for the last move and went on to v1, holding v2; from a
    # version the history never had, it said the pin history "is empty or starts there"
    gate(PASSING)
    ok("apply", "--auto-approve")
    for n in (1, 2):
        new_version(n)
        ok("apply", "--auto-approve")
    deployment_id, agent_id = entry()["id"], entry(AGENT)["id"]
    for console in (2, 1):
        out_of_band(
            lambda c: c.deployments.update(
                deployment_id, {"agent": {"type": "agent", "id": agent_id, "version": console}}
            )
        )
        before = lockfile()
        result = cli("rollback", DEPLOYMENT, "--auto-approve")
        assert result.exit_code == 1, result.stdout
        assert result.stdout == ""
        assert (
            f"{DEPLOYMENT} runs agent.reviewer@{console}, not @3 as the lockfile pinned it: its "
            "pin was moved behind git's back" in result.stderr
        )
        assert "`reconciler apply` puts it back to @3" in result.stderr
        assert "--to VERSION" in result.stderr
        assert lockfile() == before and live_pin() == console

    # told where to go, it goes there from the live pin
    ok("rollback", DEPLOYMENT, "--to", "2", "--auto-approve")
    assert live_pin() == 2 and entry()["pins"] == {AGENT: 2}


# -- --prune of what a live deployment still runs with -------------------------------------


def _archived(vault_id: str) -> bool:
    return bool(out_of_band(lambda c: c.vaults.retrieve(vault_id))["archived_at"])


def _drop_the_vault() -> None:
    Path("manifests/vaults.yaml").unlink()
    edit(DEPLOYMENTS, "  vaults: [github]\n", "")


def test_a_targeted_prune_leaves_alone_what_a_deployment_outside_the_target_runs_with(
    workdir: Path,
) -> None:
    # the vault and the deployment's reference to it both leave the manifests; `apply
    # --prune --target vault.github` archived the vault and left the deployment's update out,
    # so the nightly deployment ran with an archived vault (the provider pauses it)
    ok("apply", "--auto-approve")
    vault_id = entry("vault.github")["id"]
    _drop_the_vault()

    plan = ok("plan", "--prune", "--target", "vault.github").stdout
    assert "- vault.github  archive" not in plan
    assert (
        "vault.github (vlt_" in plan
        and "still used by deployment.nightly-review, which this plan leaves running with it"
        in plan
    )
    ok("apply", "--prune", "--target", "vault.github", "--auto-approve")
    assert not _archived(vault_id)

    # with the deployment's update in the plan, the vault goes after it
    both = ok("plan", "--prune", "--target", "vault.github", "--target", DEPLOYMENT).stdout
    assert "- vault.github  archive" in both and "still used" not in both
    ok("apply", "--prune", "--target", "vault.github", "--target", DEPLOYMENT, "--auto-approve")
    assert _archived(vault_id)
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")


def test_a_prune_leaves_alone_what_a_protected_deployment_left_alone_runs_with(
    workdir: Path,
) -> None:
    # a protected deployment removed from the manifests stays live; the vault it runs with
    # was archived under it by the same --prune
    edit(DEPLOYMENTS, "kind: Deployment\n", "kind: Deployment\nprotect: true\n")
    ok("apply", "--auto-approve")
    vault_id = entry("vault.github")["id"]
    DEPLOYMENTS.unlink()
    Path("manifests/vaults.yaml").unlink()

    result = ok("apply", "--prune", "--auto-approve")
    assert "still used by deployment.nightly-review" in result.stdout
    assert not _archived(vault_id)


def test_a_prune_forgets_what_was_archived_behind_our_back_though_a_deployment_uses_it(
    workdir: Path,
) -> None:
    # archiving it again changes nothing at the provider: the entry is simply forgotten
    edit(DEPLOYMENTS, "kind: Deployment\n", "kind: Deployment\nprotect: true\n")
    ok("apply", "--auto-approve")
    vault_id = entry("vault.github")["id"]
    out_of_band(lambda c: c.vaults.archive(vault_id))
    DEPLOYMENTS.unlink()
    Path("manifests/vaults.yaml").unlink()

    result = ok("apply", "--prune", "--auto-approve")
    assert "still used by" not in result.stdout
    assert "vault.github" not in lockfile()["resources"]


def test_a_prune_leaves_alone_the_agent_and_skill_a_protected_deployment_runs_with(
    workdir: Path,
) -> None:
    edit(DEPLOYMENTS, "kind: Deployment\n", "kind: Deployment\nprotect: true\n")
    ok("apply", "--auto-approve")
    agent_id = entry(AGENT)["id"]
    DEPLOYMENTS.unlink()
    text = Path("manifests/agents.yaml").read_text()
    Path("manifests/agents.yaml").write_text(text.split("---\n")[0])  # the coder stays
    Path("manifests/skills.yaml").unlink()

    plan = ok("plan", "--prune").stdout
    assert "agent.reviewer (agent_" in plan and "skill.review-checklist (skill_" in plan
    assert "still used by agent.reviewer, which this plan leaves alone" in plan
    assert "- agent.reviewer  archive" not in plan and "skill.review-checklist  delete" not in plan
    ok("apply", "--prune", "--auto-approve")
    assert not out_of_band(lambda c: c.agents.retrieve(agent_id))["archived_at"]


def test_a_candidate_of_an_agent_created_again_that_failed_its_checks_stays_held(
    workdir: Path,
) -> None:
    # the agent is archived in the console; apply creates it again (v1 of a new object) and
    # its checks fail. The hold named only "v1", which the deployment ran already (of the old
    # object): every later apply ran the checks again and exited 1, and plan never converged
    old_agent = agent_created_again_with_its_candidate_held()

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.stdout
    assert "agent.reviewer v1 held: 1 of 1 checks failed on " in plan.stdout
    assert "Apply would start" not in plan.stdout
    assert ok("apply", "--auto-approve").stdout.startswith("No changes.")
    live = out_of_band(lambda c: c.deployments.retrieve(entry()["id"]))
    assert live["agent"]["id"] == old_agent and live["agent"]["version"] == 1
    # it runs an archived agent (the provider pauses it at its next run): drift says so,
    # and that apply leaves it there until a version passes
    drift = cli("drift")
    assert drift.exit_code == 2
    assert "whose candidate v1 is held; `reconciler apply` moves it once a version" in drift.stdout

    # the next version of the new agent is the next candidate, and passes
    gate(PASSING)
    new_version(1)
    ok("apply", "--auto-approve")
    live = out_of_band(lambda c: c.deployments.retrieve(entry()["id"]))
    assert (live["agent"]["id"], live["agent"]["version"]) == (entry(AGENT)["id"], 2)
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")


def test_run_of_a_deployment_whose_pinned_version_is_held_never_runs_the_held_candidate(
    workdir: Path,
) -> None:
    # run took the lockfile's agent id with the deployment's pin number: the new agent's v1,
    # the very candidate whose checks failed, while the deployment runs the old agent's v1
    agent_created_again_with_its_candidate_held()
    before = len(out_of_band(lambda c: c.sessions.list(include_archived=True).to_list()))
    result = cli("run", "nightly-review", "-m", "hello")
    assert result.exit_code == 1, result.stdout
    assert "agent.reviewer v1 is held for deployment.nightly-review" in result.stderr
    assert "`reconciler run reviewer`" in result.stderr
    after = len(out_of_band(lambda c: c.sessions.list(include_archived=True).to_list()))
    assert after == before, "no session was started"


def test_rollback_of_a_bare_deployment_name_says_the_address_to_type(workdir: Path) -> None:
    # `run nightly-review` takes the bare name; rollback refused it without saying what to type
    ok("apply", "--auto-approve")
    result = cli("rollback", "nightly-review", "--auto-approve")
    assert result.exit_code == 1
    assert "did you mean deployment.nightly-review?" in result.stderr
    assert "did you mean" not in cli("rollback", "agent.reviewer").stderr


def test_a_vault_removed_behind_our_back_is_not_said_hidden_by_ignore_changes(
    workdir: Path,
) -> None:
    # with ignore_changes on another field, the plan restored the vault the console removed
    # and, under "Left alone", also said the deployment differs in vaults[0] "which
    # ignore_changes leaves as is": the note compared lists by position, the diff as sets
    edit(DEPLOYMENTS, "kind: Deployment\n", "kind: Deployment\nignore_changes: [schedule]\n")
    ok("apply", "--auto-approve")
    out_of_band(lambda c: c.deployments.update(entry()["id"], {"vault_ids": []}))

    plan = ok("plan").stdout
    assert "+ vault_ids: " in plan
    assert "vaults[0]" not in plan and "Left alone" not in plan


def test_a_pin_moved_behind_our_back_while_a_candidate_is_held_is_put_back(
    workdir: Path,
) -> None:
    # v3 is held, the pin stays at @2; someone moves the deployment to v1 in the console.
    # drift said `reconciler apply` pins it as the manifest says, and the plan held the pin
    # where the console put it ("the pin stays at @1"): apply never put it back
    gate(FAILING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve", "--skip-checks")
    new_version(2)
    assert cli("apply", "--auto-approve").exit_code == 1  # v3 held, the pin stays at @2
    deployment_id, agent_id = entry()["id"], entry(AGENT)["id"]
    out_of_band(
        lambda c: c.deployments.update(
            deployment_id, {"agent": {"type": "agent", "id": agent_id, "version": 1}}
        )
    )
    assert cli("drift").exit_code == 2

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert "pin agent.reviewer@1 -> @2  (follows latest)" in plan.stdout
    assert (
        "reason: agent.reviewer v3 is held (1 of 1 checks failed); back to @2, the version the "
        "lockfile pinned (the pin was moved behind git's back)" in plan.stdout
    )
    assert "agent.reviewer v3 held: 1 of 1 checks failed on " in plan.stdout
    assert "the pin stays at @2" in plan.stdout
    data = json.loads(ok("plan", "--format", "json").stdout)
    assert [(m["old"], m["new"], m["checks"]) for m in data["pin_moves"]] == [(1, 2, 0)]
    ok("apply", "--auto-approve")
    assert live_pin() == 2 and entry()["pins"] == {AGENT: 2}
    assert [h["version"] for h in entry()["held"]] == [3], "still held"
    assert cli("drift").exit_code == 0
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")


def _pin_version_2_then_archive_the_agent() -> str:
    """The deployment pins agent.reviewer version 2, then the agent is archived in the
    console; returns the archived agent's id."""
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    edit(DEPLOYMENTS, "agent: {ref: reviewer}", "agent: {ref: reviewer, version: 2}")
    ok("apply", "--auto-approve")
    agent_id = str(entry(AGENT)["id"])
    out_of_band(lambda c: c.agents.archive(agent_id))
    return agent_id


def test_drift_reports_an_agent_archived_under_a_deployment_that_pins_its_version(
    workdir: Path,
) -> None:
    # the deployment pins agent.reviewer version 2; the agent is archived in the console.
    # drift stopped with exit 1 and "pins agent.reviewer version 2, which does not exist"
    # (the plan's check of the manifest) instead of reporting the archive (exit 2)
    _pin_version_2_then_archive_the_agent()

    data = drift_json()
    assert [(i["address"], i["type"]) for i in data["items"]] == [(AGENT, "archived")]


def test_a_pin_of_an_agent_archived_behind_our_back_says_why_the_version_is_missing(
    workdir: Path,
) -> None:
    # plan said "agent.reviewer does not exist yet", of an agent applied days ago
    agent_id = _pin_version_2_then_archive_the_agent()

    result = cli("plan")
    assert result.exit_code == 1
    assert "manifests/deployments.yaml:8:26: " in result.stderr
    assert "does not exist yet" not in result.stderr
    assert (
        f"agent.reviewer ({agent_id}) was archived or deleted behind git's back: this apply "
        "creates it again, and its versions start over at 1" in result.stderr
    )


@pytest.mark.parametrize("version", [1, 3])
def test_a_deployment_set_to_another_agent_in_the_console_is_put_back_while_a_candidate_is_held(
    workdir: Path, version: int
) -> None:
    # v2 is held, the pin stays at @1; someone points the deployment at another (live) agent
    # in the console. The plan said "No changes" (the pin stays) and drift said apply would
    # move it "once a version of agent.reviewer passes its checks": as if the other agent were
    # agent.reviewer archived and created again. Nothing ever put the deployment back
    candidate_held()  # v2 held, the pin stays at @1
    deployment_id = entry()["id"]

    async def intrude(client: ProviderClient) -> str:
        other = await client.agents.create({"name": "intruder", "model": "claude-sonnet-4-6"})
        for n in range(2, version + 1):
            other = await client.agents.update(
                other["id"], {"version": n - 1, "description": f"edit {n}"}
            )
        pin = {"type": "agent", "id": other["id"], "version": version}
        await client.deployments.update(deployment_id, {"agent": pin})
        return str(other["id"])

    other = out_of_band(intrude)
    (item,) = [i for i in drift_json()["items"] if i["address"] == DEPLOYMENT]
    assert item["type"] == "pin"
    assert f"runs agent {other}@{version}, not {AGENT}" in item["message"], item["message"]
    assert "that the lockfile pinned @1" in item["message"], item["message"]
    assert "passes its checks" not in item["message"], item["message"]

    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert "back to @1, the version the lockfile pinned" in plan.stdout, plan.stdout
    ok("apply", "--auto-approve")
    live = out_of_band(lambda c: c.deployments.retrieve(deployment_id))
    assert live["agent"]["id"] == entry(AGENT)["id"] and live["agent"]["version"] == 1
    assert [h["version"] for h in entry()["held"]] == [2], "still held"
    assert cli("drift", "--ignore-unmanaged").exit_code == 0


def test_a_deployment_set_to_another_agent_is_put_back_without_its_checks(
    workdir: Path,
) -> None:
    # no candidate held; someone points the deployment at another agent in the console. The
    # plan put it back on agent.reviewer@1 (the pin the lockfile records, which passed its
    # checks) "after 1 check", as a new candidate: a failing check then held v1 itself, the
    # approved version, and left the deployment on the other agent
    gate(FAILING)
    ok("apply", "--auto-approve")  # created at agent.reviewer@1: a create is not gated
    deployment_id = entry()["id"]

    async def intrude(client: ProviderClient) -> None:
        other = await client.agents.create({"name": "intruder", "model": "claude-sonnet-4-6"})
        pin = {"type": "agent", "id": other["id"], "version": 1}
        await client.deployments.update(deployment_id, {"agent": pin})

    out_of_band(intrude)
    plan = cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.stdout
    assert "after 1 check" not in plan.stdout, plan.stdout
    assert json.loads(ok("plan", "--format", "json").stdout)["check_sessions"] == 0
    ok("apply", "--auto-approve")
    live = out_of_band(lambda c: c.deployments.retrieve(deployment_id))
    assert live["agent"]["id"] == entry(AGENT)["id"] and live["agent"]["version"] == 1
    assert not entry().get("held")
    assert cli("drift", "--ignore-unmanaged").exit_code == 0


def test_a_candidate_held_while_its_deployment_is_renamed_stays_held(workdir: Path) -> None:
    # the deployment renamed (moved_from) in the same commit as a new agent version whose
    # check fails: the hold was recorded for the new address, which the lockfile did not have
    # yet (the rename is sent with the pin move, so neither was): the hold was lost, and
    # every later apply ran the failing checks again and never renamed the deployment
    gate(FAILING)
    ok("apply", "--auto-approve")
    edit(DEPLOYMENTS, "name: nightly-review\n", "name: nightly\nmoved_from: nightly-review\n")
    new_version(1)
    assert cli("apply", "--auto-approve").exit_code == 1
    state = lockfile()["resources"]
    held = state.get("deployment.nightly", state.get(DEPLOYMENT, {})).get("held", [])
    assert [h["version"] for h in held] == [2], state.keys()

    plan = ok("plan")
    assert "after 1 check" not in plan.stdout, plan.stdout
    assert "agent.reviewer v2 held: 1 of 1 checks failed on " in plan.stdout
    ok("apply", "--auto-approve")  # the rename, the pin staying at @1
    assert "deployment.nightly" in lockfile()["resources"]
    assert entry("deployment.nightly")["pins"] == {AGENT: 1}
    assert [h["version"] for h in entry("deployment.nightly")["held"]] == [2]
    assert ok("plan", "--detailed-exitcode").stdout.startswith("No changes.")
