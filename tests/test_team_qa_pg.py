"""A platform team on shared state: what a user sees, driven through the command line
(``CliRunner`` in a fresh project, the embedded local provider) against a real PostgreSQL
server (``support.postgres``) where the state lives there.

- ``drift`` under ``--backend`` names what it compared with, not "the lockfile";
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.gitops import cli, make_workdir, ok

from reconciler.state.postgres.conninfo import redact

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
        f"No drift. The live system matches the state in {redact(pg_url)} (project default) "
        "and the manifests.\n"
    )
    assert "lockfile" not in result.stdout
    # the JSON report keeps one schema, whatever the backend
    report = json.loads(cli("--backend", pg_url, "drift", "--format", "json").stdout)
    assert sorted(report) == [
        "format_version", "has_drift", "items", "kind", "project", "summary", "warnings",
    ]  # fmt: skip


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
