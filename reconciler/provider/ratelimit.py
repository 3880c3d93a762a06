"""AdaptiveRateLimiter: pace every request of one client below the provider's rate limit.

One limiter is shared by all concurrent requests of a ``ProviderClient``. It is a token bucket
whose rate adapts to the server (AIMD, shaped like TCP CUBIC): a 429 pauses *every* sender until
the server's ``retry-after`` has elapsed and multiplies the rate by ``decrease`` (0.7); while
requests succeed the rate climbs back along a cubic curve - quickly at first, flat near the rate
at which the last 429 happened, then probing above it. So a run that meets a limit of R requests
per second settles just under R instead of turning into a retry storm. The "rate of the last
429" is the limiter's own rate, or, when the client had been sending at full speed and some of
it was refused, the rate that actually got through: a server with burst capacity lets a rate
above its limit pass for a while, and remembering that rate keeps the probes too high.

A limiter can also start *below* a rate the provider documents (``RateLimits(documented=...)``,
which the client uses for the Anthropic API: ``wire.documented_rate_limits``): it paces from the
first request, so the first burst of an apply meets no 429, and learns upward while every
request succeeds and senders are waiting for tokens (``grow_per_s``), in case the organisation's
real limit is higher than documented.

This module only decides *when* a request may be sent. It does not send, retry or sleep for
backoff of failed requests (the client does), and it never looks at responses other than the
two signals it is given: ``on_success`` and ``on_rate_limited``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping

__all__ = ["DOCUMENTED_START", "AdaptiveRateLimiter", "RateLimits", "documented_limiter"]


class AdaptiveRateLimiter:
    """A token bucket whose rate follows the server's rate limit.

    With no ``rate`` and no ``ceiling`` the limiter lets everything through until the first
    429; from then on it paces requests. ``ceiling`` is a hard cap that the rate never exceeds.

    Args:
        rate: initial rate in requests per second; None means unlimited (the default).
        ceiling: the most requests per second ever allowed; None means no cap.
        decrease: multiplicative decrease applied on a 429 (between 0.5 and 0.7 is sensible).
        recovery_s: seconds the rate takes to climb back to the rate of the last 429; at
            least four times the last pause, so a server with long ``retry-after`` values is
            probed less often (each 429 stops every sender for that long).
        burst_s: bucket depth, in seconds of the current rate (at least one request).
        min_rate: the rate never goes below this.
        window_s: window over which the rate of successful requests is measured (the first
            429's estimate of the limit, and how far above the last limit probing may go).
        grow_per_s: before the first 429, a set ``rate`` grows by this share per second
            (exponentially) while requests succeed and senders wait for tokens; 0 keeps it.
        known_limit: a limit the provider documents; growth above it is six times slower
            (each step above it is a guess that may cost a 429).
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        rate: float | None = None,
        *,
        ceiling: float | None = None,
        decrease: float = 0.7,
        recovery_s: float = 1.0,
        burst_s: float = 0.1,
        min_rate: float = 0.5,
        window_s: float = 1.0,
        grow_per_s: float = 0.0,
        known_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < decrease < 1.0:
            raise ValueError("decrease must be between 0 and 1")
        if rate is None and ceiling is not None:
            rate = ceiling
        if rate is not None and ceiling is not None:
            rate = min(rate, ceiling)
        self._rate: float | None = rate
        self._ceiling = ceiling
        self._decrease = decrease
        self._recovery_s = recovery_s
        self._burst_s = burst_s
        self._min_rate = min_rate
        self._window_s = window_s
        self._grow_per_s = grow_per_s
        self._known_limit = known_limit
        self._clock = clock

        self._tokens = 1.0
        self._refilled_at = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        # Congestion epoch: the rate of the last decrease and when it happened.
        self._w_max: float | None = None
        self._epoch_at = float("-inf")
        self._last_pause = 0.0
        self._started_at: float | None = None
        self._successes: deque[float] = deque()
        self._sends: deque[float] = deque()
        self._resumed_at = float("-inf")  # when the last 429 pause ended
        self._waited_at = float("-inf")  # when a sender last had to wait for a token
        self._grown_at: float | None = None  # when the pre-429 growth last applied
        self.decreases = 0

    # ------------------------------------------------------------------ state

    @property
    def rate(self) -> float | None:
        """The current rate in requests per second, or None when unlimited."""
        return self._rate

    @property
    def ceiling(self) -> float | None:
        """The configured cap, or None."""
        return self._ceiling

    def paused_for(self) -> float:
        """Seconds until a 429 pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:.1f}/s"
        return f"AdaptiveRateLimiter(rate={rate}, ceiling={self._ceiling})"

    def for_request(self, bucket: str) -> AdaptiveRateLimiter:
        """This limiter paces every request, whatever its bucket (see ``RateLimits``)."""
        return self

    # ------------------------------------------------------------------ pacing

    async def acquire(self) -> float:
        """Wait until one request may be sent, then take its token.

        Returns:
            The clock reading at which the request was allowed; pass it back to
            ``on_success`` / ``on_rate_limited`` as ``sent_at``.
        """
        now = self._clock()
        if self._started_at is None:
            self._started_at = now
        if self._rate is None and now >= self._paused_until and not self._lock.locked():
            self._sends.append(now)
            return now
        async with self._lock:  # FIFO: waiters take tokens in arrival order
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                rate = self._rate
                if rate is None:
                    self._sends.append(now)
                    return now
                self._refill(now, rate)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    self._sends.append(now)
                    return now
                self._waited_at = now
                await asyncio.sleep((1.0 - self._tokens) / rate)

    def _refill(self, now: float, rate: float) -> None:
        if now <= self._refilled_at:
            return
        depth = max(1.0, rate * self._burst_s)
        self._tokens = min(depth, self._tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now

    # ------------------------------------------------------------------ feedback

    def on_success(self, sent_at: float | None = None) -> None:
        """Record a response that was not rate limited, and raise the rate if it is time.

        Args:
            sent_at: the value ``acquire`` returned (accepted for symmetry; unused).
        """
        now = self._clock()
        self._successes.append(now)
        horizon = now - self._window_s
        while self._successes and self._successes[0] < horizon:
            self._successes.popleft()
        if self._rate is None:
            return
        if self._w_max is None:
            self._grow(now)
            return
        target = self._cubic(now - self._epoch_at)
        if target > self._w_max:
            # Probe above the last limit only as far as traffic actually follows, so a
            # client sending less than its rate does not inflate it.
            target = min(target, max(self._w_max, 1.5 * self._observed_rate(now)))
        self._set_rate(target)

    def on_rate_limited(self, retry_after: float | None, sent_at: float | None = None) -> None:
        """Record a 429: pause every sender for ``retry_after`` and lower the rate once.

        Several 429s for requests sent before the last decrease belong to the same burst; they
        extend the pause but do not lower the rate again.

        Args:
            retry_after: seconds the server asked to wait (None if it did not say).
            sent_at: the value ``acquire`` returned for the rejected request.
        """
        now = self._clock()
        pause = retry_after if retry_after is not None and retry_after > 0 else 0.0
        got_through = self._saturated_rate(now) if self._rate is not None else None
        self._paused_until = max(self._paused_until, now + pause)
        self._resumed_at = self._paused_until
        self._last_pause = pause
        if sent_at is not None and sent_at < self._epoch_at:
            return
        current = self._rate
        if current is None:
            # Unlimited so far: the rate that got through is the only estimate there is.
            base = self._observed_rate(now)
            if base <= 0:
                return  # nothing got through yet: pause only, measure on the next 429
        else:
            base = current
            # A server with burst capacity lets a rate above its limit through for a while,
            # so the rate at the 429 overestimates the limit. What got through while we were
            # sending at full speed (no pause in the window, and more sent than succeeded)
            # is the better estimate; a window with a pause in it would under-read it.
            if got_through is not None:
                base = min(base, max(got_through, self._min_rate))
        self._w_max = base
        self._epoch_at = now
        self.decreases += 1
        self._set_rate(base * self._decrease)
        self._tokens = 0.0
        self._refilled_at = max(now, self._paused_until)

    def _grow(self, now: float) -> None:
        """Before any 429: raise a starting rate while it is what holds senders back."""
        if self._grow_per_s <= 0 or self._rate is None:
            return
        if now - self._waited_at > self._window_s:
            self._grown_at = None  # demand is below the rate: nothing to learn from
            return
        if self._grown_at is None:
            self._grown_at = now
            return
        elapsed, self._grown_at = now - self._grown_at, now
        growth = self._grow_per_s
        if self._known_limit is not None and self._rate >= self._known_limit:
            growth /= 6
        self._set_rate(self._rate * math.exp(growth * elapsed))

    def _saturated_rate(self, now: float) -> float | None:
        """Successes per second since the last pause ended (within the window), if that
        is at least half a window and more was sent than got through; else None."""
        if self._started_at is None:
            return None
        start = max(now - self._window_s, self._resumed_at, self._started_at)
        span = now - start
        if span < self._window_s / 2:
            return None
        while self._sends and self._sends[0] < now - self._window_s:
            self._sends.popleft()
        self._observed_rate(now)  # trims the successes to the window
        sent = sum(1 for t in self._sends if t >= start)
        got = sum(1 for t in self._successes if t >= start)
        if sent <= got:
            return None
        return got / span

    def _observed_rate(self, now: float) -> float:
        horizon = now - self._window_s
        while self._successes and self._successes[0] < horizon:
            self._successes.popleft()
        started = self._started_at if self._started_at is not None else now
        window = max(min(self._window_s, now - started), self._window_s / 4)
        return len(self._successes) / window

    def _cubic(self, t: float) -> float:
        """CUBIC-shaped rate ``t`` seconds after the last decrease."""
        assert self._w_max is not None
        k = max(self._recovery_s, 4.0 * self._last_pause)
        x = (t - k) / k
        return self._w_max * (1.0 + (1.0 - self._decrease) * x * x * x)

    def _set_rate(self, rate: float) -> None:
        rate = max(rate, self._min_rate)
        if self._ceiling is not None:
            rate = min(rate, self._ceiling)
        if self._rate is not None:
            # Keep the tokens accrued at the old rate before switching.
            self._refill(self._clock(), self._rate)
        self._rate = rate


#: Where a bucket with a documented limit starts: this share of the limit. The provider's
#: burst is one second of its limit - a single request for environments (60/min) - so the
#: margin also absorbs requests that the network or a busy machine delivers bunched.
DOCUMENTED_START = 0.8


def documented_limiter(limit: float) -> AdaptiveRateLimiter:
    """The limiter of a bucket whose limit the provider documents (requests per second).

    It starts at ``DOCUMENTED_START`` of the limit, so a burst of creates never meets a 429,
    and grows 3% a second while it is the bottleneck, up to the limit, then 0.5% a second (an
    organisation may have more than the documented limit). Once a 429 has shown where the
    limit is, it backs off less (x0.85) and probes above it far less often (15 s to recover)
    than a limiter that knows nothing, which keeps the share of 429 answers low
    (``bench/RESULTS.md``).
    """
    return AdaptiveRateLimiter(
        rate=DOCUMENTED_START * limit,
        decrease=0.85,
        recovery_s=15.0,
        grow_per_s=0.03,
        known_limit=limit,
    )


class RateLimits:
    """One ``AdaptiveRateLimiter`` per rate-limit bucket, made on first use.

    The provider limits each family of calls on its own (environment creates far lower than
    agent reads), so a 429 for one bucket pauses and slows only that bucket: 429s from
    environment creates must not hold back the agent creates of the same apply.

    Args:
        make: builds the limiter of a new bucket (default: unlimited until the first 429).
        documented: requests per second the provider documents per bucket; those buckets
            get ``documented_limiter`` instead of ``make``.

    Example:
        >>> limits = RateLimits()
        >>> limits.for_request("environments create") is limits.for_request("agents create")
        False
    """

    def __init__(
        self,
        make: Callable[[], AdaptiveRateLimiter] = AdaptiveRateLimiter,
        *,
        documented: Mapping[str, float] | None = None,
    ) -> None:
        self._make = make
        self._documented = dict(documented or {})
        self._buckets: dict[str, AdaptiveRateLimiter] = {}

    def for_request(self, bucket: str) -> AdaptiveRateLimiter:
        """The limiter of ``bucket`` (``reconciler.provider.wire.rate_bucket``)."""
        limiter = self._buckets.get(bucket)
        if limiter is None:
            limit = self._documented.get(bucket)
            made = self._make() if limit is None else documented_limiter(limit)
            limiter = self._buckets[bucket] = made
        return limiter

    @property
    def buckets(self) -> dict[str, AdaptiveRateLimiter]:
        """Every bucket used so far, with its limiter."""
        return dict(self._buckets)

    @property
    def rate(self) -> float | None:
        """The lowest rate of any bucket (None while every bucket is unlimited)."""
        rates = [b.rate for b in self._buckets.values() if b.rate is not None]
        return min(rates) if rates else None

    @property
    def decreases(self) -> int:
        """Rate decreases over all buckets."""
        return sum(b.decreases for b in self._buckets.values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in sorted(self._buckets.items()))
        return f"RateLimits({{{inner}}})"
