"""The workspace every use case starts from: settings, provider connection, refresh, the lock.

``Settings`` says where things are (the CLI's global options). ``connect`` opens the provider
client it names, ``observe`` is the plan's refresh over it, ``held`` takes the apply lock for
an operation, ``documents`` reads the manifests. Nothing here plans, applies or prints.

The state is the lockfile (``--lockfile``) or a PostgreSQL database (``--backend``); use
cases reach it only through ``state_location`` / ``read_state`` / ``locked_state``, so they
never know which (``reconciler.state.location``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.engine.refresh import Observed, refresh
from reconciler.errors import LockfileError, PlanError
from reconciler.kinds import DEFAULT_LOCKFILE, DEFAULT_MANIFESTS, DEFAULT_PROVIDER_DB
from reconciler.manifest import Document, ManifestSet, load_manifests
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.provider.origin import describe_origin, run_origin, same_origin
from reconciler.state import (
    ApplyLock,
    ClosableBackend,
    Lockfile,
    LockfileWriteError,
    LockInfo,
    RunInfo,
    StateLocation,
    StateLock,
    is_database,
    open_location,
)

if TYPE_CHECKING:  # the HTTP stack loads when a command connects (tests/test_startup.py)
    from reconciler.provider import ProviderClient

DEFAULT_DB = Path(DEFAULT_PROVIDER_DB)


@dataclass(frozen=True)
class Settings:
    """Where things are; the global options of the CLI."""

    manifests: Path = Path(DEFAULT_MANIFESTS)
    lockfile: Path = Path(DEFAULT_LOCKFILE)
    project: str = "default"
    provider_url: str | None = None
    api_key: str | None = None
    db_path: Path = DEFAULT_DB
    client_options: dict[str, Any] = field(default_factory=dict)
    #: the PostgreSQL connection string of ``--backend``; None: the state is ``lockfile``
    backend: str | None = None

    @property
    def state_name(self) -> str:
        """How messages name the state: the lockfile's path, or the database (no password)
        and project. Connects to nothing."""
        return open_location(self.backend, self.lockfile, self.project).name

    @property
    def recorded_in(self) -> str:
        """Where a sentence says results are recorded: "the lockfile", or "the state in"
        the database (no password) and project."""
        return "the lockfile" if self.backend is None else f"the state in {self.state_name}"

    @property
    def lockfile_missing(self) -> bool:
        """The state is a lockfile that does not exist (nothing applied with it, or a wrong
        --lockfile): what a command that only edits state says before it takes the lock,
        which would make the lockfile's folder."""
        return self.backend is None and not Path(self.lockfile).exists()


def check_backend(value: str | None) -> str | None:
    """``--backend`` as given (None when empty), or a ``LockfileError`` saying what it takes."""
    if not value:
        return None
    if not is_database(value):
        raise LockfileError(
            "--backend (RECONCILER_BACKEND) takes a PostgreSQL connection string "
            "(postgresql://USER@HOST:PORT/DBNAME, or libpq's key=value words); leave it unset "
            "to keep the state in the lockfile (--lockfile)"
        )
    return value


@contextmanager
def state_location(settings: Settings) -> Iterator[StateLocation]:
    """The state of ``settings`` (lockfile or database), closed at the end.

    Raises:
        LockfileError: ``--backend`` names no PostgreSQL database.
    """
    location = open_location(settings.backend, settings.lockfile, settings.project)
    try:
        yield location
    finally:
        location.close()


def read_state(settings: Settings) -> Lockfile:
    """The state as it is now, for reading (an empty one when nothing was written yet).

    Raises:
        LockfileError: unreadable, newer, another project's, or the database unreachable.
    """
    with state_location(settings) as location:
        return location.read()


def running_lock(settings: Settings) -> LockInfo | None:
    """Who holds the apply lock (or lease) of the state while it is alive, else None.

    Raises:
        LockfileError: the database is unreachable.
    """
    with state_location(settings) as location:
        return location.running_lock()


def left_lock(settings: Settings) -> LockInfo | None:
    """The holder of a lock (or lease) left behind: its process is gone (or its lease
    expired) and no run took it over yet, as a killed apply leaves it; else None.

    Raises:
        LockfileError: the database is unreachable.
    """
    with state_location(settings) as location:
        return lock_left_in(location)


def lock_left_in(location: StateLocation) -> LockInfo | None:
    """``left_lock`` of a state location already open (no second connection to it)."""
    info = location.read_lock()
    if info is None or location.running_lock() is not None:
        return None
    return info


def state_exists(settings: Settings, lockfile: Lockfile) -> bool:
    """Whether the state ``lockfile`` (just read from ``settings``) was ever written."""
    if settings.backend:
        return lockfile.written
    return Path(settings.lockfile).exists()


@contextmanager
def locked_state(settings: Settings, operation: str) -> Iterator[tuple[StateLock, ClosableBackend]]:
    """The apply lock (or lease) held as ``operation``, and the state store it guards.

    The store is closed at the end (the lockfile's journal folded in), then the lock released.
    ``store.run`` says who writes and why in the history; a use case may set the digest of
    the plan it applies there.

    Raises:
        LockHeld: another run holds the lock (the message names it).
    """
    with state_location(settings) as location:
        lock = location.new_lock()
        lock.acquire(operation)
        try:
            store = location.store(lock, RunInfo(operation=operation))
            failed = True
            try:
                yield lock, store
                failed = False
            finally:
                try:
                    store.close()
                except Exception as err:
                    if not failed:
                        raise
                    # The run failed already (often the same full disk): its error is what
                    # the user reads; this one is a line, never a traceback. The journal
                    # keeps what it holds, and every reader replays it.
                    logging.getLogger("reconciler.state").warning(
                        "%s: could not fold the journal into the lockfile either (%s); the "
                        "next run does",
                        location.name,
                        _reason(err),
                    )
        finally:
            lock.release()


