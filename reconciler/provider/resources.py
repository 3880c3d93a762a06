"""Resource namespaces of ``ProviderClient``: one object per kind, naming its endpoints.

Each method maps one API operation onto ``client.request`` (through ``Namespace._object``) /
``client.paginate`` with the path and query of provider-wire.md, and returns the wire JSON as
plain dicts. Nothing here retries, maps errors or validates bodies - the client and the server
do.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from reconciler.jsontypes import JSON
from reconciler.provider.wire import item_path

if TYPE_CHECKING:
    from reconciler.provider.client import AmbiguityResolver, ProviderClient
    from reconciler.provider.pager import Pager
    from reconciler.provider.sse import EventStream

__all__ = [
    "Agents",
    "Collection",
    "Credentials",
    "DatedCollection",
    "DeletableCollection",
    "DeploymentRuns",
    "Deployments",
    "Environments",
    "Namespace",
    "Sessions",
    "Vaults",
]

JSONList = list[dict[str, Any]]  # spelled once: `list` is shadowed inside the classes


def _archived(include_archived: bool) -> bool | None:
    # Sent only when asked for: the server's default is false.
    return True if include_archived else None


class Namespace:
    """One namespace of ``ProviderClient``'s endpoints, sending through ``client``."""

    def __init__(self, client: ProviderClient) -> None:
        self._client = client

    async def _object(self, method: str, path: str, **options: Any) -> JSON:
        """Send one request whose answer is one JSON object (``options``: those of
        ``ProviderClient.request``) and return that object."""
        result: JSON = await self._client.request(method, path, **options)
        return result

    async def _upload(
        self, path: str, multipart: tuple[bytes, str], resolve: AmbiguityResolver
    ) -> JSON:
        """POST a multipart body, given as ``(bytes, content type)``; not idempotent, so a
        lost answer is looked up by ``resolve`` before it is sent again."""
        body, content_type = multipart
        return await self._object(
            "POST", path, content=body, headers={"content-type": content_type}, resolve=resolve
        )


class Collection(Namespace):
    """Create / retrieve / update / archive of one top-level collection."""

    collection: str = ""

    async def create(self, body: JSON, *, resolve: AmbiguityResolver | None = None) -> JSON:
        """Create one object (not idempotent: see ``AmbiguousWriteError`` and ``resolve`` of
        ``ProviderClient.request``)."""
        return await self._object("POST", item_path(self.collection), json=body, resolve=resolve)

    async def retrieve(self, id: str) -> JSON:
        """Fetch one object by id (archived objects too)."""
        return await self._object("GET", item_path(self.collection, id))

    async def update(
        self, id: str, body: JSON, *, resolve: AmbiguityResolver | None = None
    ) -> JSON:
        """Update one object; the body holds only the fields to change."""
        return await self._object(
            "POST", item_path(self.collection, id), json=body, resolve=resolve
        )

    async def archive(self, id: str) -> JSON:
        """Archive one object (idempotent; returns the archived object)."""
        return await self._object("POST", item_path(self.collection, id, "archive"))


class DeletableCollection(Collection):
    """A collection whose objects can also be deleted for good."""

    async def delete(self, id: str) -> JSON:
        """Delete one object for good; returns ``{"id": ..., "type": "<kind>_deleted"}``."""
        return await self._object("DELETE", item_path(self.collection, id))


class DatedCollection(Collection):
    """A collection whose list filters by creation time too."""

    def list(
        self,
        include_archived: bool = False,
        created_at_gte: str | None = None,
        created_at_lte: str | None = None,
    ) -> Pager:
        """Every object, page by page (archived ones only when asked for)."""
        return self._client.paginate(
            item_path(self.collection),
            {
                "include_archived": _archived(include_archived),
                "created_at": {"gte": created_at_gte, "lte": created_at_lte},
            },
        )


