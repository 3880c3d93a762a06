"""The database's connection string: recognise it, show it without its password, connect.

The string is libpq's (a ``postgresql://`` URL or ``key=value`` words), passed to libpq as is:
Unix sockets (``host=/run/postgresql``), TLS (``sslmode``, ``sslrootcert``), ``PGPASSWORD``,
``~/.pgpass`` and the other ``PG*`` variables work as with ``psql``. Only two defaults are
added when neither the string nor the environment sets them: ``connect_timeout=10`` and
``application_name=reconciler``.

Passwords are never printed: every message names the database by ``redact(conninfo)``
(``postgresql://user@host:port/db``), and ``scrub`` removes the password from any text that
might quote it (a driver's error).
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from typing import TYPE_CHECKING

from reconciler.errors import LockfileError

if TYPE_CHECKING:
    import psycopg

    #: a connection to the state database, rows as tuples
    Conn = psycopg.Connection[tuple[object, ...]]

_URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
_WORD = re.compile(r"^\s*[a-z_]+\s*=", re.IGNORECASE)


class DatabaseError(LockfileError):
    """The state database cannot be reached or used; nothing was changed by this step."""


class DatabaseUnreachable(DatabaseError):
    """No connection to the state database could be made (it may come back)."""


def is_database_url(value: str) -> bool:
    """True for a PostgreSQL URL (``postgresql://``, ``postgres://``) or libpq ``key=value``
    words; False for anything else (a path)."""
    return bool(_URL.match(value) or _WORD.match(value))


def _unescaped_userinfo(conninfo: str) -> bool:
    """True when a URL's text before its host holds an ``@`` or ``/`` (a generated password
    often does): libpq ends the password at the first one and reads the rest as the host or
    the database, so the password would be printed as a host name, and looked up as one."""
    url = _URL.match(conninfo)
    if url is None:
        return False
    rest = conninfo[url.end() :].split("?", 1)[0]
    if "@" not in rest:
        return False
    head = rest[: rest.rindex("@")]
    return "@" in head or "/" in head


def _parts(conninfo: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    if _unescaped_userinfo(conninfo):
        return {}  # no part of it can be trusted to hold no password
    try:
        return {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    except Exception:  # noqa: BLE001 - psycopg.ProgrammingError; the text is never echoed
        return {}


def _unknown_query_option(conninfo: str) -> str | None:
    """Why libpq refused a URL, when its scheme is not in lower case (``POSTGRESQL://``) or
    an option of its query is not one of libpq's (a typo, ``?sslmod=require``): the option's
    name, never a value. None for anything else, and when the query sets a password (a raw
    ``&`` in it would make part of it read as a name)."""
    from urllib.parse import unquote

    from psycopg import pq

    scheme = _URL.match(conninfo)
    if scheme is not None and scheme.group(0) not in ("postgresql://", "postgres://"):
        return f"libpq reads {scheme.group(0)!r} only in lower case: write postgresql://"
    if scheme is None or "?" not in conninfo:
        return None
    names = [
        unquote(name)
        for name, eq, _ in (pair.partition("=") for pair in conninfo.split("?", 1)[1].split("&"))
        if eq
    ]
    if "password" in names or "sslpassword" in names:
        return None
    known = {option.keyword.decode() for option in pq.Conninfo.get_defaults()} | {"ssl"}
    for name in names:
        if name not in known and re.fullmatch(r"[A-Za-z_]{1,64}", name):
            close = difflib.get_close_matches(name.lower(), sorted(known), n=1)
            hint = (
                f"; did you mean {close[0]}?"
                if close
                else " (libpq's options: sslmode, connect_timeout, options, application_name ...)"
            )
            return f"unknown option {name!r} in the URL's query{hint}"
    return None


def redact(conninfo: str) -> str:
    """The database as messages name it: ``postgresql://user@host:port/db``, no password.

    A string libpq cannot parse is named ``postgresql://(unparsable connection string)``
    (its text could hold a password).
    """
    parts = _parts(conninfo)
    if not parts:
        return "postgresql://(unparsable connection string)"
    user = parts.get("user", "")
    host = parts.get("host", "")
    port = parts.get("port", "")
    # a socket folder or an IPv6 address in brackets, so the port reads apart from it
    where = host if "/" not in host and ":" not in host else f"[{host}]"
    where += f":{port}" if port else ""
    db = parts.get("dbname", "")
    return f"postgresql://{user + '@' if user else ''}{where}/{db}"


def schema_of(conninfo: str) -> str | None:
    """The ``search_path`` that libpq ``options`` set (``-csearch_path=infra``), if any: the
    schema the tables live in, so two states in one database are told apart in messages."""
    options = _parts(conninfo).get("options", "")
    try:
        words = shlex.split(options)
    except ValueError:
        return None
    for i, word in enumerate(words):
        setting = word
        if word == "-c" and i + 1 < len(words):
            setting = words[i + 1]
        elif word.startswith("-c"):
            setting = word[2:]
        elif word.startswith("--"):
            setting = word[2:].replace("-", "_", 1) if word[2:].startswith("search-") else word[2:]
        name, eq, value = setting.partition("=")
        if eq and name.strip().lower() == "search_path" and value.strip():
            return value.strip()
    return None


def password_of(conninfo: str) -> str | None:
    """The password written in the connection string, if any (to scrub it from messages)."""
    return _parts(conninfo).get("password") or None


def scrub(text: str, conninfo: str) -> str:
    """``text`` with the connection string and its password replaced (driver messages)."""
    text = text.replace(conninfo, redact(conninfo))
    password = password_of(conninfo)
    if password:
        text = text.replace(password, "***")
    return text


_MISSING = re.compile(r'^relation "(reconciler_[a-z_]+)" does not exist$')


def refusal(e: BaseException, conninfo: str | None = None) -> str:
    """Why the database refused a statement, in one line and without the password: the
    server's own sentence (not the SQL it quotes), and what to do where that is known."""
    diag = getattr(e, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = str(primary or e).strip() or type(e).__name__
    text = " ".join((scrub(text, conninfo) if conninfo else text).split())
    missing = _MISSING.match(text)
    if missing:
        return (
            f"the table {missing.group(1)} is missing, though the database says the state "
            "tables were created (changed by hand?); restore the database from a backup, or "
            "drop the reconciler_* tables and copy the state in again with `reconciler state "
            "migrate --to`"
        )
    if getattr(e, "sqlstate", None) == "42501":  # insufficient_privilege
        return (
            f"{text}; the role needs CREATE on the schema for the first run (GRANT CREATE ON "
            "SCHEMA ... TO ..., or run once as the database's owner), then SELECT, INSERT, "
            "UPDATE and DELETE on the reconciler_* tables"
        )
    if getattr(e, "sqlstate", None) == "3F000":  # invalid_schema_name: search_path's is gone
        schema = schema_of(conninfo) if conninfo else None
        named = f"the schema {schema} that" if schema else "the schema"
        return (
            f"{text}; {named} the connection's search_path names does not exist: create it "
            f"(CREATE SCHEMA {schema or 'NAME'}) or fix options=-csearch_path"
        )
    return text


def connect(conninfo: str, *, purpose: str = "") -> Conn:
    """An autocommit connection to the database of ``conninfo``.

    Raises:
        DatabaseError: the database cannot be reached or refused us (the message names it
            redacted and says why, without the password).
    """
    import psycopg

    parts = _parts(conninfo)
    if _unescaped_userinfo(conninfo):
        raise DatabaseError(
            f"{redact(conninfo)}: the URL's user or password holds an '@' or '/' that is not "
            "percent-encoded, so the password cannot be told from the host; percent-encode "
            "them (@ as %40, / as %2F), or leave the password out of the URL and set "
            "PGPASSWORD or ~/.pgpass"
        )
    if not parts and conninfo.strip():
        unknown = _unknown_query_option(conninfo)
        if unknown is not None:
            base = conninfo.split("?", 1)[0]
            lower = _URL.sub("postgresql://", base, count=1)
            raise DatabaseError(f"{redact(lower) if _parts(lower) else redact(conninfo)}: {unknown}")
        raise DatabaseError(
            f"{redact(conninfo)}: not a valid PostgreSQL connection string; use "
            "postgresql://USER@HOST:PORT/DBNAME or libpq's key=value words"
        )
    from psycopg.conninfo import make_conninfo

    extra: dict[str, str | int] = {}
    if "connect_timeout" not in parts and not os.environ.get("PGCONNECT_TIMEOUT"):
        extra["connect_timeout"] = 10
    if "application_name" not in parts and not os.environ.get("PGAPPNAME"):
        extra["application_name"] = "reconciler"
    try:
        return psycopg.connect(make_conninfo(conninfo, **extra), autocommit=True)
    except psycopg.Error as e:
        doing = f" for the {purpose}" if purpose else ""
        reason = " ".join(scrub(str(e).strip() or type(e).__name__, conninfo).split())
        raise DatabaseUnreachable(
            f"cannot connect to the state database {redact(conninfo)}{doing}: {reason}"
        ) from None
