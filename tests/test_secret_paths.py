"""Where a ``from_file`` secret may come from, driven through the CLI.

A manifest is reviewed in a pull request, but the file it names is read on the machine that
applies it; so ``from_file`` stays inside the repository (the manifests' git work tree, or the
manifests directory when there is none), symlinks followed. ``validate`` checks each file
exists, and ``plan --target`` reads only the secrets of what it targets.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.gitops import make_workdir

from reconciler.cli import main

TOKEN = "secrets/github-token.txt"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def point_token_at(workdir: Path, path: str) -> None:
    vaults = workdir / "manifests/vaults.yaml"
    vaults.write_text(vaults.read_text().replace(f"from_file: {TOKEN}", f"from_file: {path}"))


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../../../../etc/passwd", "../outside"])
def test_from_file_outside_the_repository_is_refused(workdir: Path, path: str) -> None:
    (workdir / "outside").write_text("a file of the CI runner\n")
    point_token_at(workdir, path)
    for command in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = cli(*command)
        assert result.exit_code == 1, command
        assert re.search(
            r"manifests/vaults\.yaml:\d+:\d+: spec\.credentials\[0\]\.auth\.token: secret file "
            + re.escape(path)
            + r" is outside the repository",
            result.stderr,
        ), result.stderr
        assert "{from_env: VAR}" in result.stderr
    assert not (workdir / "state/reconciler.lock").exists()


def test_a_symlink_out_of_the_repository_is_refused(workdir: Path) -> None:
    (workdir / "outside").write_text("a file of the CI runner\n")
    link = workdir / "manifests/secrets/link.txt"
    os.symlink(workdir / "outside", link)
    point_token_at(workdir, "secrets/link.txt")
    result = cli("validate")
    assert result.exit_code == 1
    assert "secret file secrets/link.txt is outside the repository" in result.stderr
    # a symlink that stays inside is fine
    link.unlink()
    os.symlink(workdir / "manifests" / TOKEN, link)
    assert cli("validate").exit_code == 0


def test_the_git_work_tree_is_the_repository(workdir: Path) -> None:
    (workdir / ".git").mkdir()
    (workdir / "ops").mkdir()
    (workdir / "ops/token").write_text("dummy-token\n")
    point_token_at(workdir, "../ops/token")
    assert cli("validate").exit_code == 0
    assert cli("plan").exit_code == 0


def test_validate_says_a_secret_file_is_missing(workdir: Path) -> None:
    (workdir / "manifests" / TOKEN).unlink()
    result = cli("validate")
    assert result.exit_code == 1
    assert re.search(
        r"manifests/vaults\.yaml:\d+:\d+: spec\.credentials\[0\]\.auth\.token: secret file "
        r"secrets/github-token\.txt does not exist",
        result.stderr,
    ), result.stderr


def test_validate_says_a_secret_file_is_too_large(workdir: Path) -> None:
    """Without reading it: a file over the secret limit fails validate where it is named,
    as it would fail plan and apply."""
    (workdir / "manifests" / TOKEN).write_bytes(b"x" * (1024 * 1024 + 1))
    for command in (["validate"], ["plan"]):
        result = cli(*command)
        assert result.exit_code == 1, command
        assert re.search(
            r"manifests/vaults\.yaml:\d+:\d+: \S*auth\.token: secret "
            r"file \S*secrets/github-token\.txt is larger than 1\.0 MiB \(1,048,577 bytes\)",
            result.stderr,
        ), (command, result.stderr)


def test_plan_target_reads_only_the_targeted_secrets(workdir: Path) -> None:
    (workdir / "manifests" / TOKEN).unlink()
    targeted = cli("plan", "--target", "agent.coder")
    assert targeted.exit_code == 0, targeted.stderr
    assert "+ agent.coder  create" in targeted.stdout
    assert "vault.github" not in targeted.stdout
    applied = cli("apply", "--auto-approve", "--target", "agent.coder")
    assert applied.exit_code == 0, applied.stderr
    # what needs the secret still says it is missing
    for args in (["plan"], ["plan", "--target", "deployment.nightly-review"]):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert "github-token.txt not found" in result.stderr


def test_a_saved_targeted_plan_reads_only_the_targeted_secrets(workdir: Path) -> None:
    (workdir / "manifests" / TOKEN).unlink()
    saved = cli("plan", "--target", "agent.coder", "--out", "coder.plan")
    assert saved.exit_code == 0, saved.stderr
    applied = cli("apply", "coder.plan")
    assert applied.exit_code == 0, applied.stderr
    assert "Apply complete: 1 created" in applied.stdout
    # the plan stays bound to the manifests: an edit since is still refused
    ok_plan = cli("plan", "--target", "agent.reviewer", "--out", "reviewer.plan")
    assert ok_plan.exit_code == 0, ok_plan.stderr
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("Be specific and kind.", "Be kind."))
    stale = cli("apply", "reviewer.plan")
    assert stale.exit_code == 1 and "changed since this plan was made" in stale.stderr


def test_validate_reports_a_missing_secret_file_with_the_other_errors(workdir: Path) -> None:
    (workdir / "manifests" / TOKEN).unlink()
    agents = workdir / "manifests/agents.yaml"
    agents.write_text(agents.read_text().replace("  system: |", "  systen: |", 1))
    result = cli("validate")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 2 errors in manifests:\n")
    assert "systen" in result.stderr and "github-token.txt does not exist" in result.stderr


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("secrets/loop.txt", "secrets/loop.txt is a symbolic link loop; fix the link"),
        ("secrets/" + "x" * 300, "File name too long"),
    ],
)
def test_validate_says_what_plan_says_of_a_secret_file_it_cannot_reach(
    workdir: Path, path: str, said: str
) -> None:
    """A ``from_file`` secret that is a symbolic link loop passed validate ("OK", exit 0)
    while plan refused it; a name longer than the system takes made validate print
    "Error: /abs/path/xxx...: File name too long" with no file:line:col, and hid every
    other error. Now both are issues where the secret is named, as plan says them."""
    os.symlink("loop.txt", workdir / "manifests/secrets/loop.txt")
    point_token_at(workdir, path)
    for command in (["validate"], ["plan"]):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.stdout)
        assert re.search(
            r"manifests/vaults\.yaml:\d+:\d+: \S*auth\.token: .*" + re.escape(said),
            result.stderr,
        ), (command, result.stderr)
    assert not (workdir / "state/reconciler.lock").exists()


@pytest.mark.parametrize("source", ["from_env", "from_file"])
def test_a_secret_longer_than_the_provider_takes_is_refused_before_anything_is_sent(
    workdir: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token of 70,000 characters (a file of several secrets, a variable holding a whole
    bundle) passed plan; apply created the vault, then the provider refused the credential
    ("auth.token: String should have at most 65536 characters"), exit 1 half done."""
    secret = "CANARY" + "z" * 70_000
    if source == "from_env":
        monkeypatch.setenv("HUGE_TOKEN", secret)
        point_token_at(workdir, "x")
        vaults = workdir / "manifests/vaults.yaml"
        vaults.write_text(vaults.read_text().replace("{from_file: x}", "{from_env: HUGE_TOKEN}"))
    else:
        (workdir / "manifests" / TOKEN).write_text(secret + "\n")
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = cli(*command)
        assert result.exit_code == 1, (command, result.stdout)
        assert re.search(
            r"manifests/vaults\.yaml:\d+:\d+: \S*auth\.token: .*70,006 characters; the "
            r"provider takes at most 65,536",
            result.stderr,
        ), (command, result.stderr)
        assert "CANARY" not in result.stdout + result.stderr
    assert not (workdir / "state/reconciler.lock").exists()
