"""Turns: one exchange with the agent, read off a session's event stream.

``Turn`` opens the stream *first* (the server has answered the stream request before anything
is sent), then sends the user's events, then yields events until the turn ends. A stream cut
before the turn ended (a dropped connection, a proxy's idle timeout, an error frame) is
reopened - a few attempts, with the client's backoff - and first replays from the session's
event list what came after the last event read, as an SSE client resumes with
``Last-Event-ID``. Reading the stream itself (replay, ends, closing) is
``reconciler.runtime.streams``'s job; this module only decides which of its events belong to
the turn, and when to reopen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Self

from reconciler.errors import ProviderConnectionError, ProviderError, RateLimitError, ServerError
from reconciler.jsontypes import JSON
from reconciler.runtime.streams import SessionEventStream, ends_turn, is_input

__all__ = ["Turn"]

log = logging.getLogger("reconciler.runtime")

#: Reopenings of a turn's stream in a row that deliver no event before the turn fails.
RECONNECT_ATTEMPTS = 3


#: Events after which a session has no more turns: they end a turn that has not begun yet.
SESSION_ENDINGS = frozenset({"session.status_terminated", "session.deleted"})


class Turn:
    """One turn of a session: open the stream, send, yield events until the turn ends.

    Built by ``ManagedRuntime.run_turn``. The turn begins with the first event it sent, as
    the provider echoes it: what the stream carries before that belongs to another turn on
    the same session (one sent at the same time) and is skipped, so each of several turns
    run at once reads its own answer. The final event (``session.status_idle`` with an
    ending stop reason, ``session.error``, ...) is yielded too; the stream is closed before
    it is returned, so breaking out of the loop there leaks nothing. An idle event whose stop
    reason is ``requires_action`` is yielded and the turn goes on: answer it with
    ``ManagedRuntime.send_event`` inside the loop.

    A stream that breaks off before the turn's final event is reopened (``attempts`` times
    in a row at most, waiting the client's backoff before each); the events the session
    listed after the last one read come first, then the live ones, each once. Reopening
    that fails raises the error, as a turn without reconnection would
    (``ProviderConnectionError``, ``ServerError``, ``RateLimitError``, ``NotFoundError``),
    saying the stream broke off: the client has retried that request by its own policy, so
    the turn does not try it again.

    Attributes:
        session_id: the session.
        sent: the events as the provider echoed them (with ids), once sent.
        events: every event yielded so far.
        reconnects: how many times the stream was reopened.
    """

    def __init__(
        self,
        stream: SessionEventStream,
        send: Callable[[], Awaitable[list[JSON]]],
        *,
        attempts: int = RECONNECT_ATTEMPTS,
        on_reconnect: Callable[[ProviderError], None] | None = None,
    ) -> None:
        self.session_id = stream.session_id
        self.sent: list[JSON] = []
        self.events: list[JSON] = []
        self.reconnects = 0
        self._stream = stream
        self._send = send
        self._attempts = attempts
        self._on_reconnect = on_reconnect
        #: the id of the last event read off the stream (this turn's or not): where to resume
        self._read: str | None = None
        #: the ids of the events read off the stream (a replay from the turn's start skips them)
        self._seen: set[str] = set()
        self._started = False
        self._begun = False
        self._elsewhere = False
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
                if self._stream.closed:  # closed while it opened: nothing is sent
                    self._done = True
                    return self
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
            event = await self._next_of_this_turn()
        except BaseException:
            self._done = True
            raise
        self.events.append(event)
        if ends_turn(event):
            await self.aclose()
        return event

    async def _next_of_this_turn(self) -> JSON:
        """The stream's next event of this turn. Before the turn begins, another turn's
        input (echoed by the provider) and what follows it up to that turn's end are
        skipped; an event that ends the session is not."""
        ours = {e.get("id") for e in self.sent}
        while True:
            event = await self._next_from_stream()
            if self._begun or event.get("id") in ours:
                self._begun = True
                return event
            if event.get("type") in SESSION_ENDINGS:
                return event
            if is_input(event):
                self._elsewhere = True  # another turn's input: its events are not ours
            elif self._elsewhere:
                self._elsewhere = not ends_turn(event)
            else:  # a provider that does not echo input on the stream: the turn is here
                self._begun = True
                return event

    async def _next_from_stream(self) -> JSON:
        """The stream's next event; a stream cut before the turn ended is reopened."""
        error: ProviderError | None = None  # set: the stream broke off, reopen it
        failures = 0  # in a row, since the last event this call returned
        while True:
            if error is not None:
                failures += 1
                self._give_up(error, failures)
                await self._reopen(error, failures)
                error = None
            try:
                event = await self._stream.__anext__()
            except StopAsyncIteration:
                if self._done or not self._stream.ended_by_server:
                    raise  # closed on purpose
                error = ProviderConnectionError(
                    f"session {self.session_id}'s event stream ended before the turn did"
                )
            except (ProviderConnectionError, ServerError) as broke:
                if self._done:
                    raise
                error = broke
            else:
                event_id = event.get("id")
                if event_id and str(event_id) in self._seen:
                    continue  # replayed from the turn's start: read before the cut
                if event_id:
                    self._read = str(event_id)
                    self._seen.add(self._read)
                return event

    def _give_up(self, error: ProviderError, failures: int) -> None:
        """Raise ``error`` once ``attempts`` reopenings in a row delivered nothing (or there
        is nothing to resume from)."""
        if failures <= self._attempts and (self._read or self.sent):
            return
        if failures > 1:
            raise type(error)(
                f"{error} (the stream broke off {failures} times in a row, each time "
                "before a new event)",
                **error.details(),
            ) from error
        raise error

    async def _reopen(self, error: ProviderError, failures: int) -> None:
        """Open the stream again after the client's backoff: it replays the session's events
        after the last one read (none read yet: from the turn's first sent event on), then
        goes on live. StopAsyncIteration: the turn or its stream was closed meanwhile."""
        log.info("%s; reopening it (attempt %d of %d)", error, failures, self._attempts)
        # made (and so known to the runtime, which closes it with itself) before the wait
        # after the last event read; from the turn's start if the list does not hold that one
        first = str(self.sent[0].get("id")) if self.sent else None
        stream = self._stream.reopened(after=self._read, since=first)
        self._stream = stream
        await asyncio.sleep(await stream.retry_delay(failures - 1))
        if self._done or stream.closed:  # closed while it waited
            raise StopAsyncIteration
        try:
            await stream.open()
        except ProviderError as failed:  # a 5xx, a 429 outlasting retries, a 404 (deleted)
            await stream.aclose()
            # final: the client has retried this request by its own policy already
            said = f"{failed} (the stream broke off and opening it again failed)"
            if isinstance(failed, RateLimitError):
                raise RateLimitError(
                    said, retry_after=failed.retry_after, **failed.details()
                ) from failed
            raise type(failed)(said, **failed.details()) from failed
        except BaseException:
            await stream.aclose()
            raise
        if self._done or stream.closed:  # closed while it opened
            raise StopAsyncIteration
        self.reconnects += 1
        if self._on_reconnect is not None:
            self._on_reconnect(error)

    async def collect(self) -> list[JSON]:
        """Run the turn to its end and return every event it produced."""
        async for _ in self:
            pass
        return list(self.events)
