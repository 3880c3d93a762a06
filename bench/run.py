"""Benchmark: plan and apply next to the official SDK, side by side, in one run.

    python bench/run.py                 # the full table (~6 minutes on 2 cores)
    python bench/run.py --quick         # 100 and 1,000 agents, fewer rows (~1.5 minutes)
    python bench/run.py --sizes 100,1000 --latencies 20 --no-results

For every size (N agents + N/10 environments) and placement of the local provider it runs, on
a fresh provider database:

1. our ``apply`` of the whole workload (plan included), ``--parallelism`` actions in flight;
2. our ``plan`` of the same manifests afterwards (load, one paged list per kind, diff), best
   of two, next to the SDK's auto-paged listing of the same agents and environments (best
   of two, interleaved);
3. a sequential loop of the SDK's ``create`` calls with the same bodies (a sample, scaled up
   and marked ``~``, when the whole loop would take too long).

Placements: ``in-process`` (the embedded provider, as the CLI runs it by default; the SDK
reaches the same app through ``httpx2.ASGITransport``) and ``http`` (uvicorn in a child
process on 127.0.0.1, with 0 or 20 ms injected per request). Requests are counted by the
provider. At 20 ms the apply is repeated with more parallelism (``--sweep``) on fresh
databases. A last section applies many agents against a provider that rate-limits requests
and reports the share of the limit reached and of 429 answers; another times CLI start-up.

Results go to stdout and, for full runs, to ``bench/RESULTS.md`` (with the machine, the date
and the goals of issues #2, #3, #4 and #7; ``--no-results`` skips it). Text after the
``<!-- end of generated results -->`` marker in RESULTS.md is kept across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import measure
from bench.measure import ApplyStep, RateStep, Step
from bench.provider import ChildProcess, InProcess
from bench.workload import Workload, write_manifests

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


@dataclass
class Row:
    workload: Workload
    where: str
    latency_ms: int
    apply: ApplyStep
    sdk_create: Step
    plan: Step
    sdk_list: Step
    parallelism: int
    list_agents: Step | None = None
    #: extra applies on fresh databases: parallelism -> step
    sweep: dict[int, ApplyStep] = field(default_factory=dict)

    @property
    def apply_speedup(self) -> float:
        return self.sdk_create.seconds / self.apply.seconds

    @property
    def plan_ratio(self) -> float:
        return self.plan.seconds / self.sdk_list.seconds


# -- running ------------------------------------------------------------------------------------


def sample_for(workload: Workload, latency_ms: int, budget_s: float) -> int | None:
    """How many SDK creates to make: all of them unless that would exceed ``budget_s``."""
    per_call = latency_ms / 1000 + 0.004
    if workload.resources * per_call <= budget_s:
        return None
    return max(100, int(budget_s / per_call))


def run_cell(
    workload: Workload, where: str, latency_ms: int, args: argparse.Namespace, tmp: Path
) -> Row:
    work = Path(tempfile.mkdtemp(prefix=f"{where}-{latency_ms}ms-", dir=tmp))
    manifests = write_manifests(workload, work / "manifests")
    db = work / "provider.db"
    placement = InProcess if where == "in-process" else ChildProcess
    with placement(db, latency_ms=latency_ms) as provider:
        applied = measure.our_apply(provider, manifests, work, args.parallelism)
        if applied.failed:
            print(f"  warning: {applied.failed} actions failed", file=sys.stderr)
        plans, lists = [], []
        for _ in range(args.repeat):
            plans.append(measure.our_plan(provider, manifests, work))
            lists.append(measure.sdk_list_all(provider, workload))
        listed = None
        if isinstance(provider, InProcess):
            listed = measure.our_list_agents(provider)
        sample = sample_for(workload, latency_ms, args.sdk_budget)
        sdk = measure.sdk_create_loop(provider, workload, sample)
    sweep: dict[int, ApplyStep] = {}
    if latency_ms > 0 and workload.agents <= args.sweep_max_agents:
        for parallelism in args.sweep:
            again = Path(
                tempfile.mkdtemp(prefix=f"{where}-{latency_ms}ms-p{parallelism}-", dir=tmp)
            )
            again_manifests = write_manifests(workload, again / "manifests")
            with placement(again / "provider.db", latency_ms=latency_ms) as provider:
                sweep[parallelism] = measure.our_apply(
                    provider, again_manifests, again, parallelism
                )
    return Row(
        workload=workload,
        where=where,
        latency_ms=latency_ms,
        apply=applied,
        sdk_create=sdk,
        plan=min(plans, key=lambda s: s.seconds),
        sdk_list=min(lists, key=lambda s: s.seconds),
        parallelism=args.parallelism,
        list_agents=listed,
        sweep=sweep,
    )


def warm_up(args: argparse.Namespace, tmp: Path) -> None:
    """A small unrecorded cell per placement: lazy imports and first-use costs of both
    clients stay out of the table (CLI start-up is measured on its own)."""
    quiet = argparse.Namespace(**{**vars(args), "repeat": 1, "sdk_budget": 1.0, "sweep": []})
    for where, latency in (("in-process", 0), ("http", 0)):
        run_cell(Workload.of_size(20), where, latency, quiet, tmp)


def run_rate_limit(rate: float, agents: int, args: argparse.Namespace, tmp: Path) -> RateStep:
    workload = Workload(agents, 0)
    work = Path(tempfile.mkdtemp(prefix=f"rate-{rate:g}-", dir=tmp))
    manifests = write_manifests(workload, work / "manifests")
    (manifests / "environments.yaml").unlink()
    with ChildProcess(work / "provider.db", rate_limit=rate) as provider:
        return measure.rate_limited_apply(
            provider, manifests, work, workload, rate, args.rate_parallelism
        )


def cli_startup(repeat: int = 5) -> dict[str, float]:
    """Best wall time of ``reconciler --help`` and ``reconciler validate`` (new processes)."""
    out: dict[str, float] = {}
    commands = {
        "reconciler --help": ["--help"],
        "reconciler validate": ["-f", str(ROOT / "manifests"), "validate"],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for label, argv in commands.items():
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "reconciler.cli", *argv],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=False,
            )
            best = min(best, time.perf_counter() - t0)
        out[label] = best
    return out


# -- rendering ----------------------------------------------------------------------------------


def _s(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds < 100 else f"{seconds:.0f}"


def _writes(step: Step) -> int:
    return step.requests.get("POST", 0)


def _reads(step: Step) -> int:
    return step.requests.get("GET", 0)


def table(rows: list[Row]) -> list[str]:
    head = (
        "| resources | provider | latency | apply s | SDK create loop s | apply speed-up "
        "| writes (ideal) | 429s | plan s | SDK list s | plan / list | plan reqs (ideal) |"
    )
    lines = [head, _rule(head)]
    for r in rows:
        sdk = ("~" if r.sdk_create.extrapolated else "") + _s(r.sdk_create.seconds)
        lines.append(
            f"| {r.workload.resources:,} ({r.workload.label()}) | {r.where} | {r.latency_ms} ms "
            f"| {_s(r.apply.seconds)} | {sdk} | {r.apply_speedup:.1f}x "
            f"| {_writes(r.apply):,} ({r.workload.resources:,}) | {r.apply.requests.get('429', 0)} "
            f"| {_s(r.plan.seconds)} | {_s(r.sdk_list.seconds)} | {r.plan_ratio:.2f} "
            f"| {_reads(r.plan)} ({r.workload.ideal_list_requests}) |"
        )
    return lines


def _rule(head: str) -> str:
    return "|" + "---|" * (head.count("|") - 1)


def sweep_table(rows: list[Row]) -> list[str]:
    head = "| resources | provider | latency | parallelism | apply s | apply speed-up |"
    lines = [head, _rule(head)]
    for r in rows:
        if not r.sweep:
            continue
        steps = {r.parallelism: r.apply, **r.sweep}
        for parallelism in sorted(steps):
            step = steps[parallelism]
            lines.append(
                f"| {r.workload.resources:,} | {r.where} | {r.latency_ms} ms | {parallelism} "
                f"| {_s(step.seconds)} | {r.sdk_create.seconds / step.seconds:.1f}x |"
            )
    return lines if len(lines) > 2 else []


def rate_table(steps: list[RateStep]) -> list[str]:
    head = (
        "| limit | creates | apply s | creates/s | share of limit | share without the "
        "initial burst | requests | 429 answers | share 429 |"
    )
    lines = [head, _rule(head)]
    for s in steps:
        total = s.requests.get("total", 0)
        limited = s.requests.get("429", 0)
        lines.append(
            f"| {s.rate_limit:g}/s ({s.rate_limit * 60:g}/min) | {s.creates:,} | {_s(s.seconds)} "
            f"| {s.achieved:.1f} | {s.achieved / s.rate_limit:.0%} "
            f"| {s.steady / s.rate_limit:.0%} | {total:,} | {limited:,} "
            f"| {limited / max(total, 1):.1%} |"
        )
    return lines


def goals(rows: list[Row], rates: list[RateStep]) -> list[str]:
    out: list[str] = []

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    others: list[str] = []
    for r in rows:
        if r.latency_ms != 20:
            continue
        if r.workload.agents == 1000:  # issue #4: 1,000 agents + 100 environments
            ok = r.apply_speedup >= 8
            out.append(
                f"- issue #4: apply of 1,000 agents + 100 environments >= 8x the SDK loop at "
                f"20 ms (--parallelism {r.parallelism}): {r.apply_speedup:.1f}x - {verdict(ok)}"
                + ("" if ok else f" by {8 / r.apply_speedup:.2f}x")
            )
        else:
            others.append(f"{r.workload.resources:,} resources {r.apply_speedup:.1f}x")
    if others:
        out.append(
            "- the same ratio at other sizes (no goal set; fewer resources leave the plan's "
            "fixed cost a larger share, more make the lockfile larger): " + ", ".join(others)
        )
    worst = max(rows, key=lambda r: r.plan_ratio)
    ok = worst.plan_ratio <= 1.5
    out.append(
        f"- plan <= 1.5x the SDK listing: worst row {worst.plan_ratio:.2f}x "
        f"({worst.workload.resources:,}, {worst.where}, {worst.latency_ms} ms) - {verdict(ok)}"
        + ("" if ok else f" by {worst.plan_ratio / 1.5:.2f}x")
    )
    over = [r for r in rows if _reads(r.plan) > r.workload.ideal_list_requests]
    out.append(
        "- plan requests <= ceil(N/100) per kind, one for each empty listed kind: "
        + (
            verdict(True) + " in every row"
            if not over
            else verdict(False) + f" in {len(over)} rows"
        )
    )
    off = [r for r in rows if _writes(r.apply) != r.workload.resources]
    out.append(
        "- one write request per resource: "
        + (verdict(True) + " in every row" if not off else verdict(False) + f" in {len(off)} rows")
    )
    big = [r for r in rows if r.workload.agents >= 10_000 and r.latency_ms == 0]
    for r in big:
        ok = r.plan.seconds < 3
        out.append(
            f"- {r.workload.resources:,}-resource plan < 3 s at 0 ms ({r.where}): "
            f"{r.plan.seconds:.2f} s - {verdict(ok)}"
            + ("" if ok else f" by {r.plan.seconds - 3:.2f} s")
        )
    for r in rows:
        if r.list_agents is not None and r.workload.agents >= 10_000:
            ok = r.list_agents.seconds <= 3
            out.append(
                f"- issue #2, list {r.workload.agents:,} agents through the client in-process: "
                f"{r.list_agents.seconds:.2f} s, {_reads(r.list_agents)} requests - {verdict(ok)}"
            )
    for s in rates:
        share = s.steady / s.rate_limit
        limited = s.requests.get("429", 0) / max(s.requests.get("total", 0), 1)
        out.append(
            f"- rate limit {s.rate_limit:g}/s: {share:.0%} of the limit, initial burst left out "
            f"(>= 90%: {verdict(share >= 0.9)}); {limited:.1%} of requests answered 429 "
            f"(few, taken as <= 5%: {verdict(limited <= 0.05)})"
        )
    return out


def machine() -> list[str]:
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    one, five, fifteen = os.getloadavg()
    load = f", load average {one:.1f} {five:.1f} {fifteen:.1f} at the start"
    return [
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs{mem}{load}",
        (
            f"- python {platform.python_version()}, anthropic {_version('anthropic')}, "
            f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        ),
    ]


def _version(package: str) -> str:
    from importlib.metadata import version

    try:
        return version(package)
    except Exception:  # noqa: BLE001
        return "?"


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 agents, fewer rows")
    parser.add_argument("--sizes", default=None, help="agent counts, e.g. 100,1000,10000")
    parser.add_argument(
        "--latencies", default=None, help="injected ms per request over http, e.g. 0,20"
    )
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process rows")
    parser.add_argument(
        "--all-cells", action="store_true", help="also 0 ms over http at 10,000 agents"
    )
    parser.add_argument("--parallelism", type=int, default=10, help="apply --parallelism")
    parser.add_argument(
        "--sweep", default="16,32", help="more apply parallelisms to try at 20 ms ('' for none)"
    )
    parser.add_argument(
        "--sweep-max-agents", type=int, default=1000, help="sizes up to this get the sweep"
    )
    parser.add_argument("--repeat", type=int, default=2, help="plan/list runs (best is kept)")
    parser.add_argument(
        "--sdk-budget",
        type=float,
        default=30.0,
        help="seconds the SDK create loop may take before it is sampled and extrapolated",
    )
    parser.add_argument(
        "--rate-limit", default=None, help="provider rate limits (requests/s) to apply against"
    )
    parser.add_argument("--rate-parallelism", type=int, default=10)
    parser.add_argument("--no-startup", action="store_true", help="skip CLI start-up timing")
    parser.add_argument("--no-results", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument("--title", default="", help="a note for the RESULTS.md heading")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = "100,1000" if args.quick else "100,1000,10000"
    if args.latencies is None:
        args.latencies = "20" if args.quick else "0,20"
    if args.rate_limit is None:
        args.rate_limit = "50" if args.quick else "5,50"
    args.sweep = [int(p) for p in args.sweep.split(",") if p]
    if args.quick:
        args.sdk_budget = min(args.sdk_budget, 10.0)
        args.no_startup = True
        args.no_results = True  # RESULTS.md holds full runs only
    return args


def rate_agents(rate: float, quick: bool) -> int:
    """Enough creates for ~20 s (~8 s quick) at the limit, so the pacing settles."""
    return max(60, int(rate * (8 if quick else 20)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    latencies = [int(s) for s in args.latencies.split(",") if s]
    rates = [float(s) for s in args.rate_limit.split(",") if s]
    header = machine()
    print("\n".join(header), flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp_name:
        tmp = Path(tmp_name)
        warm_up(args, tmp)
        for agents in sizes:
            workload = Workload.of_size(agents)
            cells = [] if args.no_in_process else [("in-process", 0)]
            cells += [
                ("http", latency)
                for latency in latencies
                # 0 ms over http adds little at 10,000 that in-process does not show
                if args.all_cells or agents < 10_000 or latency > 0
            ]
            for where, latency in cells:
                print(f"... {workload.label()}, {where}, {latency} ms", file=sys.stderr, flush=True)
                rows.append(run_cell(workload, where, latency, args, tmp))
                print("\n".join(table(rows[-1:])[2:]), file=sys.stderr, flush=True)
        rate_steps: list[RateStep] = []
        for rate in rates:
            agents = rate_agents(rate, args.quick)
            print(f"... rate limit {rate:g}/s, {agents} agents", file=sys.stderr, flush=True)
            rate_steps.append(run_rate_limit(rate, agents, args, tmp))
    startup = {} if args.no_startup else cli_startup()
    elapsed = time.perf_counter() - started

    lines = ["## Plan and apply, side by side with the official SDK", ""]
    lines += table(rows)
    legend = (
        f"apply: `--parallelism {args.parallelism}`, plan included, lockfile committed as it "
        "goes; SDK create loop: one `client.beta.*.create` at a time with the same bodies "
        "(`~` = timed on a sample and scaled to all resources); plan: load + refresh + diff "
        f"after the apply, best of {args.repeat}; SDK list: auto-paged "
        "`list(limit=100, include_archived=True)` of agents and environments, best of "
        f"{args.repeat}; both SDK timings include building the client, as ours do. Requests "
        "are counted by the provider."
    )
    lines += ["", legend, ""]
    sweep = sweep_table(rows)
    if sweep:
        lines += [
            "## Apply by parallelism (each on a fresh provider; speed-up over the same SDK loop)",
            "",
        ]
        lines += sweep + [""]
    if rate_steps:
        lines += ["## Apply against a rate-limited provider", ""]
        lines += rate_table(rate_steps)
        legend = (
            f"`--parallelism {args.rate_parallelism}`; creates/s from the first request sent to "
            "the last outcome. The provider answers 429 with `retry-after` once its token "
            "bucket (one second of burst, full at the start) is empty."
        )
        lines += ["", legend, ""]
    if startup:
        lines += ["## CLI start-up (best of 5, new process each)", ""]
        lines += [f"- `{k}`: {v:.2f} s" for k, v in startup.items()]
        lines += [""]
    lines += ["## Goals", ""] + goals(rows, rate_steps) + [""]
    lines += [f"Whole run: {elapsed:.0f} s.", ""]
    print()
    print("\n".join(lines))
    if not args.no_results:
        write_results(header, lines, args)
    return 0


def write_results(header: list[str], lines: list[str], args: argparse.Namespace) -> None:
    """Replace the generated part of RESULTS.md, keeping any hand-written notes after it."""
    marker = "<!-- end of generated results -->"
    notes = ""
    if RESULTS.exists():
        text = RESULTS.read_text(encoding="utf-8")
        if marker in text:
            notes = text.split(marker, 1)[1]
    title = "# Benchmark results" + (f" ({args.title})" if args.title else "")
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    body = [title, "", f"`{command.strip()}`", ""] + header + [""] + lines + [marker]
    RESULTS.write_text("\n".join(body) + notes, encoding="utf-8")
    print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
