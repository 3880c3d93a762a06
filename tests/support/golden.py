"""Golden files: compare rendered output with files under ``tests/golden/``.

A golden file is the reviewed, byte-exact output of a renderer. A test compares the current
output with it; ``pytest --update-golden`` rewrites the files instead, so an intended output
change shows up in review as a diff of ``tests/golden/``. Nothing here renders anything.

Usage in a test module::

    @pytest.fixture
    def golden(request: pytest.FixtureRequest) -> Golden:
        return Golden(request.config)

    def test_plan_text(golden: Golden) -> None:
        golden.check("plan_full.txt", render_plan(plan, "text"))
"""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent.parent / "golden"
OPTION = "--update-golden"


def add_golden_option(parser: pytest.Parser) -> None:
    """Register ``--update-golden`` (called from ``conftest.pytest_addoption``)."""
    parser.addoption(
        OPTION,
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ from the current output",
    )


class Golden:
    """Checks (or, with ``--update-golden``, rewrites) golden files in one directory."""

    def __init__(self, config: pytest.Config, directory: Path = GOLDEN_DIR) -> None:
        self.update = bool(config.getoption(OPTION, default=False))
        self.directory = directory

    def check(self, name: str, actual: str) -> None:
        """Fail unless ``actual`` equals the golden file ``name`` byte for byte.

        Raises:
            AssertionError: the file is missing or differs (pytest shows the diff).
        """
        path = self.directory / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(actual.encode("utf-8"))
            return
        if not path.exists():
            pytest.fail(
                f"golden file {path} is missing; run `pytest {OPTION}` to create it, "
                "then review and commit it",
                pytrace=False,
            )
        expected = path.read_bytes().decode("utf-8")
        assert actual == expected, (
            f"output differs from {path}; if the change is intended, run `pytest {OPTION}` "
            "and review the diff of tests/golden/"
        )
