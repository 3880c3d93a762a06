"""Ownership is proven by the live tags, never assumed (issue 11, items 1-3).

Each case drives the real command line (forked ``reconciler`` processes) against the local
provider served over loopback TCP, with its fault flags where the case is about a lost
answer, and then reads the provider's database directly (a fault-free view):

1. an environment made by hand with a manifest's name is never adopted after a create whose
   answer was lost (``--fault-rate 0.5``, the seeds that made apply adopt it), so no later
   apply rewrites it and no ``--prune`` archives it; a clean run says who holds the name
   and points at ``import``;
2. a lockfile entry pointing at another project's agent (a bad merge) never updates or
   archives it: plan names the owner and the remedies (``state rm``, ``import --force``),
   apply exits 1, and both remedies work;
3. two checkouts of one project without a shared lock applying at once make a twin of every
   resource: plan (text, JSON, Markdown) and drift report them, ``--detailed-exitcode``
   exits 2, and ``apply --prune`` archives the ones the lockfile does not hold.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from support.reliability import (
    Zygote,
    clean_env,
    owned_objects,
    provider,
    shared_zygote,
    write_fleet,
)

from reconciler.state import read_lockfile, write_lockfile


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


def _rows(db: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    """id -> (archived, object) of every stored object."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT id, archived, data FROM objects").fetchall()
    finally:
        con.close()
    return {oid: (archived, json.loads(data)) for oid, archived, data in rows}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --- 1. a hand-made object is never adopted by name ---------------------------------------------

ENVIRONMENT = (
    "kind: Environment\nname: py\nspec:\n  description: managed by git\n"
    "  config: {type: cloud, packages: {pip: [pandas]}}\n"
)
AGENT = "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n  system: You code.\n"


async def _hand_made_environment(db: Path) -> str:
    from reconciler.provider import embedded_client

    async with embedded_client(db) as c:
        env = await c.environments.create(
            {"name": "py", "description": "hand-made", "metadata": {"owner": "ops"}}
        )
    return str(env["id"])


@pytest.mark.parametrize(
    "seed",
    # each of these made apply adopt the hand-made environment; the fault-rate runs take
    # 10-25 s each, so the default run keeps the quickest
    [pytest.param(1, marks=pytest.mark.slow), 2, pytest.param(6, marks=pytest.mark.slow)],
)
def test_a_hand_made_environment_is_never_adopted_after_a_lost_create(
    zygote: Zygote, tmp_path: Path, seed: int
) -> None:
    from reconciler.provider.local import FaultConfig

    work = tmp_path / "work"
    _write(work / "manifests/env.yaml", ENVIRONMENT)
    db = work / ".reconciler/provider.db"
    hand = asyncio.run(_hand_made_environment(db))
    before = _rows(db)[hand]
    env = clean_env()
    outputs = []
    with provider(db, FaultConfig(fault_rate=0.5, seed=seed)) as (url, _):
        for args in (["apply"], ["apply"]):
            run = zygote.run(["--provider-url", url, *args, "--auto-approve"], cwd=work, env=env)
            outputs.append(run.stdout + run.stderr)
        # the document goes (another takes its place): prune must not archive it
        (work / "manifests/env.yaml").unlink()
        _write(work / "manifests/agent.yaml", AGENT)
        run = zygote.run(
            ["--provider-url", url, "apply", "--prune", "--auto-approve"], cwd=work, env=env
        )
        outputs.append(run.stdout + run.stderr)
    for out in outputs:
        assert "Traceback" not in out, out
        adopted = [line for line in out.splitlines() if line.startswith("Adopted")]
        assert not any("environment.py" in line for line in adopted), out
    assert _rows(db)[hand] == before, "the hand-made environment was changed or archived"
    lockfile = read_lockfile(work / "state/reconciler.lock")
    assert hand not in {e.id for e in lockfile.resources.values()}

    # with the document back, on a provider that answers: one sentence saying who holds the
    # name and how to manage it
    _write(work / "manifests/env.yaml", ENVIRONMENT)
    (work / "manifests/agent.yaml").unlink()
    with provider(db) as (url, _):  # the same database on a new port: another origin
        args = ["--provider-url", url, "apply", "--auto-approve", "--allow-origin-change"]
        run = zygote.run(args, cwd=work, env=env)
    assert run.code == 1, run.stdout
    assert f"reconciler import environment.py {hand}" in run.stdout, run.stdout
    assert "409" in run.stdout and "belongs to nobody" in run.stdout
    assert _rows(db)[hand] == before


