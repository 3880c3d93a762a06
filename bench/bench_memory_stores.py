"""Benchmark: list 1,000 memory stores (and 1,000 memories of one store) through the client.

Creates N memory stores (default 1,000) and N memories in the first one through the API
concurrently, then times one paged walk of each list (``client.memory_stores.list()``,
``.memories.list()``, ``.versions.list()``) and prints the time and the request count (the
ideal is ceil(N / 100) pages each). Run: ``python bench/bench_memory_stores.py [--stores N]
[--http]`` (``--http``: over loopback TCP instead of in-process).

This script only measures; it asserts nothing but the counts it listed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.provider import ProviderClient, embedded_client


async def in_parallel(count: int, concurrency: int, make: Callable[[int], Awaitable[Any]]) -> float:
    """Run ``make(i)`` for every i < count with ``concurrency`` tasks; the seconds it took."""
    started = time.perf_counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await make(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def opened(db: Path, http: bool) -> AsyncIterator[ProviderClient]:
    if not http:
        async with embedded_client(db) as client:
            yield client
        return
    from reconciler.provider.local import BackgroundServer, create_app

    with BackgroundServer(create_app(db)) as server:
        async with ProviderClient(server.url) as client:
            yield client


async def run(count: int, concurrency: int, db: Path, http: bool) -> int:
    ideal = math.ceil(count / 100)
    async with opened(db, http) as client:
        stores = client.memory_stores

        async def make_store(i: int) -> None:
            await stores.create({"name": f"bench-{i:05d}", "metadata": {"n": str(i)}})

        created_s = await in_parallel(count, concurrency, make_store)
        print(f"created {count} memory stores in {created_s:.2f}s ({count / created_s:.0f}/s)")
        first = (await stores.list().fetch_page(None))[0][0]["id"]

        async def make_memory(i: int) -> None:
            await stores.memories.create(first, f"/notes/{i % 10}/m{i:05d}.md", f"memory {i}")

        created_s = await in_parallel(count, concurrency, make_memory)
        print(f"created {count} memories in one store in {created_s:.2f}s")

        walks: list[tuple[str, Callable[[], Awaitable[list[dict[str, Any]]]]]] = [
            ("memory stores", lambda: stores.list().to_list()),
            ("memories", lambda: stores.memories.list(first).to_list()),
            ("memory versions", lambda: stores.versions.list(first).to_list()),
        ]
        for what, walk in walks:
            for attempt in (1, 2):
                client.stats.reset()
                started = time.perf_counter()
                items = await walk()
                listed_s = time.perf_counter() - started
                stats = client.stats
                print(
                    f"listed {len(items)} {what} in {listed_s:.3f}s (run {attempt}): "
                    f"{stats.requests} requests (ideal {ideal}), {stats.retries} retries"
                )
                if len(items) != count:
                    print(f"error: expected {count} {what}, listed {len(items)}", file=sys.stderr)
                    return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--http", action="store_true", help="over loopback TCP")
    parser.add_argument("--db", type=Path, default=None, help="default: a temporary file")
    args = parser.parse_args()
    if args.db is not None:
        return asyncio.run(run(args.stores, args.concurrency, args.db, args.http))
    with tempfile.TemporaryDirectory(prefix="bench-memstores-") as tmp:
        db = Path(tmp) / "provider.db"
        return asyncio.run(run(args.stores, args.concurrency, db, args.http))


if __name__ == "__main__":
    raise SystemExit(main())
