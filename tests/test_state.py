"""The lockfile: its data model, atomic writes, refusals, and the per-action store."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reconciler.errors import LockfileError
from reconciler.state import (
    LOCKFILE_VERSION,
    LockEntry,
    Lockfile,
    LockfileEncoder,
    PendingIntent,
    StateStore,
    backup_path,
    fingerprint_secret,
    json_digest,
    list_entries,
    new_lockfile,
    read_lockfile,
    show_entry,
    utc_timestamp,
    write_lockfile,
)

T0 = "2026-05-01T12:00:00Z"


def entry(i: int = 0, **overrides: object) -> LockEntry:
    fields: dict[str, object] = {
        "kind": "agent",
        "id": f"agent_{i:04d}",
        "version": 1,
        "spec_digest": json_digest({"i": i}),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return LockEntry.model_validate(fields)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "reconciler.lock"


# -- the model -----------------------------------------------------------------------------


def test_new_lockfile_has_fresh_identity() -> None:
    a, b = new_lockfile("default"), new_lockfile("default")
    assert a.lockfile_version == LOCKFILE_VERSION == 1
    assert a.serial == 0 and a.resources == {} and a.pending == {}
    assert len(a.lineage) == 32 and a.lineage != b.lineage
    assert len(a.salt) >= 32 and a.salt != b.salt


def test_helpers_return_new_objects_and_leave_the_original_alone() -> None:
    empty = new_lockfile()
    one = empty.with_entry("agent.coder", entry(1))
    assert empty.resources == {} and list(one.resources) == ["agent.coder"]
    intent = PendingIntent(kind="agent", operation="create", started_at=T0)
    pending = one.with_pending("agent.reviewer", intent)
    assert one.pending == {} and pending.pending == {"agent.reviewer": intent}
    assert pending.without_pending("agent.reviewer").pending == {}
    assert pending.without("agent.coder").resources == {}
    assert pending.resources == {"agent.coder": entry(1)}
    with pytest.raises(ValidationError):
        one.serial = 5  # type: ignore[misc]


def test_without_drops_entry_and_intent_and_refuses_unknown_addresses() -> None:
    intent = PendingIntent(kind="agent", operation="replace", started_at=T0)
    lf = new_lockfile().with_entry("agent.coder", entry(1)).with_pending("agent.coder", intent)
    gone = lf.without("agent.coder")
    assert gone.resources == {} and gone.pending == {}
    with pytest.raises(LockfileError, match="did you mean agent.coder"):
        lf.without("agent.coderr")


def test_addresses_must_be_usable_keys() -> None:
    with pytest.raises(ValueError, match="invalid address"):
        new_lockfile().with_entry("agent coder", entry())
    with pytest.raises(ValueError, match="invalid address"):
        new_lockfile().with_entry("", entry())


def test_list_and_show_entries() -> None:
    lf = new_lockfile()
    for address in ["vault.gh", "agent.b", "agent.a"]:
        lf = lf.with_entry(address, entry())
    assert [a for a, _ in list_entries(lf)] == ["agent.a", "agent.b", "vault.gh"]
    assert show_entry(lf, "agent.a") == entry()
    with pytest.raises(LockfileError, match=r"no entry for agent\.c .*did you mean"):
        show_entry(lf, "agent.c")
    with pytest.raises(LockfileError, match="has no entries"):
        show_entry(new_lockfile(), "agent.a")


def test_a_secret_value_cannot_be_recorded_as_a_fingerprint() -> None:
    with pytest.raises(ValidationError):
        entry(secret_fingerprints={"auth.token": "ghp_live_secret"})
    salt = new_lockfile().salt
    ok = entry(secret_fingerprints={"auth.token": fingerprint_secret(salt, "ghp_live_secret")})
    assert ok.secret_fingerprints["auth.token"].startswith("scrypt:")


def test_entries_refuse_unknown_fields_and_bad_timestamps() -> None:
    with pytest.raises(ValidationError):
        entry(colour="blue")
    with pytest.raises(ValidationError):
        entry(created_at="yesterday")
    assert entry(created_at=utc_timestamp()).created_at.endswith("Z")


# -- reading and writing -------------------------------------------------------------------


def test_missing_file_reads_as_a_new_lockfile(path: Path) -> None:
    lf = read_lockfile(path, project="team-a")
    assert lf.serial == 0 and lf.project == "team-a" and not path.exists()


def test_write_is_parseable_sorted_and_keeps_a_backup(path: Path) -> None:
    first = write_lockfile(path, new_lockfile().with_entry("agent.coder", entry(1)))
    assert first.serial == 1 and not backup_path(path).exists()
    before = path.read_bytes()

    second = write_lockfile(path, first.with_entry("agent.b", entry(2)))
    text = path.read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert backup_path(path).read_bytes() == before
    assert read_lockfile(backup_path(path)) == first
    assert read_lockfile(path) == second
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert sorted(os.listdir(path.parent)) == ["reconciler.lock", "reconciler.lock.backup"]


def test_serial_grows_and_lineage_stays(path: Path) -> None:
    lf = write_lockfile(path, read_lockfile(path))
    lineage, salt = lf.lineage, lf.salt
    for i in range(2, 7):
        lf = write_lockfile(path, read_lockfile(path).with_entry(f"agent.a{i}", entry(i)))
        assert lf.serial == i
        assert json.loads(path.read_text())["serial"] == i
    reread = read_lockfile(path)
    assert (reread.lineage, reread.salt, reread.serial) == (lineage, salt, 6)


def test_layout_of_the_file(path: Path) -> None:
    salt = new_lockfile().salt
    lf = new_lockfile("team-a").with_entry(
        "vault.gh.credential.token",
        entry(
            3,
            kind="credential",
            parent_id="vlt_1",
            version=None,
            secret_fingerprints={"auth.token": fingerprint_secret(salt, "s3cret")},
        ),
    )
    write_lockfile(
        path,
        lf.with_pending("agent.x", PendingIntent(kind="agent", operation="create", started_at=T0)),
    )
    data = json.loads(path.read_text())
    assert list(data) == [
        "lineage", "lockfile_version", "origin", "pending", "project", "resources", "salt",
        "serial",
    ]  # fmt: skip
    assert data["resources"]["vault.gh.credential.token"]["parent_id"] == "vlt_1"
    assert data["pending"]["agent.x"]["operation"] == "create"
    # a create's intent has the keys it always had: a lockfile left by a crash stays
    # readable by the reconciler of a runner not upgraded yet
    assert set(data["pending"]["agent.x"]) == {
        "kind", "operation", "started_at", "parent_id", "remote_name",
    }  # fmt: skip
    assert "s3cret" not in path.read_text()


def test_a_lockfile_saved_with_a_byte_order_mark_is_read(path: Path) -> None:
    """An editor on Windows may save the lockfile with a UTF-8 BOM (a hand-resolved merge):
    it is read as the same lockfile, and the next write drops the mark."""
    lf = write_lockfile(path, new_lockfile().with_entry("agent.a1", entry(1)))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_lockfile(path).resources == lf.resources
    write_lockfile(path, read_lockfile(path))
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")


def test_file_mode_is_kept(path: Path) -> None:
    write_lockfile(path, new_lockfile())
    path.chmod(0o640)
    write_lockfile(path, read_lockfile(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{\n  "lockfile_version": 1,\n  "lineage": "ab"\n  "serial": 1\n}\n',
            r":4:3: not valid JSON",
        ),
        (b"", r":1:1: not valid JSON"),
        (b"[1, 2]", r"not a lockfile \(a JSON object was expected, found list\)"),
        (b'{"serial": 3}', r"lockfile_version is missing"),
        (b'{"lockfile_version": 1, "lineage": "zz"}', r"not a valid lockfile: lineage"),
        (b"\xff\xfe{}", r"not valid UTF-8"),
    ],
)
def test_unreadable_file_is_an_error_and_is_never_overwritten(
    path: Path, content: bytes, message: str
) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(LockfileError, match=message) as info:
        read_lockfile(path)
    assert str(info.value).startswith(str(path))
    assert "restore it from git" in str(info.value)
    with pytest.raises(LockfileError):
        write_lockfile(path, new_lockfile())
    store = StateStore(path)
    with pytest.raises(LockfileError):
        store.load()
    assert path.read_bytes() == content


def test_unreadable_file_points_at_the_backup(path: Path) -> None:
    lf = write_lockfile(path, new_lockfile())
    write_lockfile(path, lf)
    path.write_text("{ garbage")
    with pytest.raises(
        LockfileError, match=r"restore it from .*reconciler\.lock\.backup or from git"
    ):
        read_lockfile(path)


def test_newer_lockfile_version_is_refused_and_kept(path: Path) -> None:
    lf = write_lockfile(path, new_lockfile())
    data = json.loads(path.read_text())
    data["lockfile_version"] = 3
    data["future_field"] = {"x": 1}
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    with pytest.raises(
        LockfileError,
        match=r"reconciler\.lock: written by a newer reconciler \(lockfile_version 3 > 1\); "
        r"upgrade reconciler",
    ):
        read_lockfile(path)
    with pytest.raises(LockfileError, match="newer reconciler"):
        write_lockfile(path, lf)
    assert path.read_bytes() == before


def test_write_refuses_a_file_changed_by_another_process(path: Path) -> None:
    base = write_lockfile(path, new_lockfile())
    write_lockfile(path, base)  # someone else moved it to serial 2
    with pytest.raises(
        LockfileError, match=r"changed on disk by another process \(serial 2, expected 1\)"
    ):
        write_lockfile(path, base)
    with pytest.raises(LockfileError, match="lineage"):
        write_lockfile(path, new_lockfile().model_copy(update={"serial": 2}))
    assert read_lockfile(path).serial == 2


def test_write_refuses_when_the_file_vanished(path: Path) -> None:
    base = write_lockfile(path, new_lockfile())
    path.unlink()
    with pytest.raises(LockfileError, match="was removed while in use"):
        write_lockfile(path, base)
    assert not path.exists()


# -- the store -----------------------------------------------------------------------------


def test_store_commits_every_change(path: Path) -> None:
    store = StateStore(path, project="default")
    assert store.lockfile.serial == 0
    intent = PendingIntent(kind="agent", operation="create", started_at=T0)
    s1 = store.commit(lambda lf: lf.with_pending("agent.coder", intent))
    s2 = store.commit(
        lambda lf: lf.with_entry("agent.coder", entry(1)).without_pending("agent.coder")
    )
    assert (s1.serial, s2.serial) == (1, 2)
    assert read_lockfile(path) == s2 == store.lockfile
    assert read_lockfile(backup_path(path)) == s1
    s3 = store.commit(lambda lf: lf.without("agent.coder"))
    assert read_lockfile(path).resources == {} and s3.serial == 3


def test_store_writes_nothing_when_the_edit_fails_or_changes_nothing(path: Path) -> None:
    store = StateStore(path)
    store.commit(lambda lf: lf.with_entry("agent.a", entry()))
    before = path.read_bytes()

    def boom(lf: Lockfile) -> Lockfile:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.commit(boom)
    assert store.commit(lambda lf: lf) is store.lockfile
    with pytest.raises(LockfileError, match="must edit the current state"):
        store.commit(lambda lf: new_lockfile())
    assert path.read_bytes() == before and store.lockfile.serial == 1


def test_store_notices_another_writer(path: Path) -> None:
    a, b = StateStore(path), StateStore(path)
    a.commit(lambda lf: lf.with_entry("agent.a", entry(1)))
    b.load()
    b.commit(lambda lf: lf.with_entry("agent.b", entry(2)))
    with pytest.raises(LockfileError, match="changed on disk by another process"):
        a.commit(lambda lf: lf.with_entry("agent.c", entry(3)))
    assert set(read_lockfile(path).resources) == {"agent.a", "agent.b"}


def test_store_refuses_another_projects_lockfile(path: Path) -> None:
    write_lockfile(path, new_lockfile("team-a"))
    with pytest.raises(
        LockfileError, match=r"belongs to project 'team-a', not 'team-b'; pass --project team-a"
    ):
        StateStore(path, project="team-b").load()


def test_store_sweeps_old_temp_files(path: Path) -> None:
    write_lockfile(path, new_lockfile())
    old = path.with_name("reconciler.lock.tmp-0123456789ab")
    young = path.with_name("reconciler.lock.tmp-ba9876543210")
    old.write_text("{")
    young.write_text("{")
    os.utime(old, (1, 1))
    StateStore(path).load()
    assert not old.exists() and young.exists()


def test_store_is_thread_safe(path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = StateStore(path)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: store.commit(lambda lf: lf.with_entry(f"agent.a{i}", entry(i))), range(40)
            )
        )
    final = read_lockfile(path)
    assert final.serial == 40 and len(final.resources) == 40


# -- the encoder matches json.dumps byte for byte ------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=8)
_address = st.text(
    st.characters(codec="utf-8", exclude_categories=["Zs", "Zl", "Zp", "Cc"]),
    min_size=1,
    max_size=12,
).filter(lambda s: not any(c.isspace() for c in s))
_hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_entries = st.builds(
    LockEntry,
    kind=st.sampled_from(["agent", "vault", "credential"]),
    id=_text.filter(bool),
    parent_id=st.none() | _text,
    version=st.none() | st.integers(0, 10**6),
    pins=st.dictionaries(_text, st.integers(0, 99), max_size=3),
    spec_digest=_hex64.map(lambda h: "sha256:" + h),
    protect=st.booleans(),
    secret_fingerprints=st.dictionaries(_text, _hex64.map(lambda h: "scrypt:" + h), max_size=2),
    remote_name=st.none() | _text,
    created_at=st.just(T0),
    updated_at=st.sampled_from([T0, "2026-05-01T12:00:00.5+02:00"]),
)


_intents = st.builds(
    PendingIntent,
    kind=st.sampled_from(["agent", "credential"]),
    operation=st.sampled_from(["create", "replace"]),
    started_at=st.sampled_from([T0, "2026-05-01T12:00:00.5+02:00"]),
    parent_id=st.none() | _text,
    remote_name=st.none() | _text,
)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.dictionaries(_address, st.none() | _entries | _intents | st.just("done"), max_size=5),
        min_size=1,
        max_size=4,
    ),
    project=_text.filter(bool),
)
def test_encoder_output_equals_json_dumps(
    steps: list[dict[str, LockEntry | PendingIntent | str | None]], project: str
) -> None:
    """Entries and pending intents come and go; the cached text always equals json.dumps."""
    encoder = LockfileEncoder()  # reused across steps: its cache must never serve stale text
    lf = new_lockfile(project)
    for step in steps:
        for address, value in step.items():
            if isinstance(value, LockEntry):
                lf = lf.with_entry(address, value)
            elif isinstance(value, PendingIntent):
                lf = lf.with_pending(address, value)
            elif value == "done":
                lf = lf.without_pending(address)
            elif address in lf.resources or address in lf.pending:
                lf = lf.without(address)
        expected = json.dumps(lf.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"
        assert encoder.encode(lf) == expected
        assert Lockfile.model_validate_json(expected) == lf


def test_a_program_is_told_its_own_words_for_another_projects_lockfile(tmp_path: Path) -> None:
    """The runtime reads the lockfile too: the refusal names ``project=`` as well as the
    flag, for a program that has no command line."""
    from reconciler.runtime import ManagedRuntime

    write_lockfile(tmp_path / "reconciler.lock", new_lockfile("team-a"))
    runtime = ManagedRuntime(lockfile=tmp_path / "reconciler.lock", project="team-b")
    with pytest.raises(LockfileError, match=r"in a program: project='team-a'"):
        runtime.agent("coder")
