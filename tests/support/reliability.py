"""Shared machinery of the reliability suites (faults, crashes, races, canaries). No tests here.

The suites drive the real ``reconciler`` command line against the real local provider and
then look at the provider's SQLite file and the lockfile to decide whether the run did the
right thing. The pieces:

* ``write_fleet`` writes a generated set of manifests (many agents, environments, a vault with
  credentials, deployments pinned and following the latest) and returns the addresses.
* ``Provider`` serves the local provider over loopback TCP in a thread of the test process,
  with optional fault injection, behind a ``Tap``: an ASGI middleware that logs every request
  and can run a hook (typically ``os.kill(pid, SIGKILL)``) just before a request reaches the
  provider or just after the provider answered it - the precise kill points of the crash
  matrix.
* ``Zygote`` runs ``reconciler ARGS`` in processes forked from one interpreter that imported
  everything once (an interpreter start costs 1-3 s on the CI machine; a fork a few ms). Each
  run is a real process: it can be SIGKILLed, its stdout and stderr go to files, and a run can
  carry a ``crash`` spec that makes it SIGKILL itself at an exact point of a lockfile write
  (the k-th fsync of a lockfile temp file, a half-written temp file, just before or after the
  rename).
* ``live_owned`` / ``assert_converged`` read the provider database directly (a fault-free
  view) and check "every resource exactly once, no orphans, nothing pending".

Named ``test_*`` only so that it may live beside the suites; pytest collects nothing here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BETA = "managed-agents-2026-04-01"
OWNER_KEY, PROJECT_KEY, ADDRESS_KEY = "managed-by", "reconciler-project", "reconciler-address"

#: Environment variables of the reconciler that a developer's shell may set: never inherited.
RECONCILER_VARS = (
    "RECONCILER_MANIFESTS",
    "RECONCILER_LOCKFILE",
    "RECONCILER_PROJECT",
    "RECONCILER_PROVIDER_URL",
    "RECONCILER_PROVIDER_DB",
    "RECONCILER_BACKEND",
    "RECONCILER_LEASE_TTL",
    "RECONCILER_JOURNAL_ABOVE",
    "RECONCILER_CI_RUN",
    "ANTHROPIC_API_KEY",
    "NO_COLOR",
    "FORCE_COLOR",
    "GITHUB_ACTIONS",
)


#: A vault whose one credential reads its token from ``token.txt`` beside the manifest
#: (the hostile-input and review-safety tests swap that file for FIFOs, devices, ...).
TOKEN_FILE_VAULT = """\
kind: Vault
name: tools
spec:
  credentials:
    - name: tok
      auth:
        type: static_bearer
        mcp_server_url: https://mcp.example.com/mcp
        token: {from_file: token.txt}
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without reconciler settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in RECONCILER_VARS}
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


# --- generated manifests -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    """A generated set of manifests: where they are, their addresses, the secrets they read."""

    root: Path
    addresses: tuple[str, ...]
    #: environment variables the credentials read (name -> value)
    env: dict[str, str]
    #: memory store address -> its seed memories (path -> content)
    seeds: dict[str, dict[str, str]] = field(default_factory=dict)
    #: skill address -> its directory's files (path -> content)
    skills: dict[str, dict[str, str]] = field(default_factory=dict)


