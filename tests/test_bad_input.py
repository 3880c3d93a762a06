"""Bad input corpus: malformed manifests and lockfiles are refused cleanly and change nothing.

For every file under ``tests/corpus/`` (see its README for the expectation syntax): the file
is dropped into a folder whose valid manifests were already applied, then each command runs:

* exit code 1, ``Error: ...`` on stderr naming ``FILE:LINE:`` (and the expected fragment);
* no traceback, no "this is a bug" message, and no secret echoed back;
* the provider's database and the lockfile's bytes are exactly as before.

The commands run in-process (``CliRunner``) for speed; a few run as real processes to prove
that what a shell sees has no traceback either.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.reliability import RECONCILER_VARS, provider_snapshot

from reconciler.cli import main

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST_CASES = sorted(
    p for p in (CORPUS / "manifests").iterdir() if p.suffix in (".yaml", ".yml")
)
LOCKFILE_CASES = sorted(p for p in (CORPUS / "lockfiles").iterdir() if p.suffix == ".lock")

BASE = """\
kind: Agent
name: base-agent
spec: {model: claude-sonnet-4-6, system: The base agent.}
---
kind: Environment
name: base-env
spec: {description: the base environment}
---
kind: Vault
name: base-vault
spec:
  credentials:
    - name: tok
      auth:
        type: static_bearer
        mcp_server_url: https://mcp.example.com/mcp
        token: {from_env: CORPUS_BASE_TOKEN}
---
kind: Deployment
name: base-dep
spec:
  agent: base-agent
  environment: base-env
  vaults: [base-vault]
  initial_events: [{type: user.message, content: [{type: text, text: hi}]}]
"""
BASE_TOKEN = "corpus-base-token-value-1f2e3d"
MANIFEST_COMMANDS = {
    "validate": ["validate"],
    "plan": ["plan"],
    "apply": ["apply", "--auto-approve"],
}
LOCKFILE_COMMANDS = {
    "plan": ["plan"],
    "apply": ["apply", "--auto-approve"],
    "state": ["state", "list"],
    "drift": ["drift"],
}


@dataclass(frozen=True)
class Expectation:
    line: int | None
    fragment: str
    commands: tuple[str, ...] | None
    never: tuple[str, ...]


def expectation(case: Path) -> Expectation:
    sidecar = case.with_name(case.name + ".expect")
    text = (sidecar if sidecar.exists() else case).read_text(encoding="utf-8", errors="replace")
    line: int | None = None
    fragment = ""
    commands: tuple[str, ...] | None = None
    never: list[str] = []
    for raw in text.splitlines():
        if not raw.startswith("#"):
            break
        key, _, value = raw[1:].strip().partition(":")
        if key == "expect":
            where, _, fragment = value.strip().partition(":")
            line = None if where.strip() == "-" else int(where)
            fragment = fragment.strip()
        elif key == "commands":
            commands = tuple(value.split())
        elif key == "never":
            never.append(value.strip())
    assert fragment or line is not None, f"{case} states no expectation"
    return Expectation(line, fragment, commands, tuple(never))


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, catch_exceptions=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the base manifests applied (embedded provider) and its lockfile."""
    root = tmp_path_factory.mktemp("corpus-template")
    (root / "manifests").mkdir()
    (root / "manifests" / "base.yaml").write_text(BASE)
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    try:
        os.chdir(root)
        for var in RECONCILER_VARS:
            os.environ.pop(var, None)
        os.environ["CORPUS_BASE_TOKEN"] = BASE_TOKEN
        result = invoke(["apply", "--auto-approve"])
        assert result.exit_code == 0, (result.stdout, result.stderr)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return root


