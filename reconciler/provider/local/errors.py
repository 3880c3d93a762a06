"""Every failure leaves the local provider in the Anthropic error envelope.

    {"type": "error",
     "error": {"type": "...", "message": "...", "details": {"error_code": "..."}},
     "request_id": "req_..."}

plus a ``request-id`` header on every response. This module owns: the ``ApiError``
exception that handlers raise, the exception handlers that turn FastAPI's validation errors
(never a 422) and routing errors (404/405) into that envelope, and ``RequestContext``, the
outermost pure-ASGI middleware that assigns request ids, gates ``/v1/`` requests as the API
does (an API key first, then the body's declared size, then the route, then the
``anthropic-version`` header and the route's ``anthropic-beta`` header) and turns any unexpected exception into a 500 ``api_error``.
It does not know about resources or storage.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .ids import new_id
from .store import StoreError, explain

BETA = "managed-agents-2026-04-01"
MEMORY_BETA = "agent-memory-2026-07-22"

# The betas each family of routes accepts (provider-wire.md section 15): the longest matching
# path prefix wins; ``None`` means the route needs no beta header at all.
BETAS_BY_PREFIX: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("/v1/memory_stores", frozenset({MEMORY_BETA, BETA})),
    ("/v1/skills", None),
    ("/v1/files", None),
    ("/v1/", frozenset({BETA})),
)

#: The API's request size limit (public docs: 32 MB for its standard endpoints): a larger body
#: is a 413 before it is read. The Files API takes up to 500 MB and checks that itself.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: paths whose routes enforce their own (larger) size limit
OWN_SIZE_LIMIT = ("/v1/files",)

log = logging.getLogger("reconciler.provider.local")

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


class ApiError(Exception):
    """A request failure that becomes an envelope response.

    Args:
        status: HTTP status code.
        message: a sentence for humans; clients match on ``error_code`` instead.
        error_type: the envelope's ``error.type``; derived from ``status`` when omitted.
        error_code: optional stable ``details.error_code``.
        headers: extra response headers (e.g. ``x-should-retry``).
        details: more ``error.details`` fields (e.g. ``conflicting_memory_id``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or _STATUS_TYPES.get(status, "api_error")
        self.error_code = error_code
        self.headers = dict(headers or {})
        self.details = dict(details or {})

    def response(self, request_id: str) -> Response:
        """The envelope response of this failure to the request ``request_id``."""
        body = envelope(
            request_id, self.status, self.message, self.error_type, self.error_code, self.details
        )
        return Response(
            json.dumps(body),
            status_code=self.status,
            media_type="application/json",
            headers=self.headers,
        )


def bad_request(message: str, error_code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, error_code=error_code)


def not_found(kind: str, object_id: str) -> ApiError:
    """A 404 naming the missing object, e.g. ``agent agent_01... not found``."""
    return ApiError(404, f"{kind} {object_id} not found")


def conflict(message: str) -> ApiError:
    """A deterministic 409: retrying cannot help, so say so (the SDK retries 409s otherwise)."""
    return ApiError(409, message, headers={"x-should-retry": "false"})


def envelope(
    request_id: str,
    status: int,
    message: str,
    error_type: str | None,
    error_code: str | None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The error body for one failure."""
    error: dict[str, Any] = {
        "type": error_type or _STATUS_TYPES.get(status, "api_error"),
        "message": message,
    }
    if error_code or details:
        error["details"] = {**({"error_code": error_code} if error_code else {}), **(details or {})}
    return {"type": "error", "error": error, "request_id": request_id}


def request_id_of(scope: Scope) -> str:
    """The id ``RequestContext`` assigned to this request (a fresh one if it did not run)."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = new_id("request")
    return str(rid)


#: Errors that only say the input is not of one shape a field accepts (``model`` is a string
#: or an object): when another shape's error says what is wrong inside the input, that is the
#: one to report.
_NOT_THIS_SHAPE = frozenset(
    {
        "string_type",
        "model_type",
        "model_attributes_type",
        "dict_type",
        "list_type",
        "int_type",
        "bool_type",
        "float_type",
        "is_instance_of",
    }
)


def _sent_path(loc: Sequence[Any], body: Any, missing: bool) -> list[str]:
    """The part of a body error's ``loc`` that follows what the client sent: pydantic also
    names the shapes of a union (``constrained-str``, ``ModelConfigIn``, ``tagged-union[...]``)
    and the tags it chose (``custom``), which the request never spelled."""
    path: list[str] = []
    value = body
    for i, part in enumerate(loc):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and type(part) is int and 0 <= part < len(value):
            value = value[part]
        elif part != "[key]" and not (missing and i == len(loc) - 1):
            continue  # a shape's or a tag's name
        path.append(str(part))
    return path


def _describe_validation(errors: Sequence[Any], body: Any = None) -> tuple[str, str | None]:
    """One sentence for the pydantic error that says most about what the client sent, and
    ``invalid_metadata`` when it is one."""
    telling = [e for e in errors if e.get("type") not in _NOT_THIS_SHAPE] or list(errors)
    first = telling[0] if telling else {}
    raw = list(first.get("loc", ()))
    if raw[:1] == ["body"] and isinstance(body, dict | list):
        loc = _sent_path(raw[1:], body, first.get("type") == "missing")
    else:
        loc = [str(p) for p in raw if p not in ("body", "query", "path", "header")]
    where = ".".join(loc)
    if loc[-1:] == ["[key]"] and len(loc) >= 2:  # a dict's key, not a value under it
        where = f"{'.'.join(loc[:-2])} key {loc[-2]!r}"
    msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON", None
    if first.get("type") == "missing" and not loc:
        return "request body is required", None
    code = "invalid_metadata" if loc and loc[0] == "metadata" else None
    return (f"{where}: {msg}" if where else msg), code


#: API families the official SDK (2.10.0) has methods for and the local provider does not
#: serve (provider-wire.md sections 2 and 15): their 404 says so, so that it does not read as
#: a wrong id.
_UNSERVED = (
    (re.compile(r"/v1/sessions/[^/]+/threads(/|$)"), "session threads"),
    (re.compile(r"/v1/environments/[^/]+/work(/|$)"), "the self-hosted environment work queue"),
    (re.compile(r"/v1/dreams(/|$)"), "dreams"),
    (re.compile(r"/v1/tunnels(/|$)"), "MCP tunnels"),
    (re.compile(r"/v1/user_profiles(/|$)"), "user profiles"),
    (re.compile(r"/v1/models(/|$)"), "the Models API"),
    (re.compile(r"/v1/messages(/|$)"), "the Messages API"),
    (re.compile(r"/v1/organizations(/|$)"), "the Admin API"),
)


def unserved_family(path: str) -> str | None:
    """What an SDK call to ``path`` reaches that the local provider does not serve, or None."""
    for pattern, family in _UNSERVED:
        if pattern.match(path):
            return family
    return None


def install_exception_handlers(app: FastAPI) -> None:
    """Map FastAPI's own failures into the envelope (400 instead of 422; 404/405 for routes)."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response(request_id_of(request.scope))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, code = _describe_validation(exc.errors(), exc.body)
        return ApiError(400, message, error_code=code).response(request_id_of(request.scope))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        method = request.scope.get("state", {}).get("method", request.method)  # HEAD, sent as GET
        if exc.status_code == 404:
            message = f"route {method} {request.url.path} not found"
            unserved = unserved_family(request.url.path)
            if unserved is not None:
                message += (
                    f": the local provider does not serve {unserved} (the Anthropic API does)"
                )
        elif exc.status_code == 405:
            message = f"method {method} not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "allow"}
        if exc.status_code == 405:  # the router names only the first route's methods
            headers["allow"] = ", ".join(_allowed(request.scope))
        return ApiError(exc.status_code, message, headers=headers).response(
            request_id_of(request.scope)
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class _HeadAnswered(OSError):
    """A HEAD request's headers are out: what the GET route would stream next is not sent.
    An ``OSError``, as Starlette takes a failed send of a streamed body for a gone client."""


class RequestContext:
    """Outermost ASGI middleware: request ids, the beta-header gate, and the 500 safety net.

    A pure ASGI middleware (not ``BaseHTTPMiddleware``) so that SSE streams pass through
    untouched. An exception raised after the response started is re-raised: the server then
    aborts the connection, which is what the fault injector's "dropped connection" relies on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        started = False
        head = scope["method"] == "HEAD"
        if head:
            # HEAD is GET without a body (RFC 9110 9.3.2): the GET route answers, and only its
            # status and headers leave; a stream ends as soon as its headers are out.
            scope = {**scope, "method": "GET"}
            scope["state"]["method"] = "HEAD"

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if head and started:
                    raise _HeadAnswered
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"request-id", rid.encode()))
                await send({**message, "headers": headers})
                if head:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if head:
                if message.get("more_body", False):
                    raise _HeadAnswered  # a stream: stop producing what nobody reads
                return
            await send(message)

        refusal = _gate(scope)
        if refusal is not None:
            await refusal(rid)(scope, receive, send_with_id)
            return
        try:
            await self.app(scope, receive, send_with_id)
        except UnicodeEncodeError:
            # Lone surrogates in JSON strings cannot be stored as UTF-8: the input is invalid.
            if started:
                raise
            response = ApiError(400, "request contains invalid unicode text").response(rid)
            await response(scope, receive, send_with_id)
        except (sqlite3.Error, StoreError) as exc:
            # the database file, not the provider, is at fault: say which file and what to
            # do, once, with no traceback; retrying cannot help (the busy timeout was waited)
            if started:
                raise
            problem = exc if isinstance(exc, StoreError) else explain(_db_path(scope), exc)
            log.info("local provider database error: %s", problem)
            response = ApiError(
                503 if problem.locked else 500, str(problem), headers={"x-should-retry": "false"}
            ).response(rid)
            await response(scope, receive, send_with_id)
        except Exception as exc:
            if head and started and isinstance(exc, _HeadAnswered | ClientDisconnect):
                return  # the HEAD answer is complete; the rest of a stream is not wanted
            if started:
                raise
            log.exception("unhandled error in local provider")
            response = ApiError(500, "internal error in the local provider").response(rid)
            await response(scope, receive, send_with_id)


