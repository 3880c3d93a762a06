"""The pin history a lost lockfile is rebuilt with, as `rollback` reads it afterwards.

A lockfile lost after a gated move is healed from the provider's rollout records. The
healing apply records where it found the deployment; it must not write a move "from an
unknown version" over what the records say, or `rollback` no longer knows where to go back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gitops import LOCKFILE, edit, make_workdir, ok
from test_rollout import (
    DEPLOYMENT,
    DEPLOYMENTS,
    PASSING,
    entry,
    gate,
    history,
    live_pin,
    new_version,
)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def _lose_the_lockfile() -> None:
    Path(LOCKFILE).unlink()
    Path(LOCKFILE + ".backup").unlink(missing_ok=True)


def _moved_to_v2_by_its_checks() -> None:
    gate(PASSING)
    ok("apply", "--auto-approve")
    new_version(1)
    ok("apply", "--auto-approve")  # v2 after its checks
    assert live_pin() == 2


def test_a_healing_apply_that_updates_the_deployment_keeps_the_move_rollback_undoes(
    workdir: Path,
) -> None:
    # the healing apply also changed the deployment's description: it recorded the pin it
    # found as a plain `apply` move "from: null", and `rollback` then said the lockfile
    # records no version the deployment ran before @2
    _moved_to_v2_by_its_checks()
    _lose_the_lockfile()
    edit(DEPLOYMENTS, "Reviews the day's open pull requests", "Reviews the open pull requests")
    ok("apply", "--auto-approve")
    assert history() == [(2, "checks"), (2, "healed")]

    result = ok("rollback", DEPLOYMENT, "--auto-approve")
    assert "pin agent.reviewer@2 -> @1  (rollback)" in result.stdout
    assert live_pin() == 1


def test_a_gated_move_made_by_the_healing_apply_records_where_it_moved_from(
    workdir: Path,
) -> None:
    # a new agent version planned while the lockfile was lost: the gated move was recorded
    # "from: null", and `rollback` could not undo it
    _moved_to_v2_by_its_checks()
    _lose_the_lockfile()
    new_version(2)
    ok("apply", "--auto-approve")  # v3 after its checks
    assert live_pin() == 3
    moves = [(h["from_version"], h["version"], h["by"]) for h in entry()["pin_history"]]
    assert moves[-1] == (2, 3, "checks"), moves

    result = ok("rollback", DEPLOYMENT, "--auto-approve")
    assert "pin agent.reviewer@3 -> @2  (rollback)" in result.stdout
    assert live_pin() == 2
