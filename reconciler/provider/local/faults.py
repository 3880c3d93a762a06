"""Fault injection for tests and benchmarks: latency, random failures, a rate limit.

Off by default. A pure ASGI middleware (``BaseHTTPMiddleware`` would buffer SSE streams)
that touches only ``/v1/`` paths:

* ``latency_ms``: every response starts that long after its request arrived. The handler
  runs at once and its answer waits out the rest, so the latency is what the client sees,
  the provider's own work included (as a remote API's latency is measured), not added on
  top of it: ten requests in flight take one latency, not one latency plus ten handlers run
  one after another in this single process. A write is therefore done before its answer
  arrives, as on a real server whose response is still on its way.
* ``rate_limit`` (requests/second): a token bucket holding one second of burst; a request
  finding it empty gets 429 ``rate_limit_error`` with ``retry-after`` (whole seconds, >= 1)
  and ``retry-after-ms``, and never reaches the handler.
* ``bucket_limits``: the same, per rate-limit bucket of the provider (``bucket_of``: the
  resource family, creates apart), as the real provider limits each family on its own;
  ``DOCUMENTED_LIMITS`` is the published table.
* ``fault_rate`` P: each request fails with probability P. Half of the faults strike
  *before* the handler (nothing written), half *after* it committed (the write happened,
  the response is lost). Either way the client sees a 529 ``overloaded_error`` (the API's
  answer when it is overloaded) or a dropped connection (response headers, part of a body,
  then an aborted stream), half and half.
  SSE streams are never failed after the handler: their response never completes.

With ``seed`` set, every draw comes from one ``random.Random(seed)``, so the same sequence of
requests meets the same faults. ``FaultInjector.stats`` counts what was injected.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, request_id_of

FaultKind = Literal["none", "before_529", "before_drop", "after_529", "after_drop"]


def _a_rate(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class FaultConfig:
    """What to inject. All zero/None = a well-behaved provider."""

    latency_ms: int = 0
    fault_rate: float = 0.0
    rate_limit: float | None = None
    seed: int | None = None
    #: requests/second per rate-limit bucket (``bucket_of``), on top of ``rate_limit``:
    #: e.g. ``{"environments": 1.0}``; ``DOCUMENTED_LIMITS`` is the provider's own table
    bucket_limits: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        # `not x > 0` and isfinite: nan fails no `<=` check, and nan or inf never limits
        if self.rate_limit is not None and not _a_rate(self.rate_limit):
            raise ValueError("rate_limit must be > 0 requests per second")
        for bucket, rate in self.bucket_limits.items():
            if not _a_rate(rate):
                raise ValueError(f"the limit of {bucket!r} must be > 0 requests per second")

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.fault_rate or self.rate_limit or self.bucket_limits)


@dataclass
class FaultStats:
    """Counts of injected faults, for tests and benchmark reports."""

    requests: int = 0
    before: int = 0
    after: int = 0
    dropped: int = 0
    rate_limited: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class InjectedDisconnect(ConnectionResetError):
    """Raised mid-response on purpose: the server aborts the connection."""


#: The provider's published limits per organisation (provider-wire.md, section 13), per
#: second: agent, session and vault creates 300 a minute, their other calls 600; environments
#: 60 (all their calls, as the table does not split them); deployments are not stated.
#: The client has its own copy (``wire.DOCUMENTED_RATE_LIMITS``), as this program imports
#: nothing above itself; tests/test_client_ratelimit.py checks that the two agree.
DOCUMENTED_LIMITS: dict[str, float] = {
    "agents create": 5.0,
    "sessions create": 5.0,
    "vaults create": 5.0,
    "agents": 10.0,
    "sessions": 10.0,
    "vaults": 10.0,
    "environments create": 1.0,
    "environments": 1.0,
}
# "skills" and a skill's "versions" are uploads: creates of the "skills" family; so is
# a POST to "files"
_CREATED = frozenset(
    {"agents", "environments", "vaults", "credentials", "sessions", "deployments"}
    | {"memory_stores", "memories"}
    | {"skills", "versions", "files"}
)


def bucket_of(method: str, path: str) -> str:
    """The rate-limit bucket of a request: ``"agents create"``, ``"agents"``, ...

    The resource family is the path's first segment under ``/v1``; a POST to a collection
    (``/v1/agents``, ``/v1/vaults/{id}/credentials``) is that family's create.
    """
    segments = [s for s in path.split("/") if s][1:]
    family = segments[0] if segments else ""
    if method == "POST" and segments and segments[-1] in _CREATED:
        return f"{family} create"
    return family


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token; 0.0 on success, else the seconds until one is available."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


def _answered_after(send: Send, latency: float, released: _Release) -> Send:
    """``send``, holding the response's start until ``latency`` seconds from now, or until
    ``released`` (the server shuts down: an answer held back is sent at once)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + latency

    async def delayed(message: Message) -> None:
        if message["type"] == "http.response.start":
            wait = due - loop.time()
            if wait > 0:
                await released.wait(wait)
        await send(message)

    return delayed