class Agents(DatedCollection):
    """``/v1/agents``: versioned; no delete endpoint."""

    collection = "agents"

    async def retrieve(self, id: str, version: int | None = None) -> JSON:
        """Fetch an agent, or one of its versions when ``version`` is given."""
        return await self._object("GET", item_path("agents", id), params={"version": version})

    async def update(
        self, id: str, body: JSON, *, resolve: AmbiguityResolver | None = None
    ) -> JSON:
        """Update an agent; a ``version`` in the body is an optimistic-concurrency precondition
        (409 ``ConflictError`` when stale) and makes the write non-idempotent."""
        return await super().update(id, body, resolve=resolve)

    def versions(self, id: str) -> Pager:
        """Every version of one agent (each a full agent object)."""
        return self._client.paginate(item_path("agents", id, "versions"))


class Environments(DeletableCollection):
    """``/v1/environments``."""

    collection = "environments"

    def list(self, include_archived: bool = False) -> Pager:
        """Every environment, page by page."""
        return self._client.paginate(
            "/v1/environments", {"include_archived": _archived(include_archived)}
        )


class Vaults(DeletableCollection):
    """``/v1/vaults``."""

    collection = "vaults"

    def list(self, include_archived: bool = False) -> Pager:
        """Every vault, page by page."""
        return self._client.paginate(
            "/v1/vaults", {"include_archived": _archived(include_archived)}
        )


class Credentials(Namespace):
    """``/v1/vaults/{vault_id}/credentials``: credentials live inside a vault."""

    async def create(
        self, vault_id: str, body: JSON, *, resolve: AmbiguityResolver | None = None
    ) -> JSON:
        """Create a credential in a vault (secrets are write-only)."""
        return await self._object(
            "POST", item_path("vaults", vault_id, "credentials"), json=body, resolve=resolve
        )

    async def retrieve(self, vault_id: str, credential_id: str) -> JSON:
        """Fetch one credential (secrets stripped)."""
        return await self._object(
            "GET", item_path("vaults", vault_id, "credentials", credential_id)
        )

    async def update(self, vault_id: str, credential_id: str, body: JSON) -> JSON:
        """Update a credential (auth type and key fields are immutable)."""
        return await self._object(
            "POST", item_path("vaults", vault_id, "credentials", credential_id), json=body
        )

    def list(self, vault_id: str, include_archived: bool = False) -> Pager:
        """Every credential of one vault, page by page."""
        return self._client.paginate(
            item_path("vaults", vault_id, "credentials"),
            {"include_archived": _archived(include_archived)},
        )

    async def archive(self, vault_id: str, credential_id: str) -> JSON:
        """Archive a credential."""
        return await self._object(
            "POST", item_path("vaults", vault_id, "credentials", credential_id, "archive")
        )

    async def delete(self, vault_id: str, credential_id: str) -> JSON:
        """Delete a credential for good."""
        return await self._object(
            "DELETE", item_path("vaults", vault_id, "credentials", credential_id)
        )

    async def mcp_oauth_validate(self, vault_id: str, credential_id: str) -> JSON:
        """Probe an ``mcp_oauth`` credential against its MCP server: a
        ``vault_credential_validation`` (``status`` valid / invalid / unknown,
        ``has_refresh_token``, the probe's and the refresh's outcome). It changes nothing,
        so it is retried like a read."""
        return await self._object(
            "POST",
            item_path("vaults", vault_id, "credentials", credential_id, "mcp_oauth_validate"),
            idempotent=True,
        )


class Deployments(Collection):
    """``/v1/deployments``: pinned agent + environment + vaults; no delete endpoint."""

    collection = "deployments"

    def list(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        include_archived: bool = False,
    ) -> Pager:
        """Every deployment, page by page (``status`` is ``active`` or ``paused``)."""
        return self._client.paginate(
            "/v1/deployments",
            {
                "agent_id": agent_id,
                "status": status,
                "include_archived": _archived(include_archived),
            },
        )

    async def pause(self, id: str) -> JSON:
        """Pause a deployment's schedule."""
        return await self._object("POST", item_path("deployments", id, "pause"))

    async def unpause(self, id: str) -> JSON:
        """Resume a paused deployment."""
        return await self._object("POST", item_path("deployments", id, "unpause"))

    async def run(self, id: str) -> JSON:
        """Fire a deployment now; returns the ``deployment_run`` (not idempotent)."""
        return await self._object("POST", item_path("deployments", id, "run"))


