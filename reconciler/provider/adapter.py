"""Adapt ``ProviderClient`` to the engine's provider protocols, by kind.

The engine speaks of resources by kind (``"agent"``, ``"environment"``, ``"vault"``,
``"credential"``, ``"deployment"``, ``"memory_store"``); the client has one resource object per kind with
slightly different signatures (credentials live under a vault). This module maps one onto
the other and nothing more: no retries, no caching, no decisions (a ``resolve`` callback
of the engine's is handed to the client, which owns every retry). It satisfies
``reconciler.engine.interface.ProviderReader`` / ``ProviderWriter`` structurally and must
not import the engine (the provider layer sits below it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.errors import ConflictError, ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import KIND_INFO, KIND_NAMES

if TYPE_CHECKING:
    from reconciler.provider.client import AmbiguityResolver, ProviderClient


class ClientBackedProvider:
    """The engine's read/write view of a provider, over one ``ProviderClient``.

    Every method returns wire JSON as plain dicts and raises ``reconciler.errors`` classes
    exactly as the client does.

    Args:
        client: an open client (the caller owns its lifetime).
    """

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    # -- reading ---------------------------------------------------------------------------

    async def list_all(self, kind: str, *, parent_id: str | None = None) -> list[JSON]:
        """Every object of ``kind``, archived ones included, in one paged list.

        Args:
            kind: a resource kind.
            parent_id: the vault id, required for ``credential``.
        """
        c = self.client
        match kind:
            case "agent":
                pager = c.agents.list(include_archived=True)
            case "environment":
                pager = c.environments.list(include_archived=True)
            case "vault":
                pager = c.vaults.list(include_archived=True)
            case "credential":
                pager = c.credentials.list(_vault(kind, parent_id), include_archived=True)
            case "deployment":
                pager = c.deployments.list(include_archived=True)
            case "memory_store":
                pager = c.memory_stores.list(include_archived=True)
            case "skill":
                pager = c.skills.list()
            case _:
                raise _unknown(kind)
        return share_strings(list(await pager.to_list()))

    async def list_versions(self, agent_id: str) -> list[JSON]:
        """Every version of an agent, as the provider pages them."""
        return list(await self.client.agents.versions(agent_id).to_list())

    async def retrieve(self, kind: str, remote_id: str, *, parent_id: str | None = None) -> JSON:
        """One object by id (archived objects are still returned)."""
        if kind == "credential":
            return dict(await self.client.credentials.retrieve(_vault(kind, parent_id), remote_id))
        return dict(await self._resource(kind).retrieve(remote_id))

    # -- writing ---------------------------------------------------------------------------

    async def create(
        self,
        kind: str,
        body: JSON,
        *,
        parent_id: str | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON:
        """Create an object; credentials are created inside vault ``parent_id``.

        ``resolve`` looks up a create whose answer was lost before the client sends it again
        (``ProviderClient.request``).
        """
        if kind == "credential":
            vault_id = _vault(kind, parent_id)
            return dict(await self.client.credentials.create(vault_id, body, resolve=resolve))
        if kind == "skill":
            skill = await self.client.skills.create(
                body["files"], display_name=body.get("display_name"), resolve=resolve
            )
            return dict(skill)
        if kind == "memory_store" and "memories" in body:
            body = dict(body)
            seeds = body.pop("memories") or []
            store = dict(await self.client.memory_stores.create(body, resolve=resolve))
            await self._seed(store["id"], seeds)
            return store
        return dict(await self._resource(kind).create(body, resolve=resolve))

    async def _seed(self, store_id: str, seeds: list[JSON]) -> None:
        """Write a store's seed memories, one request each, in order.

        A path that already holds a memory is left as it is (409): a create that was
        retried, or an update that finishes an interrupted create's seeding
        (``engine.seeds``), writes only what is missing, and never overwrites what an agent
        wrote.
        """
        memories = self.client.memory_stores.memories
        for seed in seeds:
            try:
                await memories.create(store_id, seed["path"], seed["content"])
            except ConflictError:
                continue  # the path holds a memory already: the agents' content is theirs

    async def update(
        self,
        kind: str,
        remote_id: str,
        body: JSON,
        *,
        parent_id: str | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON:
        """Update an object (POST; the body holds only the fields to change)."""
        if kind == "credential":
            vault_id = _vault(kind, parent_id)
            return dict(await self.client.credentials.update(vault_id, remote_id, body))
        if kind == "skill":
            return await self._new_skill_version(remote_id, body, resolve)
        if kind == "memory_store" and "memories" in body:
            # the seeds an interrupted create left unwritten (engine.seeds); not a store field
            body = dict(body)
            seeds = body.pop("memories") or []
            stores = self.client.memory_stores
            store = dict(
                await stores.update(remote_id, body, resolve=resolve)
                if body
                else await stores.retrieve(remote_id)
            )
            await self._seed(store["id"], seeds)
            return store
        return dict(await self._resource(kind).update(remote_id, body, resolve=resolve))

    async def _new_skill_version(
        self, skill_id: str, body: JSON, resolve: AmbiguityResolver | None
    ) -> JSON:
        """A skill's only "update": upload ``body["files"]`` as its new latest version.

        Returns the skill as it is after the upload (``latest_version_id`` the new version),
        so a caller reads a skill's new version where a create's answer has it too.
        """
        version = await self.client.skills.versions.create(
            skill_id, body["files"], after_version=body.get("after_version"), resolve=resolve
        )
        return {
            "id": skill_id,
            "type": "skill",
            "latest_version_id": version["id"],
            "name": version.get("name"),
        }

    async def archive(self, kind: str, remote_id: str, *, parent_id: str | None = None) -> JSON:
        """Archive an object; archiving an archived object returns it unchanged."""
        if kind == "credential":
            return dict(await self.client.credentials.archive(_vault(kind, parent_id), remote_id))
        return dict(await self._resource(kind).archive(remote_id))

    async def delete(self, kind: str, remote_id: str, *, parent_id: str | None = None) -> None:
        """Delete an object for good (the kinds ``KindInfo.can_delete`` names).

        Raises:
            ProviderError: ``kind`` is an agent or a deployment, which the API cannot delete.
        """
        if kind in KIND_INFO and not KIND_INFO[kind].can_delete:  # provider-wire.md §10
            raise ProviderError(
                f"{kind}s cannot be deleted: the provider has no delete endpoint for them "
                f"({remote_id} was left as it is); archive it instead.",
                error_type="unsupported_operation",
            )
        if kind == "credential":
            await self.client.credentials.delete(_vault(kind, parent_id), remote_id)
            return
        if kind == "skill":
            await self._delete_skill(remote_id)
            return
        await self._resource(kind).delete(remote_id)

    async def _delete_skill(self, skill_id: str) -> None:
        """Delete a skill. The local provider deletes its versions along; Anthropic's API
        documents that a skill's versions are deleted first: when the delete is refused
        (400/409), every version that can be is deleted, then the skill."""
        skills = self.client.skills
        try:
            await skills.delete(skill_id)
            return
        except ProviderError as error:
            if error.status not in (400, 409):
                raise
        for version in await skills.versions.list(skill_id).to_list():
            try:
                await skills.versions.delete(skill_id, version["id"])
            except ProviderError as error:  # the last one, where a skill must keep one
                if error.status not in (400, 409):
                    raise
        await skills.delete(skill_id)

    # -- plumbing --------------------------------------------------------------------------

    def _resource(self, kind: str) -> Any:
        c = self.client
        match kind:
            case "agent":
                return c.agents
            case "environment":
                return c.environments
            case "vault":
                return c.vaults
            case "deployment":
                return c.deployments
            case "memory_store":
                return c.memory_stores
            case "skill":
                return c.skills
            case _:
                raise _unknown(kind)


def _vault(kind: str, parent_id: str | None) -> str:
    if not parent_id:
        raise ValueError(f"a {kind} lives inside a vault: parent_id (the vault id) is required")
    return parent_id


def _unknown(kind: str) -> ValueError:
    return ValueError(f"unknown resource kind {kind!r}; expected one of {', '.join(KIND_NAMES)}")


def share_strings(items: list[JSON]) -> list[JSON]:
    """``items`` with equal short strings made one object (in place), e.g. every agent's
    ``"claude-sonnet-4-6"``, ``"service_account"`` and metadata values.

    JSON decoding makes a new string for every value, and a plan keeps every listed object
    until it is done: for 10,000 agents this saves ~5 MiB of its peak for ~0.1 s of CPU
    (``bench/RESULTS.md``). The table lives for one call, so unique values (ids, times) are
    kept nowhere else.
    """
    table: dict[str, str] = {}
    stack: list[Any] = [items]
    while stack:
        node = stack.pop()
        pairs = node.items() if type(node) is dict else enumerate(node)
        for key, value in pairs:
            kind = type(value)
            if kind is str:
                if len(value) <= 40:
                    node[key] = table.setdefault(value, value)
            elif kind is dict or kind is list:
                stack.append(value)
    return items
