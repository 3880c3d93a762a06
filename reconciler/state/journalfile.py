"""The lockfile's append-only journal: each write's changes, fsynced, until compaction.

Rewriting a 5 MB lockfile (11,000 resources) for every group of outcomes costs O(all state)
per write. Once the lockfile is large (``StateStore``'s ``journal_above``), a write appends
only what changed (``delta.Delta``) as one JSON line to ``PATH.journal`` and fsyncs it; the
lockfile itself is rewritten once at the end of the run (compaction), or earlier when the
journal outgrows it, so a write costs O(the changed resources), amortised.

The truth is the lockfile plus its journal: every reader replays the journal
(``replay_journal``). A line holds ``{"lineage", "serial", "delta"}``; lines with a serial the
lockfile already has are skipped (a compaction that died before removing the journal), a line
torn by a kill is skipped (its write never returned), and a journal that does not continue
the lockfile (another lineage, a gap in the serials: the lockfile was replaced meanwhile) is
an error naming both files, never silently dropped or merged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from reconciler.errors import LockfileError
from reconciler.state.delta import Delta, apply_delta
from reconciler.state.files import append_lines, fsync_dir, read_lines
from reconciler.state.model import Lockfile

JOURNAL_SUFFIX = ".journal"


def journal_path(lockfile_path: str | os.PathLike[str]) -> Path:
    """The journal of the lockfile at ``lockfile_path``: ``PATH.journal``."""
    path = Path(lockfile_path)
    return path.with_name(path.name + JOURNAL_SUFFIX)


def append_record(path: Path, lineage: str, serial: int, delta: Delta) -> int:
    """Append one write to the journal at ``path`` and fsync it; return the bytes written."""
    line = json.dumps(
        {"lineage": lineage, "serial": serial, "delta": delta.to_json()},
        sort_keys=True,
        separators=(",", ":"),
    )
    created = not path.exists()
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
    written = append_lines(path, (line + "\n").encode("utf-8"), sync=True)
    if created:
        fsync_dir(path.parent)
    return written


def read_records(path: Path) -> list[tuple[str, int, Delta]]:
    """The journal's writes, in order: ``(lineage, serial, delta)``; [] without a journal.

    Raises:
        LockfileError: the journal cannot be read.
    """
    out: list[tuple[str, int, Delta]] = []
    for line in read_lines(path, "the lockfile's journal"):
        try:
            data = json.loads(line)
            record = (str(data["lineage"]), int(data["serial"]), Delta.from_json(data["delta"]))
        except (ValueError, KeyError, TypeError, ValidationError):
            continue  # torn by a kill before its fsync returned: that write never happened
        out.append(record)
    return out


def replay_journal(lockfile_path: Path, lockfile: Lockfile) -> Lockfile:
    """``lockfile`` (as read from ``lockfile_path``) with its journal's later writes applied.

    Raises:
        LockfileError: the journal does not continue this lockfile (another lineage, or a
            gap in the serials).
    """
    path = journal_path(lockfile_path)
    current = lockfile
    for lineage, serial, delta in read_records(path):
        if lineage == current.lineage and serial <= current.serial:
            continue  # already in the lockfile (a compaction died before removing the journal)
        if lineage != current.lineage or serial != current.serial + 1:
            raise LockfileError(
                f"{path} does not continue {lockfile_path} (it holds lineage {lineage} serial "
                f"{serial}; the lockfile is lineage {current.lineage} serial {current.serial}): "
                "the lockfile was replaced while a run had unwritten changes. Move the journal "
                "away to go on with the lockfile as it is (the next plan finds what the "
                "journal recorded again by its ownership tags)"
            )
        current = apply_delta(current, delta).model_copy(update={"serial": serial})
    return current
