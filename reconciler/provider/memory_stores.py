"""``client.memory_stores``: memory stores, their memories and memory versions.

Like ``resources.py``, each method maps one operation of provider-wire.md section 15 (the
SDK's ``beta.memory_stores``) onto ``client.request`` / ``client.paginate`` and returns the
wire JSON; the client retries and maps errors. What is particular here is how a write whose
answer was lost is looked up before it is sent again (``AmbiguityResolver``):

* a memory create, by its path: paths are unique in a store, so the memory found there with
  the sent content's ``content_sha256`` is the one the lost attempt made;
* a memory update with a ``content_sha256`` precondition (not idempotent: a resend would
  meet its own change as stale), by reading the memory back: it happened when it holds the
  sent content and path;
* a memory store create, only when the caller can prove which store is theirs:
  ``MemoryStores.resolver(body)`` finds one by its metadata (store names are not unique).

Stale preconditions come back as ``ConflictError`` (409, ``error_type``
``memory_precondition_failed_error``); a taken path as ``ConflictError`` with
``memory_path_conflict_error``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal

from reconciler.jsontypes import JSON
from reconciler.provider.resources import DatedCollection, DeletableCollection, Namespace
from reconciler.provider.wire import item_path

if TYPE_CHECKING:
    from reconciler.provider.client import AmbiguityResolver, ProviderClient
    from reconciler.provider.pager import Pager

__all__ = ["Memories", "MemoryStores", "MemoryVersions", "content_sha256"]

View = Literal["basic", "full"]


def content_sha256(content: str) -> str:
    """The ``content_sha256`` the provider reports for ``content`` (no normalisation)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _parent(path: str) -> str:
    """The ``path_prefix`` that lists ``path`` as a direct child: ``/a/b.md`` -> ``/a/``."""
    return path[: path.rfind("/") + 1] or "/"


class MemoryStores(DatedCollection, DeletableCollection):
    """``/v1/memory_stores``: named containers of memories; archive is final.

    A create (``name``, ``description?``, ``metadata?``) is not idempotent: pass ``resolve``
    (e.g. ``self.resolver(body)``) to have a lost answer looked up. An update (``name``,
    ``description``: ``""`` clears it, ``metadata``: a patch where ``None`` deletes a key)
    is idempotent; an archived store refuses it (400). Archive is for good (no more writes,
    no new sessions); delete removes the store with every memory and version.
    """

    collection = "memory_stores"

    def __init__(self, client: ProviderClient) -> None:
        super().__init__(client)
        self.memories = Memories(client)
        self.versions = MemoryVersions(client)

    def resolver(self, body: JSON) -> AmbiguityResolver | None:
        """A lookup of the store ``create(body)`` made: a live store with that name whose
        metadata holds every pair of ``body``'s. None when ``body`` has no metadata: names are
        not unique, so nothing could tell the store apart from another."""
        wanted = dict(body.get("metadata") or {})
        if not wanted:
            return None
        name = body.get("name")

        async def find() -> JSON | None:
            async for found in self.list():
                meta = found.get("metadata") or {}
                if found.get("name") == name and all(meta.get(k) == v for k, v in wanted.items()):
                    return found
            return None

        return find


