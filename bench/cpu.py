"""The CPU one whole apply takes before its first create and in all, by the process's own clock.

    python bench/cpu.py                          # this tree, 5 runs
    python bench/cpu.py --baseline /work/main    # ours and another checkout, in turn
    python bench/cpu.py --repeat 8 --agents 1000

``bench/whole.py``'s apply (``reconciler apply --auto-approve --parallelism 10`` of N agents +
N/10 environments in a new process, against the local provider in a child process over
loopback TCP with 20 ms per request), measured by the process's CPU (user + system) rather
than the wall clock: on a machine shared with other work (other test runs on the same two
cores) the wall time of a run moves by a second, its CPU by a tenth of that. A small wrapper
(run as the process's main script, before ``reconciler.launch``) stamps ``os.times()`` when the
first list (``GET``) and the first create (``POST``) are handed to the socket, and when the
process ends; each run prints them, and the medians per tree close the report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.provider import ChildProcess
from bench.workload import PROJECT, Workload, write_manifests

LATENCY_MS = 20
PARALLELISM = 10

#: The process's main script: stamps the CPU at the first GET and POST, and at the end.
WRAPPER = """
import atexit, os, sys, time
import asyncio.selector_events as events
stamps = {}
def stamp(name):
    if name not in stamps:
        t = os.times()
        stamps[name] = t.user + t.system
write = events._SelectorSocketTransport.write
def stamped(self, data):
    head = bytes(data[:5])
    if head == b"GET /":
        stamp("list")
    elif head == b"POST ":
        stamp("create")
    return write(self, data)
events._SelectorSocketTransport.write = stamped
def report():
    stamp("end")
    with open(os.environ["CPU_STAMPS"], "w") as out:
        out.write(" ".join(f"{k}={v:.3f}" for k, v in stamps.items()))
atexit.register(report)
sys.argv = ["reconciler", *sys.argv[1:]]
from reconciler.launch import run
run()
"""


def apply_once(tree: Path, workload: Workload, tmp: Path) -> dict[str, float]:
    """CPU seconds of one whole apply at its first list, first create and end; and its wall."""
    work = Path(tempfile.mkdtemp(prefix="cpu-", dir=tmp))
    write_manifests(workload, work / "manifests")
    stamps = work / "stamps"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(PYTHONPATH=str(tree), NO_COLOR="1", RECONCILER_PROJECT=PROJECT)
    env.update(CPU_STAMPS=str(stamps))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as bench/whole.py: bytecode cached
    args = [sys.executable, "-c", WRAPPER, "apply", "--auto-approve"]
    args += ["--parallelism", str(PARALLELISM)]
    with ChildProcess(work / "provider.db", latency_ms=LATENCY_MS) as provider:
        env["RECONCILER_PROVIDER_URL"] = provider.url
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"apply exited {done.returncode}: {done.stderr[-2000:]}")
    result = {k: float(v) for k, v in (kv.split("=") for kv in stamps.read_text().split())}
    shutil.rmtree(work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trees = {"ours": ROOT}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    workload = Workload.of_size(args.agents)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, tree in trees.items():
                cpu = apply_once(tree, workload, Path(tmp))
                runs[name].append(cpu)
                shown = ", ".join(f"{k} {v:.3f}" for k, v in cpu.items())
                print(f"  [{name}] run {i + 1}: CPU at {shown} s", flush=True)
    print(f"apply of {workload.label()}, process CPU (user + system), median of {args.repeat}:")
    for name, cpus in runs.items():
        medians = {k: statistics.median(c[k] for c in cpus) for k in cpus[0]}
        shown = ", ".join(f"{k} {v:.3f}" for k, v in medians.items())
        print(f"  {name}: at {shown} s")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
