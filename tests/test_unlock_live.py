"""``reconciler unlock ID`` of a lock whose holder is alive (session 14).

It removed the lock of a running apply without a word, and that apply then stopped at its next
write (Terraform's ``force-unlock`` asks first). A live lock - its process alive on this host
or its heartbeat fresh; under --backend a lease not expired - is now refused unless
``--force``, naming who holds it, since when, and that the running apply stops at its next
write. A stale lock (its process gone, or expired) is unlocked as before.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from support.gitops import cli, make_workdir, ok
from support.postgres import wait_for

from reconciler.state import ApplyLock, lock_path
from reconciler.state.postgres.lease import PgLease

LOCKFILE = Path("state/reconciler.lock")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_workdir(tmp_path, monkeypatch)


def test_unlock_of_a_live_lockfile_lock_asks_for_force(workdir: Path) -> None:
    ok("apply", "--auto-approve")
    before = LOCKFILE.read_bytes()
    with ApplyLock(LOCKFILE) as held:
        info = held.info
        assert info is not None
        refused = cli("unlock", info.id)
        assert refused.exit_code == 1, (refused.stdout, refused.stderr)
        text = " ".join(refused.stderr.split())
        assert text.startswith("Error: "), text
        assert info.describe() in text, text
        assert "stop at its next write" in text, text
        assert "--force" in text, text
        assert lock_path(LOCKFILE).exists() and not held.lost
        forced = ok("unlock", "--force", info.id)
        assert info.id in forced.stdout
        assert not lock_path(LOCKFILE).exists()
    assert LOCKFILE.read_bytes() == before


def test_unlock_of_a_dead_holders_lock_needs_no_force(workdir: Path) -> None:
    (workdir / "state").mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(gone.stdout)
    now = "2099-01-01T00:00:00.000Z"  # a heartbeat that looks fresh: the pid decides
    lock_path(LOCKFILE).write_text(
        json.dumps(
            {
                "id": "deadbeef",
                "pid": pid,
                "host": socket.gethostname(),
                "user": "ci",
                "started_at": now,
                "heartbeat_at": now,
            }
        )
    )
    cleared = ok("unlock", "deadbeef")
    assert "deadbeef" in cleared.stdout
    assert not lock_path(LOCKFILE).exists()


def test_unlock_help_names_force() -> None:
    text = " ".join(ok("unlock", "--help").stdout.split())
    assert "--force" in text
    assert "next write" in text


@pytest.mark.tcp
def test_unlock_of_a_live_lease_asks_for_force_and_an_expired_one_goes(
    workdir: Path, pg_url: str
) -> None:
    lease = PgLease(pg_url, "default", ttl=60)
    info = lease.acquire("apply")
    try:
        refused = cli("--backend", pg_url, "unlock", info.id)
        assert refused.exit_code == 1, (refused.stdout, refused.stderr)
        text = " ".join(refused.stderr.split())
        assert info.id in text and info.started_at in text, text
        assert "stop at its next write" in text and "--force" in text, text
        assert lease.held
        ok("--backend", pg_url, "unlock", "--force", info.id)
    finally:
        lease.release()

    dead = PgLease(pg_url, "default", ttl=1)
    died = dead.acquire("apply")
    dead._stop.set()  # a killed runner stops heartbeating

    def expired() -> bool:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            row = conn.execute("SELECT expires_at < clock_timestamp() FROM reconciler_leases")
            return bool(row.fetchone()[0])  # type: ignore[index]

    try:
        wait_for("the lease to expire", expired)
        ok("--backend", pg_url, "unlock", died.id)
    finally:
        dead.release()