# --- 2. the lockfile is never trusted over the live tags -----------------------------------------

OTHER = "kind: Agent\nname: helper\nspec:\n  model: claude-haiku-4-5\n  system: Theirs.\n"
OLD = "kind: Agent\nname: old\nspec:\n  model: claude-sonnet-4-6\n  system: Old one.\n"


def _cli(zygote: Zygote, work: Path, url: str, *args: str) -> Any:
    return zygote.run(["--provider-url", url, *args], cwd=work, env=clean_env())


def _point_entry_at(lockfile_path: Path, address: str, remote_id: str) -> str:
    """A bad merge: the entry of ``address`` now names ``remote_id``; returns the old id."""
    lockfile = read_lockfile(lockfile_path)
    entry = lockfile.resources[address]
    write_lockfile(
        lockfile_path, lockfile.with_entry(address, entry.model_copy(update={"id": remote_id}))
    )
    return entry.id


def test_a_lockfile_entry_never_changes_or_archives_another_projects_agent(
    zygote: Zygote, tmp_path: Path
) -> None:
    from reconciler.provider.local import FaultConfig

    theirs_dir, ours = tmp_path / "web", tmp_path / "ours"
    _write(theirs_dir / "manifests/agents.yaml", OTHER)
    _write(ours / "manifests/agents.yaml", AGENT + "---\n" + OLD)
    db = tmp_path / "provider.db"
    with provider(db, FaultConfig(fault_rate=0.2, seed=3)) as (url, _):
        for _ in range(3):
            if (
                _cli(zygote, theirs_dir, url, "--project", "web", "apply", "--auto-approve").code
                == 0
            ):
                break
        for _ in range(3):
            if _cli(zygote, ours, url, "apply", "--auto-approve").code == 0:
                break
        [theirs] = owned_objects(db, "web")["agent.helper"]
        before = _rows(db)[theirs["id"]]
        lockfile_path = ours / "state/reconciler.lock"
        own_old = _point_entry_at(lockfile_path, "agent.old", theirs["id"])

        # an update would rewrite their agent: the manifest now differs from it
        _write(ours / "manifests/agents.yaml", AGENT + "---\n" + OLD.replace("Old one.", "New."))
        plan = _cli(zygote, ours, url, "plan", "--detailed-exitcode")
        assert plan.code == 2, plan.stderr
        assert "Not ours" in plan.stdout and 'project "web" (as agent.helper)' in plan.stdout
        assert "update" not in plan.stdout.split("Not ours")[0], plan.stdout
        assert "reconciler state rm agent.old" in plan.stdout
        assert f"reconciler import --force agent.old {theirs['id']}" in plan.stdout
        apply = _cli(zygote, ours, url, "apply", "--auto-approve")
        assert apply.code == 1 and "refused" in apply.stdout, apply.stdout
        assert _rows(db)[theirs["id"]] == before

        # the document goes: --prune must not archive their agent either
        _write(ours / "manifests/agents.yaml", AGENT)
        plan = _cli(zygote, ours, url, "plan", "--prune", "--format", "json")
        doc = json.loads(plan.stdout)
        assert [a["address"] for a in doc["actions"] if a["type"] == "archive"] == []
        [conflict] = doc["conflicts"]
        assert conflict["address"] == "agent.old" and conflict["remote_id"] == theirs["id"]
        assert conflict["owner"] == 'project "web" (as agent.helper)'
        markdown = _cli(zygote, ours, url, "plan", "--prune", "--format", "markdown").stdout
        assert "Not ours" in markdown and theirs["id"] in markdown
        apply = _cli(zygote, ours, url, "apply", "--prune", "--auto-approve")
        assert apply.code == 1, apply.stdout
        assert _rows(db)[theirs["id"]] == before
        assert read_lockfile(lockfile_path).resources["agent.old"].id == theirs["id"]

        # remedy 1: forget the wrong entry; our own agent.old is found by its tags and pruned
        assert _cli(zygote, ours, url, "state", "rm", "agent.old").code == 0
        apply = _cli(zygote, ours, url, "apply", "--prune", "--auto-approve")
        for _ in range(2):
            if apply.code == 0:
                break
            apply = _cli(zygote, ours, url, "apply", "--prune", "--auto-approve")
        assert apply.code == 0, apply.stdout + apply.stderr
        assert _rows(db)[own_old][0] == 1, "our own agent.old was archived"
        assert _rows(db)[theirs["id"]] == before

    # remedy 2: take it over on purpose (fault-free, to read the one warning)
    with provider(db) as (url, _):
        taken = _cli(
            zygote, ours, url,
            "import", "--force", "--allow-origin-change",  # a new port: a new origin
            "agent.taken", theirs["id"],
        )  # fmt: skip
        assert taken.code == 0, taken.stderr
        assert "belonged to project 'web'" in taken.stderr, taken.stderr
        md = _rows(db)[theirs["id"]][1]["metadata"]
        assert md["reconciler-project"] == "default" and md["reconciler-address"] == "agent.taken"
        # and the other project now refuses to touch it, saying whose it is
        plan = _cli(
            zygote, theirs_dir, url, "--project", "web",
            "plan", "--detailed-exitcode", "--allow-origin-change",  # a new port: a new origin
        )  # fmt: skip
        assert plan.code == 2 and "this project" not in plan.stdout.split("Not ours")[0]
        assert 'project "default" (as agent.taken)' in plan.stdout


