"""What following many jobs at once costs: 10 local jobs, each printing 200 lines a second.

    python bench/jobs_monitor_overhead.py [--jobs 10] [--rate 200] [--seconds 10] [--runs 1] [--json out.json]

In this process: a real ``Session`` (demo model, local jobs backend) launches ``--jobs`` jobs
at once through its ``hf_jobs`` tool. Each job is the generator of
bench/jobs_log_throughput.py printing ``--rate`` trainer-style lines a second for
``--seconds`` s. A subscriber on the session's event bus feeds every line to a
``LossTracker``, as the TUI bridge does. A 5 ms heartbeat task runs on the same event loop
the whole time. Measured: this process's CPU while the jobs run (the jobs are children and
not counted), per job and per 1,000 lines; the heartbeat's lateness (p50/p99/max) while
the jobs run against an idle stretch before; memory; and for every job the lines printed
against the lines in the monitor's log file and in ``job_log`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tui_stream as ts  # noqa: E402
from jobs_log_throughput import GENERATOR, _lines, _pct, _rss  # noqa: E402


class Heartbeat:
    """A task waking every 5 ms on an absolute schedule; records how late each wake was."""

    def __init__(self, period: float = 0.005):
        self.period = period
        self.lags: list[float] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        nxt = time.monotonic()
        while True:
            nxt += self.period
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            self.lags.append(max(0.0, time.monotonic() - nxt))
            nxt = max(nxt, time.monotonic())

    def take(self) -> list[float]:
        lags, self.lags = self.lags, []
        return lags


def _summary(lags: list[float]) -> dict:
    return {"p50_ms": 1000 * _pct(lags, 0.5), "p99_ms": 1000 * _pct(lags, 0.99),
            "max_ms": 1000 * max(lags, default=float("nan")), "n": len(lags)}


async def one_run(args: argparse.Namespace, work: Path) -> dict:
    os.environ["MLINTERN_HOME"] = str(work / "home")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from agent.config import Config
    from agent.jobs.loss import LossTracker
    from agent.protocol import JobLog, JobUpdate
    from agent.session import Session

    cwd = work / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    # the bench launches the jobs itself, in the user's place: CPU jobs run without a card
    # (the router refuses a gated call that nobody approved)
    session = Session(Config(confirm_cpu_jobs=False), model_id="demo", cwd=cwd, jobs_backend="local")
    sub = session.subscribe("bench")
    trackers: dict[str, LossTracker] = {}
    lines_by_job: dict[str, int] = {}
    events = {"job_log": 0, "job_update": 0}
    ended: set[str] = set()
    feed_cpu = [0.0]

    async def consume() -> None:
        async for event in sub:
            if isinstance(event, JobLog):
                events["job_log"] += 1
                lines_by_job[event.job_id] = lines_by_job.get(event.job_id, 0) + len(event.lines)
                tracker = trackers.setdefault(event.job_id, LossTracker())
                t0 = time.thread_time()
                for line in event.lines:
                    tracker.feed(line)
                feed_cpu[0] += time.thread_time() - t0
            elif isinstance(event, JobUpdate):
                events["job_update"] += 1
                if event.status in ("COMPLETED", "ERROR", "CANCELED"):
                    ended.add(event.job_id)
                    if len(ended) == args.jobs:
                        return

    beat = Heartbeat()
    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(1.0)
    beat.take()
    idle_cpu0 = sum(os.times()[:2])
    await asyncio.sleep(args.idle)
    idle = _summary(beat.take())
    idle_cpu = sum(os.times()[:2]) - idle_cpu0

    stats = [cwd / f"gen_stats_{k}.json" for k in range(args.jobs)]
    calls = [session.router.parse(f"bench-{k}", "hf_jobs", json.dumps({
        "operation": "run", "script": GENERATOR, "timeout": "5m",
        "script_args": [f"{args.rate:g}", f"{args.seconds:g}", str(stats[k])]})) for k in range(args.jobs)]
    rss0 = _rss()
    cpu0 = sum(os.times()[:2])
    t0 = time.monotonic()
    results = await asyncio.gather(*(session.router.execute(c, session._tool_context(c.id, "hf_jobs")) for c in calls))
    launched_s = time.monotonic() - t0
    refused = [r.output for r in results if "accepted on" not in r.output]
    if refused:
        raise RuntimeError(f"{len(refused)} job(s) did not start: {refused[0][:300]}")
    launch = _summary(beat.take())  # ten process spawns, each waiting for its first lines
    rss_samples = [rss0]

    async def sample_rss() -> None:
        while True:
            await asyncio.sleep(0.5)
            rss_samples.append(_rss())

    sampler = asyncio.ensure_future(sample_rss())
    try:
        await asyncio.wait_for(consumer, timeout=args.seconds + 120)
    finally:
        sampler.cancel()
    wall = time.monotonic() - t0
    cpu = sum(os.times()[:2]) - cpu0
    flow = _summary(beat.take())
    beat.task.cancel()
    gens = [json.loads(p.read_text()) for p in stats]
    jobs = list(session.jobs.monitor.jobs.values())
    printed = {j.info.id: g["lines"] + 1 for j, g in zip(jobs, gens)}
    total_lines = sum(printed.values())
    out = {
        "jobs": args.jobs, "accepted": sum("accepted on" in r.output for r in results), "launched_s": launched_s,
        "wall_s": wall, "cpu_s": cpu, "cpu_pct": 100 * cpu / wall, "cpu_per_job_pct": 100 * cpu / wall / args.jobs,
        "cpu_ms_per_1k_lines": 1000 * cpu / (total_lines / 1000), "feed_cpu_s": feed_cpu[0],
        "idle_cpu_pct": 100 * idle_cpu / args.idle,
        "gen_cpu_s": sum(g["cpu_s"] for g in gens),
        "idle_beat": idle, "launch_beat": launch, "flow_beat": flow,
        "net_cpu_per_job_pct": (100 * cpu / wall - 100 * idle_cpu / args.idle) / args.jobs,
        "rss_before_mb": rss0, "rss_max_mb": max(rss_samples), "rss_after_mb": _rss(), "hwm_mb": _rss("VmHWM"),
        "printed": total_lines,
        "monitor_file_lines": sum(_lines(j.log_path) for j in jobs),
        "event_lines": sum(lines_by_job.values()),
        "jobs_short": [j.info.id for j in jobs if lines_by_job.get(j.info.id, 0) != printed[j.info.id]],
        "statuses": sorted({j.info.stage for j in jobs}),
        "job_log_events": events["job_log"], "job_log_per_s": events["job_log"] / wall,
        "job_update_events": events["job_update"],
    }
    await session.jobs.monitor.close()
    sub.close()
    return out


def report(runs: list[dict], args: argparse.Namespace) -> None:
    def beat(b: dict) -> str:
        return f"{b['p50_ms']:.1f}/{b['p99_ms']:.1f}/{b['max_ms']:.0f} ms"

    rows = [
        ("jobs accepted, launch took", lambda r: f"{r['accepted']}/{r['jobs']}, {r['launched_s']:.2f} s"),
        ("lines printed (all jobs)", lambda r: f"{r['printed']:,}"),
        ("  in monitor log files / job_log events", lambda r: f"{r['monitor_file_lines']:,} / {r['event_lines']:,}"),
        ("  jobs with a line count off", lambda r: str(len(r["jobs_short"]))),
        ("process CPU, launch to last job end", lambda r: f"{r['cpu_s']:.2f} s over {r['wall_s']:.1f} s ({r['cpu_pct']:.1f}% of a core)"),
        ("  per job (net of the idle baseline)", lambda r: f"{r['cpu_per_job_pct']:.2f}% ({r['net_cpu_per_job_pct']:.2f}%) of a core"),
        ("  per 1,000 lines", lambda r: f"{r['cpu_ms_per_1k_lines']:.1f} ms"),
        ("  of which LossTracker.feed", lambda r: f"{r['feed_cpu_s']:.2f} s"),
        ("  idle, before the jobs", lambda r: f"{r['idle_cpu_pct']:.1f}% of a core"),
        ("  the jobs' own CPU (all)", lambda r: f"{r['gen_cpu_s']:.1f} s"),
        ("5 ms heartbeat late, p50/p99/max: idle", lambda r: beat(r["idle_beat"])),
        ("  launching them (hf_jobs run x N)", lambda r: beat(r["launch_beat"])),
        ("  while they ran, after the launch", lambda r: beat(r["flow_beat"])),
        ("job_log events, per s", lambda r: f"{r['job_log_events']:,}, {r['job_log_per_s']:.0f}/s"),
        ("job_update events", lambda r: str(r["job_update_events"])),
        ("VmRSS before / max / after, VmHWM", lambda r: f"{r['rss_before_mb']:.0f} / {r['rss_max_mb']:.0f} / "
                                                        f"{r['rss_after_mb']:.0f}, {r['hwm_mb']:.0f} MB"),
        ("final statuses", lambda r: ", ".join(r["statuses"])),
    ]
    ts.print_table(f"\n{args.jobs} local jobs at once, each printing {args.rate:g} lines/s for {args.seconds:g} s "
                   "(Session + hf_jobs + JobMonitor + bus subscriber)", rows, runs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=10)
    p.add_argument("--rate", type=float, default=200, help="lines per second each job prints")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--idle", type=float, default=3.0, help="seconds of heartbeat before the jobs start")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for other load to settle before a run")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    runs = []
    for i in range(args.runs):
        busy = ts.wait_for_quiet(args.quiet_wait)
        print(f"run {i + 1}/{args.runs} (machine {busy:.0f}% busy before it) …", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="mlintern-bench-monitor-") as tmp:
            runs.append(asyncio.run(one_run(args, Path(tmp))))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