def write_fleet(
    root: Path,
    *,
    agents: int = 40,
    environments: int = 8,
    credentials: int = 4,
    deployments: int = 6,
    memory_stores: int = 0,
    skills: int = 0,
    tag: str = "",
) -> Fleet:
    """Write manifests under ``root`` (several files, multi-document) and return the ``Fleet``.

    Deployment ``i`` runs agent ``i`` in environment ``i % environments`` with the vault; odd
    ones pin version 1, even ones follow the latest; with memory stores, even ones mount store
    ``i % memory_stores``. Each memory store has two seed memories (``Fleet.seeds``). Each
    skill is a directory ``skills/skill-I/`` of three files (``Fleet.skills``); agent ``i``
    with ``i % 3 == 1`` follows skill ``i % skills`` (``{ref}``). ``tag`` changes every
    agent's system prompt and every skill's files (an update of every agent, a new version
    of every skill, when it changes).
    """
    root.mkdir(parents=True, exist_ok=True)
    addresses: list[str] = []
    env: dict[str, str] = {}
    envs = []
    for i in range(environments):
        networking = (
            f"    networking: {{type: limited, allowed_hosts: [h{i}.example.com], "
            "allow_package_managers: true}\n"
            if i % 2
            else ""
        )
        envs.append(
            f"kind: Environment\nname: env-{i}\nspec:\n  description: environment {i}\n"
            f"  config:\n    type: cloud\n{networking}"
            f"    packages: {{pip: [pkg{i}, 'lib{i}==1.{i}']}}\n"
            f"  metadata: {{team: t{i % 3}}}\n"
        )
        addresses.append(f"environment.env-{i}")
    agent_docs = []
    for i in range(agents):
        extra = "  tools: [{type: agent_toolset_20260401}]\n" if i % 3 == 0 else ""
        agent_docs.append(
            f"kind: Agent\nname: agent-{i:02d}\nspec:\n  model: claude-sonnet-4-6\n"
            f"  system: You are agent {i}.{tag}\n  description: agent number {i}\n{extra}"
            f"  metadata: {{idx: '{i}'}}\n"
        )
        addresses.append(f"agent.agent-{i:02d}")
    vault = ""
    if credentials:
        creds = []
        for j in range(credentials):
            var = f"REL_TOKEN_{j}"
            env[var] = f"token-value-{j}-{os.getpid()}"
            creds.append(
                f"    - name: c{j}\n      auth:\n        type: static_bearer\n"
                f"        mcp_server_url: https://mcp{j}.example.com/mcp\n"
                f"        token: {{from_env: {var}}}\n"
            )
            addresses.append(f"vault.keys.credential.c{j}")
        vault = "kind: Vault\nname: keys\nspec:\n  display_name: Keys\n  credentials:\n" + "".join(
            creds
        )
        addresses.append("vault.keys")
    stores = []
    seeds: dict[str, dict[str, str]] = {}
    for i in range(memory_stores):
        memories = {f"/notes/store-{i}.md": f"Notes of store {i}.", "/style.md": f"Style {i}."}
        seeds[f"memory_store.store-{i}"] = memories
        items = "".join(
            f"    - {{path: '{path}', content: '{content}'}}\n"
            for path, content in memories.items()
        )
        stores.append(
            f"kind: MemoryStore\nname: store-{i}\nspec:\n  description: memory store {i}\n"
            f"  metadata: {{idx: '{i}'}}\n  memories:\n{items}"
        )
        addresses.append(f"memory_store.store-{i}")
    skill_docs = []
    skill_files: dict[str, dict[str, str]] = {}
    shutil.rmtree(root / "skills", ignore_errors=True)
    for i in range(skills):
        files = {
            "SKILL.md": f"---\nname: skill-{i}\ndescription: skill number {i}\n---\nUse it.\n",
            "notes.md": f"Notes of skill {i}.{tag}\n",
            "tools/run.py": f"print({i})\n",
        }
        skill_files[f"skill.skill-{i}"] = files
        for rel, content in files.items():
            path = root / "skills" / f"skill-{i}" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        skill_docs.append(f"kind: Skill\nname: skill-{i}\nspec:\n  source: skills/skill-{i}\n")
        addresses.append(f"skill.skill-{i}")
    if skills:
        for i in range(1, agents, 3):
            agent_docs[i] += f"  skills: [{{ref: skill-{i % skills}}}]\n"
    deps = []
    for i in range(deployments):
        agent = f"agent-{i % max(agents, 1):02d}"
        pin = f"{{ref: {agent}, version: 1}}" if i % 2 else agent
        vaults = "  vaults: [keys]\n" if credentials else ""
        mount = (
            f"  resources: [{{memory_store: store-{i % memory_stores}, access: read_write}}]\n"
            if memory_stores and i % 2 == 0
            else ""
        )
        deps.append(
            f"kind: Deployment\nname: dep-{i}\nspec:\n  agent: {pin}\n"
            f"  environment: env-{i % max(environments, 1)}\n{vaults}{mount}"
            "  initial_events:\n    - type: user.message\n"
            f"      content: [{{type: text, text: 'run {i}'}}]\n"
        )
        addresses.append(f"deployment.dep-{i}")
    half = len(agent_docs) // 2
    files = {
        "agents/a.yaml": agent_docs[:half],
        "agents/b.yml": agent_docs[half:],
        "environments.yaml": envs,
        "vaults.yaml": [vault] if vault else [],
        "memory_stores.yaml": stores,
        "skills.yaml": skill_docs,
        "deployments.yaml": deps,
    }
    for name, docs in files.items():
        path = root / name
        if docs:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("---\n".join(docs), encoding="utf-8")
        elif path.exists():
            path.unlink()
    return Fleet(root, tuple(sorted(addresses)), env, seeds, skill_files)


