"""QA of the shared state, driven through the command line as a user drives it (``CliRunner``
in a fresh project, the embedded local provider):

- ``state migrate --to`` the lockfile it reads, spelled another way (an absolute path,
  ``state/../state/...``, a symlinked folder), says that is where the state already is,
  never "locked by state migrate ID; run `reconciler unlock ID`" with an id that is gone
  once the command exits;
- ``state rm`` of an address that has only a pending create (an apply killed between
  sending the create and recording it) never says the remote object "still exists on the
  provider": nobody knows whether it was made; it says what was removed and how the object
  is found again if it was;
- ``state list`` with pending intents is one table: their address and kind line up with
  the entries' columns;
- a lockfile that is a symbolic link (one file several checkouts share) is written through:
  the link stays a link and the file it names gets the change (before, the first write
  replaced the link by a copy, and the shared file silently stopped changing), and its
  apply lock is that file's, so a checkout holding it keeps the others out;
- ``state rm`` (which Terraform users take for "stop managing it, keep it") says that the
  object keeps this project's ownership metadata, so ``plan --prune`` archives it once its
  document is gone, and how to keep it out of reach; before, it only said the next plan
  finds it again while it is in the manifests, and a user who then removed the document
  had it archived by the next ``apply --prune``;
- ``state history`` in a fresh clone (the lockfile is in git, its history file beside it is
  not) says the history holds only this checkout's writes and where the others are (the
  lockfile's git log), never a bare "has no history", which reads as "nobody ever changed
  it";
- ``--lockfile ""`` (an unset shell variable in ``--lockfile "$LOCK"``) is a usage error
  naming the option, exit 1, for every command; before, ``state rm``, ``apply``,
  ``unlock``, ``import`` and ``state history`` crashed with "a bug in reconciler";
- ``state mv`` of an entry that has a pending intent (a gated pin move or a rollback that an
  apply was killed in) is refused, saying to run apply first; before, the intent was
  dropped without a word, and the next apply could no longer settle what that run did;
- ``state migrate`` with a ``--lockfile`` that does not exist (a typo) says there is nothing
  to migrate without making that lockfile's folder (it left ``typo/`` holding a lock guard
  file), as ``state rm`` and ``unlock`` do;
- ``state history`` after the lockfile was lost and healed (or restored from git) shows
  where the state was replaced: its serials start again, and without a word the listing
  read ``#3`` then ``#1`` as if the log were out of order;
- ``state migrate --to`` a URL that is not PostgreSQL's (``pg://``, a JDBC URL, an
  SQLAlchemy ``postgresql+psycopg://``) is refused naming its scheme only; before, it was
  taken for a lockfile path: the state was copied into folders named after the URL, and the
  URL, password included, was printed as where the state went;
- a database URL given as ``--lockfile`` (``RECONCILER_LOCKFILE`` set where
  ``RECONCILER_BACKEND`` was meant) is a usage error pointing at ``--backend``, without
  echoing it; before, it was used as a path (``postgresql:/ops:s3cret@...``), printed with
  its password, and apply would have written a lockfile there;
- a lockfile holding one address twice (a merge conflict resolved by keeping both sides) is
  refused naming the address, where the second one is, and the way out; before, the last
  one won silently and the other entry vanished;
- ``plan`` while an apply holds the lock (Terraform's plan would wait for it) warns on
  stderr, naming that apply, that it may be making some of the changes shown right now;
  before, nothing said the plan raced a running apply;
- ``unlock --help`` says that a lockfile's stale lock (its process gone, or no heartbeat
  for 30 s) is taken over by the next apply by itself, as it said only of a database lease.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from support.gitops import LOCKFILE, cli, make_workdir, ok

import reconciler.app.plan as plan_module
from reconciler.state import ApplyLock


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


@pytest.mark.parametrize("spelling", ["absolute", "dotdot", "symlink"])
def test_migrate_to_the_same_lockfile_spelled_another_way_says_so(
    workdir: Path, spelling: str
) -> None:
    ok("apply", "--auto-approve")
    before = Path(LOCKFILE).read_bytes()
    if spelling == "symlink":
        os.symlink("state", "alias")
    target = {
        "absolute": str(workdir / LOCKFILE),
        "dotdot": "state/../state/reconciler.lock",
        "symlink": "alias/reconciler.lock",
    }[spelling]
    result = cli("state", "migrate", "--to", target)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        f"Error: state migrate --to {target}: that is {LOCKFILE}, where the state already is\n"
    ), result.stderr
    assert "unlock" not in result.stderr
    assert Path(LOCKFILE).read_bytes() == before
    assert not Path(LOCKFILE + ".lock").exists()


def add_pending(address: str, **intent: object) -> None:
    """Write a pending intent for ``address`` into the lockfile, as a run killed after
    recording it (before its outcome) leaves it."""
    data = json.loads(Path(LOCKFILE).read_text())
    data["pending"][address] = {"started_at": "2026-01-01T00:00:00Z", **intent}
    Path(LOCKFILE).write_text(json.dumps(data, indent=2, sort_keys=True))


def test_state_rm_of_a_pending_create_does_not_claim_the_object_exists(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    # an apply killed after recording the intent of a new agent, before its outcome
    add_pending("agent.helper", kind="agent", operation="create", remote_name="helper")
    result = cli("state", "rm", "agent.helper")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "still exists" not in result.stdout, result.stdout
    assert result.stdout == (
        f"Removed the pending create of agent.helper from {LOCKFILE} (a run stopped before "
        "recording its outcome). Nothing was sent to the provider.\n"
        "If that create went through, the next plan finds the object again while "
        "agent.helper is in the manifests (by its ownership metadata; a skill by its slug).\n"
    )
    assert "agent.helper" not in json.loads(Path(LOCKFILE).read_text())["pending"]


def test_state_list_lines_up_pending_intents_with_the_entries(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    add_pending("agent.a", kind="agent", operation="create")
    lines = ok("state", "list").stdout.splitlines()
    entry = next(line for line in lines if line.startswith("agent.coder "))
    pending = next(line for line in lines if line.startswith("agent.a "))
    # the kind and the third column start where the entries' do
    assert pending.index("agent ", 8) == entry.index("agent ", 12), lines
    assert pending.index("(pending create") == entry.index("agent_"), lines


def test_a_symlinked_lockfile_is_written_through_and_locked_as_its_file(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    shared = workdir / "shared" / "team.lock"
    shared.parent.mkdir()
    os.replace(LOCKFILE, shared)
    os.symlink(shared, LOCKFILE)
    ok("state", "rm", "agent.coder")
    assert Path(LOCKFILE).is_symlink()
    assert "agent.coder" not in json.loads(shared.read_text())["resources"]
    # another checkout applying through its own link to the same file holds the lock
    with ApplyLock(shared) as held:
        assert held.info is not None
        refused = cli("state", "rm", "agent.reviewer")
        assert refused.exit_code == 1, (refused.stdout, refused.stderr)
        assert f"is locked by apply {held.info.id}" in refused.stderr, refused.stderr
        unlocked = cli("unlock", "--force", held.info.id)
        assert unlocked.exit_code == 0, (unlocked.stdout, unlocked.stderr)
    assert "agent.reviewer" in json.loads(shared.read_text())["resources"]


def test_state_rm_says_prune_archives_the_object_once_its_document_is_gone(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    coder = json.loads(Path(LOCKFILE).read_text())["resources"]["agent.coder"]["id"]
    said = ok("state", "rm", "agent.coder").stdout
    assert (
        "once agent.coder is gone from the manifests, `reconciler plan --prune` archives it"
    ) in said, said
    assert "managed-by, reconciler-project and reconciler-address metadata" in said, said
    # what it says is what happens
    agents = workdir / "manifests" / "agents.yaml"
    text = agents.read_text()
    agents.write_text(text[text.index("kind: Agent\nname: reviewer") :])
    planned = ok("plan", "--prune").stdout
    assert "- agent.coder  archive" in planned and coder in planned, planned


def test_state_history_in_a_fresh_clone_says_the_history_is_this_checkouts(
    workdir: Path,
) -> None:
    ok("apply", "--auto-approve")
    os.unlink(LOCKFILE + ".history")  # a teammate's clone: the lockfile only
    result = cli("state", "history", "agent.coder")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr == (
        f"{LOCKFILE} has no history of agent.coder in this checkout: {LOCKFILE}.history "
        f"records only the writes made here and is not in git; `git log -p {LOCKFILE}` shows "
        "the writes made elsewhere.\n"
    ), result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["state", "rm", "agent.coder"],
        ["state", "history"],
        ["unlock", "abc"],
        ["apply", "--auto-approve"],
        ["plan"],
    ],
)
def test_an_empty_lockfile_option_is_a_usage_error(workdir: Path, command: list[str]) -> None:
    ok("apply", "--auto-approve")
    before = Path(LOCKFILE).read_bytes()
    result = cli("--lockfile", "", *command)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "bug in reconciler" not in result.stderr, result.stderr
    assert result.stderr.endswith(
        "Error: Invalid value for '--lockfile': an empty path; give the lockfile's path, e.g. "
        f"{LOCKFILE} (also read from RECONCILER_LOCKFILE)\n"
    ), result.stderr
    assert Path(LOCKFILE).read_bytes() == before


def test_state_mv_of_an_entry_with_a_pending_intent_is_refused(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    # a rollback killed after its intent was written, before its outcome was recorded
    add_pending(
        "deployment.nightly-review",
        kind="deployment",
        operation="rollback",
        agent="agent.reviewer",
        from_version=1,
        to_version=1,
    )
    before = Path(LOCKFILE).read_bytes()
    result = cli("state", "mv", "deployment.nightly-review", "deployment.nightly")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        "Error: deployment.nightly-review has a pending rollback (a run stopped before "
        "recording its outcome); run `reconciler apply` first, which resolves it, then move "
        "the entry\n"
    ), result.stderr
    assert Path(LOCKFILE).read_bytes() == before


def test_state_migrate_from_a_missing_lockfile_makes_no_folder(workdir: Path) -> None:
    result = cli("--lockfile", "typo/reconciler.lock", "state", "migrate", "--to", "x.lock")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        "Error: typo/reconciler.lock holds no state yet: nothing to migrate (check --backend, "
        "--lockfile and --project)\n"
    ), result.stderr
    assert not Path("typo").exists()
    assert not Path("x.lock").exists()


def test_state_history_marks_where_a_lost_lockfile_was_replaced(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    os.unlink(LOCKFILE)  # lost; its history file stays
    ok("apply", "--auto-approve")  # heals it from the ownership tags, a new lineage
    lines = ok("state", "history").stdout.splitlines()
    heads = [line for line in lines if not line.startswith("    ")]
    serials = [int(h.split()[0][1:]) for h in heads if h.startswith("#")]
    drop = next(i for i in range(1, len(serials)) if serials[i] <= serials[i - 1])
    note = next(i for i, h in enumerate(heads) if h.startswith("  (the state was replaced"))
    assert heads[note] == (
        f"  (the state was replaced here: serial #{serials[drop - 1]} is followed by "
        f"#{serials[drop]}, as after a lost, restored or migrated lockfile)"
    ), heads
    assert heads[note + 1].startswith(f"#{serials[drop]} "), heads
    # scripts read the records alone
    assert all(
        line.startswith("{") for line in ok("state", "history", "--json").stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("pg://ops:s3cret@db.internal:5432/infra", "pg"),
        ("jdbc:postgresql://db.internal/infra?password=s3cret", "jdbc:postgresql"),
        ("postgresql+psycopg://ops:s3cret@db.internal/infra", "postgresql+psycopg"),
    ],
)
def test_state_migrate_to_a_url_of_another_scheme_is_refused(
    workdir: Path, url: str, scheme: str
) -> None:
    ok("apply", "--auto-approve")
    before = sorted(p.name for p in workdir.iterdir())
    result = cli("state", "migrate", "--to", url)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr == (
        f"Error: state migrate --to: a URL of scheme {scheme!r} is not a PostgreSQL connection "
        "string; write it as postgresql://USER@HOST:PORT/DBNAME (or libpq's key=value words), "
        "or give a lockfile's path\n"
    ), result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == before


@pytest.mark.parametrize("how", ["option", "variable"])
def test_a_database_url_as_the_lockfile_is_a_usage_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    url = "postgresql://ops:s3cret@db.internal:5432/infra"
    if how == "variable":
        monkeypatch.setenv("RECONCILER_LOCKFILE", url)
        result = cli("state", "list")
    else:
        result = cli("--lockfile", url, "state", "list")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.endswith(
        "Error: Invalid value for '--lockfile': a URL, not a lockfile's path; a PostgreSQL "
        "state is given with --backend (RECONCILER_BACKEND). Give the lockfile's path, e.g. "
        f"{LOCKFILE} (also read from RECONCILER_LOCKFILE)\n"
    ), result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    assert not Path("postgresql:").exists()


def test_a_lockfile_with_an_address_twice_is_refused_naming_it(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    text = Path(LOCKFILE).read_text()
    start = text.index('    "agent.coder": {')
    end = text.index("    },\n", start) + len("    },\n")
    block = text[start:end]
    # the other branch's entry for the same address (its own object), both sides kept
    theirs = block.replace(json.loads(text)["resources"]["agent.coder"]["id"], "agent_01other")
    Path(LOCKFILE).write_text(text[:end] + theirs + text[end:])
    line = text[:end].count("\n") + 1
    for command in (["state", "list"], ["plan"]):
        result = cli(*command)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert result.stderr == (
            f"Error: {LOCKFILE}:{line}:5: 'agent.coder' appears twice in one object (a merge "
            f"that kept both sides?); keep one side whole (`git checkout --ours {LOCKFILE}` or "
            "`--theirs`) and run `reconciler apply`: it finds what the other side created by "
            "its ownership tags\n"
        ), result.stderr


def test_plan_while_an_apply_holds_the_lock_says_so(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    agents = workdir / "manifests" / "agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind.", "Be brief."))
    with ApplyLock(LOCKFILE) as held:  # an apply of this change, under way
        assert held.info is not None
        result = cli("plan")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert result.stderr.endswith(
            f"Warning: {held.info.describe()} holds the lock of {LOCKFILE}: it may be making "
            "some of these changes right now; plan again once it is done.\n"
        ), result.stderr
    # no lock, or nothing to do: no word of it
    assert "holds the lock" not in cli("plan").stderr
    agents.write_text(agents.read_text().replace("Be brief.", "Be specific and kind."))
    with ApplyLock(LOCKFILE):
        assert "holds the lock" not in cli("plan").stderr


def test_plan_says_so_when_an_apply_let_go_of_the_lock_during_its_refresh(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("apply", "--auto-approve")
    agents = workdir / "manifests" / "agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind.", "Be brief."))
    held = ApplyLock(LOCKFILE)
    held.__enter__()  # an apply of this change, under way when the plan reads the state
    info = held.info
    assert info is not None
    observe = plan_module.observe

    async def the_apply_ends_meanwhile(*args: Any, **kwargs: Any) -> Any:
        held.__exit__(None, None, None)
        return await observe(*args, **kwargs)

    monkeypatch.setattr(plan_module, "observe", the_apply_ends_meanwhile)
    result = cli("plan")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr.endswith(
        f"Warning: {info.describe()} held the lock of {LOCKFILE} when this plan read the "
        "state, and has let it go since: it may have made some of these changes already; "
        "plan again.\n"
    ), result.stderr
    assert "holds the lock" not in result.stderr
    # nobody held it: no word of it
    assert "lock" not in cli("plan").stderr


def test_unlock_help_says_a_stale_lockfile_lock_is_taken_over_anyway(workdir: Path) -> None:
    text = " ".join(ok("unlock", "--help").stdout.split())
    assert (
        "The next apply takes a stale lock over by itself anyway: one whose process is gone "
        "(on this host) or whose heartbeat is older than 30 s, and with --backend an expired "
        "lease."
    ) in text, text
    # and it does: a lock of a process that is gone is taken over by the next state edit
    ok("apply", "--auto-approve")
    Path(LOCKFILE + ".lock").write_text(
        json.dumps(
            {
                "id": "deadbeef",
                "pid": 2**22 + 12345,
                "host": socket.gethostname(),
                "user": "alice",
                "started_at": "2026-01-01T00:00:00.000Z",
                "heartbeat_at": "2026-01-01T00:00:00.000Z",
            }
        )
    )
    ok("state", "rm", "agent.coder")


def test_state_list_shows_a_skills_latest_version_and_a_deployments_pins(workdir: Path) -> None:
    # an agent's row said v3, a skill's and a deployment's nothing: which skill version is
    # live and where the deployment is pinned took `state show` of each
    ok("apply", "--auto-approve")
    agents = Path("manifests/agents.yaml")
    agents.write_text(agents.read_text().replace("Be specific and kind.", "Be brief."))
    ok("apply", "--auto-approve")
    data = json.loads(Path(LOCKFILE).read_text())["resources"]
    rows = {line.split()[0]: line.split()[3:] for line in ok("state", "list").stdout.splitlines()}
    assert rows["agent.reviewer"] == ["v2"]
    assert rows["skill.review-checklist"] == [data["skill.review-checklist"]["latest"]]
    assert rows["deployment.nightly-review"] == ["agent.reviewer@2"]
    assert rows["environment.python-data"] == []


def test_state_mv_to_the_same_address_says_there_is_nothing_to_move(workdir: Path) -> None:
    # it said "agent.coder has an entry already; `reconciler state rm agent.coder` first if
    # that entry is wrong": advice that would drop the entry it meant to keep
    ok("apply", "--auto-approve")
    before = Path(LOCKFILE).read_bytes()
    result = cli("state", "mv", "agent.coder", "agent.coder")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: agent.coder and agent.coder are the same address: nothing to move\n"
    )
    assert "state rm" not in result.stderr
    assert Path(LOCKFILE).read_bytes() == before
