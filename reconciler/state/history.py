"""The append-only history of a state: who changed what, when, with which plan.

Every state write (one ``commit``) that changes resource entries adds one ``HistoryRecord``:
the serial it wrote, the time, the actor (``user@host``), the CI run when one is recognised
(``ci_run``), the operation (``apply``, ``import``, ``state rm``, ``state migrate``), the
digest of the plan applied, and per address what happened (``HistoryChange``). Pending
intents come and go within a run and are not history; the one an entry is written over
says whether the provider object was created (or replaced) or only recorded.

The PostgreSQL backend writes the record in the same transaction as the change. The lockfile
backend appends it as one JSON line to ``PATH.history`` beside the lockfile (git-ignored with
the other ``PATH.*`` files: the git log of the lockfile is the shared history of a repository;
this file is the local, per-checkout audit log). No I/O beyond that file here.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError

from reconciler.lean import LeanModel
from reconciler.state.delta import Delta
from reconciler.state.files import append_lines, read_lines
from reconciler.state.model import Lockfile, utc_timestamp

HISTORY_SUFFIX = ".history"

#: CI systems recognised by ``ci_run``: (name, the variable holding the run id, extras)
_CI_VARIABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("github", "GITHUB_RUN_ID", ("GITHUB_REPOSITORY", "GITHUB_RUN_ATTEMPT")),
    ("gitlab", "CI_JOB_ID", ("CI_PROJECT_PATH", "CI_PIPELINE_ID")),
    ("buildkite", "BUILDKITE_BUILD_ID", ("BUILDKITE_PIPELINE_SLUG", "BUILDKITE_JOB_ID")),
    ("circleci", "CIRCLE_WORKFLOW_ID", ("CIRCLE_PROJECT_REPONAME", "CIRCLE_BUILD_NUM")),
    ("azure", "BUILD_BUILDID", ("BUILD_REPOSITORY_NAME",)),
    ("jenkins", "BUILD_TAG", ()),
)


class _Frozen(LeanModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


#: What one write did to one address: ``created`` (the object was created at the provider:
#: a create was in flight for the address), ``replaced`` (a new object in place of the
#: recorded one), ``updated``, ``removed`` (the entry went), ``imported`` (adopted by
#: ``import``), ``healed`` (an apply found it again by its ownership tags: a lost lockfile,
#: an entry removed by hand), ``moved`` (the entry of another address, removed by the same
#: write: ``state mv``, ``moved_from``) or ``recorded`` (any other new entry, e.g. a copy
#: ``state migrate --force`` put back).
ChangeWord = Literal[
    "created", "replaced", "updated", "removed", "imported", "healed", "moved", "recorded"
]


class HistoryChange(_Frozen):
    """What one write did to one address."""

    address: str
    change: ChangeWord
    kind: str | None = None
    id: str | None = None
    version: int | None = None
    #: ``moved``: the address the entry was at before
    moved_from: str | None = Field(default=None, exclude_if=lambda v: v is None)


class HistoryRecord(_Frozen):
    """One write of the state (``state history`` prints these)."""

    serial: int
    at: str
    actor: str
    ci_run: str | None = None
    operation: str = "apply"
    plan_digest: str | None = None
    changes: tuple[HistoryChange, ...] = ()

    def only(self, address: str) -> HistoryRecord:
        """This record with only the changes of ``address``, and a move of its entry to
        another address (which says where it went, beside its ``removed``)."""
        return self.model_copy(
            update={
                "changes": tuple(
                    c for c in self.changes if address in (c.address, c.moved_from)
                )
            }
        )


def user_at_host() -> str:
    """``user@host`` of this process (the uid when there is no passwd entry)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def ci_run(environ: Mapping[str, str] | None = None) -> str | None:
    """The CI run this process belongs to, e.g. ``github acme/infra run 123 attempt 1``.

    ``RECONCILER_CI_RUN`` wins when set; otherwise GitHub Actions, GitLab, Buildkite,
    CircleCI, Azure Pipelines and Jenkins are recognised by their own variables.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("RECONCILER_CI_RUN", "").strip()
    if explicit:
        return explicit
    for name, variable, extras in _CI_VARIABLES:
        run = env.get(variable, "").strip()
        if not run:
            continue
        if name == "github":
            repo, attempt = env.get(extras[0], ""), env.get(extras[1], "")
            text = f"github {repo} run {run}".replace("  ", " ")
            return f"{text} attempt {attempt}" if attempt else text
        more = " ".join(env[e] for e in extras if env.get(e))
        return f"{name} {run}" + (f" ({more})" if more else "")
    return None


@dataclass(frozen=True)
class RunInfo:
    """Who writes the state, and why: stamped on every history record of a run."""

    operation: str = "apply"
    plan_digest: str | None = None
    actor: str = field(default_factory=user_at_host)
    ci_run: str | None = field(default_factory=ci_run)


def changes_of(
    before: Lockfile, delta: Delta, operation: str | None = None
) -> tuple[HistoryChange, ...]:
    """The resource changes of ``delta`` applied to ``before``, sorted by address
    (``operation``: the run's, which says how an entry new without a create got there)."""
    removed = {
        old.id: address
        for address, entry in delta.entries.items()
        if entry is None and (old := before.resources.get(address)) is not None
    }
    out: list[HistoryChange] = []
    for address in sorted(delta.entries):
        entry = delta.entries[address]
        old = before.resources.get(address)
        if entry is None:
            if old is not None:
                out.append(
                    HistoryChange(address=address, change="removed", kind=old.kind, id=old.id)
                )
            continue
        moved_from = removed.get(entry.id) if old is None else None
        out.append(
            HistoryChange(
                address=address,
                change=_change_word(before, address, entry.id, operation, moved_from),
                kind=entry.kind,
                id=entry.id,
                version=entry.version,
                moved_from=moved_from,
            )
        )
    return tuple(out)


def _change_word(
    before: Lockfile, address: str, new_id: str, operation: str | None, moved_from: str | None
) -> ChangeWord:
    old = before.resources.get(address)
    if old is not None and old.id == new_id:
        return "updated"
    intent = before.pending.get(address)
    if intent is not None and intent.operation in ("create", "replace"):
        # the executor records a create's intent before it is sent: this is that create, in
        # place of the recorded object when there was one (a replace, or a create of what was
        # archived or deleted behind git's back)
        return "replaced" if old is not None else "created"
    if moved_from is not None:
        return "moved"
    if operation is not None and operation.startswith("import"):
        return "imported"
    if operation is not None and operation.startswith("apply"):
        return "healed"  # nothing was created: found again by its ownership tags
    return "recorded"


def record_for(
    before: Lockfile, delta: Delta, serial: int, run: RunInfo, at: str | None = None
) -> HistoryRecord | None:
    """The history record of writing ``delta`` over ``before`` as ``serial`` (None: no
    resource changed)."""
    changes = changes_of(before, delta, run.operation)
    if not changes:
        return None
    return HistoryRecord(
        serial=serial,
        at=at or utc_timestamp(),
        actor=run.actor,
        ci_run=run.ci_run,
        operation=run.operation,
        plan_digest=run.plan_digest,
        changes=changes,
    )


def select(records: Iterable[HistoryRecord], address: str | None) -> list[HistoryRecord]:
    """The records (oldest first) that touch ``address`` (all of them when None), each
    narrowed to that address's changes."""
    if address is None:
        return list(records)
    return [r.only(address) for r in records if any(c.address == address for c in r.changes)]


def of_current_state(
    records: Sequence[HistoryRecord], serial: int
) -> tuple[list[HistoryRecord], list[HistoryRecord]]:
    """``records`` (oldest first) split into those of the state at ``serial`` and those of
    states it replaced: ``(current, replaced)``.

    A lockfile lost and healed, or restored from git, starts its serials again, so its
    history file can hold the writes of a state it replaced: the records before the last
    serial that is not above the one before it, and any above ``serial`` (a newer state the
    restored copy replaced). A database keys its history by serial: only the current state's
    records can go there without taking the serials of its next writes.
    """
    start = 0
    for index in range(1, len(records)):
        if records[index].serial <= records[index - 1].serial:
            start = index
    current = [r for r in records[start:] if r.serial <= serial]
    kept = {id(r) for r in current}
    return current, [r for r in records if id(r) not in kept]


# -- the lockfile backend's history file ------------------------------------------------------


def history_path(lockfile_path: str | os.PathLike[str]) -> Path:
    """Where the history of the lockfile at ``lockfile_path`` lives: ``PATH.history``."""
    path = Path(lockfile_path)
    return path.with_name(path.name + HISTORY_SUFFIX)


def append_history(path: Path, records: Iterable[HistoryRecord], *, sync: bool = False) -> int:
    """Append ``records`` as JSON lines to ``path``; return the bytes written.

    Without ``sync`` the lines reach the page cache only: they survive the process being
    killed, not a power cut (the lockfile itself is always fsynced).
    """
    text = "".join(r.model_dump_json() + "\n" for r in records)
    if not text:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    return append_lines(path, text.encode("utf-8"), sync=sync)


def read_history(path: Path) -> list[HistoryRecord]:
    """Every record of the history file at ``path``, oldest first ([] when there is none).

    A line that is not a record (torn by a process killed while appending) is skipped.

    Raises:
        LockfileError: the file cannot be read.
    """
    out: list[HistoryRecord] = []
    for line in read_lines(path, "the history"):
        try:
            out.append(HistoryRecord.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            continue  # torn by a kill: it never counted
    return out
