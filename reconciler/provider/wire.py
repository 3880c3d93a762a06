"""Wire conventions of the Managed Agents API: headers, query encoding and resource paths.

Pure functions over strings and dicts, so every other module of the client (and its tests)
spells the wire the same way. Nothing here performs I/O, retries or error mapping.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from reconciler import __version__
from reconciler.errors import ConfigurationError

__all__ = [
    "API_VERSION",
    "BETA",
    "DOCUMENTED_RATE_LIMITS",
    "LOCAL_API_KEY",
    "USER_AGENT",
    "check_api_key",
    "collection_kind",
    "default_headers",
    "describe_target",
    "documented_rate_limits",
    "encode_query",
    "is_loopback",
    "item_path",
]

API_VERSION = "2026-10-21"
BETA = "managed-agents-2026-04-01"
USER_AGENT = f"reconciler/{__version__}"
#: The key sent to a local provider when the user gave none. The local provider accepts any
#: key but, like the API, refuses a request with none (401); this one is not a secret, it
#: only lets a new user run against it without an account or a variable.
LOCAL_API_KEY = "local-provider"

QueryParams = list[tuple[str, str]]

#: The Anthropic API's published limits per organisation (provider-wire.md, section 13), in
#: requests per second per ``rate_bucket``: agent, session and vault creates 300 a minute,
#: their other calls 600; environments 60 (every call); deployments are not stated.
DOCUMENTED_RATE_LIMITS: Mapping[str, float] = {
    "agents create": 5.0,
    "sessions create": 5.0,
    "vaults create": 5.0,
    "agents": 10.0,
    "sessions": 10.0,
    "vaults": 10.0,
    "environments create": 1.0,
    "environments": 1.0,
}
#: Hosts that publish ``DOCUMENTED_RATE_LIMITS``.
_DOCUMENTED_HOSTS = ("api.anthropic.com",)


def documented_rate_limits(base_url: str) -> Mapping[str, float]:
    """The rate limits the provider at ``base_url`` documents, per bucket; empty if none.

    Only the Anthropic API publishes limits; another URL (the local provider, a proxy) gets
    none, and its client learns the limit from its first 429 instead of starting slow.

    Example:
        >>> documented_rate_limits("https://api.anthropic.com")["agents create"]
        5.0
        >>> documented_rate_limits("http://127.0.0.1:8787")
        {}
    """
    host = (urlsplit(base_url).hostname or "").lower()
    return DOCUMENTED_RATE_LIMITS if host in _DOCUMENTED_HOSTS else {}


_RANGE_SUFFIX = re.compile(r"^(?P<field>.+)_(?P<op>gt|gte|lt|lte)$")
_RANGE_FIELDS = frozenset({"created_at", "updated_at", "processed_at"})

# Collection segment -> how a person names one item of it.
_KIND_NAMES = {
    "agents": "agent",
    "environments": "environment",
    "vaults": "vault",
    "credentials": "credential",
    "sessions": "session",
    "deployments": "deployment",
    "deployment_runs": "deployment run",
    "events": "event",
    "versions": "version",  # named after its parent in ``_pairs``: "agent version", ...
    "memory_stores": "memory store",
    "memories": "memory",
    "memory_versions": "memory version",
    "skills": "skill",
    "files": "file",
}
# Segments after an item that name an operation, not a child id.
_ACTIONS = frozenset(
    {"archive", "pause", "unpause", "run", "stream", "versions", "events", "mcp_oauth_validate"}
)


def is_loopback(base_url: str) -> bool:
    """Whether ``base_url`` names this machine (``localhost``, ``127.x``, ``::1``, and
    ``0.0.0.0`` / ``::``, which a connection takes as this machine: ``provider serve --host
    0.0.0.0`` announces that URL): a local provider started with ``reconciler provider
    serve``, which gets ``LOCAL_API_KEY`` when the user gave no key.

    Example:
        >>> is_loopback("http://127.0.0.1:8787"), is_loopback("https://api.anthropic.com")
        (True, False)
    """
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name: only "localhost" is known to be this machine
        return False
    return address.is_loopback or address.is_unspecified


def default_headers(api_key: str | None) -> dict[str, str]:
    """Headers sent on every request.

    Args:
        api_key: sent as ``x-api-key`` when given.

    Returns:
        The header dict (names lower case).

    Raises:
        ConfigurationError: ``api_key`` cannot be sent in a header (``check_api_key``).
    """
    headers = {
        "anthropic-version": API_VERSION,
        "anthropic-beta": BETA,
        "user-agent": USER_AGENT,
        "accept": "application/json",
    }
    if api_key:
        check_api_key(api_key)
        headers["x-api-key"] = api_key
    return headers


def check_api_key(key: str, source: str = "the API key") -> None:
    """Refuse an API key that no HTTP header can carry, without ever showing the key.

    A key copied with its line break (a ``.env`` file with CRLF endings, ``echo`` into a
    secret store) otherwise fails as "no response from the provider" after retries, or with
    an exception whose repr holds the key.

    ``default_headers`` checks every key a client is built with; a caller that knows where
    the key came from (``ManagedRuntime``: ``api_key`` or ``ANTHROPIC_API_KEY``) checks it
    first, to name that ``source``.

    Raises:
        ConfigurationError: (a ``ValueError``) ``key`` has whitespace, a control or a
            non-ASCII character; the message names ``source`` and the position, not the key.
    """
    for position, char in enumerate(key, 1):
        if "!" <= char <= "~":
            continue
        what = {
            "\n": "a line break",
            "\r": "a carriage return",
            " ": "a space",
            "\t": "a tab",
        }.get(char) or ("a non-ASCII character" if ord(char) > 127 else "a control character")
        raise ConfigurationError(
            f"{source} has {what} at character {position} of {len(key)}; an API key is "
            "printable ASCII with no spaces (check for a trailing newline or stray quotes "
            "where it was copied from)"
        )


def encode_query(params: Mapping[str, Any] | None) -> QueryParams:
    """Encode query parameters the way the wire (and the official SDK) does.

    Nested mappings become bracketed keys, sequences repeat a ``key[]``, booleans are
    ``true``/``false``, datetimes ISO 8601, and None values are dropped. A flat
    ``created_at_gte`` keyword is accepted as shorthand for ``created_at[gte]``.

    Args:
        params: the parameters; None or empty gives no query.

    Returns:
        A list of (key, value) pairs for ``httpx`` (order preserved).

    Example:
        >>> encode_query({"created_at": {"gte": "2026-01-01"}, "statuses": ["idle", "running"],  # doctest: +NORMALIZE_WHITESPACE
        ...               "include_archived": True, "page": None})
        [('created_at[gte]', '2026-01-01'), ('statuses[]', 'idle'), ('statuses[]', 'running'),
         ('include_archived', 'true')]
    """
    pairs: QueryParams = []
    for key, value in (params or {}).items():
        match = _RANGE_SUFFIX.match(key)
        if match and match["field"] in _RANGE_FIELDS and not isinstance(value, Mapping):
            key = f"{match['field']}[{match['op']}]"
        _encode_value(key, value, pairs)
    return pairs


def _encode_value(key: str, value: Any, out: QueryParams) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for sub, item in value.items():
            _encode_value(f"{key}[{sub}]", item, out)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items: Iterable[Any] = sorted(value) if isinstance(value, (set, frozenset)) else value
        array_key = key if key.endswith("[]") else f"{key}[]"
        for item in items:
            if item is not None:
                out.append((array_key, _scalar(item)))
    else:
        out.append((key, _scalar(value)))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def item_path(*segments: str) -> str:
    """Join path segments into ``/v1/...``, percent-encoding every one.

    Args:
        segments: collection names and ids, e.g. ``("vaults", vault_id, "credentials")``.

    Returns:
        The path, e.g. ``/v1/vaults/vlt_1/credentials``.

    Raises:
        ValueError: a segment is empty (an empty id would address the collection instead)
            or a dot segment (``.``/``..``: the URL drops it, with the segment before for
            ``..``, so a credential ``..`` would address its vault), as the SDK refuses them.
    """
    for segment in segments:
        if not isinstance(segment, str) or not segment:
            raise ValueError(f"expected a non-empty id, got {segment!r}")
        if segment in (".", ".."):
            raise ValueError(f"expected an id, got the dot segment {segment!r}")
    return "/v1/" + "/".join(quote(segment, safe="") for segment in segments)


def describe_target(path: str) -> tuple[str | None, str | None]:
    """Name the resource a path addresses, for error messages.

    Args:
        path: a request path such as ``/v1/vaults/vlt_1/credentials/vcrd_2``.

    Returns:
        ``(kind, id)`` of the innermost item with an id: ``("credential", "vcrd_2")`` here,
        ``("session", "sesn_1")`` for ``/v1/sessions/sesn_1/events/stream``; ``(kind, None)``
        for a top-level collection such as ``/v1/agents``; ``(None, None)`` when unknown.
    """
    kind: str | None = None
    ident: str | None = None
    for name, item in _pairs(path):
        if item is None:
            return (kind, ident) if ident is not None else (name, None)
        kind, ident = name, item
    return kind, ident


# "skills" and a skill's "versions" are uploads: creates of the "skills" family; so is
# a POST to "files"
_CREATED = frozenset(
    {"agents", "environments", "vaults", "credentials", "sessions", "deployments"}
    | {"memory_stores", "memories"}
    | {"skills", "versions", "files"}
)


def rate_bucket(method: str, path: str) -> str:
    """The rate-limit bucket of a request: its resource family, with creates apart.

    The provider limits each organisation per family and per kind of call
    (provider-wire.md, section 8): agent, session and vault creates 300 a minute, their
    other calls 600, environments 60. A 429 on one bucket says nothing about the others.

    Example:
        >>> rate_bucket("POST", "/v1/vaults/vlt_1/credentials"), rate_bucket("GET", "/v1/agents")
        ('vaults create', 'agents')
    """
    segments = [s for s in path.split("?")[0].split("/") if s]
    if segments and segments[0] == "v1":
        segments = segments[1:]
    family = segments[0] if segments else ""
    if method.upper() == "POST" and segments and segments[-1] in _CREATED:
        return f"{family} create"
    return family


def collection_kind(path: str) -> str | None:
    """The kind of the innermost collection a path names (what a POST to it creates)."""
    kind: str | None = None
    for kind, _ in _pairs(path):
        pass
    return kind


def _pairs(path: str) -> list[tuple[str, str | None]]:
    """``(kind, id or None)`` for each collection segment of a path, outermost first."""
    segments = [s for s in path.split("?")[0].split("/") if s]
    if segments and segments[0] == "v1":
        segments = segments[1:]
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(segments):
        name = _KIND_NAMES.get(segments[i])
        if name is None:
            break
        if segments[i] == "versions":
            name = f"{pairs[-1][0]} version" if pairs else "agent version"
        item = segments[i + 1] if i + 1 < len(segments) else None
        if item in _ACTIONS:
            item = None
        pairs.append((name, item))
        if item is None:
            break
        i += 2
    return pairs
