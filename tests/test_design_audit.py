"""Statements of the product contract (DESIGN.md) tried as a user tries them.

Each test drives the CLI (``CliRunner`` in a fresh project with the example manifests, the
embedded local provider) and reads what the user sees:

- a deployment pinned to an agent version that does not exist is bad input: the error names
  the pin's ``file:line:col`` ("every error names file:line:col"), exit 1, nothing changed;
- ``provider serve --db`` with an unusable file says so before any "listening" line and
  names ``--db``, the flag the user typed;
- a mandatory policy rule that cannot be read on a resource still says the rule's message.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from support.gitops import cli, edit, make_workdir, ok
from support.reliability import provider_snapshot

from reconciler.provider import ProviderClient, embedded_client


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


# --- Manifests: a pin to a version that does not exist ------------------------------------------


def _pin_reviewer(workdir: Path, version: int) -> None:
    edit(
        workdir / "manifests/deployments.yaml",
        "agent: {ref: reviewer}",
        f"agent: {{ref: reviewer, version: {version}}}",
    )


@pytest.mark.parametrize("applied", [False, True], ids=["new-agent", "live-agent"])
def test_a_pin_to_a_missing_version_names_its_place(workdir: Path, applied: bool) -> None:
    if applied:
        ok("apply", "--auto-approve")
    _pin_reviewer(workdir, 7)
    before = provider_snapshot(workdir / ".reconciler/provider.db")
    lock = workdir / "state/reconciler.lock"
    lock_before = lock.read_bytes() if lock.exists() else None
    # drift reads the pin too once there is something live to compare
    for args in (("plan",), ("apply", "--auto-approve"), *([("drift",)] if applied else [])):
        result = cli(*args)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        # `agent: {ref: reviewer, version: 7}`, at its version
        assert "manifests/deployments.yaml:8:26: " in result.stderr, result.stderr
        assert "deployment.nightly-review pins agent.reviewer version 7" in result.stderr
    assert provider_snapshot(workdir / ".reconciler/provider.db") == before
    assert (lock.read_bytes() if lock.exists() else None) == lock_before


# --- provider serve: a database it cannot use --------------------------------------------------


def test_serve_with_an_unusable_db_names_db_and_never_says_listening(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = cli("provider", "serve", "--port", "0", "--db", str(not_a_folder / "p.db"))
    assert result.exit_code == 1
    assert "listening" not in result.stderr, result.stderr
    assert f"{not_a_folder / 'p.db'}" in result.stderr
    # the flag of this command is --db (--provider-db is the global option of the others)
    assert "--db" in result.stderr and "--provider-db" not in result.stderr, result.stderr


# --- Policies: a rule that cannot be read on a resource ------------------------------------------

GUARDRAILS = """\
kind: Policy
name: guardrails
spec:
  rules:
    - kinds: [Environment]
      expression: "spec.config.networking.type == 'limited'"
      message: environments must use limited networking
      level: mandatory
