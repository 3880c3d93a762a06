"""Open a ``ProviderClient``: over HTTP when a URL is given, else the local provider in-process.

``embedded_client`` runs ``reconciler.provider.local.create_app(db_path)`` inside this process
through ``StreamingASGITransport`` - the same client code, retries and errors as over HTTP,
with no server and no port. ``connect_client`` chooses between the two (the CLI's and the
library's entry point).

This module only wires objects together; it does not start servers or touch the database
beyond creating its parent directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.errors import ProviderError
from reconciler.kinds import DEFAULT_PROVIDER_DB
from reconciler.provider.client import ProviderClient
from reconciler.provider.wire import LOCAL_API_KEY, is_loopback

__all__ = ["EMBEDDED_BASE_URL", "connect_client", "embedded_client", "open_client"]

EMBEDDED_BASE_URL = "http://local-provider"


def embedded_client(
    db_path: str | Path, *, faults: Any = None, **client_kwargs: Any
) -> ProviderClient:
    """A client of the local provider running in this process.

    Args:
        db_path: the provider's SQLite file; its parent directory is created.
        faults: optional ``reconciler.provider.local.FaultConfig`` (latency, fault rate,
            rate limit) passed to ``create_app``.
        client_kwargs: any ``ProviderClient`` keyword (``max_retries``, ``rate_limiter``...)
            except ``transport``; ``api_key`` defaults to ``wire.LOCAL_API_KEY`` (the local
            provider, like the API, refuses requests without a key, but takes any).

    Returns:
        An unopened ``ProviderClient``; use it as ``async with embedded_client(path) as c``.
        Closing the client closes the app's database connection.
    """
    from reconciler.provider.asgi_transport import StreamingASGITransport
    from reconciler.provider.local import create_app  # imported late: FastAPI is heavy
    from reconciler.provider.local.store import StoreError

    path = Path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        app = create_app(path) if faults is None else create_app(path, faults=faults)
    except FileExistsError:
        raise ProviderError(
            f"cannot create the folder of the local provider database {path}: "
            f"{path.parent} is a file; move it away or choose another file with --provider-db"
        ) from None
    except OSError as exc:
        raise ProviderError(
            f"cannot create the folder of the local provider database {path}: "
            f"{exc.strerror or exc}; choose another file with --provider-db"
        ) from None
    except StoreError as exc:
        raise ProviderError(str(exc)) from None
    transport = StreamingASGITransport(app, on_close=lambda: _release(app))
    client_kwargs["api_key"] = client_kwargs.get("api_key") or LOCAL_API_KEY
    return ProviderClient(EMBEDDED_BASE_URL, transport=transport, **client_kwargs)


def _release(app: Any) -> None:
    """Close what the embedded app holds: open event streams, then its SQLite connection."""
    provider = getattr(getattr(app, "state", None), "provider", None)
    hub = getattr(provider, "hub", None)
    if hub is not None:
        hub.close()
    store = getattr(provider, "store", None)
    if store is not None:
        store.close()


def connect_client(
    provider_url: str | None,
    api_key: str | None,
    db_path: str | Path = DEFAULT_PROVIDER_DB,
    **client_kwargs: Any,
) -> ProviderClient:
    """A client over HTTP to ``provider_url``, else of the embedded local provider.

    Args:
        provider_url: the API's base URL, or None/"" for the embedded provider.
        api_key: sent as ``x-api-key``; when None, the embedded provider and a provider on
            this machine (``wire.is_loopback``: ``reconciler provider serve``) get
            ``wire.LOCAL_API_KEY``, so they need no key from the user; any other URL gets
            none (the provider then answers 401, which names ``--api-key``).
        db_path: the embedded provider's database (ignored with a URL).
        client_kwargs: any ``ProviderClient`` keyword.

    Returns:
        An unopened ``ProviderClient``.
    """
    if provider_url:
        if not api_key and is_loopback(provider_url):
            api_key = LOCAL_API_KEY
        return ProviderClient(provider_url, api_key, **client_kwargs)
    return embedded_client(db_path, api_key=api_key, **client_kwargs)


#: Deprecated: the old name of ``connect_client`` (it also opens HTTP, which the name hid),
#: kept because docs/architecture.md documented it. Use ``connect_client``.
open_client = connect_client
