"""``engine.planner.build_plan`` as data: documents + observed objects + lockfile -> Plan.

No provider here: the documents go through the real manifest models, the live objects and
the lockfile are built by hand (only the fields a case is about; normalisation fills the
server defaults), so each rule of planning is visible in a few lines: what is created,
updated, replaced or left alone and why, what ``--prune`` removes and what it leaves with
a note, what a no-op still records, what ``--target`` keeps, and how pins move.
"""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.engine.desired import desired_digest, desired_resources
from reconciler.engine.model import Archive, Create, Delete, NoOp, Replace, Update
from reconciler.engine.planner import PlanOptions, build_plan
from reconciler.engine.refresh import Observed
from reconciler.errors import PlanError
from reconciler.kinds import tags
from reconciler.manifest import Document
from reconciler.state import LockEntry, Lockfile, PendingIntent, new_lockfile

NOW = "2026-05-01T12:00:00Z"
FINGERPRINT = "scrypt:" + "1" * 64
EVENTS = [{"type": "user.message", "content": [{"type": "text", "text": "Go."}]}]

ENV = Document.model_validate({"kind": "Environment", "name": "py", "spec": {}})
AGENT = Document.model_validate(
    {"kind": "Agent", "name": "coder", "spec": {"model": "claude-sonnet-4-6", "system": "Hi."}}
)
DEPLOYMENT = Document.model_validate(
    {
        "kind": "Deployment",
        "name": "nightly",
        "spec": {"agent": {"ref": "coder"}, "environment": "py", "initial_events": EVENTS},
    }
)
AUTH = {"type": "static_bearer", "mcp_server_url": "https://a.example/mcp"}


def vault_doc(*, protect: bool = False, url: str = AUTH["mcp_server_url"]) -> Document:
    credential = {"name": "gh", "auth": {**AUTH, "mcp_server_url": url, "token": {"from_env": "T"}}}
    return Document.model_validate(
        {"kind": "Vault", "name": "keys", "protect": protect, "spec": {"credentials": [credential]}}
    )


def obj(remote_id: str, address: str, **fields: Any) -> dict[str, Any]:
    """A live object tagged by this project for ``address``."""
    return {
        "id": remote_id,
        "metadata": tags("default", address),
        "created_at": NOW,
        "updated_at": NOW,
        "archived_at": None,
        **fields,
    }


def env(remote_id: str = "env_1", **fields: Any) -> dict[str, Any]:
    return obj(remote_id, "environment.py", name="py", config={"type": "cloud"}, **fields)


def agent(version: int = 1, system: str = "Hi.", **fields: Any) -> dict[str, Any]:
    return obj(
        "agent_1",
        "agent.coder",
        name="coder",
        version=version,
        model="claude-sonnet-4-6",
        system=system,
        **fields,
    )


def deployment(version: int = 1) -> dict[str, Any]:
    return obj(
        "dep_1",
        "deployment.nightly",
        name="nightly",
        agent={"type": "agent", "id": "agent_1", "version": version},
        environment_id="env_1",
        initial_events=EVENTS,
    )


def vault() -> dict[str, Any]:
    return obj("vlt_1", "vault.keys", display_name="keys")


def credential(url: str = AUTH["mcp_server_url"]) -> dict[str, Any]:
    auth = {**AUTH, "mcp_server_url": url}
    return obj("vcrd_1", "vault.keys.credential.gh", vault_id="vlt_1", display_name="gh", auth=auth)


def observed(*objects: dict[str, Any], credentials: tuple[dict[str, Any], ...] = ()) -> Observed:
    by_kind: dict[str, tuple[dict[str, Any], ...]] = {
        k: () for k in ("agent", "environment", "vault", "deployment")
    }
    for o in objects:
        kind = str(o["id"]).split("_")[0]
        kind = {"env": "environment", "dep": "deployment", "vlt": "vault"}.get(kind, kind)
        by_kind[kind] += (o,)
    return Observed(objects=by_kind, credentials={"vlt_1": credentials} if credentials else {})