def _db_path(scope: Scope) -> str:
    app = scope.get("app")
    store = getattr(getattr(getattr(app, "state", None), "provider", None), "store", None)
    return str(getattr(store, "path", "of the local provider"))


def _gate(scope: Scope) -> Callable[[str], Response] | None:
    """Why a ``/v1/`` request is refused before any handler runs, or None when it may pass.

    The API's order: a request with no credentials is a 401 on any path; a body declared
    larger than ``MAX_BODY_BYTES`` is a 413 on any path (but the Files API's); then the route
    decides (an unknown path or method is left to the router: 404 ``not_found_error`` /
    405, whatever the headers say); only a request that reaches a route is checked for an
    ``anthropic-version`` header (any value: which versions the API knows is not ours to
    judge; none is the API's 400 "anthropic-version: header is required") and then for the
    betas that route's family accepts (``BETAS_BY_PREFIX``).
    """
    path = str(scope.get("path", ""))
    if not path.startswith("/v1/"):
        return None
    headers = dict(scope.get("headers", []))
    problem = _credentials_problem(headers)
    if problem is not None:
        return lambda rid: ApiError(401, problem).response(rid)
    length = headers.get(b"content-length")
    # a declared length only: what a client streams chunked is bounded by the routes' limits.
    # Fewer than 8 digits is under 10 MB: the common request parses no number.
    if (
        length is not None
        and len(length) > 7
        and length.isdigit()
        and int(length) > MAX_BODY_BYTES
        and not path.startswith(OWN_SIZE_LIMIT)
    ):
        too_big = f"the request body is {int(length)} bytes; at most {MAX_BODY_BYTES} (32 MB)"
        return lambda rid: ApiError(413, too_big).response(rid)
    if b"anthropic-version" not in headers:
        message = "anthropic-version: header is required"
    else:
        missing = _missing_beta(scope)
        if missing is None:
            return None
        message = f"the anthropic-beta header must include {missing}"
    # routing is asked only when a header is missing: the common request pays nothing
    if not _routed(scope):
        return None
    return lambda rid: ApiError(400, message).response(rid)


