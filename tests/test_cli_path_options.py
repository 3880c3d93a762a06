"""Path options as the user writes them: ``-f .`` is the current folder, ``-f ""`` a mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

AGENT = "kind: Agent\nname: coder\nspec:\n  model: claude-sonnet-4-6\n"


def test_dash_f_dot_reads_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``reconciler -f . validate`` was refused as "an empty path" (``Path(".")`` equals
    ``Path("")``), though ``.`` is the folder the user stands in."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "agents.yaml").write_text(AGENT)
    for given in (".", "./"):
        result = CliRunner().invoke(main, ["-f", given, "validate"])
        assert result.exit_code == 0, result.output
        assert "empty path" not in result.output
    result = CliRunner().invoke(main, ["-f", "", "validate"])
    assert result.exit_code != 0 and "an empty path" in result.output, result.output
