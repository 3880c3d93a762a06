"""The local provider: a persistent, wire-compatible emulator of the Managed Agents API.

A FastAPI (ASGI) app over one SQLite file, serving the same paths, JSON shapes, ids,
timestamps, pagination and error envelopes as Anthropic's API (beta
``managed-agents-2026-04-01``), with a deterministic echo agent in place of a model, and
optional fault injection. It imports nothing from the rest of ``reconciler``.

    create_app(db_path, faults=None) -> FastAPI      the app (in-process via httpx.ASGITransport)
    FaultConfig(latency_ms, fault_rate, rate_limit, seed, bucket_limits)
    BackgroundServer(app, host="127.0.0.1", port=0)  uvicorn in a thread; ``.url``
    serve(host, port, db_path, faults)               blocking, for ``reconciler provider serve``

Modules: ``app`` (assembly), ``store`` (SQLite), ``schemas``/``schemas_runtime`` (request
bodies), ``defaults`` (server defaults), ``routes_*`` (one per resource family), ``sessions``
(data plane and SSE), ``paging`` (cursors), ``cron`` (schedules), ``faults``, ``errors``
(envelopes), ``openapi``, ``server``, ``context`` and ``ids``.
"""

from __future__ import annotations

from .app import create_app
from .faults import DOCUMENTED_LIMITS, FaultConfig
from .server import BackgroundServer, serve

__all__ = ["DOCUMENTED_LIMITS", "BackgroundServer", "FaultConfig", "create_app", "serve"]
