"""Mask the secrets an apply sent wherever the provider might echo them back.

The provider never returns a secret, but a failure message or an answer could carry one (a
provider that quotes the value it refused); what apply reports or records must not. Masking
is about the secret, never about text that merely contains its characters: a secret is masked
in a message only where it stands as a whole (not inside a longer word or number: the token
``a`` leaves ``create failed`` alone, which masking it there would also give away), and a field
of a live object only when its value is the secret itself (the token ``2`` leaves an
``updated_at`` of ``2026-...`` alone, which the lockfile compares later). This module only
rewrites text; it never reads a secret or decides which ones an action sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["MASK", "mask_json", "mask_text"]

MASK = "***"


def _pattern(secret: str) -> str:
    # an edge of the secret that is a letter or digit must not continue a longer word there;
    # an edge that is punctuation (a quote, a dash) is a boundary of its own
    before = r"(?<![^\W_])" if secret[0].isalnum() else ""
    after = r"(?![^\W_])" if secret[-1].isalnum() else ""
    return before + re.escape(secret) + after


def mask_text(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each of ``secrets`` that stands there as a whole replaced by ``***``.

    Example: with the secret ``abc``, ``"token abc refused"`` becomes ``"token *** refused"``
    and ``"abcdef"`` stays as it is.
    """
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = re.sub(_pattern(secret), MASK, text)
    return text


def mask_json(obj: Any, secrets: Sequence[str]) -> Any:
    """``obj`` with every string value that is one of ``secrets`` replaced by ``***``."""
    if isinstance(obj, str):
        return MASK if obj in secrets else obj
    if isinstance(obj, dict):
        return {k: mask_json(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask_json(v, secrets) for v in obj]
    return obj