class DeploymentRuns(Namespace):
    """``/v1/deployment_runs``: the append-only record of deployment fires."""

    async def retrieve(self, id: str) -> JSON:
        """Fetch one run."""
        return await self._object("GET", item_path("deployment_runs", id))

    def list(
        self,
        deployment_id: str | None = None,
        has_error: bool | None = None,
        trigger_type: str | None = None,
    ) -> Pager:
        """Every run, page by page, optionally filtered."""
        return self._client.paginate(
            "/v1/deployment_runs",
            {"deployment_id": deployment_id, "has_error": has_error, "trigger_type": trigger_type},
        )


class Sessions(DeletableCollection):
    """``/v1/sessions`` and their events."""

    collection = "sessions"

    def list(
        self,
        *,
        agent_id: str | None = None,
        agent_version: int | None = None,
        statuses: Sequence[str] | None = None,
        include_archived: bool = False,
        order: str | None = None,
        deployment_id: str | None = None,
        memory_store_id: str | None = None,
        created_at: JSON | None = None,
        created_at_gt: str | None = None,
        created_at_gte: str | None = None,
        created_at_lt: str | None = None,
        created_at_lte: str | None = None,
    ) -> Pager:
        """Every session, page by page, filtered as the wire's list filters (provider-wire.md
        §6) say: ``created_at={"gte": ...}`` or ``created_at_gte=``, ``statuses=["idle"]``.
        Named, not passed through: an unknown filter (``agent=``) would be ignored by the
        server and list every session."""
        return self._client.paginate(
            "/v1/sessions",
            {
                "agent_id": agent_id,
                "agent_version": agent_version,
                "statuses": statuses,
                "include_archived": _archived(include_archived),
                "order": order,
                "deployment_id": deployment_id,
                "memory_store_id": memory_store_id,
                "created_at": created_at,
                "created_at_gt": created_at_gt,
                "created_at_gte": created_at_gte,
                "created_at_lt": created_at_lt,
                "created_at_lte": created_at_lte,
            },
        )

    async def send_events(self, session_id: str, events: JSONList) -> JSONList:
        """Send user events; returns the accepted events with their ids (not idempotent)."""
        result = await self._client.request(
            "POST", item_path("sessions", session_id, "events"), json={"events": events}
        )
        data: JSONList = result.get("data", []) if isinstance(result, dict) else []
        return data

    def list_events(self, session_id: str, *, limit: int | None = 100, **filters: Any) -> Pager:
        """Every event of a session, page by page (``types=[...]``, ``order=``, ...;
        ``limit``: the page size)."""
        return self._client.paginate(
            item_path("sessions", session_id, "events"), filters, limit=limit
        )

    def stream_events(
        self, session_id: str, *, event_deltas: Sequence[str] | None = None
    ) -> AbstractAsyncContextManager[EventStream]:
        """Open the session's live event stream (SSE).

        Args:
            session_id: the session.
            event_deltas: optional delta kinds, e.g. ``["agent.message"]``.

        Returns:
            An async context manager yielding an async iterator of event dicts; ``ping``
            frames are skipped and an ``error`` frame raises the typed error.

        Example:
            >>> async with client.sessions.stream_events(sid) as events:
            ...     await client.sessions.send_events(sid, [user_message])
            ...     async for event in events:
            ...         if event["type"] == "session.status_idle":
            ...             break
        """
        return self._client.stream_sse(
            item_path("sessions", session_id, "events", "stream"),
            {"event_deltas": event_deltas},
            describe=f"session {session_id}'s event stream",
        )
