"""A throwaway PostgreSQL server for the state-backend tests: real, never a mock.

``PostgresServer`` runs ``initdb`` and ``pg_ctl`` in a temporary folder, listening on a free
port of 127.0.0.1 (and a Unix socket in that folder), with durability switched off (tests
need no crash safety from the server itself). PostgreSQL refuses to run as root: when the
tests run as root (CI), the server runs as the ``postgres`` system user that Debian's
``postgresql`` package creates. ``.ci/run`` installs that package when the binaries are
missing.

Without binaries the PostgreSQL tests are skipped with the reason, except under CI (``CI``
set), where they fail: a CI run must never pass by skipping them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SEARCH = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)


def find_binary(name: str) -> str | None:
    for folder in SEARCH:
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which(name)


def missing_reason() -> str | None:
    """Why no server can be started here (None when one can)."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if find_binary(name) is None:
            return (
                f"PostgreSQL server binaries not found ({name}); install Debian's "
                "`postgresql` package (apt-get install -y postgresql)"
            )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One cluster in a temp folder; ``url(db)`` connects as the superuser ``postgres``."""

    def __init__(self) -> None:
        # as root the server runs as `postgres`, who must reach the folder: /tmp, not a
        # TMPDIR under a private home
        where = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="reconciler-pg-", dir=where))
        self.data = self.root / "data"
        self.port = 0
        self.log = self.root / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o755)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            list(args),
            user=self._user,
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def start(self) -> PostgresServer:
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        assert initdb and pg_ctl
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        last = ""
        for _ in range(5):  # a free port can be taken between our probe and the server's bind
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            done = self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options,
                             "-w", "-t", "60", "start", check=False)  # fmt: skip
            if done.returncode == 0:
                return self
            last = done.stdout + done.stderr + self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def stop(self) -> None:
        pg_ctl = find_binary("pg_ctl")
        if pg_ctl and self.data.exists():
            self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(sql.encode())
            return list(cur.fetchall()) if cur.description else []

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def new_database_for_a_new_role(self) -> str:
        """A fresh empty database, as a new login role with no privileges of its own sees it
        (it may connect and read, not create tables); returns its URL."""
        role = "r_" + uuid.uuid4().hex[:8]
        self.execute(f"CREATE ROLE {role} LOGIN")
        return self.new_database().replace("postgresql://postgres@", f"postgresql://{role}@")

    def terminate(self, dbname: str, application: str = "reconciler") -> int:
        """Cut every connection of ``application`` to ``dbname`` (a dropped connection)."""
        rows = self.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{dbname}' AND application_name = '{application}'"
        )
        return int(str(rows[0][0]))


def wait_for(what: str, ready: object, timeout: float = 60.0) -> None:
    """Poll the callable ``ready`` until it returns true."""
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"never {what}")
        time.sleep(0.05)
