"""The journal of one apply: its lockfile edits (intents, outcomes), written in groups.

Today the executor's ``on_intent`` callback stages a create's intent and the provider writer
(``RecordsFirst``) waits for it to be on disk before the request is sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from reconciler.engine.model import Action, Plan
from reconciler.engine.record import record_intent
from reconciler.provider.adapter import ClientBackedProvider
from reconciler.state import Lockfile, StateStore

#: the longest a finished action's outcome waits for company before it is written (seconds)
_MOST_PATIENT = 0.25


class GroupCommit:
    """Lockfile edits of one apply, written in groups (group commit).

    A lockfile write is a whole-file atomic replace with two fsyncs: 5-20 ms, more for a large
    lockfile. One write per intent and per outcome, in the event loop, would serialise the
    whole apply behind the disk. Instead the callbacks stage their edit and return; a writer
    task applies every edit staged so far, in order, and writes the result once (in a worker
    thread, so requests keep flowing). ``stage`` returns a ticket and ``durable(ticket)``
    waits until that edit is on disk: ``RecordsFirst`` calls it before a create, so the
    create's pending intent is on disk before the request is sent.
    A failed write is raised by the next ``stage`` or ``durable`` and by ``close``.

    Every write rewrites the whole file (5 MB at 10,000 entries), so fewer, larger groups
    matter: before a write the writer lingers (``_linger_for_more``) until ``senders``
    callers are waiting for it, or (once anyone waits) ``linger`` seconds have passed;
    with nobody waiting, about as long as the last write took.
    """

    def __init__(
        self,
        store: StateStore,
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
        self._staged: list[Callable[[Lockfile], Lockfile]] = []
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

    def stage(self, edit: Callable[[Lockfile], Lockfile]) -> int:
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

    def _take(self) -> tuple[list[Callable[[Lockfile], Lockfile]], int]:
        batch, self._staged = self._staged, []
        return batch, self._staged_count

    def _commit_in_thread(self, edit: Callable[[Lockfile], Lockfile]) -> None:
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


def _chain(edits: list[Callable[[Lockfile], Lockfile]]) -> Callable[[Lockfile], Lockfile]:
    def edit(lockfile: Lockfile) -> Lockfile:
        for one in edits:
            lockfile = one(lockfile)
        return lockfile

    return edit


def intent_edit(action: Action, now: str) -> Callable[[Lockfile], Lockfile]:
    return lambda lf: record_intent(lf, action, now)


def early_intents(plan: Plan, skip: Mapping[str, str]) -> dict[str, Action]:
    """The creates (and replaces) whose intent can be recorded before the apply starts.

    An intent says "this address may have been created; look for it by its ownership tags".
    Recording it early is as safe as recording it right before the request: the next run
    resolves it by the same listing, and finds nothing if the request was never sent. What it
    buys is one disk write for all of them, instead of one wait per create. A create whose
    parent (a credential's vault) is created in this same run gets its intent when it is sent,
    once the parent's id is known.
    """
    return {
        a.address: a
        for a in plan.actions
        if a.type in ("create", "replace")
        and a.address not in skip
        and (a.parent is None or a.parent_id is not None)
    }


#: The ticket of the lockfile edit that must be on disk before this action's next write
#: request: its pending intent. Set by the intent callback inside the action's own task.
CREATE_TICKET: ContextVar[int] = ContextVar("reconciler_create_ticket", default=0)


class RecordsFirst:
    """The provider writer: a create (or a replace's removal) waits until its intent is on disk.

    Other writes do not wait for the disk: an update, archive or delete whose outcome is lost
    in a crash is found again by the next run's refresh, which compares live objects by id.
    """

    def __init__(self, inner: ClientBackedProvider, journal: GroupCommit) -> None:
        self._inner = inner
        self._journal = journal

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, kind: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        await self._journal.durable(CREATE_TICKET.get())
        return await self._inner.create(kind, body, **kw)

    async def update(self, kind: str, remote_id: str, body: dict[str, Any], **kw: Any) -> Any:
        await self._journal.durable(CREATE_TICKET.get())
        return await self._inner.update(kind, remote_id, body, **kw)

    async def archive(self, kind: str, remote_id: str, **kw: Any) -> Any:
        await self._journal.durable(CREATE_TICKET.get())
        return await self._inner.archive(kind, remote_id, **kw)

    async def delete(self, kind: str, remote_id: str, **kw: Any) -> None:
        await self._journal.durable(CREATE_TICKET.get())
        await self._inner.delete(kind, remote_id, **kw)