def test_import_refuses_another_projects_object_without_force(
    zygote: Zygote, tmp_path: Path
) -> None:
    theirs_dir, ours = tmp_path / "web", tmp_path / "ours"
    _write(theirs_dir / "manifests/agents.yaml", OTHER)
    _write(ours / "manifests/agents.yaml", AGENT)
    db = tmp_path / "provider.db"
    with provider(db) as (url, _):
        assert (
            _cli(zygote, theirs_dir, url, "--project", "web", "apply", "--auto-approve").code == 0
        )
        [theirs] = owned_objects(db, "web")["agent.helper"]
        run = _cli(zygote, ours, url, "import", "agent.coder", theirs["id"])
        assert run.code == 1 and "--force to take it over" in run.stderr, run.stderr
        assert _rows(db)[theirs["id"]][1]["metadata"]["reconciler-project"] == "web"


# --- 3. twins of two checkouts that applied at once ---------------------------------------------


class _CreatesAfterBothRefreshed:
    """ASGI middleware: creates wait until ``n`` applies have listed the deployments (the
    last kind of their refresh), so both plan from the same empty provider, as two machines
    that start together do. Never waits more than a minute (the test then fails on twins)."""

    def __init__(self, app: Any, n: int = 2) -> None:
        self.app, self.n, self.seen = app, n, 0
        self.ready: asyncio.Event | None = None

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if self.ready is None:
                self.ready = asyncio.Event()
            method, path = scope["method"], scope["path"]
            if method == "GET" and path == "/v1/deployments":
                self.seen += 1
                if self.seen >= self.n:
                    self.ready.set()
            elif method == "POST" and not path.endswith(("/archive", "/run", "/pause")):
                try:
                    await asyncio.wait_for(self.ready.wait(), 60)
                except TimeoutError:
                    pass
        await self.app(scope, receive, send)


