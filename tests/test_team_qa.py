"""A team sharing a lockfile in git: what a user sees, driven through the command line
(``CliRunner`` in a fresh project, the embedded local provider).

- a lockfile with an unresolved merge conflict names the conflict, where it is, and how to
  get out of it (keep one side; apply finds the other side's resources by their tags);
- a database URL whose password holds an unescaped ``@`` or ``/`` (a generated password)
  is refused before any connection, saying to percent-encode it, and no part of the
  password is printed (libpq would split it there and name the rest as the host);
- ``state history coder`` (no kind, a typo) is an error with a did-you-mean, as ``state show``
  is, never "no history" with exit 0, which reads as "nobody changed it";
- ``state migrate --to`` a folder (``state/``, ``./``) or nothing says to give the lockfile's
  path, naming ``--to``, instead of "a bug in reconciler" or a hint about ``--lockfile``;
- two repositories sharing a workspace (``--project``): a skill the other project's agents
  use is that project's, so drift does not report it unmanaged (every drift job of the
  other repository failed on it) and ``import --all-unmanaged`` does not adopt it;
- ``state history --json`` (for scripts: who changed agent.coder) is documented in
  docs/json-format.md like the other JSON outputs, every key it writes;
- drift of an agent edited out of band and edited back reads as English for one version and
  for several ("versions 2-3 were saved outside git; the latest differs from version 1 (the
  last apply's) in nothing, so it matches the manifest");
- drift run while an apply is in progress (a drift cron beside a merge's apply job) says so:
  what that apply changed but has not recorded yet shows as drift, and the warning names the
  apply holding the lock (a lock left by a dead process says that apply died);
- drift of a recorded object whose ownership tags now name another project (retagged by
  hand, or a lockfile entry from a bad merge) says whose it is and the remedies, as plan
  does, never "matches the manifest; `reconciler apply` records it" (apply refuses it);
- ``state migrate --to`` a lockfile that holds entries is refused giving both serials (which
  side is newer decides whether ``--force`` is right), as for a database;
- a second project applying a copy of the examples meets the first project's environment
  name (unique in the workspace): the refusal says to give it another name, never to run a
  plain ``import`` (refused: it is the other project's) as if that were the way out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.gitops import (
    LOCKFILE,
    REPO,
    cli,
    drift_json,
    edit,
    items,
    lockfile,
    make_workdir,
    ok,
    out_of_band,
    plan_is_clean,
    remote_id,
)

from reconciler.provider import ProviderClient
from reconciler.provider.skills import SkillUpload
from reconciler.state import ApplyLock


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_a_lockfile_left_with_a_merge_conflict_says_so_and_how_to_recover(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    ours = Path(LOCKFILE).read_text()
    # a teammate's branch changed the reviewer too; the merge left both sides in the file
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be brief.")
    ok("apply", "--auto-approve")
    theirs = Path(LOCKFILE).read_text()
    line = next(i for i, (a, b) in enumerate(zip(ours.splitlines(), theirs.splitlines())) if a != b)
    lines = ours.splitlines(keepends=True)
    conflicted = (
        lines[:line]
        + ["<<<<<<< HEAD\n", lines[line], "=======\n", theirs.splitlines(keepends=True)[line]]
        + [">>>>>>> teammate\n"]
        + lines[line + 1 :]
    )
    Path(LOCKFILE).write_text("".join(conflicted))
    for args in (("plan",), ("apply", "--auto-approve"), ("drift",), ("state", "list")):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith(
            f"Error: {LOCKFILE}:{line + 1}:1: an unresolved git merge conflict (<<<<<<<)"
        ), result.stderr
        assert "keep one side whole" in result.stderr
    # the way out it names: one side whole, then apply
    Path(LOCKFILE).write_text(ours)
    ok("apply", "--auto-approve")
    plan_is_clean()
    assert json.loads(Path(LOCKFILE).read_text())["resources"]["agent.reviewer"]["version"] == 2


@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_lockfile_given_with_a_backend_is_said_to_be_unused(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Both given (a RECONCILER_LOCKFILE left in a CI job that moved to PostgreSQL): the
    database is the state, and the user is told the lockfile is not read or written."""
    backend = ("--backend", "postgresql://ci@127.0.0.1:1/state")
    if where == "env":
        monkeypatch.setenv("RECONCILER_LOCKFILE", "other/team.lock")
        result = cli(*backend, "validate")
    else:
        result = cli(*backend, "--lockfile", "other/team.lock", "validate")
    assert result.exit_code == 0, result.stderr
    # named as it was given: a CI job that never passes --lockfile looks for the variable
    given = (
        "RECONCILER_LOCKFILE=other/team.lock" if where == "env" else "--lockfile other/team.lock"
    )
    assert f"Warning: {given} is not used: with --backend" in result.stderr
    # the default lockfile, never named, is not worth a word
    monkeypatch.delenv("RECONCILER_LOCKFILE", raising=False)
    quiet = cli(*backend, "validate")
    assert quiet.exit_code == 0 and "--lockfile" not in quiet.stderr


