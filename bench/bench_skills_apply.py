"""Benchmark (issue #15): apply 100 skills and 100 memory stores, next to an SDK script.

Both sides are whole processes, timed from their start to their exit, against the local
provider in a child process over loopback TCP with 20 ms injected per request, each on a
fresh database, in the same run:

* ours: ``reconciler apply --auto-approve`` (default parallelism) of N Skill documents, each
  a directory of three files (``SKILL.md``, a ~2 KB script, a reference page), and N
  MemoryStore documents (a description and metadata). Plan, uploads, creates and the
  lockfile's writes included.
* the SDK's: ``bench/sdk_skills_script.py``, a plain sequential script using the official
  ``anthropic`` SDK: ``client.beta.skills.create(files=...)`` with the same files, then
  ``client.beta.memory_stores.create`` with the same fields (the ownership metadata ours
  sends included), one call at a time.

Each side is checked to have made exactly N skills and N memory stores (counted by the
provider). Prints both times and the ratio (goal: ours at least 5x faster at 20 ms).

Run: ``python bench/bench_skills_apply.py [--count 100] [--latency-ms 20] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.provider import ChildProcess
from bench.skills_workload import skill_files, skill_slug
from bench.whole import run as run_reconciler


def write_workload(root: Path, count: int) -> None:
    """``root/manifests``: N skill directories with their documents, N memory stores."""
    manifests = root / "manifests"
    skills, stores = [], []
    for i in range(count):
        slug = skill_slug(i)
        for rel, text in skill_files(i).items():
            path = manifests / "skills" / slug / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        skills.append(f"kind: Skill\nname: {slug}\nspec:\n  source: skills/{slug}\n")
        stores.append(
            f"kind: MemoryStore\nname: bench-store-{i:03d}\nspec:\n"
            f"  description: benchmark memory store {i}\n  metadata: {{team: bench}}\n"
        )
    (manifests / "skills.yaml").write_text("---\n".join(skills))
    (manifests / "memory_stores.yaml").write_text("---\n".join(stores))


def counted(provider: ChildProcess, count: int, who: str) -> None:
    """Refuse a run that did not make exactly N skills and N stores (``POST`` 200s)."""
    posts = provider.stats().get("POST 200", 0)
    if posts != 2 * count:
        raise RuntimeError(f"{who}: expected {2 * count} creates, the provider saw {posts}")


def ours(work: Path, count: int, latency_ms: int) -> float:
    write_workload(work, count)
    with ChildProcess(work / "provider.db", latency_ms=latency_ms) as provider:
        seconds, _usage = run_reconciler(ROOT, work, "apply", "--auto-approve", url=provider.url)
        counted(provider, count, "reconciler apply")
    return seconds


def sdk(work: Path, count: int, latency_ms: int) -> float:
    script = Path(__file__).resolve().parent / "sdk_skills_script.py"
    with ChildProcess(work / "sdk-provider.db", latency_ms=latency_ms) as provider:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        env["PYTHONPATH"] = str(ROOT)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(script), provider.url, str(count)], env=env, check=True)
        seconds = time.perf_counter() - started
        counted(provider, count, "the SDK script")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=100, help="skills, and memory stores")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(
        f"{args.count} skills (3 files each) + {args.count} memory stores, provider over "
        f"loopback TCP, {args.latency_ms} ms per request; load {os.getloadavg()[0]:.1f} at "
        "the start",
        flush=True,
    )
    times: dict[str, list[float]] = {"reconciler apply": [], "SDK script": []}
    with tempfile.TemporaryDirectory(prefix="bench-skills-") as tmp:
        for i in range(args.repeat):
            work = Path(tmp) / f"run-{i}"
            work.mkdir()
            times["reconciler apply"].append(ours(work, args.count, args.latency_ms))
            times["SDK script"].append(sdk(work, args.count, args.latency_ms))
            print(
                f"  run {i + 1}: reconciler apply {times['reconciler apply'][-1]:.2f} s, "
                f"SDK script {times['SDK script'][-1]:.2f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            shutil.rmtree(work)
    mine = statistics.median(times["reconciler apply"])
    theirs = statistics.median(times["SDK script"])
    ratio = theirs / mine
    print(f"reconciler apply (whole process): {mine:.2f} s")
    print(f"sequential SDK script (whole process): {theirs:.2f} s")
    verdict = "met" if ratio >= 5 else "missed"
    print(f"ratio: {ratio:.1f}x (goal: at least 5x) - {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
