"""Secret fingerprints and spec digests: what the lockfile records instead of values."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import BaseModel

from reconciler.state import (
    fingerprint_matches,
    fingerprint_secret,
    json_digest,
    new_salt,
)

SECRET = "ghp_Sup3rSecretValue"


def test_fingerprint_is_salted_scrypt_and_never_the_value() -> None:
    salt = new_salt()
    fp = fingerprint_secret(salt, SECRET)
    assert fp.startswith("scrypt:") and len(fp) == len("scrypt:") + 64
    assert SECRET not in fp and SECRET.encode().hex() not in fp
    assert fp.removeprefix("scrypt:") != hashlib.sha256(SECRET.encode()).hexdigest()
    expected = hashlib.scrypt(
        SECRET.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32
    )
    assert fp == "scrypt:" + expected.hex()


def test_same_salt_and_value_match_and_anything_else_differs() -> None:
    salt, other_salt = new_salt(), new_salt()
    fp = fingerprint_secret(salt, SECRET)
    assert fingerprint_secret(salt, SECRET) == fp
    assert fingerprint_secret(other_salt, SECRET) != fp
    assert fingerprint_secret(salt, SECRET + "x") != fp  # a rotated secret plans an update
    assert fingerprint_matches(salt, SECRET, fp)
    assert not fingerprint_matches(salt, "rotated", fp)


def test_salt_must_be_hex_and_long_enough() -> None:
    with pytest.raises(ValueError):
        fingerprint_secret("not-hex", SECRET)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        fingerprint_secret("abcd", SECRET)


def test_json_digest_is_canonical() -> None:
    a = json_digest({"model": "claude", "tools": [1, 2], "meta": {"b": 1, "a": "é"}})
    b = json_digest({"meta": {"a": "é", "b": 1}, "tools": [1, 2], "model": "claude"})
    assert a == b and a.startswith("sha256:") and len(a) == len("sha256:") + 64
    assert json_digest({"tools": [2, 1]}) != json_digest({"tools": [1, 2]})
    assert json_digest({"x": None}) != json_digest({})


def test_json_digest_of_a_model_equals_its_json_dump() -> None:
    class Spec(BaseModel):
        name: str
        n: int = 1

    assert json_digest(Spec(name="a")) == json_digest({"n": 1, "name": "a"})


def test_json_digest_refuses_what_json_cannot_say() -> None:
    with pytest.raises(ValueError):
        json_digest({"x": float("nan")})
    with pytest.raises(TypeError):
        json_digest({"x": object()})
