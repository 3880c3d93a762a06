"""RetryPolicy: which failed requests may be sent again, and after how long.

Decides from the method, path and body whether a request is idempotent, whether a status or a
transport failure is worth retrying, and how long to wait (the server's ``retry-after-ms`` /
``retry-after`` first, else capped exponential backoff with jitter). The client's loop asks
these questions; this module never sends, sleeps or raises provider errors.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "REFUSED_STATUSES",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "is_idempotent",
    "parse_retry_after",
]

#: as the official SDK's ``_should_retry``: timeouts, lock timeouts (a 409 the server does
#: not call final with ``x-should-retry: false``), rate limits and server errors
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
#: refusals: nothing was written, so even a create may be sent again (no twin)
REFUSED_STATUSES = frozenset({409, 429})
IDEMPOTENT_ACTIONS = frozenset({"archive", "pause", "unpause", "redact"})
MAX_HONOURED_RETRY_AFTER_S = 60.0

# Failures raised before a single byte of the request left this process: a retry cannot
# duplicate anything, so even creates may be sent again.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def is_idempotent(method: str, path: str, json: Any = None) -> bool:
    """Whether sending this request twice has the same effect as sending it once.

    GET/HEAD/PUT/DELETE are; a POST is when it is an ``archive``/``pause``/``unpause``/
    ``redact`` action or an update of one item (``/v1/agents/{id}``) without a ``version``
    (or a memory's ``precondition``) precondition. Creates
    (POST to a collection), ``run``, and sending session events are not.

    Args:
        method: HTTP method.
        path: request path, e.g. ``/v1/agents/agent_1``.
        json: the request body, inspected for a ``version`` precondition.

    Returns:
        True when a retry after an ambiguous failure cannot duplicate the effect.
    """
    method = method.upper()
    if method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
        return True
    if method != "POST":
        return False
    segments = [s for s in path.split("?")[0].split("/") if s]
    if segments and segments[0] == "v1":
        segments = segments[1:]
    if segments and segments[-1] in IDEMPOTENT_ACTIONS and len(segments) % 2 == 1:
        return True
    is_item = len(segments) >= 2 and len(segments) % 2 == 0
    # an agent's ``version``, a memory's ``precondition``: a resend after the write happened
    # would meet its own change and fail as stale
    has_precondition = isinstance(json, Mapping) and any(
        json.get(key) is not None for key in ("version", "precondition")
    )
    return is_item and not has_precondition


def parse_retry_after(headers: Mapping[str, str] | httpx.Headers) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``retry-after``.

    Args:
        headers: response headers.

    Returns:
        The wait in seconds (``retry-after`` may be seconds, a float, or an HTTP date), or
        None when neither header is present and parseable.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed) - time.time())


def should_retry_header(headers: Mapping[str, str] | httpx.Headers) -> bool | None:
    """The server's ``x-should-retry`` verdict: True forces, False forbids, None = no say."""
    value = (headers.get("x-should-retry") or "").strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


@dataclass
class RetryPolicy:
    """Retry limits and backoff shape for one client.

    Attributes:
        max_retries: retries after the first attempt (0 disables retries), whatever failed,
            except 429s that say when to come back.
        backoff_base: first backoff in seconds; doubles per retry.
        backoff_max: backoff cap in seconds (before jitter).
        max_rate_limit_retries: retries after 429s that carry ``retry-after`` (or
            ``retry-after-ms``), counted apart from ``max_retries``. Such a 429 is a refusal
            the server did not process, so sending again is safe even for a create, and the
            wait is the server's to say; a stretch of rate limiting (a limit shared with
            other clients) must not use up the retries kept for real failures. Still a
            bound, so a limit that never lets the request through fails, naming the 429.
    """

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_rate_limit_retries: int = 20
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def backoff(self, retries_taken: int) -> float:
        """Exponential backoff ``base * 2**n`` capped at ``backoff_max``, jittered to 75-100%."""
        delay = min(self.backoff_base * (2.0 ** min(retries_taken, 60)), self.backoff_max)
        return delay * (1.0 - 0.25 * self.rng.random())

    def status_is_retryable(self, response: httpx.Response) -> bool:
        """Whether a response status (or ``x-should-retry``) invites another attempt."""
        verdict = should_retry_header(response.headers)
        if verdict is not None:
            return verdict
        return response.status_code in RETRYABLE_STATUSES

    def wait_for(self, response: httpx.Response | None, retries_taken: int) -> float | None:
        """How long to wait before the next attempt.

        Args:
            response: the failed response, or None after a transport failure.
            retries_taken: retries already made for this request.

        Returns:
            Seconds to wait, or None when the server asked for a wait longer than
            ``MAX_HONOURED_RETRY_AFTER_S`` (better to fail and say so than to hang).
        """
        if response is not None:
            asked = parse_retry_after(response.headers)
            if asked is not None and asked > 0:
                return asked if asked <= MAX_HONOURED_RETRY_AFTER_S else None
        return self.backoff(retries_taken)
