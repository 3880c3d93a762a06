"""The edge of the reconciler: an async client of the Managed Agents wire API.

``ProviderClient`` speaks HTTP (auth headers, retries, rate limiting, pagination, typed
errors); ``embedded_client`` runs the local provider (``reconciler.provider.local``) in-process
behind the same client. Nothing in this package imports a layer above it.
"""

from __future__ import annotations

from reconciler.provider.adapter import ClientBackedProvider
from reconciler.provider.client import ProviderClient, RequestStats
from reconciler.provider.embedded import embedded_client, open_client
from reconciler.provider.pager import Pager
from reconciler.provider.ratelimit import AdaptiveRateLimiter, RateLimits
from reconciler.provider.transport import StreamingASGITransport

__all__ = [
    "AdaptiveRateLimiter",
    "ClientBackedProvider",
    "Pager",
    "ProviderClient",
    "RateLimits",
    "RequestStats",
    "StreamingASGITransport",
    "embedded_client",
    "open_client",
]
