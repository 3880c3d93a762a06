"""ProviderClient: the async HTTP client of the Managed Agents wire API.

One ``httpx.AsyncClient`` (one connection pool) per client, shared safely by many concurrent
tasks. Every attempt passes the rate limiter of its bucket, is counted in ``stats``, and
fails over to a retry or to a typed error of ``reconciler.errors``. This is the *one* place
where a failed request becomes a typed error (through ``wire_errors.error_for``).

Retry rules (see ``retry.py``): this client is the one place that decides whether a failed
request is sent again and when (callers above it never retry on their own schedule).
Idempotent requests are retried on transport failures and on 408/409/429/5xx/529 (as the
official SDK: a 409 is a lock timeout unless the server says ``x-should-retry: false``, as it
does for a stale version or a name taken); non-idempotent writes (creates, versioned updates,
``run``, session events) when the request certainly never reached the server (connect
failure) or was refused unprocessed (429, a retryable 409), or - given a ``resolve`` callback
that looks the write up (the executor finds a create by its ownership tags) - after that
lookup showed the write did not happen. Every retry of a request, whatever its cause, counts against the same
``max_retries``, except 429s that say when to come back (``retry-after``): refused and not
processed, they are retried under a larger budget of their own (``max_rate_limit_retries``).
A write whose fate stays unknown raises ``AmbiguousWriteError``.

It does not know resource shapes (``resources.py`` names the endpoints), does not parse SSE
frames (``sse.py``) and does not decide what to create (the engine does).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Self

import httpx

from reconciler.errors import (
    AmbiguousWriteError,
    ProviderConnectionError,
    ProviderError,
)
from reconciler.provider.asyncio_transport import BEFORE_WRITE
from reconciler.provider.files import Files
from reconciler.provider.memory_stores import MemoryStores
from reconciler.provider.origin import normalize_base_url
from reconciler.provider.pager import Pager
from reconciler.provider.ratelimit import AdaptiveRateLimiter, RateLimits
from reconciler.provider.resources import (
    Agents,
    Credentials,
    DeploymentRuns,
    Deployments,
    Environments,
    Sessions,
    Vaults,
)
from reconciler.provider.retry import (
    NEVER_SENT,
    REFUSED_STATUSES,
    RetryPolicy,
    is_idempotent,
    parse_retry_after,
)
from reconciler.provider.skills import Skills
from reconciler.provider.sse import EventStream
from reconciler.provider.wire import (
    collection_kind,
    default_headers,
    documented_rate_limits,
    encode_query,
    rate_bucket,
)
from reconciler.provider.wire_errors import error_for

__all__ = ["AmbiguityResolver", "ProviderClient", "RequestStats", "error_for"]

#: ``resolve()``, called after a non-idempotent write failed in a way that leaves its effect
#: unknown and before it is sent again: the object the write made (it happened: that is the
#: answer) or None (it did not: sending it again makes no twin).
AmbiguityResolver = Callable[[], Awaitable[Any]]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class RequestStats:
    """Counts of HTTP attempts made by one client (every retry is an attempt).

    Attributes:
        requests: attempts sent (first tries and retries).
        retries: attempts that were retries.
        rate_limited: 429 responses received.
        by_method: attempts per HTTP method, e.g. ``{"GET": 100}``.
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def record(self, method: str, *, retry: bool) -> None:
        """Count one attempt."""
        self.requests += 1
        self.retries += int(retry)
        self.by_method[method] = self.by_method.get(method, 0) + 1

    def snapshot(self) -> RequestStats:
        """A copy that later requests do not change."""
        return replace(self, by_method=dict(self.by_method))

    def reset(self) -> None:
        """Zero every counter (e.g. between benchmark phases)."""
        self.requests = self.retries = self.rate_limited = 0
        self.by_method = {}


_SSL_CONTEXT: ssl.SSLContext | None = None


def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process: building it (loading the
    CA bundle) takes 30-45 ms, which every new client would otherwise pay."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = httpx.create_ssl_context()
    return _SSL_CONTEXT


