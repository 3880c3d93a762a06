"""Whole-process measurements: the ``reconciler`` command as a user runs it, start-up included.

    python bench/whole.py                       # all three, ours only
    python bench/whole.py --baseline /work/main # each ours/baseline pair side by side, in turn
    python bench/whole.py --only apply --repeat 5

1. **apply**: ``reconciler apply --auto-approve --parallelism 10`` of N agents + N/10
   environments (default 1,000 + 100) in a new process, against the local provider in a child
   process over loopback TCP with 20 ms injected per request, on a fresh database each time;
   next to the ideal ``resources x latency / parallelism`` (2.2 s for 1,100 at 20 ms, 10).
2. **plan memory**: the peak RSS (``ru_maxrss``) of ``reconciler plan`` of 10,000 agents +
   1,000 environments after they were applied, both against the provider over TCP (the
   client alone) and against the embedded provider (the CLI's default, provider in-process).
3. **429 share under the documented limits**: an apply of 100 agents + 10 environments
   against a provider enforcing the Anthropic API's documented per-bucket limits, once as the
   client talks to an unknown URL (learns the limit from its first 429) and once as it talks
   to the Anthropic API (starts below the documented limits).

With ``--baseline DIR`` every measurement also runs with ``PYTHONPATH=DIR`` (another checkout),
alternating with ours, so both see the same load on a shared machine. Results go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.provider import ChildProcess
from bench.workload import PROJECT, Workload, write_manifests

LATENCY_MS = 20
PARALLELISM = 10


def run(tree: Path, work: Path, *args: str, url: str | None = None) -> tuple[float, Any]:
    """Run one ``reconciler ARGS`` process from ``tree`` in ``work``: (wall s, its rusage)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(PYTHONPATH=str(tree), NO_COLOR="1", RECONCILER_PROJECT=PROJECT)
    # An installed reconciler has its bytecode cached (pip compiles it); a machine that sets
    # PYTHONDONTWRITEBYTECODE would recompile ~100 modules in every process (0.1-0.3 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if url is not None:
        env["RECONCILER_PROVIDER_URL"] = url
    # the console script's entry where the tree has it (reconciler.launch), else the CLI's
    entry = "reconciler.launch" if (tree / "reconciler/launch.py").exists() else "reconciler.cli"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", entry, *args],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {err[-2000:]!r}")
    return seconds, usage


def peak_rss(tree: Path, work: Path, *args: str, url: str | None = None) -> int:
    """Peak RSS (KiB) of one ``reconciler ARGS`` process."""
    return int(run(tree, work, *args, url=url)[1].ru_maxrss)


def timed(tree: Path, work: Path, *args: str, url: str | None = None) -> float:
    return run(tree, work, *args, url=url)[0]


# -- 1. whole-process apply ----------------------------------------------------------------------