def applied(documents: list[Document], live: Observed, **changes: Any) -> Lockfile:
    """The lockfile an apply of ``documents`` leaves when it created ``live``: each address
    recorded with its live id, version and pin, and the secrets' fingerprints."""
    lockfile = new_lockfile()
    for res in desired_resources(documents):
        found = [
            o
            for k in ("agent", "environment", "vault", "deployment", "credential")
            for o in live.all(k)
            if o["metadata"]["reconciler-address"] == res.address
        ]
        if not found:
            continue
        live_obj = found[0]
        fields: dict[str, Any] = {
            "kind": res.kind,
            "id": live_obj["id"],
            "parent_id": live_obj.get("vault_id"),
            "version": live_obj.get("version"),
            "spec_digest": desired_digest(res),
            "protect": res.protect,
            "secret_fingerprints": {p: FINGERPRINT for p, _ in res.secrets},
            "created_at": NOW,
            "updated_at": NOW,
        }
        if res.kind == "deployment":
            fields["pins"] = {"agent.coder": live_obj["agent"]["version"]}
        fields.update(changes.get(res.address, {}))
        lockfile = lockfile.with_entry(res.address, LockEntry(**fields))
    return lockfile


def plan(
    documents: list[Document], live: Observed, lockfile: Lockfile | None, **options: Any
) -> Any:
    return build_plan(
        documents, live, lockfile, PlanOptions(**options), fingerprint=lambda a, p: FINGERPRINT
    )


ALL = [ENV, AGENT, DEPLOYMENT, vault_doc()]


def everything() -> Observed:
    return observed(env(), agent(), deployment(), vault(), credentials=(credential(),))


def kinds(p: Any) -> dict[str, str]:
    return {a.address: a.type for a in p.actions}


# --- create, update, no-op ----------------------------------------------------------------


def test_an_empty_provider_plans_a_create_of_each_address_in_dependency_order() -> None:
    p = plan(ALL, observed(), None)
    assert set(kinds(p).values()) == {"create"}
    dep = p.action("deployment.nightly")
    assert isinstance(dep, Create) and dep.reason == "deployment.nightly is new in the manifests"
    assert dep.depends_on == ("agent.coder", "environment.py")
    assert dep.body["agent"] == {"$pin": "agent.coder", "version": None}
    cred = p.action("vault.keys.credential.gh")
    assert isinstance(cred, Create) and cred.depends_on == ("vault.keys",)
    assert cred.target.secret_fingerprints == {"auth.token": FINGERPRINT}
    assert (p.lineage, p.serial) == (None, 0)


def test_applied_and_unchanged_is_up_to_date_and_records_nothing() -> None:
    live = everything()
    p = plan(ALL, live, applied(ALL, live))
    assert set(kinds(p).values()) == {"noop"} and not p.has_changes
    for action in p.actions:
        assert isinstance(action, NoOp)
        assert (action.reason, action.target) == ("up to date", None)
    assert p.pin_moves == () and p.notes == ()


def test_an_agent_edit_is_an_update_to_the_next_version_and_moves_a_following_pin() -> None:
    live = everything()
    lockfile = applied(ALL, live)
    edited = Document.model_validate(
        {"kind": "Agent", "name": "coder", "spec": {"model": "claude-sonnet-4-6", "system": "Yo."}}
    )
    p = plan([ENV, edited, DEPLOYMENT, vault_doc()], live, lockfile)
    update = p.action("agent.coder")
    assert isinstance(update, Update)
    assert update.reason == "the live object differs from the manifest"
    assert (update.from_version, update.to_version, update.labels) == (1, 2, ("system prompt",))
    assert update.body == {"system": "Yo.", "version": 1}
    [change] = update.changes
    assert (change.path, change.old, change.new) == ("system", "Hi.", "Yo.")
    [move] = p.pin_moves
    assert (move.deployment, move.old, move.new, move.follows_latest) == (
        "deployment.nightly",
        1,
        2,
        True,
    )
    [radius] = p.blast_radius
    assert radius.address == "agent.coder"
    assert [i.deployment for i in radius.deployments] == ["deployment.nightly"]


def pinned_deployment(version: int) -> Document:
    spec = {"agent": {"ref": "coder", "version": version}, "environment": "py"}
    return Document.model_validate(
        {"kind": "Deployment", "name": "nightly", "spec": {**spec, "initial_events": EVENTS}}
    )


