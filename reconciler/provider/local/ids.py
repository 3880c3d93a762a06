"""Opaque ids and RFC 3339 timestamps, shaped like the real API's.

Only formatting and parsing lives here; nothing here touches storage or HTTP.

Ids are ``<prefix>_01`` followed by 22 base58 characters (``agent_011CZkYpogX7uDKUyvBTophP``).
Timestamps are UTC with microseconds and a ``Z`` suffix, always the same width, so that
stored timestamps compare correctly as strings inside SQLite.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

PREFIXES = {
    "agent": "agent",
    "environment": "env",
    "vault": "vlt",
    "credential": "vcrd",
    "session": "sesn",
    "event": "sevt",
    "deployment": "depl",
    "deployment_run": "drun",
    "request": "req",
    "resource": "sesrsc",
    "outcome": "outc",
    "memory_store": "memstore",
    "memory": "mem",
    "memory_version": "memver",
}


def new_id(kind: str) -> str:
    """Return a fresh opaque id for ``kind`` (a key of ``PREFIXES``)."""
    # 136 random bits cover 58**22 with negligible bias; one divmod chain is ~10x faster
    # than 22 calls to secrets.choice, and creates are a hot path.
    number = int.from_bytes(secrets.token_bytes(17), "big")
    tail = []
    for _ in range(22):
        number, digit = divmod(number, 58)
        tail.append(_ALPHABET[digit])
    return f"{PREFIXES[kind]}_01{''.join(tail)}"


def format_ts(moment: datetime) -> str:
    """Format an aware datetime as fixed-width RFC 3339 UTC (``2026-05-01T12:00:00.000000Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_ts() -> str:
    """The current time as a stored timestamp."""
    return format_ts(datetime.now(UTC))


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp; a naive value is taken as UTC.

    Raises:
        ValueError: the text is not a timestamp.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def canonical_ts(text: str) -> str:
    """Re-format any accepted timestamp text into the stored fixed-width form.

    Raises:
        ValueError: the text is not a timestamp.
    """
    return format_ts(parse_ts(text))