def apply_once(tree: Path, workload: Workload, tmp: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the reconciler process) of one whole apply."""
    work = Path(tempfile.mkdtemp(prefix="apply-", dir=tmp))
    write_manifests(workload, work / "manifests")
    with ChildProcess(work / "provider.db", latency_ms=LATENCY_MS) as provider:
        seconds, usage = run(
            tree,
            work,
            "apply",
            "--auto-approve",
            "--parallelism",
            str(PARALLELISM),
            url=provider.url,
        )
        stats = provider.stats()
    posts = stats.get("POST", 0)
    if posts != workload.resources:
        raise RuntimeError(f"expected {workload.resources} creates, the provider saw {posts}")
    shutil.rmtree(work)
    return seconds, usage.ru_utime + usage.ru_stime


def floor_once(workload: Workload, tmp: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``bench/floor.py``: the same creates, no HTTP library."""
    work = Path(tempfile.mkdtemp(prefix="floor-", dir=tmp))
    with ChildProcess(work / "provider.db", latency_ms=LATENCY_MS) as provider:
        script = str(ROOT / "bench/floor.py")
        args = [sys.executable, script, provider.url, str(workload.agents), str(PARALLELISM)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, _status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        out, err = proc.communicate()
        posts = provider.stats().get("POST", 0)
    if posts != workload.resources or int(out or 0) != workload.resources:
        raise RuntimeError(f"floor: {posts} creates seen, {out!r} {err[-2000:]!r}")
    shutil.rmtree(work)
    return seconds, usage.ru_utime + usage.ru_stime


def bench_apply(trees: dict[str, Path], agents: int, repeat: int, tmp: Path) -> None:
    """Ours (and a baseline) against the ideal, and the floor (``bench/floor.py``) in turn."""
    workload = Workload.of_size(agents)
    ideal = workload.resources * LATENCY_MS / 1000 / PARALLELISM
    names = [*trees, "floor (no HTTP library)"]
    times: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeat):
        for name in names:
            tree = trees.get(name)
            if tree is None:
                seconds, cpu = floor_once(workload, tmp)
            else:
                seconds, cpu = apply_once(tree, workload, tmp)
            times[name].append(seconds)
            cpus[name].append(cpu)
            print(
                f"  apply {workload.label()} [{name}] run {i + 1}: {seconds:.2f} s "
                f"= {seconds / ideal:.2f}x ideal, client CPU {cpu:.2f} s, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print(f"apply of {workload.label()}, {LATENCY_MS} ms, --parallelism {PARALLELISM}:")
    print(f"  ideal (N x latency / parallelism): {ideal:.2f} s")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(
            f"  {name}: best {best:.2f} s ({best / ideal:.2f}x), median {median:.2f} s "
            f"({median / ideal:.2f}x), runs: {', '.join(f'{v:.2f}' for v in values)}; "
            f"client CPU median {statistics.median(cpus[name]):.2f} s"
        )


# -- 2. plan memory ------------------------------------------------------------------------------


def bench_plan_memory(trees: dict[str, Path], agents: int, repeat: int, tmp: Path) -> None:
    workload = Workload.of_size(agents)
    work = Path(tempfile.mkdtemp(prefix="memory-", dir=tmp))
    write_manifests(workload, work / "manifests")
    first = next(iter(trees.values()))
    with ChildProcess(work / "provider.db") as provider:
        print(f"  applying {workload.label()} once (over TCP, 0 ms)...", flush=True)
        timed(first, work, "apply", "--auto-approve", "--parallelism", "16", url=provider.url)
        rss: dict[tuple[str, str], list[int]] = {}
        for _ in range(repeat):
            for name, tree in trees.items():
                kib = peak_rss(tree, work, "plan", "--detailed-exitcode", url=provider.url)
                rss.setdefault((name, "over TCP"), []).append(kib)
    # The embedded provider (the CLI's default) serves the same database in-process; the
    # lockfile records the TCP origin it was applied to, so the plan is told that is the same.
    for _ in range(repeat):
        for name, tree in trees.items():
            kib = peak_rss(
                tree,
                work,
                "--provider-db",
                str(work / "provider.db"),
                "plan",
                "--detailed-exitcode",
                "--allow-origin-change",
            )
            rss.setdefault((name, "embedded"), []).append(kib)
    print(f"peak RSS of `reconciler plan` of {workload.label()} (no changes):")
    for (name, where), values in rss.items():
        print(
            f"  {name}, provider {where}: min {min(values) / 1024:.0f} MiB, "
            f"max {max(values) / 1024:.0f} MiB ({len(values)} runs)"
        )


# -- 3. 429 share under the documented limits ----------------------------------------------------


def bench_documented(trees: dict[str, Path], agents: int, tmp: Path) -> None:
    """Through the library API, in this process (the client is what differs)."""
    from reconciler.app import Settings, apply
    from reconciler.provider import RateLimits
    from reconciler.provider.wire import DOCUMENTED_RATE_LIMITS

    workload = Workload.of_size(agents)
    print(f"429s under the documented limits, apply of {workload.label()}, --parallelism 10:")
    for label, documented in (("unknown URL (learns from 429s)", {}), ("Anthropic API", None)):
        work = Path(tempfile.mkdtemp(prefix="documented-", dir=tmp))
        write_manifests(workload, work / "manifests")
        with ChildProcess(work / "provider.db", documented_limits=True) as provider:
            limits = RateLimits(documented=DOCUMENTED_RATE_LIMITS if documented is None else {})
            settings = Settings(
                manifests=work / "manifests",
                lockfile=work / "state/reconciler.lock",
                project=PROJECT,
                provider_url=provider.url,
                client_options={"rate_limiter": limits},
            )
            provider.reset()
            t0 = time.perf_counter()
            result = asyncio.run(apply(settings, parallelism=10))
            seconds = time.perf_counter() - t0
            stats = provider.stats()
        assert result is not None
        total, limited = stats.get("total", 0), stats.get("429", 0)
        print(
            f"  client as for {label}: {seconds:.1f} s, {total} requests, {limited} answered 429 "
            f"({limited / max(total, 1):.1%}), {len(result.report.failures)} failed"
        )
    del trees


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["apply", "memory", "documented"], default=None)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to compare")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--agents", type=int, default=1000, help="apply size (agents)")
    parser.add_argument("--memory-agents", type=int, default=10_000)
    parser.add_argument("--documented-agents", type=int, default=100)
    args = parser.parse_args()
    trees = {"ours": ROOT}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    for tree in trees.values():  # bytecode cached, as in an installed reconciler
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tree / "reconciler")], check=True
        )
    one, five, fifteen = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {one:.1f} {five:.1f} {fifteen:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="reconciler-whole-") as name:
        tmp = Path(name)
        if args.only in (None, "apply"):
            bench_apply(trees, args.agents, args.repeat, tmp)
        if args.only in (None, "memory"):
            bench_plan_memory(trees, args.memory_agents, args.repeat, tmp)
        if args.only in (None, "documented"):
            bench_documented(trees, args.documented_agents, tmp)
    one, five, fifteen = os.getloadavg()
    print(f"load average {one:.1f} {five:.1f} {fifteen:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