def test_a_pin_to_a_version_that_will_not_exist_is_refused() -> None:
    live = everything()
    with pytest.raises(
        PlanError, match="pins agent.coder version 3, which does not exist: its latest version is 1"
    ):
        plan([ENV, AGENT, pinned_deployment(3)], live, applied(ALL, live))
    p = plan([ENV, AGENT, pinned_deployment(1)], live, applied(ALL, live))
    assert kinds(p)["deployment.nightly"] == "noop" and p.pin_moves == ()


# --- what a no-op still records (needs-record) ---------------------------------------------


def test_a_noop_records_its_target_when_the_lockfile_does_not_say_it_yet() -> None:
    live = everything()
    # found by its tags only: the lockfile was lost
    adopted = plan(ALL, live, new_lockfile()).action("environment.py")
    assert isinstance(adopted, NoOp) and adopted.target is not None
    assert adopted.reason == "adopted: found by its ownership tags (the lockfile had no entry)"
    # the manifest changed in a way the provider does not see (protect, a new digest)
    stale = applied(ALL, live, **{"environment.py": {"spec_digest": "sha256:" + "0" * 64}})
    assert plan(ALL, live, stale).action("environment.py").target is not None  # type: ignore[union-attr]
    # a new agent version saved outside the reconciler that matches the manifest
    moved = applied(ALL, live, **{"agent.coder": {"version": 0}})
    assert plan(ALL, live, moved).action("agent.coder").target is not None  # type: ignore[union-attr]
    # a pending intent left by a crashed apply
    intent = PendingIntent(kind="environment", operation="create", started_at=NOW)
    pending = applied(ALL, live)
    pending = pending.model_copy(update={"pending": {"environment.py": intent}})
    assert plan(ALL, live, pending).action("environment.py").target is not None  # type: ignore[union-attr]


def test_a_recorded_object_archived_or_deleted_behind_our_back_is_created_again() -> None:
    live = everything()
    lockfile = applied(ALL, live)
    archived = observed(env(archived_at=NOW), agent(), deployment(), vault())
    action = plan(ALL, archived, lockfile).action("environment.py")
    assert isinstance(action, Create)
    assert action.reason == "the recorded environment env_1 was archived outside the reconciler"
    gone = observed(agent(), deployment(), vault())
    action = plan(ALL, gone, lockfile).action("environment.py")
    assert isinstance(action, Create)
    assert action.reason == "the recorded environment env_1 no longer exists"
    # the deployment references an environment only apply will know the id of
    dep = plan(ALL, gone, lockfile).action("deployment.nightly")
    assert isinstance(dep, Update)
    assert [c.new for c in dep.changes if c.path == "environment_id"] == ["(known after apply)"]


# --- replace --------------------------------------------------------------------------------


def test_an_immutable_change_is_a_replace_unless_protect_refuses_it() -> None:
    live = everything()
    moved = vault_doc(url="https://b.example/mcp")
    p = plan([ENV, AGENT, DEPLOYMENT, moved], live, applied(ALL, live))
    replace = p.action("vault.keys.credential.gh")
    assert isinstance(replace, Replace)
    assert replace.reason.startswith("auth.mcp_server_url cannot change in place")
    assert replace.remote_id == "vcrd_1" and replace.body["auth"]["token"] == {
        "$secret": "auth.token"
    }

    protected = vault_doc(protect=True, url="https://b.example/mcp")
    p = plan([ENV, AGENT, DEPLOYMENT, protected], live, applied(ALL, live))
    kept = p.action("vault.keys.credential.gh")
    assert isinstance(kept, NoOp)
    assert kept.reason == (
        "a replace is needed but refused: vault.keys is protected (protect: true), which "
        "covers its credentials"
    )
    [note] = p.notes
    assert note.address == "vault.keys.credential.gh" and "set protect: false on vault.keys" in (
        note.message
    )


# --- prune ----------------------------------------------------------------------------------