class _Release:
    """Ends the latency waits, once: at shutdown, uvicorn waits for every response, and a
    held one (``--latency-ms 600000``) kept Ctrl-C waiting that long, client gone or not.
    Waits may be on several loops (an in-process client and a server thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    async def wait(self, timeout: float) -> None:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if self._done:
                return
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def release(self) -> None:
        with self._lock:
            self._done = True
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed; its wait is gone
                pass


class FaultInjector:
    """The middleware. ``create_app`` installs it only when a ``FaultConfig`` is given."""

    def __init__(self, app: ASGIApp | None, config: FaultConfig) -> None:
        self.app: ASGIApp = app  # type: ignore[assignment]
        self.config = config
        self.stats = FaultStats()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()
        self._bucket = TokenBucket(config.rate_limit) if config.rate_limit else None
        self._buckets = {name: TokenBucket(rate) for name, rate in config.bucket_limits.items()}
        self._release = _Release()

    def bind(self, app: ASGIApp) -> FaultInjector:
        """Wrap ``app`` (used as a middleware factory by ``create_app``)."""
        self.app = app
        return self

    def release(self) -> None:
        """Send every answer held back by ``latency_ms`` now, and later ones without delay
        (the server is shutting down)."""
        self._release.release()

    def draw(self) -> FaultKind:
        """Decide this request's fate (thread-safe, reproducible with a seed)."""
        if self.config.fault_rate <= 0:
            return "none"
        with self._rng_lock:
            if self._rng.random() >= self.config.fault_rate:
                return "none"
            when = "before" if self._rng.random() < 0.5 else "after"
            how = "529" if self._rng.random() < 0.5 else "drop"
        return f"{when}_{how}"  # type: ignore[return-value]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        self.stats.requests += 1
        if self.config.latency_ms:
            send = _answered_after(send, self.config.latency_ms / 1000, self._release)
        family = (
            self._buckets.get(bucket_of(scope["method"], scope["path"])) if self._buckets else None
        )
        for bucket in (self._bucket, family):
            wait = bucket.take() if bucket is not None else 0.0
            if wait > 0:
                self.stats.rate_limited += 1
                await self._rate_limited(scope, receive, send, wait)
                return
        kind = self.draw()
        if kind == "none":
            await self.app(scope, receive, send)
            return
        if kind.startswith("before"):
            self.stats.before += 1
            await self._fail(scope, receive, send, kind)
            return
        await self._fail_after(scope, receive, send, kind)

    async def _rate_limited(self, scope: Scope, receive: Receive, send: Send, wait: float) -> None:
        response = ApiError(
            429,
            "rate limit exceeded (local provider fault injection)",
            headers={
                "retry-after": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
            },
        ).response(request_id_of(scope))
        await response(scope, receive, send)

    async def _fail(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        if kind.endswith("drop"):
            self.stats.dropped += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"type":', "more_body": True})
            raise InjectedDisconnect("injected fault: connection dropped")
        response = ApiError(
            529,
            "injected fault: the service is overloaded",
            error_type="overloaded_error",
            headers={"x-fault-injected": kind},
        ).response(request_id_of(scope))
        await response(scope, receive, send)

    async def _fail_after(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        """Run the handler to completion, swallow its response, then fail."""
        streaming = False

        async def capture(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
                if streaming:
                    await send(message)
            elif streaming:
                await send(message)

        await self.app(scope, receive, capture)
        if streaming:  # never failed after the fact; see the module docstring
            return
        self.stats.after += 1
        await self._fail(scope, receive, send, kind)
