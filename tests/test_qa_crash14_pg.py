"""Session 14's QA of crash safety on the PostgreSQL state: a lease lost while its runner
was frozen (a paused VM, a SIGSTOPped job) names the runner that holds it now."""

from __future__ import annotations

import threading
import time

import pytest
from support.postgres import wait_for

from reconciler.errors import LockLost
from reconciler.state.postgres.lease import PgLease, read_lease

pytestmark = pytest.mark.tcp


def test_a_runner_woken_after_its_lease_was_taken_over_names_the_runner_holding_it(
    pg_url: str,
) -> None:
    # A froze (SIGSTOP, a paused VM) past its lease's expiry; B took the lease over and is
    # applying. A wakes: its heartbeat finds the lease gone first, and A stopped saying
    # "lease lost to nobody ... Run `reconciler plan` once the other apply is done", while B
    # held it (the lockfile's lock names the new holder, "lock lost to apply B (pid ...)")
    a = PgLease(pg_url, "default", ttl=1.0)
    mine = a.acquire("apply")
    a._stop.set()  # frozen: no heartbeat
    assert a._thread is not None
    a._thread.join()

    def expired() -> bool:
        found = a.db.run(lambda conn: read_lease(conn, "default"), what="read")
        return found is not None and found[1]

    wait_for("A's lease to expire", expired)
    b = PgLease(pg_url, "default", ttl=60.0)
    taken = b.acquire("apply")
    try:
        time.sleep(0.1)
        a._beat(mine, threading.Event())  # A wakes: its next heartbeat finds the lease gone
        assert a.lost
        with pytest.raises(LockLost) as lost:
            a.ensure_held()
        assert str(lost.value).startswith(f"lease lost to {taken.describe()}: "), lost.value
        assert lost.value.holder["id"] == taken.id
    finally:
        b.release()
        a.release()
