"""Session event streams and turns: reading a session's events without losing one.

``SessionEventStream`` wraps the client's SSE context manager in an object that is both an
async iterator and an async context manager, so ``async for event in stream`` works on its
own and ``async with`` guarantees the connection is closed on early exit. ``Turn`` is one
exchange with the agent (``reconciler.runtime.turns``).

The provider's stream carries only what happens after it opens, so a stream opened *after*
``send_event`` (the seed's order) would miss the turn. ``SentLedger`` remembers which sent
events no stream has delivered yet; a stream opened while some are pending first replays the
session's events from the earliest of them (listed newest first, only as far back as needed)
and then continues live, skipping by id what the replay already gave. A stream stops at the
end of a turn when nothing sent is pending, and one opened on an idle session with nothing
pending ends at once and says so in the log: it never waits for events that cannot come.

Nothing here builds request bodies beyond the user event of a turn, or maps errors: provider
failures surface as the client's typed ``reconciler.errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Self

from reconciler.errors import AmbiguousWriteError, ProviderConnectionError, ProviderError
from reconciler.jsontypes import JSON

if TYPE_CHECKING:
    from reconciler.provider import ProviderClient
    from reconciler.provider.sse import EventStream

__all__ = [
    "SentLedger",
    "SessionEventStream",
    "as_events",
    "ends_turn",
    "user_message",
]

log = logging.getLogger("reconciler.runtime")

#: Events listed per page while replaying a session's recent history.
REPLAY_PAGE = 100
#: Session statuses in which no event comes unless something is sent.
QUIET_STATUSES = frozenset({"idle", "terminated"})

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


def is_input(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is one sent to the session (``user.*``, ``system.message``), as the
    provider echoes it."""
    kind = str(event.get("type") or "")
    return kind.startswith("user.") or kind == "system.message"


def _holds(echoed: Any, sent: Any) -> bool:
    """``echoed`` (an event or part of one as the provider lists it) carries ``sent``: every
    key sent has its value there (the provider adds ``id``, ``processed_at``, defaults)."""
    if isinstance(sent, Mapping):
        return isinstance(echoed, Mapping) and all(
            key in echoed and _holds(echoed[key], value) for key, value in sent.items()
        )
    if isinstance(sent, list):
        return (
            isinstance(echoed, list)
            and len(echoed) == len(sent)
            and all(_holds(e, v) for e, v in zip(echoed, sent, strict=True))
        )
    return bool(echoed == sent)


def arrived_batch(
    listed: Sequence[Mapping[str, Any]], mark: str | None, events: Sequence[Mapping[str, Any]]
) -> list[JSON] | None:
    """The events a send whose answer was lost left in the session, as listed, or None.

    Args:
        listed: the session's events in order (from the ``mark`` event's time on, or all).
        mark: the id of the session's newest event before the send (None: it had none):
            only what comes after it can be the send's.
        events: what was sent; the provider keeps a batch together and in order.
    """
    after = list(listed)
    if mark is not None:
        ids = [e.get("id") for e in after]
        if mark in ids:
            after = after[ids.index(mark) + 1 :]
    inputs = [e for e in after if is_input(e)]
    for start in range(len(inputs) - len(events) + 1):
        batch = inputs[start : start + len(events)]
        if all(_holds(e, sent) for e, sent in zip(batch, events, strict=True)):
            return [dict(e) for e in batch]
    return None


async def settle_send(
    api: ProviderClient,
    session_id: str,
    events: list[JSON],
    newest: JSON | None,
    error: AmbiguousWriteError,
) -> list[JSON]:
    """A send whose answer was lost (a 5xx, a dropped connection): the session's events
    say whether it arrived. Arrived: its events as listed. Not: sent once more, and that
    one settled the same way; never sent a third time.

    Raises:
        AmbiguousWriteError: the events could not be listed (it may have arrived).
        ProviderError: it did not arrive, twice (one may still land late).
    """
    mark = str(newest["id"]) if newest is not None and newest.get("id") else None
    since = newest.get("processed_at") if newest is not None else None

    async def arrived() -> list[JSON] | None:
        filters: dict[str, Any] = {"order": "asc"}
        if isinstance(since, str) and since:
            filters["created_at_gte"] = since
        try:
            listed = await api.sessions.list_events(session_id, **filters).to_list()
        except ProviderError as failed:
            raise AmbiguousWriteError(
                f"{error}; the session's events could not be listed to see whether it "
                f"arrived ({failed}): list them before sending it again",
                **error.details(),
            ) from failed
        return arrived_batch(listed, mark, events)

    found = await arrived()
    if found is not None:
        return found
    try:
        return await api.sessions.send_events(session_id, events)
    except AmbiguousWriteError as again:
        error = again
    found = await arrived()
    if found is not None:
        return found
    raise ProviderError(
        f"{error.method or 'POST'} {error.path or 'events'}: the events did not arrive: "
        "sent twice, each answer was lost, and the session's events hold neither; one may "
        "still land late (the wire has no idempotency key for events): look at the "
        "session's events before sending them again",
        **error.details(),
    ) from error


