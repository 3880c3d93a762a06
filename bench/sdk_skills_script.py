"""The SDK side of ``bench_skills_apply.py``: what a user without the reconciler writes.

A plain sequential script with the official ``anthropic`` SDK: upload N skills (the same
three files each), then create N memory stores (the same fields), one call at a time.

Run: ``python bench/sdk_skills_script.py BASE_URL COUNT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anthropic

from bench.skills_workload import skill_files, skill_slug, store_fields


def main() -> int:
    base_url, count = sys.argv[1], int(sys.argv[2])
    client = anthropic.Anthropic(base_url=base_url, api_key="bench", max_retries=0)
    for i in range(count):
        slug = skill_slug(i)
        files = [(f"{slug}/{rel}", text.encode()) for rel, text in skill_files(i).items()]
        client.beta.skills.create(files=files)
    for i in range(count):
        client.beta.memory_stores.create(**store_fields(i))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