class FleetWorkspace:
    """A fleet's manifests (``write_fleet``), the lockfile and the provider database in one
    folder, with the environment the fleet's secrets need: what a crash test applies."""

    def __init__(self, root: Path, size: dict[str, int]) -> None:
        self.root = root
        self.size = size
        self.fleet: Fleet = write_fleet(root / "manifests", **size)
        self.env = clean_env(**self.fleet.env)
        self.db = root / ".reconciler" / "provider.db"
        self.lockfile = root / "state" / "reconciler.lock"


# --- the provider, served and tapped -------------------------------------------------------------

Hook = Callable[[str, str], "bool | None"]


class Tap:
    """ASGI middleware in front of the local provider: logs requests, runs kill hooks.

    ``before(method, path)`` runs when a ``/v1/`` request arrives, before the provider sees
    it; returning True drops the request (the provider never runs it). ``after(method, path)``
    runs when the provider has answered (its write is committed) and before the answer is sent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.before: Hook | None = None
        self.after: Hook | None = None
        #: (method, path) of every /v1/ request, in arrival order
        self.requests: list[tuple[str, str]] = []
        #: (method, path, status) of every answered /v1/ request
        self.answers: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    @property
    def state(self) -> Any:  # BackgroundServer.stop closes SSE streams through app.state
        return self.app.state

    def count(self, method: str, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and regex.search(p))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        with self._lock:
            self.requests.append((method, path))
        if self.before is not None and self.before(method, path):
            # dropped: the provider never sees it (the client is gone; answer for uvicorn)
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return

        async def tapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                with self._lock:
                    self.answers.append((method, path, message["status"]))
                if self.after is not None:
                    self.after(method, path)
            await send(message)

        await self.app(scope, receive, tapped)


@contextmanager
def provider(
    db: Path, faults: Any = None, *, wrap: Callable[[Any], Any] | None = None
) -> Iterator[tuple[str, Tap]]:
    """Serve the local provider on ``db`` over loopback TCP; yield ``(url, tap)``.

    Args:
        faults: a ``FaultConfig`` (latency, fault rate, rate limit, seed) or None.
        wrap: an extra ASGI middleware factory placed between the tap and the provider.
    """
    from reconciler.provider.local import BackgroundServer, create_app

    db.parent.mkdir(parents=True, exist_ok=True)
    app = create_app(db, faults) if faults is not None else create_app(db)
    tap = Tap(wrap(app) if wrap is not None else app)
    with BackgroundServer(tap) as server:
        yield server.url, tap


def kill_hook(
    get_pid: Callable[[], int | None],
    method: str,
    pattern: str,
    nth: int,
    *,
    drop: bool = False,
    fired: threading.Event | None = None,
) -> Hook:
    """A tap hook that SIGKILLs ``get_pid()`` at the ``nth`` matching request (1-based).

    With ``drop`` (for a ``before`` hook) the request is also dropped, so the provider never
    executes it: the process died before its create reached the provider.
    """
    regex = re.compile(pattern)
    seen = 0
    lock = threading.Lock()

    def hook(m: str, p: str) -> bool:
        nonlocal seen
        if m != method or not regex.search(p):
            return False
        with lock:
            seen += 1
            hit = seen == nth
        if not hit:
            return False
        pid = get_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if fired is not None:
            fired.set()
        return drop

    return hook


#: Creates: a POST to a collection (credentials live under their vault).
CREATE_PATH = (
    r"^/v1/(agents|environments|vaults|deployments|memory_stores|skills"
    r"|vaults/[^/]+/credentials)$"
)
#: A seed memory's create (one request per seed, after its store's create).
SEED_PATH = r"^/v1/memory_stores/[^/]+/memories$"
#: a skill's create (an upload) and its new version (another upload)
SKILL_PATH = r"^/v1/skills$"
SKILL_VERSION_PATH = r"^/v1/skills/[^/]+/versions$"
ARCHIVE_PATH = r"/archive$"


# --- forked runs of the command line --------------------------------------------------------------

ZYGOTE_SOURCE = textwrap.dedent(
    r"""
    import json, os, signal, sys

    import reconciler.cli                      # everything a run needs, imported once
    import reconciler.provider.local           # noqa: F401  (the embedded provider)
    import reconciler.state.lockfile as lockfile_module

    def install_crash(spec):
        # Make this process SIGKILL itself at one exact point of a lockfile write.
        point, nth = spec["point"], int(spec["nth"])
        name = spec.get("lockfile_name", "reconciler.lock")
        prefix = name + ".tmp-"   # the lockfile's temp files (not the lock's, not the backup's)
        count = [0]

        def due():
            count[0] += 1
            return count[0] == nth

        # ``signal``: SIGKILL by default; SIGTERM or SIGINT make the point an interruption
        # the process handles (the write it was in goes on whole)
        sig = getattr(signal, spec.get("signal", "SIGKILL"))

        def die():
            os.kill(os.getpid(), sig)

        def is_lock_temp(fd):
            try:
                return os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(prefix)
            except OSError:
                return False

        if point == "fsync":          # temp file fully written, not yet fsynced or renamed
            real = os.fsync
            def fsync(fd):
                if is_lock_temp(fd) and due():
                    die()
                return real(fd)
            os.fsync = fsync
        elif point == "torn":          # temp file half written
            real_write = os.write
            def write(fd, data):
                if is_lock_temp(fd) and due():
                    real_write(fd, bytes(data)[: max(1, len(data) // 2)])
                    die()
                return real_write(fd, data)
            os.write = write
        elif point == "enospc":        # the disk is full from the nth lockfile write on
            import errno
            real_write = os.write
            full = [False]
            def is_state_file(fd):
                try:
                    target = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
                except OSError:
                    return False
                return target.startswith(prefix) or target == name + ".journal"
            def write(fd, data):
                if is_state_file(fd) and (full[0] or due()):
                    full[0] = True
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_write(fd, data)
            os.write = write
        elif point == "journal-torn":  # half of an append to the lockfile's journal written
            real_write = os.write
            def is_journal(fd):
                try:
                    return os.readlink(f"/proc/self/fd/{fd}").endswith(name + ".journal")
                except OSError:
                    return False
            def write(fd, data):
                if is_journal(fd) and due():
                    real_write(fd, bytes(data)[: max(1, len(data) // 2)])
                    die()
                return real_write(fd, data)
            os.write = write
        elif point == "pg-mid-write":  # inside a PostgreSQL state transaction, rows written
            from reconciler.state.postgres import store as pg_store
            real_history = pg_store.PgStateStore._write_history
            def write_history(self, *a, **k):
                if due():
                    die()
                return real_history(self, *a, **k)
            pg_store.PgStateStore._write_history = write_history
        elif point in ("pg-before-commit", "pg-after-commit"):
            # before a state transaction begins (the outcomes it would record are lost), or
            # just after it committed (before the run goes on): the database's equivalents of
            # the lockfile's before-rename and after-rename
            from reconciler.state.postgres import store as pg_store
            real_write_tx = pg_store.PgStateStore._write
            def write_tx(self, *a, **k):
                if point == "pg-before-commit" and due():
                    die()
                result = real_write_tx(self, *a, **k)
                if point == "pg-after-commit" and due():
                    die()
                return result
            pg_store.PgStateStore._write = write_tx
        elif point == "pg-mid-rows":   # a grouped outcome: its entries written, not its intents
            from reconciler.state.postgres import store as pg_store
            real_rows = pg_store.PgStateStore._write_rows
            def write_rows(self, conn, table, column, changes, *a, **k):
                result = real_rows(self, conn, table, column, changes, *a, **k)
                grouped = table == "reconciler_resources" and len(changes) >= 2
                if grouped and due():
                    die()
                return result
            pg_store.PgStateStore._write_rows = write_rows
        elif point == "pg-heartbeat":  # inside a lease renewal's transaction, row updated
            from reconciler.state.postgres import db as pg_db
            real_run = pg_db.Database.run
            def run_db(self, work, *a, what, **k):
                if what == "renew the apply lease" and due():
                    def dying(conn):
                        with conn.transaction():
                            work(conn)
                            die()
                    return real_run(self, dying, *a, what=what, **k)
                return real_run(self, work, *a, what=what, **k)
            pg_db.Database.run = run_db
        elif point in ("before-rename", "after-rename"):
            real_replace = os.replace
            def replace(src, dst, *a, **k):
                hit = (os.path.basename(str(src)).startswith(prefix)
                       and os.path.basename(str(dst)) == name and due())
                if hit and point == "before-rename":
                    die()
                result = real_replace(src, dst, *a, **k)
                if hit:
                    die()
                return result
            os.replace = replace
        elif point == "manifest-written":  # import: the nth manifest file just renamed in
            real_replace = os.replace
            def replace(src, dst, *a, **k):
                result = real_replace(src, dst, *a, **k)
                base = os.path.basename(str(src))
                if base.startswith(".") and base.endswith(".yaml.tmp") and due():
                    die()
                return result
            os.replace = replace
        elif point == "before-send":   # intent recorded, the create never leaves the process
            import re
            from reconciler.provider.client import ProviderClient
            creates = re.compile(spec["pattern"])
            # every attempt passes here, whichever transport sends it (the client calls its
            # transport directly, not httpx.AsyncClient.send)
            real_exchange = ProviderClient._exchange
            async def exchange(self, request):
                if request.method == "POST" and creates.search(request.url.path) and due():
                    die()
                return await real_exchange(self, request)
            ProviderClient._exchange = exchange
        else:
            raise SystemExit(f"unknown crash point {point}")

    def run(req):
        pid = os.fork()
        if pid:
            return pid
        try:
            os.setsid()
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.stdin = open(os.devnull)
            if req.get("crash"):
                install_crash(req["crash"])
            code = 0
            try:
                reconciler.cli.main(req["args"], prog_name="reconciler")
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 70
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "run":
            sys.stdout.flush()
            print(json.dumps({"pid": run(req)}), flush=True)
        elif req["op"] == "wait":
            _, status = os.waitpid(req["pid"], 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(json.dumps({"code": code}), flush=True)
        elif req["op"] == "poll":
            pid, status = os.waitpid(req["pid"], os.WNOHANG)
            if pid == 0:
                print(json.dumps({"code": None}), flush=True)
            else:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                print(json.dumps({"code": code}), flush=True)
    """
)


@dataclass
class Run:
    """One forked ``reconciler`` process."""

    zygote: Zygote
    pid: int
    out: Path
    err: Path
    started: float = field(default_factory=time.monotonic)
    code: int | None = None
    ended: float | None = None

    def wait(self, timeout: float = 120.0) -> int:
        """Wait for the process to end; its exit code (negative: killed by that signal)."""
        if self.code is None:
            deadline = time.monotonic() + timeout
            while True:
                if self.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    self.kill()
                    self.code = self.zygote.request({"op": "wait", "pid": self.pid})["code"]
                    raise AssertionError(f"reconciler run {self.pid} hung; killed it")
                time.sleep(0.02)
        assert self.code is not None
        return self.code

    def poll(self) -> int | None:
        """The exit code if the process ended (it is then reaped), else None."""
        if self.code is None:
            code = self.zygote.request({"op": "poll", "pid": self.pid})["code"]
            if code is not None:
                self.code, self.ended = code, time.monotonic()
        return self.code

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")


class Zygote:
    """A pre-imported interpreter that forks one process per ``reconciler`` run."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        logdir.mkdir(parents=True, exist_ok=True)
        self._n = 0
        self._lock = threading.Lock()
        self._errlog = open(logdir / "zygote.err", "wb")  # noqa: SIM115 - closed by close()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE_SOURCE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errlog,
            cwd=str(REPO),
            env=clean_env(),
            text=True,
            bufsize=1,
        )
        assert self._proc.stdout is not None
        ready = self._proc.stdout.readline()
        if not ready:
            raise RuntimeError((logdir / "zygote.err").read_text())

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the zygote died: " + (self.logdir / "zygote.err").read_text())
        answer: dict[str, Any] = json.loads(line)
        return answer

    def start(
        self,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        crash: dict[str, Any] | None = None,
    ) -> Run:
        """Start ``reconciler ARGS`` in ``cwd``; returns at once."""
        with self._lock:
            self._n += 1
            n = self._n
        out, err = self.logdir / f"run{n}.out", self.logdir / f"run{n}.err"
        pid = self.request(
            {
                "op": "run",
                "args": args,
                "cwd": str(cwd),
                "env": env if env is not None else clean_env(),
                "stdout": str(out),
                "stderr": str(err),
                "crash": crash,
            }
        )["pid"]
        return Run(self, pid, out, err)

    def run(
        self,
        args: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        timeout: float = 180.0,
        crash: dict[str, Any] | None = None,
    ) -> Run:
        """Run ``reconciler ARGS`` to the end."""
        run = self.start(args, cwd=cwd, env=env, crash=crash)
        run.wait(timeout)
        return run

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._errlog.close()


_SHARED: list[Zygote] = []


def shared_zygote() -> Zygote:
    """One zygote for the whole test session (its start costs seconds); closed at exit."""
    if not _SHARED:
        import atexit
        import shutil
        import tempfile

        logdir = Path(tempfile.mkdtemp(prefix="reconciler-zygote-"))
        _SHARED.append(Zygote(logdir))

        def close() -> None:
            _SHARED[0].close()
            shutil.rmtree(logdir, ignore_errors=True)

        atexit.register(close)
    return _SHARED[0]


# --- what is live ---------------------------------------------------------------------------------


@dataclass
class Served:
    """A ``reconciler provider serve`` process, as ``served_process`` started it."""

    proc: subprocess.Popen[str]
    #: the URL its "listening on" line names
    url: str
    #: its stderr up to and including that line (warnings, the banner)
    banner: str


@contextmanager
def served_process(*flags: str, cwd: Path | None = None) -> Iterator[Served]:
    """``reconciler provider serve --port 0 FLAGS`` as a user starts it, once it says where it
    listens; stopped with Ctrl-C (then killed) at the end if it is still running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "provider", "serve", "--port", "0", *flags],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:
            lines.append(line)
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                yield Served(proc, found.group(1), "".join(lines))
                break
        else:
            raise AssertionError(f"provider serve printed no URL: {''.join(lines)!r}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # only the server this test started, by its pid
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


@contextmanager
def cli_process(
    args: list[str], *, env: dict[str, str], cwd: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """``python -m reconciler.cli ARGS`` with its output piped; killed if still running after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def interrupt(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    """Ctrl-C: SIGINT, then wait for the process to end; its (stdout, stderr)."""
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=timeout)


def owned_objects(
    db: Path, project: str, *, archived: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Objects in the provider database tagged for ``project``, by address.

    Reads the SQLite file directly: a fault-free view, with no HTTP in the way. A credential
    of an archived vault counts as archived (archiving a vault takes its credentials along);
    sessions (rollout checks and their records) are not resources and are left out.

    Args:
        archived: also count archived objects.
    """
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not db.exists():
        return found
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT id, kind, parent_id, archived, data FROM objects").fetchall()
    finally:
        con.close()
    dead_vaults = {oid for oid, kind, _, is_archived, _ in rows if kind == "vault" and is_archived}
    for _oid, kind, parent_id, is_archived, data in rows:
        if (is_archived or parent_id in dead_vaults) and not archived:
            continue
        if kind == "session":  # rollout check sessions and records: tagged, no address
            continue
        obj = json.loads(data)
        md = obj.get("metadata") or {}
        if md.get(OWNER_KEY) == "reconciler" and md.get(PROJECT_KEY) == project:
            found[md.get(ADDRESS_KEY, "?")].append({"kind": kind, **obj})
    return found


def provider_snapshot(db: Path) -> list[tuple[Any, ...]]:
    """Every stored row (objects, agent versions), for before/after equality."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "SELECT id, kind, parent_id, archived, data, secrets FROM objects ORDER BY seq"
        ).fetchall()
        rows += con.execute(
            "SELECT agent_id, version, data FROM agent_versions ORDER BY agent_id, version"
        ).fetchall()
    finally:
        con.close()
    return rows


def assert_converged(
    lockfile: Path,
    db: Path,
    project: str,
    addresses: tuple[str, ...] | list[str],
    *,
    ever_once: bool = True,
    backend: str | None = None,
    seeds: Mapping[str, Mapping[str, str]] | None = None,
    skills: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Every address exactly once live, recorded in the lockfile; no orphan, nothing pending.

    Args:
        ever_once: also require that no address was ever created twice (counting archived
            objects): a lost response must be adopted, not created again and archived.
        backend: the state's PostgreSQL URL (None: the lockfile at ``lockfile``).
        seeds: memory store address -> its seed memories (``Fleet.seeds``): each is in the
            live store with its seed content, written once.
        skills: skill address -> its files (``Fleet.skills``). A skill carries no tags, so
            it is counted by its slug (the address's name): exactly one live skill per slug
            (no twin), no live skill the manifests do not declare, no two versions of one
            skill holding the same files (no version uploaded twice), and the live latest
            holds the manifest's files and is one the state records.
    """
    from reconciler.state import open_location

    location = open_location(backend, lockfile, project)  # the lockfile, or the database
    try:
        lf = location.read()
    finally:
        location.close()
    _assert_skills(lf, db, [a for a in addresses if a.startswith("skill.")], skills)
    addresses = [a for a in addresses if not a.startswith("skill.")]
    live = owned_objects(db, project)
    twins = {a: [o["id"] for o in objs] for a, objs in live.items() if len(objs) > 1}
    assert not twins, f"live twins: {twins}"
    missing = sorted(set(addresses) - set(live))
    assert not missing, f"not live: {missing}"
    orphans = sorted(set(live) - set(addresses))
    assert not orphans, f"owned live objects no manifest declares: {orphans}"
    tagged = {a for a in lf.resources if not a.startswith("skill.")}
    assert tagged == set(addresses), (
        f"lockfile differs: missing {sorted(set(addresses) - tagged)}, "
        f"extra {sorted(tagged - set(addresses))}"
    )
    wrong = {
        a: (lf.resources[a].id, live[a][0]["id"])
        for a in addresses
        if lf.resources[a].id != live[a][0]["id"]
    }
    assert not wrong, f"lockfile ids differ from the live objects: {wrong}"
    assert not lf.pending, f"pending intents left: {sorted(lf.pending)}"
    if ever_once:
        every = owned_objects(db, project, archived=True)
        created_twice = {a: [o["id"] for o in objs] for a, objs in every.items() if len(objs) > 1}
        assert not created_twice, f"created more than once (twins archived since): {created_twice}"
    for address, wanted in (seeds or {}).items():
        if address not in addresses:
            continue
        held = store_memories(db, live[address][0]["id"])
        missing_seeds = sorted(set(wanted) - set(held))
        assert not missing_seeds, f"{address}: seed memories never written: {missing_seeds}"
        for path, content in wanted.items():
            assert held[path] == (content, 1), (address, path, held[path])


def provider_skills(db: Path) -> dict[str, list[dict[str, Any]]]:
    """Live skills by slug (their versions' ``name``): ``{"id", "latest", "versions": {version
    id: {path: content}}}`` each, paths without the skill's top directory. Read from the
    provider's SQLite file directly."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "SELECT id, kind, parent_id, data FROM objects WHERE kind IN ('skill', 'skill_version')"
        ).fetchall()
        files = con.execute("SELECT owner_id, path, content FROM files").fetchall()
    finally:
        con.close()
    held: dict[str, dict[str, str]] = defaultdict(dict)
    for owner, path, content in files:
        held[str(owner)][str(path).split("/", 1)[-1]] = bytes(content).decode()
    skills = {oid: json.loads(data) for oid, kind, _, data in rows if kind == "skill"}
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_skill: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    names: dict[str, str] = {}
    for oid, kind, parent, data in rows:
        if kind == "skill_version" and parent in skills:
            by_skill[str(parent)][str(oid)] = held[str(oid)]
            names[str(parent)] = str(json.loads(data).get("name"))
    for sid, skill in skills.items():
        item = {"id": sid, "latest": skill.get("latest_version_id"), "versions": by_skill[sid]}
        out[names.get(sid, "?")].append(item)
    return out


def _assert_skills(
    lf: Any,
    db: Path,
    addresses: list[str],
    files: Mapping[str, Mapping[str, str]] | None,
) -> None:
    """The skill half of ``assert_converged`` (see its ``skills``)."""
    live = provider_skills(db) if db.exists() else {}
    slugs = {a.split(".", 1)[1]: a for a in addresses}
    twins = {slug: [s["id"] for s in found] for slug, found in live.items() if len(found) > 1}
    assert not twins, f"live twin skills (one slug, several skills): {twins}"
    orphans = sorted(set(live) - set(slugs))
    assert not orphans, f"live skills no manifest declares: {orphans}"
    missing = sorted(set(slugs) - set(live))
    assert not missing, f"skills not live: {missing}"
    recorded = {a for a in lf.resources if a.startswith("skill.")}
    assert recorded == set(addresses), (recorded, addresses)
    for slug, address in slugs.items():
        (skill,) = live[slug]
        entry = lf.resources[address]
        assert entry.id == skill["id"], (address, entry.id, skill["id"])
        contents = [json.dumps(v, sort_keys=True) for v in skill["versions"].values()]
        assert len(contents) == len(set(contents)), (
            f"{address}: a version uploaded twice (two versions hold the same files): "
            f"{sorted(skill['versions'])}"
        )
        assert skill["latest"] in entry.uploaded, (address, skill["latest"], entry.uploaded)
        if files is not None and address in files:
            assert skill["versions"][skill["latest"]] == dict(files[address]), address


def store_memories(db: Path, store_id: str) -> dict[str, tuple[str, int]]:
    """A memory store's memories: path -> (content, how many times a memory was created at
    that path). Read from the provider's SQLite file directly."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("SELECT path, data FROM memories WHERE store_id = ?", (store_id,))
        memories = {str(path): json.loads(data) for path, data in rows.fetchall()}
        versions = con.execute(
            "SELECT data FROM memory_versions WHERE store_id = ? AND operation = 'created'",
            (store_id,),
        ).fetchall()
    finally:
        con.close()
    created: dict[str, int] = defaultdict(int)
    for (data,) in versions:
        created[str(json.loads(data).get("path"))] += 1
    return {path: (str(m.get("content")), created[path]) for path, m in memories.items()}


async def seed_noise(db: Path, project: str) -> None:
    """Objects the reconciler must leave alone: unmanaged ones, and another project's."""
    from reconciler.provider import embedded_client

    async with embedded_client(db) as c:
        await c.agents.create({"name": "agent-00", "model": "claude-sonnet-4-6"})
        await c.agents.create(
            {"name": "hand-made", "model": "claude-haiku-4-5", "metadata": {"owner": "someone"}}
        )
        await c.agents.create(
            {
                "name": "agent-01",
                "model": "claude-sonnet-4-6",
                "metadata": {
                    OWNER_KEY: "reconciler",
                    PROJECT_KEY: project + "-other",
                    ADDRESS_KEY: "agent.agent-01",
                },
            }
        )
        await c.environments.create({"name": "not-ours"})


def writer_zygote(*, store_options: str = "", addresses: int = 400) -> str:
    """The source of a helper process for kill -9 tests of state writes: it imports once,
    then on each ``fork`` line forks a writer that commits to ``sys.argv[1]`` forever (one
    agent entry per commit, over ``addresses`` addresses), and on ``reap PID`` reports its
    status. Forking avoids paying interpreter start-up per kill.

    Args:
        store_options: extra ``StateStore`` arguments, e.g. ``"journal_above=0"``.
        addresses: how many addresses the writes cycle through.
    """
    return textwrap.dedent(
        f"""
        import os, sys, traceback
        from reconciler.state import LockEntry, StateStore, json_digest, utc_timestamp

        path = sys.argv[1]

        def write_forever():
            store = StateStore(path, {store_options})
            store.load()
            now = utc_timestamp()
            i = store.lockfile.serial
            while True:
                i += 1
                entry = LockEntry(kind="agent", id=f"agent_{{i}}", version=i,
                                  spec_digest=json_digest(i), created_at=now, updated_at=now)
                store.commit(lambda lf: lf.with_entry(f"agent.a{{i % {addresses}:03d}}", entry))

        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "fork":
                pid = os.fork()
                if pid == 0:
                    try:
                        write_forever()
                    except BaseException:
                        traceback.print_exc()
                        os._exit(3)
                print(pid, flush=True)
            elif line.startswith("reap"):
                _, status = os.waitpid(int(line.split()[1]), 0)
                print(status, flush=True)
        """
    )