@pytest.mark.parametrize(
    "password", ["p@ss-canary-W0rd", "pa/ss-canary-W0rd", "a@b/c-canary-W0rd", "pa/ss@canary-W0rd"]
)
@pytest.mark.parametrize("command", [("state", "list"), ("plan",), ("state", "migrate", "--to")])
def test_a_password_with_an_unescaped_at_or_slash_is_never_printed(
    workdir: Path, password: str, command: tuple[str, ...]
) -> None:
    url = f"postgresql://alice:{password}@127.0.0.1:1/state"
    if command[-1] == "--to":
        ok("apply", "--auto-approve")
        result = cli(*command, url)
    else:
        result = cli("--backend", url, *command)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    said = result.stdout + result.stderr
    for fragment in ("canary", "W0rd", "ss-"):
        assert fragment not in said, said
    assert "percent-encode" in result.stderr and "%40" in result.stderr, result.stderr
    assert "Traceback" not in said


def test_state_history_of_a_mistyped_address_says_so(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    assert "created  agent.coder" in ok("state", "history", "agent.coder").stdout
    for typo in ("coder", "agent.Coder", "agents.coder"):
        result = cli("state", "history", typo)
        assert result.exit_code == 1, (typo, result.stdout, result.stderr)
        assert result.stderr.startswith(f"Error: {typo!r} is not an address"), result.stderr
        assert "did you mean agent.coder?" in result.stderr, result.stderr
        assert result.stdout == ""
    # a well-formed address never recorded: an error, as `state show` says it, naming the
    # close one
    unknown = cli("state", "history", "agent.codr")
    assert unknown.exit_code == 1, unknown.stderr
    assert unknown.stderr == (
        f"Error: {LOCKFILE} has no history of agent.codr and no entry for it; did you mean "
        "agent.coder?\n"
    )


@pytest.mark.parametrize("target", ["./", ".", "state", "state/", "elsewhere/", ""])
def test_state_migrate_to_a_folder_asks_for_the_lockfile_path(workdir: Path, target: str) -> None:
    ok("apply", "--auto-approve")
    before = Path(LOCKFILE).read_bytes()
    result = cli("state", "migrate", "--to", target)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "bug in reconciler" not in result.stderr and "--lockfile" not in result.stderr
    if target:
        folder = target.rstrip("/") or "."
        assert result.stderr == (
            f"Error: state migrate --to {target}: a folder, not a lockfile; give the "
            f"lockfile's path, e.g. --to {Path(folder) / 'reconciler.lock'}\n"
        ), result.stderr
    else:
        assert "state migrate --to needs a PostgreSQL connection string or a lockfile's path" in (
            result.stderr
        ), result.stderr
    assert Path(LOCKFILE).read_bytes() == before
    assert not Path("elsewhere").exists()


def test_another_projects_skill_is_neither_drift_nor_imported(workdir: Path) -> None:
    ok("--project", "web", "apply", "--auto-approve")  # the examples: a skill and its agent
    ops = workdir / "ops"
    (ops / "manifests").mkdir(parents=True)
    (ops / "manifests/agents.yaml").write_text(
        "kind: Agent\nname: pager\nspec:\n  model: claude-sonnet-4-6\n  system: page\n"
    )
    mine = ("--project", "ops", "-f", "ops/manifests", "--lockfile", "ops/state/reconciler.lock")
    ok(*mine, "apply", "--auto-approve")
    result = cli(*mine, "drift")
    assert result.exit_code == 0, result.stdout
    assert "review-checklist" not in result.stdout
    imported = cli(*mine, "import", "--all-unmanaged", "--out", "ops/manifests/imported")
    assert imported.exit_code == 0, imported.stderr
    assert "skill" not in imported.stdout + imported.stderr, imported.stdout
    assert not (ops / "manifests/imported/skills.yaml").exists()
    # the web project itself sees no drift either
    assert cli("--project", "web", "drift").exit_code == 0
    # a skill nobody's agent uses is still reported: it may be hand-made
    skill = b"---\nname: loose\ndescription: d\n---\nbody\n"
    out_of_band(lambda client: client.skills.create(SkillUpload((("loose/SKILL.md", skill),))))
    loose = cli(*mine, "drift")
    assert loose.exit_code == 2 and 'skill "loose"' in loose.stdout, loose.stdout


def test_state_history_json_is_documented(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    ok("state", "mv", "agent.coder", "agent.engineer")
    lines = ok("state", "history", "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["operation"] for r in records][-1] == "state mv"
    doc = (REPO / "docs/json-format.md").read_text()
    section = doc[doc.index("## State history lines (`state history --json`)") :]
    keys = {k for r in records for k in r} | {k for r in records for c in r["changes"] for k in c}
    missing = sorted(k for k in keys if f"`{k}`" not in section)
    assert not missing, f"document these keys of state history --json: {missing}"
    changes = {c["change"] for r in records for c in r["changes"]}
    assert changes == {"created", "moved", "removed"}
    assert all(f"`{c}`" in section for c in changes)
    # the example line is one a parser reads back with the same keys, in the same order
    example = json.loads(re.findall(r"```jsonl\n(.*?)\n```", section, re.DOTALL)[0])
    assert list(example) == list(records[0])
    assert list(example["changes"][0]) == list(records[0]["changes"][0])


def test_versions_saved_out_of_band_that_match_the_manifest_read_right(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")

    async def edit_and_back(client: ProviderClient) -> None:
        agent = await client.agents.retrieve(coder)
        await client.agents.update(coder, {"description": "tmp"})
        await client.agents.update(coder, {"description": agent["description"]})

    out_of_band(edit_and_back)
    [item] = items(drift_json(), "changed")
    assert item["message"].startswith(
        "versions 2-3 were saved outside git; the latest differs from version 1 (the last "
        "apply's) in nothing, so it matches the manifest"
    ), item["message"]


def test_drift_while_an_apply_holds_the_lock_says_so(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")
    with ApplyLock(LOCKFILE) as lock:  # an apply in progress (another terminal, a CI job)
        info = lock.info
        out_of_band(lambda c: c.agents.update(coder, {"description": "being applied"}))
        report = drift_json()
        text = cli("drift")
        markdown = cli("drift", "--format", "markdown")
    assert info is not None
    expected = (
        f"{info.describe()} holds the lock of {LOCKFILE}: what an apply in progress "
        "changed but has not recorded yet shows as drift; run drift again once it is done"
    )
    assert report["warnings"] == [expected], report["warnings"]
    assert [i["address"] for i in report["items"]] == ["agent.coder"]
    assert text.exit_code == 2 and f"Warning: {expected}.\n" in text.stderr, text.stderr
    # the CI job summary is the Markdown report: the warning is there too
    assert f"> **Warning:** {expected}.\n" in markdown.stdout, markdown.stdout
    # no drift: nothing to explain, and no warning that would make the all-clear sound unsure
    ok("apply", "--auto-approve")
    with ApplyLock(LOCKFILE):
        clean = ok("drift")
    assert (
        clean.stdout
        == "No drift. The live system matches the lockfile: nothing was changed outside git.\n"
    )
    assert clean.stderr == ""
    out_of_band(lambda c: c.agents.update(coder, {"description": "again"}))
    # a lock left by a process that is gone is no apply in progress; it says the apply died
    # (session 9: its unrecorded changes read as edits outside git otherwise)
    dead = info.model_copy(update={"pid": 2**22 + 7})
    Path(LOCKFILE + ".lock").write_text(dead.model_dump_json())
    (warning,) = drift_json()["warnings"]
    assert "holds the lock" not in warning
    assert warning.startswith(f"{dead.describe()} ended without releasing the lock"), warning


def test_drift_of_an_object_another_project_now_claims_says_whose_it_is(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    coder = remote_id("agent.coder")
    out_of_band(lambda c: c.agents.update(coder, {"metadata": {"reconciler-project": "web"}}))
    report = drift_json()
    [item] = items(report)
    assert (item["type"], item["address"], item["remote_id"]) == ("changed", "agent.coder", coder)
    assert item["message"] == (
        f'its ownership tags say it belongs to project "web" (as agent.coder), not to this '
        f"project: plan and apply never change or archive it. `reconciler state rm "
        f"agent.coder` forgets the entry (a wrong entry, e.g. from a bad merge), or "
        f"`reconciler import --force agent.coder {coder}` takes the object back"
    ), item["message"]
    assert [(c["path"], c["old"], c["new"]) for c in item["changes"]] == [
        ("metadata.reconciler-project", "default", "web")
    ]
    assert cli("apply", "--auto-approve").exit_code == 1  # as drift says: apply refuses it
    # taken back as drift says: no drift
    ok("import", "--force", "agent.coder", coder)
    assert drift_json(code=0)["items"] == []


def test_drift_after_a_state_mv_is_no_ownership_problem(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    ok("state", "mv", "agent.coder", "agent.engineer")
    edit(workdir / "manifests/agents.yaml", "name: coder\n", "name: engineer\n")
    result = cli("drift", "--format", "json")
    assert result.exit_code in (0, 2), result.stderr
    report = json.loads(result.stdout)
    assert not any("ownership tags" in i["message"] for i in report["items"]), report


def test_migrate_over_a_lockfile_with_entries_gives_both_serials(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    Path("state/old.lock").write_bytes(Path(LOCKFILE).read_bytes())  # yesterday's copy
    edit(workdir / "manifests/agents.yaml", "Be specific and kind.", "Be brief.")
    ok("apply", "--auto-approve")
    old, new = (json.loads(Path(p).read_text()) for p in ("state/old.lock", LOCKFILE))
    assert old["serial"] < new["serial"]
    result = cli("state", "migrate", "--to", "state/old.lock")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: state/old.lock already holds {len(old['resources'])} entries (lineage "
        f"{old['lineage']} serial {old['serial']}), and the state copied has serial "
        f"{new['serial']}; refusing to overwrite it; pass --force to replace it\n"
    ), result.stderr


def test_an_environment_name_another_project_holds_says_to_rename(workdir: Path) -> None:
    ok("--project", "web", "apply", "--auto-approve")
    held = lockfile()["resources"]["environment.python-data"]["id"]
    other = ("--project", "ops", "--lockfile", "state/ops.lock")
    # the plan says it before anything is sent, with the same way out
    planned = cli(*other, "plan")
    assert planned.exit_code == 0, planned.stderr
    assert (
        "reason: environment.python-data is new in the manifests; but an environment named "
        f"'python-data' already exists ({held}) and belongs to project \"web\" (as "
        "environment.python-data), so the provider will refuse this create. Environment "
        "names are unique in the workspace: give environment.python-data another name"
    ) in planned.stdout, planned.stdout
    result = cli(*other, "apply", "--auto-approve")
    assert result.exit_code == 1
    [line] = [x for x in result.stdout.splitlines() if x.startswith("  environment.python-data:")]
    assert line == (
        "  environment.python-data: create refused by the provider (409): an environment "
        f"named 'python-data' already exists ({held}) and belongs to project \"web\" (as "
        "environment.python-data), so it was not adopted. Environment names are unique in "
        "the workspace: give environment.python-data another name (spec.name); "
        f"`reconciler import --force environment.python-data {held}` would take it from that "
        "project"
    ), line
    # the way out it names works: another remote name, and the apply goes through
    edit(
        workdir / "manifests/environments.yaml",
        "spec:\n  description: Python 3",
        "spec:\n  name: ops-python-data\n  description: Python 3",
    )
    ok(*other, "apply", "--auto-approve")


def test_a_plan_says_a_hand_made_environment_holds_the_name_and_how_to_take_it(
    workdir: Path,
) -> None:
    """An environment made in the console with the name a manifest's environment would be
    created with: the plan says that create will be refused, and the import it names works."""
    held: list[str] = []

    async def make_one(client: ProviderClient) -> None:
        env = await client.environments.create({"name": "python-data", "config": {"type": "cloud"}})
        held.append(env["id"])

    out_of_band(make_one)
    planned = cli("plan")
    assert planned.exit_code == 0, planned.stderr
    assert (
        "but an environment named 'python-data' already exists "
        f"({held[0]}) and belongs to nobody (no reconciler ownership tags), so the provider will "
        f"refuse this create. `reconciler import environment.python-data {held[0]}` manages it "
        "from now on, or give environment.python-data another name"
    ) in planned.stdout, planned.stdout
    ok("import", "environment.python-data", held[0])
    assert "already exists" not in cli("plan").stdout
    ok("apply", "--auto-approve")
    assert lockfile()["resources"]["environment.python-data"]["id"] == held[0]


def test_an_empty_backend_variable_is_said_to_mean_the_lockfile(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RECONCILER_BACKEND: ${{ secrets.DB }}`` with the secret missing is an empty
    variable: it means unset, and a job that meant the database is told so."""
    monkeypatch.setenv("RECONCILER_BACKEND", "")
    result = cli("plan")
    assert result.exit_code == 0, result.stderr
    assert "RECONCILER_BACKEND is set but empty" in result.stderr
    assert "state/reconciler.lock" in result.stderr
    monkeypatch.delenv("RECONCILER_BACKEND")
    assert "RECONCILER_BACKEND" not in cli("plan").stderr


def test_an_empty_project_variable_is_said_to_mean_the_default_project(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RECONCILER_PROJECT: ${{ vars.PROJECT }}`` with the variable missing ran as project
    "default" without a word: against a database several repositories share, that is
    another repository's state (whose resources a `plan --prune` would archive). It still
    means unset, as an empty RECONCILER_BACKEND does, and says so."""
    monkeypatch.setenv("RECONCILER_PROJECT", "")
    result = cli("plan")
    assert result.exit_code == 0, result.stderr
    assert (
        "Warning: RECONCILER_PROJECT is set but empty (a missing CI variable?); the project "
        "is 'default'"
    ) in " ".join(result.stderr.split()), result.stderr
    monkeypatch.setenv("RECONCILER_PROJECT", "default")
    assert "RECONCILER_PROJECT" not in cli("plan").stderr


def test_an_empty_lockfile_variable_is_said_to_mean_the_default_lockfile(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``RECONCILER_LOCKFILE: ${{ vars.LOCKFILE }}`` with the variable missing read and
    wrote state/reconciler.lock without a word; it still means unset, and says so."""
    monkeypatch.setenv("RECONCILER_LOCKFILE", "")
    result = cli("plan")
    assert result.exit_code == 0, result.stderr
    assert (
        "Warning: RECONCILER_LOCKFILE is set but empty (a missing CI variable?); the state is "
        "the lockfile state/reconciler.lock"
    ) in " ".join(result.stderr.split()), result.stderr
