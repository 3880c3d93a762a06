"""The package type-checks under ``mypy --strict`` (the settings are in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parent.parent


def test_the_package_passes_mypy_strict(tmp_path: Path) -> None:
    out, err, status = api.run(
        [
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path),
            str(REPO / "reconciler"),
        ]
    )
    assert status == 0, out + err
