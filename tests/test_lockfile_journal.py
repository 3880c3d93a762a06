"""The lockfile's journal (issue #17): a large lockfile is no longer rewritten whole for every
group of outcomes; each write appends what changed to ``PATH.journal`` and the lockfile is
rewritten once at the end. Readers replay the journal; kills leave it readable; the next run
heals (the crash matrix's cases, in journal mode)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.reliability import CREATE_PATH, Zygote, provider, shared_zygote, writer_zygote
from test_crash_matrix import Workspace, heals, killed, provider_kill, survives

from reconciler.errors import LockfileError
from reconciler.state import LockEntry, StateStore, json_digest, read_lockfile
from reconciler.state.history import history_path, read_history
from reconciler.state.journalfile import journal_path
from reconciler.state.model import utc_timestamp

REPO = Path(__file__).resolve().parents[1]


def entry(i: int) -> LockEntry:
    now = utc_timestamp()
    return LockEntry(kind="agent", id=f"agent_{i:05d}", version=i, spec_digest=json_digest(i),
                     created_at=now, updated_at=now)  # fmt: skip


def fleet_store(path: Path, n: int, journal_above: int) -> StateStore:
    store = StateStore(path, project="p", journal_above=journal_above)
    store.load()
    resources = {f"agent.a{i:05d}": entry(i) for i in range(n)}
    store.commit(lambda lf: lf.model_copy(update={"resources": resources}))
    store.close()
    return store


def test_a_large_lockfile_is_journaled_and_folded_in_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "state" / "reconciler.lock"
    store = fleet_store(path, 2000, journal_above=64 * 1024)
    size, inode = path.stat().st_size, path.stat().st_ino
    assert size > 64 * 1024 and not journal_path(path).exists()
    before = store.bytes_written
    for i in range(5):
        store.commit(lambda lf, i=i: lf.with_entry(f"agent.a{i:05d}", entry(10_000 + i)))
    per_write = (store.bytes_written - before) / 5
    assert per_write < 1000, "a write appends one entry's worth, not the whole file"
    assert (path.stat().st_size, path.stat().st_ino) == (size, inode), "the file is untouched"
    seen = read_lockfile(path, project="p")  # a reader replays the journal
    assert seen.serial == 6 and seen.resources["agent.a00004"].id == "agent_10004"
    store.close()
    assert not journal_path(path).exists()
    on_disk = json.loads(path.read_text())
    assert on_disk["serial"] == 6 and on_disk["resources"]["agent.a00004"]["id"] == "agent_10004"
    assert [r.serial for r in read_history(history_path(path))] == [1, 2, 3, 4, 5, 6]


def test_write_cost_does_not_grow_with_the_fleet(tmp_path: Path) -> None:
    costs = []
    for n in (1000, 8000):
        store = fleet_store(tmp_path / f"f{n}" / "reconciler.lock", n, journal_above=64 * 1024)
        before = store.bytes_written
        store.commit(lambda lf: lf.with_entry("agent.a00001", entry(99_999)))
        costs.append(store.bytes_written - before)
        store.close()
    assert costs[0] == costs[1]


def test_the_journal_is_folded_in_when_it_outgrows_the_lockfile(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.lock"
    store = fleet_store(path, 100, journal_above=0)
    size = path.stat().st_size
    for i in range(200):
        store.commit(lambda lf, i=i: lf.with_entry(f"agent.a{i % 100:05d}", entry(1000 + i)))
        assert (
            journal_path(path).stat().st_size <= size + 1000
            if journal_path(path).exists()
            else True
        )
    assert read_lockfile(path, project="p") == store.lockfile


def test_a_torn_last_line_is_skipped_and_a_foreign_journal_refused(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.lock"
    store = fleet_store(path, 10, journal_above=0)
    store.commit(lambda lf: lf.with_entry("agent.new", entry(77)))
    with open(journal_path(path), "ab") as f:
        f.write(b'{"lineage": "x", "serial": 3, "delta": {"entr')  # a kill mid-append
    assert read_lockfile(path, project="p") == store.lockfile
    lines = journal_path(path).read_bytes().split(b"\n")
    record = json.loads(lines[0])
    record["lineage"] = "f" * 32
    journal_path(path).write_text(json.dumps(record) + "\n")
    with pytest.raises(LockfileError, match=r"reconciler.lock.journal does not continue"):
        read_lockfile(path, project="p")


ZYGOTE = writer_zygote(store_options="journal_above=0", addresses=50)


def test_kill_9_during_journal_writes_never_loses_a_durable_write(tmp_path: Path) -> None:
    path = tmp_path / "state" / "reconciler.lock"
    rng = random.Random(17)
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(path)],
                              env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert zygote.stdin is not None and zygote.stdout is not None

    def ask(command: str) -> str:
        assert zygote.stdin is not None and zygote.stdout is not None
        zygote.stdin.write(command + "\n")
        zygote.stdin.flush()
        return zygote.stdout.readline().strip()

    try:
        assert zygote.stdout.readline().strip() == "ready"
        last = 0
        for _ in range(15):
            pid = int(ask("fork"))
            deadline = __import__("time").monotonic() + rng.uniform(0.05, 0.3)
            while __import__("time").monotonic() < deadline:
                pass
            os.kill(pid, signal.SIGKILL)
            ask(f"reap {pid}")
            if path.exists() or journal_path(path).exists():
                lockfile = read_lockfile(path)
                # every entry is the write of its serial's era: version = the serial it made
                assert all(
                    e.version == int(e.id.split("_")[1]) for e in lockfile.resources.values()
                )
                assert lockfile.serial >= last
                last = lockfile.serial
        assert last > 20, "the writers barely wrote; the test proves nothing"
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=10)
        zygote.stdout.close()


# -- the crash matrix's representative cases, in journal mode -----------------------------------


@pytest.fixture(scope="module")
def zygote() -> Zygote:
    return shared_zygote()


def journaled(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path)
    ws.env["RECONCILER_JOURNAL_ABOVE"] = "0"  # every write is a journal append
    return ws


@pytest.mark.tcp
def test_journal_kill_after_a_create_was_executed(zygote: Zygote, tmp_path: Path) -> None:
    ws = journaled(tmp_path)
    provider_kill(zygote, ws, method="POST", pattern=CREATE_PATH, nth=7, when="after")
    assert not journal_path(ws.lockfile).exists(), "the healing run folded it in"


@pytest.mark.tcp
def test_journal_kill_before_a_create_left(zygote: Zygote, tmp_path: Path) -> None:
    ws = journaled(tmp_path)
    provider_kill(zygote, ws, method="POST", pattern=CREATE_PATH, nth=5, when="before")


@pytest.mark.tcp
@pytest.mark.parametrize(("point", "nth"), [("journal-torn", 3), ("torn", 2), ("before-rename", 2)])
def test_journal_kill_in_an_append_or_the_final_rewrite(
    zygote: Zygote, tmp_path: Path, point: str, nth: int
) -> None:
    """A half-written journal line, or a kill while the journal is folded into the file (the
    first lockfile write creates the file; the second is the fold at the end)."""
    from reconciler.provider.local import FaultConfig

    ws = journaled(tmp_path)
    # answers 0.3 s apart, longer than outcomes wait for company (at most 0.25 s): the
    # outcomes come in several journal appends whatever the machine's load, so the nth is due
    with provider(ws.db, FaultConfig(latency_ms=300)) as (url, _tap):
        run = zygote.start(
            ws.args(url), cwd=ws.root, env=ws.env, crash={"point": point, "nth": nth}
        )
        killed(run)
        survives(ws)
        assert journal_path(ws.lockfile).exists(), "the kill left the journal behind"
        heals(zygote, ws, url)
    assert not journal_path(ws.lockfile).exists()
