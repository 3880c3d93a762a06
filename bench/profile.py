"""Profile plan or apply in-process with pyinstrument, after a warm-up run.

    python bench/profile.py plan --agents 10000       # no-op plan of 10,000 + 1,000 resources
    python bench/profile.py apply --agents 1000       # apply of 1,000 + 100 resources
    python bench/profile.py plan --html out.html      # an interactive flame view instead

The provider runs in-process (embedded), so the profile shows client, engine and provider
together. The warm-up (a small apply and plan in another folder) keeps one-off costs - lazy
imports, pydantic schema builds - out of the picture; ``--cold`` keeps them in.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import measure
from bench.provider import InProcess
from bench.workload import Workload, write_manifests


def warm_up(tmp: Path) -> None:
    work = tmp / "warm-up"
    manifests = write_manifests(Workload.of_size(20), work / "manifests")
    with InProcess(work / "provider.db") as provider:
        measure.our_apply(provider, manifests, work, 10)
        measure.our_plan(provider, manifests, work)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["plan", "apply"])
    parser.add_argument("--agents", type=int, default=None, help="default: 10000 plan, 1000 apply")
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.001, help="sampling interval, s")
    parser.add_argument("--html", type=Path, default=None, help="write HTML here")
    parser.add_argument("--cold", action="store_true", help="no warm-up run")
    args = parser.parse_args()
    from pyinstrument import Profiler

    agents = args.agents or (10_000 if args.what == "plan" else 1_000)
    workload = Workload.of_size(agents)
    with tempfile.TemporaryDirectory(prefix="reconciler-profile-") as name:
        tmp = Path(name)
        if not args.cold:
            warm_up(tmp)
        work = tmp / "run"
        manifests = write_manifests(workload, work / "manifests")
        profiler = Profiler(interval=args.interval, async_mode="enabled")
        with InProcess(work / "provider.db") as provider:
            if args.what == "plan":
                measure.our_apply(provider, manifests, work, args.parallelism)
                profiler.start()
                step = measure.our_plan(provider, manifests, work)
            else:
                profiler.start()
                step = measure.our_apply(provider, manifests, work, args.parallelism)
            profiler.stop()
    print(f"{args.what} of {workload.label()}: {step.seconds:.2f} s, {step.requests}")
    if args.html is not None:
        args.html.write_text(profiler.output_html(), encoding="utf-8")
        print(f"wrote {args.html}")
    else:
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
