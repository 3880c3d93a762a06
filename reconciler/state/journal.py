"""The journal of one apply: its state edits (intents, outcomes), written in groups.

The rule "a create's intent is durable before the create is sent" is an awaited call:
``await journal.commit(edit)`` returns once the edit is on disk. Outcomes are ``stage``d and
written with whatever else is staged (group commit); nothing waits for them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from reconciler.state.backend import Edit, StateBackend
from reconciler.state.model import Lockfile

#: the longest a finished action's outcome waits for company before it is written (seconds)
_MOST_PATIENT = 0.25


class Journal:
    """Lockfile edits of one apply, written in groups (group commit).

    A lockfile write is a whole-file atomic replace with two fsyncs: 5-20 ms, more for a large
    lockfile. One write per intent and per outcome, in the event loop, would serialise the
    whole apply behind the disk. Instead the callbacks stage their edit and return; a writer
    task applies every edit staged so far, in order, and writes the result once (in a worker
    thread, so requests keep flowing). ``stage`` returns a ticket and ``durable(ticket)``
    waits until that edit is on disk; ``commit(edit)`` is both: the apply awaits it for a
    create's pending intent before the create is sent.
    A failed write is raised by the next ``stage`` or ``durable`` and by ``close``.

    Every write rewrites the whole file (5 MB at 10,000 entries), so fewer, larger groups
    matter: before a write the writer lingers (``_linger_for_more``) until ``senders``
    callers are waiting for it, or (once anyone waits) ``linger`` seconds have passed;
    with nobody waiting, about as long as the last write took.
    """

    def __init__(
        self,
        store: StateBackend,
        *,
        senders: int = 1,
        linger: float = 0.005,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._guard = guard  # called before every write (the apply lock's ensure_held)
        self._senders = max(1, senders)
        self._linger = linger
        self._all_waiting = asyncio.Event()
        self._staged: list[Edit] = []
        self._staged_count = 0
        self._written_count = 0
        self._writer: asyncio.Task[None] | None = None
        self._in_flight = threading.Event()  # set while no write is running in the thread
        self._in_flight.set()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._error: BaseException | None = None
        self._last_write = 0.0  # seconds the last write took
        self._closing = False

    @property
    def healthy(self) -> bool:
        """No write has failed."""
        return self._error is None

    def stage(self, edit: Edit) -> int:
        """Queue ``edit`` for the next write (raises the failure of an earlier write).

        Returns:
            Its ticket: ``durable(ticket)`` returns once this edit is on disk.
        """
        if self._error is not None:
            raise self._error
        self._staged.append(edit)
        self._staged_count += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_staged())
        return self._staged_count

    async def commit(self, edit: Edit) -> None:
        """Stage ``edit`` and return once it is on disk (with whatever else was staged).

        Raises:
            LockfileWriteError: this or an earlier write failed.
        """
        await self.durable(self.stage(edit))

    async def durable(self, ticket: int) -> None:
        """Wait until the edit of ``ticket`` (what ``stage`` returned; 0: none) is written."""
        if self._error is not None:
            raise self._error
        if self._written_count >= ticket:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ticket, done))
        self._all_waiting.set()  # the writer looks again: it lingers less once someone waits
        await done

    async def close(self) -> None:
        """Write everything staged, also when the apply is being cancelled; raise a failure."""
        self._closing = True
        self._all_waiting.set()  # no more company is coming: the writer stops lingering
        try:
            while self._writer is not None and not self._writer.done():
                await asyncio.shield(self._writer)
        except asyncio.CancelledError:
            self._writer.cancel()  # type: ignore[union-attr]
            self._in_flight.wait(30)  # the thread's write goes first: edits stay in order
            self._write_in_line()
            raise
        self._write_in_line()
        if self._error is not None:
            raise self._error

    def _write_in_line(self) -> None:
        if not self._staged or self._error is not None:
            return
        batch, upto = self._take()
        try:
            if self._guard is not None:
                self._guard()
            self._store.commit(_chain(batch))
        except Exception as err:  # noqa: BLE001 - kept, and raised by close() to abort
            self._error = err
        else:
            self._written_count = upto

    def _take(self) -> tuple[list[Edit], int]:
        batch, self._staged = self._staged, []
        return batch, self._staged_count

    def _commit_in_thread(self, edit: Edit) -> None:
        try:
            if self._guard is not None:
                self._guard()
            self._store.commit(edit)
        finally:
            self._in_flight.set()

    async def _write_staged(self) -> None:
        loop = asyncio.get_running_loop()
        while self._staged and self._error is None:
            await self._linger_for_more(loop)
            batch, upto = self._take()
            self._in_flight.clear()
            started = loop.time()
            try:
                await asyncio.to_thread(self._commit_in_thread, _chain(batch))
            except Exception as err:  # noqa: BLE001 - kept, and raised to abort the apply
                self._error = err
            else:
                self._written_count = upto
            self._last_write = loop.time() - started
            self._wake()

    async def _linger_for_more(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for more edits before a write, so that one write carries many.

        Someone waiting (a create's intent): at most ``linger``, less once ``senders`` wait.
        Only outcomes staged (nobody waits for them): as long as the last write took, at
        least ``4 * linger`` and at most ``_MOST_PATIENT``, so a large lockfile is rewritten
        at most about half of the time instead of back to back.
        """
        start = loop.time()
        patient = start + max(4 * self._linger, min(self._last_write, _MOST_PATIENT))
        while len(self._waiters) < self._senders and not self._closing:
            deadline = start + self._linger if self._waiters else patient
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._all_waiting.clear()
            try:
                await asyncio.wait_for(self._all_waiting.wait(), remaining)
            except TimeoutError:
                return

    def _wake(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for upto, done in self._waiters:
            if done.done():
                continue
            if self._error is not None:
                done.set_exception(self._error)
            elif upto <= self._written_count:
                done.set_result(None)
            else:
                still.append((upto, done))
        self._waiters = still


def _chain(edits: list[Edit]) -> Edit:
    def edit(lockfile: Lockfile) -> Lockfile:
        for one in edits:
            lockfile = one(lockfile)
        return lockfile

    return edit