def _reason(err: Exception) -> str:
    """What went wrong in a few words (a disk's ``No space left on device``)."""
    if isinstance(err, LockfileWriteError) and err.cause.strerror:
        return err.cause.strerror
    return str(err)


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[ProviderClient]:
    """The provider client of ``settings``: HTTP when a URL is set, else the embedded one."""
    from reconciler.provider import connect_client

    async with connect_client(
        settings.provider_url,
        settings.api_key,
        db_path=settings.db_path,
        **settings.client_options,
    ) as client:
        yield client


@asynccontextmanager
async def connection(
    settings: Settings, client: ProviderClient | None
) -> AsyncIterator[ProviderClient]:
    """``client`` when the caller brings one, else a new connection (``connect``)."""
    if client is not None:
        yield client
    else:
        async with connect(settings) as c:
            yield c


async def observe(client: ProviderClient, lockfile: Lockfile, project: str) -> Observed:
    """The plan's refresh: one paged list per kind (credentials: one per managed vault)."""
    vault_ids = [e.id for e in lockfile.resources.values() if e.kind == "vault"]
    return await refresh(ClientBackedProvider(client), project=project, known_vault_ids=vault_ids)


@contextmanager
def held(lockfile: Path, operation: str) -> Iterator[ApplyLock]:
    """The apply lock, held as ``operation`` (the name a refused apply is told)."""
    lock = ApplyLock(lockfile)
    lock.acquire(operation)
    try:
        yield lock
    finally:
        lock.release()


def read_documents(settings: Settings, *, missing_ok: bool = False) -> tuple[Document, ...]:
    """The manifest documents.

    A manifests path that does not exist is an error (``ManifestError``, exit 1): a typo in
    ``-f`` must never read as "nothing declared, nothing drifted". Only ``missing_ok``
    (``import --all-unmanaged``: a team about to import everything has no manifests yet)
    reads it as none.
    """
    manifests = read_manifests(settings, missing_ok=missing_ok)
    return manifests.documents if manifests is not None else ()


def read_manifests(settings: Settings, *, missing_ok: bool = False) -> ManifestSet | None:
    """The manifests (``read_documents``); None when ``missing_ok`` and there are none."""
    if missing_ok and not Path(settings.manifests).exists():
        return None
    return load_manifests(settings.manifests)


def provider_origin(settings: Settings) -> str:
    """The origin this run talks to, as the lockfile records it: the normalised
    ``--provider-url``, or ``local:`` and the embedded provider's database relative to the
    lockfile's folder (the same in every checkout of a repository; its absolute path with a
    ``--backend`` state, which has no folder).

    Raises:
        ProviderURLError: ``--provider-url`` is not a usable base URL.
    """
    return run_origin(
        settings.provider_url,
        settings.db_path,
        settings.lockfile,
        database=settings.backend is not None,
    )


def with_origin(origin: str) -> Callable[[Lockfile], Lockfile]:
    """The lockfile edit that records ``origin`` (``check_origin``'s answer): an import, like
    an apply, ties the lockfile it writes to the provider it talked to."""

    def edit(lockfile: Lockfile) -> Lockfile:
        if lockfile.origin == origin:
            return lockfile
        return lockfile.model_copy(update={"origin": origin})

    return edit


def embedded_database_gone(settings: Settings, lockfile: Lockfile) -> bool:
    """The embedded provider this run would open has no database file while the state
    records resources: opening it would create an empty provider holding none of them (a
    clone without ``.reconciler/``, a run from another folder, a mistyped ``--provider-db``)."""
    return (
        settings.provider_url is None
        and bool(lockfile.resources)
        and not Path(settings.db_path).exists()
    )


def check_origin(settings: Settings, lockfile: Lockfile, *, allow_change: bool = False) -> str:
    """Refuse to plan or apply with a lockfile that was applied to another provider.

    A lockfile that records no origin (written before origins were recorded, or never
    written) is accepted; the next apply records it.

    The embedded provider the state was applied to is a new, empty provider when its
    database does not exist any more (a clone without ``.reconciler/``, a folder copied
    without it): it holds none of the ids the state records, and opening it would create the
    file; it is refused the same way, before anything opens it.

    Returns:
        The origin of this run.

    Raises:
        PlanError: the lockfile records another origin, or resources applied to an embedded
            provider whose database does not exist, and ``allow_change`` is False.
    """
    origin = provider_origin(settings)
    recorded = lockfile.origin
    state_flags = "--lockfile" if settings.backend is None else "--backend, --project"
    here = Path(settings.lockfile).parent  # what an embedded provider's path is relative to
    same = same_origin(recorded, origin, here)
    if same and not allow_change and embedded_database_gone(settings, lockfile):
        n = len(lockfile.resources)
        raise PlanError(
            f"{settings.state_name} records {n} resource{'' if n == 1 else 's'}, but "
            f"{describe_origin(origin, here)} does not exist: a new, empty provider, where "
            "every one of them would be created again. Check --provider-db (and --provider-url, "
            f"{state_flags}); to apply the manifests to a new, empty embedded provider, pass "
            "--allow-origin-change"
        )
    if recorded is not None and not same and not allow_change:
        raise PlanError(
            f"{settings.state_name} was applied to {describe_origin(recorded, here)}, but this "
            f"run talks to {describe_origin(origin, here)}. "
            f"Check --provider-url (and --provider-db, {state_flags}); if the state should now "
            "follow this provider, pass --allow-origin-change (apply then records the new "
            "origin)"
        )
    return origin
