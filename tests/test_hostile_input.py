"""Hostile and broken input (issue 11, items 8 and 9): real special files, real obstacles.

* Unbounded reads: a manifest or a ``from_file`` secret that is a FIFO, ``/dev/zero``,
  ``/dev/urandom`` or a 1 GiB sparse file is refused by name, before a byte is read (a FIFO
  is never opened, so nothing waits for a writer). These run as real processes with a
  generous ``timeout`` only so that a regression fails instead of hanging the suite.
* Environmental errors: a locked, damaged or unwritable provider database, symbolic link
  loops, ``--project ""``, a non-UTF-8 ``from_env`` value, a read-only ``state/`` folder and a
  lockfile write that the disk refuses each end with one sentence naming the file or the
  variable and what to do, exit 1, never "This is a bug".

Tests run as root in CI, where a 0555 folder stops nothing. A read-only folder is made real
by running the CLI without the capabilities that let root ignore file modes
(``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``, dropped from the child's bounding set), so
the kernel refuses the write as it would for any user.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.reliability import TOKEN_FILE_VAULT as VAULT
from support.reliability import clean_env, owned_objects, provider_snapshot

from reconciler.cli import main

AGENT = "kind: Agent\nname: coder\nspec: {model: claude-sonnet-4-6, system: Be brief.}\n"
ENV_VAULT = VAULT.replace("{from_file: token.txt}", "{from_env: HOSTILE_TOKEN}")
#: a guard against a hang, never an assertion about time
HANG_GUARD = 120


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with an agent and a vault whose token is ``manifests/token.txt``; cwd."""
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests/agent.yaml").write_text(AGENT)
    (tmp_path / "manifests/vault.yaml").write_text(VAULT)
    (tmp_path / "manifests/token.txt").write_text("hostile-test-token\n")
    monkeypatch.chdir(tmp_path)
    for name in ("RECONCILER_PROJECT", "RECONCILER_PROVIDER_URL", "RECONCILER_MANIFESTS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def run(
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process (a regression that hangs fails at HANG_GUARD)."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli", *args],
        check=False,
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        preexec_fn=preexec,
    )


def assert_one_sentence(stderr: str, *fragments: str) -> None:
    """One ``Error:`` line (or a manifest error block), naming what it must, no bug report."""
    assert stderr.startswith("Error: "), stderr
    assert "Traceback" not in stderr and "This is a bug" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    for fragment in fragments:
        assert fragment in stderr, (fragment, stderr)


# --- item 8: unbounded reads ------------------------------------------------------------------


def test_a_fifo_manifest_is_refused_without_waiting_for_a_writer(work: Path) -> None:
    os.mkfifo(work / "manifests/piped.yaml")
    done = run(["validate"], work)
    assert done.returncode == 1
    assert_one_sentence(done.stderr, "manifests/piped.yaml:1:1", "FIFO", "regular files")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_manifest_is_refused_unread(work: Path, device: str) -> None:
    (work / "manifests/endless.yaml").symlink_to(device)
    done = run(["validate"], work)
    assert done.returncode == 1
    assert_one_sentence(done.stderr, "manifests/endless.yaml:1:1", "character device")
    given = run(["-f", device, "validate"], work)
    assert given.returncode == 1
    assert_one_sentence(given.stderr, f"{device}:1:1", "character device")


def test_fmt_leaves_a_fifo_manifest_unread(work: Path) -> None:
    os.mkfifo(work / "manifests/piped.yaml")
    done = run(["fmt", "--check"], work)
    assert done.returncode == 1
    assert "manifests/piped.yaml: this file is a FIFO (named pipe)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_sparse_gigabyte_manifest_is_refused_by_its_size(work: Path) -> None:
    huge = work / "manifests/huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)  # a real sparse file: one GiB, no disk used
    done = run(["validate"], work)
    assert done.returncode == 1
    assert_one_sentence(done.stderr, "manifests/huge.yaml:1:1", "larger than 4.0 MiB", "1.0 GiB")


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom", "sparse"])
def test_a_hostile_from_file_secret_is_refused_by_name(work: Path, kind: str) -> None:
    token = work / "manifests/token.txt"
    token.unlink()
    if kind == "fifo":
        os.mkfifo(token)
        expected = "FIFO"
    elif kind == "sparse":
        with open(token, "wb") as f:
            f.truncate(1 << 30)
        expected = "larger than 1.0 MiB"
    else:
        token.symlink_to(kind)
        expected = "outside the repository"  # confinement refuses it before any read
    done = run(["plan"], work)
    assert done.returncode == 1
    assert_one_sentence(done.stderr, "manifests/vault.yaml:9:", "secret file", expected)
    assert "hostile-test-token" not in done.stdout + done.stderr
    assert not (work / "state").exists()