@pytest.fixture
def work(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "w"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    for var in RECONCILER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CORPUS_BASE_TOKEN", BASE_TOKEN)
    monkeypatch.delenv("CORPUS_SURELY_UNSET_VARIABLE", raising=False)
    yield root


def check_refused(result: Result, name: str, where: str, exp: Expectation) -> None:
    out, err = result.stdout, result.stderr
    assert result.exit_code == 1, (name, result.exit_code, out, err)
    assert isinstance(result.exception, SystemExit), (name, repr(result.exception))
    assert err.startswith("Error: "), (name, err)
    assert "Traceback" not in out + err, (name, err)
    assert "This is a bug" not in err and "unexpected " not in err, (name, err)
    assert "report this bug" not in err, (name, err)
    if exp.line is not None:
        assert f"{where}:{exp.line}:" in err, (name, f"expected {where}:{exp.line}:", err)
    else:
        assert where in err, (name, where, err)
    assert exp.fragment.lower() in err.lower(), (name, exp.fragment, err)
    for secret in exp.never + (BASE_TOKEN,):
        assert secret not in out + err, (name, "a secret was printed")


def test_the_corpus_is_big_enough() -> None:
    assert len(MANIFEST_CASES) + len(LOCKFILE_CASES) >= 40
    assert len(MANIFEST_CASES) >= 30 and len(LOCKFILE_CASES) >= 10


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=lambda p: p.stem)
def test_malformed_manifest_is_refused_and_changes_nothing(case: Path, work: Path) -> None:
    exp = expectation(case)
    target = work / "manifests" / f"zz-{case.name}"
    shutil.copyfile(case, target)
    db = work / ".reconciler" / "provider.db"
    lockfile = work / "state" / "reconciler.lock"
    rows, lock_bytes = provider_snapshot(db), lockfile.read_bytes()
    where = f"manifests/zz-{case.name}"
    for name in exp.commands or tuple(MANIFEST_COMMANDS):
        check_refused(invoke(MANIFEST_COMMANDS[name]), f"{case.name} / {name}", where, exp)
    assert provider_snapshot(db) == rows, "the provider changed"
    assert lockfile.read_bytes() == lock_bytes, "the lockfile changed"
    assert not (work / "state" / "reconciler.lock.lock").exists(), "the apply lock was left"


@pytest.mark.parametrize("case", LOCKFILE_CASES, ids=lambda p: p.stem)
def test_malformed_lockfile_is_refused_and_left_as_it_is(case: Path, work: Path) -> None:
    exp = expectation(case)
    lockfile = work / "state" / "reconciler.lock"
    shutil.copyfile(case, lockfile)
    db = work / ".reconciler" / "provider.db"
    rows, lock_bytes = provider_snapshot(db), lockfile.read_bytes()
    state_files = sorted(p.name for p in lockfile.parent.iterdir())
    for name in exp.commands or tuple(LOCKFILE_COMMANDS):
        check_refused(
            invoke(LOCKFILE_COMMANDS[name]), f"{case.name} / {name}", "state/reconciler.lock", exp
        )
    assert provider_snapshot(db) == rows, "the provider changed"
    assert lockfile.read_bytes() == lock_bytes, "the bad lockfile was overwritten"
    # the apply may leave its (empty) flock guard, nothing else
    left = sorted(p.name for p in lockfile.parent.iterdir())
    assert set(left) - set(state_files) <= {"reconciler.lock.guard"}, left


def test_a_saved_plan_that_is_not_a_plan_is_refused(work: Path) -> None:
    """``apply PLANFILE`` with junk, a lockfile, or a truncated plan: exit 1, nothing done."""
    db = work / ".reconciler" / "provider.db"
    rows = provider_snapshot(db)
    (work / "junk.json").write_bytes(b"\x00\xff not json")
    (work / "lock.json").write_bytes((work / "state/reconciler.lock").read_bytes())
    assert invoke(["plan", "--out", "good.json"]).exit_code == 0
    good = (work / "good.json").read_text()
    (work / "truncated.json").write_text(good[: len(good) // 2])
    (work / "deep.json").write_text("[" * 100000 + "]" * 100000)
    for name in ("junk.json", "lock.json", "truncated.json", "deep.json", "missing.json"):
        result = invoke(["apply", name])
        assert result.exit_code == 1, (name, result.stdout, result.stderr)
        assert result.stderr.startswith("Error: "), (name, result.stderr)
        assert name in result.stderr, (name, result.stderr)
        assert "This is a bug" not in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
    assert provider_snapshot(db) == rows


@pytest.mark.parametrize(
    "case",
    ["manifests/binary_junk.yaml", "lockfiles/truncated.lock"],
)
def test_as_a_real_process_there_is_no_traceback(case: str, work: Path) -> None:
    source = CORPUS / case
    if case.startswith("manifests/"):
        shutil.copyfile(source, work / "manifests" / f"zz-{source.name}")
        args = ["plan"]
    else:
        shutil.copyfile(source, work / "state" / "reconciler.lock")
        args = ["apply", "--auto-approve"]
    env = {k: v for k, v in os.environ.items() if k not in RECONCILER_VARS}
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("Error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert re.search(r"(manifests/zz-|state/reconciler\.lock)", proc.stderr), proc.stderr