def _credentials_problem(headers: Mapping[bytes, bytes]) -> str | None:
    """What is wrong with the request's credentials (its raw ``headers``); None when it names
    a key.

    Any key is accepted (no account exists locally): the check is that one was sent, as
    ``x-api-key`` or ``Authorization: Bearer``, so a client that forgets its key fails here
    as it would against the API.
    """
    key = headers.get(b"x-api-key")
    if key is not None and key.strip():
        return None
    auth = headers.get(b"authorization")
    if auth is None:
        return "missing API key: send an x-api-key header (or Authorization: Bearer ...)"
    scheme, _, token = auth.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "the Authorization header must be 'Bearer <key>'"
    return None


def _routed(scope: Scope) -> bool:
    """Whether a route of the app takes this path and method (a full match)."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return True
    return False


def _allowed(scope: Scope) -> list[str]:
    """Every method some route of the app takes on this path, for a 405's ``allow``."""
    router = getattr(scope.get("app"), "router", None)
    methods: set[str] = set()
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")  # answered by the GET route (``RequestContext``)
    return sorted(methods)


def accepted_betas(path: str) -> frozenset[str] | None:
    """The betas a request to ``path`` may name (one suffices); None when it needs none."""
    for prefix, betas in BETAS_BY_PREFIX:
        if path.startswith(prefix):
            return betas
    return None


def _missing_beta(scope: Scope) -> str | None:
    """The beta (or betas, joined by " or ") the request lacks; None when it may pass."""
    wanted = accepted_betas(str(scope.get("path", "")))
    if not wanted:
        return None
    for name, value in scope.get("headers", []):
        if name == b"anthropic-beta":
            betas = {part.strip() for part in value.decode("latin-1").split(",")}
            if betas & wanted:
                return None
    return " or ".join(sorted(wanted, key=lambda beta: beta != BETA))