def test_a_fifo_or_device_as_lockfile_or_saved_plan_is_refused_unread(work: Path) -> None:
    os.mkfifo(work / "piped.lock")
    for lockfile in ("piped.lock", "/dev/zero"):
        done = run(["--lockfile", lockfile, "plan"], work)
        assert done.returncode == 1
        assert_one_sentence(done.stderr, f"{lockfile}: not a regular file")
    os.mkfifo(work / "piped-plan.json")
    for plan in ("piped-plan.json", "/dev/urandom"):
        done = run(["apply", plan], work)
        assert done.returncode == 1
        assert_one_sentence(done.stderr, f"{plan}: not a saved plan", "only regular files")


def test_read_limited_stops_a_file_that_grows_past_its_stat(tmp_path: Path) -> None:
    # /proc files say size 0 and then yield bytes: the limit holds while reading, too
    from reconciler.manifest.files import FileRefused, read_limited

    proc_file = Path("/proc/self/maps")
    if not proc_file.exists():
        pytest.skip("needs /proc (Linux): a regular file whose size the stat understates")
    with pytest.raises(FileRefused, match="larger than 16 bytes"):
        read_limited(proc_file, 16)
    regular = tmp_path / "ok.txt"
    regular.write_bytes(b"x" * 16)
    assert read_limited(regular, 16) == b"x" * 16


# --- item 9: the provider database ------------------------------------------------------------


