"""Benchmark: list 10,000 agents through the client from the in-process local provider.

Creates N agents (default 10,000) through the API concurrently, then times paging through
all of them with ``client.agents.list().to_list()`` and prints the time and the request
count (the ideal is N / 100 pages). Run: ``python bench/bench_list.py [--agents N]``.

This script only measures; it asserts nothing but the count it listed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.provider import ProviderClient, embedded_client


async def create_agents(client: ProviderClient, count: int, concurrency: int) -> float:
    """Create ``count`` agents with ``concurrency`` tasks; returns the seconds it took."""
    started = time.perf_counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await client.agents.create(
                {"name": f"bench-{i:05d}", "model": "claude-sonnet-4-6", "metadata": {"n": str(i)}}
            )

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run(count: int, concurrency: int, db: Path) -> int:
    async with embedded_client(db) as client:
        created_s = await create_agents(client, count, concurrency)
        print(f"created {count} agents in {created_s:.2f}s ({count / created_s:.0f}/s)")

        for attempt in (1, 2):
            client.stats.reset()
            started = time.perf_counter()
            agents = await client.agents.list().to_list()
            listed_s = time.perf_counter() - started
            stats = client.stats
            print(
                f"listed {len(agents)} agents in {listed_s:.2f}s (run {attempt}): "
                f"{stats.requests} requests ({stats.by_method}), {stats.retries} retries, "
                f"{listed_s / max(stats.requests, 1) * 1000:.1f} ms/page"
            )
            if len(agents) != count:
                print(f"error: expected {count} agents, listed {len(agents)}", file=sys.stderr)
                return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--db", type=Path, default=None, help="default: a temporary file")
    args = parser.parse_args()
    if args.db is not None:
        return asyncio.run(run(args.agents, args.concurrency, args.db))
    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
        return asyncio.run(run(args.agents, args.concurrency, Path(tmp) / "provider.db"))


if __name__ == "__main__":
    raise SystemExit(main())