class SentLedger:
    """Per session, the ids of events sent through the runtime that no stream delivered yet,
    and where a turn that a stream began to deliver was left.

    ``ManagedRuntime.send_event`` records what the provider accepted; a stream marks an id
    seen when it yields that event (and every id sent before it, since the provider keeps
    the order). What is left is *pending*: a turn is still to come. A turn whose input was
    delivered is pending too until a stream delivers its end (``delivered``): a stream left
    early, or broken off, leaves the rest for the next one (``resume_after``).
    """

    def __init__(self) -> None:
        self._unseen: dict[str, list[str]] = {}
        #: per session with a turn under way, the last event a stream delivered of it
        self._last: dict[str, str] = {}

    def delivered(self, session_id: str, event: Mapping[str, Any]) -> None:
        """A stream yielded ``event``: mark it seen and follow the turn it belongs to."""
        event_id = event.get("id")
        under_way = session_id in self._last or event_id in self._unseen.get(session_id, ())
        self.seen(session_id, event_id)
        if not under_way or not event_id:
            return
        if ends_turn(event) and not self.pending_sent(session_id):
            self._last.pop(session_id, None)
        else:
            self._last[session_id] = str(event_id)

    def resume_after(self, session_id: str) -> str | None:
        """The last event a stream delivered while turns are under way: the next stream
        starts after it (what was sent later comes after it too)."""
        return self._last.get(session_id)

    def pending_sent(self, session_id: str) -> bool:
        return bool(self._unseen.get(session_id))

    def sent(self, session_id: str, events: Iterable[Mapping[str, Any]]) -> None:
        ids = [str(e["id"]) for e in events if e.get("id")]
        if ids:
            self._unseen.setdefault(session_id, []).extend(ids)

    def seen(self, session_id: str, event_id: Any) -> None:
        unseen = self._unseen.get(session_id)
        if not unseen or event_id not in unseen:
            return
        del unseen[: unseen.index(event_id) + 1]
        if not unseen:
            del self._unseen[session_id]

    def first_unseen(self, session_id: str) -> str | None:
        unseen = self._unseen.get(session_id)
        return unseen[0] if unseen else None

    def pending(self, session_id: str) -> bool:
        return self.pending_sent(session_id) or session_id in self._last