def _ssl_context_for(base_url: str) -> ssl.SSLContext:
    """The verifying context for an ``https`` URL; for ``http`` (a local provider, the
    embedded one) a context with no CA loaded, which verifies nothing and so refuses every
    TLS peer, saving the 30-80 ms the CA bundle takes to load at each start."""
    if base_url.lower().startswith("https:"):
        return _default_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _response_payload(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


@dataclass(frozen=True)
class _Found:
    """What an ``AmbiguityResolver`` found: the write happened, this is its answer."""

    value: Any


#: What a response's ``stream`` becomes once its body was read and the stream closed.
_READ = httpx.ByteStream(b"")


class ProviderClient:
    """Async client of the Managed Agents API (or the local provider).

    Args:
        base_url: e.g. ``https://api.anthropic.com`` or a local provider's URL.
        api_key: sent as ``x-api-key`` when given.
        transport: an httpx transport (e.g. ``StreamingASGITransport``); default: HTTP.
        timeout: seconds, or an ``httpx.Timeout``.
        max_retries: retries after the first attempt.
        max_rate_limit_retries: retries after 429s carrying ``retry-after``, counted apart
            from ``max_retries`` (``RetryPolicy``).
        backoff_base: first retry backoff in seconds (doubles per retry).
        backoff_max: backoff cap in seconds.
        rate_limiter: paces the requests: ``RateLimits`` (the default) learns one rate per
            rate-limit bucket of the provider, starting below the limits the provider
            documents (``wire.documented_rate_limits``); one ``AdaptiveRateLimiter`` paces
            them all.
        max_connections: requests in flight at once (and the keep-alive pool size).

    Example:
        >>> async with ProviderClient("http://127.0.0.1:8080") as client:
        ...     agent = await client.agents.create({"name": "coder", "model": "claude-sonnet-4-6"})
        ...     every = await client.agents.list(include_archived=True).to_list()
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout | None = 60.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        rate_limiter: AdaptiveRateLimiter | RateLimits | None = None,
        max_connections: int = 64,
        max_rate_limit_retries: int = 20,
    ) -> None:
        # refused here, before any request: httpx would retry a scheme-less URL four times
        self.base_url = normalize_base_url(base_url)
        self.policy = RetryPolicy(
            max_retries, backoff_base, backoff_max, max_rate_limit_retries=max_rate_limit_retries
        )
        if rate_limiter is None:  # below the documented limits from the first request
            rate_limiter = RateLimits(documented=documented_rate_limits(self.base_url))
        self.rate_limiter = rate_limiter
        self._stats = RequestStats()
        #: Called right before every attempt of a request that may change something (any
        #: method but GET/HEAD/OPTIONS); raising stops the request unsent. Apply sets it to
        #: the apply lock's ``ensure_held``, so a paused apply whose lock was taken over
        #: never sends another write.
        self.write_guard: Callable[[], None] | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._timeout_extension = self._timeout.as_dict()  # as ``build_request`` sets it
        # The semaphore bounds ordinary requests; long-lived streams get their own
        # connections instead of starving them, so the pool itself is unbounded.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=max_connections)
        # httpx uses ``verify`` only for a transport of its own (none is given: proxy
        # variables are set); a TLS context built for nothing is ~1 MiB (OpenSSL's tables),
        # and the embedded provider's transport never speaks TLS.
        verify: ssl.SSLContext | bool = True
        if transport is None:
            from reconciler.provider.asyncio_transport import http_transport

            verify = _ssl_context_for(self.base_url)
            transport = http_transport(verify=verify, limits=limits)
        #: Requests go straight to this transport (None: through ``httpx.AsyncClient.send``,
        #: which picks httpx's proxy transports when proxy variables are set). This client
        #: sets no auth, event hooks or redirect following, so all ``send`` adds around the
        #: transport is a cookie jar to feed and a log line; ~60 us per request, as much as
        #: the rest of the client (``_send`` feeds the jar itself).
        self._transport = transport
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=default_headers(api_key),
            timeout=self._timeout,
            transport=transport,
            verify=verify,
            limits=limits,
        )
        self.agents = Agents(self)
        self.environments = Environments(self)
        self.vaults = Vaults(self)
        self.credentials = Credentials(self)
        self.deployments = Deployments(self)
        self.deployment_runs = DeploymentRuns(self)
        self.sessions = Sessions(self)
        self.memory_stores = MemoryStores(self)
        self.skills = Skills(self)
        self.files = Files(self)

    def __repr__(self) -> str:
        return f"ProviderClient({self.base_url!r})"

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of ``path``, parsed once: httpx would parse and merge it again
        for every request (~80 us; an apply sends every create to the same path)."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= 256:  # item paths are one per resource: keep it small
                self._urls.clear()
            try:
                url = httpx.URL(self.base_url + path)
            except httpx.InvalidURL as err:  # an id of 70,000 characters: a bad argument
                raise ValueError(f"cannot request {_short_path(path)}: {err}") from None
            self._urls[path] = url
        return url

    @property
    def stats(self) -> RequestStats:
        """Live counters of every HTTP attempt this client made."""
        return self._stats

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (and the in-process transport, if any)."""
        await self._http.aclose()

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, str]] | None = None,
        idempotent: bool | None = None,
        resolve: AmbiguityResolver | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one API request, with retries, and return its parsed JSON body.

        Args:
            method: HTTP method.
            path: path under the base URL, e.g. ``/v1/agents``.
            json: request body (None sends no body).
            params: query parameters, encoded as the wire expects (``encode_query``).
            idempotent: override the idempotency the method and path imply.
            resolve: for a non-idempotent write, how to tell whether an attempt whose answer
                was lost (a 5xx, a dropped connection) happened: called before any resend;
                what it finds is returned as the answer. Without it such a failure raises
                ``AmbiguousWriteError`` at once.
            content: a raw body instead of ``json`` (a multipart upload), with its
                ``content-type`` in ``headers``; the same bytes are sent on every attempt.
            headers: extra request headers.

        Returns:
            The decoded JSON (None for an empty body), or what ``resolve`` found.

        Raises:
            ProviderError: a subclass for the status; ``AmbiguousWriteError`` when a
                non-idempotent write may have happened; ``ProviderConnectionError`` when no
                response arrived after every retry.
        """
        response = await self._send(
            method,
            path,
            json=json,
            params=params,
            idempotent=idempotent,
            resolve=resolve,
            content=content,
            headers=dict(headers) if headers else None,
        )
        if isinstance(response, _Found):
            return response.value
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise ProviderError(
                f"{method} {path} answered {response.status_code} with a body that is not JSON "
                f"({kind}); is {self.base_url} a Managed Agents API?",
                status=response.status_code,
                method=method,
                path=path,
            ) from None

    async def download(self, path: str) -> bytes:
        """GET a binary body (a skill version's zip, a file's content), retried like any GET.

        Sent with ``Accept: application/binary``, as the SDK sends it for both downloads.
        """
        response = await self._send(
            "GET", path, idempotent=True, headers={"accept": "application/binary"}
        )
        assert isinstance(response, httpx.Response)  # no resolver: never a _Found
        return response.content

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, limit: int | None = 100
    ) -> Pager:
        """A ``Pager`` over every item of the list endpoint ``path``."""
        return Pager(self._get_page, path, params, limit=limit)

    async def _get_page(self, path: str, params: Any) -> Any:
        return await self.request("GET", path, params=params)

    @contextlib.asynccontextmanager
    async def stream_sse(
        self, path: str, params: Mapping[str, Any] | None = None, *, describe: str | None = None
    ) -> AsyncIterator[EventStream]:
        """Open a server-sent event stream (GET, retried like any GET until it opens).

        Args:
            path: the stream path, e.g. ``/v1/sessions/sesn_1/events/stream``.
            params: query parameters.
            describe: how messages name the stream.

        Yields:
            An ``EventStream``: an async iterator of event dicts.
        """
        response = await self._send(
            "GET",
            path,
            params=params,
            idempotent=True,
            stream=True,
            headers={"accept": "text/event-stream"},
        )
        assert isinstance(response, httpx.Response)  # no resolver: never a _Found
        name = describe or f"the event stream {path}"

        def from_frame(payload: dict[str, Any]) -> ProviderError:
            return error_for(None, payload, method="GET", path=path)

        events = EventStream(response, from_frame, name)
        try:
            yield events
        finally:
            await events.aclose()
            await response.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, str]] | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
        headers: dict[str, str] | None = None,
        resolve: AmbiguityResolver | None = None,
        content: bytes | None = None,
    ) -> httpx.Response | _Found:
        method = method.upper()
        idem = is_idempotent(method, path, json) if idempotent is None else idempotent
        pairs = params if isinstance(params, list) else encode_query(params)
        # None, not an empty QueryParams, when there is no query: httpx merges any params
        # given into the URL by parsing it again (~0.1 ms, as much as the rest of the request)
        query = httpx.QueryParams(tuple(pairs)) if pairs else None
        limiter, policy = self.rate_limiter.for_request(rate_bucket(method, path)), self.policy
        retries = 0  # counted against policy.max_retries
        waited = 0  # retries after 429s with retry-after: policy.max_rate_limit_retries
        while True:
            paced = False
            failure: httpx.TransportError | None = None
            response: httpx.Response | None = None
            slot = contextlib.nullcontext() if stream else self._slots
            async with slot:
                sent_at = await limiter.acquire()
                guard = self.write_guard if method not in _READS else None
                if guard is not None:
                    guard()  # here for every transport; asyncio_transport checks again
                    # at the socket
                self._stats.record(method, retry=retries + waited > 0)
                request = self._request(method, path, json, content, query, headers)
                if guard is not None:
                    request.extensions[BEFORE_WRITE] = guard
                try:
                    response = await self._exchange(request)
                    if not stream or not response.is_success:
                        try:
                            await response.aread()
                        finally:
                            await response.aclose()
                            # The response and its stream refer to each other: a cycle that
                            # only the garbage collector frees, body and all (a page of 100
                            # agents is ~100 KB; plan pauses the collector). Read and
                            # closed, the stream is done with: drop it, so the response
                            # is freed as soon as the caller lets it go.
                            response.stream = _READ
                except httpx.TransportError as exc:
                    failure = exc
                except httpx.HTTPError as exc:  # e.g. an undecodable body: not worth a retry
                    raise ProviderError(
                        f"{method} {path}: the provider's response could not be read "
                        f"({type(exc).__name__}: {exc})",
                        method=method,
                        path=path,
                    ) from exc

            ambiguous: AmbiguousWriteError | None = None
            delay: float | None = None
            if failure is not None or response is None:
                assert failure is not None
                if not idem and not isinstance(failure, NEVER_SENT):
                    ambiguous = self._ambiguous(method, path, None, failure)
                elif retries >= policy.max_retries:
                    raise self._unreachable(method, path, failure, retries) from failure
                else:
                    delay = policy.backoff(retries)
            elif response.status_code < 400:
                limiter.on_success(sent_at)
                return response
            elif not idem and response.status_code in (408, *range(500, 600)):
                limiter.on_success(sent_at)  # processed: not a rate signal
                ambiguous = self._ambiguous(method, path, response, None)
                if resolve is None or not policy.status_is_retryable(response):
                    raise ambiguous  # the server said not to retry, or nobody can look
            else:
                status = response.status_code
                # a refusal wrote nothing: sent again, even a create makes no twin
                refused = status in REFUSED_STATUSES
                retryable = policy.status_is_retryable(response) and (idem or refused)
                # a 429 that says when to come back was not processed: its own budget
                paced = status == 429 and parse_retry_after(response.headers) is not None
                if paced:
                    can_retry = retryable and waited < policy.max_rate_limit_retries
                else:
                    can_retry = retryable and retries < policy.max_retries
                delay = policy.wait_for(response, retries) if can_retry else None
                if status == 429:
                    self._stats.rate_limited += 1
                    limiter.on_rate_limited(
                        delay if delay is not None else parse_retry_after(response.headers),
                        sent_at,
                    )
                else:
                    limiter.on_success(sent_at)  # processed: not a rate signal
                if delay is None:
                    if not idem and (status >= 500 or status == 408):
                        raise self._ambiguous(method, path, response, None)
                    raise self._status_error(method, path, response, retries + waited)
                if status == 429:
                    delay = 0.0  # the limiter's pause already holds every sender back
            if ambiguous is not None:
                if resolve is None:
                    raise ambiguous from failure
                found = await self._look_up(resolve, ambiguous)
                if found is not None:
                    return _Found(found)
                # it did not happen (as far as a lookup can tell: one still in flight may
                # not show yet): a failure like any other, under the same budget
                if retries >= policy.max_retries:
                    raise AmbiguousWriteError(
                        f"{ambiguous.message}; gave up after {retries} retries",
                        **ambiguous.details(),
                    ) from failure
                delay = policy.wait_for(response, retries)
                if delay is None:
                    raise ambiguous
            if paced:
                waited += 1
            else:
                retries += 1
            if delay:
                await asyncio.sleep(delay)

    def _request(
        self,
        method: str,
        path: str,
        json: Any,
        content: bytes | None,
        query: httpx.QueryParams | None,
        headers: dict[str, str] | None,
    ) -> httpx.Request:
        """The request of one attempt. httpx's ``build_request`` merges the client's headers,
        cookies and query parameters into a new request; with nothing to merge (an apply's
        every create), the request is made from the client's headers as they are: the same
        request, a third cheaper (~10 us)."""
        if query is not None or headers or self._http.cookies:
            return self._http.build_request(
                method, self._url(path), json=json, content=content, params=query, headers=headers
            )
        return httpx.Request(
            method,
            self._url(path),
            headers=self._http.headers,
            json=json,
            content=content,
            extensions={"timeout": self._timeout_extension},
        )

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response's body is not read yet."""
        if self._transport is None or self._http.is_closed:
            return await self._http.send(request, stream=True)  # (closed: httpx refuses it)
        response = await self._transport.handle_async_request(request)
        response.request = request
        if "set-cookie" in response.headers:  # what httpx's send does with every response
            self._http.cookies.extract_cookies(response)
        return response

    async def _look_up(self, resolve: AmbiguityResolver, ambiguous: AmbiguousWriteError) -> Any:
        """What ``resolve`` finds; when the lookup fails too, the write stays ambiguous -
        or, when the lookup got no answer at all, the provider is unreachable, which is
        what a caller counting dead providers (the executor's circuit breaker) must see."""
        try:
            return await resolve()
        except ProviderError as exc:
            message = f"{ambiguous.message}; looking it up failed too ({exc.message})"
            if isinstance(exc, ProviderConnectionError):
                raise ProviderConnectionError(message, **ambiguous.details()) from exc
            raise AmbiguousWriteError(message, **ambiguous.details()) from exc

    # ------------------------------------------------------------------ errors

    def _status_error(
        self, method: str, path: str, response: httpx.Response, retries: int
    ) -> ProviderError:
        error = error_for(
            response.status_code,
            _response_payload(response),
            method=method,
            path=path,
            request_id=response.headers.get("request-id"),
            retry_after=parse_retry_after(response.headers)
            if response.status_code == 429
            else None,
            note=f"gave up after {retries} retries" if retries else None,
        )
        return error

    def _ambiguous(
        self,
        method: str,
        path: str,
        response: httpx.Response | None,
        failure: httpx.TransportError | None,
    ) -> AmbiguousWriteError:
        thing = collection_kind(path) or "resource"
        if response is not None:
            cause = self._status_error(method, path, response, 0)
            reason = f"it was answered with an error ({cause.message})"
            fields = cause.details()
        else:
            assert failure is not None
            reason = f"the connection failed after the request was sent ({_describe(failure)})"
            fields = {"method": method, "path": path}
        # what to do about it is the caller's to say (the engine looks the object up first)
        return AmbiguousWriteError(
            f"{method} {path} ({thing}) may or may not have been applied: {reason}", **fields
        )

    def _unreachable(
        self, method: str, path: str, failure: httpx.TransportError, retries: int
    ) -> ProviderConnectionError:
        tries = f"after {retries} retries" if retries else "without retrying"
        if isinstance(failure, NEVER_SENT):
            message = f"could not reach the provider at {self.base_url}: {_describe(failure)}"
        else:
            message = (
                f"no response from the provider at {self.base_url} to {method} {path}: "
                f"{_describe(failure)}"
            )
        return ProviderConnectionError(f"{message} ({tries})", method=method, path=path)


def _describe(failure: httpx.TransportError) -> str:
    names = {
        httpx.ConnectError: "connection failed",
        httpx.ConnectTimeout: "connecting timed out",
        httpx.PoolTimeout: "no free connection in time",
        httpx.ReadTimeout: "timed out waiting for the response",
        httpx.WriteTimeout: "timed out sending the request",
        httpx.RemoteProtocolError: "the server closed the connection",
        httpx.ReadError: "the connection dropped while reading",
        httpx.WriteError: "the connection dropped while sending",
    }
    what = next((text for cls, text in names.items() if isinstance(failure, cls)), None)
    detail = str(failure).strip()
    what = what or type(failure).__name__
    if detail.lower().startswith(what.lower()):  # our transport's own words: said once
        return detail
    if detail.lower().startswith("server disconnected without sending a response"):
        return f"{what} without sending a response"  # httpcore's words for the same thing
    return f"{what} ({detail})" if detail else what


def _short_path(path: str, limit: int = 80) -> str:
    """``path`` cut to ``limit`` characters for a message."""
    return path if len(path) <= limit else f"{path[:limit]}... ({len(path):,} characters)"
