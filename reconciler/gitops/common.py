"""Shared plumbing of the gitops commands: the workspace, provider connection, lock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.engine.refresh import Observed, refresh
from reconciler.manifest import Document, load_manifests
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import (
    ApplyLock,
    Lockfile,
)

if TYPE_CHECKING:  # httpx loads when a command connects, not for fmt (tests/test_startup.py)
    from reconciler.provider import ProviderClient

JSON = dict[str, Any]

#: Tags written at once when adopting many objects.
TAG_PARALLELISM = 8


class Workspace(Protocol):
    """Where things are: the attributes of ``reconciler.operations.Settings`` used here."""

    @property
    def manifests(self) -> Path: ...
    @property
    def lockfile(self) -> Path: ...
    @property
    def project(self) -> str: ...
    @property
    def provider_url(self) -> str | None: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def db_path(self) -> Path: ...
    @property
    def client_options(self) -> dict[str, Any]: ...


@asynccontextmanager
async def _connect(ws: Workspace) -> AsyncIterator[ProviderClient]:
    from reconciler.provider import open_client

    async with open_client(
        ws.provider_url, ws.api_key, db_path=ws.db_path, **dict(ws.client_options)
    ) as client:
        yield client


async def _observe(client: ProviderClient, lockfile: Lockfile, project: str) -> Observed:
    """The plan's refresh: one paged list per kind, credentials of the managed vaults."""
    vault_ids = [e.id for e in lockfile.resources.values() if e.kind == "vault"]
    return await refresh(ClientBackedProvider(client), project=project, known_vault_ids=vault_ids)


@contextmanager
def _held(lockfile: Path, operation: str) -> Iterator[ApplyLock]:
    """The apply lock, held as ``operation`` (the name a refused apply is told)."""
    lock = ApplyLock(lockfile)
    lock.acquire(operation)
    try:
        yield lock
    finally:
        lock.release()


def _documents(ws: Workspace, *, missing_ok: bool = False) -> tuple[Document, ...]:
    """The manifest documents.

    A manifests path that does not exist is an error (``ManifestError``, exit 1): a typo in
    ``-f`` must never read as "nothing declared, nothing drifted". Only ``missing_ok``
    (``import --all-unmanaged``: a team about to import everything has no manifests yet)
    reads it as none.
    """
    if missing_ok and not Path(ws.manifests).exists():
        return ()
    return load_manifests(ws.manifests).documents


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
