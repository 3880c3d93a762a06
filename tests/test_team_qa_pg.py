"""A platform team on shared state: what a user sees, driven through the command line
(``CliRunner`` in a fresh project, the embedded local provider) against a real PostgreSQL
server (``support.postgres``) where the state lives there.

- ``drift`` under ``--backend`` names what it compared with, not "the lockfile"; it takes
  ``--detailed-exitcode`` as ``plan`` does (a CI script passes it to both); run while another
  runner's apply holds the lease, it says so (that apply's unrecorded changes show as drift),
  and, of an expired one, that its holder died holding it; ``unlock ID`` of a lease another project holds (the id
  from a CI log, run without that job's ``--project``) names the project to pass, instead of
  "not locked", which reads as "already gone";
- a saved plan applied after a teammate changed a resource the plan leaves alone refuses
  nothing (it refuses exactly the actions whose resource changed, and what depends on them);
- what apply says it recorded names the database, not a lockfile there is none of;
- a damaged database (a table dropped by hand) or one the user may not create tables in is one
  clear sentence with what to do, without the SQL it failed on;
- ``state migrate`` both ways, then work goes on from the new place, wherever its folder is;
  an older copy forced over a database state that went on without it leaves the database
  writable (its append-only history already holds the serials that copy would reuse).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import psycopg
import pytest
from support.gitops import cli, edit, make_workdir, ok, out_of_band
from support.postgres import PostgresServer, wait_for

from reconciler.provider import ProviderClient
from reconciler.state.postgres.conninfo import redact
from reconciler.state.postgres.lease import PgLease

pytestmark = pytest.mark.tcp


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


# --- drift says what it compared with --------------------------------------------------------


def test_drift_all_clear_names_the_database_it_compared_with(workdir: Path, pg_url: str) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    result = cli("--backend", pg_url, "drift")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout == (
        f"No drift. The live system matches the state in {redact(pg_url)} (project default): "
        "nothing was changed outside git.\n"
    )
    assert "lockfile" not in result.stdout
    # the JSON report keeps one schema, whatever the backend
    report = json.loads(cli("--backend", pg_url, "drift", "--format", "json").stdout)
    assert sorted(report) == [
        "format_version", "has_drift", "items", "kind", "project", "summary", "warnings",
    ]  # fmt: skip


def test_drift_takes_detailed_exitcode_as_plan_does(workdir: Path, pg_url: str) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    ok("--backend", pg_url, "drift", "--detailed-exitcode")  # exit 0: no drift

    async def change(client: ProviderClient) -> None:
        envs = [e async for e in client.environments.list()]
        await client.environments.update(envs[0]["id"], {"description": "by hand"})

    out_of_band(change)
    result = cli("--backend", pg_url, "drift", "--detailed-exitcode", "--format", "json")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["summary"]["changed"] == 1


def test_drift_without_state_in_the_database_does_not_call_it_a_lockfile(
    workdir: Path, pg_url: str
) -> None:
    ok("apply", "--auto-approve")  # applied with the lockfile; the database holds nothing
    result = cli("--backend", pg_url, "drift", "--format", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    warnings = json.loads(result.stdout)["warnings"]
    assert warnings and warnings[0].startswith(
        f"no state at {redact(pg_url)} (project default): drift compared"
    ), warnings
    assert not any("lockfile" in w for w in warnings), warnings


def test_drift_while_another_runner_holds_the_lease_says_so(workdir: Path, pg_url: str) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    coder = str(json.loads(ok("--backend", pg_url, "state", "show", "agent.coder").stdout)["id"])
    lease = PgLease(pg_url, "default", ttl=60)
    info = lease.acquire("apply")
    try:
        out_of_band(lambda c: c.agents.update(coder, {"description": "being applied"}))
        result = cli("--backend", pg_url, "drift", "--format", "json")
    finally:
        lease.release()
    assert result.exit_code == 2, result.stderr
    warning = (
        f"{info.describe()} holds the lock of {redact(pg_url)} (project default): what an "
        "apply in progress changed but has not recorded yet shows as drift; run drift again "
        "once it is done"
    )
    assert json.loads(result.stdout)["warnings"] == [warning]
    assert f"Warning: {warning}." in result.stderr
    # a holder that died: once its lease expired, it is no apply in progress; drift says it
    # ended without releasing the lease (session 9: its unrecorded changes are its own)
    dead = PgLease(pg_url, "default", ttl=1)
    died = dead.acquire("apply")
    dead._stop.set()  # it stops heartbeating, as a killed runner does

    def expired() -> bool:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute("SELECT expires_at < clock_timestamp() FROM reconciler_leases")
            return bool(row.fetchone()[0])  # type: ignore[index]

    try:
        wait_for("the lease to expire", expired)
        after = cli("--backend", pg_url, "drift", "--format", "json")
    finally:
        dead.release()
    (warning,) = json.loads(after.stdout)["warnings"]
    assert warning.startswith(f"{died.describe()} ended without releasing the lock"), warning


def test_unlock_of_another_projects_lease_names_its_project(workdir: Path, pg_url: str) -> None:
    lease = PgLease(pg_url, "web", ttl=60)
    info = lease.acquire("apply")
    try:
        result = cli("--backend", pg_url, "unlock", info.id)
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: {redact(pg_url)} (project default) is not locked: no lease is held; "
            f"lease {info.id} is project web's: pass --project web\n"
        ), result.stderr
        assert lease.held
        ok("--backend", pg_url, "--project", "web", "unlock", "--force", info.id)
    finally:
        lease.release()


# --- a saved plan and a teammate's apply -------------------------------------------------------

REVIEWER = "Be specific and kind."
CODER = "Writes and fixes code in the team's repositories."


def _teammate_applies(workdir: Path, pg_url: str, old: str, new: str, target: str) -> None:
    """A colleague's apply (other manifests, the same state and provider) of one change."""
    import shutil

    shutil.copytree(workdir / "manifests", workdir / "theirs")
    edit(workdir / "theirs/agents.yaml", old, new)
    ok("--backend", pg_url, "-f", "theirs", "apply", "--auto-approve", "--target", target)