def test_what_left_the_manifests_is_noted_without_prune_and_removed_with_it() -> None:
    live = everything()
    lockfile = applied(ALL, live)
    kept = [AGENT, DEPLOYMENT, vault_doc()]
    [note] = plan(kept, live, lockfile).notes
    assert (note.address, note.remote_id) == ("environment.py", "env_1")
    assert note.message == "not in the manifests; left alone. Run with --prune to archive it"

    pruned = plan(kept, live, lockfile, prune=True)
    archive = pruned.action("environment.py")
    assert isinstance(archive, Archive) and archive.reason == "removed from the manifests (--prune)"
    # removals wait for the changes that stop referencing them
    assert archive.depends_on == ("deployment.nightly",)
    deleted = plan(kept, live, lockfile, prune=True, delete=True).action("environment.py")
    assert isinstance(deleted, Delete)
    # an agent cannot be deleted: --delete archives it
    no_agent = plan([ENV, vault_doc()], live, lockfile, prune=True, delete=True)
    assert (kinds(no_agent)["agent.coder"], kinds(no_agent)["deployment.nightly"]) == (
        "archive",
        "archive",
    )
    assert no_agent.action("agent.coder").depends_on == ("deployment.nightly",)  # type: ignore[union-attr]


def test_removals_run_in_reverse_order_of_creation() -> None:
    # issue #4: environments and vaults before the deployments that use them; archive in
    # reverse. A pruned deployment must be gone before the environment it runs in is archived,
    # or a failed deployment archive leaves a live deployment on an archived environment.
    live = everything()
    p = plan([vault_doc()], live, applied(ALL, live), prune=True)
    assert kinds(p) == {
        "agent.coder": "archive",
        "deployment.nightly": "archive",
        "environment.py": "archive",
        "vault.keys": "noop",
        "vault.keys.credential.gh": "noop",
    }
    archive = p.action("environment.py")
    assert archive is not None and archive.depends_on == ("deployment.nightly",)
    assert p.action("agent.coder").depends_on == ("deployment.nightly",)  # type: ignore[union-attr]
    assert p.action("deployment.nightly").depends_on == ()  # type: ignore[union-attr]


def test_a_removed_vault_takes_its_credentials_along() -> None:
    live = everything()
    p = plan([ENV, AGENT, DEPLOYMENT], live, applied(ALL, live), prune=True)
    assert kinds(p) == {
        "agent.coder": "noop",
        "deployment.nightly": "noop",
        "environment.py": "noop",
        "vault.keys": "archive",  # its credential goes with it: no action, no note
    }
    assert p.notes == ()


def test_prune_leaves_protected_foreign_and_gone_orphans_with_a_note() -> None:
    live = everything()
    protected = applied(ALL, live, **{"environment.py": {"protect": True}})
    p = plan([AGENT, DEPLOYMENT, vault_doc()], live, protected, prune=True)
    assert "environment.py" not in kinds(p)
    [note] = p.notes
    assert note.message.startswith("not in the manifests but protected (protect: true")

    theirs = dict(env(), metadata=tags("web", "environment.py"))
    foreign = observed(theirs, agent(), deployment(), vault(), credentials=(credential(),))
    p = plan([AGENT, DEPLOYMENT, vault_doc()], foreign, applied(ALL, live), prune=True)
    assert "environment.py" not in kinds(p)
    # the deployment's update needs that environment's id, which apply never resolves
    [waiting] = p.notes
    assert waiting.address == "deployment.nightly" and "deployment.nightly" not in kinds(p)
    assert waiting.message.startswith("its update waits for environment.py, which is not ours")
    [conflict] = p.conflicts
    assert (conflict.address, conflict.owner) == (
        "environment.py",
        'project "web" (as environment.py)',
    )

    gone = observed(agent(), deployment(), vault(), credentials=(credential(),))
    [note] = plan([AGENT, DEPLOYMENT, vault_doc()], gone, applied(ALL, live)).notes
    assert note.message == (
        "recorded in the lockfile but already gone on the provider; "
        "`reconciler state rm environment.py` forgets it"
    )
    forget = plan([AGENT, DEPLOYMENT, vault_doc()], gone, applied(ALL, live), prune=True)
    archive = forget.action("environment.py")
    assert isinstance(archive, Archive) and "forgets the lockfile entry" in archive.reason


