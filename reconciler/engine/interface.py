"""The engine's only seam to the provider: two protocols, by role.

Planning receives a ``ProviderReader`` (it cannot mutate anything); apply receives a
``ProviderWriter``. Both speak wire JSON dicts and raise ``reconciler.errors`` classes.
``reconciler.provider.ClientBackedProvider`` implements them over the HTTP client; nothing
in the engine knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from reconciler.engine.model import Action
from reconciler.jsontypes import JSON
from reconciler.kinds import Kind

#: ``resolve()`` -> the object a write whose answer was lost made, or None when it did not
#: happen. The writer calls it before it sends such a write again: the provider client owns
#: every retry (how often, how long to wait); the engine only knows how to look.
AmbiguityResolver = Callable[[], Awaitable[JSON | None]]


class ProviderReader(Protocol):
    """Read-only view used by refresh and drift."""

    async def list_all(self, kind: Kind, *, parent_id: str | None = None) -> list[JSON]:
        """Every object of a kind, archived ones included (one paged list)."""
        ...

    async def list_versions(self, agent_id: str) -> list[JSON]:
        """Every version of an agent (drift uses it to say which version changed what)."""
        ...


class ProviderWriter(ProviderReader, Protocol):
    """What apply may do."""

    async def create(
        self,
        kind: Kind,
        body: JSON,
        *,
        parent_id: str | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON: ...

    async def update(
        self,
        kind: Kind,
        remote_id: str,
        body: JSON,
        *,
        parent_id: str | None = None,
        resolve: AmbiguityResolver | None = None,
    ) -> JSON: ...

    async def archive(
        self, kind: Kind, remote_id: str, *, parent_id: str | None = None
    ) -> JSON: ...

    async def delete(self, kind: Kind, remote_id: str, *, parent_id: str | None = None) -> None: ...

    async def retrieve(
        self, kind: Kind, remote_id: str, *, parent_id: str | None = None
    ) -> JSON: ...


class IntentJournal(Protocol):
    """Where apply records what it is about to create, before it sends it (crash safety)."""

    async def intend(self, action: Action) -> None:
        """Record that ``action`` (a create, or a replace's new object) may soon exist.

        Returns once that record is durable: the executor sends the create only then, so a
        crash right after the request leaves an intent the next run resolves by the
        object's ownership tags. Raising aborts the apply.
        """
        ...


#: ``resolve_secret(address, path)`` -> the secret's value, read at apply time (env or file).
SecretResolver = Callable[[str, str], str]

#: ``read_files(skill address, digest)`` -> the upload of the skill's files, read at apply
#: time; raises when they no longer have the digest the plan was made with (the writer
#: takes the value as the body's ``files``: ``provider.SkillUpload`` for the client's).
FileResolver = Callable[[str, str | None], Any]
