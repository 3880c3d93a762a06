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
    "skill": "skill",
    "skill_version": "skillver",
    "file": "file",
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


def new_sorted_id(kind: str, moment: datetime, floor: str | None = None) -> str:
    """A fresh id for ``kind`` whose text sorts by ``moment`` (then after ``floor``).

    The first 10 characters after ``_01`` encode the microseconds since the epoch in
    fixed-width base58 (the alphabet is in ASCII order, so text order is time order); the
    remaining 12 are random. ``floor``, an id of the same kind made earlier, is exceeded even
    when the clock stepped back: skill version ids sort by creation (provider-wire.md 15).
    """
    prefix = f"{PREFIXES[kind]}_01"
    stamp = int(moment.timestamp() * 1_000_000)
    if floor is not None and floor.startswith(prefix):
        stamp = max(stamp, _decode58(floor[len(prefix) : len(prefix) + 10]) + 1)
    random_tail = new_id(kind)[-12:]
    return f"{prefix}{_encode58(stamp, 10)}{random_tail}"


def _encode58(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 58)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _decode58(text: str) -> int:
    number = 0
    for char in text:
        index = _ALPHABET.find(char)
        if index < 0:
            return 0
        number = number * 58 + index
    return number


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
