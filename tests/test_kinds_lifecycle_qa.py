"""Each kind's lifecycle as a platform team lives it (session 14's QA pass): a field changed,
ignored, edited by hand; plan, apply and drift must tell the same story. Each test is a case
that was wrong once and stays fixed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.gitops import (
    cli,
    drift_json,
    edit,
    lockfile,
    make_workdir,
    ok,
    out_of_band,
    plan_is_clean,
    remote_id,
)

from reconciler.provider import ProviderClient

DEPLOYMENT = "deployment.nightly-review"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return root


def _actions(*args: str) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = json.loads(ok("plan", "--format", "json", *args).stdout)[
        "actions"
    ]
    return [a for a in actions if a["type"] != "noop"]


def test_a_deployment_that_ignores_its_agent_keeps_its_pin_in_plan_apply_and_drift(
    workdir: Path,
) -> None:
    """``ignore_changes: [agent]``: a new agent version leaves the pin where it is. The plan
    showed the pin move all the same, apply recorded the new version in the lockfile without
    moving the live pin, and drift then reported the pin drifted ("apply pins it")."""
    edit(
        workdir / "manifests/deployments.yaml",
        "name: nightly-review\n",
        "name: nightly-review\nignore_changes: [agent]\n",
    )
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be brief.")
    shown = ok("plan").stdout
    assert "pin agent.reviewer" not in shown, shown
    assert [a["address"] for a in _actions()] == ["agent.reviewer"]
    ok("apply", "--auto-approve")

    assert lockfile()["resources"][DEPLOYMENT]["pins"] == {"agent.reviewer": 1}
    assert lockfile()["resources"]["agent.reviewer"]["version"] == 2
    drift_json(code=0)
    assert _actions() == []
    plan_is_clean()

    # another field of the deployment changed: its update leaves the pin alone too
    edit(workdir / "manifests/deployments.yaml", "every weekday night", "every night")
    edit(workdir / "manifests/agents.yaml", "Be brief.", "Be briefer.")
    assert "pin agent.reviewer" not in ok("plan").stdout
    ok("apply", "--auto-approve")
    assert lockfile()["resources"][DEPLOYMENT]["pins"] == {"agent.reviewer": 1}
    drift_json(code=0)
    plan_is_clean()


def test_import_of_a_deployment_names_the_memory_store_the_project_manages(
    workdir: Path,
) -> None:
    """A hand-made deployment that mounts a managed store: its document named the
    environment and vaults by name but the store by its raw id (the wire form), so a store
    the next apply created again (archived behind git's back) left the deployment on the
    archived one."""
    reviewer, env = remote_id("agent.reviewer"), remote_id("environment.python-data")
    store = remote_id("memory_store.review-notes")

    async def create(c: ProviderClient) -> str:
        body = {
            "name": "adhoc",
            "agent": {"type": "agent", "id": reviewer, "version": 1},
            "environment_id": env,
            "initial_events": [
                {"type": "user.message", "content": [{"type": "text", "text": "hi"}]}
            ],
            "resources": [
                {"type": "memory_store", "memory_store_id": store, "access": "read_only"}
            ],
        }
        return str((await c.deployments.create(body))["id"])

    ok("import", "deployment.adhoc", out_of_band(create))
    text = Path("manifests/deployments/adhoc.yaml").read_text()
    assert "memory_store: review-notes" in text, text
    assert store not in text, text
    plan_is_clean()


def test_a_credential_renamed_in_its_vault_says_the_create_would_clash_and_what_to_do(
    workdir: Path,
) -> None:
    """A credential's item renamed (``name: github-mcp`` -> ``gh-token``): the plan promised
    a create that the provider refuses (one active credential per MCP server URL in a
    vault, and the old one is left alone without --prune); apply's error then advised
    ``reconciler import``, which refuses an id recorded under another address. Both now say
    it up front and name ``state mv``, which renames it; ``--prune`` replaces it."""
    edit(workdir / "manifests/vaults.yaml", "- name: github-mcp", "- name: gh-token")
    old, new = "vault.github.credential.github-mcp", "vault.github.credential.gh-token"
    remedy = f"`reconciler state mv {old} {new}`"
    shown = ok("plan").stdout
    assert "the provider will refuse this create" in shown and remedy in shown, shown
    assert "the provider will refuse" not in ok("plan", "--prune").stdout

    failed = cli("apply", "--auto-approve")
    assert failed.exit_code == 1
    assert remedy in failed.stdout + failed.stderr, failed.stdout + failed.stderr

    ok("state", "mv", old, new)
    assert f"{old} -> {new}  moved" in ok("plan").stdout
    ok("apply", "--auto-approve")
    drift_json(code=0)
    plan_is_clean()


def test_ignore_changes_on_a_stores_seeds_is_refused_instead_of_ignored(workdir: Path) -> None:
    """``ignore_changes: [memories]`` was accepted, and the next seed added to the manifest
    was written all the same: seeds are never compared, so there is nothing for it to
    leave alone. It is an error at its place, as on a Skill, saying what to do instead."""
    edit(
        workdir / "manifests/memory_stores.yaml",
        "name: review-notes\n",
        "name: review-notes\nignore_changes: [metadata.owner, memories]\n",
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/memory_stores.yaml:8:34: ignore_changes[1]:" in result.stderr, result.stderr
    assert "leave it out of memories" in result.stderr

    from reconciler.manifest.document import ignore_changes_pattern

    pattern = re.compile(ignore_changes_pattern("MemoryStore"))
    assert pattern.match("metadata.owner") and pattern.match("description")
    assert not pattern.match("memories")


def test_ignore_changes_on_a_deployments_rollout_is_refused_instead_of_ignored(
    workdir: Path,
) -> None:
    """``ignore_changes: [rollout]`` was accepted, yet the checks still gated every pin
    move: the rollout block is never sent nor compared. An error at its place now, naming
    what does skip the checks."""
    edit(
        workdir / "manifests/deployments.yaml",
        "name: nightly-review\n",
        "name: nightly-review\nignore_changes: [rollout]\n",
    )
    result = cli("validate")
    assert result.exit_code == 1
    assert "manifests/deployments.yaml:6:18: ignore_changes[0]:" in result.stderr, result.stderr
    assert "--skip-checks" in result.stderr

    from reconciler.manifest.document import ignore_changes_pattern

    pattern = re.compile(ignore_changes_pattern("Deployment"))
    assert pattern.match("agent") and not pattern.match("rollout")


def test_a_store_archived_by_hand_is_named_in_words_in_the_plans_reason(workdir: Path) -> None:
    """The create's reason read "the recorded memory_store memstore_..." (the vocabulary's
    key, not the word a reader uses, as drift and every other message say it)."""
    store = remote_id("memory_store.review-notes")

    async def archive(c: ProviderClient) -> None:
        await c.memory_stores.archive(store)

    out_of_band(archive)
    [create] = [a for a in _actions() if a["address"] == "memory_store.review-notes"]
    assert create["reason"] == (
        f"the recorded memory store {store} was archived outside the reconciler"
    ), create["reason"]


@pytest.mark.parametrize(
    ("path", "old", "new", "ignore"),
    [
        ("manifests/environments.yaml", "    type: cloud\n", "    type: self_hosted\n", "config"),
        (
            "manifests/vaults.yaml",
            "mcp_server_url: https://api.githubcopilot.com/mcp/",
            "mcp_server_url: https://mcp.example.com/",
            "credentials",
        ),
    ],
)
def test_a_field_ignore_changes_names_never_replaces_the_object(
    workdir: Path, path: str, old: str, new: str, ignore: str
) -> None:
    """A change the provider cannot make in place (an environment's ``config.type``, a
    credential's ``mcp_server_url``) under a path ``ignore_changes`` names: the plan said
    the field was left alone, and planned a replace all the same (the environment archived
    and created again, the credential deleted)."""
    text = (workdir / path).read_text()
    name = text.split("\nname: ", 1)[1].split("\n", 1)[0]
    edit(workdir / path, f"name: {name}\n", f"name: {name}\nignore_changes: [{ignore}]\n")
    edit(workdir / path, old, new)
    if path.endswith("environments.yaml"):  # a self-hosted environment has no other config
        shown = (workdir / path).read_text()
        start = shown.index("    networking:")
        end = shown.index("  metadata:")
        (workdir / path).write_text(shown[:start] + shown[end:])
    assert _actions() == [], ok("plan").stdout
    ok("apply", "--auto-approve")
    drift_json(code=0)


def test_a_replace_protect_refuses_stays_drift_after_apply(workdir: Path) -> None:
    """An environment's ``config.type`` changed under ``protect: true``: apply left it alone
    (the plan's "Left alone" note), and drift said "no drift" while the live environment and
    the manifest differed. The lockfile keeps the digest of what is live, and drift names
    the replace that protect refuses, until the manifest and the live object agree."""
    path = workdir / "manifests/environments.yaml"
    edit(path, "name: python-data\n", "name: python-data\nprotect: true\n")
    ok("apply", "--auto-approve")
    before = lockfile()["resources"]["environment.python-data"]["spec_digest"]
    edit(path, "    type: cloud\n", "    type: self_hosted\n")
    shown = path.read_text()
    path.write_text(shown[: shown.index("    networking:")] + shown[shown.index("  metadata:") :])
    assert "Left alone" in ok("apply", "--auto-approve").stdout

    assert lockfile()["resources"]["environment.python-data"]["spec_digest"] == before
    [item] = [i for i in drift_json()["items"] if i["address"] == "environment.python-data"]
    assert item["type"] == "changed", item
    assert "config.type cannot change in place" in item["message"], item
    assert "protect: true" in item["message"], item
    assert "Left alone" in ok("plan").stdout


def test_an_agent_that_ignores_its_skills_records_the_skill_version_it_runs(
    workdir: Path,
) -> None:
    """``ignore_changes: [skills]`` on an agent: a skill's new version leaves the agent on the
    old one, yet the lockfile's ``skills`` for the agent recorded the new version (plan and
    drift were right). The state now records what the agent runs."""
    edit(
        workdir / "manifests/agents.yaml",
        "name: reviewer\n",
        "name: reviewer\nignore_changes: [skills]\n",
    )
    ok("apply", "--auto-approve")
    skill = "skill.review-checklist"
    old = lockfile()["resources"]["agent.reviewer"]["skills"][skill]
    checklist = workdir / "manifests/skills/review-checklist/checklist.md"
    checklist.write_text(checklist.read_text() + "- Is the change covered by a test?\n")
    ok("apply", "--auto-approve")
    assert lockfile()["resources"][skill]["latest"] != old

    agent = remote_id("agent.reviewer")

    async def running(c: ProviderClient) -> list[str]:
        return [str(s["version"]) for s in (await c.agents.retrieve(agent))["skills"]]

    assert out_of_band(running) == [old]
    shown = json.loads(ok("state", "show", "agent.reviewer").stdout)
    assert shown["skills"] == {skill: old}, shown
    drift_json(code=0)
    assert _actions() == []


def test_a_protected_credential_left_out_says_to_put_it_back_in_its_vault(
    workdir: Path,
) -> None:
    """A credential applied under a protected vault, then left out of the vault's
    ``credentials`` while the vault's protect came off: the note said "put its document
    back", but a credential has no document of its own: its vault's holds it."""
    path = workdir / "manifests/vaults.yaml"
    edit(path, "name: github\n", "name: github\nprotect: true\n")
    ok("apply", "--auto-approve")
    text = path.read_text().replace("protect: true\n", "")
    path.write_text(text[: text.index("  credentials:")])
    shown = ok("plan", "--prune").stdout
    assert "put its document back" not in shown, shown
    assert (
        "put the credential back in vault.github's document (spec.credentials) with "
        "protect: false on vault.github, apply, then remove it again and run with --prune"
    ) in shown, shown


def test_protect_added_with_a_change_it_refuses_is_recorded_and_keeps_prune_away(
    workdir: Path,
) -> None:
    """``protect: true`` added in the same edit as a change only a replace gives: the plan
    said "it is protected (protect: true); left as it is", yet the lockfile kept
    ``protect: false``, so once the document was removed ``apply --prune`` archived it."""
    path = workdir / "manifests/environments.yaml"
    before = lockfile()["resources"]["environment.python-data"]["spec_digest"]
    edit(path, "name: python-data\n", "name: python-data\nprotect: true\n")
    edit(path, "    type: cloud\n", "    type: self_hosted\n")
    shown = path.read_text()
    path.write_text(shown[: shown.index("    networking:")] + shown[shown.index("  metadata:") :])
    assert "Left alone" in ok("apply", "--auto-approve").stdout
    entry = lockfile()["resources"]["environment.python-data"]
    assert entry["protect"] is True and entry["spec_digest"] == before, entry

    path.unlink()
    edit(workdir / "manifests/deployments.yaml", "environment: python-data", "environment: dev")
    (workdir / "manifests/dev.yaml").write_text(
        "kind: Environment\nname: dev\nspec: {config: {type: cloud}}\n"
    )
    assert "environment.python-data" not in [a["address"] for a in _actions("--prune")]
    assert "protected (protect: true when last applied)" in ok("plan", "--prune").stdout


def test_drift_words_a_replace_protect_refuses_as_plan_does(workdir: Path) -> None:
    """A credential's ``mcp_server_url`` changed in the manifest of a protected vault: drift's
    text said "~ vault.github.credential.github-mcp  changed out of band", which nobody did
    (the live object is as the last apply left it). Now it says what is true, in plan's
    words: the manifest asks for a replace that protect refuses; the item's JSON type stays
    ``changed`` (the schema), its message names the refused replace."""
    path = workdir / "manifests/vaults.yaml"
    edit(path, "spec:\n", "protect: true\nspec:\n")
    ok("apply", "--auto-approve")
    edit(path, "api.githubcopilot.com/mcp/", "mcp.example.com/mcp/")
    assert "Left alone" in ok("plan").stdout

    text = cli("drift")
    assert text.exit_code == 2, text.stdout
    assert "changed out of band" not in text.stdout, text.stdout
    address = "vault.github.credential.github-mcp"
    assert f"~ {address}  replace refused by protect" in text.stdout, text.stdout
    assert "needs a replace (auth.mcp_server_url cannot change in place" in text.stdout
    markdown = cli("drift", "--format", "markdown").stdout
    assert "changed out of band" not in markdown, markdown
    assert "replace refused by protect" in markdown, markdown
    [item] = [i for i in drift_json()["items"] if i["address"] == address]
    assert item["type"] == "changed", item


EXTRA_VAULT = """\
kind: Vault
name: extra
spec:
  display_name: Extra
  credentials:
    - name: tok
      auth:
        type: static_bearer
        mcp_server_url: https://mcp.extra.example.com/
        token: {from_file: secrets/github-token.txt}
"""


def _extra_vault_deleted_out_of_band(workdir: Path) -> Path:
    """``EXTRA_VAULT`` applied, then deleted behind git's back; its manifest's path."""
    path = workdir / "manifests/extra.yaml"
    path.write_text(EXTRA_VAULT)
    ok("apply", "--auto-approve")
    vault = remote_id("vault.extra")

    async def delete_vault(c: ProviderClient) -> None:
        await c.vaults.delete(vault)

    out_of_band(delete_vault)
    return path


def test_a_credential_gone_with_its_deleted_vault_is_not_counted_archived(
    workdir: Path,
) -> None:
    """A vault deleted behind git's back (its credentials with it) while its manifest drops
    a credential: ``apply --prune`` created the vault again and said "1 archived" for the
    credential, which nothing archived (it went with its vault). Now the plan notes that
    it went with its vault, and the vault's create forgets its entry: nothing is counted
    archived, and the next plan is clean."""
    path = _extra_vault_deleted_out_of_band(workdir)
    path.write_text(EXTRA_VAULT[: EXTRA_VAULT.index("  credentials:")])
    credential = "vault.extra.credential.tok"
    plan = json.loads(ok("plan", "--prune", "--format", "json").stdout)
    assert [(a["address"], a["type"]) for a in plan["actions"] if a["type"] != "noop"] == [
        ("vault.extra", "create")
    ], plan["actions"]
    [note] = [n for n in plan["notes"] if n["address"] == credential]
    assert "went with its vault" in note["message"], note
    applied = ok("apply", "--prune", "--auto-approve").stdout
    assert "Apply complete: 1 created, 0 updated, 0 archived." in applied, applied
    assert credential not in lockfile()["resources"]
    plan_is_clean()


def test_a_vault_already_gone_is_forgotten_not_counted_archived(workdir: Path) -> None:
    """A vault deleted behind git's back and dropped from the manifests: ``plan --prune``
    said "1 to archive" and ``apply --prune`` "1 archived", though the apply only forgets
    its lockfile entry (the action's reason says so). The summaries now say "1 to forget"
    and "1 forgotten"; the JSON summary keeps counting it under ``archive`` (its schema)."""
    path = _extra_vault_deleted_out_of_band(workdir)
    path.unlink()
    plan = ok("plan", "--prune").stdout
    assert "Plan: 0 to create, 0 to update, 0 to archive, 1 to forget." in plan, plan
    markdown = ok("plan", "--prune", "--format", "markdown").stdout
    assert "| Create | Update | Replace | Archive | Delete | Forget | Unchanged |" in markdown
    assert "| 0 | 0 | 0 | 0 | 0 | 1 | 8 |" in markdown, markdown
    summary = json.loads(ok("plan", "--prune", "--format", "json").stdout)["summary"]
    assert summary["archive"] == 1, summary
    applied = ok("apply", "--prune", "--auto-approve").stdout
    assert "Apply complete: 0 created, 0 updated, 0 archived, 1 forgotten." in applied, applied
    assert "vault.extra" not in lockfile()["resources"]
    plan_is_clean()


def test_a_vault_already_gone_reads_forget_in_the_plan_lines(workdir: Path) -> None:
    """The same vault, gone already: the summary said "1 to forget" but the plan's own line
    still read ``- vault.extra  archive`` (and Markdown's row and legend "archive"), as if
    apply would archive it. The line says what happens: the lockfile entry is forgotten and
    nothing is sent; the JSON keeps ``"type": "archive"`` (its contract), its reason says so."""
    path = _extra_vault_deleted_out_of_band(workdir)
    path.unlink()
    plan = ok("plan", "--prune").stdout
    line = next(x for x in plan.splitlines() if "vault.extra" in x)
    assert "archive" not in line, plan
    assert re.search(r"vault\.extra\s+forget\s+\(nothing is sent", line), plan
    legend = [x.strip() for x in plan.splitlines()]
    assert "- forget (drop the lockfile entry only; nothing is sent)" in legend, plan
    assert "- archive" not in legend, plan
    markdown = ok("plan", "--prune", "--format", "markdown").stdout
    assert "vault.extra: archive" not in markdown, markdown
    assert "vault.extra: forget (nothing is sent" in markdown, markdown
    action = next(
        a
        for a in json.loads(ok("plan", "--prune", "--format", "json").stdout)["actions"]
        if a["address"] == "vault.extra"
    )
    assert action["type"] == "archive", action
    assert "forgets the lockfile entry" in action["reason"], action


def test_a_forget_is_told_by_a_field_of_the_action_not_by_its_reason() -> None:
    """``forgets_only`` read the reason's first words (``ALREADY_REMOVED``): a reason
    reworded would have turned a forget into an archive in every summary. The action says
    it itself (``forgets``); the reason is only words."""
    from reconciler.engine.model import ALREADY_REMOVED, Archive, Delete, forgets_only

    forget = Archive(
        address="vault.x", kind="vault", reason="gone already", remote_id="vlt_1", forgets=True
    )
    assert forgets_only(forget)
    worded = Delete(address="skill.x", kind="skill", reason=ALREADY_REMOVED, remote_id="s_1")
    assert not forgets_only(worded)
    # left out of the dump when false, so a plan without forgets is written as before
    assert "forgets" not in worded.model_dump(mode="json")


def test_a_saved_plan_of_a_forget_reads_as_a_forget_also_from_an_older_file(
    workdir: Path, tmp_path: Path
) -> None:
    """``plan --prune --out`` of a vault gone already: the file says the archive only
    forgets (``"forgets": true``); a file written before that field existed (the reason
    alone said so) still reads as a forget."""
    from reconciler.app.planfile import read_plan_file
    from reconciler.engine.model import forgets_only
    from reconciler.state.digest import json_digest

    path = _extra_vault_deleted_out_of_band(workdir)
    path.unlink()
    saved = tmp_path / "plan.json"
    ok("plan", "--prune", "--out", str(saved))
    data = json.loads(saved.read_text())
    [forget] = [a for a in data["plan"]["actions"] if a["address"] == "vault.extra"]
    assert forget["type"] == "archive" and forget["forgets"] is True, forget
    del forget["forgets"]  # as an older reconciler wrote it
    data["binding"]["plan"] = json_digest(data["plan"])
    saved.write_text(json.dumps(data))
    plan, binding = read_plan_file(saved)
    assert forgets_only(plan.action("vault.extra"))  # type: ignore[arg-type]
    assert binding["read_plan"] == binding["plan"]  # not taken for an edit


@pytest.mark.parametrize("how", ["deleted", "archived"])
def test_a_saved_plan_of_a_forget_applies(workdir: Path, tmp_path: Path, how: str) -> None:
    """``plan --prune --out`` of a vault deleted (or archived) behind git's back, then
    ``apply PLANFILE``: the forget was refused as "no longer exists" (or "was archived since
    the plan"), though that is what the plan was made from. It applies: the entry goes."""
    path = workdir / "manifests/extra.yaml"
    path.write_text(EXTRA_VAULT)
    ok("apply", "--auto-approve")
    vault = remote_id("vault.extra")

    async def remove(c: ProviderClient) -> None:
        await (c.vaults.delete(vault) if how == "deleted" else c.vaults.archive(vault))

    out_of_band(remove)
    path.unlink()
    saved = tmp_path / "plan.json"
    ok("plan", "--prune", "--out", str(saved))
    applied = ok("apply", str(saved)).stdout
    assert "1 forgotten." in applied, applied
    assert not [a for a in lockfile()["resources"] if a.startswith("vault.extra")]
    plan_is_clean()