class Memories(Namespace):
    """``/v1/memory_stores/{id}/memories``: text documents addressed by path."""

    async def create(
        self,
        store_id: str,
        path: str,
        content: str,
        *,
        view: View | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON:
        """Create a memory at ``path``; a lost answer is looked up by path (``resolve``
        replaces that lookup). A taken path is a ``ConflictError``."""

        async def by_path() -> JSON | None:
            found = await self.find(store_id, path)
            if found is None or found.get("content_sha256") != content_sha256(content):
                return None  # not ours: sending again meets the path conflict, if any
            if view == "full":
                return await self.retrieve(store_id, found["id"])
            return found

        return await self._object(
            "POST",
            item_path("memory_stores", store_id, "memories"),
            json={"path": path, "content": content},
            params={"view": view},
            resolve=resolve or by_path,
        )

    async def find(self, store_id: str, path: str) -> JSON | None:
        """The memory at ``path`` (``view=basic``), or None."""
        async for item in self.list(store_id, path_prefix=_parent(path), depth=1):
            if item.get("type") == "memory" and item.get("path") == path:
                return item
        return None

    async def retrieve(self, store_id: str, memory_id: str, view: View | None = None) -> JSON:
        """Fetch one memory; the provider includes ``content`` unless ``view="basic"``."""
        return await self._object(
            "GET",
            item_path("memory_stores", store_id, "memories", memory_id),
            params={"view": view},
        )

    async def update(
        self,
        store_id: str,
        memory_id: str,
        *,
        content: str | None = None,
        path: str | None = None,
        expected_sha256: str | None = None,
        view: View | None = None,
    ) -> JSON:
        """Change a memory's content and/or path (a rename keeps its id).

        Args:
            expected_sha256: the ``content_sha256`` the memory must still have (a
                ``precondition``); when stale, ``ConflictError`` and nothing changes.
        """
        body: JSON = {}
        if content is not None:
            body["content"] = content
        if path is not None:
            body["path"] = path
        resolve = None
        if expected_sha256 is not None:
            body["precondition"] = {"type": "content_sha256", "content_sha256": expected_sha256}

            async def read_back() -> JSON | None:
                live = await self.retrieve(store_id, memory_id, view=view or "basic")
                done = (content is None or live["content_sha256"] == content_sha256(content)) and (
                    path is None or live["path"] == path
                )
                return live if done else None

            resolve = read_back
        return await self._object(
            "POST",
            item_path("memory_stores", store_id, "memories", memory_id),
            json=body,
            params={"view": view},
            resolve=resolve,
        )

    def list(
        self,
        store_id: str,
        path_prefix: str | None = None,
        depth: int | None = None,
        view: View | None = None,
    ) -> Pager:
        """Every memory (and, with ``depth``, ``memory_prefix`` roll-ups) in path order."""
        return self._client.paginate(
            item_path("memory_stores", store_id, "memories"),
            {"path_prefix": path_prefix, "depth": depth, "view": view},
        )

    async def delete(
        self, store_id: str, memory_id: str, expected_sha256: str | None = None
    ) -> JSON:
        """Delete a memory (its versions stay); with ``expected_sha256``, only while its
        content is unchanged (``ConflictError`` otherwise)."""
        return await self._object(
            "DELETE",
            item_path("memory_stores", store_id, "memories", memory_id),
            params={"expected_content_sha256": expected_sha256},
        )


class MemoryVersions(Namespace):
    """``/v1/memory_stores/{id}/memory_versions``: the append-only history, newest first."""

    def list(
        self,
        store_id: str,
        memory_id: str | None = None,
        operation: str | None = None,
        view: View | None = None,
        **filters: Any,
    ) -> Pager:
        """Every version of the store (or of one memory), page by page.

        Args:
            filters: more wire filters: ``session_id=``, ``api_key_id=``,
                ``created_at_gte=`` ...
        """
        return self._client.paginate(
            item_path("memory_stores", store_id, "memory_versions"),
            {"memory_id": memory_id, "operation": operation, "view": view, **filters},
        )

    async def retrieve(self, store_id: str, version_id: str, view: View | None = None) -> JSON:
        """Fetch one version (with its content unless ``view="basic"`` or redacted)."""
        return await self._object(
            "GET",
            item_path("memory_stores", store_id, "memory_versions", version_id),
            params={"view": view},
        )

    async def redact(self, store_id: str, version_id: str) -> JSON:
        """Scrub a version's content and path for good (idempotent)."""
        return await self._object(
            "POST", item_path("memory_stores", store_id, "memory_versions", version_id, "redact")
        )
