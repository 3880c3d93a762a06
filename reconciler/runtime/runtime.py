"""ManagedRuntime: the Managed Runtime Protocol over one ``ProviderClient``.

Agents, environments and sessions at run time - create, retrieve, list (every page),
archive, delete - plus session events (send, stream, interrupt) and agent version pinning,
with the method names of PraisonAI's ``ManagedBackendProtocol`` and the wire of
provider-wire.md. Provider failures are the client's typed errors (``reconciler.errors``);
this module never invents its own for them. It holds no state beyond the ids it remembers.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from reconciler.errors import AmbiguousWriteError, ConflictError, ProviderError
from reconciler.jsontypes import JSON
from reconciler.kinds import ADDRESS_KEY, APPLY_SESSION_KEYS, DEFAULT_PROVIDER_DB, OWNER_KEY
from reconciler.provider.wire import check_api_key
from reconciler.runtime.applied import DEFAULT_LOCKFILE, AppliedLookups
from reconciler.runtime.config import (
    ManagedConfig,
    environment_differences,
    metadata_strings,
    refuse_ownership_keys,
    reuse_refused,
)
from reconciler.runtime.listing import SessionListStatus, listed, session_filters
from reconciler.runtime.options import (
    CLIENT_OPTIONS,
    check_arguments,
    check_config,
    check_id,
    check_version,
    session_list,
    unknown_keywords,
)
from reconciler.runtime.streams import (
    SentLedger,
    SessionEventStream,
    as_events,
    settle_send,
)
from reconciler.runtime.turns import Turn

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient

__all__ = ["CLIENT_OPTIONS", "DEFAULT_DB_PATH", "ManagedRuntime"]

Event = str | Mapping[str, Any] | Sequence[Mapping[str, Any]]

#: Where the embedded local provider keeps its data unless told otherwise (as the CLI does).
DEFAULT_DB_PATH = DEFAULT_PROVIDER_DB
#: Runtime clients wait long for a quiet event stream: agent turns can think for minutes.
DEFAULT_TIMEOUT_S = 600.0

#: Session metadata keys a program may not set: those that claim the reconciler's ownership,
#: and those of the sessions apply runs itself (it archives checks, reads records back).
_SESSION_REFUSED = (OWNER_KEY, ADDRESS_KEY, *APPLY_SESSION_KEYS)


class ManagedRuntime(AppliedLookups):
    """Run agents on a Managed Agents provider: the Managed Runtime Protocol.

    Args:
        config: what ``create_agent``/``create_environment``/``create_session`` create when
            called without their own config; default ``ManagedConfig()``.
        provider_url: the API base URL; default env ``RECONCILER_PROVIDER_URL``; when neither
            is set, the embedded local provider runs in this process.
        api_key: sent as ``x-api-key``; default env ``ANTHROPIC_API_KEY``. A key with
            whitespace (a trailing newline) or a non-ASCII character is a ``ValueError`` here,
            whose message never shows the key.
        db_path: the embedded provider's SQLite file; default env ``RECONCILER_PROVIDER_DB``,
            else ``.reconciler/provider.db`` (ignored with a provider URL).
        client: an open ``ProviderClient`` to use instead of building one; the runtime then
            neither opens nor closes it (the CLI and tests share theirs this way).
        lockfile: where ``agent()``, ``environment()``, ``vault()``, ``deployment()`` and
            ``applied()`` look up what ``reconciler apply`` created; default env
            ``RECONCILER_LOCKFILE``, else ``state/reconciler.lock``.
        project: the lockfile's project; default env ``RECONCILER_PROJECT``, else ``default``.
        backend: the PostgreSQL state (a connection string, as ``--backend``) the lookups
            read instead of the lockfile; default env ``RECONCILER_BACKEND``. Anything but a
            connection string is a ``ValueError`` here (whose message never shows it).
        client_kwargs: ``ProviderClient`` keywords (``timeout``, ``max_retries``...: the
            names in ``CLIENT_OPTIONS``) for the client the runtime builds; any other keyword
            is a ``TypeError`` here (``base_url=`` is ``provider_url=``).

    The runtime connects on first use: ``async with`` is optional (it closes everything on
    exit); without it, ``await rt.aclose()`` when done.

    Attributes:
        config: the runtime's ``ManagedConfig``.
        agent_id, environment_id, session_id: ids remembered from the last create (and
            cleared by archiving or deleting that object); methods use them when given None.
        agent_version: pin new sessions to this agent version; None = the latest version at
            session creation.
    """

    def __init__(
        self,
        config: ManagedConfig | None = None,
        provider_url: str | None = None,
        api_key: str | None = None,
        *,
        db_path: str | os.PathLike[str] | None = None,
        client: ProviderClient | None = None,
        lockfile: str | os.PathLike[str] | None = None,
        project: str | None = None,
        backend: str | None = None,
        **client_kwargs: Any,
    ) -> None:
        check_arguments(
            config=config,
            provider_url=provider_url,
            api_key=api_key,
            project=project,
            backend=backend,
            db_path=db_path,
            lockfile=lockfile,
        )
        if client is not None and (provider_url or api_key or db_path or client_kwargs):
            raise TypeError(
                "pass either client= or the options to build one (provider_url, api_key, "
                "db_path, client keywords), not both"
            )
        # refused now, not at the first call that builds the client (a typo such as
        # provider_ulr= would otherwise fall back to the embedded provider until then)
        unknown = sorted(set(client_kwargs) - CLIENT_OPTIONS)
        if unknown:
            raise TypeError(unknown_keywords(unknown))
        self.config = config if config is not None else ManagedConfig()
        self.provider_url = provider_url or os.environ.get("RECONCILER_PROVIDER_URL") or None
        if self.provider_url is not None:  # refused now, naming where it came from
            from reconciler.provider.origin import normalize_base_url

            source = "provider_url" if provider_url else "RECONCILER_PROVIDER_URL"
            normalize_base_url(self.provider_url, source)
        self.api_key = api_key or os.environ.get("ANTHROPIC_API_KEY") or None
        if self.api_key is not None:
            check_api_key(self.api_key, "api_key" if api_key else "ANTHROPIC_API_KEY")
        self.db_path = Path(db_path or os.environ.get("RECONCILER_PROVIDER_DB") or DEFAULT_DB_PATH)
        self.lockfile = Path(lockfile or os.environ.get("RECONCILER_LOCKFILE") or DEFAULT_LOCKFILE)
        self.project = project or os.environ.get("RECONCILER_PROJECT") or "default"
        self.backend = backend or os.environ.get("RECONCILER_BACKEND") or None
        if self.backend is not None:
            from reconciler.state import is_database  # the state layer: only when used

            if not is_database(self.backend):
                source = "backend" if backend else "RECONCILER_BACKEND"
                raise ValueError(
                    f"{source} takes a PostgreSQL connection string (postgresql://USER@HOST:"
                    "PORT/DBNAME, or libpq's key=value words), where `reconciler --backend` "
                    "keeps the state; leave it unset to read the lockfile (lockfile=)"
                )
        self.agent_id: str | None = None
        self.environment_id: str | None = None
        self.session_id: str | None = None
        self.agent_version: int | None = None
        self._client_kwargs = client_kwargs
        self._client: ProviderClient | None = client
        self._owns_client = client is None
        self._exit_stack: AsyncExitStack | None = None
        # The loop the built client's connections belong to: a runtime kept between
        # ``asyncio.run`` calls reconnects on the new loop (``_api``).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()
        # weak: a stream the program dropped while open closes itself (its ``__del__``)
        self._streams: weakref.WeakSet[SessionEventStream] = weakref.WeakSet()
        self._ledger = SentLedger()

    def __repr__(self) -> str:
        from reconciler.provider.origin import normalize_base_url

        # normalised as the client uses it: without user info, which may hold a password
        where = (
            "injected client"
            if not self._owns_client
            else (
                normalize_base_url(self.provider_url, "provider_url")
                if self.provider_url
                else f"embedded {self.db_path}"
            )
        )
        return f"<ManagedRuntime {where} agent={self.agent_id} session={self.session_id}>"

    # ------------------------------------------------------------------ lifetime

    def provider_origin(self) -> str | None:
        """The provider this runtime talks to, as a lockfile records it (``applied`` refuses
        a lockfile applied to another one); None with an injected ``client=``."""
        from reconciler.provider.origin import run_origin

        if not self._owns_client:
            return None
        database = self.backend is not None  # no lockfile folder: the path is absolute
        return run_origin(self.provider_url, self.db_path, self.lockfile, database=database)

    @property
    def uses_embedded_provider(self) -> bool:
        """True when the runtime builds its own client over the in-process local provider."""
        return self._owns_client and not self.provider_url

    @property
    def client(self) -> ProviderClient:
        """The provider client (for calls the protocol does not cover, e.g. agent updates).

        Raises:
            RuntimeError: not connected yet: no method ran, ``open()`` was not awaited and
                the runtime was not entered with ``async with``.
        """
        if self._client is None:
            raise RuntimeError(
                "the ManagedRuntime is not connected yet; `await rt.open()` (or call any of "
                "its methods, or use `async with ManagedRuntime(...) as rt:`) first"
            )
        return self._client

    @property
    def ids(self) -> dict[str, Any]:
        """The remembered ids and version pin (PraisonAI's ``save_ids`` payload)."""
        return {
            "agent_id": self.agent_id,
            "agent_version": self.agent_version,
            "environment_id": self.environment_id,
            "session_id": self.session_id,
        }

    async def open(self) -> Self:
        """Connect now: build and open the client (idempotent).

        Every method connects on first use, so this is optional; ``async with`` calls it.
        A runtime used without ``async with`` should be closed with ``await rt.aclose()``;
        one left open is closed when its event loop ends under ``asyncio.run``, and a later
        call on another loop (the next ``asyncio.run``) connects again.
        """
        if self._exit_stack is not None and self._loop is not asyncio.get_running_loop():
            self._forget_other_loop()
        if self._client is not None:
            return self
        async with self._opening:
            if self._client is None and self._owns_client:
                from reconciler.provider import connect_client  # the edge, built when used

                kwargs = dict(self._client_kwargs)
                kwargs.setdefault("timeout", DEFAULT_TIMEOUT_S)
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    connect_client(self.provider_url, self.api_key, db_path=self.db_path, **kwargs)
                )
                self._exit_stack = stack
                self._loop = asyncio.get_running_loop()
                # Connections belong to this loop: close them while it still runs, when
                # asyncio.run cancels what is left at its end (its last chance to).
                self._guard = self._loop.create_task(self._close_with_the_loop())
        return self

    async def _api(self) -> ProviderClient:
        """The client, connecting first if needed (again, on another event loop)."""
        await self.open()
        return self.client

    async def _close_with_the_loop(self) -> None:
        """Wait until cancelled - by ``aclose()`` or by the end of ``asyncio.run`` - then close."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            if self._guard is asyncio.current_task():
                await self._close_client()

    def _forget_other_loop(self) -> None:
        """Drop a client built on an event loop that is not this one (closed without
        ``asyncio.run``'s clean-up): its connections cannot be used or closed from here."""
        self._client, self._exit_stack, self._loop, self._guard = None, None, None, None
        self._streams.clear()
        self._opening = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every stream still open and, if the runtime built it, the client.

        A later call connects again.
        """
        if self._exit_stack is not None and self._loop is not asyncio.get_running_loop():
            self._forget_other_loop()  # nothing of it can be closed from this loop
        await self._close_client()

    async def _close_client(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None and guard is not asyncio.current_task():
            guard.cancel()
        try:
            for stream in list(self._streams):
                await stream.aclose()
        finally:
            stack, self._exit_stack = self._exit_stack, None
            if stack is not None:
                self._client, self._loop = None, None
                await stack.aclose()

    # ------------------------------------------------------------------ agents

    async def create_agent(self, config: ManagedConfig | None = None) -> str:
        """Create an agent from ``config`` (default: the runtime's) and remember its id.

        Returns:
            The new agent's id. Its version is 1.
        """
        check_config(config)
        agent = await (await self._api()).agents.create((config or self.config).agent_body())
        self.agent_id = str(agent["id"])
        return self.agent_id

    async def retrieve_agent(
        self, agent_id: str | None = None, *, version: int | None = None
    ) -> JSON:
        """The agent object (latest version, or ``version``); archived agents too.

        Raises:
            NotFoundError: no such agent or version.
            TypeError / ValueError: ``version`` is no version number (nothing is sent).
        """
        agent_id = self._id("agent", agent_id)
        check_version(version)
        return await (await self._api()).agents.retrieve(agent_id, version=version)

    async def list_agents(self, *, limit: int | None = None, **filters: Any) -> list[JSON]:
        """Every agent, all pages (or the first ``limit``, in the provider's order).

        Args:
            limit: at most this many; None = all.
            filters: ``include_archived=True``, ``created_at_gte=``, ``created_at_lte=``.
        """
        return await listed("list_agents", (await self._api()).agents.list, limit, filters)

    async def archive_agent(self, agent_id: str | None = None) -> JSON:
        """Archive an agent (there is no delete); returns the archived agent.

        Existing sessions keep running; new sessions cannot use it.
        """
        return await self._retire("agent", agent_id, lambda api, id: api.agents.archive(id))

    # ------------------------------------------------------------------ environments

    async def create_environment(
        self, config: ManagedConfig | None = None, *, reuse: bool | None = None
    ) -> str:
        """Create a cloud environment named ``config.env_name`` - or reuse it - and remember its id.

        Environment names are unique among active environments on the provider, so a script
        that creates its environment fails on its second run. Following "create once,
        reuse", by default an active environment of the same name is reused when it is the
        one the config describes (same networking and packages; allowed hosts in any order).

        Args:
            config: default the runtime's; supplies ``env_name``, ``networking``, ``packages``.
            reuse: None (default): reuse a same-named environment that matches the config,
                refuse one that differs. True: reuse a same-named environment as it is.
                False: always create (a taken name is a ``ConflictError``).

        Returns:
            The environment's id.

        Raises:
            ConflictError: the name is taken and ``reuse`` is False, or (default) the
                environment of that name differs from the config; the message names the
                differences. Give the config another ``env_name``, archive the old
                environment, or pass ``reuse=True``.
        """
        check_config(config)
        body = (config or self.config).environment_body()
        client = await self._api()

        async def made_it() -> JSON | None:
            # An answer lost after the provider wrote it (a 503, a dropped connection): the
            # name is unique among active environments, so a lookup settles it. Not there,
            # or not this config's (then it was not this create's): None, and the client
            # sends the create again (a taken name then answers 409, handled below).
            named = [
                e
                for e in await client.environments.list().to_list()
                if e.get("name") == body["name"]
                and not environment_differences(body["config"], e.get("config") or {})
            ]
            return named[0] if named else None

        try:
            env = await client.environments.create(
                body, resolve=None if reuse is False else made_it
            )
        except ConflictError as exc:
            if reuse is False:
                raise
            name = body["name"]
            found = [e for e in await self.list_environments() if e.get("name") == name]
            if not found:
                raise
            env = found[0]
            differences = environment_differences(body["config"], env.get("config") or {})
            if differences and reuse is None:
                raise ConflictError(reuse_refused(env, differences), **exc.details()) from exc
        self.environment_id = str(env["id"])
        return self.environment_id

    async def retrieve_environment(self, env_id: str | None = None) -> JSON:
        """The environment object (archived ones too)."""
        return await (await self._api()).environments.retrieve(self._id("environment", env_id))

    async def list_environments(self, *, limit: int | None = None, **filters: Any) -> list[JSON]:
        """Every environment, all pages (``include_archived=True`` adds archived ones), or
        the first ``limit``."""
        api = await self._api()
        return await listed("list_environments", api.environments.list, limit, filters)

    async def archive_environment(self, env_id: str | None = None) -> JSON:
        """Archive an environment (no new sessions in it); returns the archived object."""
        return await self._retire(
            "environment", env_id, lambda api, id: api.environments.archive(id)
        )

    async def delete_environment(self, env_id: str | None = None) -> JSON:
        """Delete an environment for good; returns ``{"id", "type": "environment_deleted"}``."""
        return await self._retire(
            "environment", env_id, lambda api, id: api.environments.delete(id)
        )

    # ------------------------------------------------------------------ sessions

    async def create_session(
        self,
        agent_id: str | None = None,
        env_id: str | None = None,
        *,
        title: str | None = None,
        vault_ids: Sequence[str] | None = None,
        version: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        resources: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Start a session of an agent in an environment and remember its id.

        Args:
            agent_id: default the remembered agent.
            env_id: default the remembered environment.
            title: default ``config.session_title``.
            vault_ids: default ``config.vault_ids``; fixed for the session's life.
            version: pin this agent version; default ``self.agent_version``; when both are
                None the session pins the agent's latest version at creation.
            metadata: session metadata; values are strings on the wire, so numbers become
                their decimal text and booleans ``"true"``/``"false"``, as in
                ``ManagedConfig(metadata=...)``. ``managed-by`` and
                ``reconciler-address`` are reserved: they mark what the reconciler owns; so
                are the keys of the sessions apply runs (``reconciler-check``,
                ``reconciler-candidate``: a check, which an apply archives;
                ``reconciler-rollout``, ``reconciler-record``: a rollout record, which a
                plan reads back). ``reconciler-project`` may name the project, and
                ``reconciler-run`` / ``reconciler-run-id`` the address and run token, as
                ``reconciler run`` does for the sessions it starts.
            resources: session resources; default ``config.resources``.

        Returns:
            The session's id. ``retrieve_session(id)["agent"]["version"]`` shows the pin.

        Raises:
            ValueError: ``metadata`` has an ownership key (nothing is sent).
            TypeError: a ``metadata`` value is None, a list or an object (nothing is sent).
            TypeError: ``vault_ids`` or ``resources`` is one id or dict, not a list of them
                (nothing is sent).
        """
        if metadata:
            refuse_ownership_keys("create_session metadata", metadata, keys=_SESSION_REFUSED)
        tags = metadata_strings("create_session", metadata, _SESSION_REFUSED)
        agent_id = self._id("agent", agent_id)
        pin = version if version is not None else self.agent_version
        check_version(pin)
        agent: str | JSON = (
            agent_id if pin is None else {"type": "agent", "id": agent_id, "version": pin}
        )
        body: JSON = {"agent": agent, "environment_id": self._id("environment", env_id)}
        title = title if title is not None else self.config.session_title
        if title is not None:
            body["title"] = title
        vaults = session_list("vault_ids", vault_ids, str, self.config.vault_ids)
        if vaults:
            body["vault_ids"] = vaults
        mounts = session_list("resources", resources, Mapping, self.config.resources)
        if mounts:
            body["resources"] = [dict(r) for r in mounts]
        if tags:
            body["metadata"] = tags
        session = await (await self._api()).sessions.create(body)
        self.session_id = str(session["id"])
        return self.session_id

    async def retrieve_session(self, session_id: str | None = None) -> JSON:
        """The session object: ``status``, ``agent`` (the pinned snapshot), ``usage``...

        Raises:
            NotFoundError: no such session (e.g. it was deleted).
        """
        return await (await self._api()).sessions.retrieve(self._id("session", session_id))

    async def list_sessions(
        self, status: SessionListStatus | None = None, *, limit: int | None = None, **filters: Any
    ) -> list[JSON]:
        """Every session matching the filters, all pages (or the first ``limit``).

        Args:
            limit: at most this many; None = all.
            status: ``"active"`` = not archived (the default listing); ``"archived"`` = only
                archived ones; ``"all"`` = both; a session status (``"idle"``, ``"running"``,
                ``"rescheduling"``, ``"terminated"``) = active sessions in that status.
            filters: wire filters passed through: ``agent_id``, ``agent_version``,
                ``statuses=[...]``, ``order="asc"``, ``created_at_gte=``, ``include_archived``...

        Example:
            >>> stale = await rt.list_sessions("archived", agent_id=rt.agent_id)
        """
        keep = session_filters(status, filters)
        api = await self._api()
        return await listed("list_sessions", api.sessions.list, limit, filters, keep)

    async def archive_session(self, session_id: str | None = None) -> JSON:
        """Archive a session (it takes no more events); returns the archived session."""
        return await self._retire("session", session_id, lambda api, id: api.sessions.archive(id))

    async def delete_session(self, session_id: str | None = None) -> JSON:
        """Delete a session and its events for good; returns ``{"id", "type"}``."""
        return await self._retire("session", session_id, lambda api, id: api.sessions.delete(id))

    # ------------------------------------------------------------------ events

    async def send_event(self, session_id: str | None, event: Event) -> list[JSON]:
        """Send events to a session.

        Args:
            session_id: the session (None = the remembered one).
            event: a plain string (sent as a ``user.message`` with one text block), one wire
                event dict (``{"type": "user.tool_confirmation", ...}``) or a list of them.

        Returns:
            The events as the provider accepted them, with their ids.

        A lost answer (a 5xx, a dropped connection) is settled, not raised: the session's
        events after its newest one before the send say whether they arrived; if not, they
        are sent once more (never a third time). The wire has no idempotency key for events:
        a send the provider writes only after that look is in the session twice.

        Raises:
            NotFoundError: the session does not exist (e.g. it was deleted).
            ConflictError / BadRequestError: the session cannot take these events now.
            AmbiguousWriteError: the answer was lost and the events could not be listed.
            ProviderError: sent twice, both answers lost, and neither arrived.
        """
        return await self._send(self._id("session", session_id), as_events(event))

    async def _send(
        self, session_id: str, events: list[JSON], *, settle: bool = True
    ) -> list[JSON]:
        """Send ``events``; a lost answer is settled by the session's events (``settle``)."""
        api = await self._api()
        if not settle:
            sent = await api.sessions.send_events(session_id, events)
            self._ledger.sent(session_id, sent)
            return sent
        # where the session stands before the send: a lost answer is settled from here
        newest: JSON | None = None
        async for newest in api.sessions.list_events(session_id, order="desc", limit=1):
            break
        try:
            sent = await api.sessions.send_events(session_id, events)
        except AmbiguousWriteError as error:
            sent = await settle_send(api, session_id, events, newest, error)
        self._ledger.sent(session_id, sent)
        return sent

    def stream_events(
        self, session_id: str | None = None, *, follow: bool = False
    ) -> SessionEventStream:
        """The session's event stream: an async iterator of event dicts.

        Works in either order: events sent with ``send_event`` before the stream opened are
        replayed from the session's event list, then it continues live, each event once.
        It ends by itself after a turn-ending event (``ends_turn``) when nothing sent is
        still pending, and at once (with a warning in the log) on an idle session to which
        nothing was sent - so ``async for`` never hangs waiting for nothing. The runtime
        closes it when it closes.

        Args:
            session_id: the session (None = the remembered one).
            follow: a plain live tail instead: no replay, no end; for watching a session
                that something else (a deployment, another program) drives.

        Example:
            >>> await rt.send_event(sid, "hello")
            >>> async for event in rt.stream_events(sid):
            ...     print(event["type"])
            ...     if event["type"] == "session.status_idle":
            ...         break
        """
        return self._stream(self._id("session", session_id), follow=follow)

    def _stream(
        self, session_id: str, *, follow: bool = False, replay: bool = True
    ) -> SessionEventStream:
        stream = SessionEventStream(
            self._api,
            session_id,
            ledger=self._ledger,
            follow=follow,
            replay=replay,
            on_close=self._streams.discard,
            on_reopen=self._streams.add,
        )
        self._streams.add(stream)
        return stream

    def run_turn(
        self,
        session_id: str | None,
        message: Event,
        *,
        on_reconnect: Callable[[ProviderError], None] | None = None,
    ) -> Turn:
        """Send ``message`` and yield the session's events until the agent's turn ends.

        The stream is opened (the server has answered) before the message is sent, so no
        event of the turn is lost. The turn ends with a ``session.status_idle`` whose stop
        reason is not ``requires_action``, or with ``session.error``; that event is yielded
        last. Iterate with ``async for``, or ``await turn.collect()`` for the list.

        A stream cut before the turn ended (a dropped connection, a proxy's idle timeout,
        an error frame) is reopened, up to 3 times in a row with the client's backoff:
        what the session's event list holds after the last event read comes first, then
        the live events, each once. When reopening fails the error is raised
        (``ProviderConnectionError``, ``ServerError``, ``RateLimitError``, ``NotFoundError``:
        the session deleted meanwhile); ``turn.reconnects`` counts them.

        Args:
            session_id: the session (None = the remembered one).
            message: a string (a user message) or event dict(s), as for ``send_event``.
            on_reconnect: called with the error that broke the stream off, once it is open
                again.

        Example:
            >>> async for event in rt.run_turn(sid, "list the files"):
            ...     if event["type"] == "agent.message":
            ...         print(event["content"][0]["text"])
        """
        session_id = self._id("session", session_id)
        events = as_events(message)
        # a live tail: the turn itself finds where it begins and ends (the stream's own end
        # at the first turn-ending event could be another turn's, run at the same time)
        stream = self._stream(session_id, follow=True)

        async def send() -> list[JSON]:
            return await self.send_event(session_id, events)

        return Turn(stream, send, on_reconnect=on_reconnect)

    async def interrupt(self, session_id: str | None = None) -> list[JSON]:
        """Ask the agent to stop its current turn (sends ``user.interrupt``).

        Returns:
            The accepted interrupt event.
        """
        # sent as it is, quickly (Ctrl-C waits on it): a second interrupt does no harm
        events = as_events({"type": "user.interrupt"})
        return await self._send(self._id("session", session_id), events, settle=False)

    # ------------------------------------------------------------------ plumbing

    async def _retire(
        self,
        kind: str,
        given: str | None,
        end: Callable[[ProviderClient, str], Awaitable[JSON]],
    ) -> JSON:
        """Archive or delete (``end``) the ``kind`` object ``given`` (default: the one
        remembered) and return the provider's answer; then it is no longer remembered."""
        object_id = self._id(kind, given)
        answer = await end(await self._api(), object_id)
        self._forget(kind, object_id)
        return answer

    def _forget(self, kind: str, object_id: str) -> None:
        """Stop remembering ``object_id`` once it is archived or deleted: it is no longer
        the one a call without an id should use."""
        if kind == "agent" and object_id == self.agent_id:
            self.agent_id = None
        elif kind == "environment" and object_id == self.environment_id:
            self.environment_id = None
        elif kind == "session" and object_id == self.session_id:
            self.session_id = None

    def _id(self, kind: str, given: str | None) -> str:
        if given is not None:
            check_id(kind, given)
            return given
        remembered = {
            "agent": self.agent_id,
            "environment": self.environment_id,
            "session": self.session_id,
        }[kind]
        if not remembered:
            raise ValueError(
                f"no {kind} id given and none remembered; create_{kind}() first or pass its id"
            )
        return remembered
