"""``JSON``: the type of a JSON object as decoded (a provider's answer, a request's body, a
manifest's spec in its wire form), spelled once. Beneath every layer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JSON"]

JSON = dict[str, Any]