def test_a_saved_plan_refuses_nothing_for_a_resource_it_leaves_alone(
    workdir: Path, pg_url: str
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    ours = workdir / "manifests/agents.yaml"
    edit(ours, REVIEWER, "Be brief.")
    ok("--backend", pg_url, "plan", "--out", "plan.json")  # the reviewer and its pin move
    # the teammate's copy has the reviewer as it was: only the coder changes
    edit(ours, "Be brief.", REVIEWER)
    _teammate_applies(workdir, pg_url, CODER, "Writes code.", "agent.coder")
    edit(ours, REVIEWER, "Be brief.")

    result = cli("--backend", pg_url, "apply", "plan.json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Apply complete: 0 created, 2 updated, 0 archived." in result.stdout
    assert "refused" not in result.stdout + result.stderr
    assert "agent.coder" not in result.stdout


def test_a_saved_plan_refuses_what_depends_on_a_resource_changed_since(
    workdir: Path, pg_url: str
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    # the plan changes only the deployment, which follows the reviewer (left alone)
    edit(workdir / "manifests/deployments.yaml", "every weekday night", "every night")
    ok("--backend", pg_url, "plan", "--out", "plan.json")
    edit(workdir / "manifests/deployments.yaml", "every night", "every weekday night")
    # the teammate makes a new reviewer version: the plan's pin would be out of date
    _teammate_applies(workdir, pg_url, REVIEWER, "Be brief.", "agent.reviewer")
    edit(workdir / "manifests/deployments.yaml", "every weekday night", "every night")

    result = cli("--backend", pg_url, "apply", "plan.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "agent.reviewer: refused: agent.reviewer changed since the plan" in result.stdout
    assert (
        "deployment.nightly-review: not attempted: depends on agent.reviewer, which failed"
        in result.stdout
    )


# --- state migrate, then carry on --------------------------------------------------------------


def test_migrated_state_is_used_from_its_new_place_whatever_its_folder(
    workdir: Path, pg_url: str
) -> None:
    ok("apply", "--auto-approve")
    ok("state", "migrate", "--to", pg_url)
    ok("--backend", pg_url, "plan", "--detailed-exitcode")
    # back to a lockfile, in another folder (the embedded provider did not move)
    ok("--backend", pg_url, "state", "migrate", "--to", "ops/team/state.lock")
    ok("--lockfile", "ops/team/state.lock", "plan", "--detailed-exitcode")
    # and from one lockfile to another elsewhere
    ok("--lockfile", "ops/team/state.lock", "state", "migrate", "--to", "other.lock")
    ok("--lockfile", "other.lock", "plan", "--detailed-exitcode")
    edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")
    applied = ok("--lockfile", "other.lock", "apply", "--auto-approve")
    assert "Apply complete: 0 created, 2 updated, 0 archived." in applied.stdout


# --- apply says where it recorded what it did ---------------------------------------------------


def test_a_failed_apply_says_it_recorded_in_the_database(workdir: Path, pg_url: str) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")
    ok("--backend", pg_url, "plan", "--out", "plan.json")
    _teammate_applies(workdir, pg_url, "Be brief.", "Be terse.", "agent.reviewer")
    result = cli("--backend", pg_url, "apply", "plan.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert (
        f"Done and recorded in the state in {redact(pg_url)} (project default): 0 created"
        in result.stdout
    )
    assert "lockfile" not in result.stdout + result.stderr


def test_a_plan_saved_from_another_state_is_refused_naming_the_database(
    workdir: Path, pg_url: str
) -> None:
    ok("apply", "--auto-approve")
    edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")
    ok("plan", "--out", "plan.json")  # from the lockfile
    ok("--backend", pg_url, "apply", "--auto-approve", "--target", "agent.coder")
    result = cli("--backend", pg_url, "apply", "plan.json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "the saved plan was made from another state (lineage " in result.stderr
    assert f"{redact(pg_url)} (project default) has " in result.stderr


# --- a database the tool cannot use ---------------------------------------------------------


def test_a_dropped_table_is_named_with_what_to_do(workdir: Path, pg_url: str) -> None:
    import psycopg

    ok("--backend", pg_url, "apply", "--auto-approve")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE reconciler_states CASCADE")
    for args in (("state", "list"), ("plan",), ("apply", "--auto-approve")):
        result = cli("--backend", pg_url, *args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith(
            f"Error: {redact(pg_url)}: could not read the state: the table reconciler_states "
            "is missing"
        ), result.stderr
        assert "restore" in result.stderr
        assert "LINE 1" not in result.stderr and "SELECT" not in result.stderr


def test_a_user_who_may_not_create_the_tables_is_told_so(
    workdir: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database_for_a_new_role()
    # reading creates no table (tests/test_team_readonly_pg.py): the first write is refused
    result = cli("--backend", url, "apply", "--auto-approve")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith(
        f"Error: {redact(url)}: cannot create or migrate the state tables (nothing was "
        "changed): permission denied for schema public; "
    ), result.stderr
    assert "CREATE" in result.stderr and "LINE 1" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_lockfile_kept_outside_state_moves_into_the_database_and_on(
    workdir: Path, pg_url: str
) -> None:
    ok("--lockfile", "infra.lock", "apply", "--auto-approve")
    ok("--lockfile", "infra.lock", "state", "migrate", "--to", pg_url)
    # runners then set only RECONCILER_BACKEND
    ok("--backend", pg_url, "plan", "--detailed-exitcode")
    ok("--backend", pg_url, "state", "migrate", "--to", "back.lock")
    ok("--lockfile", "back.lock", "plan", "--detailed-exitcode")


def test_an_older_state_forced_over_the_database_leaves_it_writable(
    workdir: Path, pg_url: str
) -> None:
    ok("--backend", pg_url, "apply", "--auto-approve")
    ok("--backend", pg_url, "state", "migrate", "--to", "old.lock")
    # a copy of it is kept; the state goes back into the database (the marker it left is
    # replaced), and the team goes on with the database meanwhile
    shutil.copy("old.lock", "backup.lock")
    ok("--lockfile", "old.lock", "state", "migrate", "--to", pg_url)
    os.replace("backup.lock", "old.lock")
    edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")
    ok("--backend", pg_url, "apply", "--auto-approve")
    ok("--backend", pg_url, "state", "rm", "memory_store.review-notes")
    old_serial = json.loads(Path("old.lock").read_text())["serial"]

    refused = cli("--lockfile", "old.lock", "state", "migrate", "--to", pg_url)
    assert refused.exit_code == 1, (refused.stdout, refused.stderr)
    assert f"the state copied has serial {old_serial}" in refused.stderr, refused.stderr

    ok("--lockfile", "old.lock", "state", "migrate", "--to", pg_url, "--force")
    # the database takes writes again, and its history says what happened
    ok("--backend", pg_url, "state", "rm", "agent.coder")
    applied = ok("--backend", pg_url, "apply", "--auto-approve")
    assert "Apply complete" in applied.stdout or "No changes" in applied.stdout
    listed = ok("--backend", pg_url, "state", "history", "--json").stdout
    history = [json.loads(line) for line in listed.splitlines()]
    operations = [r["operation"] for r in history]
    assert any(o.startswith("state migrate") for o in operations), operations
    serials = [r["serial"] for r in history]
    assert serials == sorted(set(serials)), serials


def test_an_ipv6_database_is_named_with_brackets(workdir: Path) -> None:
    result = cli("--backend", "postgresql://team:pw-canary@[::1]:1/infra", "state", "list")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "the state database postgresql://team@[::1]:1/infra" in result.stderr, result.stderr
    assert "pw-canary" not in result.stderr


# --- plan when the database goes away after the state was read ------------------------------


def test_plan_shows_its_plan_when_the_database_drops_after_the_state_was_read(
    workdir: Path, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # the state was read, the provider listed, the plan made; then the database went away
    # before plan asked who holds the lease (only to warn of a racing apply). The plan was
    # thrown away: exit 1 and an error, nothing shown. The plan is what the state read says:
    # it is shown, and the warning says the lease could not be checked
    from support.reliability import provider

    url = postgres_server.new_database()
    dbname = url.rsplit("/", 1)[1]
    with provider(tmp_path / "served.db") as (served, tap):
        ok("--backend", url, "--provider-url", served, "apply", "--auto-approve")
        edit(workdir / "manifests/agents.yaml", REVIEWER, "Be brief.")

        def drop(method: str, path: str) -> bool:
            if tap.before is drop:  # once: the first request of the plan's refresh
                tap.before = None
                postgres_server.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
                postgres_server.terminate(dbname)
            return False

        tap.before = drop
        try:
            result = cli("--backend", url, "--provider-url", served, "plan", "--detailed-exitcode")
        finally:
            postgres_server.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "~ agent.reviewer  update" in result.stdout
    said = " ".join(result.stderr.split())
    assert (
        f"Warning: could not check whether a run holds the lease of {redact(url)} (project "
        "default)" in said
    ), said
    assert "it may be making some of these changes right now" in said
    assert "Traceback" not in said
