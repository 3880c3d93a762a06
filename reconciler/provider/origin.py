"""Provider origins: the normalised base URL a client talks to, and its name in the lockfile.

One job: say *which* provider a run talks to, in one stable string, so a lockfile can tell
that a run points elsewhere (a typo in ``--provider-url``, a staging lockfile against
production). Stdlib and httpx's URL parser only; nothing here opens a connection.

    normalize_base_url("https://API.anthropic.com:443/v1/") == "https://api.anthropic.com"
    local_origin(Path(".reconciler/provider.db"), Path("state")) == "local:../.reconciler/provider.db"

A base URL without a scheme (``127.0.0.1:8787``) is refused at once with a hint (``http://``
for a loopback host, ``https://`` for any other), instead of four retries of a request httpx
cannot send. The API's paths all start with ``/v1/``, so a
trailing ``/v1`` (as SDK examples write base URLs) is dropped rather than doubled.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from reconciler.errors import ConfigurationError

#: How the embedded local provider's origin starts in a lockfile.
LOCAL_PREFIX = "local:"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ProviderURLError(ConfigurationError):
    """A ``--provider-url`` that cannot be a base URL of the API (a ``ValueError``)."""


def normalize_base_url(url: str, source: str = "--provider-url") -> str:
    """``url`` as the client uses it: scheme and host lower case, default port, user
    info, query, a trailing slash and a trailing ``/v1`` dropped.

    Args:
        url: the base URL as given.
        source: where it came from, as the error names it (``provider_url`` for the runtime).

    Raises:
        ProviderURLError: no ``http://`` or ``https://`` scheme, no host, or a host httpx
            cannot send to (an unclosed ``[``, an IPv4 address out of range, a malformed
            punycode label, a space).
    """
    text = url.strip()
    shown = repr(_without_password(url))
    unusable = f"{source} {shown} is not a URL the client can use"
    try:
        parts = urlsplit(text)
    except ValueError as err:  # "http://[::1": an unclosed IPv6 literal
        raise ProviderURLError(f"{unusable}: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        hint = f"{_likely_scheme(text)}://{text}" if "://" not in text else None
        raise ProviderURLError(
            f"{unusable}: it needs an http:// or https:// scheme and a host"
            + (f" (did you mean {_without_password(hint)}?)" if hint else "")
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise ProviderURLError(f"{source} {shown} names no host")
    if any(ch.isspace() or not ch.isprintable() for ch in host):
        raise ProviderURLError(f"{unusable}: its host has a space or a control character")
    try:
        port = parts.port
    except ValueError:
        raise ProviderURLError(f"{source} {shown} has an invalid port") from None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path.rstrip("/").removesuffix("/v1")
    base = urlunsplit((scheme, netloc, path, "", ""))
    # httpx parses the host again, stricter (IPv4 ranges, IDNA): refused here, not as "a
    # bug" at the first request. Imported only now: this module is otherwise stdlib.
    import httpx

    try:
        httpx.URL(base).host  # noqa: B018 - decoding the host is the check
    except (httpx.InvalidURL, ValueError) as err:  # idna's errors are UnicodeErrors
        raise ProviderURLError(f"{unusable}: {err}") from None
    return base


def _without_password(url: str) -> str:
    """``url`` with the password of its user info (``https://me:PASSWORD@host``) masked,
    for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostport}{slash}{tail}"


def _likely_scheme(text: str) -> str:
    """The scheme to suggest for ``text`` (a URL without one): ``http`` for a loopback host,
    where the local provider serves plain HTTP; ``https`` elsewhere, so the hint never puts
    an API key onto plain HTTP across a network."""
    try:
        host = (urlsplit(f"http://{text}").hostname or "").lower()
    except ValueError:
        return "https"
    if host == "localhost" or host.endswith(".localhost"):
        return "http"
    try:
        return "http" if ipaddress.ip_address(host).is_loopback else "https"
    except ValueError:
        return "https"


def url_origin(url: str) -> str:
    """The origin recorded for an HTTP provider: its normalised base URL."""
    return normalize_base_url(url)


def local_origin(
    db_path: str | os.PathLike[str], lockfile_dir: str | os.PathLike[str] | None
) -> str:
    """The origin recorded for the embedded provider: ``local:`` and its database's path
    relative to the lockfile's folder, with ``/`` separators; its absolute path when there
    is no lockfile folder (``lockfile_dir`` None: a state kept in a database).

    Relative to the lockfile, not absolute: the lockfile is committed, and everyone who
    clones the repository runs against their own embedded provider at the same place in
    their checkout, whatever the folder the checkout is in or the one the command runs from.
    A database state has no such place: a path relative to the folder a command runs from
    would name another file from every other folder, so it records the absolute path.
    """
    db = Path(os.path.abspath(db_path))
    if lockfile_dir is None:
        return LOCAL_PREFIX + db.as_posix()
    base = Path(os.path.abspath(lockfile_dir))
    try:
        rel = os.path.relpath(db, base)
    except ValueError:  # another drive on Windows: no relative path exists
        rel = str(db)
    return LOCAL_PREFIX + Path(rel).as_posix()


def same_origin(recorded: str | None, origin: str, lockfile_dir: str | os.PathLike[str]) -> bool:
    """``recorded`` (a state's origin) names the provider ``origin`` names: the same string,
    or the same embedded database, one spelled relative to ``lockfile_dir`` and the other
    absolute (a database state written before its embedded origins were absolute recorded
    them relative to ``state/`` of the folder the command ran from). None: no origin
    recorded, which matches nothing here (callers accept it on their own)."""
    if recorded is None:
        return False
    if recorded == origin:
        return True
    if not (recorded.startswith(LOCAL_PREFIX) and origin.startswith(LOCAL_PREFIX)):
        return False
    base = os.path.abspath(lockfile_dir)

    def where(text: str) -> str:
        return os.path.normcase(os.path.normpath(os.path.join(base, text[len(LOCAL_PREFIX) :])))

    return where(recorded) == where(origin)


def describe_origin(origin: str, lockfile_dir: str | os.PathLike[str]) -> str:
    """``origin`` as a message says it to the person who ran the command: an embedded
    provider's database (recorded relative to the lockfile's folder, ``lockfile_dir``) as
    ``the embedded provider at PATH``, PATH from the current directory (absolute when it is
    outside it); a URL as it is.

    Example: ``local:../.reconciler/provider.db`` of ``state/`` is ``the embedded provider at
    .reconciler/provider.db``.
    """
    if not origin.startswith(LOCAL_PREFIX):
        return origin
    db = os.path.normpath(os.path.join(os.path.abspath(lockfile_dir), origin[len(LOCAL_PREFIX) :]))
    try:
        rel = os.path.relpath(db)
    except ValueError:  # another drive on Windows
        rel = db
    shown = db if rel.startswith(os.pardir + os.sep + os.pardir) else rel
    return f"the embedded provider at {Path(shown).as_posix()}"


__all__ = [
    "LOCAL_PREFIX",
    "ProviderURLError",
    "describe_origin",
    "local_origin",
    "normalize_base_url",
    "run_origin",
    "same_origin",
    "url_origin",
]


def run_origin(
    provider_url: str | None,
    db_path: str | os.PathLike[str],
    lockfile: str | os.PathLike[str],
    *,
    database: bool = False,
) -> str:
    """The origin a run talks to, as a lockfile records it: the normalised ``provider_url``,
    else the embedded provider's database relative to the folder of ``lockfile`` (its
    absolute path when the state is in a ``database``: no lockfile folder to be relative
    to). The CLI's origin checks and the runtime's warning both ask this, so they never
    disagree.

    Raises:
        ProviderURLError: ``provider_url`` is not a usable base URL.
    """
    if provider_url:
        return url_origin(provider_url)
    return local_origin(db_path, None if database else Path(lockfile).parent)
