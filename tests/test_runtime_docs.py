"""The runtime examples of docs/runtime.md and README.md run as written and print what they say.

Each ```python block is a whole program; the ```text block right after it is its exact
output. The programs run as a user runs them - ``python script.py`` in a project directory
where ``reconciler apply`` applied the example manifests - in the order of the page, sharing
the embedded provider's data there, with nothing on stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.gitops import make_workdir, ok
from support.reliability import clean_env

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.DOTALL)


def examples(page: Path) -> list[tuple[str, str | None]]:
    """(program, expected output or None) for each python block of ``page``."""
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    out: list[tuple[str, str | None]] = []
    for i, (lang, text) in enumerate(blocks):
        if lang == "python":
            follows = blocks[i + 1] if i + 1 < len(blocks) else None
            out.append((text, follows[1] if follows and follows[0] == "text" else None))
    return out


def run_program(workdir: Path, source: str) -> str:
    """Run ``source`` as ``python script.py`` in ``workdir``; returns stdout (stderr empty)."""
    script = workdir / "example.py"
    script.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        check=False,
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_workdir(tmp_path, monkeypatch)
    ok("apply", "--auto-approve")
    return path


def test_every_runtime_doc_example_runs_and_prints_what_it_says(workdir: Path) -> None:
    programs = examples(REPO / "docs" / "runtime.md")
    # quick start, without async with, advanced, the local agent, failure, lookups
    assert len(programs) == 6
    for source, expected in programs:
        assert expected is not None, f"no output shown after:\n{source}"
        assert run_program(workdir, source) == expected, source


def test_the_quick_start_runs_twice_reusing_its_environment(workdir: Path) -> None:
    quick_start = examples(REPO / "docs" / "runtime.md")[0]
    first = run_program(workdir, quick_start[0])
    second = run_program(workdir, quick_start[0])  # a second run does not 409 on the name
    assert first == second == quick_start[1]


def test_the_readme_runtime_example_runs_as_written(workdir: Path) -> None:
    readme = REPO / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Runtime API", 1)[1].split("\n## ")[0]
    page = workdir / "readme-runtime.md"
    page.write_text(section, encoding="utf-8")
    programs = examples(page)
    # the runtime example, then the library behind the commands (`reconciler.app`)
    assert len(programs) == 2
    for source, expected in programs:
        assert expected is not None, f"no output shown after:\n{source}"
        assert run_program(workdir, source) == expected
        assert run_program(workdir, source) == expected  # and again: nothing to clean up first
