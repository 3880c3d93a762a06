"""Benchmark: upload and list custom skills through the client, next to agents.

For each size N (default 100 and 1,000): uploads N skills (a SKILL.md and a 4 KB script
each, as multipart bodies) and creates N agents through the same client, then lists both
kinds to the end, and uploads a second version of every skill and lists one skill's
versions. Prints the time and the requests (counted by the client) of each step: the ideal
is one request per upload or create, and ceil(N / page size) requests per listing (skills
and versions page 1,000 at a time, agents 100). ``--http`` serves the provider over
loopback TCP (with ``--latency-ms``) instead of in-process.

Run: ``python bench/bench_skills.py [--sizes 100 1000] [--http] [--latency-ms 0]``.
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

from reconciler.provider import ProviderClient, SkillUpload, embedded_client
from reconciler.provider.local import BackgroundServer, FaultConfig, create_app

SCRIPT = b"# helper\n" + b"x = 1\n" * 680  # ~4 KB


def bundle(i: int, text: str = "v1") -> SkillUpload:
    slug = f"bench-skill-{i:05d}"
    manifest = f"---\nname: {slug}\ndescription: benchmark skill {text}\n---\n# {slug}\n"
    return SkillUpload(((f"{slug}/SKILL.md", manifest.encode()), (f"{slug}/run.py", SCRIPT)))


async def gather_limited(
    count: int, concurrency: int, make: Callable[[int], Awaitable[Any]]
) -> list[Any]:
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with slots:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


@contextlib.asynccontextmanager
async def open_client(db: Path, http: bool, latency_ms: int) -> AsyncIterator[ProviderClient]:
    faults = FaultConfig(latency_ms=latency_ms) if latency_ms else None
    if not http:
        async with embedded_client(db, faults=faults) as client:
            yield client
        return
    with BackgroundServer(create_app(db, faults=faults)) as server:
        async with ProviderClient(server.url) as client:
            yield client


async def step(client: ProviderClient, label: str, work: Awaitable[Any], n: int) -> Any:
    client.stats.reset()
    started = time.perf_counter()
    result = await work
    seconds = time.perf_counter() - started
    requests = client.stats.requests
    print(
        f"  {label:<34} {seconds:7.2f} s  {requests:6d} requests "
        f"({client.stats.retries} retries)  {seconds / max(n, 1) * 1000:6.2f} ms per item"
    )
    return result


async def run(size: int, concurrency: int, http: bool, latency_ms: int, db: Path) -> int:
    print(f"N = {size} ({'http' if http else 'in-process'}, {latency_ms} ms latency)")
    async with open_client(db, http, latency_ms) as client:

        def upload(i: int) -> Awaitable[Any]:
            return client.skills.create(bundle(i))

        def agent(i: int) -> Awaitable[Any]:
            return client.agents.create({"name": f"bench-{i:05d}", "model": "claude-sonnet-4-6"})

        skills = await step(
            client, f"upload {size} skills", gather_limited(size, concurrency, upload), size
        )
        await step(client, f"create {size} agents", gather_limited(size, concurrency, agent), size)
        listed = await step(client, f"list {size} skills", client.skills.list().to_list(), size)
        pages = client.stats.requests
        agents = await step(client, f"list {size} agents", client.agents.list().to_list(), size)
        agent_pages = client.stats.requests

        def version(i: int) -> Awaitable[Any]:
            skill = skills[i]
            return client.skills.versions.create(
                skill["id"], bundle(i, "v2"), after_version=skill["latest_version_id"]
            )

        await step(
            client,
            f"upload {size} second versions",
            gather_limited(size, concurrency, version),
            size,
        )
        one = skills[0]["id"]
        versions = await step(
            client, "list one skill's versions", client.skills.versions.list(one).to_list(), 2
        )
    ideal, ideal_agents = math.ceil(size / 1000), math.ceil(size / 100)
    print(
        f"  skill list pages {pages} (ideal {ideal}); agent list pages {agent_pages} "
        f"(ideal {ideal_agents})"
    )
    if len(listed) != size or len(agents) != size or len(versions) != 2:
        print("error: a listing came back short", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--http", action="store_true", help="serve over loopback TCP")
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    status = 0
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-skills-") as tmp:
            db = Path(tmp) / "provider.db"
            status |= asyncio.run(run(size, args.concurrency, args.http, args.latency_ms, db))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
