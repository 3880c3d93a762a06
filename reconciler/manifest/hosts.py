"""Host and domain entries as the API's parameter docs state them, checked at ``validate``.

A credential's limited ``networking.allowed_hosts`` entry is a bare hostname, an IPv4
address or a ``*.`` wildcard; an Environment's limited ``allowed_hosts`` lists "domains the
container can reach" (provider-wire.md §5.4, ``["api.example.com"]``), so a URL, a path, a
port or a user is refused there (its exact syntax is not stated, so nothing else is); a web tool's ``allowed_domains`` / ``blocked_domains`` entry is
a plain hostname (``web_search`` also takes a path after it). The provider answers 400 to
anything else, at apply, after the resources before it were changed; here the entry is an
error at its ``file:line:col`` instead. (The local provider holds the same rules on its own
side, ``provider/local/hosts.py``: it must not depend on the reconciler's code.)

``CREDENTIAL_HOST_PATTERN``, ``FETCH_DOMAIN_PATTERN`` and ``SEARCH_DOMAIN_PATTERN`` say the
same rules as JSON Schema patterns (ECMA-262 and Python ``re`` alike), for editors.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

#: one DNS label: letters, digits and inner hyphens, at most 63
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


_LABEL_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # no leading zero, as ipaddress
#: ``_is_host`` of what ends at ``end``: a name that is not all digits and dots, or IPv4
_HOST_PATTERN = (
    r"(?=[^/]{{1,253}}{end})(?:{octet}(?:\.{octet}){{3}}|(?![0-9.]*{end}){label}(?:\.{label})*)"
)


def _host_pattern(end: str) -> str:
    return _HOST_PATTERN.format(end=end, octet=_OCTET, label=_LABEL_PATTERN)


CREDENTIAL_HOST_PATTERN = rf"^(?:\*\.)?{_host_pattern('$')}$"
#: what ``environment_host_problem`` can say in JSON Schema: no scheme, path, user, query
ENVIRONMENT_HOST_PATTERN = r"^[^\s/?#@]+$"
FETCH_DOMAIN_PATTERN = rf"^{_host_pattern('$')}$"
SEARCH_DOMAIN_PATTERN = rf"^{_host_pattern('(?:/|$)')}(?:/[\s\S]*)?$"


def _is_host(text: str) -> bool:
    labels = text.split(".")
    if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    if all(label.isdigit() for label in labels):  # only an IPv4 address is all numbers
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            return False
    return True


def credential_host_problem(text: str) -> str | None:
    """What is wrong with a credential's ``allowed_hosts`` entry, or None."""
    if _is_host(text.removeprefix("*.")):
        return None
    return (
        f"'{text[:80]}' is not a bare hostname, an IPv4 address or a *. wildcard: write "
        "api.example.com, 192.0.2.1 or *.example.com (no URL, port, path or IPv6 address)"
    )


def environment_host_problem(text: str) -> str | None:
    """What is wrong with an Environment's ``allowed_hosts`` entry, or None: a URL, or a
    hostname with a path, port, user, query or blank (an IPv6 address is left to the
    provider)."""
    host = environment_hostname(text)
    if host is None:
        return None
    said = "give the hostname alone, as allowed_hosts lists the domains the container may reach"
    write = f"write {host}" if host else "write api.example.com"
    if "://" in text:
        return f"'{text[:80]}' is a URL, not a hostname: {write} ({said})"
    return f"'{text[:80]}' is not a hostname: {write} ({said})"


def environment_hostname(text: str) -> str | None:
    """The hostname that an Environment's ``allowed_hosts`` entry ``environment_host_problem``
    refuses names (``https://x.com/a`` -> ``x.com``; ``""`` when it names none), or None
    when the entry is taken as it is."""
    if "://" in text:
        try:
            return urlsplit(text).hostname or ""
        except ValueError:
            return ""
    head = re.split(r"[/?#\s]", text, maxsplit=1)[0].rpartition("@")[2]
    if head == text and ":" not in text:
        return None
    if head == text:
        try:
            ipaddress.IPv6Address(text)
            return None
        except ValueError:
            pass
    before, colon, after = head.rpartition(":")
    host = before if colon and (after.isdigit() or not after) else head
    return host.removeprefix("[").removesuffix("]")


def web_domain_problem(text: str, *, path_allowed: bool) -> str | None:
    """What is wrong with a web tool's ``allowed_domains``/``blocked_domains`` entry, or None."""
    host, slash, _ = text.partition("/")
    if _is_host(host) and (path_allowed or not slash):
        return None
    shape = "docs.example.com or docs.example.com/api" if path_allowed else "docs.example.com"
    extra = "" if path_allowed else " or path"
    return f"'{text[:80]}' is not a plain hostname: write {shape} (no scheme, port{extra})"