def test_an_untracked_object_tagged_for_a_removed_address_is_an_orphan_too() -> None:
    stray = obj("env_9", "environment.old", name="old", config={"type": "cloud"})
    live = observed(env(), stray)
    p = plan([ENV], live, applied([ENV], live))
    [note] = p.notes
    assert (note.address, note.remote_id) == ("environment.old", "env_9")
    assert kinds(plan([ENV], live, applied([ENV], live), prune=True))["environment.old"] == (
        "archive"
    )


# --- conflicts and twins --------------------------------------------------------------------


def test_a_recorded_object_of_another_project_gets_no_action_but_a_conflict() -> None:
    live = everything()
    theirs = dict(agent(), metadata=tags("web", "agent.helper"))
    foreign = observed(env(), theirs, deployment(), vault(), credentials=(credential(),))
    p = plan(ALL, foreign, applied(ALL, live))
    assert "agent.coder" not in kinds(p)
    [conflict] = p.conflicts
    assert conflict.owner == 'project "web" (as agent.helper)'
    # the deployment following that agent needs its id, which apply never resolves: its
    # update is left alone with a note, not planned to fail as "not attempted"
    assert p.pin_moves == () and "deployment.nightly" not in kinds(p)
    [waiting] = p.notes
    assert waiting.message.startswith("its update waits for agent.coder, which is not ours")


def test_a_twin_is_reported_and_archived_only_with_prune() -> None:
    live = observed(env(), env("env_2"))
    lockfile = applied([ENV], observed(env()))
    p = plan([ENV], live, lockfile)
    [twin] = p.twins
    assert (twin.address, twin.remote_id, twin.kept_id) == ("environment.py", "env_2", "env_1")
    assert p.changes == () and p.has_changes
    pruned = plan([ENV], live, lockfile, prune=True)
    assert kinds(pruned) == {"environment.py": "noop", "environment.py[env_2]": "archive"}


# --- --target ------------------------------------------------------------------------------


def test_a_target_brings_what_it_depends_on_and_nothing_else() -> None:
    p = plan(ALL, observed(), None, targets=("deployment.nightly",))
    assert sorted(kinds(p)) == ["agent.coder", "deployment.nightly", "environment.py"]
    assert p.targets == ("deployment.nightly",)
    # a vault brings its credentials along
    p = plan(ALL, observed(), None, targets=("vault.keys",))
    assert sorted(kinds(p)) == ["vault.keys", "vault.keys.credential.gh"]


def test_a_target_reads_only_the_secrets_it_needs() -> None:
    asked: list[str] = []

    def fingerprint(address: str, path: str) -> str:
        asked.append(address)
        return FINGERPRINT

    options = PlanOptions(targets=("agent.coder",))
    build_plan(ALL, observed(), None, options, fingerprint=fingerprint)
    assert asked == []
    build_plan(ALL, observed(), None, PlanOptions(targets=("vault.keys",)), fingerprint)
    assert asked == ["vault.keys.credential.gh"]


def test_a_target_may_name_an_orphan_and_an_unknown_target_is_an_error() -> None:
    live = everything()
    lockfile = applied(ALL, live)
    p = plan([AGENT, DEPLOYMENT, ENV], live, lockfile, prune=True, targets=("vault.keys",))
    assert kinds(p) == {"vault.keys": "archive"}
    assert p.action("vault.keys").depends_on == ()  # type: ignore[union-attr]
    # the live deployment runs in the environment: its update (which drops it) must come
    # first, so the environment is left alone while that update is outside --target
    p = plan(
        [AGENT, DEPLOYMENT, vault_doc()], live, lockfile, prune=True, targets=("environment.py",)
    )
    assert kinds(p) == {}
    (note,) = p.notes
    assert note.address == "environment.py" and "still used by deployment.nightly" in note.message
    p = plan(
        [AGENT, DEPLOYMENT, vault_doc()],
        live,
        lockfile,
        prune=True,
        targets=("environment.py", "deployment.nightly"),
    )
    assert kinds(p) == {
        "agent.coder": "noop",
        "deployment.nightly": "update",
        "environment.py": "archive",
    }
    archive = p.action("environment.py")
    assert archive is not None and archive.depends_on == ("deployment.nightly",)
    with pytest.raises(
        PlanError, match=r"--target agent\.codr: no such address .*did you mean agent\.coder\?"
    ):
        plan(ALL, live, lockfile, targets=("agent.codr",))


