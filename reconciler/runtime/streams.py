"""Session event streams and turns: reading a session's events without losing one.

``SessionEventStream`` wraps the client's SSE context manager in an object that is both an
async iterator and an async context manager, so ``async for event in stream`` works on its
own and ``async with`` guarantees the connection is closed on early exit. ``Turn`` is one
exchange with the agent: it opens the stream *first* (the server has answered the stream
request before anything is sent), then sends the user's events, then yields events until the
turn ends.

Nothing here builds request bodies beyond the user event of a turn, or maps errors: provider
failures surface as the client's typed ``reconciler.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient
    from reconciler.provider.sse import EventStream

__all__ = ["SessionEventStream", "Turn", "as_events", "ends_turn", "user_message"]

JSON = dict[str, Any]

#: Stop reasons of ``session.status_idle`` after which the agent waits for an answer
#: (tool confirmations, custom tool results) rather than for the next user message.
WAITING_STOP_REASONS = frozenset({"requires_action"})


def user_message(text: str) -> JSON:
    """A ``user.message`` event with one text block.

    Example:
        >>> user_message("hello")
        {'type': 'user.message', 'content': [{'type': 'text', 'text': 'hello'}]}
    """
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def as_events(event: str | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[JSON]:
    """Normalise what a caller sends into the wire's ``events`` list.

    Args:
        event: a plain string (a user message), one event dict, or a list of event dicts.

    Raises:
        TypeError: the value is none of those, or an event has no ``type``.
    """
    if isinstance(event, str):
        return [user_message(event)]
    items: list[Mapping[str, Any]]
    if isinstance(event, Mapping):
        items = [event]
    elif isinstance(event, Sequence):
        items = [item for item in event if not isinstance(item, str)]
        if len(items) != len(event):
            raise TypeError("a list of events holds event dicts, not strings")
    else:
        raise TypeError(f"an event is a string, a dict or a list of dicts, not {type(event)!r}")
    out: list[JSON] = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise TypeError(
                f"every event needs a string 'type' (e.g. 'user.message'); got {item!r}"
            )
        out.append(dict(item))
    if not out:
        raise TypeError("send at least one event")
    return out


def ends_turn(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` ends the agent's turn.

    A turn ends at ``session.status_idle`` unless its stop reason is ``requires_action``
    (the agent waits for a tool confirmation or a custom tool result, and continues once it
    gets one), at ``session.error``, and when the session is terminated or deleted.
    """
    kind = event.get("type")
    if kind == "session.status_idle":
        stop = event.get("stop_reason")
        reason = stop.get("type") if isinstance(stop, Mapping) else stop
        return reason not in WAITING_STOP_REASONS
    return kind in ("session.error", "session.status_terminated", "session.deleted")


class SessionEventStream:
    """The live event stream of one session: an async iterator of event dicts.

    Opened lazily by the first ``__anext__`` or eagerly by ``open()`` / ``async with``;
    closed when the server ends it, when iteration raises, by ``aclose()``, on leaving
    ``async with``, or when the owning ``ManagedRuntime`` closes.

    Example:
        >>> async with rt.stream_events(session_id) as events:
        ...     await rt.send_event(session_id, "hello")
        ...     async for event in events:
        ...         if event["type"] == "session.status_idle":
        ...             break
    """

    def __init__(
        self,
        client: ProviderClient,
        session_id: str,
        *,
        on_close: Callable[[SessionEventStream], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self._client = client
        self._on_close = on_close
        self._cm: AbstractAsyncContextManager[EventStream] | None = None
        self._events: EventStream | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._events is not None else "new"
        return f"<SessionEventStream {self.session_id} {state}>"

    @property
    def is_open(self) -> bool:
        """True between a successful ``open()`` and the stream's close."""
        return self._events is not None and not self._closed

    async def open(self) -> Self:
        """Connect; returns once the server has answered the stream request (its headers).

        Raises:
            NotFoundError: the session does not exist (any ``ProviderError`` likewise).
            RuntimeError: the stream was already closed (streams are not reopened).
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new one with stream_events()")
        if self._events is None:
            cm = self._client.sessions.stream_events(self.session_id)
            self._events = await cm.__aenter__()
            self._cm = cm
        return self

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        cm, self._cm = self._cm, None
        try:
            if cm is not None:
                await cm.__aexit__(None, None, None)
        finally:
            if self._on_close is not None:
                self._on_close(self)

    async def __aenter__(self) -> Self:
        try:
            return await self.open()
        except BaseException:
            await self.aclose()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> JSON:
        if self._closed:
            raise StopAsyncIteration
        try:
            await self.open()
            assert self._events is not None
            return await self._events.__anext__()
        except BaseException:  # the end, an error frame, a broken connection or cancellation
            await self.aclose()
            raise


class Turn:
    """One turn of a session: open the stream, send, yield events until the turn ends.

    Built by ``ManagedRuntime.run_turn``. The final event (``session.status_idle`` with an
    ending stop reason, ``session.error``, ...) is yielded too; the stream is closed before
    it is returned, so breaking out of the loop there leaks nothing. An idle event whose stop
    reason is ``requires_action`` is yielded and the turn goes on: answer it with
    ``ManagedRuntime.send_event`` inside the loop.

    Attributes:
        session_id: the session.
        sent: the events as the provider echoed them (with ids), once sent.
        events: every event yielded so far.
    """

    def __init__(
        self,
        stream: SessionEventStream,
        send: Callable[[], Awaitable[list[JSON]]],
    ) -> None:
        self.session_id = stream.session_id
        self.sent: list[JSON] = []
        self.events: list[JSON] = []
        self._stream = stream
        self._send = send
        self._started = False
        self._done = False

    def __repr__(self) -> str:
        return f"<Turn {self.session_id} events={len(self.events)} done={self._done}>"

    @property
    def done(self) -> bool:
        """True once the turn's final event was read (or it failed)."""
        return self._done

    async def start(self) -> Self:
        """Open the stream, then send the user's events (runs once; ``__anext__`` calls it)."""
        if not self._started:
            self._started = True
            try:
                await self._stream.open()
                self.sent = await self._send()
            except BaseException:
                self._done = True
                await self._stream.aclose()
                raise
        return self

    async def aclose(self) -> None:
        """Stop reading and close the stream (the turn itself goes on at the provider)."""
        self._done = True
        await self._stream.aclose()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[JSON]:
        return self

    async def __anext__(self) -> JSON:
        if self._done:
            raise StopAsyncIteration
        await self.start()
        try:
            event = await self._stream.__anext__()
        except BaseException:
            self._done = True
            raise
        self.events.append(event)
        if ends_turn(event):
            await self.aclose()
        return event

    async def collect(self) -> list[JSON]:
        """Run the turn to its end and return every event it produced."""
        async for _ in self:
            pass
        return list(self.events)
