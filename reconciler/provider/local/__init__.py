"""The local provider: a persistent, wire-compatible emulator of the Managed Agents API.

A FastAPI (ASGI) app over one SQLite file, serving the same paths, JSON shapes, ids,
timestamps, pagination and error envelopes as Anthropic's API (beta
``managed-agents-2026-04-01``), with a deterministic echo agent in place of a model, and
optional fault injection. It imports nothing from the rest of ``reconciler``.

    create_app(db_path, faults=None) -> FastAPI      the app (in-process via httpx.ASGITransport)
    FaultConfig(latency_ms, fault_rate, rate_limit, seed, bucket_limits)
    BackgroundServer(app, host="127.0.0.1", port=0)  uvicorn in a thread; ``.url``
    serve(host, port, db_path, faults)               blocking, for ``reconciler provider serve``

``BackgroundServer`` and ``serve`` (module ``server``) are imported on first use: the
embedded provider is served in-process and never needs uvicorn.

Modules: ``app`` (assembly), ``store`` (SQLite), ``schemas``/``schemas_runtime`` (request
bodies), ``defaults`` (server defaults), ``routes_*`` (one per resource family), ``sessions``
(data plane and SSE), ``paging`` (cursors), ``cron`` (schedules), ``faults``, ``errors``
(envelopes), ``openapi``, ``server``, ``context`` and ``ids``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .app import create_app, rate_buckets
from .faults import DOCUMENTED_LIMITS, FaultConfig

if TYPE_CHECKING:
    from .server import BackgroundServer, serve

__all__ = [
    "DOCUMENTED_LIMITS",
    "BackgroundServer",
    "FaultConfig",
    "create_app",
    "rate_buckets",
    "serve",
]


def __getattr__(name: str) -> Any:
    """``BackgroundServer`` and ``serve`` on first use (PEP 562): they bring uvicorn (and with
    it multiprocessing, logging.config...), ~1.5 MiB of every embedded plan's peak for a
    server the embedded provider, served in-process, never starts (bench/RESULTS.md)."""
    if name in ("BackgroundServer", "serve"):
        value = getattr(importlib.import_module(f"{__name__}.server"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
