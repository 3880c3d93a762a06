"""The floor of a whole-process apply: the same creates sent with no HTTP library at all.

    python bench/floor.py URL AGENTS PARALLELISM     # prints the seconds the creates took

A new Python process (as ``reconciler apply`` is) that imports only the standard library
and the workload, opens PARALLELISM keep-alive connections over raw asyncio streams and
sends the workload's create bodies (``bench.workload.sdk_bodies``: the reconciler's own
bodies, ownership tags included) one request at a time per connection, parsing only the
status line and ``content-length`` of each answer. No plan, no state, no checks: what is
left is Python's start-up, the loopback and the provider's own work per request.

``bench/whole.py --only apply`` runs it side by side with ``reconciler apply`` against an
identical fresh provider, so the share of the ideal that the provider and the machine take,
whatever the client, is measured in the same minute as ours.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import Workload, sdk_bodies

PATHS = {"agent": "/v1/agents", "environment": "/v1/environments"}


def request(host: str, kind: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {PATHS[kind]} HTTP/1.1\r\nhost: {host}\r\nx-api-key: bench\r\n"
        "anthropic-version: 2023-06-01\r\nanthropic-beta: managed-agents-2026-04-01\r\n"
        f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def worker(url: str, queue: list[bytes]) -> int:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    sent = 0
    while queue:
        writer.write(queue.pop())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        if status >= 300:
            raise RuntimeError(f"create answered {status}")
        sent += 1
    writer.close()
    return sent


async def main(url: str, agents: int, parallelism: int) -> int:
    host = urlsplit(url).netloc
    calls = sdk_bodies(Workload.of_size(agents))
    queue = [request(host, kind, body) for kind, body in reversed(calls)]
    done = await asyncio.gather(*(worker(url, queue) for _ in range(parallelism)))
    return sum(done)


if __name__ == "__main__":
    sent = asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    print(sent)
