"""Session 14's QA of crash safety and of the commands a platform team runs after one
(embedded and served local provider, the lockfile and PostgreSQL), driven through the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from support.gitops import cli, lockfile, make_workdir, ok, position
from support.reliability import SKILL_PATH, Zygote, provider_skills, shared_zygote, write_fleet
from test_crash_matrix import Workspace, provider_kill
from test_rollout import DEPLOYMENT, entry, new_version


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_rollback_takes_the_allow_origin_change_its_refusal_asks_for(workdir: Path) -> None:
    # The state was applied to the embedded provider; the same objects are now reached
    # another way (here a copy of its database; `provider serve` of it is the same). The
    # rollback was refused with "pass --allow-origin-change", which rollback did not take:
    # "No such option", in the one command run in an emergency.
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")
    assert entry()["pins"] == {"agent.reviewer": 2}
    shutil.copy(workdir / ".reconciler/provider.db", workdir / "staging.db")
    before = lockfile()

    refused = cli("--provider-db", "staging.db", "rollback", DEPLOYMENT, "--auto-approve")
    assert refused.exit_code == 1
    assert "pass --allow-origin-change" in refused.stderr
    assert lockfile() == before

    done = cli(
        "--provider-db", "staging.db", "rollback", DEPLOYMENT, "--auto-approve",
        "--allow-origin-change",
    )  # fmt: skip
    assert done.exit_code == 0, (done.stdout, done.stderr)
    assert "agent.reviewer@2 -> @1 rolled back" in done.stdout
    # like apply, the state now follows the provider it changed
    assert lockfile()["origin"] == "local:../staging.db"
    assert entry()["pins"] == {"agent.reviewer": 1}
    ok("--provider-db", "staging.db", "plan")


@pytest.mark.parametrize(
    ("edit", "key", "said"),
    [
        # a value of the wrong type, three levels down
        (('"version": 1', '"version": -3'), '"version"', "resources.agent.coder.version: Input"),
        # a key no lockfile has (a typo of a hand edit)
        (('"protect": false', '"protect": false, "protected": true'), '"protected"', ": Extra"),
        # a top-level value
        (('"serial": ', '"serial": "x", "_": '), '"serial"', "serial: Input should be"),
    ],
)
def test_a_lockfile_edited_by_hand_into_a_wrong_shape_is_named_by_line_and_column(
    workdir: Path, edit: tuple[str, str], key: str, said: str
) -> None:
    # valid JSON that is no lockfile: the error named the file and the field path, never
    # the line and column, which every other error about a file the user edits names
    ok("apply", "--auto-approve")
    path = workdir / "state/reconciler.lock"
    text = path.read_text()
    coder = text.index('"agent.coder"')  # the first entry: the edit is made in it
    at = text.index(edit[0], coder if edit[0] != '"serial": ' else 0)
    edited = text[:at] + edit[1] + text[at + len(edit[0]) :]
    edited = re.sub(r'"_": \d+', '"_": 0', edited)  # the serial's old value, as an extra key
    path.write_text(edited)
    spot = edited.index(key, coder if key != '"serial"' else 0)
    for command in (("plan",), ("apply", "--auto-approve"), ("state", "list")):
        refused = cli(*command)
        assert refused.exit_code == 1, refused.stdout
        assert refused.stderr.startswith(
            f"Error: state/reconciler.lock:{position(edited, spot)}: not a valid lockfile: "
        ), refused.stderr
        assert said in refused.stderr
    assert path.read_text() == edited, "nothing written"


# --- kills, as the crash matrix makes them (a real process, the served provider) -------------


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


def test_a_skill_uploaded_before_a_kill_then_edited_is_found_again_not_refused(
    zygote: Zygote, tmp_path: Path
) -> None:
    # apply SIGKILLed once the provider created a skill (its answer lost: only the intent
    # is in the lockfile); the user edits the skill's files and applies again. The next apply
    # refused the skill as possibly someone else's ("its latest version differs from the
    # manifest's files, and no agent of this project uses it"), and `import` was the only
    # way on, though the pending intent and the files it uploaded said it was this
    # project's (and the plan called its version "not uploaded by this project"). The intent
    # now keeps the digest of the files it uploads: the skill holding them is found again,
    # and given the edited files as its new version.
    ws = Workspace(tmp_path, agents=2, environments=1, credentials=0, deployments=0, skills=1)

    def edited(url: str) -> None:
        ws.fleet = write_fleet(ws.root / "manifests", **ws.size, tag=" Edited.")
        args = ["--project", "crash", "--provider-url", url, "plan", "--allow-origin-change"]
        plan = zygote.run(args, cwd=ws.root, env=ws.env)
        assert plan.code == 0, plan.stderr
        # exact: the version it finds was uploaded by this project, the apply that died
        assert "skill.skill-0  new version (1 file changed: notes.md)\n" in plan.stdout
        assert "not uploaded by this project" not in plan.stdout

    provider_kill(
        zygote, ws, method="POST", pattern=SKILL_PATH, nth=1, when="after", between=edited
    )
    skills = provider_skills(ws.db)
    assert [len(s["versions"]) for (s,) in skills.values()] == [2], "a new version, no twin"


def test_import_all_unmanaged_after_a_kill_never_adopts_the_skill_the_dead_apply_uploaded(
    zygote: Zygote, tmp_path: Path
) -> None:
    # apply SIGKILLed once a skill's create landed (its intent pending, its id nowhere);
    # then `import --all-unmanaged` (what was made by hand?). It adopted that skill under a
    # new address (skill.skill-0-2, a manifest written for it), and the next apply uploaded
    # skill.skill-0 again beside it: two skills of one slug, one of them recorded twice over.
    # drift and plan find that skill by its slug as this project's: so does import now.
    ws = Workspace(tmp_path, agents=2, environments=1, credentials=0, deployments=0, skills=1)

    def imported(url: str) -> None:
        args = ["--project", "crash", "--provider-url", url, "import", "--all-unmanaged",
                "--out", "manifests/imported", "--allow-origin-change"]  # fmt: skip
        run = zygote.run(args, cwd=ws.root, env=ws.env)
        assert run.code == 0, run.stderr
        assert not (ws.root / "manifests" / "imported").exists(), run.stdout
        assert "skill" not in run.stdout, run.stdout

    provider_kill(
        zygote, ws, method="POST", pattern=SKILL_PATH, nth=1, when="after", between=imported
    )
    assert [len(found) for found in provider_skills(ws.db).values()] == [1], "no twin"