"""


def test_a_rule_that_cannot_be_read_still_says_its_message(workdir: Path) -> None:
    # the contract's own example rule, over an environment that sets no config at all (so
    # it runs with the provider's default networking, the very thing the rule forbids)
    (workdir / "manifests/environments.yaml").write_text(
        "kind: Environment\nname: python-data\nspec:\n  description: no config\n"
    )
    (workdir / "manifests/policy.yaml").write_text(GUARDRAILS)
    for args in (("validate",), ("plan",)):
        result = cli(*args)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert (
            "manifests/environments.yaml:1:1: environment.python-data: environments must use "
            "limited networking" in result.stderr
        ), result.stderr
        assert "could not be checked" in result.stderr
    assert not (workdir / "state/reconciler.lock").exists()


# --- import: what an address may be -------------------------------------------------------------


def test_import_of_a_bad_address_lists_every_kind_import_takes(workdir: Path) -> None:
    result = cli("import", "foo.x", "abc")
    assert result.exit_code == 1
    # import adopts memory stores and skills too (README, "import skill.NAME ID")
    for address in (
        "agent.NAME",
        "environment.NAME",
        "vault.NAME",
        "deployment.NAME",
        "memory_store.NAME",
        "skill.NAME",
        "vault.NAME.credential.NAME",
    ):
        assert address in result.stderr, result.stderr


# --- saved plans: a create made meanwhile ---------------------------------------------------------


def test_a_saved_plan_never_creates_a_second_skill_applied_meanwhile(workdir: Path) -> None:
    # the plan is saved, then the same manifests are applied (a teammate, a CI run): every
    # create of the saved plan is now stale, the skill's too, though a skill carries no
    # ownership tags to find it by
    ok("plan", "--out", "plan.json")
    ok("apply", "--auto-approve")
    skill = json.loads((workdir / "state/reconciler.lock").read_text())["resources"][
        "skill.review-checklist"
    ]["id"]
    result = cli("apply", "plan.json")
    assert result.exit_code == 1
    assert f"skill.review-checklist: refused: skill.review-checklist was created ({skill})" in (
        result.stdout + result.stderr
    )
    assert "0 created" in result.stdout + result.stderr
    entry = json.loads((workdir / "state/reconciler.lock").read_text())["resources"][
        "skill.review-checklist"
    ]
    assert entry["id"] == skill
    ok("drift")  # no twin skill, no agent pointing at another skill than the lockfile's


# --- import: the lockfile's provider origin ---------------------------------------------------


def _handmade_agent(db: str) -> str:
    async def make(client: ProviderClient) -> str:
        agent = await client.agents.create({"name": "handmade", "model": "claude-sonnet-4-6"})
        return str(agent["id"])

    async def run() -> str:
        async with embedded_client(db) as client:
            return await make(client)

    return asyncio.run(run())


def test_import_from_another_provider_than_the_lockfiles_is_refused(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    lock = workdir / "state/reconciler.lock"
    before = lock.read_bytes()
    other = "other/provider.db"
    agent = _handmade_agent(other)
    result = cli("--provider-db", other, "import", "agent.handmade", agent)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    said = "state/reconciler.lock was applied to the embedded provider at .reconciler/provider.db"
    assert said in result.stderr, result.stderr
    assert lock.read_bytes() == before
    snapshot = provider_snapshot(workdir / other)
    assert "reconciler-address" not in str(snapshot)  # never tagged


def test_an_import_into_a_new_lockfile_records_its_origin(workdir: Path) -> None:
    agent = _handmade_agent(".reconciler/provider.db")
    ok("import", "agent.handmade", agent)
    data = json.loads((workdir / "state/reconciler.lock").read_text())
    assert data["origin"] == "local:../.reconciler/provider.db"
    # so another provider is refused from now on, as after an apply
    result = cli("--provider-db", "other/provider.db", "plan")
    assert result.exit_code == 1
    assert "was applied to the embedded provider at .reconciler/provider.db" in result.stderr


# --- run DEPLOYMENT: the session the deployment would start ---------------------------------------


def test_run_of_a_deployment_mounts_its_memory_store(workdir: Path) -> None:
    # manifests/deployments.yaml mounts memory_store.review-notes read_only: a session run by
    # hand for the deployment gets it, as its rollout checks and its scheduled runs do
    ok("apply", "--auto-approve")
    result = ok("run", "nightly-review", "-m", "hello")
    assert "echo: hello" in result.stdout
    session_id = result.stderr.split("Session ", 1)[1].split(" ", 1)[0]
    lock = json.loads((workdir / "state/reconciler.lock").read_text())["resources"]

    async def read(client: ProviderClient) -> dict[str, object]:
        return dict(await client.sessions.retrieve(session_id))

    async def run() -> dict[str, object]:
        async with embedded_client(".reconciler/provider.db") as client:
            return await read(client)

    session = asyncio.run(run())
    resources = session["resources"]
    assert isinstance(resources, list) and len(resources) == 1, resources
    mount = resources[0]
    assert mount["type"] == "memory_store"
    assert mount["memory_store_id"] == lock["memory_store.review-notes"]["id"]
    assert mount["access"] == "read_only"
    assert session["vault_ids"] == [lock["vault.github"]["id"]]


def test_import_with_allow_origin_change_follows_the_new_provider(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    other = "other/provider.db"
    agent = _handmade_agent(other)
    ok("--provider-db", other, "import", "--allow-origin-change", "agent.handmade", agent)
    data = json.loads((workdir / "state/reconciler.lock").read_text())
    assert data["origin"] == "local:../other/provider.db"
    assert data["resources"]["agent.handmade"]["id"] == agent


# --- a saved plan: the provider it was made against ------------------------------------------


def test_a_saved_plan_is_refused_by_another_provider_even_before_the_first_apply(
    workdir: Path,
) -> None:
    # the first plan of a project (no lockfile yet, so no origin recorded) is reviewed against
    # staging; applied with production's URL it would create everything there, unreviewed
    ok("--provider-db", "staging/provider.db", "plan", "--out", "plan.json")
    result = cli("--provider-db", "production/provider.db", "apply", "plan.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "plan.json was made against the embedded provider at staging/provider.db" in (
        result.stderr
    )
    assert "this run talks to the embedded provider at production/provider.db" in result.stderr
    assert "--allow-origin-change" in result.stderr
    assert not (workdir / "state/reconciler.lock").exists()
    assert not (workdir / "production/provider.db").exists() or "agent_" not in str(
        provider_snapshot(workdir / "production/provider.db")
    )
    # told so, it follows the provider it is given (as a lockfile's origin does)
    done = ok("--provider-db", "production/provider.db", "apply", "--allow-origin-change", "plan.json")
    assert "Apply complete: 8 created" in done.stdout
    data = json.loads((workdir / "state/reconciler.lock").read_text())
    assert data["origin"] == "local:../production/provider.db"
    # a plan saved and applied against the same provider goes as before
    edit(workdir / "manifests/agents.yaml", "Be specific and kind", "Be specific, brief and kind")
    ok("--provider-db", "production/provider.db", "plan", "--out", "again.json")
    done = ok("--provider-db", "production/provider.db", "apply", "again.json")
    assert "Apply complete: 0 created, 2 updated" in done.stdout
