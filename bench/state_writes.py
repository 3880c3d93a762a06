"""Benchmark: bytes the state takes per action, lockfile and PostgreSQL, in one run (issue #17).

    python bench/state_writes.py                    # 10,000 agents + 1,000 environments
    python bench/state_writes.py --agents 1000      # a quicker look

For each backend (the lockfile; PostgreSQL on a throwaway server from tests/support/postgres.py)
it applies the whole workload (``Workload.of_size``: N agents and N/10 environments) against
the embedded local provider, then changes 10 agents and applies again, and reports for each
apply: the actions, the state writes (commits), the bytes the state backend wrote (lockfile
rewrites and journal appends; for PostgreSQL the row data sent and the WAL the server wrote),
and bytes per action. The goal: the bytes of a write depend on what changed, not on the size
of the fleet. The lockfile's one fold of its journal at the end of a run (a whole rewrite) is
shown apart: it is once per run, not per action.

Prints a Markdown table; nothing is written to RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench.workload import PROJECT, Workload, agent_name, write_manifests
from reconciler.app import Settings, apply
from reconciler.state import location as state_location
from reconciler.state.postgres import location as pg_location


@dataclass
class Measured:
    backend: str
    step: str
    actions: int
    writes: int
    bytes_during: int
    bytes_fold: int
    wal: int | None
    seconds: float

    def row(self) -> str:
        per = self.bytes_during / max(1, self.actions)
        wal = f"{self.wal:,}" if self.wal is not None else "-"
        wal_per = f"{self.wal / max(1, self.actions):,.0f}" if self.wal is not None else "-"
        return (
            f"| {self.backend} | {self.step} | {self.actions:,} | {self.writes:,} | "
            f"{self.bytes_during:,} | {per:,.0f} | {self.bytes_fold:,} | {wal} | {wal_per} | "
            f"{self.seconds:.1f} |"
        )


class Probe:
    """Wraps every state store a run opens: counts its commits and the bytes around close."""

    def __init__(self) -> None:
        self.stores: list[Any] = []
        self.commits = 0
        self.before_close = 0

    def install(self) -> None:
        for cls in (state_location.FileLocation, pg_location.PgLocation):
            original = cls.store

            def store(self_: Any, lock: Any, run: Any, _original: Any = original) -> Any:
                made = _original(self_, lock, run)
                self.watch(made)
                return made

            cls.store = store  # type: ignore[method-assign]

    def watch(self, store: Any) -> None:
        self.stores.append(store)
        commit, close = store.commit, store.close

        def counted(edit: Any) -> Any:
            self.commits += 1
            return commit(edit)

        def closing() -> None:
            self.before_close += store.bytes_written
            close()

        store.commit, store.close = counted, closing

    def reset(self) -> None:
        self.stores, self.commits, self.before_close = [], 0, 0

    @property
    def written(self) -> int:
        return sum(s.bytes_written for s in self.stores)


def wal_position(url: str | None) -> int | None:
    if url is None:
        return None
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
        assert row is not None
        return int(row[0])


def run_apply(
    settings: Settings, probe: Probe, backend: str, step: str, url: str | None
) -> Measured:
    probe.reset()
    wal0 = wal_position(url)
    t0 = time.perf_counter()
    result = asyncio.run(apply(settings, parallelism=10))
    seconds = time.perf_counter() - t0
    assert result is not None and result.report.ok, result and result.report.failures[:3]
    wal1 = wal_position(url)
    actions = sum(1 for o in result.report.outcomes if o.action.type != "noop")
    during = probe.before_close if probe.before_close else probe.written
    return Measured(
        backend, step, actions, probe.commits, during, probe.written - during,
        None if wal0 is None or wal1 is None else wal1 - wal0, seconds,
    )  # fmt: skip


def change_agents(manifests: Path, count: int) -> None:
    path = manifests / "agents.yaml"
    text = path.read_text(encoding="utf-8")
    for i in range(count):
        text = text.replace(
            f"name: {agent_name(i)}\n", f"name: {agent_name(i)}\n# changed\n", 1
        ).replace(f"benchmark agent number {i}.", f"benchmark agent number {i} (v2).", 1)
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--changed", type=int, default=10)
    args = parser.parse_args()
    from support.postgres import PostgresServer, missing_reason

    probe = Probe()
    probe.install()
    rows: list[Measured] = []
    workload = Workload.of_size(args.agents)
    reason = missing_reason()
    server = PostgresServer().start() if reason is None else None
    try:
        # the lockfile as before issue #17 (rewritten whole at every write), then as now
        backends: list[tuple[str, str | None, str]] = [
            ("lockfile, whole rewrites (before)", None, str(10**15)),
            ("lockfile", None, ""),
        ]
        if server is not None:
            backends.append(("postgresql", server.new_database(), ""))
        else:
            print(f"(no PostgreSQL: {reason})", file=sys.stderr)
        for name, url, journal_above in backends:
            os.environ["RECONCILER_JOURNAL_ABOVE"] = journal_above
            with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
                work = Path(tmp)
                manifests = write_manifests(workload, work / "manifests")
                settings = Settings(
                    manifests=manifests, lockfile=work / "state" / "reconciler.lock",
                    project=PROJECT, db_path=work / "provider.db", backend=url,
                )  # fmt: skip
                rows.append(run_apply(settings, probe, name, f"create {workload.label()}", url))
                change_agents(manifests, args.changed)
                rows.append(run_apply(settings, probe, name, f"update {args.changed} agents", url))
                print(rows[-2].row(), rows[-1].row(), sep="\n", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
    print(
        "| backend | apply | actions | state writes | bytes written during the apply | "
        "bytes / action | end-of-run fold (lockfile) | WAL bytes (PostgreSQL) | WAL / action "
        "| seconds |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