def test_a_difference_ignore_changes_hides_is_said_in_a_note() -> None:
    ignoring = Document.model_validate(
        {
            "kind": "Agent",
            "name": "coder",
            "ignore_changes": ["system"],
            "spec": {"model": "claude-sonnet-4-6", "system": "Hi."},
        }
    )
    live = observed(agent(system="Edited in the console."))
    p = plan([ignoring], live, applied([ignoring], live))
    assert kinds(p) == {"agent.coder": "noop"}
    [note] = p.notes
    assert (note.address, note.remote_id) == ("agent.coder", "agent_1")
    assert note.message == "differs from the manifest in system, which ignore_changes leaves as is"


def test_a_targeted_plan_names_what_it_left_out_that_has_changes() -> None:
    live = everything()
    edited = Document.model_validate(
        {"kind": "Agent", "name": "coder", "spec": {"model": "claude-sonnet-4-6", "system": "Yo."}}
    )
    documents = [ENV, edited, DEPLOYMENT, vault_doc()]
    p = plan(documents, live, applied(ALL, live), targets=("environment.py",))
    assert kinds(p) == {"environment.py": "noop"}
    # the agent's update, and the pin move of the deployment that follows it
    assert p.untargeted == ("agent.coder", "deployment.nightly")


def test_the_same_documents_give_their_resources_once() -> None:
    """A plan and its apply ask for the resources of one ``ManifestSet.documents`` tuple four
    times: the second ask answers with the first's frozen resources, in a list of its own;
    other documents (an equal tuple, a list) are read again."""
    documents = (AGENT, ENV, vault_doc())
    first = desired_resources(documents)
    again = desired_resources(documents)
    assert again == first and again is not first
    assert all(a is b for a, b in zip(again, first, strict=True))  # not computed again
    again.clear()  # the caller's own list
    assert desired_resources(documents) == first
    equal = (*documents,)
    assert equal is not documents
    other = desired_resources(equal)
    assert other == first and other[0] is not first[0]
    assert desired_resources(list(documents))[0] is not first[0]


def test_an_orphan_left_alone_copies_only_the_actions_that_waited_for_it() -> None:
    from reconciler.engine.inputs import PlanInputs
    from reconciler.engine.prune import keep_in_use

    live = everything()
    lockfile = applied(ALL, live)
    # nothing left alone: the very actions come back (a copy of each action of a
    # 10,000-resource plan was ~12 MiB more at the plan's peak)
    actions = list(plan(ALL, live, lockfile).actions)
    inputs = PlanInputs.build(ALL, live, lockfile, PlanOptions(), None, None, None)
    kept, notes = keep_in_use(inputs, actions)
    assert notes == [] and all(k is a for k, a in zip(kept, actions, strict=True))


def test_a_deployment_the_provider_paused_is_noted_and_apply_leaves_it_paused() -> None:
    from reconciler.engine.drift import build_drift

    paused = {
        **deployment(),
        "status": "paused",
        "paused_reason": {"type": "error", "error": {"type": "vault_archived_error"}},
    }
    live = observed(env(), agent(), paused, vault(), credentials=(credential(),))
    lockfile = applied(ALL, live)
    p = plan(ALL, live, lockfile)
    assert not p.has_changes  # no manifest field says it runs: nothing to send
    (note,) = p.notes
    assert (note.address, note.remote_id) == ("deployment.nightly", "dep_1")
    assert note.message.startswith(
        "paused by the provider after a scheduled run failed with vault_archived_error; its "
        "schedule does not fire, and `reconciler apply` leaves it paused: once what it runs "
        "with is back (`reconciler plan` shows what apply restores), unpause it"
    )
    (item,) = build_drift(ALL, live, lockfile).items
    assert (item.type, item.address, item.message) == ("paused", "deployment.nightly", note.message)