def test_two_checkouts_applying_at_once_report_and_prune_their_twins(
    zygote: Zygote, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    fleet = write_fleet(a / "manifests", agents=4, environments=2, credentials=2, deployments=2)
    write_fleet(b / "manifests", agents=4, environments=2, credentials=2, deployments=2)
    env = clean_env(**fleet.env)
    db = tmp_path / "provider.db"
    with provider(db, wrap=_CreatesAfterBothRefreshed) as (url, _):
        args = ["--provider-url", url, "apply", "--auto-approve"]
        runs = [zygote.start(args, cwd=a, env=env), zygote.start(args, cwd=b, env=env)]
        assert [r.wait() for r in runs] == [0, 0], [r.stdout + r.stderr for r in runs]
        live = owned_objects(db, "default")
        twinned = sorted(addr for addr, objs in live.items() if len(objs) == 2)
        assert "agent.agent-00" in twinned and "vault.keys" in twinned, twinned

        def cli(work: Path, *more: str) -> Any:
            return zygote.run(["--provider-url", url, *more], cwd=work, env=env)

        for work in (a, b):
            plan = cli(work, "plan", "--detailed-exitcode")
            assert plan.code == 2, plan.stdout
            assert "No changes" not in plan.stdout and "Twins" in plan.stdout
            assert "agent.agent-00" in plan.stdout.split("Twins")[1]
            doc = json.loads(cli(work, "plan", "--format", "json").stdout)
            assert doc["has_changes"] is True
            held = read_lockfile(work / "state/reconciler.lock").resources
            twins = {t["address"]: t for t in doc["twins"]}
            # environments cannot twin: their names are unique, the second create adopts
            assert set(twins) >= {"agent.agent-00", "deployment.dep-0", "vault.keys"}
            assert not any(t.startswith("environment.") for t in twins)
            # the kept one is the one this checkout's lockfile holds
            assert all(t["kept_id"] == held[addr].id for addr, t in twins.items())
            markdown = cli(work, "plan", "--format", "markdown").stdout
            assert "#### Twins" in markdown and "No changes" not in markdown
            drift = cli(work, "drift", "--format", "json")
            assert drift.code == 2
            kinds = {i["type"] for i in json.loads(drift.stdout)["items"]}
            assert "twin" in kinds, drift.stdout

        # apply without --prune changes nothing and says so
        before = owned_objects(db, "default")
        run = cli(b, "apply", "--auto-approve")
        assert run.code == 0 and "Twins" in run.stdout, run.stdout
        assert "twins left live" in run.stderr and "apply --prune" in run.stderr, run.stderr
        assert owned_objects(db, "default") == before

        # the remedy, from checkout a: archive what a's lockfile does not hold
        prune = cli(a, "apply", "--prune", "--auto-approve")
        assert prune.code == 0, prune.stdout + prune.stderr
        a_ids = {e.id for e in read_lockfile(a / "state/reconciler.lock").resources.values()}
        live = owned_objects(db, "default")
        assert all(len(objs) == 1 for objs in live.values()), live
        assert {o["id"] for objs in live.values() for o in objs} == a_ids
        assert cli(a, "plan", "--detailed-exitcode").code == 0
        # checkout b finds a's objects by their tags and records them
        assert cli(b, "apply", "--auto-approve").code == 0
        assert cli(b, "plan", "--detailed-exitcode").code == 0
        b_ids = {e.id for e in read_lockfile(b / "state/reconciler.lock").resources.values()}
        assert b_ids == a_ids


# --- the same rules on hand-built data (no provider) ----------------------------------------------

NOW = "2026-05-01T12:00:00Z"


def _vault(vault_id: str, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "vault",
        "id": vault_id,
        "display_name": "keys",
        "metadata": tags,
        "created_at": NOW,
        "updated_at": NOW,
        "archived_at": None,
    }


def _credential(cred_id: str, vault_id: str, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "vault_credential",
        "id": cred_id,
        "vault_id": vault_id,
        "display_name": "c0",
        "metadata": tags,
        "auth": {"type": "static_bearer", "mcp_server_url": "https://mcp0.example.com/mcp"},
        "created_at": NOW,
        "updated_at": NOW,
        "archived_at": None,
    }


def _entry(kind: str, remote_id: str, parent_id: str | None = None) -> Any:
    from reconciler.state import LockEntry

    return LockEntry(
        kind=kind,
        id=remote_id,
        parent_id=parent_id,
        spec_digest="sha256:" + "0" * 64,
        created_at=NOW,
        updated_at=NOW,
    )


def _plan_removed(vaults: list[dict[str, Any]], creds: list[dict[str, Any]], entries: Any) -> Any:
    """Plan --prune with no manifests at all: everything recorded left the manifests."""
    from reconciler.engine.planner import PlanOptions, build_plan
    from reconciler.engine.refresh import Observed
    from reconciler.state import new_lockfile

    lockfile = new_lockfile()
    for address, entry in entries.items():
        lockfile = lockfile.with_entry(address, entry)
    by_vault: dict[str, tuple[dict[str, Any], ...]] = {}
    for c in creds:
        by_vault[c["vault_id"]] = (*by_vault.get(c["vault_id"], ()), c)
    live = Observed(
        objects={"agent": (), "environment": (), "vault": tuple(vaults), "deployment": ()},
        credentials=by_vault,
    )
    return build_plan([], live, lockfile, PlanOptions(prune=True))


def test_a_credential_belongs_to_its_vault() -> None:
    """Vault credentials are judged by their vault; their own tags count only when they
    carry reconciler tags at all."""
    from reconciler.kinds import tags as ownership_tags

    ours = ownership_tags("default", "vault.keys")
    theirs = ownership_tags("web", "vault.keys")
    address = "vault.keys.credential.c0"
    # an untagged credential of our vault is ours: pruned with it (nothing left alone)
    plan = _plan_removed(
        [_vault("vlt_1", ours)],
        [_credential("vcrd_1", "vlt_1", {})],
        {"vault.keys": _entry("vault", "vlt_1"), address: _entry("credential", "vcrd_1", "vlt_1")},
    )
    assert [a.address for a in plan.actions] == ["vault.keys"] and not plan.conflicts
    # a credential of another project's vault is theirs, whatever its own tags say
    plan = _plan_removed(
        [_vault("vlt_2", theirs)],
        [_credential("vcrd_2", "vlt_2", ownership_tags("default", address))],
        {"vault.keys": _entry("vault", "vlt_2"), address: _entry("credential", "vcrd_2", "vlt_2")},
    )
    assert plan.actions == ()
    assert {c.address: c.owner for c in plan.conflicts} == {
        "vault.keys": 'project "web" (as vault.keys)',
        address: 'the owner of its vault vlt_2: project "web" (as vault.keys)',
    }
    # a credential tagged by another project in our vault is not ours either
    plan = _plan_removed(
        [_vault("vlt_3", ours)],
        [_credential("vcrd_3", "vlt_3", ownership_tags("web", address))],
        {address: _entry("credential", "vcrd_3", "vlt_3")},
    )
    # (the vault itself is ours by its tags and left the manifests: --prune archives it)
    assert [a.address for a in plan.actions] == ["vault.keys"]
    assert [c.owner for c in plan.conflicts] == [f'project "web" (as {address})']


def test_an_untagged_object_in_the_lockfile_is_owned_by_nobody() -> None:
    plan = _plan_removed(
        [_vault("vlt_4", {"owner": "ops"})], [], {"vault.keys": _entry("vault", "vlt_4")}
    )
    assert plan.actions == () and plan.has_changes
    [conflict] = plan.conflicts
    assert conflict.owner == "nobody (no reconciler ownership tags)"
    assert "reconciler import --force vault.keys vlt_4" in conflict.message


def test_a_saved_plan_never_archives_what_is_no_longer_ours() -> None:
    """A plan saved before the object changed hands (or by a tool that checked no tags)."""
    from reconciler.app import stale_actions
    from reconciler.engine.model import Archive, Plan
    from reconciler.engine.refresh import Observed
    from reconciler.kinds import tags as ownership_tags

    archive = Archive(
        address="vault.keys", kind="vault", remote_id="vlt_5", reason="removed", live_marker=NOW
    )
    twin = Archive(address="vault.keys[vlt_6]", kind="vault", remote_id="vlt_6", reason="a twin")
    live = Observed(
        objects={
            "agent": (),
            "environment": (),
            "vault": (
                _vault("vlt_5", ownership_tags("web", "vault.keys")),
                _vault("vlt_6", ownership_tags("default", "vault.keys")),
            ),
            "deployment": (),
        }
    )
    stale = stale_actions(Plan(actions=(archive, twin)), live)
    assert list(stale) == ["vault.keys"]
    assert 'belongs to project "web"' in stale["vault.keys"]


def test_twins_are_planned_on_hand_built_data_with_and_without_prune() -> None:
    from test_drift_engine import AGENT_DOC, agent, observed, recorded

    from reconciler.engine.planner import PlanOptions, build_plan
    from reconciler.kinds import tags as ownership_tags

    live = observed(agent(), agent("agent_02", tags=ownership_tags("default", "agent.coder")))
    plan = build_plan([AGENT_DOC], live, recorded(), PlanOptions())
    assert plan.changes == () and plan.has_changes
    [twin] = plan.twins
    assert (twin.address, twin.remote_id, twin.kept_id) == ("agent.coder", "agent_02", "agent_01")
    for options in (PlanOptions(prune=True), PlanOptions(prune=True, targets=("agent.coder",))):
        pruned = build_plan([AGENT_DOC], live, recorded(), options)
        archives = [(a.address, a.type, a.remote_id) for a in pruned.changes]
        assert archives == [("agent.coder[agent_02]", "archive", "agent_02")]
    # another project's object of the same address is theirs, never a twin
    theirs = agent("agent_03", tags=ownership_tags("web", "agent.coder"))
    assert build_plan([AGENT_DOC], observed(agent(), theirs), recorded()).twins == ()
