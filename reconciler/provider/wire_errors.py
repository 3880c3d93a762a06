"""Error answers of the wire API as the typed errors of ``reconciler.errors``.

``error_for`` is the one place where an HTTP status (or an SSE ``error`` frame's type)
becomes an error class, with a message a person can act on. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from reconciler.provider.wire import describe_target

__all__ = ["error_for"]

_STATUS_CLASSES: dict[int, type[ProviderError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}
_TYPE_STATUSES = {  # for SSE error frames, which carry an error type but no status
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
#: How the error of each class reads (a 404 that names its object reads otherwise: see
#: ``error_for``). ``{request}`` is ``METHOD PATH``; ``{target}`` the object the path addresses
#: (``agent agent_01X``), else the request; ``{said}`` the provider's words (``: ...`` or
#: nothing); ``{tags}`` the status, error code and request id, in parentheses.
_MESSAGES: dict[type[ProviderError], str] = {
    NotFoundError: "{request} not found{said}{tags}",
    BadRequestError: "the provider rejected {request}{said}{tags}",
    AuthenticationError: (
        "the provider refused the API key{said}{tags}; check ANTHROPIC_API_KEY (or the "
        "command line's --api-key, a program's ManagedRuntime(api_key=...))"
    ),
    PermissionDeniedError: "not allowed to {request}{said}{tags}",
    ConflictError: "conflict on {target}{said}{tags}",
    RateLimitError: "rate limited on {request}{said}{tags}",
    ServerError: "the provider failed on {request}{said}{tags}",
}
_FAILED = "{request} failed{said}{tags}"  # any other status


def error_for(
    status: int | None,
    payload: Any,
    *,
    method: str,
    path: str,
    request_id: str | None = None,
    retry_after: float | None = None,
    note: str | None = None,
) -> ProviderError:
    """Build the typed error for an error response (or an SSE ``error`` frame).

    Args:
        status: HTTP status; None for an SSE frame (the class then follows ``error.type``).
        payload: the parsed error envelope ``{"type": "error", "error": {...}}`` or raw text.
        method: request method, for the message.
        path: request path, for the message.
        request_id: the ``request-id`` header, if any (the envelope's wins when absent).
        retry_after: seconds from ``retry-after`` for 429s.
        note: appended to the message, e.g. ``gave up after 4 retries``.

    Returns:
        An instance of the ``ProviderError`` subclass for the status, with a message a person
        can act on, e.g. ``agent agent_01X not found (404 not_found_error, request req_1)``.
        A 404's message keeps the provider's words: the object the request addressed may
        exist while something it refers to does not (``deployment depl_1: agent version
        agent_01X v7 not found``).
    """
    error: Mapping[str, Any] = {}
    text = ""
    if isinstance(payload, Mapping):
        raw_error = payload.get("error")
        error = raw_error if isinstance(raw_error, Mapping) else {}
        request_id = request_id or _str_or_none(payload.get("request_id"))
    elif payload:
        text = " ".join(str(payload).split())[:200]
    error_type = _str_or_none(error.get("type"))
    details = error.get("details")
    error_code = _str_or_none(details.get("error_code")) if isinstance(details, Mapping) else None
    server_message = _str_or_none(error.get("message")) or text
    if status is None:
        status = _TYPE_STATUSES.get(error_type or "", 500)
    cls = _STATUS_CLASSES.get(status) or (ServerError if status >= 500 else ProviderError)

    tags = [f"{status} {error_type}" if error_type else str(status)]
    if error_code:
        tags.append(f"code {error_code}")
    if request_id:
        tags.append(f"request {request_id}")
    if retry_after is not None:
        tags.append(f"retry after {retry_after:g} s")
    suffix = f" ({', '.join(tags)})"

    kind, ident = describe_target(path)
    said = f": {server_message}" if server_message else ""
    target = f"{kind} {ident}" if kind and ident else f"{method} {path}"
    if cls is NotFoundError and kind and ident and not server_message:
        message = f"{kind} {ident} not found{suffix}"
    elif cls is NotFoundError and kind and ident and ident in server_message:
        message = f"{server_message}{suffix}"  # the provider named it already
    elif cls is NotFoundError and kind and ident:
        # e.g. a deployment update whose pinned agent version is missing: the provider's
        # words say what is missing; the path only says which request failed
        message = f"{kind} {ident}: {server_message}{suffix}"
    elif cls is NotFoundError and "not found" in server_message:
        # a create naming something missing (an agent's skill): "POST /v1/agents not found"
        # would read as if the endpoint were missing
        message = f"{method} {path}: {server_message}{suffix}"
    else:
        template = _MESSAGES.get(cls, _FAILED)
        message = template.format(request=f"{method} {path}", target=target, said=said, tags=suffix)
    if note:
        message = f"{message}; {note}"

    fields: dict[str, Any] = {
        "status": status,
        "error_type": error_type,
        "error_code": error_code,
        "request_id": request_id,
        "method": method,
        "path": path,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **fields)
    return cls(message, **fields)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
