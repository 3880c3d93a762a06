"""Renames without churn: ``moved_from`` and ``state mv``, driven through the CLI.

A user renames a document and says where it came from; the plan shows the move, apply keeps
the remote object (same id, renamed and retagged in place, one new agent version) and moves
its lockfile entry, deployments keep their pins, and nothing is archived or created. Also
across a lost lockfile, across two commits (a chain), by hand (``state mv``), and after a
crash between the provider's update and the lockfile write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from support.gitops import lockfile, make_workdir, out_of_band, remote_id
from support.reliability import clean_env, kill_hook, provider

from reconciler.cli import main
from reconciler.provider import ProviderClient

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test-token")
    return make_workdir(tmp_path, monkeypatch)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def rename_reviewer(workdir: Path, new: str = "critic", old: str = "reviewer") -> None:
    """Rename the reviewer agent document, saying where it came from, and its references."""
    edit(workdir / "manifests/agents.yaml", f"name: {old}\n", f"name: {new}\nmoved_from: {old}\n")
    deployments = workdir / "manifests/deployments.yaml"
    deployments.write_text(deployments.read_text().replace(f"{{ref: {old}", f"{{ref: {new}"))


def agents(*, archived: bool = False) -> list[dict[str, Any]]:
    async def listing(client: ProviderClient) -> list[dict[str, Any]]:
        return await client.agents.list(include_archived=archived).to_list()

    return out_of_band(listing)


def plan_json(*args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok("plan", "--format", "json", *args).stdout)
    return data


# --- the move itself ------------------------------------------------------------------------


def test_a_renamed_agent_is_moved_in_place_and_its_pinned_deployment_keeps_its_pin(
    workdir: Path,
) -> None:
    edit(workdir / "manifests/deployments.yaml", "{ref: reviewer}", "{ref: reviewer, version: 1}")
    ok("apply", "--auto-approve")
    agent_id = remote_id("agent.reviewer")
    rename_reviewer(workdir)

    out = ok("plan").stdout
    assert "  ~ agent.reviewer -> agent.critic  moved  version 1 -> 2  [metadata, name]" in out
    assert "nothing archived or created" in out
    assert '~ name: "reviewer" -> "critic"' in out
    assert '~ metadata.reconciler-address: "agent.reviewer" -> "agent.critic"' in out
    assert out.rstrip().endswith("Plan: 0 to create, 1 to update, 0 to archive, 1 moved.")
    plan = plan_json()
    [moved] = [a for a in plan["actions"] if a["moved_from"]]
    assert (moved["type"], moved["address"], moved["moved_from"]) == (
        "update",
        "agent.critic",
        "agent.reviewer",
    )
    assert (moved["remote_id"], moved["from_version"], moved["to_version"]) == (agent_id, 1, 2)
    assert plan["summary"]["create"] == plan["summary"]["archive"] == 0
    markdown = ok("plan", "--format", "markdown").stdout
    assert "agent.reviewer -> agent.critic" in markdown and "moved" in markdown

    ok("apply", "--auto-approve")
    state = lockfile()["resources"]
    assert "agent.reviewer" not in state
    assert state["agent.critic"]["id"] == agent_id
    assert state["agent.critic"]["version"] == 2
    assert state["deployment.nightly-review"]["pins"] == {"agent.critic": 1}
    live = {a["id"]: a for a in agents(archived=True)}
    assert len(live) == 2 and not any(a["archived_at"] for a in live.values())
    assert live[agent_id]["name"] == "critic"
    assert live[agent_id]["metadata"]["reconciler-address"] == "agent.critic"

    async def deployment(client: ProviderClient) -> dict[str, Any]:
        return await client.deployments.retrieve(remote_id("deployment.nightly-review"))

    assert out_of_band(deployment)["agent"] == {"type": "agent", "id": agent_id, "version": 1}
    # done: the next plan is clean, and the leftover moved_from is only a note
    assert cli("plan", "--detailed-exitcode").exit_code == 0
    notes = plan_json()["notes"]
    assert [n["address"] for n in notes] == ["agent.critic"]
    assert "moved_from names agent.reviewer, which is not in the state" in notes[0]["message"]


def test_a_move_survives_a_lost_lockfile(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agent_id = remote_id("agent.reviewer")
    Path("state/reconciler.lock").unlink()
    rename_reviewer(workdir)
    plan = plan_json()
    [moved] = [a for a in plan["actions"] if a["moved_from"]]
    assert (moved["address"], moved["remote_id"]) == ("agent.critic", agent_id)
    assert plan["summary"]["create"] == 0
    ok("apply", "--auto-approve")
    assert remote_id("agent.critic") == agent_id
    assert len(agents(archived=True)) == 2
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_chain_of_moves_across_two_commits(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agent_id = remote_id("agent.reviewer")
    rename_reviewer(workdir, "critic", "reviewer")
    ok("apply", "--auto-approve")
    # the second commit renames again; moved_from names the previous name
    edit(
        workdir / "manifests/agents.yaml",
        "name: critic\nmoved_from: reviewer\n",
        "name: judge\nmoved_from: critic\n",
    )
    deployments = workdir / "manifests/deployments.yaml"
    deployments.write_text(deployments.read_text().replace("{ref: critic", "{ref: judge"))
    out = ok("plan").stdout
    assert "agent.critic -> agent.judge  moved  version 2 -> 3" in out
    ok("apply", "--auto-approve")
    assert remote_id("agent.judge") == agent_id
    assert set(lockfile()["resources"]) >= {"agent.judge", "agent.coder"}
    assert "agent.critic" not in lockfile()["resources"]
    assert [a["name"] for a in agents() if a["id"] == agent_id] == ["judge"]
    assert len(agents(archived=True)) == 2
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_moved_vault_keeps_its_credentials(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    vault_id = remote_id("vault.github")
    credential_id = remote_id("vault.github.credential.github-mcp")
    edit(workdir / "manifests/vaults.yaml", "name: github\n", "name: gh\nmoved_from: github\n")
    edit(workdir / "manifests/deployments.yaml", "vaults: [github]", "vaults: [gh]")
    plan = plan_json()
    moves = {a["address"]: a["moved_from"] for a in plan["actions"] if a["moved_from"]}
    assert moves == {
        "vault.gh": "vault.github",
        "vault.gh.credential.github-mcp": "vault.github.credential.github-mcp",
    }
    assert plan["summary"]["create"] == plan["summary"]["archive"] == 0
    ok("apply", "--auto-approve")
    state = lockfile()["resources"]
    assert state["vault.gh"]["id"] == vault_id
    assert state["vault.gh.credential.github-mcp"]["id"] == credential_id
    assert not [a for a in state if a.startswith("vault.github")]
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_moved_vault_does_not_send_its_unchanged_secrets_again(workdir: Path) -> None:
    # a user renamed the vault: its credential's secret did not change, so the plan must not
    # show (and apply must not send) a sensitive update of it
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/vaults.yaml", "name: github\n", "name: gh\nmoved_from: github\n")
    edit(workdir / "manifests/deployments.yaml", "vaults: [github]", "vaults: [gh]")
    plan = plan_json()
    (credential,) = [a for a in plan["actions"] if a["kind"] == "credential"]
    assert [c["path"] for c in credential["changes"]] == ["metadata.reconciler-address"]
    assert "auth" not in credential["reason"]
    text = ok("plan").stdout
    assert "(sensitive)" not in text


def test_a_move_with_another_edit_says_what_else_differs(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    rename_reviewer(workdir)
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be brief.")
    assert "; system also differs from the manifest" in ok("plan").stdout


def test_an_environment_is_renamed_in_place(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    env_id = remote_id("environment.python-data")
    edit(
        workdir / "manifests/environments.yaml",
        "name: python-data\n",
        "name: data-science\nmoved_from: python-data\n",
    )
    edit(
        workdir / "manifests/deployments.yaml",
        "environment: python-data",
        "environment: data-science",
    )
    out = ok("plan").stdout
    assert "environment.python-data -> environment.data-science  moved" in out
    ok("apply", "--auto-approve")
    assert remote_id("environment.data-science") == env_id

    async def live(client: ProviderClient) -> dict[str, Any]:
        return await client.environments.retrieve(env_id)

    assert out_of_band(live)["name"] == "data-science"
    assert cli("plan", "--detailed-exitcode").exit_code == 0


# --- what is not a move ---------------------------------------------------------------------


def test_moved_from_naming_nothing_in_the_state_is_a_note(workdir: Path) -> None:
    rename_reviewer(workdir)  # never applied: there is nothing to move
    plan = plan_json()
    assert {a["address"]: a["type"] for a in plan["actions"]}["agent.critic"] == "create"
    assert [n["address"] for n in plan["notes"]] == ["agent.critic"]
    ok("validate")


def test_moved_from_naming_a_declared_address_is_an_error_naming_both_files(
    workdir: Path,
) -> None:
    (workdir / "manifests/more.yaml").write_text(
        "kind: Agent\nname: critic\nmoved_from: coder\nspec: {model: claude-sonnet-4-6}\n"
    )
    for command in ("validate", "plan"):
        result = cli(command)
        assert result.exit_code == 1
        assert "manifests/more.yaml:3:13:" in result.stderr
        assert "agent.coder is still declared at manifests/agents.yaml:" in result.stderr
    assert not Path("state/reconciler.lock").exists()


def test_moved_from_its_own_name_is_an_error(workdir: Path) -> None:
    edit(workdir / "manifests/agents.yaml", "name: coder\n", "name: coder\nmoved_from: coder\n")
    result = cli("validate")
    assert result.exit_code == 1
    assert "moved_from names this document's own name 'coder'" in result.stderr


# --- by hand: state mv ----------------------------------------------------------------------


def test_state_mv_then_plan_retags_the_object(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agent_id = remote_id("agent.reviewer")
    out = ok("state", "mv", "agent.reviewer", "agent.critic").stdout
    assert "Moved agent.reviewer to agent.critic" in out and "NOT touched" in out
    assert lockfile()["resources"]["deployment.nightly-review"]["pins"] == {"agent.critic": 1}
    # the manifests are renamed without moved_from: the lockfile already says where it went
    edit(workdir / "manifests/agents.yaml", "name: reviewer\n", "name: critic\n")
    edit(workdir / "manifests/deployments.yaml", "{ref: reviewer}", "{ref: critic}")
    out = ok("plan").stdout
    assert "agent.reviewer -> agent.critic  moved" in out
    assert "Not ours" not in out
    ok("apply", "--auto-approve")
    assert remote_id("agent.critic") == agent_id
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_an_entry_moved_away_from_a_declared_address_is_not_recorded_twice(
    workdir: Path,
) -> None:
    # `state mv` to an address no document declares, then apply: the declared address found
    # its object again by its tags and recorded it too - two entries for one deployment
    ok("apply", "--auto-approve")
    deployment = remote_id("deployment.nightly-review")
    ok("state", "mv", "deployment.nightly-review", "deployment.nightly")
    out = cli("plan")
    said = " ".join(out.stdout.split())
    assert (
        f"deployment.nightly-review ({deployment}): deployment {deployment}, tagged for "
        "deployment.nightly-review, is recorded as deployment.nightly: taking it here too "
        "would record one object twice" in said
    ), out.stdout
    assert "found again by its ownership tags" not in said
    assert cli("apply", "--auto-approve").exit_code == 1
    recorded = [e["id"] for e in lockfile()["resources"].values()]
    assert recorded.count(deployment) == 1
    ok("state", "mv", "deployment.nightly", "deployment.nightly-review")
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_state_mv_to_an_address_no_document_declares_says_to_rename_it_first(
    workdir: Path,
) -> None:
    # `state mv` before the document is renamed: the next plan cannot retag the object for
    # an address nothing declares (it shows the entry as not ours), so saying "the next
    # apply retags it" misleads
    ok("apply", "--auto-approve")
    out = ok("state", "mv", "agent.reviewer", "agent.critic").stdout
    assert "agent.critic is not in the manifests yet: rename its document" in out, out
    assert "the next apply retags it" not in out
    assert "Not ours" in ok("plan").stdout
    ok("state", "mv", "agent.critic", "agent.reviewer")
    # renamed first: the next apply retags it
    edit(workdir / "manifests/agents.yaml", "name: reviewer\n", "name: critic\n")
    edit(workdir / "manifests/deployments.yaml", "{ref: reviewer}", "{ref: critic}")
    out = ok("state", "mv", "agent.reviewer", "agent.critic").stdout
    assert "the next apply retags it for agent.critic" in out
    assert "not in the manifests" not in out
    # a credential is declared as an item of its vault's document
    edit(workdir / "manifests/vaults.yaml", "- name: github-mcp", "- name: mcp")
    out = ok("state", "mv", "vault.github.credential.github-mcp", "vault.github.credential.mcp")
    assert "not in the manifests" not in out.stdout, out.stdout


def test_a_saved_plan_refuses_an_action_whose_entry_state_mv_moved_since(
    workdir: Path,
) -> None:
    """``plan --out`` (an update of agent.coder), then ``state mv agent.coder agent.writer``,
    then ``apply plan.json``: the update was applied and recorded under agent.coder again,
    so the state held two entries for one agent (agent.coder and agent.writer). The action
    is refused as changed since the plan, naming where its object is recorded now."""
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")
    edit(workdir / "manifests/agents.yaml", "run the tests", "run all the tests")
    ok("plan", "--out", "plan.json")
    ok("state", "mv", "agent.coder", "agent.writer")
    result = cli("apply", "plan.json")
    assert result.exit_code == 1, result.stdout
    said = " ".join((result.stdout + result.stderr).split())
    assert (
        f"agent.coder: refused: {coder} is recorded as agent.writer now, not as agent.coder "
        "(a `state mv` or an import since the plan)"
    ) in said, said
    recorded = [e["id"] for e in lockfile()["resources"].values()]
    assert recorded.count(coder) == 1


def test_state_mv_refuses_what_cannot_be_a_move(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    for args, words in (
        (("agent.reviewr", "agent.x"), "did you mean"),
        (("agent.reviewer", "environment.x"), "a move keeps the kind"),
        (("agent.reviewer", "agent.coder"), "has an entry already"),
        (("agent.reviewer", "nonsense"), "is not an address"),
    ):
        result = cli("state", "mv", *args)
        assert result.exit_code == 1, result.stdout
        assert words in result.stderr
    assert "agent.reviewer" in lockfile()["resources"]


def test_state_mv_keeps_a_credential_in_its_vault(workdir: Path) -> None:
    """A credential lives in its vault on the provider: ``state mv`` to another vault's
    address (one with no entry, or another vault's) would record an entry no vault holds,
    and plan then reported the credential as not ours and planned a second one. Refused,
    naming the address inside its own vault."""
    ok("apply", "--auto-approve")
    before = lockfile()["resources"]
    for target in ("vault.other.credential.x", "vault.github2.credential.github-mcp"):
        result = cli("state", "mv", "vault.github.credential.github-mcp", target)
        assert result.exit_code == 1, result.stdout
        assert "stays in its vault" in result.stderr, result.stderr
        assert "vault.github.credential.x" in result.stderr or "github-mcp" in result.stderr
    assert lockfile()["resources"] == before
    ok("state", "mv", "vault.github.credential.github-mcp", "vault.github.credential.mcp")
    assert "vault.github.credential.mcp" in lockfile()["resources"]


def test_state_mv_of_a_vault_never_overwrites_a_credential_entry(workdir: Path) -> None:
    """``state rm vault.gh`` leaves its credentials' entries (so can a bad merge); a later
    ``state mv vault.github vault.gh`` moved github's credential onto that address and
    silently dropped the entry recorded there. Refused, naming it; nothing changes."""
    ok("apply", "--auto-approve")
    data = lockfile()
    left = dict(data["resources"]["vault.github.credential.github-mcp"], id="vcrd_01leftbehind")
    data["resources"]["vault.gh.credential.github-mcp"] = left
    Path("state/reconciler.lock").write_text(json.dumps(data, indent=2, sort_keys=True))
    before = lockfile()["resources"]
    result = cli("state", "mv", "vault.github", "vault.gh")
    assert result.exit_code == 1, result.stdout
    assert (
        "vault.gh.credential.github-mcp has an entry already (vcrd_01leftbehind)"
    ) in result.stderr, result.stderr
    assert lockfile()["resources"] == before


def test_state_mv_of_a_vault_takes_its_credentials(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    ok("state", "mv", "vault.github", "vault.gh")
    assert {a for a in lockfile()["resources"] if a.startswith("vault.")} == {
        "vault.gh",
        "vault.gh.credential.github-mcp",
    }


# --- a crash between the provider's update and the lockfile write ----------------------------


def test_a_move_killed_after_the_provider_updated_heals_on_the_next_apply(
    workdir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "served.db"
    env = clean_env(
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        GITHUB_TOKEN="ghp-test-token",
    )
    holder: dict[str, int] = {}
    with provider(db) as (url, tap):

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "reconciler.cli", "--provider-url", url, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        assert run("apply", "--auto-approve").returncode == 0
        agent_id = remote_id("agent.reviewer")
        rename_reviewer(workdir)
        # SIGKILL the apply once the provider answered the agent's update (its retag is
        # committed there), before the answer arrives and the lockfile is written
        tap.after = kill_hook(lambda: holder.get("pid"), "POST", rf"/v1/agents/{agent_id}$", 1)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler.cli",
                "--provider-url",
                url,
                "apply",
                "--auto-approve",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        holder["pid"] = proc.pid
        assert proc.wait(timeout=120) == -9
        tap.after = None
        state = lockfile()["resources"]
        assert "agent.reviewer" in state and "agent.critic" not in state  # the write was lost

        plan = run("plan")
        assert plan.returncode == 0, plan.stderr
        assert "agent.reviewer -> agent.critic  moved  (lockfile only)" in plan.stdout
        healed = run("apply", "--auto-approve")
        assert healed.returncode == 0, healed.stderr
        state = lockfile()["resources"]
        assert "agent.reviewer" not in state
        assert state["agent.critic"]["id"] == agent_id
        assert state["agent.critic"]["version"] == 2  # one new version, not two
        assert run("plan", "--detailed-exitcode").returncode == 0


def test_the_json_schema_knows_moved_from(workdir: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(ok("schema").stdout))
    doc = {"kind": "Agent", "name": "critic", "moved_from": "reviewer", "spec": {"model": "m"}}
    assert list(validator.iter_errors(doc)) == []
    assert list(validator.iter_errors({**doc, "moved_from": "Not A Name"}))


def test_a_saved_plan_applies_a_move(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agent_id = remote_id("agent.reviewer")
    rename_reviewer(workdir)
    ok("plan", "--out", "move.plan")
    result = ok("apply", "move.plan")
    assert "stale" not in result.stdout + result.stderr
    assert remote_id("agent.critic") == agent_id
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_move_with_prune_archives_nothing(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    rename_reviewer(workdir)
    plan = plan_json("--prune")
    assert plan["summary"]["archive"] == plan["summary"]["create"] == 0
    ok("apply", "--auto-approve", "--prune")
    assert not any(a["archived_at"] for a in agents(archived=True))


def test_fmt_puts_moved_from_beside_the_name(workdir: Path) -> None:
    (workdir / "manifests/z.yaml").write_text(
        "kind: Agent\nmoved_from: old\nname: new\nspec: {model: claude-sonnet-4-6}\n"
    )
    assert cli("fmt", "--check").exit_code == 1
    ok("fmt")
    assert (workdir / "manifests/z.yaml").read_text() == (
        "kind: Agent\nname: new\nmoved_from: old\nspec: {model: claude-sonnet-4-6}\n"
    )


@pytest.mark.parametrize("how", ["moved_from", "state mv"])
def test_a_renamed_agent_keeps_its_deployments_pin_history_and_holds(
    workdir: Path, how: str
) -> None:
    # the rename named the new address in the deployment's pins only: its holds and pin
    # history kept the old one, so a version rolled back from was no longer held for the
    # agent by its new name, and the history read as another agent's
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be specific and brief.")
    ok("apply", "--auto-approve")  # the deployment follows the reviewer to version 2
    ok("rollback", "deployment.nightly-review", "--auto-approve")  # back to 1; 2 held
    if how == "moved_from":
        rename_reviewer(workdir)
    else:
        ok("state", "mv", "agent.reviewer", "agent.critic")
        rename_reviewer(workdir)
        edit(workdir / "manifests/agents.yaml", "moved_from: reviewer\n", "")
    ok("apply", "--auto-approve")
    entry = lockfile()["resources"]["deployment.nightly-review"]
    assert [h["agent"] for h in entry["held"]] == ["agent.critic"], entry["held"]
    assert {r["agent"] for r in entry["pin_history"]} == {"agent.critic"}, entry["pin_history"]
    assert "agent.reviewer" not in json.dumps(lockfile())


# --- what is not a move ------------------------------------------------------------------------


def test_a_hand_retag_is_an_out_of_band_change_not_a_move(workdir: Path) -> None:
    """Someone edits the ``reconciler-address`` tag of the coder agent in the console
    (agent.coder -> agent.other). Plan read it as ``agent.other -> agent.coder  moved``,
    "moved from agent.other", though nothing in the manifests or the state says so: a
    move is what a ``moved_from`` (or ``state mv``) says. It is a change made behind git's
    back, and plan, apply and drift say so."""
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")

    async def retag(c: ProviderClient) -> None:
        await c.agents.update(coder, {"metadata": {"reconciler-address": "agent.other"}})

    out_of_band(retag)
    out = ok("plan").stdout
    assert "moved" not in out, out
    assert "  ~ agent.coder  update  version 2 -> 3" in out, out
    assert '~ metadata.reconciler-address: "agent.other" -> "agent.coder"' in out, out
    said = " ".join(out.split())
    assert "ownership tag reconciler-address was changed outside the reconciler" in said, out
    assert out.rstrip().endswith("Plan: 0 to create, 1 to update, 0 to archive."), out
    [action] = [a for a in plan_json()["actions"] if a["address"] == "agent.coder"]
    assert (action["type"], action["moved_from"]) == ("update", None), action
    drift = json.loads(cli("drift", "--format", "json").stdout)
    [item] = drift["items"]
    assert (item["address"], item["type"]) == ("agent.coder", "changed"), item
    ok("apply", "--auto-approve")
    assert remote_id("agent.coder") == coder
    assert cli("plan", "--detailed-exitcode").exit_code == 0
    assert ok("drift").stdout.startswith("No drift")


def test_state_mv_of_a_vault_plans_its_credentials_as_moved_too(workdir: Path) -> None:
    """``state mv`` says a move: the vault and the credential it took along are moved, not
    reported as retagged by hand."""
    ok("apply", "--auto-approve")
    ok("state", "mv", "vault.github", "vault.gh")
    edit(workdir / "manifests/vaults.yaml", "name: github\n", "name: gh\n")
    deployments = workdir / "manifests/deployments.yaml"
    deployments.write_text(deployments.read_text().replace("vaults: [github]", "vaults: [gh]"))
    out = ok("plan").stdout
    assert "vault.github -> vault.gh  moved" in out, out
    assert "outside the reconciler" not in out, out


def test_apply_says_moved_as_the_plan_did(workdir: Path) -> None:
    """Plan ends "..., 1 moved."; apply's last line said only "1 updated", as if the move
    had not happened. It says "1 moved" too, also for a move that only moves the entry."""
    ok("apply", "--auto-approve")
    rename_reviewer(workdir)
    assert ok("plan").stdout.rstrip().endswith("1 moved.")
    out = ok("apply", "--auto-approve").stdout
    assert "Apply complete: 0 created, 2 updated, 0 archived, 1 moved." in out, out


def test_a_saved_plan_restores_a_hand_retag(workdir: Path, tmp_path: Path) -> None:
    """The update that restores a tag edited by hand, saved with ``plan --out``: ``apply
    PLANFILE`` refused it ("belongs to this project, as agent.other"), though the object is
    as the plan saw it. It applies."""
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")

    async def retag(c: ProviderClient) -> None:
        await c.agents.update(coder, {"metadata": {"reconciler-address": "agent.other"}})

    out_of_band(retag)
    saved = tmp_path / "plan.json"
    ok("plan", "--out", str(saved))
    out = ok("apply", str(saved)).stdout
    assert "Apply complete: 0 created, 1 updated, 0 archived." in out, out
    assert cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_recorded_object_retagged_by_hand_for_another_declared_address_is_no_twin(
    workdir: Path,
) -> None:
    """The coder agent's tag edited by hand to ``agent.reviewer`` (an address the manifests
    declare): plan said it was "never changed or archived" (not ours) and, in the same
    breath, a twin of the reviewer that ``apply --prune`` archives; ``plan --prune`` planned
    that archive of the agent the lockfile records as agent.coder. It is only the entry
    not ours: nothing archives it."""
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")

    async def retag(c: ProviderClient) -> None:
        await c.agents.update(coder, {"metadata": {"reconciler-address": "agent.reviewer"}})

    out_of_band(retag)
    plan = plan_json("--prune")
    assert plan["twins"] == [], plan["twins"]
    assert [a for a in plan["actions"] if a["type"] == "archive"] == [], plan["actions"]
    assert [c["address"] for c in plan["conflicts"]] == ["agent.coder"], plan["conflicts"]
    assert cli("apply", "--prune", "--auto-approve").exit_code == 1  # the entry not ours
    assert [a["id"] for a in agents() if not a["archived_at"]].count(coder) == 1


def test_drift_of_a_retag_to_a_declared_address_does_not_contradict_itself(
    workdir: Path,
) -> None:
    """The same hand retag, seen by drift: "its ownership tags say it belongs to this
    project, as agent.reviewer, not to this project". It says whose address it claims."""
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")

    async def retag(c: ProviderClient) -> None:
        await c.agents.update(coder, {"metadata": {"reconciler-address": "agent.reviewer"}})

    out_of_band(retag)
    result = cli("drift", "--format", "json")
    assert result.exit_code == 2, result.stdout
    [item] = json.loads(result.stdout)["items"]
    message = item["message"]
    assert "not to this project" not in message, message
    assert "belongs to this project, as agent.reviewer, not to agent.coder" in message, message


def test_a_moved_entry_keeps_when_its_object_was_created(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the entry a `moved_from` wrote said `created_at` = the time of the move, though the
    # object (the same id) was created by an earlier apply; `state mv` kept it
    import importlib

    applying = importlib.import_module("reconciler.app.apply")

    monkeypatch.setattr(applying, "_now", lambda: "2026-01-01T00:00:00Z")
    ok("apply", "--auto-approve")
    monkeypatch.setattr(applying, "_now", lambda: "2026-02-01T00:00:00Z")
    created = lockfile()["resources"]["deployment.nightly-review"]["created_at"]
    edit(
        workdir / "manifests/deployments.yaml",
        "name: nightly-review\n",
        "name: nightly\nmoved_from: nightly-review\n",
    )
    ok("apply", "--auto-approve")
    entry = lockfile()["resources"]["deployment.nightly"]
    assert entry["id"] == remote_id("deployment.nightly")
    assert entry["created_at"] == created
