"""The host and domain syntax the API's parameter docs state, as pure checks (no HTTP).

* A credential's limited ``networking.allowed_hosts`` entry "is a bare hostname
  (``api.example.com``), an IPv4 address (``192.0.2.1``), or a ``*.`` wildcard
  (``*.example.com``). URLs, ports, paths, and IPv6 addresses aren't accepted."
* A ``web_fetch`` ``allowed_domains`` / ``blocked_domains`` entry is "a plain hostname like
  ``docs.example.com`` (no scheme, port, or path)"; a ``web_search`` one the same, but "an
  optional path suffix is accepted".
* A credential's ``mcp_server_url`` is the "URL of the MCP server": an ``http(s)`` URL with a
  host (MCP's transports are HTTP); its scheme and host are case-insensitive.

Each check returns the value unchanged or raises ``ValueError`` naming the rule, so that it
serves as a pydantic validator (a 400 naming the field).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DOTTED_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+)*")
MAX_HOST = 253


def is_hostname(text: str) -> bool:
    """A DNS name (labels of letters, digits and inner hyphens) or an IPv4 address."""
    if len(text) > MAX_HOST or not _HOSTNAME.fullmatch(text):
        return False
    if _DOTTED_NUMBERS.fullmatch(text):  # all digits: only an IPv4 address is a host
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            return False
    return True


def credential_host(text: str) -> str:
    """An ``allowed_hosts`` entry of a credential's limited networking."""
    bare = text.removeprefix("*.")
    if not is_hostname(bare):
        raise ValueError(
            f"{text!r} is not a bare hostname, an IPv4 address or a *. wildcard "
            "(no URL, port, path or IPv6 address)"
        )
    return text


def web_domain(text: str, *, path_allowed: bool) -> str:
    """An ``allowed_domains`` / ``blocked_domains`` entry of a web tool."""
    host, slash, _ = text.partition("/")
    if not is_hostname(host) or (slash and not path_allowed):
        rest = "scheme or port; a path may follow" if path_allowed else "scheme, port or path"
        raise ValueError(f"{text!r} is not a plain hostname (no {rest})")
    return text


def mcp_server_url(text: str) -> str:
    """A credential's ``mcp_server_url``: an absolute ``http``/``https`` URL with a host."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    host = parts.hostname if parts else None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not host
        or any(c.isspace() for c in text)
    ):
        raise ValueError(f"{text!r} is not an http or https URL with a host")
    return text


def mcp_server_key(url: str) -> str:
    """The URL as two credentials clash on it: scheme and host compared case-insensitively."""
    parts = urlsplit(url)
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
