"""Digests the lockfile records: spec digests and salted secret fingerprints.

The lockfile is committed to git, so it must never hold a secret or anything that lets one be
guessed cheaply. A secret is recorded as ``scrypt(value, salt)``: salted per lineage (no
rainbow tables, no equality across repositories) and deliberately slow (a brute force over
short secrets costs ~50 ms per guess). Nothing here reads env vars or files, and nothing keeps
a secret value after returning.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from pydantic import BaseModel

#: scrypt cost parameters: 16 MiB of memory and tens of milliseconds per fingerprint.
#: Changing them changes every fingerprint (every secret would plan an update once).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32


def new_salt() -> str:
    """A fresh random salt (16 bytes, hex), one per lockfile lineage."""
    return secrets.token_hex(16)


def fingerprint_secret(salt: str, value: str) -> str:
    """Fingerprint a secret so a rotated value can be detected without storing it.

    Args:
        salt: the lockfile's ``salt`` (hex, at least 16 bytes).
        value: the secret, as read from env or file at apply time.

    Returns:
        ``"scrypt:" + 64 hex digits``; equal for equal salt and value, and never containing
        the value.

    Raises:
        ValueError: the salt is not hex or shorter than 16 bytes.
    """
    salt_bytes = bytes.fromhex(salt)
    if len(salt_bytes) < 16:
        raise ValueError("the fingerprint salt must be at least 16 bytes")
    derived = hashlib.scrypt(
        value.encode("utf-8"),
        salt=salt_bytes,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=SCRYPT_DKLEN,
    )
    return "scrypt:" + derived.hex()


def fingerprint_matches(salt: str, value: str, fingerprint: str) -> bool:
    """True if ``value`` has ``fingerprint`` under ``salt`` (constant-time comparison)."""
    return hmac.compare_digest(fingerprint_secret(salt, value), fingerprint)


def canonical_json(obj: Any) -> str:
    """``obj`` as canonical JSON: sorted keys, no whitespace, UTF-8 kept, no NaN.

    Pydantic models are dumped in JSON mode first.
    """
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def json_digest(obj: Any) -> str:
    """Digest of the canonical JSON of ``obj`` (a plan, the inputs of a plan), to tell later
    whether it changed.

    Not ``engine.desired.desired_digest`` (the lockfile's ``spec_digest``), which keeps
    ``json.dumps``'s ASCII escapes.

    Example::

        >>> json_digest({"b": 1, "a": [1, 2]}) == json_digest({"a": [1, 2], "b": 1})
        True

    Returns:
        ``"sha256:" + 64 hex digits`` of the canonical JSON of ``obj``.

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent.
        ValueError: ``obj`` holds NaN or infinity.
    """
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