def test_a_locked_provider_database_is_named_not_reported_as_a_bug(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("apply", "--auto-approve").exit_code == 0
    from reconciler.provider.local import store

    monkeypatch.setattr(store, "BUSY_TIMEOUT", 0.2)  # the real wait is 30 s
    holder = sqlite3.connect(work / ".reconciler/provider.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, held
    try:
        result = cli("plan")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert_one_sentence(result.stderr, ".reconciler/provider.db", "locked by another process")


async def test_a_database_locked_mid_run_is_told_at_once_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.errors import ProviderError
    from reconciler.provider import embedded_client
    from reconciler.provider.local import store

    monkeypatch.setattr(store, "BUSY_TIMEOUT", 0.2)
    db = tmp_path / "provider.db"
    async with embedded_client(db) as client:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # taken after the provider opened the file
        try:
            with pytest.raises(ProviderError) as caught:
                await client.environments.create({"name": "py"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert client.stats.retries == 0  # the busy timeout was the wait
    message = str(caught.value)
    assert str(db) in message and "locked by another process" in message
    assert caught.value.status == 503


def _corrupt_pages(db: Path) -> None:
    """Overwrite every page but the first: the file opens (a valid header), its tables do not."""
    data = bytearray(db.read_bytes())
    noise = bytes((i * 151 + 7) % 256 for i in range(4096))
    for start in range(4096, len(data), 4096):
        data[start : start + 4096] = noise[: len(data) - start]
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["pages", "header"])
def test_a_damaged_provider_database_is_one_line_not_pages_of_tracebacks(
    work: Path, damage: str
) -> None:
    assert cli("apply", "--auto-approve").exit_code == 0
    db = work / ".reconciler/provider.db"
    for extra in (db.with_name("provider.db-wal"), db.with_name("provider.db-shm")):
        extra.unlink(missing_ok=True)
    if damage == "pages":
        _corrupt_pages(db)
    else:
        db.write_bytes(b"this is not a database at all\n" * 200)
    done = run(["plan"], work)
    assert done.returncode == 1
    assert_one_sentence(done.stderr, ".reconciler/provider.db", "damaged", "move it away")
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_provider_database_folder_that_is_a_file(work: Path) -> None:
    (work / ".reconciler").write_text("not a folder\n")
    result = cli("plan")
    assert result.exit_code == 1
    assert_one_sentence(result.stderr, ".reconciler is a file", "--provider-db")


def _drop_root_file_powers() -> None:
    """In the child, before exec: lose CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH for good."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _modes_bind(tmp: Path) -> bool:
    """Whether this process is stopped by a folder's mode (not root, or root without DAC)."""
    locked = tmp / "mode-probe"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        (locked / "x").write_text("")
    except PermissionError:
        return True
    finally:
        locked.chmod(0o755)
    return False


def as_plain_user(tmp: Path) -> Callable[[], None] | None:
    """A preexec_fn that makes file modes bind the child, or skip when that is impossible."""
    if _modes_bind(tmp):
        return None
    probe = subprocess.run(
        [sys.executable, "-c", "open('/proc/self/status').read()"],
        check=False,
        preexec_fn=_drop_root_file_powers,
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip("running as root without CAP_SETPCAP: a read-only folder cannot bind root")
    return _drop_root_file_powers


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    folder.chmod(0o555)
    try:
        yield
    finally:
        folder.chmod(0o755)


def test_a_read_only_provider_folder_is_named(work: Path) -> None:
    preexec = as_plain_user(work)
    (work / ".reconciler").mkdir()
    with read_only(work / ".reconciler"):
        fresh = run(["plan"], work, preexec=preexec)
    assert fresh.returncode == 1
    assert_one_sentence(fresh.stderr, ".reconciler/provider.db", "make .reconciler writable")


def test_a_read_only_state_folder_names_the_lockfile_not_a_temp_file(work: Path) -> None:
    preexec = as_plain_user(work)
    assert cli("apply", "--auto-approve").exit_code == 0
    (work / "manifests/agent.yaml").write_text(AGENT.replace("Be brief.", "Be briefer."))
    before = provider_snapshot(work / ".reconciler/provider.db")
    with read_only(work / "state"):
        done = run(["apply", "--auto-approve"], work, preexec=preexec)
    assert done.returncode == 1
    assert_one_sentence(done.stderr, "state/reconciler.lock", "make state writable")
    assert ".tmp" not in done.stderr
    assert provider_snapshot(work / ".reconciler/provider.db") == before


def test_a_state_folder_that_is_a_file(work: Path) -> None:
    (work / "state").write_text("not a folder\n")
    result = cli("apply", "--auto-approve")
    assert result.exit_code == 1
    assert_one_sentence(result.stderr, "state/reconciler.lock", "state is not a folder")


# --- item 9: symbolic link loops, the project, the environment --------------------------------


def test_symbolic_link_loops_are_named(work: Path) -> None:
    loop = work / "manifests/loop.yaml"
    loop.symlink_to(loop)
    result = cli("validate")
    assert result.exit_code == 1
    assert_one_sentence(result.stderr, "manifests/loop.yaml:1:1", "symbolic link loop")
    loop.unlink()

    (work / "spin").symlink_to(work / "spin")
    given = cli("-f", "spin", "validate")
    assert given.exit_code == 1
    assert_one_sentence(given.stderr, "spin:1:1", "symbolic link")

    token = work / "manifests/token.txt"
    token.unlink()
    token.symlink_to(token)
    secret = cli("plan")
    assert secret.exit_code == 1
    assert_one_sentence(secret.stderr, "manifests/token.txt", "symbolic link loop")
    token.unlink()
    token.write_text("hostile-test-token\n")

    db = work / "ring.db"
    db.symlink_to(db)
    database = cli("--provider-db", "ring.db", "plan")
    assert database.exit_code == 1
    assert_one_sentence(database.stderr, "ring.db", "symbolic link loop")


@pytest.mark.parametrize(
    ("project", "fragment"),
    [("", "must not be empty"), ("x" * 600, "600 characters long"), ("a\u202eb", "invisible")],
)
def test_a_bad_project_is_refused_before_anything_is_sent(
    work: Path, project: str, fragment: str
) -> None:
    for args in (["validate"], ["plan"], ["apply", "--auto-approve"]):
        result = cli("--project", project, *args)
        assert result.exit_code == 1, result.output
        assert "Invalid value for '--project'" in result.stderr, result.stderr
        assert fragment in result.stderr
        assert "This is a bug" not in result.stderr
    assert not (work / ".reconciler").exists()  # the provider was never opened
    assert not (work / "state").exists()


def test_a_non_utf8_from_env_value_is_named(work: Path) -> None:
    (work / "manifests/vault.yaml").write_text(ENV_VAULT)
    env = {k.encode(): v.encode() for k, v in clean_env().items()}
    env[b"HOSTILE_TOKEN"] = b"token-\xff\xfe"
    done = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "apply", "--auto-approve"],
        check=False,
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert done.returncode == 1
    assert_one_sentence(done.stderr, "HOSTILE_TOKEN", "not valid UTF-8")
    assert not owned_objects(work / ".reconciler/provider.db", "default")


# --- item 9: a disk that refuses the lockfile mid-apply ---------------------------------------

FLEET = 60


def _fleet(n: int) -> str:
    return "".join(
        f"---\nkind: Agent\nname: a{i:03d}\nspec: {{model: claude-sonnet-4-6}}\n" for i in range(n)
    )


def _assert_told_what_was_recorded(stderr: str, lockfile: Path, db: Path) -> None:
    """The message names the lockfile and its numbers match the lockfile and the provider."""
    import json
    import re

    assert_one_sentence(stderr, f"cannot write the lockfile {lockfile}:")
    assert ".tmp" not in stderr
    told = re.search(
        r"stopped after (\d+) changes? at the provider, (\d+) of them recorded", stderr
    )
    assert told, stderr
    changed, recorded = int(told.group(1)), int(told.group(2))
    live = {a for a, objs in owned_objects(db, "default").items() if a.startswith("agent.a")}
    entries = json.loads(lockfile.read_text())["resources"]
    assert changed == len(live) > 0
    assert recorded == len([a for a in entries if a.startswith("agent.a")]) < changed
    assert f"finds the other {changed - recorded} again" in stderr


def test_a_lockfile_write_refused_mid_apply_says_what_was_recorded(
    work: Path, provider_db: Path, tcp_provider: str
) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the growing lockfile (EFBIG), as a full disk would.

    The provider is served from this process, so the limit binds only the CLI's own writes.
    The intents of every create fit; the outcomes that follow outgrow the limit part way.
    """
    (work / "manifests/vault.yaml").unlink()
    (work / "manifests/agent.yaml").write_text(_fleet(FLEET))
    args = ["--provider-url", tcp_provider, "apply", "--auto-approve", "--parallelism", "1"]
    # The same fleet applied for another project gives the size of the finished lockfile; a
    # pending intent is much smaller than an entry, so three quarters of it holds every
    # intent and not every outcome: the writes fail part way through the run.
    scratch = work / "scratch.lock"
    measured = run(["--project", "scratch", "--lockfile", str(scratch), *args], work)
    assert measured.returncode == 0, measured.stderr
    limit = scratch.stat().st_size * 3 // 4

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = run(args, work, preexec=limited)
    assert done.returncode == 1, done.stderr
    assert "File too large" in done.stderr
    _assert_told_what_was_recorded(done.stderr, Path("state/reconciler.lock"), provider_db)
    healed = run(["--provider-url", tcp_provider, "apply", "--auto-approve"], work)
    assert healed.returncode == 0, healed.stderr
    live = owned_objects(provider_db, "default")
    assert all(len(objs) == 1 for objs in live.values())  # no twin after the failure
    assert len(live) == FLEET


def test_a_lockfile_refused_before_the_first_create_sends_nothing(
    work: Path, provider_db: Path, tcp_provider: str
) -> None:
    (work / "manifests/vault.yaml").unlink()
    (work / "manifests/agent.yaml").write_text(_fleet(FLEET))

    def tiny() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))  # no room for the intents

    done = run(["--provider-url", tcp_provider, "apply", "--auto-approve"], work, preexec=tiny)
    assert done.returncode == 1
    assert_one_sentence(
        done.stderr, "cannot write the lockfile state/reconciler.lock:", "nothing was sent"
    )
    assert not owned_objects(provider_db, "default")


def test_a_full_disk_mid_apply_says_what_was_recorded(
    work: Path, provider_db: Path, tcp_provider: str
) -> None:
    """A real full disk: the lockfile on a 64 KiB tmpfs (skipped where mounting is denied)."""
    small = work / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
        check=False,
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN); see the EFBIG test")
    try:
        (work / "manifests/vault.yaml").unlink()
        (work / "manifests/agent.yaml").write_text(_fleet(120))  # intents ~1/3 of 64 KiB
        lockfile = small / "reconciler.lock"
        args = ["--lockfile", str(lockfile), "--provider-url", tcp_provider]
        done = run([*args, "apply", "--auto-approve", "--parallelism", "1"], work)
        assert done.returncode == 1, done.stderr
        assert "No space left on device" in done.stderr
        assert "free some disk space" in done.stderr
        _assert_told_what_was_recorded(done.stderr, lockfile, provider_db)
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_a_file_just_over_its_limit_says_its_size_in_bytes_not_the_limit_twice(
    work: Path,
) -> None:
    # "is larger than 1.0 MiB (1.0 MiB)": the rounded size read like the limit itself
    token = work / "manifests/token.txt"
    token.write_bytes(b"a" * (1024 * 1024 + 1))
    done = run(["plan"], work)
    assert done.returncode == 1
    assert_one_sentence(done.stderr, "manifests/vault.yaml:9:", "larger than 1.0 MiB")
    assert "(1,048,577 bytes)" in done.stderr, done.stderr
    assert "(1.0 MiB)" not in done.stderr
