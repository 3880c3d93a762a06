"""Where one whole apply's time goes: start-up, observing, planning, the creates, the exit.

    python bench/timeline.py                     # this tree, 1,000 agents + 100 environments
    python bench/timeline.py --tree /work/other  # another checkout
    python bench/timeline.py --repeat 3

``reconciler apply --auto-approve --parallelism 10`` runs as a new process (as in
``bench/whole.py``) against the local provider in a child process with 20 ms of latency; the
provider's meter (``bench/provider.py``) notes when each request arrived and ended. From
those times and the process's own start and end:

* **start-up**: process start to the first request (imports, reading the manifests);
* **observe**: the first request to the end of the last list (``GET``);
* **plan**: from there to the first create (planning, printing the plan);
* **creates**: the first create's arrival to the last one's end, next to its own ideal
  (creates x latency / parallelism), with the mean number of creates in flight at the
  provider (the parallelism when the client always has the next one ready);
* **exit**: the last create's end to the process's end (the final state write).
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
from bench.workload import PROJECT, Workload, write_manifests

LATENCY_MS = 20
PARALLELISM = 10


def in_flight(spans: list[tuple[float, float]]) -> float:
    """The mean number of ``(start, end)`` spans open between the first start and last end."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now, area, last = 0, 0.0, events[0][0]
    for at, step in events:
        area += open_now * (at - last)
        open_now, last = open_now + step, at
    return area / (events[-1][0] - events[0][0])


def timeline(tree: Path, agents: int) -> dict[str, float]:
    """One apply's phases (seconds) and the creates' ratio and concurrency."""
    work = Path(tempfile.mkdtemp(prefix="timeline-"))
    write_manifests(Workload.of_size(agents), work / "manifests")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(PYTHONPATH=str(tree), NO_COLOR="1", RECONCILER_PROJECT=PROJECT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    entry = "reconciler.launch" if (tree / "reconciler/launch.py").exists() else "reconciler.cli"
    args = [sys.executable, "-m", entry, "apply", "--auto-approve"]
    args += ["--parallelism", str(PARALLELISM)]
    with ChildProcess(work / "provider.db", latency_ms=LATENCY_MS) as provider:
        env["RECONCILER_PROVIDER_URL"] = provider.url
        started = time.time()
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, check=False)
        ended = time.time()
        times = provider.times()
    shutil.rmtree(work)
    if done.returncode != 0:
        raise RuntimeError(f"apply exited {done.returncode}: {done.stderr[-2000:]}")
    lists = [t for t in times if t[0] == "GET"]
    creates = [t for t in times if t[0] == "POST"]
    first_create, last_create = min(t[2] for t in creates), max(t[3] for t in creates)
    observed = max(t[3] for t in lists) if lists else first_create
    ideal = len(creates) * LATENCY_MS / 1000 / PARALLELISM
    return {
        "whole": ended - started,
        "start-up": min(t[2] for t in times) - started,
        "observe": observed - min(t[2] for t in times),
        "plan": first_create - observed,
        "creates": last_create - first_create,
        "creates / ideal": (last_create - first_create) / ideal,
        "in flight": in_flight([(t[2], t[3]) for t in creates]),
        "exit": ended - last_create,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to run")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runs = [timeline(args.tree.resolve(), args.agents) for _ in range(args.repeat)]
    ideal = Workload.of_size(args.agents).resources * LATENCY_MS / 1000 / PARALLELISM
    print(
        f"apply of {args.agents:,} agents + {args.agents // 10:,} environments, ideal {ideal:.2f} s"
    )
    for name in runs[0]:
        values = [run[name] for run in runs]
        shown = ", ".join(f"{v:.3f}" for v in values)
        print(f"  {name:>16}: median {statistics.median(values):.3f}  ({shown})")


if __name__ == "__main__":
    main()
