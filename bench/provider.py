"""Where the benchmark's local provider runs, and how its requests are counted.

Two placements, both serving ``reconciler.provider.local.create_app`` over one fresh SQLite
file:

* ``InProcess``: the app inside this process; our client reaches it through
  ``StreamingASGITransport`` (as the CLI's embedded provider does) and the async SDK through
  ``httpx2.ASGITransport``.
* ``ChildProcess``: uvicorn in a separate Python process on 127.0.0.1 (``python
  bench/provider.py``), so the provider's CPU work does not share this process's GIL with
  the client being measured - a real server over loopback TCP.

Either way the app is wrapped by ``RequestCounter``, which counts every request by method and
status on the server side, so our client and the SDK are counted by the same meter
(``/__bench/stats``; ``/__bench/reset`` zeroes it), and keeps each request's method, path,
arrival and end (wall clock) for ``bench/timeline.py`` (``/__bench/times``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STATS_PATH = "/__bench/stats"
RESET_PATH = "/__bench/reset"
TIMES_PATH = "/__bench/times"


class RequestCounter:
    """ASGI middleware: counts requests by ``(method, status)`` and times them; serves both."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[tuple[str, int]] = Counter()
        #: ``(method, path, arrived, ended)`` per request, in ``time.time()`` seconds
        self.times: list[tuple[str, str, float, float]] = []

    def snapshot(self) -> dict[str, int]:
        """``{"POST 200": n, ...}`` plus totals per method and ``429``."""
        out: dict[str, int] = {}
        for (method, status), n in self.counts.items():
            out[f"{method} {status}"] = out.get(f"{method} {status}", 0) + n
            out[method] = out.get(method, 0) + n
            if status == 429:
                out["429"] = out.get("429", 0) + n
            out["total"] = out.get("total", 0) + n
        return out

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in (STATS_PATH, RESET_PATH, TIMES_PATH):
            if path == RESET_PATH:
                self.counts.clear()
                self.times.clear()
            body = json.dumps(self.times if path == TIMES_PATH else self.snapshot()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        method = scope["method"]
        arrived = time.time()

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.counts[(method, int(message["status"]))] += 1
            await send(message)

        await self.app(scope, receive, counted)
        self.times.append((method, path, arrived, time.time()))


def build_app(
    db: Path,
    latency_ms: int = 0,
    rate_limit: float | None = None,
    documented_limits: bool = False,
) -> RequestCounter:
    from reconciler.provider.local import DOCUMENTED_LIMITS, FaultConfig, create_app

    buckets = DOCUMENTED_LIMITS if documented_limits else {}
    faults = FaultConfig(latency_ms=latency_ms, rate_limit=rate_limit, bucket_limits=buckets)
    return RequestCounter(create_app(db, faults if faults.active else None))


class InProcess:
    """The provider app in this process."""

    url = "http://local-provider"
    where = "in-process"

    def __init__(self, db: Path, latency_ms: int = 0, rate_limit: float | None = None) -> None:
        self.app = build_app(db, latency_ms, rate_limit)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        store = self.app.app.state.provider.store
        store.close()

    def stats(self) -> dict[str, int]:
        return self.app.snapshot()

    def reset(self) -> None:
        self.app.counts.clear()
        self.app.times.clear()

    def times(self) -> list[tuple[str, str, float, float]]:
        return list(self.app.times)

    def client_options(self) -> dict[str, Any]:
        """``ProviderClient`` keywords that reach this app in-process."""
        from reconciler.provider import StreamingASGITransport

        return {"transport": StreamingASGITransport(self.app)}


class ChildProcess:
    """The provider served by uvicorn in a child Python process, over loopback TCP."""

    where = "http"

    def __init__(
        self,
        db: Path,
        latency_ms: int = 0,
        rate_limit: float | None = None,
        documented_limits: bool = False,
    ) -> None:
        args = [sys.executable, str(Path(__file__).resolve()), "--db", str(db)]
        args += ["--latency-ms", str(latency_ms)]
        if rate_limit is not None:
            args += ["--rate-limit", str(rate_limit)]
        if documented_limits:
            args += ["--documented-limits"]
        self._args = args
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self._proc.kill()
            raise RuntimeError(f"the provider process did not start: {line!r}")
        self.url = line
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()  # the child stops when its stdin closes
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _get(self, path: str) -> Any:
        import httpx

        return httpx.get(self.url + path, timeout=10).json()

    def stats(self) -> dict[str, int]:
        return dict(self._get(STATS_PATH))

    def reset(self) -> None:
        self._get(RESET_PATH)

    def times(self) -> list[tuple[str, str, float, float]]:
        return [tuple(t) for t in self._get(TIMES_PATH)]  # type: ignore[misc]

    def client_options(self) -> dict[str, Any]:
        return {}


def _serve() -> None:
    parser = argparse.ArgumentParser(description="Serve the local provider for the benchmark.")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--documented-limits", action="store_true")
    args = parser.parse_args()
    from reconciler.provider.local import BackgroundServer

    app = build_app(args.db, args.latency_ms, args.rate_limit, args.documented_limits)
    with BackgroundServer(app) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    _serve()
