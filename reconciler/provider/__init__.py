"""The edge of the reconciler: an async client of the Managed Agents wire API.

``ProviderClient`` speaks HTTP (auth headers, retries, rate limiting, pagination, typed
errors); ``embedded_client`` runs the local provider (``reconciler.provider.local``) in-process
behind the same client. Nothing in this package imports a layer above it.

The names below are loaded on first use (PEP 562): importing ``reconciler.provider`` or one
of its light submodules (``adapter``) does not import httpx, so commands that never talk to a
provider (``validate``, ``fmt``, ``schema``, ``--version``) start without the HTTP stack
(``tests/test_startup.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.lazy import lazy_attributes

if TYPE_CHECKING:
    from reconciler.provider.adapter import ClientBackedProvider
    from reconciler.provider.asgi_transport import StreamingASGITransport
    from reconciler.provider.client import ProviderClient, RequestStats
    from reconciler.provider.embedded import connect_client, embedded_client, open_client
    from reconciler.provider.files import FileUpload
    from reconciler.provider.pager import Pager
    from reconciler.provider.ratelimit import AdaptiveRateLimiter, RateLimits
    from reconciler.provider.skills import SkillUpload

#: public name -> the submodule that defines it
_HOMES = {
    "AdaptiveRateLimiter": "ratelimit",
    "ClientBackedProvider": "adapter",
    "FileUpload": "files",
    "Pager": "pager",
    "ProviderClient": "client",
    "RateLimits": "ratelimit",
    "RequestStats": "client",
    "SkillUpload": "skills",
    "StreamingASGITransport": "asgi_transport",
    "connect_client": "embedded",
    "embedded_client": "embedded",
    "open_client": "embedded",
}


__getattr__ = lazy_attributes(__name__, {n: f"{__name__}.{m}" for n, m in _HOMES.items()})


__all__ = [
    "AdaptiveRateLimiter",
    "ClientBackedProvider",
    "FileUpload",
    "Pager",
    "ProviderClient",
    "RateLimits",
    "RequestStats",
    "SkillUpload",
    "StreamingASGITransport",
    "connect_client",
    "embedded_client",
    "open_client",
]
