"""``state.of_current_state``: which records of a lockfile's history file are the current
state's, when the lockfile was lost and healed or restored from git (its serials start again)."""

from __future__ import annotations

from reconciler.state import HistoryRecord, of_current_state


def _records(*serials: int) -> list[HistoryRecord]:
    return [
        HistoryRecord(serial=s, at=f"2026-12-06T10:00:{i:02d}Z", actor="a@b", operation="apply")
        for i, s in enumerate(serials)
    ]


def _serials(records: list[HistoryRecord]) -> list[int]:
    return [r.serial for r in records]


def test_one_state_keeps_every_record() -> None:
    current, replaced = of_current_state(_records(1, 2, 4, 5), 5)
    assert (_serials(current), replaced) == ([1, 2, 4, 5], [])


def test_a_healed_lockfile_keeps_the_records_since_its_serials_started_again() -> None:
    current, replaced = of_current_state(_records(2, 3, 4, 6, 1, 2), 2)
    assert (_serials(current), _serials(replaced)) == ([1, 2], [2, 3, 4, 6])


def test_a_copy_restored_from_git_leaves_out_the_writes_it_replaced() -> None:
    # serial 4 restored from git while the history went on to 6: 5 and 6 were another state's
    current, replaced = of_current_state(_records(1, 2, 3, 4, 5, 6), 4)
    assert (_serials(current), _serials(replaced)) == ([1, 2, 3, 4], [5, 6])