class SessionEventStream:
    """The event stream of one session: an async iterator of event dicts.

    Opened lazily by the first ``__anext__`` or eagerly by ``open()`` / ``async with``;
    closed when the server ends it, when iteration raises, by ``aclose()``, on leaving
    ``async with``, or when the owning ``ManagedRuntime`` closes.

    Unless ``follow`` is set it also ends on its own, so ``async for`` never hangs on a
    session that has nothing more to say:

    * after an event that ends a turn (``ends_turn``) when nothing sent is pending;
    * at once, with a warning in the log, when it starts on an idle (or terminated) session
      and nothing sent through the runtime is pending.

    Events sent through the runtime *before* the stream opened are replayed from the
    session's event list first, so ``send_event`` then ``stream_events`` delivers the whole
    turn, each event once. ``follow=True`` is the raw live tail: no replay, no end.
    ``replay=False`` skips the replay (a ``Turn`` reads only the turn it starts).
    ``after`` (or ``since``) replays the session's events after (from) that event first,
    follow or not: how a ``Turn`` reopens a stream that broke off (``reopened``).

    Example:
        >>> await rt.send_event(session_id, "hello")
        >>> async for event in rt.stream_events(session_id):
        ...     print(event["type"])   # user.message ... session.status_idle, then it ends
    """

    def __init__(
        self,
        client: ProviderClient | Callable[[], Awaitable[ProviderClient]],
        session_id: str,
        *,
        ledger: SentLedger | None = None,
        follow: bool = False,
        replay: bool = True,
        on_close: Callable[[SessionEventStream], None] | None = None,
        on_reopen: Callable[[SessionEventStream], None] | None = None,
        after: str | None = None,
        since: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.follow = follow
        self._replay_sent = replay and not follow
        self._client = client
        self._ledger = ledger if ledger is not None else SentLedger()
        self._on_close = on_close
        self._on_reopen = on_reopen
        self._cm: AbstractAsyncContextManager[EventStream] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: EventStream | None = None
        self._closed = False
        self._started = False
        self._replay_from = since
        self._replay_after = after
        self._ended_by_server = False
        self._replay: deque[JSON] = deque()
        self._replayed: set[str] = set()
        self._turn_over = False
        #: the task awaiting the next event in ``__anext__``, if any
        self._reader: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._events is not None else "new"
        return f"<SessionEventStream {self.session_id} {state}>"

    @property
    def is_open(self) -> bool:
        """True between a successful ``open()`` and the stream's close."""
        return self._events is not None and not self._closed

    @property
    def closed(self) -> bool:
        """True once the stream was closed (it is not opened again)."""
        return self._closed

    @property
    def ended_by_server(self) -> bool:
        """True once the server (or a proxy on the way) ended the response cleanly."""
        return self._ended_by_server

    def reopened(self, *, after: str | None = None, since: str | None = None) -> Self:
        """A new stream of the same session, alike but for what it replays first: the
        session's events after (or from) the given event id."""
        stream = type(self)(
            self._client,
            self.session_id,
            ledger=self._ledger,
            follow=self.follow,
            replay=False,
            on_close=self._on_close,
            on_reopen=self._on_reopen,
            after=after,
            since=since,
        )
        if self._on_reopen is not None:
            self._on_reopen(stream)
        return stream

    async def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before the ``attempt``-th reopening (from 0), by the client's
        retry policy (its backoff)."""
        return (await self._api()).policy.backoff(attempt)

    async def _api(self) -> ProviderClient:
        if callable(self._client):
            return await self._client()
        return self._client

    async def open(self) -> Self:
        """Connect; returns once the server has answered the stream request (its headers).

        A stream closed while it connects (``aclose()`` from another task, or the runtime's)
        returns closed (``closed``), its connection let go, whatever the request became.

        Raises:
            NotFoundError: the session does not exist (any ``ProviderError`` likewise).
            RuntimeError: the stream was already closed (streams are not reopened).
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new one with stream_events()")
        if self._events is None:
            api = await self._api()
            if self._closed:  # closed meanwhile: no request on a client being closed
                return self
            cm = api.sessions.stream_events(self.session_id)
            try:
                events = await cm.__aenter__()
            except Exception:
                if self._closed:  # the close broke the request off: that is no failure
                    return self
                raise
            if self._closed:  # closed while the provider answered: let the answer go
                with contextlib.suppress(Exception):  # over a closed client: gone either way
                    await cm.__aexit__(None, None, None)
                return self
            self._events, self._cm = events, cm
            self._loop = asyncio.get_running_loop()
            # what was sent before this point is not on the live stream: replay it
            if self._replay_sent:
                self._replay_from = self._ledger.first_unseen(self.session_id)
                self._replay_after = self._ledger.resume_after(self.session_id)
        return self

    async def aclose(self) -> None:
        """Close the connection (idempotent). A loop reading the stream in another task
        ends quietly, as it would at the stream's end."""
        if self._closed:
            return
        self._closed = True
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task() and not reader.done():
            # that task is inside the stream's generators: break the connection under it,
            # and it closes the rest when it wakes (``__anext__``)
            try:
                if self._events is not None:
                    await self._events.abort()
            finally:
                if self._on_close is not None:
                    self._on_close(self)
            return
        await self._release()

    async def _release(self) -> None:
        cm, self._cm = self._cm, None
        try:
            if cm is not None:
                await cm.__aexit__(None, None, None)
        finally:
            if self._on_close is not None:
                self._on_close(self)

    def __del__(self) -> None:
        # Dropped while open - ``break`` out of ``async for ... in rt.run_turn(...)`` leaves
        # the turn and its stream to the garbage collector - so close its connection on its
        # loop, as asyncio does for an abandoned async generator; otherwise a long-lived
        # runtime would keep one connection (and one subscriber at the provider) per turn.
        cm, loop = self._cm, self._loop
        if cm is None or self._closed or loop is None or loop.is_closed():
            return
        self._closed = True
        try:
            loop.call_soon_threadsafe(_close_abandoned, loop, cm)
        except RuntimeError:  # the loop closed meanwhile: its connections went with it
            pass

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
        self._reader = asyncio.current_task()
        try:
            await self.open()
            if self._closed:  # closed by another task while this one connected
                raise StopAsyncIteration
            if not self._started:
                self._started = True
                if not await self._start():
                    raise StopAsyncIteration
            if self._closed:  # closed by another task while this one replayed
                raise StopAsyncIteration
            event = await self._next_event()
            if self._closed:
                raise StopAsyncIteration
        except BaseException as exc:  # the end, an error frame, a broken connection, cancel
            closed_elsewhere = self._closed
            self._reader = None
            if closed_elsewhere:
                await self._release()
            else:
                await self.aclose()
            if closed_elsewhere and isinstance(exc, Exception):
                raise StopAsyncIteration from None  # closed on purpose, not lost
            raise
        finally:
            self._reader = None
        self._ledger.delivered(self.session_id, event)
        self._turn_over = ends_turn(event)
        return event

    async def _start(self) -> bool:
        """Load the replay, or decide that nothing can come; False = end now."""
        if self.follow and self._replay_after is None and self._replay_from is None:
            return True
        if self._replay_after is not None:  # the rest of turns a stream left unfinished
            history, found = await self._history_since(self._replay_after, self._replay_from)
            self._replay.extend(history[1:] if found else history)
        elif self._replay_from is not None:
            self._replay.extend((await self._history_since(self._replay_from))[0])
        if self._replay_from is not None or self._replay_after is not None:
            self._replayed = {str(e["id"]) for e in self._replay if e.get("id")}
            return True
        if self._ledger.pending(self.session_id):
            return True  # sent after the stream opened: it is on the live stream
        session = await (await self._api()).sessions.retrieve(self.session_id)
        status = session.get("status")
        if status in QUIET_STATUSES:
            log.warning(
                "session %s is %s and nothing was sent to it through this runtime, so its "
                "event stream ended at once; send_event() first (before or after opening the "
                "stream), or use stream_events(session_id, follow=True) to wait for events "
                "from elsewhere",
                self.session_id,
                status,
            )
            return False
        return True

    async def _next_event(self) -> JSON:
        if not self.follow and self._turn_over and not self._ledger.pending(self.session_id):
            raise StopAsyncIteration  # the turn ended and nothing else was asked
        if self._replay:
            return self._replay.popleft()
        assert self._events is not None
        while True:
            try:
                event = await self._events.__anext__()
            except StopAsyncIteration:
                self._ended_by_server = not self._closed  # not closed on purpose
                if self.follow or self._closed:
                    raise
                # a proxy's idle timeout ends a response as cleanly as the server would:
                # ending the loop here would pass half a turn off as a whole one
                raise ProviderConnectionError(
                    f"session {self.session_id}'s event stream ended before the turn did (the "
                    "provider or a proxy closed it); open it again to keep reading"
                ) from None
            if not self._replayed or str(event.get("id")) not in self._replayed:
                return event

    async def _history_since(
        self, first_id: str, fallback: str | None = None
    ) -> tuple[list[JSON], bool]:
        """The session's events from ``first_id`` on, oldest first (paged newest first), and
        True; when the list does not hold ``first_id`` (an event only the stream carried),
        those from ``fallback`` on, and False."""
        newest_first: list[JSON] = []
        at_fallback: int | None = None
        pager = (await self._api()).sessions.list_events(
            self.session_id, order="desc", limit=REPLAY_PAGE
        )
        async for event in pager:
            newest_first.append(event)
            if event.get("id") == first_id:
                return newest_first[::-1], True
            if fallback is not None and event.get("id") == fallback and at_fallback is None:
                at_fallback = len(newest_first)
        if at_fallback is not None:
            return newest_first[:at_fallback][::-1], False
        log.warning(
            "event %s sent to session %s is not in its event list; the stream starts live",
            fallback or first_id,
            self.session_id,
        )
        return [], False


#: Closes of abandoned streams in flight (the loop keeps only weak references to tasks).
_CLOSING: set[asyncio.Task[None]] = set()


def _close_abandoned(
    loop: asyncio.AbstractEventLoop, cm: AbstractAsyncContextManager[EventStream]
) -> None:
    """Close the connection of a stream that was garbage-collected while open."""

    async def close() -> None:
        try:
            await cm.__aexit__(None, None, None)
        except Exception:  # nobody is left to tell; the connection is gone either way
            log.debug("closing an abandoned event stream failed", exc_info=True)

    task = loop.create_task(close())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)
